package server_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/connectguard/guard/interceptors/tracing"
	"github.com/connectguard/guard/internal/servertest"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP trace receiver that keeps what it receives.
type collector struct {
	mu    sync.Mutex
	raw   []byte
	spans []*tracev1.Span
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// ExportTraceServiceRequest and TracesData share their wire form.
	var data tracev1.TracesData
	if err := proto.Unmarshal(b, &data); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, b...)
	for _, rs := range data.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans = append(c.spans, ss.GetSpans()...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

// TestOTLPExport: with OTEL_EXPORTER_OTLP_ENDPOINT set, the server sends
// the spans of its calls to that collector, flushed when it shuts down:
// the call's span and its decisions, without the password of a login.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	col := &collector{}
	otlp := httptest.NewServer(col)
	t.Cleanup(otlp.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := &servertest.Log{}
	base, wait, err := servertest.Launch(ctx, []string{"-db=" + t.TempDir() + "/guard.db"}, map[string]string{
		"GUARD_ADMIN_EMAIL": servertest.AdminEmail, "GUARD_ADMIN_PASSWORD": servertest.AdminPassword,
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(base+procLogin, "application/json", strings.NewReader(loginJSON(servertest.AdminEmail, servertest.AdminPassword, false)))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login: HTTP %d %s", res.StatusCode, tok)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("server.Run: %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	names := map[string]bool{}
	for _, s := range col.spans {
		names[s.GetName()] = true
	}
	for _, want := range []string{"guard.auth.v1.AuthService/Login", tracing.SpanPrefix + "authn", tracing.SpanPrefix + "validate"} {
		if !names[want] {
			t.Errorf("the collector got no span %s; got %v", want, names)
		}
	}
	if strings.Contains(string(col.raw), servertest.AdminPassword) {
		t.Error("the exported spans carry the password")
	}
	if !strings.Contains(log.String(), "trace_id=") {
		t.Errorf("got no trace_id in the access log:\n%s", log)
	}
}

// TestOTLPEndpointChecked: an endpoint that is not an http(s) URL stops
// the server at startup, naming the variable.
func TestOTLPEndpointChecked(t *testing.T) {
	t.Parallel()
	_, _, err := servertest.Launch(t.Context(), []string{"-db=" + t.TempDir() + "/guard.db"}, map[string]string{
		"GUARD_ADMIN_EMAIL": servertest.AdminEmail, "GUARD_ADMIN_PASSWORD": servertest.AdminPassword,
		"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318",
	}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Fatalf("got %v, want an error naming OTEL_EXPORTER_OTLP_ENDPOINT", err)
	}
}
