package auth

import (
	"context"
	"net/netip"
)

// lockoutStarted tells the observer when the failure just counted for
// email at ip left them locked out. The lockout store says only whether a
// login may proceed, so this asks it once more, after a failure, and only
// with an observer: a failure that follows a Check that allowed the
// attempt, and a Check that now refuses, started a lockout (or a
// concurrent failure did). A failed login already costs a password hash;
// one more Check is small beside it.
func (s *Service) lockoutStarted(ctx context.Context, email string, ip netip.Addr) {
	if _, none := s.observer.(noObserver); none {
		return
	}
	if ok, _, err := s.lockout.Check(ctx, email, ip); err == nil && !ok {
		s.observer.ObserveLockoutStarted()
	}
}
