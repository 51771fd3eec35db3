package audit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/recovery"
	"github.com/connectguard/guard/interceptors/requestid"
)

// recorder keeps the events, and fails every record with err when set.
type recorder struct {
	err error

	mu     sync.Mutex
	events []audit.Event
	// live says, per event, whether its context was still live when recorded.
	live []bool
}

func (r *recorder) RecordAudit(ctx context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.live = append(r.live, ctx.Err() == nil)
	return r.err
}

// of returns the events of one request.
func (r *recorder) of(requestID string) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.RequestID == requestID {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

var tokens = testservice.Tokens{
	"reader": {UserID: "u-reader", Roles: []string{"reader"}},
	"writer": {UserID: "u-writer", Roles: []string{"writer"}},
}

func testTable(t testing.TB) *policy.Table {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

// failing is the hook of handlers that fail: ids starting with "fail"
// answer not_found, "panic" panics.
func failing(_ context.Context, _, id string) error {
	switch {
	case strings.HasPrefix(id, "fail"):
		return connect.NewError(connect.CodeNotFound, errors.New("item not found"))
	case strings.HasPrefix(id, "panic"):
		panic("handler bug")
	}
	return nil
}

// start serves the test service behind audit, recovery and authn, in the
// order guard.New puts them.
func start(t *testing.T, rec *recorder, log *testservice.Log, more ...connect.Interceptor) (*testservice.Server, *testservice.Service) {
	t.Helper()
	table := testTable(t)
	svc := testservice.NewService(failing)
	chain := append([]connect.Interceptor{
		audit.NewInterceptor(table, rec, log.Logger),
		recovery.NewInterceptor(log.Logger),
		authn.NewInterceptor(table, tokens),
	}, more...)
	srv := testservice.Start(svc, connect.WithInterceptors(chain...))
	t.Cleanup(srv.Close)
	return srv, svc
}

// TestEvents: calls of audited methods are recorded, allowed or refused,
// unary and streaming, with the actor authn saw, the code the client got,
// the client IP and the request id; other methods are not.
func TestEvents(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv, svc := start(t, rec, testservice.NewLog())
	tests := []struct {
		name      string
		procedure string
		token     string
		id        string
		audited   bool
		code      string
		actor     string
	}{
		{"unary_ok", testservice.LimitedPerUser, "reader", "a", true, "ok", "u-reader"},
		{"unary_no_credential", testservice.LimitedPerUser, "", "a", true, "unauthenticated", ""},
		{"unary_bad_credential", testservice.LimitedPerUser, "forged", "a", true, "unauthenticated", ""},
		{"unary_handler_error", testservice.UpdateItem, "writer", "fail", true, "not_found", "u-writer"},
		{"unary_panic", testservice.UpdateItem, "writer", "panic", true, "internal", "u-writer"},
		{"server_stream_ok", testservice.ListItems, "reader", "a", true, "ok", "u-reader"},
		{"server_stream_refused", testservice.ListItems, "forged", "a", true, "unauthenticated", ""},
		{"server_stream_handler_error", testservice.ListItems, "reader", "fail", true, "not_found", "u-reader"},
		{"server_stream_panic", testservice.ListItems, "reader", "panic", true, "internal", "u-reader"},
		{"bidi_ok", testservice.SyncItems, "reader", "a", true, "ok", "u-reader"},
		{"bidi_refused", testservice.SyncItems, "", "a", true, "unauthenticated", ""},
		{"bidi_handler_error", testservice.SyncItems, "reader", "fail", true, "not_found", "u-reader"},
		{"bidi_panic", testservice.SyncItems, "reader", "panic", true, "internal", "u-reader"},
		{"not_audited_ok", testservice.GetItem, "reader", "a", false, "ok", ""},
		{"not_audited_refused", testservice.GetItem, "forged", "a", false, "unauthenticated", ""},
		{"not_audited_public", testservice.Ping, "", "a", false, "ok", ""},
		{"not_audited_rate_limited_public", testservice.LimitedPerIP, "", "a", false, "ok", ""},
	}
	for _, tt := range tests {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				h := http.Header{"X-Forwarded-For": {"192.0.2.7"}}
				if tt.token != "" {
					h.Set("Authorization", "Bearer "+tt.token)
				}
				before := time.Now()
				res := testservice.Call(t.Context(), srv.Client(protocol), tt.procedure, h, tt.id+"#"+t.Name())
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
				}
				requestID := res.Meta.Get("X-Request-Id")
				if requestID == "" {
					t.Fatal("no X-Request-Id in the response")
				}
				events := rec.of(requestID)
				if !tt.audited {
					if len(events) > 0 {
						t.Errorf("events = %+v, want none for a method without audit", events)
					}
					return
				}
				if len(events) != 1 {
					t.Fatalf("got %d events, want 1: %+v", len(events), events)
				}
				e := events[0]
				want := audit.Event{Type: audit.TypeRPC, Time: e.Time, ActorID: tt.actor, Procedure: tt.procedure, Code: tt.code, ClientIP: "192.0.2.7", RequestID: requestID}
				if e != want {
					t.Errorf("event = %+v, want %+v", e, want)
				}
				if e.Time.Before(before) || e.Time.After(time.Now()) {
					t.Errorf("event time = %v, want during the call", e.Time)
				}
				if tt.code != "ok" && tt.code != "not_found" && tt.code != "internal" {
					for _, r := range svc.Reached() {
						if r.ID == tt.id+"#"+t.Name() {
							t.Errorf("handler reached by a refused call")
						}
					}
				}
			})
		}
	}
}

