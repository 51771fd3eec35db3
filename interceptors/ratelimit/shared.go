package ratelimit

import (
	"fmt"
	"time"
)

// This file is for Limiters that keep the windows in a store shared by
// replicas (redislimiter): they keep the same buckets as Memory and
// decide with the same code, so both stores decide alike.

// BucketIndex returns the index of the bucket of t in windows of length
// size: t in Unix nanoseconds over the bucket length, size/SubBuckets
// (at least 1 ns). A shared store names a key's counters by it.
func BucketIndex(size time.Duration, t time.Time) int64 {
	return t.UnixNano() / bucketLength(size)
}

// A Tally is one key's window as a shared store read it, before the call
// being decided.
type Tally struct {
	// Newest is the index (BucketIndex) of the bucket the call is counted
	// in: the bucket of now, or a newer one the store already counts in
	// (written by a replica whose clock is ahead; as in Memory, a clock
	// that is behind counts in the newest bucket, which only ever counts
	// more).
	Newest int64
	// Counts are the calls of buckets Newest-SubBuckets to Newest, oldest
	// first.
	Counts [SubBuckets + 1]int64
}

// Decide is Memory's decision over quotas whose windows a shared store
// read at now (tallies[i] is quotas[i]'s): the call is admitted only if
// every quota has room, and Remaining, Reset and RetryAfter are what
// Memory would say. The store counts the call in each Newest bucket if
// and only if the decision allows it.
func Decide(quotas []Quota, tallies []Tally, now time.Time) (Decision, error) {
	if err := checkQuotas(quotas); err != nil {
		return Decision{}, err
	}
	if len(tallies) != len(quotas) {
		return Decision{}, fmt.Errorf("ratelimit: %d tallies for %d quotas", len(tallies), len(quotas))
	}
	var ws [MaxQuotas]window
	var cs [MaxQuotas]counter
	for i, q := range quotas {
		w := &ws[i]
		w.g, w.newest = bucketLength(q.Window), tallies[i].Newest
		for k, c := range tallies[i].Counts {
			c := uint32(min(max(c, 0), 1<<32-1))
			w.counts[slot(w.newest-SubBuckets+int64(k))] = c
			w.total += int(c)
		}
		cs[i] = counter{w: w}
	}
	return decide(quotas, cs[:len(quotas)], now.UnixNano()), nil
}

// CheckQuotas returns an error for what no Limiter can decide on: no
// quota, more than MaxQuotas, or one whose limit or window is not
// positive. A Limiter checks before it asks its store.
func CheckQuotas(quotas ...Quota) error {
	return checkQuotas(quotas)
}
