package server

import (
	"strings"
	"testing"

	"github.com/connectguard/guard/internal/config"
)

// TestLoggerQuotesForgedLines: a value a caller chose, logged as an
// attribute by the server's logger in either format, stays inside its
// record: line breaks are escaped, so it cannot start a record of its
// own; and the record's time is in UTC.
func TestLoggerQuotesForgedLines(t *testing.T) {
	t.Parallel()
	const forged = "x\nlevel=ERROR msg=injected\r\n{\"level\":\"ERROR\",\"msg\":\"injected\"}\u2028time=now"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			log := newLogger(config.Config{LogFormat: format}, &b)
			log.Info("rpc", "procedure", forged, forged, "value as a key")
			out := b.String()
			if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("got %d lines %q, want one record", n, out)
			}
			if strings.ContainsAny(strings.TrimSuffix(out, "\n"), "\r\n") {
				t.Errorf("got a raw line break in %q", out)
			}
			if !strings.HasPrefix(out, "time=") && !strings.HasPrefix(out, `{"time":"`) {
				t.Fatalf("got %q, want the record to start with its time", out)
			}
			tm, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(out, "time="), `{"time":"`), " ")
			if !strings.Contains(tm, "Z") {
				t.Errorf("got time %q, want UTC", tm)
			}
		})
	}
}
