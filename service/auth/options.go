package auth

import (
	"net/netip"
	"time"
)

// An Option configures New.
type Option interface{ apply(*Service) }

type optionFunc func(*Service)

func (f optionFunc) apply(s *Service) { f(s) }

// WithSessionTTL sets the absolute lifetime of a session from login. The
// default is 7 days.
func WithSessionTTL(d time.Duration) Option {
	return optionFunc(func(s *Service) { s.sessionTTL = d })
}

// WithIdleTimeout sets how long a cookie session may go unused. The
// default is 30 minutes.
func WithIdleTimeout(d time.Duration) Option {
	return optionFunc(func(s *Service) { s.idleTimeout = d })
}

// WithTokenTTL tells the service the access token lifetime, so a rotated
// signing key is kept until the tokens it signed have expired. The default
// is 15 minutes.
func WithTokenTTL(d time.Duration) Option {
	return optionFunc(func(s *Service) { s.tokenTTL = d })
}

// WithClock sets the time source. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(s *Service) { s.now = now })
}

// WithPublisher tells the other replicas of every change through p, so
// that they drop their cached state at once. The default is none: other
// replicas see changes within cacheTTL (one second), and rotations when
// they reload the keys (WatchKeys).
func WithPublisher(p Publisher) Option {
	return optionFunc(func(s *Service) { s.publisher = p })
}

// Observer is told of the events of password logins and refresh tokens,
// for metrics. Its methods run on the request path: they must be cheap
// and safe for concurrent use.
type Observer interface {
	// ObserveLogin reports a login's result: LoginOK, LoginInvalid (any
	// bad email, password or disabled account), or LoginLockedOut
	// (refused by a lockout before any password work).
	ObserveLogin(result string)
	// ObserveRefreshReuse reports a spent refresh token presented again,
	// whose session was revoked for it.
	ObserveRefreshReuse()
	// ObserveLockoutStarted reports a failed password check (of Login or
	// ChangePassword) after which the account, the network or both are
	// locked out: it started a lockout, or a concurrent failure did.
	ObserveLockoutStarted()
}

// SourceObserver, when the Observer given to WithObserver also implements
// it, is told who failed or reused what, for the detection of attacks
// (credential stuffing across accounts, refresh reuse): the
// implementation keeps what it needs (a hash of the email, not the
// email). Its methods run on the request path, like Observer's.
type SourceObserver interface {
	// ObserveLoginFailure reports a failed password check of Login at the
	// account email (known or not) from ip (invalid if unknown).
	ObserveLoginFailure(email string, ip netip.Addr)
	// ObserveRefreshReuseBy reports the reuse ObserveRefreshReuse
	// reports, with the session's user and the client's ip.
	ObserveRefreshReuseBy(userID string, ip netip.Addr)
}

// The results ObserveLogin reports.
const (
	LoginOK        = "ok"
	LoginInvalid   = "invalid"
	LoginLockedOut = "locked_out"
)

// WithObserver reports logins and refresh-token reuse to o. By default
// they are not reported (reuse is still logged and audited).
func WithObserver(o Observer) Option {
	return optionFunc(func(s *Service) {
		if o != nil {
			s.observer = o
		}
	})
}

// noObserver is the default Observer.
type noObserver struct{}

func (noObserver) ObserveLogin(string)    {}
func (noObserver) ObserveRefreshReuse()   {}
func (noObserver) ObserveLockoutStarted() {}
