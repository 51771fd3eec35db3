package notes

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectguard/guard/store"
	"github.com/maypok86/otter/v2"
)

// cacheTTL bounds how long a note and a caller's permission on it are
// answered from memory: the same second as the credential cache of
// service/auth, so one bound holds for every kind of change made on
// another replica whose announcement is lost. Changes made in this
// process drop the entry when they commit, so here the cache is exact.
const cacheTTL = time.Second

const (
	// maxCacheWeight bounds the memory the cache holds, in bytes, roughly.
	maxCacheWeight = 32 << 20
	// maxCallersPerNote bounds the permissions kept per note: beyond it a
	// caller's permission is read from the database each time, so that
	// one note probed by many callers cannot grow its entry without bound.
	maxCallersPerNote = 32
)

// accessCache answers store.NoteAccess from memory for a caller who read
// the note less than cacheTTL ago, when nothing has changed the note or
// its shares since. One entry per note holds the note and the permissions
// of the callers that read it, each with the time it was read.
//
// Exactness in one process: every write to a note or its shares goes
// through the Service, which calls invalidate once the write has
// committed (drop, then announce to the other replicas). A load that ran
// while an invalidation happened may predate the write, so it answers its
// own call but is not cached (gen, as in service/auth's credential cache).
type accessCache struct {
	entries *otter.Cache[string, noteEntry]
	now     func() time.Time
	// mu orders insertions against invalidations: insert holds it shared
	// while it checks gen and stores, invalidate exclusively while it bumps
	// gen and drops the entry.
	mu  sync.RWMutex
	gen atomic.Uint64
}

// noteEntry is what is cached of one note. It is never changed once
// stored: an insertion stores a new one.
type noteEntry struct {
	note   store.Note
	loaded time.Time
	perms  map[string]cachedPerm // by caller's user id
}

type cachedPerm struct {
	perm   store.Permission
	loaded time.Time
}

func newAccessCache(now func() time.Time) *accessCache {
	return &accessCache{
		now: now,
		entries: otter.Must(&otter.Options[string, noteEntry]{
			MaximumWeight: maxCacheWeight,
			Weigher: func(id string, e noteEntry) uint32 {
				return uint32(256 + len(id) + len(e.note.Title) + len(e.note.Body) + 64*len(e.perms))
			},
			ExpiryCalculator: otter.ExpiryWriting[string, noteEntry](cacheTTL),
			// Maintenance runs on the caller's goroutine, amortised: no
			// goroutine per write; nothing here calls the cache from a
			// callback, the one way that could deadlock.
			Executor: func(fn func()) { fn() },
		}),
	}
}

// access returns the note noteID and userID's permission on it, from the
// cache when both were read less than cacheTTL ago, else by load, whose
// answer it caches. Errors (a note not found included) are not cached.
func (c *accessCache) access(noteID, userID string, load func() (store.Note, store.Permission, error)) (store.Note, store.Permission, error) {
	now := c.now()
	e, ok := c.entries.GetIfPresent(noteID)
	if ok && now.Sub(e.loaded) < cacheTTL {
		if p, ok := e.perms[userID]; ok && now.Sub(p.loaded) < cacheTTL {
			return e.note, p.perm, nil
		}
	}
	gen := c.gen.Load()
	n, perm, err := load()
	if err != nil {
		return n, perm, err
	}
	c.insert(gen, noteID, userID, n, perm, now)
	return n, perm, nil
}

// insert caches what a load that began at generation gen and time now
// read, unless an invalidation has happened since.
func (c *accessCache) insert(gen uint64, noteID, userID string, n store.Note, perm store.Permission, now time.Time) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen.Load() != gen {
		return
	}
	perms := map[string]cachedPerm{userID: {perm, now}}
	// The other callers' permissions, still fresh, stay: no write came
	// between their loads and this one (gen).
	if old, ok := c.entries.GetIfPresent(noteID); ok {
		for u, p := range old.perms {
			if u != userID && now.Sub(p.loaded) < cacheTTL && len(perms) < maxCallersPerNote {
				perms[u] = p
			}
		}
	}
	c.entries.Set(noteID, noteEntry{note: n, loaded: now, perms: perms})
}

// invalidate drops what is cached of the note noteID.
func (c *accessCache) invalidate(noteID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.entries.Invalidate(noteID)
}

// invalidateAll drops everything cached.
func (c *accessCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.entries.InvalidateAll()
}

// cachedAccess reads note access through the cache.
func (s *Service) cachedAccess(ctx context.Context, noteID, userID string) (store.Note, store.Permission, error) {
	return s.cache.access(noteID, userID, func() (store.Note, store.Permission, error) {
		return s.store.NoteAccess(ctx, noteID, userID)
	})
}
