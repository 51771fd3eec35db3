package accesslog_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/accesslog"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/recovery"
	"github.com/connectguard/guard/interceptors/requestid"
)

var tokens = testservice.Tokens{"reader": {UserID: "u-reader", Roles: []string{"reader"}}}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

// outcomes is the hook of the test handler: the id says what it does.
func outcomes(ctx context.Context, _, id string) error {
	kind, _, _ := strings.Cut(id, "#")
	switch kind {
	case "not_found":
		return connect.NewError(connect.CodeNotFound, errors.New("item not found"))
	case "internal":
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	case "data_loss":
		return connect.NewError(connect.CodeDataLoss, errors.New("data loss"))
	case "unknown":
		return errors.New("a plain error")
	case "canceled":
		return connect.NewError(connect.CodeCanceled, errors.New("canceled"))
	case "deadline":
		return context.DeadlineExceeded
	case "panic":
		panic("handler bug")
	case "login":
		authn.Identify(ctx, "u-login")
	}
	return nil
}

// start serves the test service behind accesslog, recovery and authn, in
// the order guard.New puts them.
func start(t *testing.T, log *testservice.Log, hook testservice.Hook) (*testservice.Server, *testservice.Service, *testservice.Panics) {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	svc := testservice.NewService(hook)
	panics := &testservice.Panics{}
	srv := testservice.NewServer(panics.Middleware(testservice.Handler(svc, connect.WithInterceptors(
		accesslog.NewInterceptor(log.Logger),
		recovery.NewInterceptor(log.Logger),
		authn.NewInterceptor(table, tokens)))))
	t.Cleanup(srv.Close)
	return srv, svc, panics
}

// checkLine checks the one access-log line of a request.
func checkLine(t *testing.T, log *testservice.Log, requestID string, want map[string]string) {
	t.Helper()
	lines := log.Lines(map[string]string{"msg": "rpc", "request_id": requestID})
	if len(lines) != 1 {
		t.Fatalf("got %d access-log lines for request %q, want 1; log:\n%s", len(lines), requestID, log)
	}
	line := lines[0]
	for k, w := range want {
		if got, ok := line[k].(string); !ok || got != w {
			t.Errorf("log %s = %q, want %q", k, line[k], w)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Errorf("log line has no duration: %v", line)
	}
}

// TestLines: one line per call, unary and streaming, over each protocol,
// at the level that says who caused the outcome: Info for successes and
// what the client ended, Warn for refusals, Error for server failures.
func TestLines(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	srv, svc, _ := start(t, log, outcomes)
	tests := []struct {
		name  string
		token string
		id    string
		code  string
		level string
		user  string
	}{
		{"ok", "reader", "ok", "ok", "INFO", "u-reader"},
		{"no_credential", "", "ok", "unauthenticated", "WARN", "anonymous"},
		{"bad_credential", "forged", "ok", "unauthenticated", "WARN", "anonymous"},
		{"not_found", "reader", "not_found", "not_found", "WARN", "u-reader"},
		{"internal", "reader", "internal", "internal", "ERROR", "u-reader"},
		{"data_loss", "reader", "data_loss", "data_loss", "ERROR", "u-reader"},
		{"unknown", "reader", "unknown", "unknown", "ERROR", "u-reader"},
		{"panic", "reader", "panic", "internal", "ERROR", "u-reader"},
		{"canceled", "reader", "canceled", "canceled", "INFO", "u-reader"},
		{"deadline_exceeded", "reader", "deadline", "deadline_exceeded", "INFO", "u-reader"},
	}
	for _, tt := range tests {
		for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
			for _, protocol := range testservice.Protocols() {
				t.Run(tt.name+"/"+shortName(procedure)+"/"+protocol, func(t *testing.T) {
					t.Parallel()
					h := http.Header{"X-Forwarded-For": {"192.0.2.8"}}
					if tt.token != "" {
						h.Set("Authorization", "Bearer "+tt.token)
					}
					id := tt.id + "#" + t.Name()
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, h, id)
					if got := res.Code(); got != tt.code {
						t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
					}
					requestID := res.Meta.Get("X-Request-Id")
					checkLine(t, log, requestID, map[string]string{
						"level": tt.level, "procedure": procedure, "protocol": protocol, "code": tt.code,
						"user_id": tt.user, "client_ip": "192.0.2.8", "request_id": requestID,
					})
					if tt.code == "unauthenticated" {
						for _, r := range svc.Reached() {
							if r.ID == id {
								t.Errorf("handler reached by a refused call")
							}
						}
					}
				})
			}
		}
	}
}

