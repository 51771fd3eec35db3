package notes

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/connectguard/guard/store"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// loads counts the loads of (note, user) pairs and answers them with the
// note's current title, a version the test bumps to see stale answers.
type loads struct {
	n       int
	version int
	perm    store.Permission
	err     error
	during  func() // runs inside the load, as a concurrent write would
}

func (l *loads) load(noteID string) func() (store.Note, store.Permission, error) {
	return func() (store.Note, store.Permission, error) {
		l.n++
		if l.during != nil {
			l.during()
		}
		return store.Note{ID: noteID, Title: fmt.Sprint("v", l.version)}, l.perm, l.err
	}
}

func TestAccessCache(t *testing.T) {
	t.Parallel()
	newCache := func() (*accessCache, *fakeClock, *loads) {
		clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		return newAccessCache(clk.now), clk, &loads{perm: store.PermissionRead}
	}
	get := func(t *testing.T, c *accessCache, l *loads, note, user string) (store.Note, store.Permission) {
		t.Helper()
		n, p, err := c.access(note, user, l.load(note))
		if err != nil {
			t.Fatal(err)
		}
		return n, p
	}

	t.Run("a repeated read loads once", func(t *testing.T) {
		c, _, l := newCache()
		for range 5 {
			get(t, c, l, "n1", "alice")
		}
		if l.n != 1 {
			t.Errorf("loads = %d, want 1", l.n)
		}
		get(t, c, l, "n1", "bob") // another caller: own permission, own load
		get(t, c, l, "n1", "bob")
		get(t, c, l, "n1", "alice")
		if l.n != 2 {
			t.Errorf("loads after a second caller = %d, want 2", l.n)
		}
	})

	t.Run("invalidate drops the note for every caller", func(t *testing.T) {
		c, _, l := newCache()
		get(t, c, l, "n1", "alice")
		get(t, c, l, "n1", "bob")
		get(t, c, l, "n2", "alice")
		l.version, l.perm = 1, store.PermissionNone
		c.invalidate("n1")
		for _, u := range []string{"alice", "bob"} {
			if n, p := get(t, c, l, "n1", u); n.Title != "v1" || p != store.PermissionNone {
				t.Errorf("%s after invalidate: %q, %v; want v1, none", u, n.Title, p)
			}
		}
		if n, _ := get(t, c, l, "n2", "alice"); n.Title != "v0" {
			t.Errorf("another note after invalidate = %q, want it still cached (v0)", n.Title)
		}
		if l.n != 5 {
			t.Errorf("loads = %d, want 5", l.n)
		}
	})

	t.Run("a load during an invalidation answers its call and is not cached", func(t *testing.T) {
		c, _, l := newCache()
		l.during = func() { c.invalidate("n1") }
		get(t, c, l, "n1", "alice")
		l.during = nil
		get(t, c, l, "n1", "alice")
		if l.n != 2 {
			t.Errorf("loads = %d, want 2: what the racing load read may predate the write", l.n)
		}
	})

	t.Run("errors are not cached", func(t *testing.T) {
		c, _, l := newCache()
		l.err = store.ErrNotFound
		for range 3 {
			if _, _, err := c.access("gone", "alice", l.load("gone")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("access = %v, want ErrNotFound", err)
			}
		}
		if l.n != 3 {
			t.Errorf("loads = %d, want 3", l.n)
		}
	})

	t.Run("each permission expires a second after its own load", func(t *testing.T) {
		c, clk, l := newCache()
		get(t, c, l, "n1", "alice")
		clk.t = clk.t.Add(900 * time.Millisecond)
		get(t, c, l, "n1", "bob") // rewrites the entry; alice's read keeps its time
		clk.t = clk.t.Add(100 * time.Millisecond)
		get(t, c, l, "n1", "alice")
		if l.n != 3 {
			t.Errorf("loads = %d, want 3: alice's permission, a second old, must be read again", l.n)
		}
		get(t, c, l, "n1", "bob")
		if l.n != 3 {
			t.Errorf("loads = %d, want 3: bob's is 0.1 s old", l.n)
		}
	})

	t.Run("callers per note are bounded", func(t *testing.T) {
		c, _, l := newCache()
		for i := range 3 * maxCallersPerNote {
			get(t, c, l, "n1", fmt.Sprint("u", i))
		}
		e, ok := c.entries.GetIfPresent("n1")
		if !ok || len(e.perms) > maxCallersPerNote {
			t.Errorf("entry holds %d callers, want at most %d", len(e.perms), maxCallersPerNote)
		}
	})
}