// TestRefusedAfterAuthentication: a refusal by a check inside authn (here
// the per-method rate limit) is recorded with the actor authn saw.
func TestRefusedAfterAuthentication(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.LimitedPerUser, testservice.ListItems, testservice.SyncItems} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(procedure)+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				rec := &recorder{}
				table := testTable(t)
				srv, svc := start(t, rec, testservice.NewLog(), ratelimit.NewInterceptor(table, ratelimit.NewMemory()))
				var codes []string
				for range 3 {
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, testservice.Bearer("reader"), "a")
					codes = append(codes, res.Code())
				}
				if got, want := strings.Join(codes, ","), "ok,ok,resource_exhausted"; got != want {
					t.Fatalf("codes = %s, want %s", got, want)
				}
				if got := len(svc.Reached()); got != 2 {
					t.Errorf("handler reached %d times, want 2", got)
				}
				events := rec.all()
				if len(events) != 3 {
					t.Fatalf("got %d events, want 3: %+v", len(events), events)
				}
				for i, e := range events {
					if e.ActorID != "u-reader" || e.Code != codes[i] {
						t.Errorf("event %d = actor %q code %q, want actor %q code %q", i, e.ActorID, e.Code, "u-reader", codes[i])
					}
				}
			})
		}
	}
}

// TestRecorderFails: a record that cannot be written is logged at Error
// with the request id, and the call's own result stands.
func TestRecorderFails(t *testing.T) {
	t.Parallel()
	rec := &recorder{err: errors.New("audit store is full")}
	log := testservice.NewLog()
	srv, _ := start(t, rec, log)
	for _, tt := range []struct {
		procedure, token, code string
	}{
		{testservice.LimitedPerUser, "reader", "ok"},
		{testservice.LimitedPerUser, "", "unauthenticated"},
		{testservice.ListItems, "reader", "ok"},
		{testservice.SyncItems, "reader", "ok"},
		{testservice.SyncItems, "", "unauthenticated"},
	} {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(shortName(tt.procedure)+"_"+tt.code+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				var h http.Header
				if tt.token != "" {
					h = testservice.Bearer(tt.token)
				}
				res := testservice.Call(t.Context(), srv.Client(protocol), tt.procedure, h, "a")
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s: a lost record must not change the call", got, res.Err, tt.code)
				}
				requestID := res.Meta.Get("X-Request-Id")
				lines := log.Lines(map[string]string{"request_id": requestID, "msg": "audit record lost"})
				if len(lines) != 1 {
					t.Fatalf("got %d lines for request %s, want 1; log:\n%s", len(lines), requestID, log)
				}
				for k, want := range map[string]string{"level": "ERROR", "procedure": tt.procedure, "error": "audit store is full"} {
					if got, _ := lines[0][k].(string); got != want {
						t.Errorf("log %s = %q, want %q", k, got, want)
					}
				}
			})
		}
	}
}

