package ratelimit

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/connectguard/guard/internal/boundedmap"
)

// shards splits the in-memory limiter so that concurrent calls rarely
// share a lock: a key's shard is a hash of the key.
const shards = 64

// overflowWidth is the number of cells in each row of an overflow table,
// and overflowRows the number of rows (hash functions).
const (
	overflowWidth = 4096
	overflowRows  = 2
)

// Memory is the in-memory Limiter of one process. It is sharded (no lock
// shared by all keys), and bounded: at most WithMaxKeys keys are counted
// exactly.
//
// Under a flood of new keys it fails safe, never resetting a budget that
// is being spent: a new key displaces only a key whose window is empty
// (nothing is lost), and when every tracked key is active, the new key is
// counted in an overflow table instead: a count-min sketch of sliding
// windows (two rows of 4096 cells, per window length), where keys that
// share a cell add up. A cell can only over-count, so a key in the
// overflow may be refused early, never admitted beyond its limit; memory
// stays fixed however many keys arrive. A key that later finds room among
// the exact ones starts from its overflow estimate, so moving never loses
// calls. Refusing new keys outright was the other fail-safe choice; it
// would lock every newcomer out during a flood, where the sketch still
// serves them until the flood saturates their cells.
type Memory struct {
	seed   maphash.Seed
	now    func() time.Time
	shards [shards]shard

	// overflow holds an *overflowTable per window length, made at the
	// first flood that needs one; reads take no lock.
	overflow sync.Map
}

type shard struct {
	mu sync.Mutex
	m  *boundedmap.Map[string, *window, int64]
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns an empty in-memory Limiter.
func NewMemory(opts ...Option) *Memory {
	cfg := config{maxKeys: 100_000, now: time.Now}
	for _, o := range opts {
		o.apply(&cfg)
	}
	l := &Memory{seed: maphash.MakeSeed(), now: cfg.now}
	perShard := max(1, cfg.maxKeys/shards)
	for i := range l.shards {
		// The rule of each shard: a sweep drops keys whose window counts
		// nothing (idle: forgetting them loses nothing), and so does a
		// sampled eviction (rank 0); an active key is never dropped, so
		// TryPut refuses a new key rather than reset a budget in use.
		l.shards[i].m = boundedmap.New[string](perShard, boundedmap.Rule[*window, int64]{
			Sweeps: []func(*window, int64) bool{(*window).idle},
			Rank: func(w *window, now int64) int {
				if w.idle(now) {
					return 0
				}
				return 1
			},
		})
	}
	return l
}

// Allow implements Limiter. It never returns an error.
func (l *Memory) Allow(_ context.Context, quotas ...Quota) (Decision, error) {
	if err := checkQuotas(quotas); err != nil {
		return Decision{}, err
	}
	now := l.now().UnixNano()
	if len(quotas) == 1 { // the common case: one shard, no ordering
		s := &l.shards[maphash.String(l.seed, quotas[0].Key)%shards]
		s.mu.Lock()
		c := [1]counter{l.counter(s, quotas[0], now)}
		d := decide(quotas, c[:], now)
		s.mu.Unlock()
		return d, nil
	}
	// Lock every shard involved, in index order, so that the decision
	// over several quotas is atomic and two calls cannot deadlock.
	var idx [MaxQuotas]int
	for i, q := range quotas {
		idx[i] = int(maphash.String(l.seed, q.Key) % shards)
	}
	var lockBuf [MaxQuotas]int
	locked := append(lockBuf[:0], idx[:len(quotas)]...)
	slices.Sort(locked)
	locked = slices.Compact(locked)
	for _, s := range locked {
		l.shards[s].mu.Lock()
	}
	defer func() {
		for _, s := range locked {
			l.shards[s].mu.Unlock()
		}
	}()

	var ws [MaxQuotas]counter
	for i, q := range quotas {
		ws[i] = l.counter(&l.shards[idx[i]], q, now)
	}
	return decide(quotas, ws[:len(quotas)], now), nil
}

// counter returns what counts q's key: its exact window, made if there is
// room, or else its cells in the overflow table. The key's shard is locked.
func (l *Memory) counter(s *shard, q Quota, now int64) counter {
	if w, ok := s.m.Get(q.Key); ok {
		return counter{w: w}
	}
	w := newWindow(q.Window)
	ov := l.overflowTable(q.Window, false)
	if s.m.TryPut(q.Key, w, now) {
		if ov != nil {
			// Calls this key made while it overflowed move with it.
			if n := ov.estimate(l.seed, q.Key, now); n > 0 {
				w.advance(now)
				w.counts[slot(w.newest)] = uint32(n)
				w.total = n
			}
		}
		return counter{w: w}
	}
	if ov == nil {
		ov = l.overflowTable(q.Window, true)
	}
	return counter{ov: ov, cells: ov.cellsOf(l.seed, q.Key)}
}

// overflowTable returns the overflow table of windows of length size,
// making it when make is set.
func (l *Memory) overflowTable(size time.Duration, make bool) *overflowTable {
	if t, ok := l.overflow.Load(size); ok {
		return t.(*overflowTable)
	}
	if !make {
		return nil
	}
	t, _ := l.overflow.LoadOrStore(size, newOverflowTable(size))
	return t.(*overflowTable)
}

// Len returns the number of keys counted exactly.
func (l *Memory) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += l.shards[i].m.Len()
		l.shards[i].mu.Unlock()
	}
	return n
}

