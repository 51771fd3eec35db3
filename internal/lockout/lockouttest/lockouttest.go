// Package lockouttest holds the conformance tests every lockout.Store
// must pass, so that the in-memory store and the shared one (Redis) answer
// alike: run them with Run.
package lockouttest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/lockout"
)

// Factory returns a new, empty Store applying p on the clock now, whose
// state no other Store of the run shares.
type Factory func(t *testing.T, p lockout.Policies, now func() time.Time) lockout.Store

// Run runs the conformance tests against the stores newStore makes.
// Times are whole milliseconds apart: the shared store keeps them so.
func Run(t *testing.T, newStore Factory) {
	t.Run("scenarios", func(t *testing.T) { scenarios(t, newStore) })
	t.Run("unknown_account_like_known", func(t *testing.T) { unknownLikeKnown(t, newStore) })
	t.Run("concurrent_failures_all_count", func(t *testing.T) { concurrentFailures(t, newStore) })
}

// Clock is a fake clock a test moves by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (back for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// t0 is where every clock starts.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var (
	pairPolicy    = lockout.Policy{MaxFailures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	accountPolicy = lockout.Policy{MaxFailures: 50, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour}
	ipPolicy      = lockout.Policy{MaxFailures: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour}
	policies      = lockout.Policies{AccountIP: pairPolicy, Account: accountPolicy, IP: ipPolicy}
)

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
	ip1   = "203.0.113.1"
	ip2   = "198.51.100.2"
)

// step is one action of a scenario.
type step struct {
	op        op
	account   string
	ip        string
	n         int           // repetitions of a failure
	d         time.Duration // clock advance
	wantOK    bool          // check
	wantRetry time.Duration // check
}

type op int

const (
	opFail op = iota
	opCheck
	opSuccess
	opUnlock
	opAdvance
)

func fail(account, ip string, n int) step { return step{op: opFail, account: account, ip: ip, n: n} }
func allowed(account, ip string) step {
	return step{op: opCheck, account: account, ip: ip, wantOK: true}
}
func refused(account, ip string, retry time.Duration) step {
	return step{op: opCheck, account: account, ip: ip, wantRetry: retry}
}
func success(account, ip string) step { return step{op: opSuccess, account: account, ip: ip} }
func unlock(account string) step      { return step{op: opUnlock, account: account} }
func advance(d time.Duration) step    { return step{op: opAdvance, d: d} }
func failEvery(account, ip string, n int, d time.Duration) []step {
	var steps []step
	for range n {
		steps = append(steps, fail(account, ip, 1), allowed(account, ip), advance(d))
	}
	return steps
}

// run plays steps against g and reports the first mismatch of each check.
func run(t *testing.T, c *Clock, g lockout.Store, steps []step) {
	t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		switch s.op {
		case opFail:
			for range max(s.n, 1) {
				if err := g.Failure(ctx, s.account, netip.MustParseAddr(s.ip)); err != nil {
					t.Fatalf("step %d: Failure: %v", i, err)
				}
			}
		case opCheck:
			gotOK, gotRetry, err := g.Check(ctx, s.account, netip.MustParseAddr(s.ip))
			if err != nil {
				t.Fatalf("step %d: Check: %v", i, err)
			}
			if gotOK != s.wantOK || gotRetry != s.wantRetry {
				t.Errorf("step %d: Check(%q, %s) = %v, %v, want %v, %v",
					i, s.account, s.ip, gotOK, gotRetry, s.wantOK, s.wantRetry)
			}
		case opSuccess:
			if err := g.Success(ctx, s.account, netip.MustParseAddr(s.ip)); err != nil {
				t.Fatalf("step %d: Success: %v", i, err)
			}
		case opUnlock:
			if err := g.Unlock(ctx, s.account); err != nil {
				t.Fatalf("step %d: Unlock: %v", i, err)
			}
		case opAdvance:
			c.Advance(s.d)
		}
	}
}

