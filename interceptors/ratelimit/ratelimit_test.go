package ratelimit_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/internal/testservice"
	"github.com/connectguard/guard/interceptors/internal/testservice/gen/guard/testservice/v1/testservicev1connect"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/ratelimittest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

func TestError(t *testing.T) {
	t.Parallel()
	quota := ratelimit.Quota{Name: "method", Key: "k", Limit: 20, Window: time.Minute}
	tests := []struct {
		name      string
		retry     time.Duration
		wantRetry string
	}{
		{"one_second", time.Second, "1"},
		{"rounded_up", 94*time.Second + time.Millisecond, "95"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ratelimit.Error(ratelimit.NewDecision(false, tt.retry, ratelimit.QuotaState{Quota: quota, Reset: 30 * time.Second}))
			if got, want := err.Code(), connect.CodeResourceExhausted; got != want {
				t.Errorf("Code() = %v, want %v", got, want)
			}
			if msg := err.Message(); !strings.Contains(msg, "rate limit") || !strings.Contains(msg, tt.wantRetry) {
				t.Errorf("Message() = %q, want it to say rate limit and %s", msg, tt.wantRetry)
			}
			for header, want := range map[string]string{
				"Retry-After":      tt.wantRetry,
				"RateLimit-Policy": `"method";q=20;w=60`,
				"RateLimit":        `"method";r=0;t=30`,
			} {
				if got := err.Meta().Get(header); got != want {
					t.Errorf("Meta().Get(%q) = %q, want %q", header, got, want)
				}
			}
			var retry *errdetails.RetryInfo
			for _, d := range err.Details() {
				v, verr := d.Value()
				if verr != nil {
					t.Fatalf("detail %s: Value() error = %v", d.Type(), verr)
				}
				if ri, ok := v.(*errdetails.RetryInfo); ok {
					retry = ri
				}
			}
			if retry == nil {
				t.Fatalf("Details() has no google.rpc.RetryInfo, want one")
			}
			if got := retry.GetRetryDelay().AsDuration(); strconv.Itoa(int(got/time.Second)) != tt.wantRetry || got%time.Second != 0 {
				t.Errorf("RetryInfo.RetryDelay = %v, want %s s", got, tt.wantRetry)
			}
		})
	}
}

// wireError is the JSON body of a Connect unary error.
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type string `json:"type"`
	} `json:"details"`
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	const limit = 3
	clock := ratelimittest.NewClock(t0)
	l := ratelimit.NewMemory(ratelimit.WithClock(clock.Now))
	var served int
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	})
	h := clientip.NewResolver(nil).Middleware(ratelimit.Middleware(l, limit, time.Minute, nil, next))

	call := func(remote, contentType string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/ListNotes", strings.NewReader("{}"))
		r.RemoteAddr = remote
		r.Header.Set("Content-Type", contentType)
		// Spoofing the header must not buy a fresh budget: no proxy is trusted.
		r.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(served+1))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}

	for i := range limit {
		if rec := call("203.0.113.7:40000", "application/json"); rec.Code != http.StatusOK {
			t.Fatalf("request %d: status = %d, want 200", i+1, rec.Code)
		}
	}
	// Another port of the same address spends the same budget.
	rec := call("203.0.113.7:40001", "application/json")
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("request %d: status = %d, want 429", limit+1, rec.Code)
	}
	if served != limit {
		t.Errorf("next handler served %d requests, want %d: a refused request reached it", served, limit)
	}
	retryAfter := rec.Header().Get("Retry-After")
	secs, err := strconv.Atoi(retryAfter)
	if err != nil || secs < 1 || secs > 120 {
		t.Errorf("Retry-After = %q, want whole seconds in 1..120", retryAfter)
	}
	if got, want := rec.Header().Get("RateLimit-Policy"), `"ip";q=3;w=60`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var body wireError
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a Connect error: %v", rec.Body, err)
	}
	if got, want := body.Code, "resource_exhausted"; got != want {
		t.Errorf("body code = %q, want %q", got, want)
	}
	if len(body.Details) != 1 || body.Details[0].Type != "google.rpc.RetryInfo" {
		t.Errorf("body details = %+v, want one google.rpc.RetryInfo", body.Details)
	}

	t.Run("grpc_caller_gets_grpc_status", func(t *testing.T) {
		rec := call("203.0.113.7:40002", "application/grpc")
		if rec.Code != http.StatusOK {
			t.Errorf("status = %d, want 200 (gRPC carries the error in its status)", rec.Code)
		}
		if got, want := rec.Header().Get("Grpc-Status"), strconv.Itoa(int(connect.CodeResourceExhausted)); got != want {
			t.Errorf("Grpc-Status = %q, want %q", got, want)
		}
	})
	t.Run("other_client_has_own_budget", func(t *testing.T) {
		if rec := call("198.51.100.20:5000", "application/json"); rec.Code != http.StatusOK {
			t.Errorf("status = %d, want 200", rec.Code)
		}
	})
	t.Run("allowed_after_retry_after", func(t *testing.T) {
		clock.Advance(time.Duration(secs) * time.Second)
		if rec := call("203.0.113.7:40003", "application/json"); rec.Code != http.StatusOK {
			t.Errorf("status after waiting Retry-After = %d, want 200", rec.Code)
		}
	})
	if served != limit+2 {
		t.Errorf("next handler served %d requests, want %d", served, limit+2)
	}
}

