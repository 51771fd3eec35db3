package password

import "runtime"

// Option configures a [Hasher].
type Option func(*config)

// config holds the optional settings of a [Hasher].
type config struct {
	params        Params
	maxConcurrent int
}

func defaultConfig() config {
	return config{
		params:        DefaultParams(),
		maxConcurrent: runtime.GOMAXPROCS(0),
	}
}

// WithParams sets the argon2id parameters used for new hashes and as the
// baseline below which Verify asks for a rehash.
//
// The default is [DefaultParams]: the OWASP recommendation of 19 MiB of memory,
// 2 passes, 1 thread, a 16-byte salt and a 32-byte key. Parameters outside the
// bounds documented on [Params] make Hash fail with [ErrInvalidParams].
func WithParams(p Params) Option {
	return func(c *config) { c.params = p }
}

// WithMaxConcurrent bounds how many argon2id computations run at once, so
// memory stays at n times Params.Memory; further callers wait for a slot or
// for their context to end.
//
// The default is runtime.GOMAXPROCS(0) at construction. Values below 1 mean 1.
func WithMaxConcurrent(n int) Option {
	return func(c *config) { c.maxConcurrent = n }
}
