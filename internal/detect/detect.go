// Package detect notices attacks as they happen, from what the security
// layer already observes: a principal probing many resource ids
// (enumeration), failed logins at many accounts from one client network
// (credential stuffing), a refresh token presented twice (refresh reuse),
// and a burst of credentials that fail verification from one client
// network (invalid-token burst).
//
// Each detection is reported once per source per window, so that an
// attacker cannot turn detection itself into a flood of audit rows. With
// WithBlock, a detection also blocks its source for a while: the client
// network (IPv6: /64) for credential stuffing and invalid-token bursts,
// the user for enumeration. Refresh reuse blocks nothing: its session is
// already revoked.
//
// State is per process and bounded: per kind at most WithMaxSources
// sources, each holding at most its threshold of ids or timestamps, kept
// in boundedmap maps that drop idle sources first.
package detect

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/internal/boundedmap"
)

// Kind is what was detected: one of the Kind* constants, a closed set (a
// metric label).
type Kind string

// The kinds of suspicious activity.
const (
	KindEnumeration        Kind = "enumeration"
	KindCredentialStuffing Kind = "credential_stuffing" //nolint:gosec // a label, not a credential
	KindRefreshReuse       Kind = "refresh_reuse"
	KindInvalidTokenBurst  Kind = "invalid_token_burst"
)

// Kinds lists every Kind.
func Kinds() []Kind {
	return []Kind{KindEnumeration, KindCredentialStuffing, KindRefreshReuse, KindInvalidTokenBurst}
}

// The default thresholds: how many distinct ids, accounts or invalid
// credentials of one source within the window raise a detection.
const (
	EnumerationIDs     = 20
	EnumerationWindow  = time.Minute
	StuffingAccounts   = 10
	StuffingWindow     = 10 * time.Minute
	InvalidCredentials = 20
	InvalidWindow      = time.Minute
	DefaultMaxSources  = 10000
	// DefaultMaxEvents is how many events a Detector reports for the
	// audit trail in a minute, over every source: beyond it events are
	// only counted (Event.Suppressed), then summed up in one.
	DefaultMaxEvents   = 100
	defaultReuseWindow = time.Minute // one refresh-reuse event per user per window
)

// Event is a detection, or the block that follows it.
type Event struct {
	Kind Kind
	// UserID is the user of an enumeration or refresh reuse, else "".
	UserID string
	// Network is the client network (IPv6: its /64), when known.
	Network netip.Addr
	// Detail says what was seen, without secrets: "enumeration: user
	// u1 refused on 20 distinct resource ids within 1m0s".
	Detail string
	// Blocked is how long the source is blocked from now; 0 when it is
	// not (no WithBlock, or the event is the detection itself).
	Blocked time.Duration
	// Suppressed marks an event beyond WithMaxEvents in its minute: to be
	// counted (a metric), not written or logged one by one.
	Suppressed bool
	// Count, in the summary of suppressed events (Kind ""), is how many
	// there were; 0 otherwise.
	Count int64
}

// Reporter receives every Event. It is called without the Detector's
// lock held, on the request path of the call that crossed the threshold.
type Reporter func(Event)

// Threshold is a count within a window.
type Threshold struct {
	Count  int
	Window time.Duration
}

// Detector keeps the windows of every source. It is safe for concurrent
// use. Create it with New.
type Detector struct {
	report     Reporter
	now        func() time.Time
	block      time.Duration
	maxSources int
	enum       Threshold
	stuffing   Threshold
	invalid    Threshold
	reuse      time.Duration
	maxEvents  int

	// The budget of reported events: per minute from minute, written
	// of them so far, suppressed beyond the budget (not yet summed up).
	events struct {
		sync.Mutex
		minute     time.Time
		written    int
		suppressed int64
		timer      bool
	}

	mu       sync.Mutex
	enumIDs  *boundedmap.Map[string, *distinct, time.Time]
	accounts *boundedmap.Map[netip.Addr, *distinct, time.Time]
	bursts   *boundedmap.Map[netip.Addr, *burst, time.Time]
	reused   *boundedmap.Map[string, time.Time, time.Time] // user: quiet until
	users    *boundedmap.Map[string, time.Time, time.Time] // blocked until
	networks *boundedmap.Map[netip.Addr, time.Time, time.Time]
}

