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
// counters, the calls of the buckets that overlap the last W.
type window struct {
	size   time.Duration
	newest int64 // index (unix ns / bucket length) of the newest bucket
	counts [SubBuckets + 1]uint32
}

func newWindow(size time.Duration) *window {
	return &window{size: size}
}

// bucketLen is the length of one bucket.
func (w *window) bucketLen() int64 {
	return max(int64(w.size)/SubBuckets, 1)
}

// bucket is the index of the bucket of now.
func (w *window) bucket(now int64) int64 {
	return now / w.bucketLen()
}

// advance moves the ring to bucket b, emptying the buckets that left the
// window. A clock that went back counts in the newest bucket, which only
// ever counts more.
func (w *window) advance(b int64) {
	if b <= w.newest {
		return
	}
	if b-w.newest > SubBuckets {
		w.counts = [SubBuckets + 1]uint32{}
	} else {
		for i := w.newest + 1; i <= b; i++ {
			w.counts[i%(SubBuckets+1)] = 0
		}
	}
	w.newest = b
}

// count returns the calls counted in the window (after advance).
func (w *window) count() int {
	n := 0
	for _, c := range w.counts {
		n += int(c)
	}
	return n
}

// idle reports whether the window counts no call at now: forgetting it
// loses nothing.
func (w *window) idle(now int64) bool {
	if w.bucket(now)-w.newest > SubBuckets {
		return true
	}
	c := *w
	c.advance(w.bucket(now))
	return c.count() == 0
}

// spend counts one call at now (after advance).
func (w *window) spend() {
	w.counts[w.newest%(SubBuckets+1)]++
}

// wait returns how long from now until the window counts at most
// `fits` calls, given that it counts more now: buckets leave the window
// oldest first, bucket j when now reaches (j+1+SubBuckets) bucket lengths.
func (w *window) wait(now int64, fits int) time.Duration {
	g := w.bucketLen()
	left := w.count()
	for j := w.newest - SubBuckets; j <= w.newest; j++ {
		left -= int(w.counts[((j%(SubBuckets+1))+(SubBuckets+1))%(SubBuckets+1)])
		if left <= fits {
			return time.Duration((j+1+SubBuckets)*g - now)
		}
	}
	return time.Duration((w.newest+1+SubBuckets)*g - now)
}

// reset returns how long from now until the oldest counted call leaves the
// window (a call is given back), or 0 when none is counted.
func (w *window) reset(now int64) time.Duration {
	if w.count() == 0 {
		return 0
	}
	return w.wait(now, w.count()-1)
}
