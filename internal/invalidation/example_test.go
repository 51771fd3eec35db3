package invalidation_test

import (
	"context"
	"log"

	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/redis/go-redis/v9"
)

// ExampleRedis announces a change on one replica and applies the others'
// on each. It needs a Redis, so it is compiled but not run.
func ExampleRedis() {
	opts, err := redislimiter.ClientOptions("redis://127.0.0.1:6379/0")
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	bus := invalidation.NewRedis(client, "guard:invalidate")

	// Every replica: hand what the others announce to the service that
	// caches credential state (service/auth implements Handler).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var h invalidation.Handler = &recorder{}
	go bus.Run(ctx, h)

	// The replica that disabled a user: tell the others.
	_ = bus.Publish(ctx, invalidation.Event{Kind: invalidation.User, UserID: "u1"})
}