// New returns a Detector that reports to report.
func New(report Reporter, opts ...Option) *Detector {
	d := &Detector{
		report:     report,
		now:        time.Now,
		maxSources: DefaultMaxSources,
		enum:       Threshold{EnumerationIDs, EnumerationWindow},
		stuffing:   Threshold{StuffingAccounts, StuffingWindow},
		invalid:    Threshold{InvalidCredentials, InvalidWindow},
		reuse:      defaultReuseWindow,
		maxEvents:  DefaultMaxEvents,
	}
	for _, o := range opts {
		o.apply(d)
	}
	d.enumIDs = newDistinctMap[string](d.maxSources, d.enum.Window)
	d.accounts = newDistinctMap[netip.Addr](d.maxSources, d.stuffing.Window)
	d.bursts = boundedmap.New[netip.Addr](d.maxSources, boundedmap.Rule[*burst, time.Time]{
		Sweeps: []func(*burst, time.Time) bool{func(b *burst, now time.Time) bool {
			return !now.Before(b.quiet) && now.Sub(b.last()) >= d.invalid.Window
		}},
		Rank: func(b *burst, now time.Time) int { return b.n + quietRank(b.quiet, now) },
	})
	d.reused = newUntilMap[string](d.maxSources)
	d.users = newUntilMap[string](d.maxSources)
	d.networks = newUntilMap[netip.Addr](d.maxSources)
	return d
}

// quietRank ranks a source that was just reported above any other, so
// that a flood of new sources does not evict it and have it reported
// again.
func quietRank(quiet, now time.Time) int {
	if now.Before(quiet) {
		return 1 << 20
	}
	return 0
}

// distinct is a source's distinct ids (hashed) with when each was last
// seen, at most the threshold of them, and until when it stays quiet
// after a detection.
type distinct struct {
	seen  map[uint64]time.Time
	last  time.Time
	quiet time.Time
}

func newDistinctMap[K comparable](maxKeys int, window time.Duration) *boundedmap.Map[K, *distinct, time.Time] {
	return boundedmap.New[K](maxKeys, boundedmap.Rule[*distinct, time.Time]{
		Sweeps: []func(*distinct, time.Time) bool{func(s *distinct, now time.Time) bool {
			return !now.Before(s.quiet) && now.Sub(s.last) >= window
		}},
		Rank: func(s *distinct, now time.Time) int { return len(s.seen) + quietRank(s.quiet, now) },
	})
}

// add records id at now and reports whether the source just crossed t.
func (s *distinct) add(id uint64, now time.Time, t Threshold) bool {
	for k, at := range s.seen {
		if now.Sub(at) >= t.Window {
			delete(s.seen, k)
		}
	}
	if _, ok := s.seen[id]; ok || len(s.seen) < t.Count {
		s.seen[id] = now
	}
	s.last = now
	if len(s.seen) < t.Count || now.Before(s.quiet) {
		return false
	}
	s.quiet = now.Add(t.Window)
	return true
}

// burst is a ring of the times of a source's last failures.
type burst struct {
	times []time.Time
	next  int
	n     int
	quiet time.Time
}

func (b *burst) last() time.Time {
	return b.times[(b.next+len(b.times)-1)%len(b.times)]
}

// add records a failure at now and reports whether the source just
// crossed t: its t.Count-th last failure is within t.Window.
func (b *burst) add(now time.Time, t Threshold) bool {
	b.times[b.next] = now
	b.next = (b.next + 1) % len(b.times)
	b.n = min(b.n+1, len(b.times))
	oldest := b.times[b.next%len(b.times)]
	if b.n < t.Count || now.Sub(oldest) >= t.Window || now.Before(b.quiet) {
		return false
	}
	b.quiet = now.Add(t.Window)
	return true
}

