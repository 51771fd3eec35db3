package recovery_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/interceptors/recovery"
	"github.com/connectguard/guard/interceptors/requestid"
)

type panicky struct{}

func (panicky) Check(context.Context, *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	panic("secret internals: /etc/guard/db.sqlite SELECT * FROM users")
}

// TestPanicBecomesGenericInternal: a panicking handler answers internal
// with the request id and nothing of the panic; the panic and its stack go
// to the log; the server keeps serving.
func TestPanicBecomesGenericInternal(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.Handle(grpchealth.NewHandler(panicky{}, connect.WithInterceptors(recovery.NewInterceptor(log))))
	srv := httptest.NewUnstartedServer(requestid.Middleware(mux))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for _, opts := range [][]connect.ClientOption{nil, {connect.WithGRPC()}, {connect.WithGRPCWeb()}} {
		c := grpchealth.NewClient(srv.Client(), srv.URL, opts...)
		_, err := c.Check(context.Background(), &grpchealth.CheckRequest{})
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInternal {
			t.Fatalf("got %v, want an internal error", err)
		}
		msg := ce.Message()
		if !strings.HasPrefix(msg, "internal error (request id ") || strings.Contains(msg, "secret") {
			t.Errorf("got message %q, want a generic one naming the request id", msg)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(msg, "internal error (request id "), ")")
		if id == "" || !strings.Contains(logs.String(), "request_id="+id) {
			t.Errorf("got no log line for request id %q", id)
		}
	}
	for _, want := range []string{"secret internals", "recovery_test.go"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("got log without %q, want the panic value and stack logged", want)
		}
	}
}
