package token

import "time"

// maxLeeway caps clock-skew tolerance: more would stretch every token's life.
const maxLeeway = 30 * time.Second

// Option configures a [Service].
type Option func(*config)

// config holds the optional settings of a [Service].
type config struct {
	ttl       time.Duration
	leeway    time.Duration
	clock     func() time.Time
	cacheSize int
}

func defaultConfig() config {
	return config{
		ttl:       15 * time.Minute,
		leeway:    maxLeeway,
		clock:     time.Now,
		cacheSize: 10000,
	}
}

// WithTTL sets how long a signed token stays valid. The default is 15 minutes.
// Values below one second are ignored, since exp has second precision.
func WithTTL(d time.Duration) Option {
	return func(c *config) {
		if d >= time.Second {
			c.ttl = d
		}
	}
}

// WithLeeway sets the clock-skew tolerance applied to exp, nbf and iat.
// The default is 30 seconds, which is also the maximum: larger values are
// clamped to 30 seconds and negative ones to zero. It is also at most a
// fifth of the TTL.
func WithLeeway(d time.Duration) Option {
	return func(c *config) { c.leeway = min(max(d, 0), maxLeeway) }
}

// WithClock sets the source of the current time for signing and verifying.
// The default is time.Now. A nil function is ignored.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithCacheSize bounds how many verified tokens are remembered until they
// expire, so a repeated token skips signature verification. The default is
// 10000 entries; 0 or less disables the cache.
func WithCacheSize(n int) Option {
	return func(c *config) { c.cacheSize = max(n, 0) }
}