// counter is where one quota's calls are counted: an exact window, or
// overflow cells.
type counter struct {
	w     *window
	ov    *overflowTable
	cells [overflowRows]*window
}

// decide admits the call if every counter has room, then spends one call
// of each; otherwise it spends nothing.
func decide(quotas []Quota, cs []counter, now int64) Decision {
	d := Decision{Allowed: true, n: len(quotas)}
	for i, c := range cs {
		q := quotas[i]
		used := c.used(now)
		d.states[i] = QuotaState{Quota: q, Remaining: max(0, q.Limit-used-1)}
		if used+1 > q.Limit {
			d.Allowed = false
			d.states[i].Remaining = 0
			d.RetryAfter = max(d.RetryAfter, c.wait(now, q.Limit-1))
		}
	}
	if !d.Allowed {
		for i, c := range cs {
			d.states[i].Reset = c.reset(now)
		}
		d.RetryAfter = roundUp(d.RetryAfter)
		return d
	}
	for i, c := range cs {
		c.spend(now)
		d.states[i].Reset = c.reset(now)
	}
	return d
}

// used returns the calls counted at now.
func (c counter) used(now int64) int {
	if c.w != nil {
		c.w.advance(now)
		return c.w.count()
	}
	w := c.ov.least(c.cells, now)
	return w.count()
}

// wait returns how long from now until at most fits calls are counted.
func (c counter) wait(now int64, fits int) time.Duration {
	if c.w != nil {
		return c.w.wait(now, fits)
	}
	w := c.ov.least(c.cells, now)
	return w.wait(now, fits)
}

// reset returns how long until a counted call is given back.
func (c counter) reset(now int64) time.Duration {
	if c.w != nil {
		return c.w.reset(now)
	}
	w := c.ov.least(c.cells, now)
	return w.reset(now)
}

func (c counter) spend(now int64) {
	if c.w != nil {
		c.w.spend()
		return
	}
	c.ov.spend(c.cells, now)
}

// roundUp rounds a wait up to whole seconds, at least one: a client that
// waits exactly Retry-After then fits.
func roundUp(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

// overflowTable is a count-min sketch of sliding windows of one length:
// each key maps to one cell per row, a cell counts every call of every key
// that maps to it, and a key's estimate is its least-loaded cell, which
// can over-count but never under-count.
type overflowTable struct {
	mu    sync.Mutex
	size  time.Duration
	cells [overflowRows][overflowWidth]window
}

func newOverflowTable(size time.Duration) *overflowTable {
	t := &overflowTable{size: size}
	for r := range t.cells {
		for c := range t.cells[r] {
			t.cells[r][c] = *newWindow(size)
		}
	}
	return t
}

func (t *overflowTable) cellsOf(seed maphash.Seed, key string) [overflowRows]*window {
	h := maphash.String(seed, key)
	var out [overflowRows]*window
	for r := range out {
		out[r] = &t.cells[r][(h>>(32*r))%overflowWidth]
	}
	return out
}

// estimate returns the calls of key's least-loaded cell at now.
func (t *overflowTable) estimate(seed maphash.Seed, key string, now int64) int {
	w := t.least(t.cellsOf(seed, key), now)
	return w.count()
}

// least returns a copy of the least-loaded of a key's cells at now.
func (t *overflowTable) least(cells [overflowRows]*window, now int64) window {
	t.mu.Lock()
	defer t.mu.Unlock()
	var least *window
	for _, w := range cells {
		w.advance(now)
		if least == nil || w.count() < least.count() {
			least = w
		}
	}
	return *least
}

func (t *overflowTable) spend(cells [overflowRows]*window, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range cells {
		w.advance(now)
		w.spend()
	}
}

// checkQuotas refuses what no limiter can decide on.
func checkQuotas(quotas []Quota) error {
	if len(quotas) == 0 || len(quotas) > MaxQuotas {
		return fmt.Errorf("ratelimit: %d quotas, want 1 to %d", len(quotas), MaxQuotas)
	}
	for _, q := range quotas {
		if q.Limit < 1 || q.Window <= 0 {
			return fmt.Errorf("ratelimit: quota %q: limit %d per %s, want both positive", q.Name, q.Limit, q.Window)
		}
	}
	return nil
}
