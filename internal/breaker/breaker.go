// Package breaker tracks whether Redis answers, for the stores that keep
// a replica's shared state in it (rate limits, lockouts, invalidations),
// so that a slow or dead Redis never holds a request up.
//
// After a failure the breaker is open: callers skip Redis and do what
// their failure mode says, without waiting for a timeout, and a
// background probe (never a request) tries Redis once per probe interval.
// The first success closes it again. Each outage is logged twice, when it
// starts (Error) and when it ends (Info), never per call, and counted.
package breaker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Breaker is safe for concurrent use.
type Breaker struct {
	what, consequence string
	probe             func(ctx context.Context) error
	interval          time.Duration
	log               *slog.Logger

	failures atomic.Uint64
	outages  atomic.Uint64
	// downSince is when the current outage started (Unix ns), 0 while
	// Redis answers; retryAt is when a probe may next run, and probing
	// is set while one runs. failuresAtStart is Failures when the
	// outage started.
	downSince       atomic.Int64
	retryAt         atomic.Int64
	probing         atomic.Bool
	failuresAtStart atomic.Uint64
}

// New returns a closed breaker (Redis answers) for what, such as "redis
// lockout store"; consequence says, for the log, what the replica does
// during an outage. probe, if not nil, is run in the background at most
// once per interval while the breaker is open; nil leaves closing it to
// Succeeded.
func New(what, consequence string, probe func(ctx context.Context) error, interval time.Duration, log *slog.Logger) *Breaker {
	if log == nil {
		log = slog.Default()
	}
	return &Breaker{what: what, consequence: consequence, probe: probe, interval: max(interval, time.Millisecond), log: log}
}

// Up reports whether to call Redis. While it does not answer, Up counts a
// failure (the caller decides without Redis) and, once per probe
// interval, starts a probe.
func (b *Breaker) Up() bool {
	if b.downSince.Load() == 0 {
		return true
	}
	b.failures.Add(1)
	if b.probe != nil && time.Now().UnixNano() >= b.retryAt.Load() && b.probing.CompareAndSwap(false, true) {
		go b.runProbe()
	}
	return false
}

// Failed records a failed call to Redis, and starts an outage if none is
// under way. A call that found no free connection in time (a burst wider
// than the pool) starts none: Redis itself may be answering.
func (b *Breaker) Failed(err error) {
	failures := b.failures.Add(1)
	if errors.Is(err, redis.ErrPoolTimeout) {
		return
	}
	now := time.Now()
	b.retryAt.Store(now.Add(b.interval).UnixNano())
	if !b.downSince.CompareAndSwap(0, now.UnixNano()) {
		return
	}
	b.outages.Add(1)
	b.failuresAtStart.Store(failures - 1)
	b.log.Error(b.what+" unavailable: "+b.consequence+" until it answers",
		"probe_interval", b.interval.String(), "error", err)
}

// Succeeded records that Redis answered: it ends the outage under way,
// if any, and reports whether it did.
func (b *Breaker) Succeeded() bool {
	since := b.downSince.Swap(0)
	if since == 0 {
		return false
	}
	b.log.Info(b.what+" answers again",
		"outage", time.Since(time.Unix(0, since)).Round(time.Millisecond).String(),
		"calls_without_redis", b.failures.Load()-b.failuresAtStart.Load())
	return true
}

// Failures returns how many calls Redis did not answer since New: each
// call that failed, and each one skipped while it was down.
func (b *Breaker) Failures() uint64 { return b.failures.Load() }

// Outages returns how many outages began since New.
func (b *Breaker) Outages() uint64 { return b.outages.Load() }

func (b *Breaker) runProbe() {
	defer b.probing.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.probe(ctx); err != nil {
		b.retryAt.Store(time.Now().Add(b.interval).UnixNano())
		return
	}
	b.Succeeded()
}
