package ownership

import "log/slog"

// An Option configures NewInterceptor.
type Option interface{ apply(*Interceptor) }

type optionFunc func(*Interceptor)

func (f optionFunc) apply(i *Interceptor) { f(i) }

// WithLogger sets where a resolver's own failures are logged, with the
// request id. The default is slog.Default().
func WithLogger(log *slog.Logger) Option {
	return optionFunc(func(i *Interceptor) {
		if log != nil {
			i.log = log
		}
	})
}
