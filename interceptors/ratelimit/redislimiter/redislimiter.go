// Package redislimiter keeps rate limits in Redis, so that every replica
// of a service spends the same budgets: a ratelimit.Limiter for
// guard.WithLimiter. It is a package of its own so that adopters without
// Redis do not link its client.
//
// # Algorithm
//
// The same strict sliding window as ratelimit.Memory, with the same
// buckets: each quota's key is a Redis hash of sub-bucket counters (field:
// the bucket's index, Unix nanoseconds over window/ratelimit.SubBuckets;
// value: the calls counted in it). A decision is one Lua script call
// (EVALSHA, loading the script on NOSCRIPT) over every quota of the call:
// it reads the buckets that overlap the last window, drops older fields,
// and counts the call in each key, or, if one quota has no room, in none.
// A key expires by itself a window and a bucket (and a second of margin)
// after its last counted call. Remaining, Reset and RetryAfter are
// computed from the counts the script returns by ratelimit.Decide, the
// code Memory decides with, so both stores answer alike.
//
// Keys are "<prefix><quota key>@<window>", such as
// "guard:rl:ip|203.0.113.7@1m0s": a quota whose window changes (a rolling
// deploy of a new policy) starts a new key rather than misread the old
// buckets. The keys of one decision are different keys: with Redis
// Cluster, put a hash tag in the prefix ("{guard-rl}:") so that they share
// a slot; every rate-limit key then lives on one node.
//
// # Time
//
// Buckets are indexed by the limiter's clock (WithClock), not Redis's
// TIME, so that one fake clock drives the conformance tests. The replicas'
// clocks must therefore agree, as NTP keeps them. A replica whose clock
// is behind counts its calls in the newest bucket any replica wrote (never
// back out of the window); one whose clock is ahead by s moves every
// key's buckets forward as it writes, so calls leave the window up to s
// early: the limit then holds in any rolling interval of the window less
// s. Against buckets of a tenth of the window (6 s of a minute), NTP's
// milliseconds do not matter.
//
// # Timeouts
//
// A limiter decides before every governed call, so a Redis that is slow
// or gone must not hold requests up. ClientOptions sets tight client
// timeouts (100 ms to dial, read, write or wait for a pooled connection;
// no retries). After a failure, the limiter skips Redis for a second
// (WithProbeInterval) and decides as its FailureMode says; a background
// probe, never a request, finds out when Redis answers again. An outage
// therefore costs the requests that meet it one timeout, and the others
// nothing.
//
// # When Redis fails
//
// What a replica does without Redis is a setting (WithOnFailure):
//
//   - FailLocal, the default, decides with a ratelimit.Memory of the
//     replica's own. Every limit then holds per replica: with N replicas a
//     budget is up to N times looser, but none disappears. The per-IP
//     flood budget (guard.WithIPRateLimit) still stops one address from
//     flooding a replica before any RPC work; a user's budget
//     (guard.WithUserRateLimit) still bounds what one account can do per
//     replica; and the per-method
//     budgets keep their shape, such as the demo's Login at 20 a minute
//     per IP, which bounds password guessing at 20×N a minute instead of
//     20 (its lockouts bound the guesses per account too). Failing open
//     instead would lift all of them at once, during an outage an attacker
//     may have caused; failing closed would turn a Redis outage into an
//     outage of every rate-limited method, Login included. While Redis answers, the local store counts every admitted
//     call too, so that a replica's own recent calls still count the
//     moment Redis fails; and for a window after Redis answers again, a
//     call must fit the local store as well, so that calls admitted during
//     the outage, which Redis never saw, still count. Across the
//     transitions too, no replica admits more than a limit in any window.
//   - FailOpen admits every call (with no RateLimit headers): for services
//     where availability matters more than the limits.
//   - FailClosed returns an error wrapping ErrUnavailable, which Guard's
//     callers turn into internal: no call is admitted that Redis did not
//     count.
//
// Every outage is logged twice, when it starts (Error) and when Redis
// answers again (Info), never per request; Failures and Outages count
// them for metrics.
package redislimiter

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/internal/breaker"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is wrapped by the errors of a FailClosed limiter when
// Redis does not answer.
var ErrUnavailable = errors.New("redislimiter: redis unavailable")