// TestMiddleware_realServer runs the middleware behind a real HTTP server.
func TestMiddleware_realServer(t *testing.T) {
	t.Parallel()
	l := ratelimit.NewMemory(ratelimit.WithClock(ratelimittest.NewClock(t0).Now))
	srv := httptest.NewServer(clientip.NewResolver(nil).Middleware(
		ratelimit.Middleware(l, 2, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))))
	t.Cleanup(srv.Close)
	var codes []int
	for range 3 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/WhoAmI", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("POST error = %v", err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	want := []int{http.StatusNoContent, http.StatusNoContent, http.StatusTooManyRequests}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("status codes = %v, want %v", codes, want)
			break
		}
	}
}

func TestError_isConnectError(t *testing.T) {
	t.Parallel()
	var err error = ratelimit.Error(ratelimit.NewDecision(false, 3*time.Second))
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Error() = %T, want *connect.Error", err)
	}
	if strings.Contains(ce.Message(), "\n") {
		t.Errorf("Message() = %q, want one line", ce.Message())
	}
}

var tokens = testservice.Tokens{
	"alice": {UserID: "u-alice", Roles: []string{"reader"}},
	"bob":   {UserID: "u-bob", Roles: []string{"reader"}},
	"carol": {UserID: "u-carol", Roles: []string{"reader"}},
}

// limited serves the test service behind authn and the rate-limit
// interceptor, spending a limiter on a fake clock.
type limited struct {
	srv   *testservice.Server
	svc   *testservice.Service
	clock *ratelimittest.Clock
}

func startLimited(t *testing.T) *limited {
	t.Helper()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	l := &limited{svc: testservice.NewService(nil), clock: ratelimittest.NewClock(t0)}
	l.srv = testservice.Start(l.svc, connect.WithInterceptors(
		authn.NewInterceptor(table, tokens),
		ratelimit.NewInterceptor(table, ratelimit.NewMemory(ratelimit.WithClock(l.clock.Now)))))
	t.Cleanup(l.srv.Close)
	return l
}

// call calls procedure as user (none when "") from the client address ip
// over protocol, and returns the result and whether the handler ran.
func (l *limited) call(t *testing.T, protocol, procedure, user, ip string) (testservice.Result, bool) {
	t.Helper()
	h := http.Header{"X-Forwarded-For": {ip}}
	if user != "" {
		h.Set("Authorization", "Bearer "+user)
	}
	before := len(l.svc.Reached())
	res := testservice.Call(t.Context(), l.srv.Client(protocol), procedure, h, "a")
	return res, len(l.svc.Reached()) > before
}

