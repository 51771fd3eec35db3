package ratelimit_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
)

// t0 is aligned to every window size used here, so the first fixed window
// starts at t0.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(tm time.Time) *fakeClock { return &fakeClock{now: tm} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newLimiter(c *fakeClock, opts ...ratelimit.Option) *ratelimit.Limiter {
	return ratelimit.NewLimiter(append([]ratelimit.Option{ratelimit.WithClock(c.Now)}, opts...)...)
}

func TestLimiter_allowsExactlyLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		limit int
		size  time.Duration
		start time.Duration // offset of the first call into the window
	}{
		{"one_per_minute", 1, time.Minute, 0},
		{"three_per_10s", 3, 10 * time.Second, 0},
		{"three_per_10s_late_in_window", 3, 10 * time.Second, 9 * time.Second},
		{"hundred_per_minute", 100, time.Minute, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(t0.Add(tt.start))
			l := newLimiter(clock)
			for i := range tt.limit {
				d := l.Allow("k", tt.limit, tt.size)
				if !d.Allowed {
					t.Fatalf("call %d: Allowed = false, want true (limit %d)", i+1, tt.limit)
				}
				if got, want := d.Remaining, tt.limit-1-i; got != want {
					t.Errorf("call %d: Remaining = %d, want %d", i+1, got, want)
				}
				if d.Limit != tt.limit {
					t.Errorf("call %d: Limit = %d, want %d", i+1, d.Limit, tt.limit)
				}
			}
			// Refusals do not spend: every further call is refused the same way.
			for i := range 3 {
				d := l.Allow("k", tt.limit, tt.size)
				if d.Allowed {
					t.Fatalf("call %d: Allowed = true, want false (limit %d)", tt.limit+1+i, tt.limit)
				}
				if d.Remaining != 0 || d.Limit != tt.limit {
					t.Errorf("refusal: Remaining, Limit = %d, %d; want 0, %d", d.Remaining, d.Limit, tt.limit)
				}
				if d.RetryAfter < time.Second || d.RetryAfter > 2*tt.size {
					t.Errorf("refusal: RetryAfter = %v, want within [1s, %v]", d.RetryAfter, 2*tt.size)
				}
				if d.RetryAfter%time.Second != 0 {
					t.Errorf("refusal: RetryAfter = %v, want whole seconds", d.RetryAfter)
				}
			}
		})
	}
}

// retryScenario is a history of calls after which one call is refused.
type retryScenario struct {
	limit     int
	size      time.Duration
	prevCalls int           // calls spent at t0, in the first fixed window
	gap       time.Duration // time from those calls to the refused burst
}

func (sc retryScenario) String() string {
	return fmt.Sprintf("limit%d_size%v_prev%d_gap%v", sc.limit, sc.size, sc.prevCalls, sc.gap)
}

func retryScenarios() []retryScenario {
	var out []retryScenario
	for _, limit := range []int{1, 2, 3, 7, 10} {
		for _, size := range []time.Duration{10 * time.Second, time.Minute} {
			prevs := slices.Compact(slices.Sorted(slices.Values([]int{0, 1, limit / 2, limit})))
			for _, prevCalls := range prevs {
				for _, gap := range []time.Duration{0, size / 10, size / 3, size / 2, size - time.Second, size, size + size/4, size + size*3/4} {
					out = append(out, retryScenario{limit, size, prevCalls, gap})
				}
			}
		}
	}
	return out
}

// refuse replays sc on a fresh limiter and returns it, its clock and the
// first refusal.
func (sc retryScenario) refuse(t *testing.T) (*ratelimit.Limiter, *fakeClock, ratelimit.Decision) {
	t.Helper()
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	for range sc.prevCalls {
		if d := l.Allow("k", sc.limit, sc.size); !d.Allowed {
			t.Fatalf("setup call refused: %+v", d)
		}
	}
	clock.Advance(sc.gap)
	// Spend until refused; a budget never allows more than limit at once.
	for i := 0; ; i++ {
		d := l.Allow("k", sc.limit, sc.size)
		if !d.Allowed {
			return l, clock, d
		}
		if i >= sc.limit {
			t.Fatalf("allowed %d calls at one instant, want at most %d", i+1, sc.limit)
		}
	}
}

