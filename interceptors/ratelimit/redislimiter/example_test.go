package redislimiter_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/redis/go-redis/v9"
)

// ExampleNew keeps the budgets of every replica in one Redis. It needs a
// Redis, so it is compiled but not run.
func ExampleNew() {
	opts, err := redislimiter.ClientOptions("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(opts) // tight timeouts, no retries
	defer client.Close()
	limiter := redislimiter.New(client,
		redislimiter.WithPrefix("notes-api:rl:"),
		redislimiter.WithOnFailure(redislimiter.FailLocal)) // the default
	// Give it to Guard: guard.New(services, guard.WithLimiter(limiter), ...).

	d, err := limiter.Allow(context.Background(),
		ratelimit.Quota{Name: "ip", Key: "ip|203.0.113.7", Limit: 600, Window: time.Minute})
	fmt.Println(d.Allowed, d.States()[0].Remaining, err)
}