func concat(parts ...[]step) []step {
	var all []step
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func scenarios(t *testing.T, newStore Factory) {
	for _, tt := range []struct {
		name    string
		pair    *lockout.Policy // default pairPolicy
		account *lockout.Policy // default accountPolicy
		ip      *lockout.Policy // default ipPolicy
		steps   []step
	}{
		{
			name: "fifth_failure_locks_for_lockout",
			steps: []step{
				fail(alice, ip1, 4),
				allowed(alice, ip1),
				fail(alice, ip1, 1),
				refused(alice, ip1, time.Minute),
				// The lockout is of the account from that address only:
				// the guesser cannot lock the owner out.
				allowed(alice, ip2),
				allowed(bob, ip1),
			},
		},
		{
			name: "one_address_never_locks_the_owner_out",
			ip:   &lockout.Policy{}, // spraying is another test
			// An attacker at ip1 guessing without pause for a day: each
			// round of five is followed by a longer lockout, and the owner
			// at ip2 is never refused.
			steps: func() []step {
				var steps []step
				for round := range 12 {
					steps = append(steps, fail(alice, ip1, 5), refused(alice, ip1, min(time.Minute<<round, time.Hour)), allowed(alice, ip2), advance(min(time.Minute<<round, time.Hour)))
				}
				return steps
			}(),
		},
		{
			name:    "account_ceiling_bounds_distributed_guessing",
			account: &lockout.Policy{MaxFailures: 12, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
			steps: []step{
				fail(alice, "192.0.2.1", 4),
				fail(alice, "192.0.2.2", 4),
				fail(alice, "192.0.2.3", 3),
				allowed(alice, "192.0.2.4"),
				fail(alice, "192.0.2.4", 1),
				// Twelve failures from four addresses: the account is locked
				// from every address it never logged in from.
				refused(alice, "192.0.2.5", 15*time.Minute),
				refused(alice, ip2, 15*time.Minute),
				allowed(bob, "192.0.2.5"),
			},
		},
		{
			name:    "owner_network_exempt_from_account_lockout",
			account: &lockout.Policy{MaxFailures: 12, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
			steps: []step{
				success(alice, "2001:db8:aa:bb::1"), // the owner's usual network
				fail(alice, "192.0.2.1", 4),
				fail(alice, "192.0.2.2", 4),
				fail(alice, "192.0.2.3", 4),
				refused(alice, "192.0.2.9", 15*time.Minute),
				// Another address in the owner's /64 is the owner's network.
				allowed(alice, "2001:db8:aa:bb::99"),
				// The owner's network keeps its own limit.
				fail(alice, "2001:db8:aa:bb::1", 5),
				refused(alice, "2001:db8:aa:bb::1", time.Minute),
			},
		},
		{
			name:    "trust_expires_after_30_days",
			account: &lockout.Policy{MaxFailures: 12, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
			steps: []step{
				success(alice, ip2),
				advance(30 * 24 * time.Hour),
				fail(alice, "192.0.2.1", 4),
				fail(alice, "192.0.2.2", 4),
				fail(alice, "192.0.2.3", 4),
				refused(alice, ip2, 15*time.Minute),
			},
		},
		{
			name:    "unlock_lifts_account_and_pair_lockouts",
			account: &lockout.Policy{MaxFailures: 12, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
			steps: []step{
				fail(alice, "192.0.2.1", 5),
				fail(alice, "192.0.2.2", 5),
				fail(alice, "192.0.2.3", 5),
				refused(alice, "192.0.2.1", 15*time.Minute),
				refused(alice, ip2, 15*time.Minute),
				unlock(alice),
				allowed(alice, "192.0.2.1"),
				allowed(alice, ip2),
				// Escalation is forgotten too: the next lockout is the first.
				fail(alice, "192.0.2.1", 5),
				refused(alice, "192.0.2.1", time.Minute),
			},
		},
		{
			name: "unlock_keeps_address_lockouts",
			steps: func() []step {
				var steps []step
				for i := range 20 {
					steps = append(steps, fail(fmt.Sprintf("user%d@example.com", i), ip1, 1))
				}
				return append(steps,
					refused(alice, ip1, 15*time.Minute),
					unlock(alice),
					refused(alice, ip1, 15*time.Minute),
					unlock("user0@example.com"),
					refused("user0@example.com", ip1, 15*time.Minute),
				)
			}(),
		},
		{
			name: "retry_after_counts_down_rounded_up",
			steps: []step{
				fail(alice, ip1, 5),
				advance(20*time.Second + 500*time.Millisecond),
				refused(alice, ip1, 40*time.Second),
				advance(39 * time.Second),
				refused(alice, ip1, time.Second),
				advance(499 * time.Millisecond),
				refused(alice, ip1, time.Second),
				advance(time.Millisecond),
				allowed(alice, ip1),
			},
		},
		{
			name: "allowed_again_after_lockout",
			steps: []step{
				fail(alice, ip1, 5),
				advance(time.Minute - time.Millisecond),
				refused(alice, ip1, time.Second),
				advance(time.Millisecond),
				allowed(alice, ip1),
				// The count restarted: four more failures do not lock.
				fail(alice, ip1, 4),
				allowed(alice, ip1),
			},
		},
		{
			name: "second_lockout_twice_as_long",
			steps: []step{
				fail(alice, ip1, 5),
				refused(alice, ip1, time.Minute),
				advance(time.Minute),
				fail(alice, ip1, 5),
				refused(alice, ip1, 2*time.Minute),
				advance(2 * time.Minute),
				fail(alice, ip1, 5),
				refused(alice, ip1, 4*time.Minute),
			},
		},
		{
			name: "escalation_capped_at_max_lockout",
			ip:   &lockout.Policy{}, // 20 failures would lock the address
			pair: &lockout.Policy{MaxFailures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: 3 * time.Minute},
			steps: []step{
				fail(alice, ip1, 5),
				refused(alice, ip1, time.Minute),
				advance(time.Minute),
				fail(alice, ip1, 5),
				refused(alice, ip1, 2*time.Minute),
				advance(2 * time.Minute),
				fail(alice, ip1, 5),
				refused(alice, ip1, 3*time.Minute),
				advance(3 * time.Minute),
				fail(alice, ip1, 5),
				refused(alice, ip1, 3*time.Minute),
			},
		},
		{
			name: "max_lockout_below_lockout_is_raised",
			pair: &lockout.Policy{MaxFailures: 1, Window: time.Minute, Lockout: time.Hour, MaxLockout: time.Minute},
			steps: []step{
				fail(alice, ip1, 1),
				refused(alice, ip1, time.Hour),
			},
		},
		{
			name: "escalation_resets_after_clean_max_lockout",
			steps: []step{
				fail(alice, ip1, 5),
				advance(time.Minute), // lockout over
				advance(time.Hour),   // clean for MaxLockout
				fail(alice, ip1, 5),
				refused(alice, ip1, time.Minute),
			},
		},
		{
			name: "escalation_kept_within_max_lockout",
			steps: []step{
				fail(alice, ip1, 5),
				advance(time.Minute),
				advance(time.Hour - time.Second),
				fail(alice, ip1, 5),
				refused(alice, ip1, 2*time.Minute),
			},
		},
		{
			name: "success_does_not_reset_escalation",
			steps: []step{
				fail(alice, ip1, 5),
				advance(time.Minute),
				success(alice, ip1),
				fail(alice, ip1, 5),
				refused(alice, ip1, 2*time.Minute),
			},
		},
		{
			name: "failures_spread_wider_than_window_never_lock",
			// Any five consecutive failures span 16 minutes > 15.
			steps: failEvery(alice, ip1, 50, 4*time.Minute),
		},
		{
			name: "sliding_window_counts_the_latest_failures",
			steps: concat(
				[]step{fail(alice, ip1, 4), advance(15 * time.Minute)},
				// The first four fell out of the window; these four are inside it.
				failEvery(alice, ip1, 4, time.Minute),
				[]step{fail(alice, ip1, 1), refused(alice, ip1, time.Minute)},
			),
		},
		{
			name: "failure_during_lockout_does_not_extend_it",
			steps: []step{
				fail(alice, ip1, 5),
				advance(30 * time.Second),
				fail(alice, ip1, 10),
				refused(alice, ip1, 30*time.Second),
				advance(30 * time.Second),
				allowed(alice, ip1),
				// Nor do the ignored failures count afterwards.
				fail(alice, ip1, 4),
				allowed(alice, ip1),
			},
		},
		{
			name: "success_on_other_account_keeps_count",
			steps: []step{
				fail(alice, ip1, 4),
				success(bob, ip1),
				success(alice, ip2),
				fail(alice, ip1, 1),
				refused(alice, ip1, time.Minute),
			},
		},
		{
			name: "success_resets_own_count",
			steps: []step{
				fail(alice, ip1, 4),
				success(alice, ip1),
				fail(alice, ip1, 4),
				allowed(alice, ip1),
				fail(alice, ip1, 1),
				refused(alice, ip1, time.Minute),
			},
		},
		{
			name: "success_does_not_lift_lockout",
			steps: []step{
				fail(alice, ip1, 5),
				success(alice, ip1),
				refused(alice, ip1, time.Minute),
			},
		},
		{
			name: "success_does_not_reset_ip",
			ip:   &lockout.Policy{MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: time.Hour},
			steps: []step{
				fail(alice, ip1, 4),
				success(alice, ip1),
				fail(bob, ip1, 1),
				refused(bob, ip1, 15*time.Minute),
			},
		},
		{
			name: "case_and_space_variants_share_count",
			steps: []step{
				fail("Alice@Example.com", ip1, 1),
				fail("  alice@example.com", ip1, 1),
				fail("ALICE@EXAMPLE.COM\t", ip1, 1),
				fail("\nalice@EXAMPLE.com ", ip1, 1),
				allowed(alice, ip1),
				fail(alice, ip1, 1),
				refused(alice, ip1, time.Minute),
				refused(" ALICE@example.COM ", ip1, time.Minute),
			},
		},
		{
			name: "ip_locks_across_accounts",
			steps: func() []step {
				var steps []step
				for i := range 19 {
					steps = append(steps, fail(fmt.Sprintf("user%d@example.com", i), ip1, 1))
				}
				steps = append(steps,
					allowed("fresh@example.com", ip1),
					fail("user19@example.com", ip1, 1),
					refused("fresh@example.com", ip1, 15*time.Minute),
					refused(alice, ip1, 15*time.Minute),
					// Other addresses and the sprayed accounts elsewhere are unaffected.
					allowed("fresh@example.com", ip2),
					allowed("user0@example.com", ip2),
				)
				return steps
			}(),
		},
		{
			name: "ip_wait_longer_than_pair_wait",
			steps: []step{
				fail(alice, ip1, 5), // pair 1m, IP at 5
				fail(bob, ip1, 4),
				fail("carol@example.com", ip1, 4),
				fail("dave@example.com", ip1, 4),
				fail("erin@example.com", ip1, 3), // IP at 20: 15m
				refused(alice, ip1, 15*time.Minute),
				allowed(alice, ip2),
			},
		},
		{
			name: "pair_wait_longer_than_ip_wait",
			ip:   &lockout.Policy{MaxFailures: 3, Window: 15 * time.Minute, Lockout: 10 * time.Second, MaxLockout: time.Hour},
			pair: &lockout.Policy{
				MaxFailures: 3, Window: 15 * time.Minute, Lockout: 5 * time.Minute, MaxLockout: time.Hour,
			},
			steps: []step{
				fail(alice, ip1, 3), // both lock
				refused(alice, ip1, 5*time.Minute),
				refused(bob, ip1, 10*time.Second),
				allowed(alice, ip2),
			},
		},
		{
			name: "ipv6_counts_per_64",
			ip:   &lockout.Policy{MaxFailures: 3, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
			steps: []step{
				fail("a@example.com", "2001:db8:1:2::1", 1),
				fail("b@example.com", "2001:db8:1:2:ffff::9", 1),
				fail("c@example.com", "2001:db8:1:2::1%eth0", 1),
				refused(alice, "2001:db8:1:2:abcd::1", time.Minute),
				allowed(alice, "2001:db8:1:3::1"),
			},
		},
		{
			name: "ipv4_mapped_counts_as_ipv4",
			ip:   &lockout.Policy{MaxFailures: 2, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
			steps: []step{
				fail("a@example.com", "::ffff:203.0.113.1", 1),
				fail("b@example.com", ip1, 1),
				refused(alice, ip1, time.Minute),
				refused(alice, "::ffff:203.0.113.1", time.Minute),
			},
		},
		{
			name:    "zero_policies_never_lock",
			pair:    &lockout.Policy{},
			account: &lockout.Policy{},
			ip:      &lockout.Policy{},
			steps:   []step{fail(alice, ip1, 1000), allowed(alice, ip1)},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := policies
			if tt.pair != nil {
				p.AccountIP = *tt.pair
			}
			if tt.account != nil {
				p.Account = *tt.account
			}
			if tt.ip != nil {
				p.IP = *tt.ip
			}
			c := NewClock(t0)
			run(t, c, newStore(t, p, c.Now), tt.steps)
		})
	}
}

// unknownLikeKnown shows that the Store treats every name alike: it knows
// nothing of which accounts exist, so the same history gives the same
// answers.
func unknownLikeKnown(t *testing.T, newStore Factory) {
	ctx := context.Background()
	c := NewClock(t0)
	g := newStore(t, policies, c.Now)
	if err := g.Success(ctx, alice, netip.MustParseAddr(ip1)); err != nil { // the "known" account has logged in before
		t.Fatal(err)
	}

	trace := func(account, ip string) []string {
		addr := netip.MustParseAddr(ip)
		var out []string
		record := func() {
			ok, retry, err := g.Check(ctx, account, addr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%v %v", ok, retry))
		}
		for range 3 {
			for range 5 {
				record()
				if err := g.Failure(ctx, account, addr); err != nil {
					t.Fatal(err)
				}
			}
			record()
			c.Advance(30 * time.Second)
			record()
			c.Advance(10 * time.Minute)
		}
		return out
	}
	start := c.Now()
	known := trace(alice, ip1)
	c.Advance(-c.Now().Sub(start)) // replay the unknown account from the same instant
	unknown := trace("nobody-at-all@example.com", ip2)

	if fmt.Sprint(unknown) != fmt.Sprint(known) {
		t.Errorf("unknown account trace = %v, want the known account's %v", unknown, known)
	}
	if want := "false 1m0s"; known[5] != want {
		t.Errorf("known account after 5 failures = %q, want %q", known[5], want)
	}
}

// concurrentFailures: failures recorded at once from many goroutines are
// each counted (a shared store decides each in one atomic step): 12
// failures at an account ceiling of 12 lock it, 11 do not.
func concurrentFailures(t *testing.T, newStore Factory) {
	ctx := context.Background()
	p := policies
	p.Account.MaxFailures = 12
	c := NewClock(t0)
	g := newStore(t, p, c.Now)
	var wg sync.WaitGroup
	for i := range 11 {
		wg.Go(func() {
			if err := g.Failure(ctx, alice, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	far := netip.MustParseAddr("198.51.100.99")
	if ok, retry, err := g.Check(ctx, alice, far); err != nil || !ok {
		t.Fatalf("after 11 concurrent failures: Check() = %v, %v, %v, want allowed", ok, retry, err)
	}
	if err := g.Failure(ctx, alice, netip.MustParseAddr("192.0.2.200")); err != nil {
		t.Fatal(err)
	}
	if ok, retry, err := g.Check(ctx, alice, far); err != nil || ok || retry != 15*time.Minute {
		t.Errorf("after 12 failures: Check() = %v, %v, %v, want false, 15m0s: a concurrent failure was lost", ok, retry, err)
	}
}