// checkRefusal checks a rate-limit refusal of a budget of limit calls:
// resource_exhausted, nothing handled, Retry-After, RateLimit-* and a
// google.rpc.RetryInfo detail that agree. It returns the Retry-After.
func checkRefusal(t *testing.T, res testservice.Result, handled bool, limit int) time.Duration {
	t.Helper()
	if got, want := res.Code(), "resource_exhausted"; got != want {
		t.Fatalf("code = %s (%v), want %s", got, res.Err, want)
	}
	if handled {
		t.Errorf("handler reached by a refused call")
	}
	var ce *connect.Error
	if !errors.As(res.Err, &ce) {
		t.Fatalf("error %T is not a *connect.Error", res.Err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok {
				retry = ri
			}
		}
	}
	if retry == nil {
		t.Fatal("no google.rpc.RetryInfo detail")
	}
	delay := retry.GetRetryDelay().AsDuration()
	if delay <= 0 || delay > 2*time.Minute {
		t.Errorf("RetryInfo delay = %v, want within two windows", delay)
	}
	secs := strconv.Itoa(int(delay / time.Second))
	if got := res.Meta.Values("Retry-After"); len(got) != 1 || got[0] != secs {
		t.Errorf("Retry-After = %q, want %q", got, secs)
	}
	policies := strings.Join(res.Meta.Values("RateLimit-Policy"), ",")
	if !strings.Contains(policies, ";q="+strconv.Itoa(limit)+";") {
		t.Errorf("RateLimit-Policy = %q, want a quota of %d", policies, limit)
	}
	if state := strings.Join(res.Meta.Values("RateLimit"), ","); !strings.Contains(state, ";r=0;") {
		t.Errorf("RateLimit = %q, want a quota with none remaining", state)
	}
	if got, want := res.Message(), "rate limit exceeded: retry in "+secs+" s"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	return delay
}

func checkAllowed(t *testing.T, what string, res testservice.Result, handled bool) {
	t.Helper()
	if res.Err != nil {
		t.Fatalf("%s: error = %v, want none", what, res.Err)
	}
	if !handled {
		t.Errorf("%s: handler not reached", what)
	}
}

// TestInterceptor_perUser: a per-user budget is the user's wherever the
// calls come from, and other users have their own; unary and server
// streaming.
func TestInterceptor_perUser(t *testing.T) {
	t.Parallel()
	for _, procedure := range []string{testservice.LimitedPerUser, testservice.ListItems} {
		for _, protocol := range testservice.Protocols() {
			t.Run(procedure[strings.LastIndex(procedure, "/")+1:]+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				l := startLimited(t)
				for i := range 2 {
					res, handled := l.call(t, protocol, procedure, "alice", "192.0.2.1")
					checkAllowed(t, "alice call "+strconv.Itoa(i+1), res, handled)
				}
				res, handled := l.call(t, protocol, procedure, "alice", "192.0.2.1")
				retry := checkRefusal(t, res, handled, 2)
				res, handled = l.call(t, protocol, procedure, "alice", "198.51.100.1")
				checkRefusal(t, res, handled, 2)
				res, handled = l.call(t, protocol, procedure, "bob", "192.0.2.1")
				checkAllowed(t, "bob, same address", res, handled)
				l.clock.Advance(retry)
				res, handled = l.call(t, protocol, procedure, "alice", "192.0.2.1")
				checkAllowed(t, "alice after Retry-After", res, handled)
			})
		}
	}
}

// TestInterceptor_perIP: a per-IP budget is the client address's whoever
// calls, with or without a credential; unary (public) and bidi.
func TestInterceptor_perIP(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		procedure    string
		first, other string // users
	}{
		{testservice.LimitedPerIP, "", ""},
		{testservice.SyncItems, "alice", "bob"},
	} {
		for _, protocol := range testservice.Protocols() {
			t.Run(tt.procedure[strings.LastIndex(tt.procedure, "/")+1:]+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				l := startLimited(t)
				for i := range 2 {
					res, handled := l.call(t, protocol, tt.procedure, tt.first, "192.0.2.1")
					checkAllowed(t, "call "+strconv.Itoa(i+1), res, handled)
				}
				res, handled := l.call(t, protocol, tt.procedure, tt.first, "192.0.2.1")
				retry := checkRefusal(t, res, handled, 2)
				res, handled = l.call(t, protocol, tt.procedure, tt.other, "192.0.2.1")
				checkRefusal(t, res, handled, 2)
				res, handled = l.call(t, protocol, tt.procedure, tt.first, "198.51.100.1")
				checkAllowed(t, "other address", res, handled)
				l.clock.Advance(retry)
				res, handled = l.call(t, protocol, tt.procedure, tt.first, "192.0.2.1")
				checkAllowed(t, "after Retry-After", res, handled)
			})
		}
	}
}

