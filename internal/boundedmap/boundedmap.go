// Package boundedmap is a map bounded in keys, for state whose keys come
// from clients (failed logins per account, rate-limit windows per IP), so
// that a flood of new keys costs bounded memory.
//
// When the map is full, inserting a new key first makes room by its
// [Rule], without a scan of the whole map on every insertion:
//
//   - a sweep, at most once per max(1, maxKeys/8) insertions: it drops
//     every entry that the rule's first Sweeps function accepts; if that
//     left the map full, every entry the next one accepts; and so on.
//     Sweeps amortise to a few entries looked at per insertion.
//   - otherwise, or when the sweep left the map full, a sampled eviction:
//     of up to 32 entries from a random position, the lowest-ranked goes
//     (the first seen among equals), and an entry ranked 0 or less goes at
//     once.
//
// The new key itself is never the one that goes. A Map is not safe for
// concurrent use: its user guards it with the lock that also guards the
// values it changes.
package boundedmap

// sampleSize is how many entries a sampled eviction looks at.
const sampleSize = 32

// Rule says which entries a full Map drops to make room. Its functions get
// the entry's value and what the insertion was given (the current time, in
// this module's users).
type Rule[V, T any] struct {
	// Sweeps say what a sweep drops, in order: entries with nothing to lose
	// first, then, only if the map is still full, entries with more.
	// None means no sweeps: only sampled evictions.
	Sweeps []func(v V, now T) bool
	// Rank orders entries by what is lost when they go: the lowest of a
	// sample goes, and 0 or less means "nothing", so that entry goes at
	// once. Nil ranks every entry 0, which evicts from a random position.
	Rank func(v V, now T) int
}

// Map is a map of at most maxKeys keys. Create it with [New].
type Map[K comparable, V, T any] struct {
	m          map[K]V
	maxKeys    int
	rule       Rule[V, T]
	sweepEvery int  // insertions between sweeps
	sinceSweep int  // insertions since the last sweep
	full       bool // TryPut found nothing worthless to drop
}

// New returns an empty Map that holds at most maxKeys keys (at least 1)
// and makes room by rule.
func New[K comparable, V, T any](maxKeys int, rule Rule[V, T]) *Map[K, V, T] {
	maxKeys = max(maxKeys, 1)
	return &Map[K, V, T]{
		m:          make(map[K]V),
		maxKeys:    maxKeys,
		rule:       rule,
		sweepEvery: max(1, maxKeys/8),
	}
}

// Get returns the value of k and whether k is present.
func (m *Map[K, V, T]) Get(k K) (V, bool) {
	v, ok := m.m[k]
	return v, ok
}

// Put sets the value of k. When k is new and the map is full, it first
// makes room by the rule, whose functions are given now.
func (m *Map[K, V, T]) Put(k K, v V, now T) {
	if _, ok := m.m[k]; !ok {
		m.makeRoom(now)
		m.sinceSweep++
	}
	m.m[k] = v
}

// TryPut sets the value of k like Put, except that to make room it drops
// only what loses nothing: entries a Sweeps function accepts, or ranked 0
// or less. When the map is full of entries worth keeping it inserts
// nothing and returns false. Repeated failures cost O(1) each: after one,
// TryPut looks again only after maxKeys more attempts (then with a sweep
// and a sample), so a flood of new keys into a map full of valuable
// entries pays about one entry looked at per key.
func (m *Map[K, V, T]) TryPut(k K, v V, now T) bool {
	if _, ok := m.m[k]; ok {
		m.m[k] = v
		return true
	}
	m.sinceSweep++
	if len(m.m) >= m.maxKeys {
		if m.full && m.sinceSweep < m.maxKeys {
			return false
		}
		if !m.dropWorthless(now) {
			m.full = true
			return false
		}
	}
	m.full = false
	m.m[k] = v
	return true
}

// dropWorthless frees a slot by a sweep when one is due, else by a sample
// of entries ranked 0 or less. It reports whether it freed one.
func (m *Map[K, V, T]) dropWorthless(now T) bool {
	if m.sinceSweep >= m.sweepEvery || m.full {
		m.sinceSweep = 0
		for _, drop := range m.rule.Sweeps {
			for k, v := range m.m {
				if drop(v, now) {
					delete(m.m, k)
				}
			}
			if len(m.m) < m.maxKeys {
				return true
			}
		}
	}
	seen := 0
	for k, v := range m.m {
		if m.rule.Rank == nil || m.rule.Rank(v, now) <= 0 {
			delete(m.m, k)
			return true
		}
		if seen++; seen == sampleSize {
			break
		}
	}
	return false
}

// Delete removes k.
func (m *Map[K, V, T]) Delete(k K) {
	delete(m.m, k)
}

// DeleteFunc removes every entry for which del returns true.
func (m *Map[K, V, T]) DeleteFunc(del func(K, V) bool) {
	for k, v := range m.m {
		if del(k, v) {
			delete(m.m, k)
		}
	}
}

// Len returns the number of keys.
func (m *Map[K, V, T]) Len() int {
	return len(m.m)
}

// makeRoom frees a slot for a new key if the map is full.
func (m *Map[K, V, T]) makeRoom(now T) {
	if len(m.m) < m.maxKeys {
		return
	}
	if m.sinceSweep >= m.sweepEvery {
		m.sinceSweep = 0
		for _, drop := range m.rule.Sweeps {
			for k, v := range m.m {
				if drop(v, now) {
					delete(m.m, k)
				}
			}
			if len(m.m) < m.maxKeys {
				return
			}
		}
	}

	// Map iteration starts at a random position, so this is a random sample.
	var (
		victim K
		lowest int
		seen   int
	)
	for k, v := range m.m {
		r := 0
		if m.rule.Rank != nil {
			r = m.rule.Rank(v, now)
		}
		if r <= 0 {
			delete(m.m, k)
			return
		}
		if seen == 0 || r < lowest {
			victim, lowest = k, r
		}
		if seen++; seen == sampleSize {
			break
		}
	}
	delete(m.m, victim)
}