// TestClientGone: a call the client cancels is still recorded, with a
// context the recorder can still use.
func TestClientGone(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	table := testTable(t)
	reached := make(chan struct{})
	svc := testservice.NewService(func(ctx context.Context, _, _ string) error {
		close(reached)
		<-ctx.Done()
		return ctx.Err()
	})
	srv := testservice.Start(svc, connect.WithInterceptors(audit.NewInterceptor(table, rec, testservice.NewLog().Logger), authn.NewInterceptor(table, tokens)))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-reached
		cancel()
	}()
	res := testservice.Call(ctx, srv.Client(connect.ProtocolGRPC), testservice.LimitedPerUser, testservice.Bearer("reader"), "a")
	if got, want := res.Code(), "canceled"; got != want {
		t.Fatalf("client code = %s (%v), want %s", got, res.Err, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.all()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	events := rec.all()
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	if got, want := events[0].Code, "canceled"; got != want {
		t.Errorf("event code = %q, want %q", got, want)
	}
	rec.mu.Lock()
	live := rec.live[0]
	rec.mu.Unlock()
	if !live {
		t.Errorf("recorder got a canceled context, want one it can still write with")
	}
}

// TestAbortRecorded: a handler that aborts the response (a panic with
// http.ErrAbortHandler, which recovery lets through) is recorded as
// aborted, and the panic goes on to net/http.
func TestAbortRecorded(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.LimitedPerUser, testservice.ListItems, testservice.SyncItems} {
		t.Run(shortName(procedure), func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			table := testTable(t)
			log := testservice.NewLog()
			svc := testservice.NewService(func(context.Context, string, string) error { panic(http.ErrAbortHandler) })
			var panics testservice.Panics
			srv := testservice.NewServer(panics.Middleware(testservice.Handler(svc, connect.WithInterceptors(
				audit.NewInterceptor(table, rec, log.Logger), recovery.NewInterceptor(log.Logger), authn.NewInterceptor(table, tokens)))))
			t.Cleanup(srv.Close)
			res := testservice.Call(t.Context(), srv.Client(connect.ProtocolGRPC), procedure, testservice.Bearer("reader"), "a")
			if res.Err == nil {
				t.Fatal("call succeeded, want it aborted")
			}
			if got := panics.Values(); len(got) != 1 || got[0] != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				t.Errorf("panics out of the handler = %v, want [http.ErrAbortHandler]", got)
			}
			events := rec.all()
			if len(events) != 1 || events[0].Code != "aborted" || events[0].ActorID != "u-reader" {
				t.Errorf("events = %+v, want one, aborted, of u-reader", events)
			}
		})
	}
}

