package lockout_test

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/lockout"
)

// t0 is where every fake clock starts.
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

// clock is a fake clock that tests advance by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) option() lockout.Option  { return lockout.WithClock(c.now) }
func newGuard(c *clock, opts ...lockout.Option) *lockout.Guard {
	return lockout.New(policies, append([]lockout.Option{c.option()}, opts...)...)
}

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
func run(t *testing.T, c *clock, g *lockout.Guard, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case opFail:
			for range max(s.n, 1) {
				g.Failure(s.account, netip.MustParseAddr(s.ip))
			}
		case opCheck:
			gotOK, gotRetry := g.Check(s.account, netip.MustParseAddr(s.ip))
			if gotOK != s.wantOK || gotRetry != s.wantRetry {
				t.Errorf("step %d: Check(%q, %s) = %v, %v, want %v, %v",
					i, s.account, s.ip, gotOK, gotRetry, s.wantOK, s.wantRetry)
			}
		case opSuccess:
			g.Success(s.account, netip.MustParseAddr(s.ip))
		case opUnlock:
			g.Unlock(s.account)
		case opAdvance:
			c.advance(s.d)
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

func TestGuard(t *testing.T) {
	t.Parallel()
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
				advance(time.Minute - time.Nanosecond),
				refused(alice, ip1, time.Second),
				advance(time.Nanosecond),
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
			c := newClock()
			run(t, c, lockout.New(p, c.option()), tt.steps)
		})
	}
}

// TestUnknownAccountLikeKnown shows that the Guard treats every name alike:
// it knows nothing of which accounts exist, so the same history gives the same
// answers.
func TestUnknownAccountLikeKnown(t *testing.T) {
	t.Parallel()
	c := newClock()
	g := newGuard(c)
	g.Success(alice, netip.MustParseAddr(ip1)) // the "known" account has logged in before

	trace := func(account, ip string) []string {
		addr := netip.MustParseAddr(ip)
		var out []string
		record := func() {
			ok, retry := g.Check(account, addr)
			out = append(out, fmt.Sprintf("%v %v", ok, retry))
		}
		for range 3 {
			for range 5 {
				record()
				g.Failure(account, addr)
			}
			record()
			c.advance(30 * time.Second)
			record()
			c.advance(10 * time.Minute)
		}
		return out
	}
	start := c.now()
	known := trace(alice, ip1)
	c.advance(-c.now().Sub(start)) // replay the unknown account from the same instant
	unknown := trace("nobody-at-all@example.com", ip2)

	if fmt.Sprint(unknown) != fmt.Sprint(known) {
		t.Errorf("unknown account trace = %v, want the known account's %v", unknown, known)
	}
	if want := "false 1m0s"; known[5] != want {
		t.Errorf("known account after 5 failures = %q, want %q", known[5], want)
	}
}

func TestNormalizeAccount(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in, want string
	}{
		{"already_normal", "alice@example.com", "alice@example.com"},
		{"upper_case", "Alice@EXAMPLE.com", "alice@example.com"},
		{"surrounding_space", " \talice@example.com\r\n", "alice@example.com"},
		{"inner_space_kept", "a lice@example.com", "a lice@example.com"},
		{"unicode", "  ÄLICE@EXAMPLE.COM", "älice@example.com"},
		{"empty", "   ", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := lockout.NormalizeAccount(tt.in); got != tt.want {
				t.Errorf("NormalizeAccount(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaxKeys(t *testing.T) {
	t.Parallel()
	const maxKeys = 100
	for _, tt := range []struct {
		name    string
		account func(i int) string
		ip      func(i int) netip.Addr
	}{
		{
			name:    "distinct_accounts",
			account: func(i int) string { return fmt.Sprintf("user%d@example.com", i) },
			ip:      func(i int) netip.Addr { return netip.MustParseAddr(ip1) },
		},
		{
			name:    "distinct_ipv4",
			account: func(i int) string { return alice },
			ip:      func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) },
		},
		{
			name:    "distinct_accounts_and_ipv6_prefixes",
			account: func(i int) string { return fmt.Sprintf("user%d@example.com", i) },
			ip: func(i int) netip.Addr {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i), 15: 1})
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			g := newGuard(c, lockout.WithMaxKeys(maxKeys))
			for i := range 10_000 {
				g.Failure(tt.account(i), tt.ip(i))
				if i%1000 == 0 {
					c.advance(time.Second)
				}
			}
			gotPairs, gotAccounts, gotIPs := lockout.Len(g)
			if gotPairs > maxKeys || gotAccounts > maxKeys || gotIPs > maxKeys {
				t.Errorf("Len() = %d pairs, %d accounts, %d ips, want all <= %d", gotPairs, gotAccounts, gotIPs, maxKeys)
			}
			if gotPairs == 0 || gotAccounts == 0 || gotIPs == 0 {
				t.Errorf("Len() = %d pairs, %d accounts, %d ips, want all > 0", gotPairs, gotAccounts, gotIPs)
			}
		})
	}
}

