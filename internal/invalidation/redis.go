package invalidation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/connectguard/guard/internal/breaker"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is wrapped by Publish's errors while Redis does not
// answer.
var ErrUnavailable = errors.New("invalidation: redis unavailable")

// Redis is a bus over one Redis pub/sub channel. Pub/sub channels are
// not scoped by database number: deployments sharing a Redis need
// channels of their own.
type Redis struct {
	client   redis.UniversalClient
	channel  string
	origin   string // this replica, so that it skips its own messages
	interval time.Duration
	log      *slog.Logger
	breaker  *breaker.Breaker
}

// An Option configures NewRedis.
type Option interface{ apply(*Redis) }

type optionFunc func(*Redis)

func (f optionFunc) apply(r *Redis) { f(r) }

// WithLogger sets where outages are logged: one line when one starts, one
// when it ends. The default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return optionFunc(func(r *Redis) { r.log = log })
}

// WithInterval sets how long the subscription may stay silent before it
// is pinged, how long the answer may take, and how long after a failure
// the bus waits before it subscribes again. The default is one second: a
// Redis that hangs is noticed within two.
func WithInterval(d time.Duration) Option {
	return optionFunc(func(r *Redis) { r.interval = max(d, time.Millisecond) })
}

// NewRedis returns a bus on channel through client, which it does not
// close. Give client tight timeouts (redislimiter.ClientOptions).
func NewRedis(client redis.UniversalClient, channel string, opts ...Option) *Redis {
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := &Redis{client: client, channel: channel, origin: hex.EncodeToString(b[:]), interval: time.Second}
	for _, o := range opts {
		o.apply(r)
	}
	r.breaker = breaker.New("redis invalidation channel",
		"changes reach the other replicas by the one-second cache expiry and key reload", func(ctx context.Context) error {
			return client.Ping(ctx).Err()
		}, r.interval, r.log)
	return r
}

// Failures returns how many publications and subscriptions failed since
// NewRedis, with the publications skipped while Redis was down.
func (r *Redis) Failures() uint64 { return r.breaker.Failures() }

// Outages returns how many outages began since NewRedis.
func (r *Redis) Outages() uint64 { return r.breaker.Outages() }

// Publish sends e to every other replica. While Redis is down it returns
// an error wrapping ErrUnavailable at once: the receivers' expiry covers
// what they miss.
func (r *Redis) Publish(ctx context.Context, e Event) error {
	if !r.breaker.Up() {
		return ErrUnavailable
	}
	if err := r.client.Publish(ctx, r.channel, encode(r.origin, e)).Err(); err != nil {
		if ctx.Err() == nil {
			r.breaker.Failed(err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Run subscribes to the channel and hands h what other replicas publish,
// until ctx is done. Each time the subscription is made (at start, and
// again after every failure, one interval later) it calls h.Resync.
func (r *Redis) Run(ctx context.Context, h Handler) {
	for {
		r.subscription(ctx, h)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.interval):
		}
	}
}

// subscription is one subscription, until it fails or ctx is done.
func (r *Redis) subscription(ctx context.Context, h Handler) {
	ps := r.client.Subscribe(ctx)
	defer func() { _ = ps.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // unblocks a receive
	defer stop()
	fail := func(err error) {
		if ctx.Err() == nil {
			r.breaker.Failed(err)
		}
	}
	if err := ps.Subscribe(ctx, r.channel); err != nil {
		fail(err)
		return
	}
	subscribed, pinged := false, false
	for {
		msg, err := ps.ReceiveTimeout(ctx, r.interval)
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && errors.As(err, &ne) && ne.Timeout() && subscribed && !pinged:
			// Silence: a quiet channel, or a Redis that hangs. Ask.
			if err := ps.Ping(ctx); err != nil {
				fail(err)
				return
			}
			pinged = true
			continue
		case err != nil:
			fail(err)
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				subscribed = true
				r.breaker.Succeeded()
				h.Resync(ctx)
			}
		case *redis.Pong:
			r.breaker.Succeeded()
		case *redis.Message:
			origin, e, ok := decode(m.Payload)
			switch {
			case !ok:
				h.Resync(ctx)
			case origin != r.origin:
				h.Apply(ctx, e)
			}
		}
	}
}