// TestLimiter_retryAfterIsHonest checks, across many histories, that a
// refused call is allowed once RetryAfter has passed on the clock, and that
// RetryAfter is not needlessly long.
func TestLimiter_retryAfterIsHonest(t *testing.T) {
	t.Parallel()
	for _, sc := range retryScenarios() {
		t.Run(sc.String(), func(t *testing.T) {
			t.Parallel()
			l, clock, refused := sc.refuse(t)
			ra := refused.RetryAfter
			if ra < time.Second {
				t.Fatalf("RetryAfter = %v, want >= 1s", ra)
			}
			if ra > 2*sc.size {
				t.Fatalf("RetryAfter = %v, want <= %v (two windows)", ra, 2*sc.size)
			}
			// Rounding up to whole seconds may add up to a second; two
			// seconds early must still be refused.
			if ra > 2*time.Second {
				clock.Advance(ra - 2*time.Second)
				if d := l.Allow("k", sc.limit, sc.size); d.Allowed {
					t.Fatalf("allowed %v after the refusal, want RetryAfter = %v to be at most a second late", ra-2*time.Second, ra)
				}
				clock.Advance(2 * time.Second)
			} else {
				clock.Advance(ra)
			}
			if d := l.Allow("k", sc.limit, sc.size); !d.Allowed {
				t.Errorf("after waiting RetryAfter = %v: Allowed = false (%+v), want true", ra, d)
			}
		})
	}
}

// TestLimiter_retryAfterIsTight checks that RetryAfter is the first whole
// second at which the call fits, not one later.
func TestLimiter_retryAfterIsTight(t *testing.T) {
	t.Parallel()
	for _, sc := range retryScenarios() {
		t.Run(sc.String(), func(t *testing.T) {
			t.Parallel()
			l, clock, refused := sc.refuse(t)
			ra := refused.RetryAfter
			if ra <= time.Second {
				return
			}
			clock.Advance(ra - time.Second)
			if d := l.Allow("k", sc.limit, sc.size); d.Allowed {
				t.Errorf("allowed at RetryAfter-1s = %v, want RetryAfter = %v to be the first whole second that fits", ra-time.Second, ra)
			}
		})
	}
}

func TestLimiter_slidingWindow(t *testing.T) {
	t.Parallel()
	const limit = 10
	const size = 10 * time.Second
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	spend := func(n int) {
		t.Helper()
		for i := range n {
			if d := l.Allow("k", limit, size); !d.Allowed {
				t.Fatalf("call %d of %d at %v: refused (%+v), want allowed", i+1, n, clock.Now().Sub(t0), d)
			}
		}
		if d := l.Allow("k", limit, size); d.Allowed {
			t.Fatalf("call %d at %v: allowed, want refused", n+1, clock.Now().Sub(t0))
		}
	}

	spend(limit)
	// A fixed window would allow a fresh burst of 10 at the boundary; the
	// previous window still weighs fully.
	clock.Advance(size)
	if d := l.Allow("k", limit, size); d.Allowed {
		t.Fatalf("at the window boundary: allowed, want refused (previous window weighs 100%%)")
	}
	// Half way through, the previous 10 calls weigh 5.
	clock.Advance(size / 2)
	spend(5)
	// Next window: the previous one held 5 calls, weighing 5 at its start.
	clock.Advance(size / 2)
	spend(5)
	// At 75% of the window: used = 5*0.25 + 5 = 6.25, so 3 more fit
	// (6.25+3 <= 10 < 6.25+4).
	clock.Advance(size * 3 / 4)
	spend(3)
	// Two idle windows forget everything.
	clock.Advance(3 * size)
	spend(limit)
}

func TestLimiter_remainingCountsDownThroughDecay(t *testing.T) {
	t.Parallel()
	const limit = 4
	const size = time.Minute
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	for range 3 {
		l.Allow("k", limit, size)
	}
	clock.Advance(size + size/2) // previous window's 3 calls weigh 1.5
	var got []int
	for {
		d := l.Allow("k", limit, size)
		if !d.Allowed {
			break
		}
		got = append(got, d.Remaining)
	}
	// used 1.5: the call leaves 4-1.5-1 = 1.5, which is 1 whole call; then
	// used 2.5 leaves 0.5, which is none; then 3.5+1 > 4 is refused.
	if want := []int{1, 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Remaining of allowed calls = %v, want %v", got, want)
	}
}

