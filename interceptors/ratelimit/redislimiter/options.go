package redislimiter

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// An Option configures New.
type Option interface{ apply(*config) }

type config struct {
	prefix        string
	now           func() time.Time
	mode          FailureMode
	log           *slog.Logger
	probeInterval time.Duration
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPrefix puts the limiter's keys under prefix, so that they stay apart
// from the database's other keys (and from other deployments' limits).
// The default is "guard:rl:".
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.prefix = prefix })
}

// WithClock sets the time source that buckets are indexed by; every
// replica's must agree (NTP). The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// WithOnFailure sets what the limiter does when Redis fails (see the
// package documentation). The default is FailLocal.
func WithOnFailure(m FailureMode) Option {
	return optionFunc(func(c *config) { c.mode = m })
}

// WithLogger sets where outages are logged: one line when one starts, one
// when it ends. The default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if log != nil {
			c.log = log
		}
	})
}

// WithProbeInterval sets how long after a failure the limiter leaves
// Redis alone before a background probe tries it again. The default is
// one second.
func WithProbeInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.probeInterval = max(d, time.Millisecond) })
}

// FailureMode is what a Limiter does while Redis fails.
type FailureMode int

const (
	// FailLocal decides with a store of the replica's own: every limit
	// holds per replica. The default.
	FailLocal FailureMode = iota
	// FailOpen admits every call.
	FailOpen
	// FailClosed refuses to decide: Allow returns an error wrapping
	// ErrUnavailable.
	FailClosed
)

// String returns the mode's name: local, open or closed.
func (m FailureMode) String() string {
	switch m {
	case FailLocal:
		return "local"
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailureMode(%d)", int(m))
}

// UnmarshalText sets m from its name: local, open or closed.
func (m *FailureMode) UnmarshalText(text []byte) error {
	for _, mode := range []FailureMode{FailLocal, FailOpen, FailClosed} {
		if string(text) == mode.String() {
			*m = mode
			return nil
		}
	}
	return fmt.Errorf("redislimiter: failure mode %q, want local, open or closed", text)
}

// consequence says, for the log, what a replica does during an outage.
func (m FailureMode) consequence() string {
	switch m {
	case FailOpen:
		return "admitting every call, with no rate limit,"
	case FailClosed:
		return "refusing every rate-limited call"
	}
	return "each replica counts alone (limits hold per replica)"
}

// Recommended client settings (ClientOptions): a decision waits at most
// about one of them before the limiter falls back.
const (
	DialTimeout  = 100 * time.Millisecond
	ReadTimeout  = 100 * time.Millisecond
	WriteTimeout = 100 * time.Millisecond
	PoolTimeout  = 100 * time.Millisecond
)

// ClientOptions parses a Redis URL (redis.ParseURL: redis://, rediss://
// for TLS, unix://), such as redis://:password@10.0.0.5:6379/0, into
// client options with the timeouts a limiter needs: DialTimeout,
// ReadTimeout, WriteTimeout and PoolTimeout, no command retries
// (MaxRetries -1; go-redis reads 0 as its default of 3), one dial attempt
// per connection (go-redis otherwise makes 5, 100 ms apart), and context
// deadlines honoured. A query parameter of the URL (dial_timeout=250ms,
// read_timeout, write_timeout, pool_timeout, max_retries) wins over these.
//
// Its errors never repeat the URL, which may hold a password.
func ClientOptions(redisURL string) (*redis.Options, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		// url.Parse's message quotes the whole URL, password included.
		return nil, errors.New("redislimiter: the Redis URL does not parse; write redis://[user:password@]host:port/db")
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	set := func(param string, p *time.Duration, d time.Duration) {
		if !q.Has(param) {
			*p = d
		}
	}
	set("dial_timeout", &opts.DialTimeout, DialTimeout)
	set("read_timeout", &opts.ReadTimeout, ReadTimeout)
	set("write_timeout", &opts.WriteTimeout, WriteTimeout)
	set("pool_timeout", &opts.PoolTimeout, PoolTimeout)
	if !q.Has("max_retries") {
		opts.MaxRetries = -1
	}
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	return opts, nil
}
