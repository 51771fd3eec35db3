package ownership

import (
	"context"
	"log/slog"

	"github.com/connectguard/guard/interceptors/authn"
)

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

// Observer is told of every call ownership refuses because the caller may
// not see or may not change the resource, for metrics. It is called on the
// request path, so it must be cheap and safe for concurrent use.
type Observer interface {
	// ObserveDenial reports that a call of procedure (a procedure of the
	// policy table) was refused for reason, ReasonOwnership.
	ObserveDenial(procedure, reason string)
}

// RefusalObserver, when the Observer given to WithObserver also
// implements it, is told of every call ownership refuses on a resource id
// (not found, whether the resource exists or not, or permission denied),
// with the caller and the id: for the detection of one caller probing
// many ids. It runs on the request path: it must be cheap and safe for
// concurrent use.
type RefusalObserver interface {
	ObserveRefusal(ctx context.Context, p *authn.Principal, resource, id string)
}

// ReasonOwnership is the reason ownership gives an Observer. A resource
// that does not exist is not a denial and is not reported.
const ReasonOwnership = "ownership"

// WithObserver reports each denial to o. By default denials are not
// reported.
func WithObserver(o Observer) Option {
	return optionFunc(func(i *Interceptor) { i.observer = o })
}
