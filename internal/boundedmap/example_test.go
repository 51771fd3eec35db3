package boundedmap_test

import (
	"fmt"
	"time"

	"github.com/connectguard/guard/internal/boundedmap"
)

// seen is what a bounded table of visitors keeps per key.
type seen struct {
	last  time.Time
	count int
}

func Example() {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	// The rule: a visitor not seen for an hour has nothing to lose and is
	// swept; otherwise the one seen least often (of a sample) goes.
	visitors := boundedmap.New[string](2, boundedmap.Rule[*seen, time.Time]{
		Sweeps: []func(*seen, time.Time) bool{
			func(s *seen, now time.Time) bool { return now.Sub(s.last) >= time.Hour },
		},
		Rank: func(s *seen, _ time.Time) int { return s.count },
	})
	visit := func(key string) {
		if s, ok := visitors.Get(key); ok {
			s.last, s.count = now, s.count+1
			return
		}
		visitors.Put(key, &seen{last: now, count: 1}, now)
	}

	visit("a")
	visit("b")
	visit("b")
	visit("c") // full: "a" is seen least often
	_, a := visitors.Get("a")
	fmt.Println(visitors.Len(), a)

	now = now.Add(2 * time.Hour)
	visit("b")
	visit("d") // full: a sweep finds "c" idle
	_, c := visitors.Get("c")
	_, b := visitors.Get("b")
	fmt.Println(visitors.Len(), c, b)
	// Output:
	// 2 false
	// 2 false true
}
