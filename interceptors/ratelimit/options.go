package ratelimit

import (
	"log/slog"
	"net/http"
	"time"
)

// An Option configures NewMemory.
type Option interface{ apply(*config) }

type config struct {
	maxKeys int
	now     func() time.Time
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithMaxKeys bounds the keys Memory counts exactly; beyond them, keys are
// counted in its overflow table (see Memory). The default is 100,000.
func WithMaxKeys(n int) Option {
	return optionFunc(func(c *config) { c.maxKeys = max(1, n) })
}

// WithClock sets the time source. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// An InterceptorOption configures NewInterceptor.
type InterceptorOption interface{ applyInterceptor(*Interceptor) }

type interceptorOptionFunc func(*Interceptor)

func (f interceptorOptionFunc) applyInterceptor(i *Interceptor) { f(i) }

// WithUserLimit gives every authenticated user one budget of requests
// per window over all non-public methods, whatever the credential (token,
// cookie, API key) and protocol, on top of each method's own policy. By
// default there is none.
func WithUserLimit(requests int, window time.Duration) InterceptorOption {
	return interceptorOptionFunc(func(i *Interceptor) {
		i.user = Quota{Name: "user", Limit: requests, Window: window}
	})
}

// WithLogger sets where a failing store is logged. The default is
// slog.Default().
func WithLogger(log *slog.Logger) InterceptorOption {
	return interceptorOptionFunc(func(i *Interceptor) {
		if log != nil {
			i.log = log
		}
	})
}

// A MiddlewareOption configures Middleware.
type MiddlewareOption interface{ applyMiddleware(*ipLimit) }

type middlewareOptionFunc func(*ipLimit)

func (f middlewareOptionFunc) applyMiddleware(m *ipLimit) { f(m) }

// OnRefused calls f with every request Middleware refuses for its budget
// and the refusal (an error with [ErrLimited] in its chain), before the
// answer is written; for an audit trail (guard passes the audit
// interceptor's Refused). f must be quick and must not write to the
// response. By default nothing is called.
func OnRefused(f func(r *http.Request, err error)) MiddlewareOption {
	return middlewareOptionFunc(func(m *ipLimit) { m.onRefused = f })
}
