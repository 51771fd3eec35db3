package recovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/interceptors/recovery"
)

func ExampleNewInterceptor() {
	log := slog.New(slog.DiscardHandler)
	_, h := grpchealth.NewHandler(panicky{}, connect.WithInterceptors(recovery.NewInterceptor(log)))
	srv := httptest.NewServer(h)
	defer srv.Close()

	_, err := grpchealth.NewClient(srv.Client(), srv.URL).Check(context.Background(), &grpchealth.CheckRequest{})
	fmt.Println(connect.CodeOf(err))
	// Output: internal
}