// TestIdentify: a public call that names its user (a login) is logged
// with that user.
func TestIdentify(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	srv, _, _ := start(t, log, outcomes)
	for _, protocol := range testservice.Protocols() {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			res := testservice.Call(t.Context(), srv.Client(protocol), testservice.Ping, nil, "login")
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			requestID := res.Meta.Get("X-Request-Id")
			checkLine(t, log, requestID, map[string]string{"level": "INFO", "code": "ok", "user_id": "u-login"})
		})
	}
}

// TestClientEnds: calls the client cancels or lets run past its deadline
// are logged at Info: a client cannot make ERROR lines at will.
func TestClientEnds(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		for _, tt := range []struct {
			name, code string
		}{
			{"cancel", "canceled"},
			{"deadline", "deadline_exceeded"},
		} {
			t.Run(tt.name+"/"+shortName(procedure), func(t *testing.T) {
				t.Parallel()
				log := testservice.NewLog()
				reached := make(chan struct{})
				srv, _, _ := start(t, log, func(ctx context.Context, _, _ string) error {
					close(reached)
					<-ctx.Done()
					return ctx.Err()
				})
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if tt.name == "deadline" {
					ctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
					defer cancel()
				} else {
					go func() {
						<-reached
						cancel()
					}()
				}
				res := testservice.Call(ctx, srv.Client(connect.ProtocolGRPC), procedure, testservice.Bearer("reader"), "a")
				if got := res.Code(); got != tt.code {
					t.Fatalf("client code = %s (%v), want %s", got, res.Err, tt.code)
				}
				// The server finishes after the client has gone.
				var lines []map[string]any
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					if lines = log.Lines(map[string]string{"msg": "rpc"}); len(lines) > 0 {
						break
					}
				}
				if len(lines) != 1 {
					t.Fatalf("got %d access-log lines, want 1; log:\n%s", len(lines), log)
				}
				for k, want := range map[string]string{"level": "INFO", "procedure": procedure, "user_id": "u-reader"} {
					if got, _ := lines[0][k].(string); got != want {
						t.Errorf("log %s = %q, want %q", k, got, want)
					}
				}
				// Past the deadline, the client resets the stream about when
				// the server's own deadline (sent as a timeout header) fires:
				// the server sees whichever comes first.
				if got, _ := lines[0]["code"].(string); got != tt.code && (tt.name != "deadline" || got != "canceled") {
					t.Errorf("log code = %q, want %q", got, tt.code)
				}
			})
		}
	}
}

