package authz

// An Option configures NewInterceptor.
type Option interface{ apply(*Interceptor) }

type optionFunc func(*Interceptor)

func (f optionFunc) apply(i *Interceptor) { f(i) }

// Observer is told of every call authz refuses, for metrics. It is called
// on the request path, so it must be cheap and safe for concurrent use.
type Observer interface {
	// ObserveDenial reports that a call of procedure (a procedure of the
	// policy table) was refused for reason: ReasonRole or ReasonScope.
	ObserveDenial(procedure, reason string)
}

// The reasons authz gives an Observer.
const (
	ReasonRole  = "role"
	ReasonScope = "scope"
)

// WithObserver reports each denial to o. By default denials are not
// reported (the refusal itself still reaches the access log).
func WithObserver(o Observer) Option {
	return optionFunc(func(i *Interceptor) { i.observer = o })
}
