package server

import (
	"io"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkObservabilityRatio reports what tracing and the access log add
// to the full chain without them (the server with no OTLP endpoint, which
// installs no tracing at all, and logging off), as the median time ratio
// over paired blocks:
//   - logging: the access log at info, in text, to io.Discard;
//   - noop: the tracing interceptors wired with a no-op tracer provider
//     (what the instrumentation costs a call that is not sampled);
//   - sdk: an SDK tracer provider without exporter, every call sampled
//     (the call's span and five decision spans made and dropped: what a
//     sampled call costs before export);
//
// and their sums; default_vs_none: metrics and the access log, as the
// server runs without an OTLP endpoint (no tracing installed), against a
// full chain with neither; and all_vs_none: the same with no-op tracing
// wired too.
func BenchmarkObservabilityRatio(b *testing.B) {
	e := newBenchEnv(b)
	mountWith := func(b *testing.B, tracer string, logged bool) http.Handler {
		d := e.deps
		switch tracer {
		case "noop":
			d.tracer = noop.NewTracerProvider()
		case "sdk":
			tp := sdktrace.NewTracerProvider()
			b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
			d.tracer = tp
		}
		if logged {
			d.log = newLogger(e.cfg, io.Discard)
		}
		h, err := mount(e.cfg, e.services, d)
		if err != nil {
			b.Fatal(err)
		}
		e.call(b, h)
		return h
	}
	b.Run("default_vs_none", func(b *testing.B) {
		none := newBenchEnv(b, "-metrics-addr=")
		def := mountWith(b, "", true) // metrics and the access log; no OTLP endpoint installs no tracing
		pairedRatio(b, "default/none", func() { none.call(b, none.full) }, func() { e.call(b, def) })
	})
	b.Run("all_vs_none", func(b *testing.B) {
		none := newBenchEnv(b, "-metrics-addr=") // no metrics; logging and tracing off as in e
		all := mountWith(b, "noop", true)        // e has metrics on
		pairedRatio(b, "all/none", func() { none.call(b, none.full) }, func() { e.call(b, all) })
	})
	for _, tt := range []struct {
		name   string
		tracer string
		logged bool
	}{
		{"logging", "", true},
		{"tracing_noop", "noop", false},
		{"tracing_noop_and_logging", "noop", true},
		{"tracing_sdk", "sdk", false},
		{"tracing_sdk_and_logging", "sdk", true},
	} {
		b.Run(tt.name, func(b *testing.B) {
			h := mountWith(b, tt.tracer, tt.logged)
			pairedRatio(b, "on/off", func() { e.call(b, e.full) }, func() { e.call(b, h) })
		})
	}
}
