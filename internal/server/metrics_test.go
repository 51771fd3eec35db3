package server_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/server"
	"github.com/connectguard/guard/internal/servertest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/durationpb"
)

// metricsAddr returns the address the server logged for -metrics-addr.
func metricsAddr(t *testing.T, srv *servertest.Server) string {
	t.Helper()
	m := regexp.MustCompile(`msg="serving metrics" addr=(127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(srv.Logs())
	if m == nil {
		t.Fatalf("no metrics listener in the log:\n%s", srv.Logs())
	}
	return m[1]
}

// scrape reads and parses /metrics at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the value of the series of family with exactly labels (name,
// value pairs), and whether there is one.
func value(families map[string]*dto.MetricFamily, family string, labels ...string) (float64, bool) {
	f, ok := families[family]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.GetUntyped() != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// TestMetrics: what attacks and ordinary use look like on /metrics, served
// on -metrics-addr and never on the API's address.
func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-lockout-failures=2", "-user-rate-limit=40")
	addr := metricsAddr(t, srv)
	ctx := context.Background()
	const (
		getNote    = "/guard.notes.v1.NoteService/GetNote"
		createNote = "/guard.notes.v1.NoteService/CreateNote"
	)

	owner := srv.CreateUser("owner@example.com", "member")
	other := srv.CreateUser("other@example.com", "member")
	viewer := srv.CreateUser("viewer@example.com", "viewer")
	flooder := srv.CreateUser("flooder@example.com", "member")

	// Successful calls, on two protocols.
	oc := srv.Client(goclient.Connect, owner.Token)
	note, err := oc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t", Body: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	id := note.Msg.GetNote().GetId()
	for _, p := range []goclient.Protocol{goclient.Connect, goclient.GRPC} {
		if _, err := srv.Client(p, owner.Token).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id})); err != nil {
			t.Fatalf("GetNote over %v: %v", p, err)
		}
	}
	// And over REST, which the metrics name as such.
	rq, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/notes/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	rq.Header.Set("Authorization", "Bearer "+owner.Token)
	rres, err := srv.HTTPClient().Do(rq)
	if err != nil {
		t.Fatal(err)
	}
	_ = rres.Body.Close()
	if rres.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/notes/%s: HTTP %d", id, rres.StatusCode)
	}
	// A permission denial (role) and an ownership denial.
	_, err = srv.Client(goclient.Connect, viewer.Token).Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t", Body: "b"}))
	wantCode(t, "viewer CreateNote", err, connect.CodePermissionDenied)
	_, err = srv.Client(goclient.Connect, other.Token).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
	wantCode(t, "other's GetNote", err, connect.CodeNotFound)
	// A scope denial: a notes:read key writing.
	key, err := oc.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{Name: "reader", Scopes: []string{"notes:read"}, Ttl: durationpb.New(time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	kc := goclient.New(srv.URL, goclient.WithAPIKey(key.Msg.GetKey()), goclient.WithHTTPClient(srv.HTTPClient()))
	_, err = kc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t", Body: "b"}))
	wantCode(t, "notes:read key CreateNote", err, connect.CodePermissionDenied)
	// A forged token, and no credential at all (refused in the HTTP layer).
	_, err = srv.Client(goclient.Connect, "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln").Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
	wantCode(t, "forged token", err, connect.CodeUnauthenticated)
	_, err = srv.Client(goclient.Connect, "").Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
	wantCode(t, "no credential", err, connect.CodeUnauthenticated)
	// Failed logins up to a lockout, and one refused by it.
	anon := srv.Client(goclient.Connect, "")
	for i, want := range []connect.Code{connect.CodeUnauthenticated, connect.CodeUnauthenticated, connect.CodeResourceExhausted} {
		_, err := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: owner.Email, Password: "wrong password " + fmt.Sprint(i)}))
		wantCode(t, fmt.Sprintf("bad login %d", i), err, want)
	}
	// A refresh token presented twice.
	login, err := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: other.Email, Password: other.Password}))
	if err != nil {
		t.Fatal(err)
	}
	rt := login.Msg.GetRefreshToken()
	if _, err := anon.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: rt})); err != nil {
		t.Fatal(err)
	}
	_, err = anon.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: rt}))
	wantCode(t, "reused refresh token", err, connect.CodeUnauthenticated)
	// A user over the per-user budget.
	fc := srv.Client(goclient.Connect, flooder.Token)
	for i := 0; ; i++ {
		_, err := fc.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		if connect.CodeOf(err) == connect.CodeResourceExhausted {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("WhoAmI %d: %v; want a refusal after 40", i, err)
		}
	}

	families := scrape(t, addr)
	for _, tt := range []struct {
		family string
		labels []string
		want   float64 // exact, unless atLeast
		atLst  bool
	}{
		{"guard_calls_total", []string{"procedure", getNote, "protocol", "connect", "code", "ok"}, 1, false},
		{"guard_calls_total", []string{"procedure", getNote, "protocol", "grpc", "code", "ok"}, 1, false},
		{"guard_calls_total", []string{"procedure", getNote, "protocol", "rest", "code", "ok"}, 1, false},
		{"guard_calls_total", []string{"procedure", createNote, "protocol", "connect", "code", "permission_denied"}, 2, false},
		{"guard_calls_total", []string{"procedure", getNote, "protocol", "connect", "code", "not_found"}, 1, false},
		{"guard_calls_total", []string{"procedure", getNote, "protocol", "connect", "code", "unauthenticated"}, 2, false},
		{"guard_calls_total", []string{"procedure", "/guard.auth.v1.AuthService/Login", "protocol", "connect", "code", "resource_exhausted"}, 1, false},
		{"guard_call_duration_seconds", []string{"procedure", getNote, "protocol", "connect"}, 4, false},
		{"guard_authentications_total", []string{"method", "password", "result", "ok"}, 6, true},
		{"guard_authentications_total", []string{"method", "password", "result", "invalid"}, 2, false},
		{"guard_authentications_total", []string{"method", "password", "result", "locked_out"}, 1, false},
		{"guard_authentications_total", []string{"method", "token", "result", "ok"}, 40, true},
		{"guard_authentications_total", []string{"method", "token", "result", "invalid"}, 1, false},
		{"guard_authentications_total", []string{"method", "api_key", "result", "ok"}, 1, false},
		{"guard_authorization_denials_total", []string{"procedure", createNote, "reason", "role"}, 1, false},
		{"guard_authorization_denials_total", []string{"procedure", createNote, "reason", "scope"}, 1, false},
		{"guard_authorization_denials_total", []string{"procedure", getNote, "reason", "ownership"}, 1, false},
		{"guard_rate_limit_refusals_total", []string{"kind", "user"}, 1, false},
		{"guard_rate_limit_refusals_total", []string{"kind", "ip"}, 0, false},
		{"guard_login_lockout_refusals_total", nil, 1, false},
		{"guard_lockouts_started_total", nil, 1, false},
		{"guard_refresh_token_reuse_total", nil, 1, false},
		{"guard_active_sessions", nil, 5, true},
		{"guard_token_cache_hits_total", nil, 40, true},
		{"guard_token_cache_misses_total", nil, 1, true},
		{"go_goroutines", nil, 1, true},
		{"process_cpu_seconds_total", nil, 0, true},
	} {
		got, ok := value(families, tt.family, tt.labels...)
		switch {
		case !ok:
			t.Errorf("%s%v: no such series", tt.family, tt.labels)
		case tt.atLst && got < tt.want:
			t.Errorf("%s%v = %v, want at least %v", tt.family, tt.labels, got, tt.want)
		case !tt.atLst && got != tt.want:
			t.Errorf("%s%v = %v, want %v", tt.family, tt.labels, got, tt.want)
		}
	}

	// The API's address serves no metrics.
	res, err := srv.HTTPClient().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API's address: HTTP %d, want 404", res.StatusCode)
	}
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != want {
		t.Errorf("%s: %v (code %v), want %v", what, err, got, want)
	}
}

// TestMetricsLabelsAreClosed: requests with random procedure names, paths,
// content types and headers never make a series with a label value
// outside the closed sets (the policy table's procedures, connect's
// protocols and codes, Guard's constants), however many there are.
func TestMetricsLabelsAreClosed(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-ip-rate-limit=100000")
	addr := metricsAddr(t, srv)
	table, err := server.PolicyTable()
	if err != nil {
		t.Fatal(err)
	}
	procedures := []string{"unknown"}
	for _, r := range table.Rules() {
		procedures = append(procedures, r.Procedure)
	}
	codes := []string{"ok"}
	for c := connect.Code(1); c <= 16; c++ {
		codes = append(codes, c.String())
	}
	closed := map[string][]string{
		"procedure": procedures,
		"protocol":  {"connect", "grpc", "grpcweb", "unknown"},
		"code":      codes,
		"method":    {"token", "api_key", "cookie", "password"},
		"result":    {"ok", "invalid", "expired", "error", "locked_out"},
		"reason":    {"role", "scope", "ownership", "unknown"},
		"kind":      {"ip", "user", "method", "enumeration", "credential_stuffing", "refresh_reuse", "invalid_token_burst"},
	}
	token := srv.AdminToken()
	rnd := func() string { return fmt.Sprintf("x%016x", rand.Uint64()) }
	contentTypes := []string{"application/proto", "application/json", "application/grpc", "application/grpc+proto",
		"application/grpc-web+proto", "application/connect+proto", "text/plain"}
	client := srv.HTTPClient()
	send := func(path, contentType string, header http.Header) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("{}"))
		if err != nil {
			return // a path that is no URL never reaches the server
		}
		req.Header = header
		req.Header.Set("Content-Type", contentType)
		res, err := client.Do(req)
		if err != nil {
			return // a refusal on the wire is as good as any
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	var seen []string // random values sent
	flood := func(n int, known bool) {
		for i := range n {
			ct := contentTypes[rand.IntN(len(contentTypes))]
			h := http.Header{}
			h.Set("X-"+rnd(), rnd())
			h.Set("Connect-Protocol-Version", "1")
			h.Set("Grpc-Timeout", rnd())
			if i%2 == 0 {
				h.Set("Authorization", "Bearer "+token)
			}
			name := rnd()
			seen = append(seen, name)
			switch {
			case known: // a known procedure with random headers and content type
				send("/guard.notes.v1.NoteService/GetNote", ct, h)
			case i%3 == 0: // an unknown method of a known service
				send("/guard.notes.v1.NoteService/"+name, ct, h)
			case i%3 == 1: // an unknown service
				send("/"+name+".v1."+name+"/"+name, ct, h)
			default: // a path that is no procedure
				send("/"+name+"/"+name+"/"+name+"?"+name+"="+name, ct, h)
			}
		}
	}
	count := func(families map[string]*dto.MetricFamily) int {
		n := 0
		for name, f := range families {
			if strings.HasPrefix(name, "guard_") {
				n += len(f.GetMetric())
			}
		}
		return n
	}
	flood(100, true)
	before := count(scrape(t, addr))
	flood(300, false)
	if after := count(scrape(t, addr)); after != before {
		t.Errorf("unknown procedures and paths: %d guard_ series after, %d before; want no new series", after, before)
	}

	families := scrape(t, addr)
	series := 0
	for name, f := range families {
		if !strings.HasPrefix(name, "guard_") {
			continue
		}
		for _, m := range f.GetMetric() {
			series++
			for _, l := range m.GetLabel() {
				allowed, ok := closed[l.GetName()]
				if !ok {
					t.Errorf("%s: label %q is not one of the closed sets", name, l.GetName())
					continue
				}
				if !slices.Contains(allowed, l.GetValue()) {
					t.Errorf("%s{%s=%q}: a value outside the closed set", name, l.GetName(), l.GetValue())
				}
				for _, r := range seen {
					if strings.Contains(l.GetValue(), r) {
						t.Errorf("%s{%s=%q}: a caller's value became a label", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	// The bound: every label set the closed sets allow, which no flood
	// can exceed (calls, durations, authentications, denials, limits, and
	// the unlabelled ones).
	p, pr, c := len(procedures), len(closed["protocol"]), len(closed["code"])
	bound := p*pr*c + p*pr + 4*5 + p*4 + 3 + 5
	if series > bound {
		t.Errorf("%d guard_ series, want at most %d", series, bound)
	}
	t.Logf("%d guard_ series after %d random requests (bound %d)", series, len(seen), bound)
}
