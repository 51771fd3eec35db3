package ratelimit_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/ratelimittest"
)

// tallyStore keeps each key's window as redislimiter's script keeps it in
// Redis (a map of bucket index to calls; fields older than the window
// dropped; a call counted in the newest bucket) and decides with
// ratelimit.Decide: the shared stores' algorithm, without Redis.
type tallyStore struct {
	mu   sync.Mutex
	now  func() time.Time
	keys map[string]map[int64]int64
}

func newTallyStore(now func() time.Time) *tallyStore {
	return &tallyStore{now: now, keys: make(map[string]map[int64]int64)}
}

func (s *tallyStore) Allow(_ context.Context, quotas ...ratelimit.Quota) (ratelimit.Decision, error) {
	if err := ratelimit.CheckQuotas(quotas...); err != nil {
		return ratelimit.Decision{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	tallies := make([]ratelimit.Tally, len(quotas))
	allowed := true
	for i, q := range quotas {
		h := s.keys[q.Key]
		if h == nil {
			h = make(map[int64]int64)
			s.keys[q.Key] = h
		}
		newest := ratelimit.BucketIndex(q.Window, now)
		for f := range h {
			newest = max(newest, f)
		}
		used := int64(0)
		for f, c := range h {
			if age := newest - f; age > ratelimit.SubBuckets {
				delete(h, f)
			} else {
				tallies[i].Counts[ratelimit.SubBuckets-age] = c
				used += c
			}
		}
		tallies[i].Newest = newest
		if used+1 > int64(q.Limit) {
			allowed = false
		}
	}
	if allowed {
		for i, q := range quotas {
			s.keys[q.Key][tallies[i].Newest]++
		}
	}
	d, err := ratelimit.Decide(quotas, tallies, now)
	if err == nil && d.Allowed != allowed {
		err = errors.New("the store and Decide disagree")
	}
	return d, err
}

// TestDecideConformance holds the shared stores' algorithm (ratelimit.Decide
// over tallies) to the conformance suite, with or without a Redis.
func TestDecideConformance(t *testing.T) {
	t.Parallel()
	ratelimittest.Run(t, func(_ *testing.T, now func() time.Time) ratelimit.Limiter {
		return newTallyStore(now)
	})
}

// TestDecideMatchesMemory: over a random workload of calls against one to
// four quotas of mixed limits and windows, Decide over tallies and Memory
// give the same decisions, field by field: allowed, RetryAfter, and each
// quota's Remaining and Reset.
func TestDecideMatchesMemory(t *testing.T) {
	t.Parallel()
	clock := ratelimittest.NewClock(t0.Add(123456789))
	mem := ratelimit.NewMemory(ratelimit.WithClock(clock.Now))
	shared := newTallyStore(clock.Now)
	pool := []ratelimit.Quota{
		{Name: "ip", Key: "ip", Limit: 7, Window: 10 * time.Second},
		{Name: "user", Key: "user", Limit: 12, Window: time.Minute},
		{Name: "method", Key: "method", Limit: 3, Window: 5 * time.Second},
		{Name: "other", Key: "other", Limit: 1, Window: 1500 * time.Millisecond},
		{Name: "hour", Key: "hour", Limit: 20, Window: time.Hour},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	admitted := 0
	for i := range 5000 {
		clock.Advance(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		n := 1 + rng.IntN(ratelimit.MaxQuotas)
		var quotas []ratelimit.Quota
		for _, j := range rng.Perm(len(pool))[:n] {
			quotas = append(quotas, pool[j])
		}
		want := allow(t, mem, quotas...)
		got := allow(t, shared, quotas...)
		if got.Allowed {
			admitted++
		}
		if got.Allowed != want.Allowed || got.RetryAfter != want.RetryAfter {
			t.Fatalf("call %d: Decide: allowed %v, RetryAfter %v; Memory: %v, %v", i, got.Allowed, got.RetryAfter, want.Allowed, want.RetryAfter)
		}
		for k, st := range got.States() {
			if w := want.States()[k]; st != w {
				t.Fatalf("call %d, quota %s: Decide %+v, Memory %+v", i, st.Quota.Name, st, w)
			}
		}
	}
	if admitted < 500 || admitted > 4500 {
		t.Errorf("%d of 5000 calls admitted: the workload should both admit and refuse often", admitted)
	}
}