// TestMaxKeysKeepsActiveLockout checks that a full table drops idle keys
// before a key that is locked out.
func TestMaxKeysKeepsActiveLockout(t *testing.T) {
	t.Parallel()
	c := newClock()
	g := lockout.New(lockout.Policies{
		AccountIP: lockout.Policy{MaxFailures: 5, Window: time.Minute, Lockout: time.Hour, MaxLockout: time.Hour},
	}, c.option(), lockout.WithMaxKeys(10))
	ip := netip.MustParseAddr(ip1)
	for range 5 {
		g.Failure(alice, ip)
	}
	for i := range 9 {
		g.Failure(fmt.Sprintf("old%d@example.com", i), ip)
	}
	c.advance(2 * time.Minute) // the old keys leave the window: idle
	for i := range 9 {
		g.Failure(fmt.Sprintf("new%d@example.com", i), ip)
	}
	if gotPairs, _, _ := lockout.Len(g); gotPairs != 10 {
		t.Errorf("Len() = %d pairs, want 10", gotPairs)
	}
	if ok, retry := g.Check(alice, ip); ok || retry != 58*time.Minute {
		t.Errorf("Check(%q) = %v, %v, want false, 58m0s", alice, ok, retry)
	}
	// The new keys kept their failures too: four more lock one.
	for range 4 {
		g.Failure("new0@example.com", ip)
	}
	if ok, retry := g.Check("new0@example.com", ip); ok || retry != time.Hour {
		t.Errorf("Check(%q) = %v, %v, want false, 1h0m0s", "new0@example.com", ok, retry)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := newClock()
	g := newGuard(c, lockout.WithMaxKeys(64))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(w)})
			for i := range 2000 {
				account := fmt.Sprintf("user%d@example.com", (w*7+i)%100)
				if ok, retry := g.Check(account, ip); !ok && retry < time.Second {
					t.Errorf("Check(%q) = false, %v, want retry >= 1s", account, retry)
					return
				}
				switch i % 5 {
				case 4:
					g.Success(account, ip)
				default:
					g.Failure(account, ip)
				}
				if i%50 == 0 {
					c.advance(7 * time.Second)
				}
			}
		})
	}
	wg.Wait()
	if gotPairs, gotAccounts, gotIPs := lockout.Len(g); gotPairs > 64 || gotAccounts > 64 || gotIPs > 8 {
		t.Errorf("Len() = %d pairs, %d accounts, %d ips, want <= 64, <= 64, <= 8", gotPairs, gotAccounts, gotIPs)
	}
}

func BenchmarkCheck(b *testing.B) {
	c := newClock()
	g := newGuard(c)
	const keys = 10_000
	for i := range keys {
		g.Failure(fmt.Sprintf("user%d@example.com", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	for range pairPolicy.MaxFailures {
		g.Failure(alice, netip.MustParseAddr(ip1))
	}
	for _, bb := range []struct {
		name    string
		account string
		ip      netip.Addr
		wantOK  bool
	}{
		{"allowed", "user42@example.com", netip.AddrFrom4([4]byte{10, 0, 0, 42}), true},
		{"locked", alice, netip.MustParseAddr(ip1), false},
		{"unseen", "nobody@example.com", netip.MustParseAddr("2001:db8::1"), true},
	} {
		b.Run(bb.name, func(b *testing.B) {
			if got, _ := g.Check(bb.account, bb.ip); got != bb.wantOK {
				b.Fatalf("Check(%q) = %v, want %v", bb.account, got, bb.wantOK)
			}
			b.ReportAllocs()
			for b.Loop() {
				g.Check(bb.account, bb.ip)
			}
		})
	}
}

func BenchmarkFailure(b *testing.B) {
	c := newClock()
	g := newGuard(c, lockout.WithMaxKeys(10_000))
	accounts := make([]string, 20_000)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("user%d@example.com", i)
	}
	ip := netip.MustParseAddr(ip1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Twice as many accounts as keys: the table stays full and evicts.
		g.Failure(accounts[i%len(accounts)], ip)
		i++
	}
}
