package boundedmap_test

import (
	"testing"

	"github.com/connectguard/guard/internal/boundedmap"
)

// val is a test value: its rank, and the sweep levels that drop it.
type val struct {
	rank  int
	sweep int // 0: never swept; n: dropped by Sweeps[n-1] and later ones
}

// counting is a rule over val that counts its calls.
type counting struct {
	sweepCalls, rankCalls int
}

func (c *counting) rule(levels int) boundedmap.Rule[val, struct{}] {
	r := boundedmap.Rule[val, struct{}]{
		Rank: func(v val, _ struct{}) int { c.rankCalls++; return v.rank },
	}
	for level := 1; level <= levels; level++ {
		r.Sweeps = append(r.Sweeps, func(v val, _ struct{}) bool {
			c.sweepCalls++
			return v.sweep != 0 && v.sweep <= level
		})
	}
	return r
}

func TestBounded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		maxKeys int
		want    int
	}{
		{"one", 1, 1},
		{"zero_means_one", 0, 1},
		{"negative_means_one", -3, 1},
		{"hundred", 100, 100},
		{"more_than_a_sample", 1000, 1000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c counting
			m := boundedmap.New[int](tt.maxKeys, c.rule(2))
			for i := range 10 * tt.want {
				m.Put(i, val{rank: 1 + i%7, sweep: i % 3}, struct{}{})
				if got := m.Len(); got > tt.want {
					t.Fatalf("after %d keys: Len() = %d, want <= %d", i+1, got, tt.want)
				}
				if _, ok := m.Get(i); !ok {
					t.Fatalf("key %d missing right after Put", i)
				}
			}
		})
	}
}

// TestNoFullScanPerInsertion: into a full map of entries no sweep drops,
// each insertion looks at a sample, and the sweeps, one per maxKeys/8
// insertions, amortise to a few entries per insertion.
func TestNoFullScanPerInsertion(t *testing.T) {
	t.Parallel()
	const maxKeys, inserts = 1024, 10_000
	var c counting
	m := boundedmap.New[int](maxKeys, c.rule(1))
	for i := range maxKeys {
		m.Put(i, val{rank: 1}, struct{}{})
	}
	c = counting{}
	for i := range inserts {
		m.Put(maxKeys+i, val{rank: 1}, struct{}{})
	}
	if got, want := c.rankCalls, 32*inserts; got > want {
		t.Errorf("Rank called %d times for %d insertions, want at most %d (a sample each)", got, inserts, want)
	}
	sweeps := inserts/(maxKeys/8) + 1
	if got, want := c.sweepCalls, sweeps*maxKeys; got > want {
		t.Errorf("Sweeps called %d times for %d insertions, want at most %d", got, inserts, want)
	}
}

func TestSweepsInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		vals     []val // fill the map, in key order
		wantKept []bool
	}{
		{
			// The first sweep frees room: the level-2 entries stay.
			name:     "first_sweep_enough",
			vals:     []val{{rank: 9, sweep: 1}, {rank: 9, sweep: 2}, {rank: 9}, {rank: 9, sweep: 2}},
			wantKept: []bool{false, true, true, true},
		},
		{
			// No level-1 entries: the second sweep runs.
			name:     "second_sweep",
			vals:     []val{{rank: 9, sweep: 2}, {rank: 9}, {rank: 9, sweep: 2}, {rank: 9}},
			wantKept: []bool{false, true, false, true},
		},
		{
			// Nothing to sweep: the lowest rank goes (the sample is the whole map).
			name:     "sampled",
			vals:     []val{{rank: 3}, {rank: 2}, {rank: 5}, {rank: 4}},
			wantKept: []bool{true, false, true, true},
		},
		{
			name:     "rank_zero_goes_at_once",
			vals:     []val{{rank: 3}, {rank: 2}, {rank: 0}, {rank: 4}},
			wantKept: []bool{true, true, false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c counting
			m := boundedmap.New[int](len(tt.vals), c.rule(2))
			for i, v := range tt.vals {
				m.Put(i, v, struct{}{})
			}
			m.Put(len(tt.vals), val{rank: 1}, struct{}{}) // full, and a sweep is due
			for i, want := range tt.wantKept {
				if _, got := m.Get(i); got != want {
					t.Errorf("key %d kept = %v, want %v", i, got, want)
				}
			}
			if _, ok := m.Get(len(tt.vals)); !ok {
				t.Error("the new key is missing")
			}
		})
	}
}

func TestPutExistingKeyEvictsNothing(t *testing.T) {
	t.Parallel()
	var c counting
	m := boundedmap.New[string](2, c.rule(1))
	m.Put("a", val{rank: 1, sweep: 1}, struct{}{})
	m.Put("b", val{rank: 1, sweep: 1}, struct{}{})
	m.Put("a", val{rank: 2}, struct{}{})
	if got, ok := m.Get("a"); !ok || got.rank != 2 {
		t.Errorf("Get(a) = %+v, %v, want rank 2", got, ok)
	}
	if _, ok := m.Get("b"); !ok || m.Len() != 2 {
		t.Errorf("b present = %v, Len() = %d, want true, 2", ok, m.Len())
	}
	if c.sweepCalls+c.rankCalls != 0 {
		t.Errorf("rule called %d times, want 0", c.sweepCalls+c.rankCalls)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	m := boundedmap.New[string](10, boundedmap.Rule[int, struct{}]{})
	for i, k := range []string{"a1", "a2", "b1", "b2"} {
		m.Put(k, i, struct{}{})
	}
	m.Delete("b2")
	m.DeleteFunc(func(k string, _ int) bool { return k[0] == 'a' })
	if _, ok := m.Get("b1"); !ok || m.Len() != 1 {
		t.Errorf("b1 present = %v, Len() = %d, want true, 1", ok, m.Len())
	}
}

func BenchmarkPutWhenFull(b *testing.B) {
	const maxKeys = 10_000
	// Nothing is ever swept: every insertion evicts by sample, and every
	// maxKeys/8 insertions a sweep looks at the whole map in vain.
	m := boundedmap.New[int](maxKeys, boundedmap.Rule[int, struct{}]{
		Sweeps: []func(int, struct{}) bool{func(int, struct{}) bool { return false }},
		Rank:   func(v int, _ struct{}) int { return 1 + v%16 },
	})
	for i := range maxKeys {
		m.Put(i, i, struct{}{})
	}
	b.ReportAllocs()
	i := maxKeys
	for b.Loop() {
		m.Put(i, i, struct{}{})
		i++
	}
}
