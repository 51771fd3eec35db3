// Package ratelimittest holds the conformance tests every
// ratelimit.Limiter must pass, so that the in-memory store and a shared
// one (Redis) are held to the same strictness: run them with Run.
package ratelimittest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
)

// Clock is a fake clock a test moves by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Factory returns a new, empty Limiter on the clock, whose keys no other
// Limiter of the run shares.
type Factory func(t *testing.T, now func() time.Time) ratelimit.Limiter

// t0 is where every clock starts: a little after a whole minute, so that
// windows do not start aligned with the calls.
var t0 = time.Date(2026, 12, 1, 12, 0, 0, 123_456_789, time.UTC)

// Run runs the conformance tests against the limiters newLimiter makes.
func Run(t *testing.T, newLimiter Factory) {
	t.Run("allows_exactly_the_limit", func(t *testing.T) { allowsExactlyLimit(t, newLimiter) })
	t.Run("strict_under_adversarial_bursts", func(t *testing.T) { strict(t, newLimiter) })
	t.Run("retry_after_is_honest_and_tight", func(t *testing.T) { retryAfter(t, newLimiter) })
	t.Run("all_quotas_or_none", func(t *testing.T) { allOrNothing(t, newLimiter) })
	t.Run("one_left_many_callers", func(t *testing.T) { oneLeft(t, newLimiter) })
	t.Run("keys_are_independent", func(t *testing.T) { independent(t, newLimiter) })
	t.Run("state_for_headers", func(t *testing.T) { states(t, newLimiter) })
}

func allow(t *testing.T, l ratelimit.Limiter, quotas ...ratelimit.Quota) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), quotas...)
	if err != nil {
		t.Fatalf("Allow() error = %v", err)
	}
	return d
}

func quota(key string, limit int, window time.Duration) ratelimit.Quota {
	return ratelimit.Quota{Name: "q", Key: key, Limit: limit, Window: window}
}

func allowsExactlyLimit(t *testing.T, newLimiter Factory) {
	for _, tt := range []struct {
		limit  int
		window time.Duration
	}{{1, time.Second}, {3, time.Minute}, {100, time.Hour}} {
		t.Run(fmt.Sprintf("%d_per_%s", tt.limit, tt.window), func(t *testing.T) {
			clock := NewClock(t0)
			l := newLimiter(t, clock.Now)
			q := quota("k", tt.limit, tt.window)
			for i := range tt.limit {
				d := allow(t, l, q)
				if !d.Allowed {
					t.Fatalf("call %d refused, want allowed", i+1)
				}
				if got, want := d.States()[0].Remaining, tt.limit-i-1; got != want {
					t.Errorf("call %d: Remaining = %d, want %d", i+1, got, want)
				}
			}
			d := allow(t, l, q)
			if d.Allowed {
				t.Fatalf("call %d allowed, want refused", tt.limit+1)
			}
			if d.RetryAfter < time.Second || d.RetryAfter%time.Second != 0 {
				t.Errorf("RetryAfter = %v, want whole seconds, at least one", d.RetryAfter)
			}
		})
	}
}

