// Package lockout defends a login endpoint against password guessing by
// locking out what fails too often, without handing an attacker a way to
// lock the owner out of an account.
//
// Failures are counted under three kinds of key, each in a sliding window
// under its own [Policy]:
//
//   - an account from one client network (an IPv4 address, an IPv6 /64):
//     a low threshold. A guesser at one network locks only itself out of
//     that account; the owner, elsewhere, logs in as usual.
//   - an account from everywhere: a much higher ceiling, which bounds a
//     guessing run spread over many networks. A network from which the
//     account logged in successfully within the last 30 days is exempt from
//     this lockout (it keeps its own per-network limit), so even such a run
//     does not lock the owner out of their usual networks.
//   - a client network over all accounts: stops one client spraying
//     guesses over many accounts.
//
// The account key is the normalised email, whether or not an account by
// that name exists, so unknown accounts behave exactly like known ones and
// lockouts reveal nothing about existence. When a key reaches its threshold
// it is locked out: [Store.Check] refuses it until the lockout expires, and
// each repeated lockout of the same key lasts twice as long as the one
// before, up to a cap. [Store.Unlock] lifts an account's lockouts at once
// (an administrator's way back).
//
// A login handler uses a Store like this:
//
//	if ok, retryAfter, err := s.Check(ctx, email, ip); err != nil || !ok {
//		return refuse(retryAfter, err) // before any password hashing
//	}
//	if !verify(email, password) { // hashes a dummy for unknown accounts
//		s.Failure(ctx, email, ip)
//		return errInvalidCredentials
//	}
//	s.Success(ctx, email, ip)
//
// Two Stores implement these rules: [Memory], in the process, bounded by
// [WithMaxKeys] per kind, and redislockout.Store, in Redis, shared by
// every replica of a server. The conformance tests in lockouttest hold
// both to the same answers.
package lockout

import (
	"context"
	"crypto/sha256"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/internal/boundedmap"
)

// TrustFor is how long a successful login from a client network exempts
// that network from the account-wide lockout.
const TrustFor = 30 * 24 * time.Hour

// Store counts failed logins and refuses attempts while a key they fall
// under is locked out. An error means the Store could not decide (a
// shared store that is down and set to fail closed) or could not record.
type Store interface {
	// Check reports whether a login attempt for account from ip may
	// proceed. When it may not, retryAfter says how long to wait, rounded
	// up to whole seconds and at least one second; when several keys are
	// locked out, the longest wait wins. The account-wide lockout does
	// not apply to a network the account logged in from successfully
	// within TrustFor. Check counts nothing. An invalid ip is one address
	// shared by every caller that passes it.
	//
	// Call Check before any password hashing, so that refused attempts
	// cost nothing and a locked account answers the same whether or not
	// it exists.
	Check(ctx context.Context, account string, ip netip.Addr) (ok bool, retryAfter time.Duration, err error)
	// Failure records a failed login for account from ip, counting it
	// against every key it falls under; reaching a policy's threshold
	// starts a lockout of that key. A failure of a key that is already
	// locked out is ignored by that key and does not extend its lockout.
	Failure(ctx context.Context, account string, ip netip.Addr) error
	// Success records a successful login for account from ip: it clears
	// the failure count of the account from that network and trusts the
	// network for the account for TrustFor. It touches neither the
	// account-wide count, which keeps bounding a distributed run, nor the
	// network's count, which keeps limiting spraying, nor any other
	// account. It lifts no active lockout and does not reset escalation:
	// that resets only once a key has stayed clean for its policy's
	// MaxLockout, so the owner logging in between an attacker's rounds
	// does not shorten the attacker's next lockout.
	Success(ctx context.Context, account string, ip netip.Addr) error
	// Unlock lifts every lockout of account, from every network, and
	// forgets its failures, escalation and trusted networks. Lockouts of
	// client networks (spraying) stay.
	Unlock(ctx context.Context, account string) error
}

// Policy sets when failures of one kind of key lead to a lockout and how
// long it lasts.
//
// A Policy is enabled only when MaxFailures, Window and Lockout are all
// positive; otherwise that kind of key is never counted nor locked, so the zero
// Policy turns it off. A MaxLockout below Lockout is raised to Lockout.
type Policy struct {
	// MaxFailures is the number of failures within Window that triggers a
	// lockout.
	MaxFailures int
	// Window is the sliding window in which failures are counted.
	Window time.Duration
	// Lockout is the duration of a key's first lockout. It doubles with each
	// repeated lockout of the key, up to MaxLockout.
	Lockout time.Duration
	// MaxLockout caps the duration of a lockout. It is also how long a key must
	// stay clean (no failure, no lockout) before its lockouts start again from
	// Lockout.
	MaxLockout time.Duration
}

// Policies are the policies of the three kinds of key.
type Policies struct {
	// AccountIP counts failures at one account from one client network.
	AccountIP Policy
	// Account counts failures at one account from every network: set its
	// MaxFailures well above AccountIP's.
	Account Policy
	// IP counts failures from one client network at every account.
	IP Policy
}

