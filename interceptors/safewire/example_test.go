package safewire_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/interceptors/safewire"
)

func Example() {
	log := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	// Every handler gets the codecs; the mux gets the middleware.
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(), safewire.Codecs(log)))
	srv := httptest.NewServer(safewire.Middleware(log, mux))
	defer srv.Close()

	res, err := http.Post(srv.URL+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader(`{"service": 5}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(body))
	// Output: 400 {"code":"invalid_argument","message":"unmarshal message: request message is not valid JSON"}
}
