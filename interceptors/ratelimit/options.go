package ratelimit

import "time"

// An Option configures a Limiter.
type Option interface{ apply(*config) }

type config struct {
	maxKeys int
	now     func() time.Time
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMaxKeys bounds the keys tracked. When the Limiter is full, a new key
// displaces keys with no call in their last two windows, or else the key
// with the fewest calls among a sample, so memory stays bounded and limits
// weaken only for the keys evicted. The default is 100,000.
func WithMaxKeys(n int) Option {
	return optionFunc(func(c *config) { c.maxKeys = max(1, n) })
}

// WithClock sets the time source. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}
