package ratelimit

import "time"

// SubBuckets is how many sub-buckets one window is cut into. A window of
// length W counts calls in buckets of W/SubBuckets, and a decision counts
// every bucket that overlaps the last W, the oldest one whole: so in any
// rolling interval of length W at most the limit is admitted (strict),
// and a call may be refused at most W/SubBuckets early (the window seen
// is between W and W + W/SubBuckets long). Memory per key is
// SubBuckets+1 counters whatever the limit. The Redis limiter uses the
// same buckets, so both stores decide alike.
const SubBuckets = 10

// window is the sliding-window state of one key: a ring of SubBuckets+1
// counters, the calls of the buckets that overlap the last W, and their
// total.
type window struct {
	g      int64 // bucket length in nanoseconds: W / SubBuckets
	newest int64 // index (unix ns / g) of the newest bucket
	total  int   // the sum of counts
	counts [SubBuckets + 1]uint32
}

func newWindow(size time.Duration) *window {
	return &window{g: bucketLength(size)}
}

// bucketLength is the length in nanoseconds of the buckets of windows of
// length size: size/SubBuckets, at least 1.
func bucketLength(size time.Duration) int64 {
	return max(int64(size)/SubBuckets, 1)
}

// bucket is the index of the bucket of now.
func (w *window) bucket(now int64) int64 {
	return now / w.g
}

// slot is where bucket b is counted in the ring.
func slot(b int64) int {
	return int(((b % (SubBuckets + 1)) + (SubBuckets + 1)) % (SubBuckets + 1))
}

// advance moves the ring to the bucket of now, emptying the buckets that
// left the window. A clock that went back counts in the newest bucket,
// which only ever counts more.
func (w *window) advance(now int64) {
	b := w.bucket(now)
	if b <= w.newest {
		return
	}
	if b-w.newest > SubBuckets {
		w.counts = [SubBuckets + 1]uint32{}
		w.total = 0
	} else {
		for i := w.newest + 1; i <= b; i++ {
			w.total -= int(w.counts[slot(i)])
			w.counts[slot(i)] = 0
		}
	}
	w.newest = b
}

// count returns the calls counted in the window (after advance).
func (w *window) count() int { return w.total }

// idle reports whether the window counts no call at now: forgetting it
// loses nothing.
func (w *window) idle(now int64) bool {
	b := w.bucket(now)
	if w.total == 0 || b-w.newest > SubBuckets {
		return true
	}
	for j := max(b-SubBuckets, w.newest-SubBuckets); j <= w.newest; j++ {
		if w.counts[slot(j)] > 0 {
			return false
		}
	}
	return true
}

// spend counts one call (after advance).
func (w *window) spend() {
	w.counts[slot(w.newest)]++
	w.total++
}

// wait returns how long from now until the window counts at most fits
// calls: buckets leave the window oldest first, bucket j when now reaches
// (j+1+SubBuckets) bucket lengths.
func (w *window) wait(now int64, fits int) time.Duration {
	left := w.total
	s := slot(w.newest + 1) // the oldest bucket's slot: the ring wraps
	for j := w.newest - SubBuckets; j <= w.newest; j++ {
		left -= int(w.counts[s])
		if left <= fits {
			return time.Duration((j+1+SubBuckets)*w.g - now)
		}
		if s++; s == SubBuckets+1 {
			s = 0
		}
	}
	return time.Duration((w.newest+1+SubBuckets)*w.g - now)
}

// reset returns how long from now until the oldest counted call leaves the
// window (a call is given back), or 0 when none is counted.
func (w *window) reset(now int64) time.Duration {
	if w.total == 0 {
		return 0
	}
	return w.wait(now, w.total-1)
}
