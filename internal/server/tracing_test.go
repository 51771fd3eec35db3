package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/interceptors/tracing"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tracedEnv is the full chain of a benchEnv mounted again with tracing
// into an in-memory exporter and a JSON access log.
type tracedEnv struct {
	*benchEnv
	h   http.Handler
	exp *tracetest.InMemoryExporter
	log *lockedBuffer
}

func newTracedEnv(t *testing.T, args ...string) *tracedEnv {
	t.Helper()
	e := newBenchEnv(t, args...)
	te := &tracedEnv{benchEnv: e, exp: tracetest.NewInMemoryExporter(), log: &lockedBuffer{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(te.exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	d := e.deps
	d.tracer = tp
	d.log = slog.New(slog.NewJSONHandler(te.log, nil))
	h, err := mount(e.cfg, e.services, d)
	if err != nil {
		t.Fatal(err)
	}
	te.h = h
	return te
}

// rpc calls procedure with msg over Connect (binary), with the bearer
// token tok ("" for none), and returns the HTTP status and the answer.
func (e *tracedEnv) rpc(t *testing.T, procedure, tok string, msg proto.Message) (int, []byte) {
	t.Helper()
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, procedure, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/proto")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// decisions returns the decision spans, by decision, and the call's span.
func decisions(t *testing.T, spans tracetest.SpanStubs, procedure string) (map[string]tracetest.SpanStub, tracetest.SpanStub) {
	t.Helper()
	var call tracetest.SpanStub
	for _, s := range spans {
		if s.Name == strings.TrimPrefix(procedure, "/") && s.SpanKind == trace.SpanKindServer {
			call = s
		}
	}
	if !call.SpanContext.IsValid() {
		t.Fatalf("got no server span %s among %d spans", procedure, len(spans))
	}
	got := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		if name, ok := strings.CutPrefix(s.Name, tracing.SpanPrefix); ok {
			if s.Parent.SpanID() != call.SpanContext.SpanID() || s.Parent.TraceID() != call.SpanContext.TraceID() {
				t.Errorf("decision span %s is not a child of the call's span", s.Name)
			}
			if _, dup := got[name]; dup {
				t.Errorf("got two %s decision spans", name)
			}
			got[name] = s
		}
	}
	return got, call
}

func attr(s tracetest.SpanStub, key attribute.Key) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestTraces: each call through the full chain makes the call's span and
// one span per decision taken, children of it, saying what was decided;
// a refusal is marked on the decision that made it, and no decision is
// traced after it. No span carries a password, token or note body, and
// the access line carries the call's trace and span ids.
func TestTraces(t *testing.T) {
	t.Parallel()
	e := newTracedEnv(t, "-user-rate-limit=6")
	const notePath, whoPath = "/guard.notes.v1.NoteService/GetNote", "/guard.auth.v1.AuthService/WhoAmI"
	var noteID string
	{
		var req notesv1.GetNoteRequest
		if err := proto.Unmarshal(e.body, &req); err != nil {
			t.Fatal(err)
		}
		noteID = req.GetId()
	}
	sig := strings.Split(e.token, ".")
	forged := []byte(e.token)
	i := len(sig[0]) + len(sig[1]) + 2 + 5 // inside the signature
	forged[i] = map[bool]byte{true: 'B', false: 'A'}[forged[i] == 'A']

	secrets := []string{e.token, string(forged), sig[2], "bench password 1", "a note read by the benchmark"}
	all := tracetest.SpanStubs{}
	for _, tt := range []struct {
		name      string
		procedure string
		token     string
		msg       proto.Message
		status    int
		allowed   []string
		refused   string // the decision that refused, "" for none
		code      string
		check     func(t *testing.T, refused tracetest.SpanStub)
	}{
		{name: "ok", procedure: notePath, token: e.token, msg: &notesv1.GetNoteRequest{Id: noteID}, status: 200,
			allowed: []string{"authn", "ratelimit", "authz", "validate", "ownership"}},
		{name: "login", procedure: "/guard.auth.v1.AuthService/Login", msg: &authv1.LoginRequest{Email: "bench@example.com", Password: "bench password 1"},
			status: 200, allowed: []string{"authn", "ratelimit", "authz", "validate", "ownership"}},
		{name: "bad_token", procedure: whoPath, token: string(forged), msg: &authv1.WhoAmIRequest{}, status: 401,
			refused: "authn", code: "unauthenticated"},
		{name: "permission_denied", procedure: "/guard.admin.v1.AdminService/ListUsers", token: e.token, msg: &adminv1.ListUsersRequest{},
			status: 403, allowed: []string{"authn", "ratelimit"}, refused: "authz", code: "permission_denied"},
		{name: "invalid_input", procedure: notePath, token: e.token, msg: &notesv1.GetNoteRequest{Id: "NOT-AN-ID"}, status: 400,
			allowed: []string{"authn", "ratelimit", "authz"}, refused: "validate", code: "invalid_argument",
			check: func(t *testing.T, s tracetest.SpanStub) {
				if got := attr(s, tracing.AttrViolations); !strings.Contains(got, "id:string.pattern") {
					t.Errorf("got violations %q, want id:string.pattern", got)
				}
			}},
		{name: "hidden", procedure: notePath, token: e.token, msg: &notesv1.GetNoteRequest{Id: strings.Repeat("a", 26)}, status: 404,
			allowed: []string{"authn", "ratelimit", "authz", "validate"}, refused: "ownership", code: "not_found"},
		{name: "rate_limited", procedure: whoPath, token: e.token, msg: &authv1.WhoAmIRequest{}, status: 429,
			allowed: []string{"authn"}, refused: "ratelimit", code: "resource_exhausted",
			check: func(t *testing.T, s tracetest.SpanStub) {
				if got := attr(s, tracing.AttrRetryAfter); got == "" || got == "0" {
					t.Errorf("got retry after %q ms, want some", got)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) { // in order: the rate limit counts the calls before
			if tt.name == "rate_limited" {
				for range 10 {
					if status, _ := e.rpc(t, tt.procedure, tt.token, tt.msg); status == 429 {
						break
					}
				}
			}
			e.exp.Reset()
			status, body := e.rpc(t, tt.procedure, tt.token, tt.msg)
			if status != tt.status {
				t.Fatalf("got HTTP %d %s, want %d", status, body, tt.status)
			}
			if tt.name == "login" {
				var res authv1.LoginResponse
				if err := proto.Unmarshal(body, &res); err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, res.GetAccessToken(), res.GetRefreshToken())
			}
			spans := e.exp.GetSpans()
			all = append(all, spans...)
			got, call := decisions(t, spans, tt.procedure)
			for _, name := range tt.allowed {
				s, ok := got[name]
				if !ok {
					t.Errorf("got no %s decision span", name)
					continue
				}
				if o := attr(s, tracing.AttrOutcome); o != tracing.Allowed {
					t.Errorf("got %s outcome %q, want allowed", name, o)
				}
			}
			if tt.name == "ok" {
				if got := attr(got["authn"], tracing.AttrAuthMethod); got != "access_token" {
					t.Errorf("got auth method %q, want access_token", got)
				}
				if attr(got["authn"], tracing.AttrUserID) == "" {
					t.Error("got no enduser.id on the authn decision")
				}
			}
			want := len(tt.allowed)
			if tt.refused != "" {
				want++
				s, ok := got[tt.refused]
				switch {
				case !ok:
					t.Errorf("got no %s decision span", tt.refused)
				case attr(s, tracing.AttrOutcome) != tracing.Refused || attr(s, tracing.AttrCode) != tt.code:
					t.Errorf("got %s outcome %q code %q, want refused %s", tt.refused, attr(s, tracing.AttrOutcome), attr(s, tracing.AttrCode), tt.code)
				case tt.check != nil:
					tt.check(t, s)
				}
			}
			if len(got) != want {
				t.Errorf("got decision spans %v, want %d", slices.Sorted(maps.Keys(got)), want)
			}
			// The access line of this call carries its span's ids.
			var line map[string]any
			for l := range strings.Lines(e.log.String()) {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "rpc" && m["trace_id"] == call.SpanContext.TraceID().String() {
					line = m
				}
			}
			if line == nil {
				t.Fatalf("got no access line with trace_id %s; log:\n%s", call.SpanContext.TraceID(), e.log.String())
			}
			if line["span_id"] != call.SpanContext.SpanID().String() || line["procedure"] != tt.procedure {
				t.Errorf("got access line %v, want span_id %s, procedure %s", line, call.SpanContext.SpanID(), tt.procedure)
			}
		})
	}
	// No span, attribute, event, link or status says a secret.
	for _, s := range all {
		texts := []string{s.Name, s.Status.Description}
		kvs := slices.Clone(s.Attributes)
		for _, ev := range s.Events {
			texts = append(texts, ev.Name)
			kvs = append(kvs, ev.Attributes...)
		}
		for _, l := range s.Links {
			kvs = append(kvs, l.Attributes...)
		}
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key), kv.Value.String())
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(text, secret) {
					t.Errorf("span %s carries a secret (%.6s...) in %.40q", s.Name, secret, text)
				}
			}
		}
	}
	if len(all) < 20 {
		t.Errorf("got %d spans in all, want the calls' and their decisions'", len(all))
	}
}
