package lockout_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/connectguard/guard/internal/lockout"
)

func Example() {
	// A fixed clock keeps the output stable; production uses the default.
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	g := lockout.NewMemory(lockout.Policies{
		AccountIP: lockout.Policy{MaxFailures: 3, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour},
		Account:   lockout.Policy{MaxFailures: 50, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
		IP:        lockout.Policy{MaxFailures: 20, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour},
	}, lockout.WithClock(func() time.Time { return now }))
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.7")
	owner := netip.MustParseAddr("198.51.100.20")

	for range 3 {
		if ok, _, _ := g.Check(ctx, "Alice@Example.com", ip); ok {
			// ... the password was wrong:
			_ = g.Failure(ctx, "Alice@Example.com", ip)
		}
	}
	fmt.Println(g.Check(ctx, " alice@example.com", ip))
	// The guesser locked only itself out: the owner logs in elsewhere.
	fmt.Println(g.Check(ctx, "alice@example.com", owner))

	now = now.Add(time.Minute)
	fmt.Println(g.Check(ctx, "alice@example.com", ip))

	// The next lockout of the same account lasts twice as long.
	for range 3 {
		_ = g.Failure(ctx, "alice@example.com", ip)
	}
	fmt.Println(g.Check(ctx, "alice@example.com", ip))
	// Output:
	// false 1m0s <nil>
	// true 0s <nil>
	// true 0s <nil>
	// false 2m0s <nil>
}