// TestAbort: a handler that aborts the response (a panic with
// http.ErrAbortHandler, which recovery lets through) is logged as aborted,
// and the panic goes on to net/http.
func TestAbort(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		t.Run(shortName(procedure), func(t *testing.T) {
			t.Parallel()
			log := testservice.NewLog()
			srv, _, panics := start(t, log, func(context.Context, string, string) error { panic(http.ErrAbortHandler) })
			res := testservice.Call(t.Context(), srv.Client(connect.ProtocolGRPC), procedure, testservice.Bearer("reader"), "a")
			if res.Err == nil {
				t.Fatal("call succeeded, want it aborted")
			}
			if got := panics.Values(); len(got) != 1 || got[0] != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				t.Errorf("panics out of the handler = %v, want [http.ErrAbortHandler]", got)
			}
			lines := log.Lines(map[string]string{"msg": "rpc"})
			if len(lines) != 1 {
				t.Fatalf("got %d access-log lines, want 1; log:\n%s", len(lines), log)
			}
			for k, want := range map[string]string{"level": "WARN", "code": "aborted", "procedure": procedure, "user_id": "u-reader"} {
				if got, _ := lines[0][k].(string); got != want {
					t.Errorf("log %s = %q, want %q", k, got, want)
				}
			}
			if got := log.Lines(map[string]string{"msg": "panic in handler"}); len(got) > 0 {
				t.Errorf("recovery logged the abort as a panic: %v", got)
			}
		})
	}
}

// TestRefused: Refused logs a call the HTTP layer refused in the form of
// the calls the interceptor sees, with the protocol told by the content
// type.
func TestRefused(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	i := accesslog.NewInterceptor(log.Logger)
	h := requestid.Middleware(clientip.NewResolver(nil).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		i.Refused(r, authn.Unauthenticated("authentication required", ""))
	})))
	for _, tt := range []struct {
		contentType, protocol string
	}{
		{"application/json", connect.ProtocolConnect},
		{"application/connect+proto", connect.ProtocolConnect},
		{"application/grpc", connect.ProtocolGRPC},
		{"application/grpc+proto", connect.ProtocolGRPC},
		{"application/grpc-web+proto", connect.ProtocolGRPCWeb},
	} {
		t.Run(strings.ReplaceAll(tt.contentType, "/", "_"), func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, testservice.GetItem, nil)
			r.Header.Set("Content-Type", tt.contentType)
			r.RemoteAddr = "198.51.100.9:4000"
			h.ServeHTTP(w, r)
			requestID := w.Header().Get(requestid.Header)
			checkLine(t, log, requestID, map[string]string{
				"level": "WARN", "procedure": testservice.GetItem, "protocol": tt.protocol, "code": "unauthenticated",
				"user_id": "anonymous", "client_ip": "198.51.100.9", "request_id": requestID,
			})
		})
	}
}

// TestLevelDisabled: lines below the logger's level are not written; the
// others are.
func TestLevelDisabled(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	srv := testservice.Start(testservice.NewService(nil), connect.WithInterceptors(
		accesslog.NewInterceptor(log.At(slog.LevelWarn)), authn.NewInterceptor(table, tokens)))
	t.Cleanup(srv.Close)
	ok := testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), testservice.GetItem, testservice.Bearer("reader"), "a")
	refused := testservice.Call(t.Context(), srv.Client(connect.ProtocolConnect), testservice.GetItem, nil, "a")
	if got := log.Lines(map[string]string{"request_id": ok.Meta.Get(requestid.Header)}); len(got) != 0 {
		t.Errorf("got %v for a success at Warn level, want no line", got)
	}
	if got := log.Lines(map[string]string{"request_id": refused.Meta.Get(requestid.Header)}); len(got) != 1 {
		t.Errorf("got %d lines for a refusal at Warn level, want 1", len(got))
	}
}

// TestClientCalls: on a client, nothing is logged.
func TestClientCalls(t *testing.T) {
	t.Parallel()
	log := testservice.NewLog()
	srv := testservice.Start(testservice.NewService(nil))
	t.Cleanup(srv.Close)
	client := srv.Client(connect.ProtocolConnect, connect.WithInterceptors(accesslog.NewInterceptor(log.Logger)))
	for _, procedure := range []string{testservice.GetItem, testservice.ListItems, testservice.SyncItems} {
		if res := testservice.Call(t.Context(), client, procedure, nil, "a"); res.Err != nil {
			t.Fatalf("%s: %v", shortName(procedure), res.Err)
		}
	}
	if got := log.String(); got != "" {
		t.Errorf("client calls logged %q, want nothing", got)
	}
}
