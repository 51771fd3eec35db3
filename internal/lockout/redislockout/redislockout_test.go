package redislockout_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/lockout/lockouttest"
	"github.com/connectguard/guard/internal/lockout/redislockout"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var (
	t0       = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	policy   = lockout.Policy{MaxFailures: 3, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	policies = lockout.Policies{AccountIP: policy, Account: lockout.Policy{MaxFailures: 50, Window: 15 * time.Minute, Lockout: 15 * time.Minute, MaxLockout: 24 * time.Hour}}
	ip       = netip.MustParseAddr("203.0.113.7")
	ctx      = context.Background()
)

// TestConformance holds the store, in the Redis at redistest.Addr, to the
// rules lockout.Memory follows. It fails closed, so that a Redis error
// fails the test instead of being decided locally.
func TestConformance(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	lockouttest.Run(t, func(t *testing.T, p lockout.Policies, now func() time.Time) lockout.Store {
		s := redislockout.New(client, p, redislockout.WithPrefix(redistest.Prefix(t, client)),
			redislockout.WithClock(now), redislockout.WithOnFailure(redislockout.FailClosed))
		t.Cleanup(func() {
			if n := s.Failures(); n != 0 {
				t.Errorf("Failures() = %d, want 0: Redis failed during the test", n)
			}
		})
		return s
	})
}

// TestKeys: the account is one hash named by the SHA-256 of the
// normalised email, which appears nowhere in Redis; its keys expire by
// themselves; Unlock deletes the account's hash and leaves the network's
// key.
func TestKeys(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	prefix := redistest.Prefix(t, client)
	clock := lockouttest.NewClock(t0)
	p := policies
	p.IP = policy
	s := redislockout.New(client, p, redislockout.WithPrefix(prefix), redislockout.WithClock(clock.Now),
		redislockout.WithOnFailure(redislockout.FailClosed))
	for range 3 {
		if err := s.Failure(ctx, " Alice@Example.com", ip); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte("alice@example.com"))
	account := prefix + "a|" + hex.EncodeToString(sum[:])
	network := prefix + "n|203.0.113.7"
	keys, err := redistest.Keys(ctx, client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !contains(keys, account) || !contains(keys, network) {
		t.Fatalf("keys %q, want %s and %s", keys, account, network)
	}
	for _, k := range keys {
		dump := fmt.Sprint(client.HGetAll(ctx, k).Val(), client.Get(ctx, k).Val())
		if strings.Contains(strings.ToLower(k+dump), "alice") {
			t.Errorf("key %s (%s) shows the email", k, dump)
		}
		// Locked for a minute, the escalation kept for an hour after it:
		// about an hour and a minute, and a second's margin.
		if ttl := client.PTTL(ctx, k).Val(); ttl <= time.Hour || ttl > time.Hour+time.Minute+time.Second {
			t.Errorf("PTTL %s = %v, want about 1h1m", k, ttl)
		}
	}
	if ok, _, _ := s.Check(ctx, "alice@example.com", ip); ok {
		t.Fatal("not locked after 3 failures")
	}
	if err := s.Unlock(ctx, "ALICE@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := client.Exists(ctx, account).Val(); n != 0 {
		t.Error("Unlock left the account's hash")
	}
	if n := client.Exists(ctx, network).Val(); n != 1 {
		t.Error("Unlock deleted the network's key")
	}
}

// TestPrune: failures at one account from many networks do not pile up
// in its hash: once their entries are dead, the hash drops them as it
// grows.
func TestPrune(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	prefix := redistest.Prefix(t, client)
	clock := lockouttest.NewClock(t0)
	s := redislockout.New(client, lockout.Policies{AccountIP: policy}, redislockout.WithPrefix(prefix),
		redislockout.WithClock(clock.Now), redislockout.WithOnFailure(redislockout.FailClosed))
	for i := range 1000 {
		if err := s.Failure(ctx, "alice@example.com", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute) // each network's one failure leaves the window in 15
	}
	sum := sha256.Sum256([]byte("alice@example.com"))
	n := client.HLen(ctx, prefix+"a|"+hex.EncodeToString(sum[:])).Val()
	if n > 64 {
		t.Errorf("HLEN = %d after 1000 networks of which 15 are live, want at most 64", n)
	}
}

// TestOutage starts a redis-server of its own, counts failures through
// it, kills it, and checks for each mode: local keeps counting (the
// failures Redis counted included) and locks, closed refuses; after the
// first failure no operation sends Redis anything (none can wait on it);
// the outage is logged once and counted; Unlock reports that it could
// not reach Redis; and once a new redis-server listens, the store uses
// Redis again.
func TestOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range []redislockout.FailureMode{redislockout.FailLocal, redislockout.FailClosed} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			client := newClient(t, srv.URL)
			sent := &commands{}
			client.AddHook(sent)
			var logs syncBuffer
			s := redislockout.New(client, policies, redislockout.WithOnFailure(mode),
				redislockout.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
				redislockout.WithProbeInterval(100*time.Millisecond))
			for range 2 {
				if err := s.Failure(ctx, "alice@example.com", ip); err != nil {
					t.Fatal(err)
				}
			}
			srv.Kill()
			okBefore, _, errBefore := s.Check(ctx, "alice@example.com", ip) // meets the failure
			sentBefore := sent.n.Load()
			errFail := s.Failure(ctx, "alice@example.com", ip)
			okAfter, retry, errAfter := s.Check(ctx, "alice@example.com", ip)
			t.Logf("Redis dead: before the third failure %v, %v; after it %v, %v, %v", okBefore, errBefore, okAfter, retry, errAfter)
			switch mode {
			case redislockout.FailLocal:
				// Two failures counted in Redis and locally, the third
				// locally: locked.
				if !okBefore || errBefore != nil || errFail != nil || okAfter || retry != time.Minute || errAfter != nil {
					t.Errorf("local: want allowed, then locked for 1m, no errors")
				}
			case redislockout.FailClosed:
				if okBefore || !errors.Is(errBefore, redislockout.ErrUnavailable) || !errors.Is(errFail, redislockout.ErrUnavailable) ||
					okAfter || !errors.Is(errAfter, redislockout.ErrUnavailable) {
					t.Errorf("closed: want every operation refused with ErrUnavailable")
				}
			}
			if err := s.Unlock(ctx, "alice@example.com"); !errors.Is(err, redislockout.ErrUnavailable) {
				t.Errorf("Unlock() with Redis dead = %v, want ErrUnavailable", err)
			}
			if n := sent.n.Load() - sentBefore; n != 0 {
				t.Errorf("%d commands sent to the dead Redis after its failure, want none", n)
			}
			if s.Outages() != 1 || s.Failures() < 4 {
				t.Errorf("Outages() = %d, Failures() = %d, want 1 and at least 4", s.Outages(), s.Failures())
			}
			if n := strings.Count(logs.String(), "redis lockout store unavailable"); n != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
			}

			srv.Restart()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_ = s.Failure(ctx, "bob@example.com", ip)
				keys, _ := redistest.Keys(ctx, client, "guard:lockout:a|")
				if len(keys) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the store did not use Redis again within 10 s of its return (Failures() = %d)", s.Failures())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := strings.Count(logs.String(), "redis lockout store answers again"); n != 1 {
				t.Errorf("the end of the outage was logged %d times, want once:\n%s", n, logs.String())
			}
			if s.Outages() != 1 {
				t.Errorf("Outages() = %d after Redis came back, want 1", s.Outages())
			}
		})
	}
}