// Enabled reports whether p counts and locks anything: MaxFailures,
// Window and Lockout all positive.
func (p Policy) Enabled() bool {
	return p.MaxFailures > 0 && p.Window > 0 && p.Lockout > 0
}

// lockoutFor returns the duration of a lockout that follows level earlier
// ones: Lockout * 2^level, capped at MaxLockout without overflowing.
func (p Policy) lockoutFor(level int) time.Duration {
	d := p.Lockout
	for range level {
		if d > p.MaxLockout/2 {
			return p.MaxLockout
		}
		d *= 2
	}
	return min(d, p.MaxLockout)
}

// Memory is the Store of one process: its state lives in memory, bounded
// by [WithMaxKeys] per kind. Lockouts expire as a pure function of the
// clock, so a Memory runs no goroutines and needs no Close. Its methods
// never fail. Create one with [NewMemory]; it is safe for concurrent use.
type Memory struct {
	clock    func() time.Time
	epoch    time.Time
	pairs    *table[pairKey]
	accounts *table[accountKey]
	ips      *table[netip.Addr]
}

var _ Store = (*Memory)(nil)

// NewMemory returns a Memory applying p.
func NewMemory(p Policies, opts ...Option) *Memory {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	return &Memory{
		clock:    cfg.clock,
		epoch:    cfg.clock(),
		pairs:    newTable[pairKey](p.AccountIP, cfg.maxKeys),
		accounts: newTable[accountKey](p.Account, cfg.maxKeys),
		ips:      newTable[netip.Addr](p.IP, cfg.maxKeys),
	}
}

// Check implements Store.
func (g *Memory) Check(_ context.Context, account string, ip netip.Addr) (ok bool, retryAfter time.Duration, err error) {
	now := g.now()
	acct, net := keyOfAccount(account), clientip.Network(ip)
	pairWait, trusted := g.pairs.waitTrusted(pairKey{acct, net}, now)
	wait := max(pairWait, g.ips.wait(net, now))
	if !trusted {
		wait = max(wait, g.accounts.wait(acct, now))
	}
	ok, retryAfter = RetryAfter(wait)
	return ok, retryAfter, nil
}

// RetryAfter is what Check answers for the longest wait of the keys of an
// attempt: allowed when nothing is left of it, else the wait rounded up
// to whole seconds. Rounding up keeps a client that waits exactly
// retryAfter from being refused again, and makes the shortest answer one
// second.
func RetryAfter(wait time.Duration) (ok bool, retryAfter time.Duration) {
	if wait <= 0 {
		return true, 0
	}
	return false, (wait + time.Second - 1) / time.Second * time.Second
}

// Failure implements Store.
func (g *Memory) Failure(_ context.Context, account string, ip netip.Addr) error {
	now := g.now()
	acct, net := keyOfAccount(account), clientip.Network(ip)
	g.pairs.fail(pairKey{acct, net}, now)
	g.accounts.fail(acct, now)
	g.ips.fail(net, now)
	return nil
}

// Success implements Store.
func (g *Memory) Success(_ context.Context, account string, ip netip.Addr) error {
	now := g.now()
	g.pairs.succeed(pairKey{keyOfAccount(account), clientip.Network(ip)}, now, now+instant(TrustFor))
	return nil
}

// Unlock implements Store.
func (g *Memory) Unlock(_ context.Context, account string) error {
	acct := keyOfAccount(account)
	g.accounts.remove(func(k accountKey) bool { return k == acct })
	g.pairs.remove(func(k pairKey) bool { return k.account == acct })
	return nil
}

