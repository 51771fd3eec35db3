// Package ratelimit bounds how often a user or a client IP may call.
//
// Limiter is an in-memory sliding-window counter (two fixed windows
// weighted by overlap), bounded in the number of keys it tracks. The
// interceptor applies each method's policy limit; Middleware applies one
// per-IP budget to every HTTP request before any RPC work.
//
// Refusals are resource_exhausted with Retry-After and RateLimit-* headers
// and a google.rpc.RetryInfo detail.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"github.com/connectguard/guard/internal/boundedmap"
)

// Decision is the outcome of Allow.
type Decision struct {
	Allowed bool
	// Limit is the budget per window.
	Limit int
	// Remaining is what is left in the budget after this call.
	Remaining int
	// RetryAfter says when a refused call may be retried.
	RetryAfter time.Duration
}

// Limiter counts calls per key.
type Limiter struct {
	mu      sync.Mutex
	windows *boundedmap.Map[string, *window, time.Time]
	now     func() time.Time
}

type window struct {
	start time.Time // start of the current fixed window
	size  time.Duration
	prev  int // calls in the previous fixed window
	curr  int // calls in the current fixed window
}

// NewLimiter returns an empty Limiter.
func NewLimiter(opts ...Option) *Limiter {
	cfg := config{maxKeys: 100_000, now: time.Now}
	for _, o := range opts {
		o.apply(&cfg)
	}
	// A full limiter makes room by this rule. Sweeps drop every key with
	// no call in its last two windows: it has nothing left to count.
	// Between sweeps, of a sample of keys, the one with the fewest calls
	// in its sliding window goes, so a flood of new keys resets the
	// budgets of the lightest callers, not of the heaviest.
	windows := boundedmap.New[string](cfg.maxKeys, boundedmap.Rule[*window, time.Time]{
		Sweeps: []func(*window, time.Time) bool{(*window).idle},
		Rank:   (*window).calls,
	})
	return &Limiter{windows: windows, now: cfg.now}
}

// Allow spends one call of key's budget of limit calls per size, if the
// budget allows it.
func (l *Limiter) Allow(key string, limit int, size time.Duration) Decision {
	return l.AllowAll(limit, size, key)
}

// AllowAll spends one call of the budget (limit calls per size) of every
// key, or of none: a call counted against several budgets, such as a
// user's and a client IP's, is allowed only if all of them allow it, and a
// refused call spends nothing, so exhausting one budget (a shared address)
// cannot drain the others. The Decision is the refusal with the longest
// wait, or else the allowance with the fewest calls remaining.
func (l *Limiter) AllowAll(limit int, size time.Duration, keys ...string) Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var buf [4]*window
	ws := buf[:0]
	d := Decision{Allowed: true, Limit: limit, Remaining: limit}
	for _, key := range keys {
		w, ok := l.windows.Get(key)
		if !ok {
			w = &window{start: now.Truncate(size), size: size}
			l.windows.Put(key, w, now)
		}
		w.advance(now)
		ws = append(ws, w)
		elapsed := now.Sub(w.start)
		used := float64(w.prev)*(1-float64(elapsed)/float64(size)) + float64(w.curr)
		if used+1 > float64(limit) {
			d.Allowed, d.Remaining = false, 0
			d.RetryAfter = max(d.RetryAfter, w.retryAfter(limit, elapsed))
			continue
		}
		d.Remaining = min(d.Remaining, max(0, int(math.Floor(float64(limit)-used-1))))
	}
	if !d.Allowed {
		return d
	}
	for _, w := range ws {
		w.curr++
	}
	return d
}

// advance moves w's fixed windows forward to now.
func (w *window) advance(now time.Time) {
	switch n := now.Sub(w.start) / w.size; {
	case n == 1:
		w.start = w.start.Add(w.size)
		w.prev, w.curr = w.curr, 0
	case n > 1:
		w.start = now.Truncate(w.size)
		w.prev, w.curr = 0, 0
	}
}

// retryAfter returns the wait until one more call fits, rounded up to
// whole seconds. It computes in integer nanoseconds: float rounding would
// sometimes add a second to an exact wait.
func (w *window) retryAfter(limit int, elapsed time.Duration) time.Duration {
	size := int64(w.size)
	var t int64
	if w.curr+1 > limit || w.prev == 0 {
		// Wait for the next window, then for the current count to decay:
		// curr*(1-x/size) + 1 <= limit.
		t = size - int64(elapsed)
		if over := int64(w.curr - limit + 1); over > 0 {
			t += ceilDiv(size*over, int64(w.curr))
		}
	} else {
		// The previous window's share must decay: prev*(1-x/size) + curr + 1 <= limit.
		t = ceilDiv(size*int64(w.prev-(limit-1-w.curr)), int64(w.prev)) - int64(elapsed)
	}
	secs := max(1, ceilDiv(t, int64(time.Second)))
	return time.Duration(secs) * time.Second
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// idle reports whether w has counted no call in its last two windows, so
// forgetting it loses nothing.
func (w *window) idle(now time.Time) bool {
	return now.Sub(w.start) >= 2*w.size
}

// calls returns how many calls w counts at now in its current and
// previous fixed windows, as advance would leave them.
func (w *window) calls(now time.Time) int {
	switch n := now.Sub(w.start) / w.size; {
	case n <= 0:
		return w.prev + w.curr
	case n == 1:
		return w.curr
	default:
		return 0
	}
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.windows.Len()
}
