package redislockout

import (
	"fmt"
	"log/slog"
	"time"
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

// WithPrefix puts the store's keys under prefix. The default is
// "guard:lockout:".
func WithPrefix(prefix string) Option {
	return optionFunc(func(c *config) { c.prefix = prefix })
}

// WithClock sets the time source that failures and lockouts are timed
// by; every replica's must agree (NTP). The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// WithOnFailure sets what the store does when Redis fails (see the
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

// WithProbeInterval sets how long after a failure the store leaves Redis
// alone before a background probe tries it again. The default is one
// second.
func WithProbeInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.probeInterval = d })
}

// FailureMode is what a Store does while Redis fails.
type FailureMode int

const (
	// FailLocal decides with a store of the replica's own: every
	// threshold holds per replica. The default.
	FailLocal FailureMode = iota
	// FailClosed refuses to decide: Check returns an error wrapping
	// ErrUnavailable, and logins fail.
	FailClosed
)

// String returns the mode's name: local or closed.
func (m FailureMode) String() string {
	switch m {
	case FailLocal:
		return "local"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailureMode(%d)", int(m))
}

// UnmarshalText sets m from its name: local or closed.
func (m *FailureMode) UnmarshalText(text []byte) error {
	for _, mode := range []FailureMode{FailLocal, FailClosed} {
		if string(text) == mode.String() {
			*m = mode
			return nil
		}
	}
	return fmt.Errorf("redislockout: failure mode %q, want local or closed", text)
}

// consequence says, for the log, what a replica does during an outage.
func (m FailureMode) consequence() string {
	if m == FailClosed {
		return "refusing every login"
	}
	return "each replica counts failed logins alone (thresholds hold per replica)"
}
