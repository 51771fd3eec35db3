package detect

import "time"

// Option configures a Detector.
type Option interface{ apply(*Detector) }

type optionFunc func(*Detector)

func (f optionFunc) apply(d *Detector) { f(d) }

// WithBlock blocks the source of every detection for d: the client
// network for credential stuffing and invalid-token bursts, the user for
// enumeration (refresh reuse blocks nothing: its session is already
// revoked). The default, 0, blocks nothing.
func WithBlock(d time.Duration) Option {
	return optionFunc(func(x *Detector) { x.block = d })
}

// WithEnumeration sets how many distinct resource ids one user may be
// refused on within window. The default is EnumerationIDs within
// EnumerationWindow.
func WithEnumeration(ids int, window time.Duration) Option {
	return optionFunc(func(d *Detector) { d.enum = Threshold{max(ids, 1), window} })
}

// WithCredentialStuffing sets how many distinct accounts one client
// network may fail to log in to within window. The default is
// StuffingAccounts within StuffingWindow.
func WithCredentialStuffing(accounts int, window time.Duration) Option {
	return optionFunc(func(d *Detector) { d.stuffing = Threshold{max(accounts, 1), window} })
}

// WithInvalidCredentials sets how many credentials that fail
// verification one client network may present within window. The
// default is InvalidCredentials within InvalidWindow.
func WithInvalidCredentials(n int, window time.Duration) Option {
	return optionFunc(func(d *Detector) { d.invalid = Threshold{max(n, 1), window} })
}

// WithMaxSources bounds the sources kept per kind (and per kind of
// block). The default is DefaultMaxSources.
func WithMaxSources(n int) Option {
	return optionFunc(func(d *Detector) { d.maxSources = max(n, 1) })
}

// WithClock sets the time source. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(d *Detector) { d.now = now })
}

// WithMaxEvents sets how many events are reported for the audit trail in
// a minute, over every source; beyond it they are reported Suppressed and
// then summed up in one. The default is DefaultMaxEvents.
func WithMaxEvents(n int) Option {
	return optionFunc(func(d *Detector) { d.maxEvents = max(n, 1) })
}
