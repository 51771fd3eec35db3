package ratelimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Bounds on refusal logging: a flood must not become a flood of log lines.
const (
	// refusalInterval is how often the refusals not logged one by one are
	// summed up in the log.
	refusalInterval = 10 * time.Second
	// refusalKeys is how many keys an interval logs one by one and sums up
	// separately; refusals of further keys are counted together.
	refusalKeys = 100
)

// refusalLog logs refusals without letting a flood of them flood the log:
// in each interval, the first refusal of each of up to refusalKeys keys is
// logged at once, and at the end of the interval one line per key sums up
// the rest, plus one line for keys beyond the bound. An interval starts with
// the first refusal after a quiet one, so an idle server runs no timer.
// At most 2*refusalKeys+1 lines per interval, whatever the flood.
type refusalLog struct {
	log *slog.Logger
	msg string

	mu       sync.Mutex
	counts   map[string]int // refusals not yet logged, per key logged this interval
	overflow int            // refusals of keys beyond refusalKeys
	running  bool           // a flush is scheduled
}

func newRefusalLog(log *slog.Logger, msg string) *refusalLog {
	return &refusalLog{log: log, msg: msg, counts: make(map[string]int)}
}

// refused records a refusal of key; attrs describe this one refusal.
func (r *refusalLog) refused(ctx context.Context, key string, attrs ...slog.Attr) {
	if r == nil || r.log == nil {
		return
	}
	r.mu.Lock()
	if !r.running {
		r.running = true
		time.AfterFunc(refusalInterval, r.flush)
	}
	first := false
	if n, seen := r.counts[key]; seen {
		r.counts[key] = n + 1
	} else if len(r.counts) >= refusalKeys {
		r.overflow++
	} else {
		r.counts[key] = 0
		first = true
	}
	r.mu.Unlock()
	if first {
		r.log.LogAttrs(ctx, slog.LevelWarn, r.msg, append([]slog.Attr{slog.String("key", key)}, attrs...)...)
	}
}

// flush sums up the interval that ends.
func (r *refusalLog) flush() {
	r.mu.Lock()
	counts, overflow := r.counts, r.overflow
	r.counts, r.overflow, r.running = make(map[string]int), 0, false
	r.mu.Unlock()
	for key, n := range counts {
		if n > 0 {
			r.log.Warn(r.msg+" (more)", "key", key, "count", n, "interval", refusalInterval.String())
		}
	}
	if overflow > 0 {
		r.log.Warn(r.msg+" (more)", "key", "(other keys)", "count", overflow, "interval", refusalInterval.String())
	}
}