// TestFrozenRedis: a Redis that accepts connections and never answers
// (SIGSTOP) costs the first operation one read timeout (the client's),
// and the rest nothing: they send it no command and are decided locally.
func TestFrozenRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.URL)
	sent := &commands{}
	client.AddHook(sent)
	s := redislockout.New(client, policies, redislockout.WithLogger(slog.New(slog.DiscardHandler)),
		redislockout.WithProbeInterval(100*time.Millisecond))
	if err := s.Failure(ctx, "alice@example.com", ip); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	t.Cleanup(srv.Thaw)
	start := time.Now()
	_ = s.Failure(ctx, "alice@example.com", ip) // meets the timeout
	t.Logf("the operation that met the frozen Redis took %v", time.Since(start))
	sentBefore := sent.n.Load()
	for range 3 {
		_ = s.Failure(ctx, "alice@example.com", ip)
	}
	ok, retry, err := s.Check(ctx, "alice@example.com", ip)
	if ok || retry != time.Minute || err != nil {
		t.Errorf("Check() with Redis frozen = %v, %v, %v, want locked for 1m by the local count", ok, retry, err)
	}
	if n := sent.n.Load() - sentBefore; n != 0 {
		t.Errorf("%d commands sent to the frozen Redis after its timeout, want none", n)
	}
	if s.Outages() != 1 {
		t.Errorf("Outages() = %d, want 1", s.Outages())
	}
}

// BenchmarkCheck measures a Check in Redis (one round trip) beside
// lockout.Memory's.
func BenchmarkCheck(b *testing.B) {
	client := redistest.Client(b)
	for _, bb := range []struct {
		name  string
		store lockout.Store
	}{
		{"memory", lockout.NewMemory(policies)},
		{"redis", redislockout.New(client, policies, redislockout.WithPrefix(redistest.Prefix(b, client)),
			redislockout.WithOnFailure(redislockout.FailClosed))},
	} {
		b.Run(bb.name, func(b *testing.B) {
			_ = bb.store.Failure(ctx, "alice@example.com", ip)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := bb.store.Check(ctx, "alice@example.com", ip); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// commands counts the commands a client sends, pings (the breaker's
// probes) aside.
type commands struct{ n atomic.Int64 }

func (c *commands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "ping" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

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

// syncBuffer is a log destination safe for the probe's goroutine.
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
