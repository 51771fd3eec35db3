package lockout

import "time"

// Option configures a [Memory].
type Option func(*config)

// config holds the optional settings of a [Memory].
type config struct {
	clock   func() time.Time
	maxKeys int
}

func defaultConfig() config {
	return config{
		clock:   time.Now,
		maxKeys: 100_000,
	}
}

// WithClock sets the source of the current time, against which failures are
// counted and lockouts expire. The default is time.Now. A nil function is
// ignored.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.clock = now
		}
	}
}

// WithMaxKeys bounds how many keys a [Memory] remembers of each kind: n
// accounts and n client addresses. When a kind is full, a new key first
// displaces keys with no failure in the window and no active lockout, and only
// when there are none, other keys (preferring those without a lockout), so a
// flood of new keys costs bounded memory at the price of forgetting some
// counts.
//
// The default is 100000 per kind. Values below 1 mean 1.
func WithMaxKeys(n int) Option {
	return func(c *config) { c.maxKeys = max(n, 1) }
}