// strict drives the attack the two-bucket weighted counter lost to (N
// calls at the end of one fixed window, then steady calls into the next)
// and others, and checks that no rolling window of length W ever holds
// more than N admitted calls.
func strict(t *testing.T, newLimiter Factory) {
	const (
		limit  = 10
		window = 10 * time.Second
	)
	patterns := map[string][]time.Duration{} // offsets from t0 of the attempts
	var burst []time.Duration
	for i := range limit { // N at the end of the first minute-aligned window
		burst = append(burst, 60*time.Second-876*time.Millisecond+time.Duration(i)*time.Millisecond)
	}
	steady := append([]time.Duration{}, burst...)
	for i := range 400 { // then one call every 100 ms for 40 s
		steady = append(steady, 60*time.Second+time.Duration(i)*100*time.Millisecond)
	}
	patterns["burst_then_steady"] = steady
	var bursts []time.Duration
	for w := range 6 { // bursts of 2N straddling every bucket edge
		for i := range 2 * limit {
			bursts = append(bursts, time.Duration(w)*window+time.Duration(w)*1123*time.Millisecond+time.Duration(i)*37*time.Millisecond)
		}
	}
	patterns["bursts_straddling_edges"] = bursts
	for name, offsets := range patterns {
		t.Run(name, func(t *testing.T) {
			clock := NewClock(t0)
			l := newLimiter(t, clock.Now)
			q := quota("strict", limit, window)
			var admitted []time.Duration
			last := time.Duration(0)
			for _, off := range offsets {
				clock.Advance(off - last)
				last = off
				if allow(t, l, q).Allowed {
					admitted = append(admitted, off)
				}
			}
			if len(admitted) == 0 {
				t.Fatal("nothing admitted: the test proves nothing")
			}
			for i, at := range admitted {
				n := 0
				for _, before := range admitted[:i+1] {
					if before > at-window {
						n++
					}
				}
				if n > limit {
					t.Fatalf("%d calls admitted in the %s ending at +%v, want at most %d", n, window, at, limit)
				}
			}
			// Over-refusal is bounded too: in 40 s of steady calls every
			// 100 ms, at least 3 full windows' worth get through.
			if name == "burst_then_steady" && len(admitted) < 3*limit {
				t.Errorf("only %d admitted over 40 s, want at least %d", len(admitted), 3*limit)
			}
		})
	}
}

func retryAfter(t *testing.T, newLimiter Factory) {
	for _, tt := range []struct {
		limit  int
		window time.Duration
		spread time.Duration // between the calls that use the budget
	}{{1, time.Minute, 0}, {5, time.Minute, 7 * time.Second}, {3, 10 * time.Second, 1500 * time.Millisecond}} {
		t.Run(fmt.Sprintf("%d_per_%s", tt.limit, tt.window), func(t *testing.T) {
			clock := NewClock(t0)
			l := newLimiter(t, clock.Now)
			q := quota("retry", tt.limit, tt.window)
			for range tt.limit {
				if !allow(t, l, q).Allowed {
					t.Fatal("refused within the budget")
				}
				clock.Advance(tt.spread)
			}
			d := allow(t, l, q)
			if d.Allowed {
				t.Fatal("allowed beyond the budget")
			}
			if longest := tt.window + tt.window/ratelimit.SubBuckets + time.Second; d.RetryAfter > longest {
				t.Errorf("RetryAfter = %v, longer than the window %v and a bucket (+1 s of rounding)", d.RetryAfter, tt.window)
			}
			clock.Advance(d.RetryAfter - time.Second)
			if allow(t, l, q).Allowed {
				t.Errorf("allowed a second before Retry-After (%v), want refused", d.RetryAfter)
			}
			clock.Advance(time.Second)
			if !allow(t, l, q).Allowed {
				t.Errorf("refused at Retry-After (%v), want allowed", d.RetryAfter)
			}
		})
	}
}

func allOrNothing(t *testing.T, newLimiter Factory) {
	clock := NewClock(t0)
	l := newLimiter(t, clock.Now)
	shared := quota("shared-ip", 2, time.Minute)
	for _, user := range []string{"alice", "alice"} {
		if !allow(t, l, quota("user-"+user, 5, time.Minute), shared).Allowed {
			t.Fatal("refused within both budgets")
		}
	}
	for range 3 { // bob is refused by the shared budget...
		d := allow(t, l, quota("user-bob", 2, time.Minute), shared)
		if d.Allowed {
			t.Fatal("allowed beyond the shared budget")
		}
	}
	// ...and his own budget is untouched.
	for i := range 2 {
		if !allow(t, l, quota("user-bob", 2, time.Minute)).Allowed {
			t.Fatalf("bob's call %d refused: a refusal by another budget spent his", i+1)
		}
	}
}