//go:embed allow.lua
var allowLua string

// script is the decision, run as EVALSHA (EVAL on NOSCRIPT).
var script = redis.NewScript(allowLua)

// minWindow is the shortest window a Redis decision takes: bucket
// indices stay exact as Lua numbers, and expiry is in milliseconds.
const minWindow = time.Millisecond

// margin is added to a key's time to live beyond its window and a bucket,
// for the skew between the replicas' clocks.
const margin = time.Second

// Limiter is a ratelimit.Limiter keeping its windows in Redis.
type Limiter struct {
	client redis.UniversalClient
	cfg    config
	local  *ratelimit.Memory // FailLocal: the replica's own store

	br *breaker.Breaker // whether Redis answers; outages logged and counted
	// graceUntil (Unix ns of the limiter's clock) ends the period after an
	// outage in which a call must fit the local store too; maxWindow is
	// the longest window decided, which that period lasts (and a bucket).
	graceUntil atomic.Int64
	maxWindow  atomic.Int64
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter keeping its windows in Redis through client,
// which it does not close. Give client tight timeouts (ClientOptions).
func New(client redis.UniversalClient, opts ...Option) *Limiter {
	cfg := config{prefix: "guard:rl:", now: time.Now, log: slog.Default(), probeInterval: time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	l := &Limiter{client: client, cfg: cfg}
	if cfg.mode == FailLocal {
		l.local = ratelimit.NewMemory(ratelimit.WithClock(cfg.now))
	}
	l.br = breaker.New("redis rate-limit store", cfg.mode.consequence(), l.probe, cfg.probeInterval, cfg.log)
	return l
}

// Failures returns how many decisions Redis did not make since New: each
// call to Redis that failed, and each decision made without it while it
// was down.
func (l *Limiter) Failures() uint64 { return l.br.Failures() }

// Outages returns how many outages began since New: the times Redis
// failed while it was thought to be answering.
func (l *Limiter) Outages() uint64 { return l.br.Outages() }

// Allow implements ratelimit.Limiter. When Redis fails, it decides as the
// FailureMode says; an error means Redis could not decide and the mode is
// FailClosed (ErrUnavailable), the quotas are invalid, or ctx ended.
func (l *Limiter) Allow(ctx context.Context, quotas ...ratelimit.Quota) (ratelimit.Decision, error) {
	if err := ratelimit.CheckQuotas(quotas...); err != nil {
		return ratelimit.Decision{}, err
	}
	for _, q := range quotas {
		if q.Window < minWindow {
			return ratelimit.Decision{}, fmt.Errorf("redislimiter: quota %q: window %s, want at least %s", q.Name, q.Window, minWindow)
		}
		for w := int64(q.Window); ; {
			m := l.maxWindow.Load()
			if w <= m || l.maxWindow.CompareAndSwap(m, w) {
				break
			}
		}
	}
	if !l.br.Up() {
		return l.fallback(ctx, quotas, ErrUnavailable)
	}
	now := l.cfg.now()
	if l.local != nil && now.UnixNano() < l.graceUntil.Load() {
		return l.allowInGrace(ctx, quotas, now)
	}
	d, err := l.allowRedis(ctx, quotas, now)
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Decision{}, fmt.Errorf("redislimiter: %w", ctx.Err())
		}
		l.br.Failed(err)
		return l.fallback(ctx, quotas, err)
	}
	if l.local != nil && d.Allowed {
		// Count the call locally too, so that if Redis fails now, this
		// replica still remembers its own recent calls.
		_, _ = l.local.Allow(ctx, quotas...)
	}
	return d, nil
}