// NormalizeAccount returns the form of an email under which its failures are
// counted: trimmed of surrounding white space and lower-cased. Check, Failure
// and Success apply it themselves.
func NormalizeAccount(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

func (g *Memory) now() instant {
	return instant(g.clock().Sub(g.epoch))
}

// accountKey is the SHA-256 of a normalised account name. Hashing bounds the
// memory of a key however long the name a client sends, and keeps no reference
// to request buffers.
type accountKey [sha256.Size]byte

func keyOfAccount(account string) accountKey {
	return sha256.Sum256([]byte(NormalizeAccount(account)))
}

// pairKey is an account from one client network.
type pairKey struct {
	account accountKey
	ip      netip.Addr
}

// instant is a time in nanoseconds since the Memory's epoch: compact, and
// monotonic when the clock is time.Now.
type instant int64

// never is the lockout end of a key that was never locked.
const never = instant(math.MinInt64)

// maxLevel caps the escalation counter far beyond any useful doubling.
const maxLevel = 64

// entry is the state of one key.
type entry struct {
	fails    []instant // the latest failures, a ring of at most MaxFailures
	head     int       // index of the oldest failure once fails is full
	lastFail instant   // time of the latest failure, kept across clears
	until    instant   // end of the current or latest lockout, or never
	level    int       // lockouts so far; the next one lasts Lockout * 2^level
	trusted  instant   // a success trusts the key until then; never if not
}

func (e *entry) locked(now instant) bool { return now < e.until }

func (e *entry) isTrusted(now instant) bool { return now < e.trusted }

func (e *entry) clearFailures() {
	e.fails = e.fails[:0]
	e.head = 0
}

// table holds the entries of one kind of key under one policy.
type table[K comparable] struct {
	policy Policy

	mu sync.RWMutex
	// m is nil when the policy is disabled; it is never reassigned, so
	// testing it for nil needs no lock.
	m *boundedmap.Map[K, *entry, instant]
}

func newTable[K comparable](p Policy, maxKeys int) *table[K] {
	if !p.Enabled() {
		return &table[K]{}
	}
	p.MaxLockout = max(p.MaxLockout, p.Lockout)
	t := &table[K]{policy: p}
	// A full table makes room by this rule. Sweeps drop first every key
	// with nothing to lose (idle, its escalation decayed), then, if that
	// freed nothing, every idle key. Between sweeps the least valuable of
	// a sample goes, by rank: never a locked-out key while the sample
	// holds another.
	t.m = boundedmap.New[K](maxKeys, boundedmap.Rule[*entry, instant]{
		Sweeps: []func(*entry, instant) bool{
			func(e *entry, now instant) bool { return t.idle(e, now) && t.decayed(e, now) },
			t.idle,
		},
		Rank: t.rank,
	})
	return t
}

// wait returns how long k stays locked out at now; zero or less if it is not.
func (t *table[K]) wait(k K, now instant) time.Duration {
	d, _ := t.waitTrusted(k, now)
	return d
}

// waitTrusted is wait, and whether k is trusted at now.
func (t *table[K]) waitTrusted(k K, now instant) (time.Duration, bool) {
	if t.m == nil {
		return 0, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.m.Get(k)
	if !ok {
		return 0, false
	}
	if !e.locked(now) {
		return 0, e.isTrusted(now)
	}
	return time.Duration(e.until - now), e.isTrusted(now)
}

func (t *table[K]) fail(k K, now instant) {
	if t.m == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m.Get(k)
	if !ok {
		e = &entry{until: never, trusted: never}
		t.m.Put(k, e, now)
	}
	if e.locked(now) {
		return
	}
	t.decay(e, now)

	p := t.policy
	if len(e.fails) < p.MaxFailures {
		e.fails = append(e.fails, now)
	} else {
		e.fails[e.head] = now
		e.head = (e.head + 1) % len(e.fails)
	}
	e.lastFail = now
	if len(e.fails) < p.MaxFailures || time.Duration(now-e.fails[e.head]) >= p.Window {
		return
	}
	e.until = now + instant(p.lockoutFor(e.level))
	e.level = min(e.level+1, maxLevel)
	e.clearFailures()
}

// succeed clears the failures of k and trusts it until trustUntil.
func (t *table[K]) succeed(k K, now, trustUntil instant) {
	if t.m == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m.Get(k)
	if !ok {
		e = &entry{until: never}
		t.m.Put(k, e, now)
	}
	e.clearFailures()
	t.decay(e, now)
	e.trusted = trustUntil
}

// remove deletes every key for which match reports true.
func (t *table[K]) remove(match func(K) bool) {
	if t.m == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m.DeleteFunc(func(k K, _ *entry) bool { return match(k) })
}

// decay resets the escalation of e once it has stayed clean, with neither a
// failure nor a lockout, for MaxLockout.
func (t *table[K]) decay(e *entry, now instant) {
	if e.level > 0 && t.decayed(e, now) {
		e.level = 0
	}
}

func (t *table[K]) decayed(e *entry, now instant) bool {
	return e.level == 0 || time.Duration(now-max(e.lastFail, e.until)) >= t.policy.MaxLockout
}

// idle reports whether e has no failure within the window, no active
// lockout and no trust.
func (t *table[K]) idle(e *entry, now instant) bool {
	return (len(e.fails) == 0 || time.Duration(now-e.lastFail) >= t.policy.Window) && !e.locked(now) && !e.isTrusted(now)
}

// rank orders entries by how much is lost when they are evicted: idle with
// decayed escalation (0: goes at once), idle but escalated, counting
// failures or trusted, locked out; within each of the last three, fewer
// recorded failures rank lower.
func (t *table[K]) rank(e *entry, now instant) int {
	var tier int
	switch {
	case e.locked(now):
		tier = 3
	case !t.idle(e, now):
		tier = 2
	case !t.decayed(e, now):
		tier = 1
	default:
		return 0
	}
	// An entry keeps at most MaxFailures failures, so the tiers do not
	// overlap; the cap keeps the product from overflowing for any policy.
	perTier := min(t.policy.MaxFailures, math.MaxInt/4-1) + 1
	return tier*perTier + min(len(e.fails), perTier-1)
}