// TestInterceptor_perUserAndIP: with both keys, a call must fit the user's
// budget and the address's.
func TestInterceptor_perUserAndIP(t *testing.T) {
	t.Parallel()
	for _, protocol := range testservice.Protocols() {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			l := startLimited(t)
			const procedure = testservice.LimitedPerUserAndIP
			for i := range 2 {
				res, handled := l.call(t, protocol, procedure, "alice", "192.0.2.1")
				checkAllowed(t, "alice call "+strconv.Itoa(i+1), res, handled)
			}
			res, handled := l.call(t, protocol, procedure, "alice", "192.0.2.1")
			checkRefusal(t, res, handled, 2)
			// bob's budget is fresh, the address's is spent.
			res, handled = l.call(t, protocol, procedure, "bob", "192.0.2.1")
			checkRefusal(t, res, handled, 2)
			// The address is fresh, alice's budget is spent.
			res, handled = l.call(t, protocol, procedure, "alice", "198.51.100.1")
			checkRefusal(t, res, handled, 2)
			res, handled = l.call(t, protocol, procedure, "carol", "198.51.100.1")
			checkAllowed(t, "carol, other address", res, handled)
		})
	}
}

// TestInterceptor_refusalSpendsNothing: with both keys, a call the address's
// budget refuses spends nothing of the user's (and the other way round), so
// whoever exhausts a shared address (an office NAT) does not also burn the
// budgets of everyone behind it.
func TestInterceptor_refusalSpendsNothing(t *testing.T) {
	t.Parallel()
	for _, protocol := range testservice.Protocols() {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			l := startLimited(t)
			const procedure = testservice.LimitedPerUserAndIP
			const shared, home = "192.0.2.1", "198.51.100.7"
			for i := range 2 { // alice exhausts the shared address
				res, handled := l.call(t, protocol, procedure, "alice", shared)
				checkAllowed(t, "alice call "+strconv.Itoa(i+1), res, handled)
			}
			for range 2 { // bob is refused there twice...
				res, handled := l.call(t, protocol, procedure, "bob", shared)
				checkRefusal(t, res, handled, 2)
			}
			for i := range 2 { // ...and still has his whole budget elsewhere
				res, handled := l.call(t, protocol, procedure, "bob", home)
				checkAllowed(t, "bob at home, call "+strconv.Itoa(i+1), res, handled)
			}
			// bob's budget is spent now: his refusals at a fresh address
			// spend nothing of that address's.
			for range 3 {
				res, handled := l.call(t, protocol, procedure, "bob", "203.0.113.9")
				checkRefusal(t, res, handled, 2)
			}
			for i := range 2 {
				res, handled := l.call(t, protocol, procedure, "carol", "203.0.113.9")
				checkAllowed(t, "carol at the fresh address, call "+strconv.Itoa(i+1), res, handled)
			}
		})
	}
}

// TestInterceptor_unlimited: methods without a rate_limit are not counted.
func TestInterceptor_unlimited(t *testing.T) {
	t.Parallel()
	l := startLimited(t)
	for i := range 5 {
		res, handled := l.call(t, connect.ProtocolGRPC, testservice.GetItem, "alice", "192.0.2.1")
		checkAllowed(t, "GetItem call "+strconv.Itoa(i+1), res, handled)
	}
}

// TestInterceptor_failsClosed: without authn before it, a per-user limit
// refuses the call as unauthenticated; a procedure missing from the table
// is denied.
func TestInterceptor_failsClosed(t *testing.T) {
	t.Parallel()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	empty, err := policy.NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		table     *policy.Table
		procedure string
		code, msg string
	}{
		{"per_user_without_principal_unary", table, testservice.LimitedPerUser, "unauthenticated", "authentication required"},
		{"per_user_without_principal_server_stream", table, testservice.ListItems, "unauthenticated", "authentication required"},
		{"no_policy_unary", empty, testservice.Ping, "permission_denied", "no access policy for this procedure"},
		{"no_policy_server_stream", empty, testservice.ListItems, "permission_denied", "no access policy for this procedure"},
		{"no_policy_bidi", empty, testservice.SyncItems, "permission_denied", "no access policy for this procedure"},
	}
	for _, tt := range tests {
		for _, protocol := range []string{connect.ProtocolConnect, connect.ProtocolGRPC} {
			t.Run(tt.name+"/"+protocol, func(t *testing.T) {
				t.Parallel()
				svc := testservice.NewService(nil)
				srv := testservice.Start(svc, connect.WithInterceptors(ratelimit.NewInterceptor(tt.table, ratelimit.NewMemory())))
				t.Cleanup(srv.Close)
				res := testservice.Call(t.Context(), srv.Client(protocol), tt.procedure, testservice.Bearer("alice"), "a")
				if got := res.Code(); got != tt.code {
					t.Fatalf("code = %s (%v), want %s", got, res.Err, tt.code)
				}
				if got := res.Message(); got != tt.msg {
					t.Errorf("message = %q, want %q", got, tt.msg)
				}
				if got := svc.Reached(); len(got) > 0 {
					t.Errorf("handler reached by %v, want nothing", got)
				}
			})
		}
	}
}

