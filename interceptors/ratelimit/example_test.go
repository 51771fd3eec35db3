package ratelimit_test

import (
	"fmt"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
)

func ExampleLimiter_Allow() {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	l := ratelimit.NewLimiter(ratelimit.WithClock(func() time.Time { return now }))

	for range 4 {
		d := l.Allow("ip|203.0.113.7", 3, time.Minute)
		fmt.Println(d.Allowed, d.Remaining, d.RetryAfter)
	}
	err := ratelimit.Error(l.Allow("ip|203.0.113.7", 3, time.Minute))
	fmt.Println(err.Code(), err.Meta().Get("Retry-After"))
	// Output:
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 1m20s
	// resource_exhausted 80
}
