package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/breaker"
	"github.com/redis/go-redis/v9"
)

// TestBreaker: a failure opens the breaker and logs the outage once;
// while open, calls skip Redis and count, and a background probe runs
// at most once per interval; the probe's success closes it and logs the
// end once. A pool timeout counts but opens nothing.
func TestBreaker(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	var answer atomic.Bool
	var probes atomic.Int64
	b := breaker.New("redis test store", "doing without", func(context.Context) error {
		probes.Add(1)
		if answer.Load() {
			return nil
		}
		return errors.New("still down")
	}, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)))

	b.Failed(fmt.Errorf("wrapped: %w", redis.ErrPoolTimeout))
	if !b.Up() || b.Outages() != 0 || b.Failures() != 1 {
		t.Fatalf("after a pool timeout: Up() = %v, Outages() = %d, Failures() = %d, want true, 0, 1", b.Up(), b.Outages(), b.Failures())
	}
	b.Failed(errors.New("connection refused"))
	b.Failed(errors.New("connection refused"))
	for range 5 {
		if b.Up() {
			t.Fatal("Up() = true during the outage")
		}
	}
	if b.Outages() != 1 || b.Failures() != 8 {
		t.Errorf("Outages() = %d, Failures() = %d, want 1 and 8", b.Outages(), b.Failures())
	}
	if probes.Load() != 0 {
		t.Errorf("%d probes within the first interval, want none", probes.Load())
	}
	if b.Succeeded() != true || b.Succeeded() != false || !b.Up() {
		t.Error("Succeeded() should end the outage once, and Up() be true after it")
	}
	if n := strings.Count(logs.String(), "redis test store unavailable: doing without until it answers"); n != 1 {
		t.Errorf("the start was logged %d times, want once:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "redis test store answers again"); n != 1 {
		t.Errorf("the end was logged %d times, want once:\n%s", n, logs.String())
	}

	// A probe, once the interval has passed, closes it.
	b2 := breaker.New("redis test store", "doing without", func(context.Context) error { probes.Add(1); return nil },
		time.Millisecond, slog.New(slog.DiscardHandler))
	b2.Failed(errors.New("timeout"))
	deadline := time.Now().Add(10 * time.Second)
	for !b2.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the probe did not close the breaker within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a log destination safe for the probe's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
