package ratelimit_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/ratelimittest"
	"golang.org/x/time/rate"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	ratelimittest.Run(t, func(_ *testing.T, now func() time.Time) ratelimit.Limiter {
		return ratelimit.NewMemory(ratelimit.WithClock(now))
	})
}

func allow(t testing.TB, l ratelimit.Limiter, quotas ...ratelimit.Quota) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), quotas...)
	if err != nil {
		t.Fatalf("Allow() error = %v", err)
	}
	return d
}

func q(key string, limit int, window time.Duration) ratelimit.Quota {
	return ratelimit.Quota{Name: "q", Key: key, Limit: limit, Window: window}
}

// TestMemoryFlood: a million distinct keys (a flood of addresses) keep
// memory at the cap, and a key that is spending its budget keeps its
// count throughout: the flood cannot reset it.
func TestMemoryFlood(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a million keys")
	}
	clock := ratelimittest.NewClock(t0)
	const maxKeys = 10_000
	l := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithMaxKeys(maxKeys))
	victim := q("ip|victim", 5, time.Minute)
	for range 4 {
		allow(t, l, victim)
	}
	for i := range 1_000_000 {
		allow(t, l, q("ip|flood-"+strconv.Itoa(i), 5, time.Minute))
		if i%100_000 == 0 {
			clock.Advance(time.Second)
		}
	}
	if n := l.Len(); n > maxKeys {
		t.Errorf("Len() = %d after the flood, want at most %d", n, maxKeys)
	}
	if !allow(t, l, victim).Allowed {
		t.Fatal("the victim's last call refused")
	}
	if allow(t, l, victim).Allowed {
		t.Error("the victim got a fresh budget: the flood reset its count")
	}
}

// TestMemoryOverflowIsStrict: keys beyond the cap, counted in the
// overflow table, never get more than their limit, and a key that moves
// from the overflow into the exact map keeps its calls.
func TestMemoryOverflowIsStrict(t *testing.T) {
	t.Parallel()
	clock := ratelimittest.NewClock(t0)
	l := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithMaxKeys(1))
	for i := range 64 * 4 { // every shard full of active keys
		allow(t, l, q("full-"+strconv.Itoa(i), 100, time.Minute))
	}
	for k := range 50 {
		key := "over-" + strconv.Itoa(k)
		admitted := 0
		for range 5 {
			if allow(t, l, q(key, 3, time.Minute)).Allowed {
				admitted++
			}
		}
		if admitted > 3 {
			t.Fatalf("%s: %d admitted in the overflow, want at most 3", key, admitted)
		}
	}
	// Once the full keys go idle, a key finds room and keeps its count.
	clock.Advance(2 * time.Minute)
	key := q("mover", 3, time.Hour)
	allow(t, l, key)
	allow(t, l, key)
	for range 64 * 16 { // sweeps fall due: the idle keys leave
		allow(t, l, q("filler-"+strconv.Itoa(int(clock.Now().UnixNano()%1000)), 100, time.Second))
	}
	allow(t, l, key)
	if allow(t, l, key).Allowed {
		t.Error("a fourth call admitted: moving out of the overflow lost calls")
	}
}

// TestMemoryEvictsOnlyIdleKeys: when full, a new key displaces a key
// whose window is empty, never one spending its budget.
func TestMemoryEvictsOnlyIdleKeys(t *testing.T) {
	t.Parallel()
	clock := ratelimittest.NewClock(t0)
	l := ratelimit.NewMemory(ratelimit.WithClock(clock.Now), ratelimit.WithMaxKeys(64))
	allow(t, l, q("hot", 2, time.Hour))
	allow(t, l, q("hot", 2, time.Hour))
	for i := range 10_000 {
		allow(t, l, q("new-"+strconv.Itoa(i), 1, time.Second))
		clock.Advance(time.Millisecond)
	}
	if allow(t, l, q("hot", 2, time.Hour)).Allowed {
		t.Error("hot key got a fresh budget: an active key was evicted")
	}
}

// BenchmarkAllow measures a decision on a known key among 10,000, single
// and parallel, beside a map of golang.org/x/time/rate limiters behind a
// lock (the usual keyed limiter) in the same run, and the cost of a new
// key with room and into a full limiter.
func BenchmarkAllow(b *testing.B) {
	const keys = 10_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "ip|198.51." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	ctx := context.Background()
	newMemory := func() *ratelimit.Memory {
		l := ratelimit.NewMemory()
		for _, k := range names {
			_, _ = l.Allow(ctx, q(k, 1_000_000, time.Minute))
		}
		return l
	}
	type keyed struct {
		mu sync.Mutex
		m  map[string]*rate.Limiter
	}
	newRate := func() *keyed {
		r := &keyed{m: make(map[string]*rate.Limiter, keys)}
		for _, k := range names {
			r.m[k] = rate.NewLimiter(rate.Limit(1_000_000/60.0), 1_000_000)
		}
		return r
	}
	rateAllow := func(r *keyed, k string) bool {
		r.mu.Lock()
		l := r.m[k]
		r.mu.Unlock()
		return l.Allow()
	}
	b.Run("memory", func(b *testing.B) {
		l := newMemory()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = l.Allow(ctx, q(names[i%keys], 1_000_000, time.Minute))
			i++
		}
	})
	b.Run("x_time_rate", func(b *testing.B) {
		r := newRate()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			rateAllow(r, names[i%keys])
			i++
		}
	})
	b.Run("memory_parallel", func(b *testing.B) {
		l := newMemory()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_, _ = l.Allow(ctx, q(names[i%keys], 1_000_000, time.Minute))
				i += 7
			}
		})
	})
	b.Run("x_time_rate_parallel", func(b *testing.B) {
		r := newRate()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				rateAllow(r, names[i%keys])
				i += 7
			}
		})
	})
	// New keys: with room (a limiter sized for them), and into a limiter
	// full of 100,000 active keys (every one goes to the overflow).
	b.Run("new_key_with_room", func(b *testing.B) {
		l := ratelimit.NewMemory(ratelimit.WithMaxKeys(b.N + 64))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = l.Allow(ctx, q("new-"+strconv.Itoa(i), 5, time.Minute))
			i++
		}
	})
	b.Run("new_key_when_full", func(b *testing.B) {
		const full = 100_000
		l := ratelimit.NewMemory(ratelimit.WithMaxKeys(full))
		for i := range full {
			_, _ = l.Allow(ctx, q("active-"+strconv.Itoa(i), 5, time.Minute))
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = l.Allow(ctx, q("new-"+strconv.Itoa(i), 5, time.Minute))
			i++
		}
	})
}

func ExampleMemory() {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l := ratelimit.NewMemory(ratelimit.WithClock(func() time.Time { return now }))
	ip := ratelimit.Quota{Name: "ip", Key: "ip|203.0.113.7", Limit: 3, Window: time.Minute}
	for range 4 {
		d, _ := l.Allow(context.Background(), ip)
		fmt.Println(d.Allowed, d.States()[0].Remaining, d.RetryAfter)
	}
	// The calls sit in a bucket of a tenth of the window, counted whole
	// until it has all left the window: the wait is at most W + W/10.

	// Output:
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 1m6s
}
