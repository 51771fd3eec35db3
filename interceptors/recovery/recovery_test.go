package recovery_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/interceptors/internal/testservice"
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

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

// TestPanicInStreams: a panic in a server-streaming or bidi handler, even
// after responses were sent, ends the stream with internal naming the
// request id and nothing of the panic, which goes to the log with its
// stack.
func TestPanicInStreams(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	svc := testservice.NewService(func(_ context.Context, _, id string) error {
		if strings.HasPrefix(id, "panic") {
			panic("secret internals: /etc/guard/db.sqlite SELECT * FROM users")
		}
		return nil
	})
	srv := testservice.Start(svc, connect.WithInterceptors(recovery.NewInterceptor(log.Logger)))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { // after the subtests
		if got := srv.ErrorLog(); got != "" {
			t.Errorf("net/http logged %q, want nothing: no panic gets past recovery", got)
		}
	})
	tests := []struct {
		procedure string
		ids       []string
		// received: responses the client gets before the error.
		received []string
	}{
		{testservice.GetItem, []string{"panic"}, nil},
		{testservice.ListItems, []string{"panic"}, nil},
		{testservice.SyncItems, []string{"panic"}, nil},
		{testservice.SyncItems, []string{"first", "panic", "third"}, []string{"first"}},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run(shortName(tt.procedure)+"_"+strings.Join(tt.ids, "_")+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				res := testservice.Call(t.Context(), srv.Client(protocol), tt.procedure, nil, tt.ids...)
				if got, want := res.Code(), "internal"; got != want {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
				}
				requestID := res.Meta.Get(requestid.Header)
				if got, want := res.Message(), "internal error (request id "+requestID+")"; requestID == "" || got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
				if !slices.Equal(res.IDs, tt.received) {
					t.Errorf("responses = %q, want %q", res.IDs, tt.received)
				}
				lines := log.Lines(map[string]string{"request_id": requestID, "msg": "panic in handler"})
				if len(lines) != 1 {
					t.Fatalf("got %d log lines for request %s, want 1", len(lines), requestID)
				}
				if got, _ := lines[0]["panic"].(string); !strings.Contains(got, "secret internals") {
					t.Errorf("log panic = %q, want the panic value", got)
				}
				if got, _ := lines[0]["stack"].(string); !strings.Contains(got, "recovery_test.go") {
					t.Errorf("log stack = %q, want the stack of the panic", got)
				}
				if got, want := lines[0]["procedure"], tt.procedure; got != want {
					t.Errorf("log procedure = %q, want %q", got, want)
				}
			})
		}
	}
}

// TestAbortHandlerPropagates: a panic with http.ErrAbortHandler is how a
// handler aborts its response on purpose: recovery lets it go on to
// net/http, unary and streaming, and logs nothing.
func TestAbortHandlerPropagates(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				log := testservice.NewLog()
				svc := testservice.NewService(func(context.Context, string, string) error { panic(http.ErrAbortHandler) })
				var panics testservice.Panics
				srv := testservice.NewServer(panics.Middleware(testservice.Handler(svc, connect.WithInterceptors(recovery.NewInterceptor(log.Logger)))))
				t.Cleanup(srv.Close)
				res := testservice.Call(t.Context(), srv.Client(protocol), procedure, nil, "a")
				if res.Err == nil {
					t.Fatal("call succeeded, want it aborted")
				}
				if strings.HasPrefix(res.Message(), "internal error") {
					t.Errorf("error = %v, want the abort, not recovery's internal error", res.Err)
				}
				if got := panics.Values(); len(got) != 1 || got[0] != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
					t.Errorf("panics out of the handler = %v, want [http.ErrAbortHandler]", got)
				}
				if got := log.String(); got != "" {
					t.Errorf("log = %q, want nothing", got)
				}
			})
		}
	}
}
