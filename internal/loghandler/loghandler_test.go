package loghandler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// hostile are strings a caller could choose, each aimed at a log reader:
// line breaks of every kind, quotes, separators, control and format
// characters, invalid UTF-8, and forged records in both formats.
var hostile = []string{
	"", " ", "=", `"`, `\`, "plain", "a b", "k=v", "x\nlevel=ERROR msg=injected",
	"\r\n", "\t", "\x00", "\x1b[31m", "\x7f", "\u0085", "\u00a0", "\u2028", "\u2029",
	"\u200b", "\ufeff", "\ufffd", "\xff", "\xe2\x80", "é", "日本", "🔑", `{"level":"ERROR","msg":"injected"}`,
	`","msg":"x`, "<script>&amp;", "\\n", "/guard.notes.v1.NoteService/GetNote",
}

// random builds a string of random pieces of hostile strings and bytes.
func random(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(4) {
		switch r.IntN(3) {
		case 0:
			b.WriteString(hostile[r.IntN(len(hostile))])
		case 1:
			b.WriteByte(byte(r.IntN(256)))
		default:
			b.WriteRune(rune(r.IntN(0x30000)))
		}
	}
	return b.String()
}

func randomAttr(r *rand.Rand) slog.Attr {
	key := random(r)
	if key == "" {
		key = "k"
	}
	switch r.IntN(6) {
	case 0:
		return slog.Int64(key, r.Int64()-r.Int64())
	case 1:
		return slog.Uint64(key, r.Uint64())
	case 2:
		return slog.Bool(key, r.IntN(2) == 0)
	case 3:
		return slog.Duration(key, time.Duration(r.Int64()-r.Int64())/time.Duration(1+r.IntN(1e6)))
	default:
		return slog.String(key, random(r))
	}
}

// slogOutput is what slog's own handler writes for r.
func slogOutput(t testing.TB, format Format, r slog.Record) string {
	t.Helper()
	var b bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&b, nil)
	if format == JSON {
		h = slog.NewJSONHandler(&b, nil)
	}
	r.Time = r.Time.UTC()
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func output(t testing.TB, format Format, r slog.Record) string {
	t.Helper()
	var b bytes.Buffer
	if err := New(&b, format, slog.LevelDebug).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMatchesSlog: on random records of hostile strings, the handler
// writes exactly what slog's handlers write, in both formats, so slog's
// quoting and escaping hold for every caller-chosen value.
func TestMatchesSlog(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2, slog.LevelError + 8}
	zone := time.FixedZone("far", 13*3600+45*60)
	for i := range 3000 {
		tm := time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zone)
		switch i % 50 {
		case 0:
			tm = time.Time{}
		case 1:
			tm = time.Unix(1, 0) // a whole second: no fraction to trim
		}
		msg := "rpc"
		if i%2 == 0 {
			msg = random(rng)
		}
		r := slog.NewRecord(tm, levels[rng.IntN(len(levels))], msg, 0)
		for range rng.IntN(12) {
			r.AddAttrs(randomAttr(rng))
		}
		if !fast(r) {
			t.Fatalf("record %d takes the slow path; the test wants the fast one", i)
		}
		for _, format := range []Format{Text, JSON} {
			if got, want := output(t, format, r), slogOutput(t, format, r); got != want {
				t.Fatalf("format %d, record %d:\ngot  %q\nwant %q", format, i, got, want)
			}
		}
	}
}

// FuzzMatchesSlog is TestMatchesSlog driven by the fuzzer: any key and
// value the fast path takes is written as slog writes it.
func FuzzMatchesSlog(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, key, value string, n int64) {
		if key == "" {
			return
		}
		r := slog.NewRecord(time.Unix(n, n), slog.LevelWarn, value, 0)
		r.AddAttrs(slog.String(key, value), slog.Int64(value+"n", n), slog.Duration(key, time.Duration(n)))
		for _, format := range []Format{Text, JSON} {
			if got, want := output(t, format, r), slogOutput(t, format, r); got != want {
				t.Fatalf("format %d:\ngot  %q\nwant %q", format, got, want)
			}
		}
	})
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

// TestSlowPath: what the fast path does not encode (groups, any values,
// resolvers, empty keys, far years, derived handlers) is slog's output,
// in UTC.
func TestSlowPath(t *testing.T) {
	t.Parallel()
	tm := time.Date(2026, 12, 1, 20, 0, 0, 123456789, time.FixedZone("x", -5*3600))
	for _, a := range []slog.Attr{
		slog.Group("g", slog.String("a", "x\ny")),
		slog.Any("err", errors.New("boom\nlevel=ERROR")),
		slog.Any("v", valuer{}),
		slog.Float64("f", 1.5),
		slog.Time("t", tm),
		slog.String("", "no key"),
		{},
	} {
		r := slog.NewRecord(tm, slog.LevelInfo, "rpc", 0)
		r.AddAttrs(slog.String("before", "b"), a)
		if fast(r) {
			t.Fatalf("%v: takes the fast path", a)
		}
		for _, format := range []Format{Text, JSON} {
			if got, want := output(t, format, r), slogOutput(t, format, r); got != want {
				t.Errorf("format %d, %v:\ngot  %q\nwant %q", format, a, got, want)
			}
		}
	}
	far := slog.NewRecord(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "rpc", 0)
	if fast(far) {
		t.Error("a year past 9999 takes the fast path")
	}
	var b bytes.Buffer
	log := slog.New(New(&b, JSON, nil)).With("service", "guard").WithGroup("g")
	log.Info("m", "k", "v")
	if !strings.Contains(b.String(), `"service":"guard","g":{"k":"v"}`) || !strings.Contains(b.String(), `Z"`) {
		t.Errorf("derived handler wrote %q, want the attributes and group in a UTC record", b.String())
	}
}

// TestLevel: records below the level are not enabled.
func TestLevel(t *testing.T) {
	t.Parallel()
	h := New(io.Discard, Text, slog.LevelWarn)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("want Info off and Warn on at level Warn")
	}
	if !New(io.Discard, Text, nil).Enabled(context.Background(), slog.LevelInfo) {
		t.Error("want Info on by default")
	}
}

// BenchmarkHandler compares the handler with slog's on an access line.
func BenchmarkHandler(b *testing.B) {
	for _, tt := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog_text", slog.NewTextHandler(io.Discard, nil)},
		{"text", New(io.Discard, Text, nil)},
		{"slog_json", slog.NewJSONHandler(io.Discard, nil)},
		{"json", New(io.Discard, JSON, nil)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(time.Now(), slog.LevelInfo, "rpc", 0)
				r.AddAttrs(
					slog.String("procedure", "/guard.notes.v1.NoteService/GetNote"),
					slog.String("protocol", "connect"),
					slog.String("code", "ok"),
					slog.Duration("duration", 12345*time.Nanosecond),
					slog.String("user_id", "abcdefghijklmnopqrstuvwxyz"),
					slog.String("auth", "access_token"),
					slog.String("client_ip", "192.0.2.1"),
					slog.String("request_id", "01JABCDEFGHJKMNPQRSTVWXYZ0"),
				)
				_ = tt.h.Handle(b.Context(), r)
			}
		})
	}
}
