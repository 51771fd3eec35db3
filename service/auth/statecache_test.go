package auth

// stateCache is unexported, so its rule is tested here, inside the package.

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// loads counts the loads of one key and answers with st.
type loads struct {
	n  int
	st credState
}

func (l *loads) load() (credState, error) {
	l.n++
	return l.st, nil
}

func TestStateCache(t *testing.T) {
	t.Parallel()
	alice := credState{found: true, userID: "alice", sessionID: "s1"}

	t.Run("hit_until_ttl_then_reload", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		c := newStateCache(10, clk.Now)
		l := &loads{st: alice}
		for _, step := range []struct {
			advance time.Duration
			want    int // loads so far
		}{
			{0, 1},
			{cacheTTL - time.Nanosecond, 1},
			{time.Nanosecond, 2}, // exactly cacheTTL after the load: stale
			{cacheTTL / 2, 2},
		} {
			clk.Advance(step.advance)
			if _, err := c.get(sk("k"), l.load); err != nil {
				t.Fatal(err)
			}
			if l.n != step.want {
				t.Fatalf("after +%v: %d loads, want %d", step.advance, l.n, step.want)
			}
		}
	})

	t.Run("update_writes_a_copy_and_keeps_the_deadline", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		c := newStateCache(10, clk.Now)
		l := &loads{st: alice}
		got, err := c.get(sk("k"), l.load)
		if err != nil {
			t.Fatal(err)
		}
		seen := clk.Now().Add(time.Hour)
		clk.Advance(cacheTTL / 2)
		c.update(sk("k"), func(st *credState) { st.lastSeen = seen })
		if !got.lastSeen.IsZero() {
			t.Errorf("update changed a state already returned: lastSeen %v, want zero", got.lastSeen)
		}
		if got, _ := c.get(sk("k"), l.load); !got.lastSeen.Equal(seen) || l.n != 1 {
			t.Errorf("after update: lastSeen %v after %d loads, want %v after 1", got.lastSeen, l.n, seen)
		}
		clk.Advance(cacheTTL / 2)
		if _, err := c.get(sk("k"), l.load); err != nil || l.n != 2 {
			t.Errorf("cacheTTL after the load (updated since): %d loads (%v), want 2", l.n, err)
		}
		c.update(sk("absent"), func(st *credState) { st.lastSeen = seen })
		if _, ok := c.entries.GetIfPresent(sk("absent")); ok {
			t.Error("update of an absent key created it")
		}
	})

	t.Run("invalidate_user_drops_only_theirs", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		c := newStateCache(10, clk.Now)
		bob := credState{found: true, userID: "bob"}
		for key, st := range map[string]credState{"a1": alice, "a2": alice, "b1": bob} {
			if _, err := c.get(sk(key), func() (credState, error) { return st, nil }); err != nil {
				t.Fatal(err)
			}
		}
		c.invalidateUser("alice")
		for key, want := range map[string]bool{"a1": false, "a2": false, "b1": true} {
			if _, ok := c.entries.GetIfPresent(sk(key)); ok != want {
				t.Errorf("%s cached = %v, want %v", key, ok, want)
			}
		}
	})

	t.Run("load_during_invalidation_used_not_cached", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		c := newStateCache(10, clk.Now)
		got, err := c.get(sk("k"), func() (credState, error) {
			c.invalidateUser("someone else") // any invalidation counts
			return alice, nil
		})
		if err != nil || got.userID != "alice" {
			t.Errorf("got %+v, %v, want alice's state", got, err)
		}
		if _, ok := c.entries.GetIfPresent(sk("k")); ok {
			t.Error("a state loaded during an invalidation was cached")
		}
	})

	t.Run("not_found_and_errors_not_cached", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		c := newStateCache(10, clk.Now)
		errLoad := errors.New("load failed")
		if _, err := c.get(sk("err"), func() (credState, error) { return credState{}, errLoad }); !errors.Is(err, errLoad) {
			t.Errorf("got %v, want %v", err, errLoad)
		}
		if st, err := c.get(sk("missing"), func() (credState, error) { return credState{}, nil }); err != nil || st.found {
			t.Errorf("got %+v, %v, want not found", st, err)
		}
		for _, key := range []string{"err", "missing"} {
			if _, ok := c.entries.GetIfPresent(sk(key)); ok {
				t.Errorf("%s is cached, want not", key)
			}
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		clk := &testClock{now: time.Unix(1_800_000_000, 0)}
		const maxEntries = 50
		c := newStateCache(maxEntries, clk.Now)
		for i := range 20 * maxEntries {
			key := fmt.Sprintf("k%d", i)
			if _, err := c.get(sk(key), func() (credState, error) { return alice, nil }); err != nil {
				t.Fatal(err)
			}
		}
		c.entries.CleanUp()
		if got := c.entries.EstimatedSize(); got > maxEntries || got == 0 {
			t.Errorf("holds %d entries, want 1 to %d", got, maxEntries)
		}
	})
}

// sk is the cache key of a session id.
func sk(id string) credKey { return credKey{kind: 's', id: id} }
