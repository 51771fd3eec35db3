package ratelimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the logger and the flush timer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// TestRefusalLogBounded: a flood of refusals from many keys gives a
// bounded number of lines, and every refusal is accounted for.
func TestRefusalLogBounded(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	r := newRefusalLog(slog.New(slog.NewTextHandler(&buf, nil)), "refused")
	const keys, each = 1000, 50
	for k := range keys {
		for range each {
			r.refused(context.Background(), fmt.Sprintf("203.0.113.%d", k), slog.String("request_id", "R"))
		}
	}
	r.flush()
	lines := buf.lines()
	if max := 2*refusalKeys + 1; len(lines) > max {
		t.Errorf("got %d log lines for %d refusals, want at most %d", len(lines), keys*each, max)
	}
	// First refusals of the first 100 keys one by one, with their request
	// ids; the rest counted.
	var first, counted int
	for _, l := range lines {
		switch {
		case strings.Contains(l, "request_id=R"):
			first++
		case strings.Contains(l, "count="):
			var n int
			if _, err := fmt.Sscanf(l[strings.Index(l, "count=")+6:], "%d", &n); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			counted += n
		}
	}
	if first != refusalKeys || first+counted != keys*each {
		t.Errorf("got %d single lines and %d counted refusals, want %d and a total of %d", first, counted, refusalKeys, keys*each)
	}
	// The next interval starts afresh.
	r.refused(context.Background(), "198.51.100.1")
	if got := buf.lines(); !strings.Contains(got[len(got)-1], "198.51.100.1") {
		t.Errorf("got last line %q, want the new interval's first refusal", got[len(got)-1])
	}
}
