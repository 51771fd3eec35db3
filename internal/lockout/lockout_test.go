package lockout_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/lockout/lockouttest"
)

// TestConformance holds Memory to the rules every Store follows.
func TestConformance(t *testing.T) {
	t.Parallel()
	lockouttest.Run(t, func(_ *testing.T, p lockout.Policies, now func() time.Time) lockout.Store {
		return lockout.NewMemory(p, lockout.WithClock(now))
	})
}

var ctx = context.Background()

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
	ip1   = "203.0.113.1"
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
func newMemory(c *clock, opts ...lockout.Option) *lockout.Memory {
	return lockout.NewMemory(policies, append([]lockout.Option{c.option()}, opts...)...)
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
			g := newMemory(c, lockout.WithMaxKeys(maxKeys))
			for i := range 10_000 {
				_ = g.Failure(ctx, tt.account(i), tt.ip(i))
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
	g := lockout.NewMemory(lockout.Policies{
		AccountIP: lockout.Policy{MaxFailures: 5, Window: time.Minute, Lockout: time.Hour, MaxLockout: time.Hour},
	}, c.option(), lockout.WithMaxKeys(10))
	ip := netip.MustParseAddr(ip1)
	for range 5 {
		_ = g.Failure(ctx, alice, ip)
	}
	for i := range 9 {
		_ = g.Failure(ctx, fmt.Sprintf("old%d@example.com", i), ip)
	}
	c.advance(2 * time.Minute) // the old keys leave the window: idle
	for i := range 9 {
		_ = g.Failure(ctx, fmt.Sprintf("new%d@example.com", i), ip)
	}
	if gotPairs, _, _ := lockout.Len(g); gotPairs != 10 {
		t.Errorf("Len() = %d pairs, want 10", gotPairs)
	}
	if ok, retry, _ := g.Check(ctx, alice, ip); ok || retry != 58*time.Minute {
		t.Errorf("Check(%q) = %v, %v, want false, 58m0s", alice, ok, retry)
	}
	// The new keys kept their failures too: four more lock one.
	for range 4 {
		_ = g.Failure(ctx, "new0@example.com", ip)
	}
	if ok, retry, _ := g.Check(ctx, "new0@example.com", ip); ok || retry != time.Hour {
		t.Errorf("Check(%q) = %v, %v, want false, 1h0m0s", "new0@example.com", ok, retry)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := newClock()
	g := newMemory(c, lockout.WithMaxKeys(64))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(w)})
			for i := range 2000 {
				account := fmt.Sprintf("user%d@example.com", (w*7+i)%100)
				if ok, retry, _ := g.Check(ctx, account, ip); !ok && retry < time.Second {
					t.Errorf("Check(%q) = false, %v, want retry >= 1s", account, retry)
					return
				}
				switch i % 5 {
				case 4:
					_ = g.Success(ctx, account, ip)
				default:
					_ = g.Failure(ctx, account, ip)
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
	g := newMemory(c)
	const keys = 10_000
	for i := range keys {
		_ = g.Failure(ctx, fmt.Sprintf("user%d@example.com", i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	for range pairPolicy.MaxFailures {
		_ = g.Failure(ctx, alice, netip.MustParseAddr(ip1))
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
			if got, _, _ := g.Check(ctx, bb.account, bb.ip); got != bb.wantOK {
				b.Fatalf("Check(%q) = %v, want %v", bb.account, got, bb.wantOK)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = g.Check(ctx, bb.account, bb.ip)
			}
		})
	}
}

func BenchmarkFailure(b *testing.B) {
	c := newClock()
	g := newMemory(c, lockout.WithMaxKeys(10_000))
	accounts := make([]string, 20_000)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("user%d@example.com", i)
	}
	ip := netip.MustParseAddr(ip1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Twice as many accounts as keys: the table stays full and evicts.
		_ = g.Failure(ctx, accounts[i%len(accounts)], ip)
		i++
	}
}
