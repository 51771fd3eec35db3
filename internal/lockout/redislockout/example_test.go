package redislockout_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/lockout/redislockout"
	"github.com/redis/go-redis/v9"
)

// ExampleNew counts every replica's failed logins in one Redis. It needs
// a Redis, so it is compiled but not run.
func ExampleNew() {
	opts, err := redislimiter.ClientOptions("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(opts) // tight timeouts, no retries
	defer client.Close()
	pair := lockout.Policy{MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour}
	var store lockout.Store = redislockout.New(client, lockout.Policies{AccountIP: pair},
		redislockout.WithOnFailure(redislockout.FailLocal)) // the default

	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.7")
	for range 5 {
		_ = store.Failure(ctx, "alice@example.com", ip) // on any replica
	}
	fmt.Println(store.Check(ctx, "alice@example.com", ip)) // on any replica: false 15m0s <nil>
}