// allowInGrace decides in the period after an outage: the call must fit
// the local store, which counted this replica's calls during the outage
// (Redis never saw them), and then Redis. A call the local store admits
// and Redis refuses stays counted locally: the local store may refuse
// early in that period, never admit too much.
func (l *Limiter) allowInGrace(ctx context.Context, quotas []ratelimit.Quota, now time.Time) (ratelimit.Decision, error) {
	ld, err := l.local.Allow(ctx, quotas...)
	if err != nil || !ld.Allowed {
		return ld, err
	}
	d, err := l.allowRedis(ctx, quotas, now)
	if err != nil {
		if ctx.Err() == nil {
			l.br.Failed(err)
		}
		return ld, nil // counted locally already
	}
	return d, nil
}

// allowRedis is one decision in Redis: the script, then ratelimit.Decide
// over the counts it read.
func (l *Limiter) allowRedis(ctx context.Context, quotas []ratelimit.Quota, now time.Time) (ratelimit.Decision, error) {
	var keyBuf [ratelimit.MaxQuotas]string
	keys := keyBuf[:len(quotas)]
	args := make([]any, 0, 3*len(quotas))
	buckets := make([]int64, len(quotas))
	for i, q := range quotas {
		keys[i] = l.cfg.prefix + q.Key + "@" + q.Window.String()
		buckets[i] = ratelimit.BucketIndex(q.Window, now)
		args = append(args, strconv.FormatInt(buckets[i], 10), q.Limit, ttl(q.Window).Milliseconds())
	}
	res, err := script.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("redislimiter: %w", err)
	}
	const per = 1 + ratelimit.SubBuckets + 1 // shift and the counts
	if len(res) != 1+per*len(quotas) {
		return ratelimit.Decision{}, fmt.Errorf("redislimiter: the script returned %d values for %d quotas", len(res), len(quotas))
	}
	var tallyBuf [ratelimit.MaxQuotas]ratelimit.Tally
	tallies := tallyBuf[:len(quotas)]
	for i := range quotas {
		r := res[1+per*i:]
		tallies[i].Newest = buckets[i] + r[0]
		copy(tallies[i].Counts[:], r[1:per])
	}
	d, err := ratelimit.Decide(quotas, tallies, now)
	if err != nil {
		return ratelimit.Decision{}, err
	}
	if d.Allowed != (res[0] == 1) {
		return ratelimit.Decision{}, fmt.Errorf("redislimiter: the script (allowed %d) and ratelimit.Decide (%v) disagree", res[0], d.Allowed)
	}
	return d, nil
}

// ttl is how long a key outlives its last counted call: until the call's
// bucket has left the window, and a margin for clock skew.
func ttl(window time.Duration) time.Duration {
	d := window + window/ratelimit.SubBuckets + margin
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

// fallback decides without Redis, as the FailureMode says; cause is why.
func (l *Limiter) fallback(ctx context.Context, quotas []ratelimit.Quota, cause error) (ratelimit.Decision, error) {
	switch l.cfg.mode {
	case FailOpen:
		return ratelimit.NewDecision(true, 0), nil
	case FailClosed:
		if errors.Is(cause, ErrUnavailable) {
			return ratelimit.Decision{}, cause
		}
		return ratelimit.Decision{}, fmt.Errorf("%w: %w", ErrUnavailable, cause)
	default:
		return l.local.Allow(ctx, quotas...)
	}
}

// probe runs the script on a key of its own, for the breaker while
// Redis is down; when it answers, calls admitted locally during the outage
// keep counting until they have left every window (the grace period).
func (l *Limiter) probe(ctx context.Context) error {
	now := l.cfg.now()
	err := script.Run(ctx, l.client, []string{l.cfg.prefix + "probe"},
		strconv.FormatInt(ratelimit.BucketIndex(time.Second, now), 10), math.MaxInt32, ttl(time.Second).Milliseconds()).Err()
	if err != nil {
		return err
	}
	if l.local != nil {
		w := time.Duration(l.maxWindow.Load())
		l.graceUntil.Store(now.Add(w + w/ratelimit.SubBuckets).UnixNano())
	}
	return nil
}