// TestInterceptor_peerAddress: without clientip.Middleware, a per-IP
// budget is the direct peer's.
func TestInterceptor_peerAddress(t *testing.T) {
	t.Parallel()
	table, err := testservice.Table()
	if err != nil {
		t.Fatal(err)
	}
	svc := testservice.NewService(nil)
	srv := httptest.NewUnstartedServer(testservice.Handler(svc, connect.WithInterceptors(ratelimit.NewInterceptor(table, ratelimit.NewMemory()))))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := testservicev1connect.NewTestServiceClient(srv.Client(), srv.URL, connect.WithGRPC())
	var codes []string
	for i := range 3 {
		// A new X-Forwarded-For each time buys nothing: no proxy is trusted.
		h := http.Header{"X-Forwarded-For": {"192.0.2." + strconv.Itoa(i+1)}}
		codes = append(codes, testservice.Call(t.Context(), client, testservice.LimitedPerIP, h, "a").Code())
	}
	if got, want := strings.Join(codes, ","), "ok,ok,resource_exhausted"; got != want {
		t.Errorf("codes = %s, want %s", got, want)
	}
	if got := len(svc.Reached()); got != 2 {
		t.Errorf("handler reached %d times, want 2", got)
	}
}

// TestMiddleware_withoutClientIP: without clientip in front, the budget is
// the peer's network, never one bucket shared by every client.
func TestMiddleware_withoutClientIP(t *testing.T) {
	t.Parallel()
	l := ratelimit.NewMemory(ratelimit.WithClock(ratelimittest.NewClock(t0).Now))
	h := ratelimit.Middleware(l, 1, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	call := func(remote string) int {
		r := httptest.NewRequest(http.MethodPost, "/svc/Method", strings.NewReader("{}"))
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	if code := call("192.0.2.1:1000"); code != http.StatusOK {
		t.Fatalf("first client: HTTP %d", code)
	}
	if code := call("192.0.2.1:2000"); code != http.StatusTooManyRequests {
		t.Errorf("first client again: HTTP %d, want 429", code)
	}
	if code := call("198.51.100.2:1000"); code != http.StatusOK {
		t.Errorf("another client: HTTP %d, want 200 (its own budget)", code)
	}
	if code := call("[2001:db8::1]:1000"); code != http.StatusOK {
		t.Errorf("an IPv6 client: HTTP %d, want 200", code)
	}
	if code := call("[2001:db8::2]:1000"); code != http.StatusTooManyRequests {
		t.Errorf("the same /64: HTTP %d, want 429", code)
	}
}

// TestMiddleware_onRefused: OnRefused is told of each refusal, with an
// error that is ErrLimited, and of nothing else.
func TestMiddleware_onRefused(t *testing.T) {
	t.Parallel()
	l := ratelimit.NewMemory(ratelimit.WithClock(ratelimittest.NewClock(t0).Now))
	var refused []error
	h := ratelimit.Middleware(l, 1, time.Minute, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}),
		ratelimit.OnRefused(func(_ *http.Request, err error) { refused = append(refused, err) }))
	for range 3 {
		r := httptest.NewRequest(http.MethodPost, "/svc/Method", strings.NewReader("{}"))
		r.RemoteAddr = "192.0.2.1:1000"
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if len(refused) != 2 {
		t.Fatalf("OnRefused called %d times, want 2", len(refused))
	}
	for _, err := range refused {
		if !errors.Is(err, ratelimit.ErrLimited) {
			t.Errorf("refusal %v is not ErrLimited", err)
		}
	}
}
