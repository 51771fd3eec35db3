package detect_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/detect"
)

// recorder collects the events of a Detector.
type recorder struct {
	mu     sync.Mutex
	events []detect.Event
}

func (r *recorder) report(e detect.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count(kind detect.Kind, blocks bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && (e.Blocked > 0) == blocks {
			n++
		}
	}
	return n
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newDetector(opts ...detect.Option) (*detect.Detector, *recorder, *clock) {
	r := &recorder{}
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	return detect.New(r.report, append([]detect.Option{detect.WithClock(c.now)}, opts...)...), r, c
}

var (
	attacker = netip.MustParseAddr("2001:db8:1:2::66")
	sameNet  = netip.MustParseAddr("2001:db8:1:2::99") // the attacker's /64
	other    = netip.MustParseAddr("198.51.100.7")
)

func TestEnumeration(t *testing.T) {
	t.Parallel()
	t.Run("below_threshold", func(t *testing.T) {
		t.Parallel()
		d, r, _ := newDetector()
		for i := range detect.EnumerationIDs - 1 {
			d.Refused("u1", "note", fmt.Sprint("id", i))
			d.Refused("u1", "note", fmt.Sprint("id", i)) // the same id again is not new
		}
		if got := r.count(detect.KindEnumeration, false); got != 0 {
			t.Errorf("events = %d, want 0", got)
		}
	})
	t.Run("once_per_window", func(t *testing.T) {
		t.Parallel()
		d, r, c := newDetector()
		for i := range 3 * detect.EnumerationIDs {
			d.Refused("u1", "note", fmt.Sprint("id", i))
		}
		if got := r.count(detect.KindEnumeration, false); got != 1 {
			t.Fatalf("events = %d, want 1", got)
		}
		if e := r.events[0]; e.UserID != "u1" || !strings.Contains(e.Detail, "enumeration") {
			t.Errorf("event = %+v, want user u1, detail naming the kind", e)
		}
		c.t = c.t.Add(detect.EnumerationWindow)
		for i := range detect.EnumerationIDs {
			d.Refused("u1", "note", fmt.Sprint("next", i))
		}
		if got := r.count(detect.KindEnumeration, false); got != 2 {
			t.Errorf("events after a window = %d, want 2", got)
		}
	})
	t.Run("slow_probing_is_not_a_burst", func(t *testing.T) {
		t.Parallel()
		d, r, c := newDetector()
		for i := range 3 * detect.EnumerationIDs {
			d.Refused("u1", "note", fmt.Sprint("id", i))
			c.t = c.t.Add(detect.EnumerationWindow / (detect.EnumerationIDs - 2))
		}
		if got := r.count(detect.KindEnumeration, false); got != 0 {
			t.Errorf("events = %d, want 0", got)
		}
	})
}

func TestCredentialStuffing(t *testing.T) {
	t.Parallel()
	d, r, _ := newDetector(detect.WithBlock(time.Minute))
	for i := range detect.StuffingAccounts - 1 {
		d.LoginFailed(fmt.Sprintf("user%d@example.com", i), attacker)
	}
	for range 20 { // one account many times is guessing, not stuffing
		d.LoginFailed("user0@example.com", sameNet)
	}
	if got := r.count(detect.KindCredentialStuffing, false); got != 0 {
		t.Fatalf("events below threshold = %d, want 0", got)
	}
	if _, blocked := d.NetworkBlocked(attacker); blocked {
		t.Fatal("blocked below threshold")
	}
	for i := range 50 {
		d.LoginFailed(fmt.Sprintf("more%d@example.com", i), sameNet) // the same /64
	}
	if got := r.count(detect.KindCredentialStuffing, false); got != 1 {
		t.Fatalf("events = %d, want 1", got)
	}
	if got := r.count(detect.KindCredentialStuffing, true); got != 1 {
		t.Fatalf("block events = %d, want 1", got)
	}
	for _, e := range r.events {
		if strings.Contains(e.Detail, "@") {
			t.Errorf("detail %q names an email", e.Detail)
		}
	}
	if wait, blocked := d.NetworkBlocked(attacker); !blocked || wait != time.Minute {
		t.Errorf("NetworkBlocked(attacker) = %v, %v; want 1m, true", wait, blocked)
	}
	if _, blocked := d.NetworkBlocked(other); blocked {
		t.Error("another network is blocked")
	}
}

func TestInvalidTokenBurst(t *testing.T) {
	t.Parallel()
	d, r, c := newDetector()
	for range detect.InvalidCredentials - 1 {
		d.InvalidCredential(attacker)
	}
	c.t = c.t.Add(detect.InvalidWindow) // the first ones leave the window
	d.InvalidCredential(attacker)
	if got := r.count(detect.KindInvalidTokenBurst, false); got != 0 {
		t.Fatalf("events below threshold = %d, want 0", got)
	}
	for range 5 * detect.InvalidCredentials {
		d.InvalidCredential(sameNet)
	}
	if got := r.count(detect.KindInvalidTokenBurst, false); got != 1 {
		t.Errorf("events = %d, want 1", got)
	}
	if _, blocked := d.NetworkBlocked(attacker); blocked {
		t.Error("blocked without WithBlock")
	}
}

func TestRefreshReuse(t *testing.T) {
	t.Parallel()
	d, r, c := newDetector(detect.WithBlock(time.Hour))
	d.RefreshReused("u1", attacker)
	d.RefreshReused("u1", attacker) // within the minute: no second event
	if got := r.count(detect.KindRefreshReuse, false); got != 1 {
		t.Fatalf("events = %d, want 1", got)
	}
	if _, blocked := d.UserBlocked("u1"); blocked || r.count(detect.KindRefreshReuse, true) != 0 {
		t.Fatal("u1 blocked after a refresh reuse, want no block")
	}
	c.t = c.t.Add(time.Minute)
	d.RefreshReused("u1", attacker)
	if got := r.count(detect.KindRefreshReuse, false); got != 2 {
		t.Errorf("events after a minute = %d, want 2", got)
	}
}

func TestUnblockUser(t *testing.T) {
	t.Parallel()
	d, _, _ := newDetector(detect.WithBlock(time.Hour))
	for i := range detect.EnumerationIDs {
		d.Refused("u1", "note", fmt.Sprint(i))
	}
	if _, blocked := d.UserBlocked("u1"); !blocked {
		t.Fatal("u1 not blocked")
	}
	if _, blocked := d.UserBlocked("u2"); blocked {
		t.Fatal("u2 blocked")
	}
	if !d.UnblockUser("u1") {
		t.Fatal("UnblockUser(u1) = false, want true")
	}
	if _, blocked := d.UserBlocked("u1"); blocked {
		t.Fatal("u1 still blocked")
	}
	if d.UnblockUser("u1") {
		t.Error("second UnblockUser(u1) = true, want false")
	}
}

// TestBounded: a flood of distinct sources and ids keeps the state within
// its caps.
func TestBounded(t *testing.T) {
	t.Parallel()
	const maxSources = 100
	d, r, _ := newDetector(detect.WithMaxSources(maxSources), detect.WithBlock(time.Hour))
	for i := range 10000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		user := fmt.Sprint("u", i)
		d.Refused(user, "note", fmt.Sprint(i))
		d.Refused("one", "note", fmt.Sprint(i)) // one user, many ids
		d.LoginFailed(fmt.Sprint(i, "@example.com"), ip)
		d.InvalidCredential(ip)
		d.RefreshReused(user, ip)
	}
	if got, limit := d.Sources(), 6*maxSources; got > limit {
		t.Errorf("Sources() = %d, want at most %d", got, limit)
	}
	if got := r.count(detect.KindEnumeration, false); got != 1 {
		t.Errorf("enumeration events = %d, want 1 (the one user)", got)
	}
}

// TestEventBudget: a flood of sources, each reported once, reports at
// most the budget in a minute for the trail; the rest are suppressed, then
// summed up in one event.
func TestEventBudget(t *testing.T) {
	t.Parallel()
	d, r, c := newDetector(detect.WithMaxEvents(10))
	for i := range 25 {
		d.RefreshReused(fmt.Sprint("u", i), other)
	}
	written, suppressed := 0, 0
	for _, e := range r.events {
		if e.Suppressed {
			suppressed++
		} else {
			written++
		}
	}
	if written != 10 || suppressed != 15 {
		t.Fatalf("written %d, suppressed %d; want 10, 15", written, suppressed)
	}
	c.t = c.t.Add(time.Minute)
	d.RefreshReused("next", other)
	last := r.events[len(r.events)-2:]
	if last[0].Kind != "" || last[0].Count != 15 || last[0].Suppressed {
		t.Errorf("summary = %+v, want Count 15", last[0])
	}
	if last[1].UserID != "next" || last[1].Suppressed {
		t.Errorf("event after the summary = %+v, want next's, not suppressed", last[1])
	}
}
