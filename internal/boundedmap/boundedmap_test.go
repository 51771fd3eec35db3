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

// TestTryPut: a full map of entries worth keeping refuses a new key and
// keeps them all; worthless entries (swept or ranked 0) make room; and a
// flood of refused keys costs amortised O(1) each.
func TestTryPut(t *testing.T) {
	t.Parallel()
	t.Run("keeps_valuable_entries", func(t *testing.T) {
		t.Parallel()
		var c counting
		m := boundedmap.New[int](100, c.rule(1))
		for i := range 100 {
			if !m.TryPut(i, val{rank: 5}, struct{}{}) {
				t.Fatalf("TryPut(%d) = false with room", i)
			}
		}
		c.rankCalls, c.sweepCalls = 0, 0
		const flood = 100_000
		for i := range flood {
			if m.TryPut(1000+i, val{rank: 5}, struct{}{}) {
				t.Fatalf("TryPut(new key %d) = true into a full map of valuable entries", i)
			}
		}
		for i := range 100 {
			if _, ok := m.Get(i); !ok {
				t.Fatalf("valuable key %d was dropped", i)
			}
		}
		if looked := c.rankCalls + c.sweepCalls; looked > 16*flood { // a sweep (maxKeys) and a sample (32) per maxKeys/8 keys
			t.Errorf("looked at %d entries for %d refused keys, want amortised O(1)", looked, flood)
		}
	})
	for _, tt := range []struct {
		name      string
		maxKeys   int
		worthless val
	}{
		{"drops_swept_entry", 100, val{rank: 5, sweep: 1}},
		{"drops_rank_zero_entry", 20, val{rank: 0}}, // a sample sees every entry
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c counting
			m := boundedmap.New[int](tt.maxKeys, c.rule(1))
			for i := range tt.maxKeys {
				m.TryPut(i, val{rank: 5}, struct{}{})
			}
			m.TryPut(7, tt.worthless, struct{}{})
			for i := range tt.maxKeys { // a sweep is due within maxKeys/8 attempts
				if m.TryPut(500+i, val{rank: 5}, struct{}{}) {
					if _, ok := m.Get(7); ok {
						t.Fatal("a new key got in, yet the worthless key 7 is still there")
					}
					return
				}
			}
			t.Fatal("no new key got in, though key 7 was worthless")
		})
	}
	t.Run("existing_key_always_updates", func(t *testing.T) {
		t.Parallel()
		var c counting
		m := boundedmap.New[int](1, c.rule(0))
		m.TryPut(1, val{rank: 5}, struct{}{})
		if !m.TryPut(1, val{rank: 6}, struct{}{}) {
			t.Fatal("TryPut(existing key) = false")
		}
		if v, _ := m.Get(1); v.rank != 6 {
			t.Errorf("got %v, want the new value", v)
		}
	})
}