// TestRefused: Refused records a call the HTTP layer refused, for audited
// methods only, with the request id and client IP of the request.
func TestRefused(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	i := audit.NewInterceptor(testTable(t), rec, testservice.NewLog().Logger)
	refusal := authn.Unauthenticated("authentication required", "")
	h := requestid.Middleware(clientip.NewResolver(nil).Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		i.Refused(r, refusal)
	})))
	for _, tt := range []struct {
		path    string
		audited bool
	}{
		{testservice.LimitedPerUser, true},
		{testservice.ListItems, true},
		{testservice.SyncItems, true},
		{testservice.GetItem, false},
		{"/guard.testservice.v1.TestService/Unknown", false},
	} {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, tt.path, nil)
			r.RemoteAddr = "198.51.100.9:4000"
			h.ServeHTTP(w, r)
			requestID := w.Header().Get(requestid.Header)
			events := rec.of(requestID)
			if !tt.audited {
				if len(events) > 0 {
					t.Errorf("events = %+v, want none", events)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("got %d events, want 1", len(events))
			}
			want := audit.Event{Type: audit.TypeRPC, Time: events[0].Time, Procedure: tt.path, Code: "unauthenticated", ClientIP: "198.51.100.9", RequestID: requestID}
			if events[0] != want {
				t.Errorf("event = %+v, want %+v", events[0], want)
			}
		})
	}
}

// TestClientCalls: on a client, nothing is recorded.
func TestClientCalls(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := testservice.Start(testservice.NewService(nil))
	t.Cleanup(srv.Close)
	client := srv.Client(connect.ProtocolConnect, connect.WithInterceptors(audit.NewInterceptor(testTable(t), rec, testservice.NewLog().Logger)))
	for _, procedure := range []string{testservice.LimitedPerUser, testservice.ListItems, testservice.SyncItems} {
		if res := testservice.Call(t.Context(), client, procedure, nil, "a"); res.Err != nil {
			t.Fatalf("%s: %v", shortName(procedure), res.Err)
		}
	}
	if got := rec.all(); len(got) > 0 {
		t.Errorf("client calls recorded %+v, want nothing", got)
	}
}

// TestTypedRefusals: on every method, audited or not, a refusal by authz
// is recorded as authorization_denied and one by a rate limit as
// rate_limit_hit, with the actor; other outcomes of methods without audit
// are not recorded.
func TestTypedRefusals(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	table := testTable(t)
	toks := testservice.Tokens{
		"guest":  {UserID: "u-guest", Roles: []string{"guest"}},
		"reader": {UserID: "u-reader", Roles: []string{"reader"}},
	}
	srv := testservice.Start(testservice.NewService(failing), connect.WithInterceptors(
		audit.NewInterceptor(table, rec, testservice.NewLog().Logger),
		authn.NewInterceptor(table, toks),
		ratelimit.NewInterceptor(table, ratelimit.NewMemory()),
		authz.NewInterceptor(table),
	))
	t.Cleanup(srv.Close)
	client := srv.Client(connect.ProtocolConnect)

	res := testservice.Call(t.Context(), client, testservice.GetItem, testservice.Bearer("guest"), "a")
	if res.Code() != "permission_denied" {
		t.Fatalf("GetItem as guest: code = %s, want permission_denied", res.Code())
	}
	events := rec.of(res.Meta.Get("X-Request-Id"))
	if len(events) != 1 || events[0].Type != audit.TypeAuthorizationDenied || events[0].ActorID != "u-guest" || events[0].Procedure != testservice.GetItem {
		t.Errorf("events of a denied GetItem = %+v, want one authorization_denied by u-guest", events)
	}
	// LimitedPerIP has no audit; its third call is refused.
	var last testservice.Result
	for range 3 {
		last = testservice.Call(t.Context(), client, testservice.LimitedPerIP, nil, "a")
	}
	if last.Code() != "resource_exhausted" {
		t.Fatalf("third LimitedPerIP: code = %s, want resource_exhausted", last.Code())
	}
	events = rec.of(last.Meta.Get("X-Request-Id"))
	if len(events) != 1 || events[0].Type != audit.TypeRateLimitHit || events[0].Code != "resource_exhausted" {
		t.Errorf("events of a rate-limited call = %+v, want one rate_limit_hit", events)
	}
	if got := len(rec.all()); got != 2 {
		t.Errorf("recorded %d events, want 2 (allowed calls of methods without audit are not recorded)", got)
	}
}