func newUntilMap[K comparable](maxKeys int) *boundedmap.Map[K, time.Time, time.Time] {
	return boundedmap.New[K](maxKeys, boundedmap.Rule[time.Time, time.Time]{
		Sweeps: []func(time.Time, time.Time) bool{func(until, now time.Time) bool { return !now.Before(until) }},
		Rank:   func(until, now time.Time) int { return int(until.Sub(now) / time.Second) },
	})
}

// hash is a short hash of s: what is kept of an id or an email.
func hash(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// Refused records that userID was refused (not found or permission
// denied) on the resource id of kind resource.
func (d *Detector) Refused(userID, resource, id string) {
	if userID == "" || id == "" {
		return
	}
	now := d.now()
	d.mu.Lock()
	s, ok := d.enumIDs.Get(userID)
	if !ok {
		s = &distinct{seen: make(map[uint64]time.Time)}
		d.enumIDs.Put(userID, s, now)
	}
	hit := s.add(hash(resource+"\x00"+id), now, d.enum)
	var blocked time.Duration
	if hit {
		blocked = d.blockUserLocked(userID, now)
	}
	d.mu.Unlock()
	if hit {
		d.raise(Event{Kind: KindEnumeration, UserID: userID, Detail: fmt.Sprintf(
			"enumeration: user %s refused on %d distinct %s ids within %s", userID, d.enum.Count, resource, d.enum.Window)}, blocked)
	}
}

// LoginFailed records a failed login at the account email from ip. Only
// a hash of email is kept.
func (d *Detector) LoginFailed(email string, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	network := clientip.Network(ip)
	now := d.now()
	d.mu.Lock()
	s, ok := d.accounts.Get(network)
	if !ok {
		s = &distinct{seen: make(map[uint64]time.Time)}
		d.accounts.Put(network, s, now)
	}
	hit := s.add(hash(email), now, d.stuffing)
	var blocked time.Duration
	if hit {
		blocked = d.blockNetworkLocked(network, now)
	}
	d.mu.Unlock()
	if hit {
		d.raise(Event{Kind: KindCredentialStuffing, Network: network, Detail: fmt.Sprintf(
			"credential_stuffing: failed logins at %d distinct accounts from network %s within %s",
			d.stuffing.Count, network, d.stuffing.Window)}, blocked)
	}
}

// InvalidCredential records a credential that failed verification,
// presented from ip.
func (d *Detector) InvalidCredential(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	network := clientip.Network(ip)
	now := d.now()
	d.mu.Lock()
	b, ok := d.bursts.Get(network)
	if !ok {
		b = &burst{times: make([]time.Time, d.invalid.Count)}
		d.bursts.Put(network, b, now)
	}
	hit := b.add(now, d.invalid)
	var blocked time.Duration
	if hit {
		blocked = d.blockNetworkLocked(network, now)
	}
	d.mu.Unlock()
	if hit {
		d.raise(Event{Kind: KindInvalidTokenBurst, Network: network, Detail: fmt.Sprintf(
			"invalid_token_burst: %d invalid credentials from network %s within %s",
			d.invalid.Count, network, d.invalid.Window)}, blocked)
	}
}

// RefreshReused records a refresh token of userID presented again, from
// ip. Each reuse revokes a session, so each is reported, except that
// one user's reuses within a minute are reported once. It blocks
// nothing: the session is already revoked, and a block of the user would
// let whoever holds a leaked spent token lock its owner out.
func (d *Detector) RefreshReused(userID string, ip netip.Addr) {
	now := d.now()
	var network netip.Addr
	if ip.IsValid() {
		network = clientip.Network(ip)
	}
	d.mu.Lock()
	if until, ok := d.reused.Get(userID); ok && now.Before(until) {
		d.mu.Unlock()
		return
	}
	d.reused.Put(userID, now.Add(d.reuse), now)
	d.mu.Unlock()
	from := ""
	if network.IsValid() {
		from = " from network " + network.String()
	}
	d.raise(Event{Kind: KindRefreshReuse, UserID: userID, Network: network, Detail: fmt.Sprintf(
		"refresh_reuse: a spent refresh token of user %s presented again%s", userID, from)}, 0)
}

// raise reports e, then its block if there is one.
func (d *Detector) raise(e Event, blocked time.Duration) {
	d.budgeted(e)
	if blocked <= 0 {
		return
	}
	e.Blocked = blocked
	if e.UserID != "" {
		e.Detail = fmt.Sprintf("blocked user %s for %s after %s", e.UserID, blocked, e.Kind)
	} else {
		e.Detail = fmt.Sprintf("blocked network %s for %s after %s", e.Network, blocked, e.Kind)
	}
	d.budgeted(e)
}

// budgeted reports e, suppressed beyond the minute's budget, so that a
// flood of sources (IPv6 networks are cheap) cannot become a flood of
// audit rows. The suppressed events of a minute are summed up in one
// event: by the first event of a later minute, or a minute after the
// first suppression, whichever comes first.
func (d *Detector) budgeted(e Event) {
	now := d.now()
	b := &d.events
	b.Lock()
	var summary int64
	if b.minute.IsZero() || now.Sub(b.minute) >= time.Minute {
		b.minute, b.written = now, 0
		summary, b.suppressed = b.suppressed, 0
	}
	if b.written < d.maxEvents {
		b.written++
	} else {
		e.Suppressed = true
		b.suppressed++
		if !b.timer {
			b.timer = true
			time.AfterFunc(time.Minute, d.flushSuppressed)
		}
	}
	b.Unlock()
	if summary > 0 {
		d.report(summarize(summary))
	}
	d.report(e)
}

// flushSuppressed reports the summary of the events suppressed so far.
func (d *Detector) flushSuppressed() {
	b := &d.events
	b.Lock()
	n := b.suppressed
	b.suppressed, b.timer = 0, false
	b.Unlock()
	if n > 0 {
		d.report(summarize(n))
	}
}

func summarize(n int64) Event {
	return Event{Count: n, Detail: fmt.Sprintf(
		"%d more detections and blocks not recorded one by one (beyond the budget of a minute); guard_suspicious_activity_total counts them by kind", n)}
}

func (d *Detector) blockUserLocked(userID string, now time.Time) time.Duration {
	if d.block <= 0 {
		return 0
	}
	d.users.Put(userID, now.Add(d.block), now)
	return d.block
}

func (d *Detector) blockNetworkLocked(network netip.Addr, now time.Time) time.Duration {
	if d.block <= 0 {
		return 0
	}
	d.networks.Put(network, now.Add(d.block), now)
	return d.block
}

// UserBlocked reports whether userID is blocked, and for how much
// longer.
func (d *Detector) UserBlocked(userID string) (time.Duration, bool) {
	if d.block <= 0 || userID == "" {
		return 0, false
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.users.Get(userID)
	if !ok || !now.Before(until) {
		return 0, false
	}
	return until.Sub(now), true
}

// NetworkBlocked reports whether the network of ip is blocked, and for
// how much longer.
func (d *Detector) NetworkBlocked(ip netip.Addr) (time.Duration, bool) {
	if d.block <= 0 || !ip.IsValid() {
		return 0, false
	}
	now := d.now()
	network := clientip.Network(ip)
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.networks.Get(network)
	if !ok || !now.Before(until) {
		return 0, false
	}
	return until.Sub(now), true
}

// UnblockUser lifts the block of userID, and reports whether there was
// one. Its enumeration window starts afresh.
func (d *Detector) UnblockUser(userID string) bool {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.users.Get(userID)
	d.users.Delete(userID)
	d.enumIDs.Delete(userID)
	return ok && now.Before(until)
}

// UnblockNetwork lifts the block of the network of ip, and reports
// whether there was one. Its windows start afresh.
func (d *Detector) UnblockNetwork(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	network := clientip.Network(ip)
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.networks.Get(network)
	d.networks.Delete(network)
	d.accounts.Delete(network)
	d.bursts.Delete(network)
	return ok && now.Before(until)
}

// Sources returns how many sources the Detector holds state for, of
// every kind together, blocks included: at most 6 times WithMaxSources.
func (d *Detector) Sources() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.enumIDs.Len() + d.accounts.Len() + d.bursts.Len() + d.reused.Len() + d.users.Len() + d.networks.Len()
}