func oneLeft(t *testing.T, newLimiter Factory) {
	clock := NewClock(t0)
	l := newLimiter(t, clock.Now)
	q := quota("race", 5, time.Minute)
	for range 4 {
		allow(t, l, q)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			d, err := l.Allow(context.Background(), q)
			if err != nil {
				t.Errorf("Allow() error = %v", err)
			}
			if d.Allowed {
				admitted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 1 {
		t.Errorf("%d of 100 concurrent callers admitted with one call left, want exactly 1", n)
	}
}

func independent(t *testing.T, newLimiter Factory) {
	clock := NewClock(t0)
	l := newLimiter(t, clock.Now)
	for range 3 {
		allow(t, l, quota("alice", 3, time.Minute))
	}
	if allow(t, l, quota("alice", 3, time.Minute)).Allowed {
		t.Error("alice allowed beyond her budget")
	}
	if !allow(t, l, quota("bob", 3, time.Minute)).Allowed {
		t.Error("bob refused: alice's calls spent his budget")
	}
}

func states(t *testing.T, newLimiter Factory) {
	clock := NewClock(t0)
	l := newLimiter(t, clock.Now)
	a := ratelimit.Quota{Name: "user", Key: "s-user", Limit: 10, Window: time.Minute}
	b := ratelimit.Quota{Name: "method", Key: "s-method", Limit: 2, Window: 10 * time.Second}
	d := allow(t, l, a, b)
	st := d.States()
	if len(st) != 2 || st[0].Quota.Name != "user" || st[1].Quota.Name != "method" {
		t.Fatalf("States() = %+v, want the two quotas in order", st)
	}
	if st[0].Remaining != 9 || st[1].Remaining != 1 {
		t.Errorf("Remaining = %d, %d, want 9, 1", st[0].Remaining, st[1].Remaining)
	}
	for _, s := range st {
		if s.Reset <= 0 || s.Reset > s.Quota.Window+s.Quota.Window/ratelimit.SubBuckets {
			t.Errorf("%s: Reset = %v, want within the window", s.Quota.Name, s.Reset)
		}
	}
	if _, err := l.Allow(context.Background()); err == nil {
		t.Error("Allow() with no quota: no error")
	}
	if _, err := l.Allow(context.Background(), quota("zero", 0, time.Minute)); err == nil {
		t.Error("Allow() with a zero limit: no error")
	}
}

// MatchesMemory checks that a Limiter decides as ratelimit.Memory does,
// field by field (allowed, RetryAfter, each quota's Remaining and Reset),
// over calls random calls (from seed) against one to MaxQuotas quotas of
// mixed limits and windows: for a store that keeps Memory's buckets
// elsewhere (Redis) and so must answer exactly alike.
func MatchesMemory(t *testing.T, newLimiter Factory, calls int, seed uint64) {
	t.Helper()
	clock := NewClock(t0)
	mem := ratelimit.NewMemory(ratelimit.WithClock(clock.Now))
	l := newLimiter(t, clock.Now)
	pool := []ratelimit.Quota{
		{Name: "ip", Key: "ip", Limit: 7, Window: 10 * time.Second},
		{Name: "user", Key: "user", Limit: 12, Window: time.Minute},
		{Name: "method", Key: "method", Limit: 3, Window: 5 * time.Second},
		{Name: "other", Key: "other", Limit: 1, Window: 1500 * time.Millisecond},
		{Name: "hour", Key: "hour", Limit: 20, Window: time.Hour},
	}
	rng := rand.New(rand.NewPCG(seed, seed+1)) //nolint:gosec // a reproducible workload, not a secret
	admitted := 0
	for i := range calls {
		clock.Advance(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		var quotas []ratelimit.Quota
		for _, j := range rng.Perm(len(pool))[:1+rng.IntN(ratelimit.MaxQuotas)] {
			quotas = append(quotas, pool[j])
		}
		want := allow(t, mem, quotas...)
		got := allow(t, l, quotas...)
		if got.Allowed {
			admitted++
		}
		if got.Allowed != want.Allowed || got.RetryAfter != want.RetryAfter {
			t.Fatalf("call %d: allowed %v, RetryAfter %v; Memory: %v, %v", i, got.Allowed, got.RetryAfter, want.Allowed, want.RetryAfter)
		}
		for k, st := range got.States() {
			if w := want.States()[k]; st != w {
				t.Fatalf("call %d, quota %s: %+v; Memory %+v", i, st.Quota.Name, st, w)
			}
		}
	}
	if admitted < calls/10 || admitted > calls*9/10 {
		t.Errorf("%d of %d calls admitted: the workload should both admit and refuse often", admitted, calls)
	}
}
