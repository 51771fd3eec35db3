package invalidation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// recorder is a Handler that records what it is given.
type recorder struct {
	mu      sync.Mutex
	events  []invalidation.Event
	resyncs int
}

func (r *recorder) Apply(_ context.Context, e invalidation.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Resync(context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resyncs++
}

func (r *recorder) state() ([]invalidation.Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]invalidation.Event(nil), r.events...), r.resyncs
}

// waitFor polls cond every 10 ms for at most 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run runs bus into h until the test ends, and waits for its first
// subscription.
func run(t *testing.T, bus *invalidation.Redis, h *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bus.Run(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "first subscription", func() bool { _, n := h.state(); return n >= 1 })
}

// TestDelivery: a replica's events reach the others, not itself; a
// message that does not parse (a newer version's) makes receivers resync.
func TestDelivery(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	channel := redistest.Prefix(t, client) + "inv"
	a, b := invalidation.NewRedis(client, channel), invalidation.NewRedis(client, channel)
	ha, hb := &recorder{}, &recorder{}
	run(t, a, ha)
	run(t, b, hb)
	ctx := context.Background()
	for _, e := range []invalidation.Event{{Kind: invalidation.User, UserID: "u1"}, {Kind: invalidation.Keys}, {Kind: invalidation.Note, NoteID: "n1"}} {
		if err := a.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "B receives the three events", func() bool { ev, _ := hb.state(); return len(ev) == 3 })
	if ev, _ := hb.state(); ev[0] != (invalidation.Event{Kind: invalidation.User, UserID: "u1"}) || ev[1] != (invalidation.Event{Kind: invalidation.Keys}) ||
		ev[2] != (invalidation.Event{Kind: invalidation.Note, NoteID: "n1"}) {
		t.Errorf("B got %+v", ev)
	}
	for _, garbage := range []string{"x|z|", "no separators", "x|u|", "x|k|u1", "x|n|"} {
		if err := client.Publish(ctx, channel, garbage).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "B resyncs on each unknown message", func() bool { _, n := hb.state(); return n == 6 })
	// A receives the garbage on its own subscription, in its own time.
	waitFor(t, "A resyncs on each unknown message", func() bool { _, n := ha.state(); return n >= 6 })
	// A's own events came back to it and were skipped: it saw only the
	// garbage.
	if ev, n := ha.state(); len(ev) != 0 || n != 6 {
		t.Errorf("A applied %+v and resynced %d times, want nothing and 6", ev, n)
	}
}

// TestOutage: with its redis-server killed, a bus logs one outage and
// publishes without asking Redis (ErrUnavailable at once: no request
// waits on it); once a new one listens, it subscribes again and resyncs,
// since it may have missed events, and logs the end of the outage.
func TestOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.URL)
	sent := &commands{}
	client.AddHook(sent)
	var logs syncBuffer
	bus := invalidation.NewRedis(client, "guard:invalidate", invalidation.WithInterval(100*time.Millisecond),
		invalidation.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	h := &recorder{}
	run(t, bus, h)
	srv.Kill()
	waitFor(t, "the outage is noticed", func() bool { return bus.Outages() == 1 })
	before := sent.n.Load()
	for range 10 {
		if err := bus.Publish(context.Background(), invalidation.Event{Kind: invalidation.Keys}); !errors.Is(err, invalidation.ErrUnavailable) {
			t.Fatalf("Publish() with Redis dead = %v, want ErrUnavailable", err)
		}
	}
	if n := publishes(sent, before); n != 0 {
		t.Errorf("%d publications sent to the dead Redis, want none", n)
	}
	srv.Restart()
	waitFor(t, "resync after the new subscription", func() bool { _, n := h.state(); return n == 2 })
	waitFor(t, "the end of the outage is logged", func() bool {
		return strings.Contains(logs.String(), "redis invalidation channel answers again")
	})
	if n := strings.Count(logs.String(), "redis invalidation channel unavailable"); n != 1 || bus.Outages() != 1 {
		t.Errorf("outage logged %d times, Outages() = %d, want 1 and 1:\n%s", n, bus.Outages(), logs.String())
	}
	if err := bus.Publish(context.Background(), invalidation.Event{Kind: invalidation.Keys}); err != nil {
		t.Errorf("Publish() with Redis back: %v", err)
	}
}

// TestFrozenRedis: a Redis that hangs (SIGSTOP) is noticed by the
// subscription's ping, without any publication, and publications then
// skip it; after it thaws, the bus subscribes again and resyncs.
func TestFrozenRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.URL)
	sent := &commands{}
	client.AddHook(sent)
	bus := invalidation.NewRedis(client, "guard:invalidate", invalidation.WithInterval(100*time.Millisecond),
		invalidation.WithLogger(slog.New(slog.DiscardHandler)))
	h := &recorder{}
	run(t, bus, h)
	srv.Freeze()
	waitFor(t, "the hang is noticed", func() bool { return bus.Outages() == 1 })
	before := sent.n.Load()
	if err := bus.Publish(context.Background(), invalidation.Event{Kind: invalidation.Keys}); !errors.Is(err, invalidation.ErrUnavailable) {
		t.Errorf("Publish() with Redis frozen = %v, want ErrUnavailable", err)
	}
	if n := publishes(sent, before); n != 0 {
		t.Errorf("%d publications sent to the frozen Redis, want none", n)
	}
	srv.Thaw()
	waitFor(t, "resync after the thaw", func() bool { _, n := h.state(); return n >= 2 })
}

// commands counts the PUBLISH commands a client sends.
type commands struct{ n atomic.Int64 }

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "publish" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func publishes(c *commands, since int64) int64 { return c.n.Load() - since }

func newClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opts, err := redislimiter.ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// syncBuffer is a log destination safe for the bus's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