func TestLimiter_keysAreIndependent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	for range 3 {
		l.Allow("u|alice", 3, time.Minute)
	}
	if d := l.Allow("u|alice", 3, time.Minute); d.Allowed {
		t.Fatalf("alice's 4th call: allowed, want refused")
	}
	for i := range 3 {
		d := l.Allow("u|bob", 3, time.Minute)
		if !d.Allowed {
			t.Fatalf("bob's call %d: refused, want allowed (alice spent her own budget)", i+1)
		}
		if got, want := d.Remaining, 2-i; got != want {
			t.Errorf("bob's call %d: Remaining = %d, want %d", i+1, got, want)
		}
	}
	if got, want := l.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestLimiter_maxKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		maxKeys int
		want    int // bound on Len
	}{
		{"ten", 10, 10},
		{"hundred", 100, 100},
		{"one", 1, 1},
		{"zero_means_one", 0, 1},
		{"negative_means_one", -5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(t0)
			l := newLimiter(clock, ratelimit.WithMaxKeys(tt.maxKeys))
			for i := range 10 * tt.want {
				if d := l.Allow(fmt.Sprintf("ip|198.51.100.%d", i), 5, time.Minute); !d.Allowed {
					t.Fatalf("first call of key %d: refused, want allowed", i)
				}
				if got := l.Len(); got > tt.want {
					t.Fatalf("after %d keys: Len() = %d, want <= %d", i+1, got, tt.want)
				}
			}
			if got := l.Len(); got < 1 {
				t.Errorf("Len() = %d, want at least the newest key", got)
			}
		})
	}
}

func TestLimiter_evictsIdleKeysFirst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	l := newLimiter(clock, ratelimit.WithMaxKeys(2))
	l.Allow("idle", 1, 10*time.Second)
	clock.Advance(time.Minute) // "idle" is now several windows old
	if d := l.Allow("hot", 1, 10*time.Second); !d.Allowed {
		t.Fatalf("hot's first call: refused, want allowed")
	}
	// A new key forces an eviction; the idle key must go, not the busy one.
	l.Allow("new", 1, 10*time.Second)
	if d := l.Allow("hot", 1, 10*time.Second); d.Allowed {
		t.Errorf("hot's second call after an eviction: allowed, want refused (an idle key should have been evicted instead)")
	}
	if got, want := l.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

// TestLimiter_evictsLightestKey: with no idle key to drop, a new key
// displaces the one with the fewest calls counted, so a flood of new keys
// does not hand a heavy caller a fresh budget.
func TestLimiter_evictsLightestKey(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	l := newLimiter(clock, ratelimit.WithMaxKeys(3))
	for key, calls := range map[string]int{"heavy": 5, "light": 1, "middle": 2} {
		for range calls {
			l.Allow(key, 5, time.Minute)
		}
	}
	l.Allow("new", 5, time.Minute)
	if d := l.Allow("heavy", 5, time.Minute); d.Allowed {
		t.Errorf("heavy's sixth call after an eviction: allowed, want refused (its count was evicted)")
	}
	if d := l.Allow("middle", 5, time.Minute); !d.Allowed || d.Remaining != 2 {
		t.Errorf("middle's third call: %+v, want allowed with 2 remaining (its count kept)", d)
	}
	if got, want := l.Len(), 3; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestLimiter_concurrent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0)
	l := newLimiter(clock)
	const limit = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if l.Allow("shared", limit, time.Minute).Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != limit {
		t.Errorf("allowed %d of 160 concurrent calls, want exactly %d", allowed, limit)
	}
}

func BenchmarkAllow(b *testing.B) {
	const keys = 10_000
	names := make([]string, 2*keys)
	for i := range names {
		names[i] = fmt.Sprintf("ip|10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff)
	}
	b.Run("known_key", func(b *testing.B) {
		l := newLimiter(newFakeClock(t0), ratelimit.WithMaxKeys(keys))
		for _, k := range names[:keys] {
			l.Allow(k, 1<<30, time.Minute)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(names[i%keys], 1<<30, time.Minute)
			i++
		}
	})
	// Twice as many keys as room, none idle: every call inserts a new key
	// into a full limiter and must evict one.
	b.Run("new_key_when_full", func(b *testing.B) {
		l := newLimiter(newFakeClock(t0), ratelimit.WithMaxKeys(keys))
		for _, k := range names[:keys] {
			l.Allow(k, 1<<30, time.Minute)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(names[i%len(names)], 1<<30, time.Minute)
			i++
		}
	})
}
