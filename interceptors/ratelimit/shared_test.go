package ratelimit_test

import (
	"context"
	"errors"
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

// TestDecideMatchesMemory: Decide over tallies decides as Memory does.
func TestDecideMatchesMemory(t *testing.T) {
	t.Parallel()
	ratelimittest.MatchesMemory(t, func(_ *testing.T, now func() time.Time) ratelimit.Limiter {
		return newTallyStore(now)
	}, 5000, 1)
}
