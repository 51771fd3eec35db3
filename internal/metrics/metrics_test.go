package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const getNote = "/guard.notes.v1.NoteService/GetNote"

// TestClosedLabels: values outside the closed sets become "unknown" (or
// are dropped), never a label of their own.
func TestClosedLabels(t *testing.T) {
	t.Parallel()
	m := metrics.New([]string{getNote})
	m.ObserveCall(getNote, connect.ProtocolGRPC, 0, time.Millisecond)
	m.ObserveCall("/evil.Service/"+strings.Repeat("x", 100), "http/9", connect.Code(99), time.Millisecond)
	m.ObserveDenial("/evil.Service/X", "because")
	m.ObserveAuthentication(authn.Method(42), "ok")
	m.ObserveAuthentication(authn.MethodAPIKey, "sort of")
	m.ObserveRateLimited("planet")
	m.ObserveLogin("maybe")
	want := `
# HELP guard_calls_total RPC calls answered, by procedure, protocol and the code the caller received (refusals in the HTTP layer included).
# TYPE guard_calls_total counter
guard_calls_total{code="ok",procedure="/guard.notes.v1.NoteService/GetNote",protocol="grpc"} 1
guard_calls_total{code="unknown",procedure="unknown",protocol="unknown"} 1
# HELP guard_authorization_denials_total Calls refused by authorization, by procedure and reason (role, scope, ownership).
# TYPE guard_authorization_denials_total counter
guard_authorization_denials_total{procedure="unknown",reason="unknown"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "guard_calls_total", "guard_authorization_denials_total"); err != nil {
		t.Error(err)
	}
	for _, family := range []string{"guard_authentications_total", "guard_rate_limit_refusals_total"} {
		n, err := testutil.GatherAndCount(m.Registry(), family)
		if err != nil {
			t.Fatal(err)
		}
		// Every series was made at New from the closed set; nothing was added.
		if family == "guard_authentications_total" && n != 3*4+3 || family == "guard_rate_limit_refusals_total" && n != 3 {
			t.Errorf("%s: %d series", family, n)
		}
	}
}

// TestObserveCallAllocates: after a label set's first call, a call
// allocates nothing.
func TestObserveCallAllocates(t *testing.T) {
	m := metrics.New([]string{getNote})
	m.ObserveCall(getNote, connect.ProtocolConnect, 0, time.Millisecond)
	m.ObserveDenial(getNote, "role")
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveCall(getNote, connect.ProtocolConnect, 0, time.Millisecond)
		m.ObserveDenial(getNote, "role")
		m.ObserveAuthentication(authn.MethodAccessToken, "ok")
		m.ObserveRateLimited("user")
	}); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// TestSessions: the count is read at most every 10 s, and a failed count
// exports no value rather than a stale one.
func TestSessions(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	calls := 0
	m.AddSessions(func(context.Context, time.Time) (int, error) {
		calls++
		return 7, nil
	}, slog.New(slog.DiscardHandler))
	for range 3 {
		n, err := testutil.GatherAndCount(m.Registry(), "guard_active_sessions")
		if err != nil || n != 1 {
			t.Fatalf("guard_active_sessions: %d series, %v", n, err)
		}
	}
	if calls != 1 {
		t.Errorf("3 scrapes counted the sessions %d times, want 1", calls)
	}
	fresh := metrics.New(nil)
	fresh.AddSessions(func(context.Context, time.Time) (int, error) { return 0, errors.New("down") }, slog.New(slog.DiscardHandler))
	if n, err := testutil.GatherAndCount(fresh.Registry(), "guard_active_sessions"); err != nil || n != 0 {
		t.Errorf("failed count: %d series, %v; want none", n, err)
	}
}

// TestHandler: the exposition includes the Go runtime and the process.
func TestHandler(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	m.AddTokenCache(func() (uint64, uint64) { return 5, 2 })
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total ", "guard_token_cache_hits_total 5", "guard_token_cache_misses_total 2"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkObserve is what metrics add to one authenticated call: its
// outcome and duration, and its credential's verdict.
func BenchmarkObserve(b *testing.B) {
	m := metrics.New([]string{getNote})
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveCall(getNote, connect.ProtocolConnect, 0, 50*time.Microsecond)
		m.ObserveAuthentication(authn.MethodAccessToken, "ok")
	}
}
