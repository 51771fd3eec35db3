package redislimiter_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/ratelimittest"
	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// TestConformance holds the limiter, deciding in the Redis at
// redistest.Addr, to the conformance suite (the 100 concurrent callers
// for one last call included). It fails closed, so that a Redis error
// fails the test instead of being decided locally.
//
// Its client may wait 5 s for a pooled connection, not 100 ms: 100
// callers at once on a pool of 20, under the race detector on a loaded
// machine, may wait longer than 100 ms, which fails closed. The timeouts
// are TestOutage's and TestFrozenRedis's.
func TestConformance(t *testing.T) {
	t.Parallel()
	redistest.Client(t) // or skip
	opts, err := redislimiter.ClientOptions(redistest.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolTimeout = 5 * time.Second
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ratelimittest.Run(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		l := redislimiter.New(client, redislimiter.WithPrefix(redistest.Prefix(t, client)),
			redislimiter.WithClock(now), redislimiter.WithOnFailure(redislimiter.FailClosed))
		t.Cleanup(func() {
			if n := l.Failures(); n != 0 {
				t.Errorf("Failures() = %d, want 0: Redis failed during the test", n)
			}
		})
		return l
	})
}

// TestMatchesMemory: the limiter in Redis decides as ratelimit.Memory
// does, field by field.
func TestMatchesMemory(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	ratelimittest.MatchesMemory(t, func(t *testing.T, now func() time.Time) ratelimit.Limiter {
		return redislimiter.New(client, redislimiter.WithPrefix(redistest.Prefix(t, client)), redislimiter.WithClock(now),
			redislimiter.WithOnFailure(redislimiter.FailClosed))
	}, 2000, 3)
}

// TestKeys: a key is a hash of bucket counters named by bucket index,
// under the prefix, with the window in its name; it expires by itself a
// window, a bucket and a margin after its last call; fields that left the
// window are dropped.
func TestKeys(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t)
	prefix := redistest.Prefix(t, client)
	clock := ratelimittest.NewClock(t0)
	l := redislimiter.New(client, redislimiter.WithPrefix(prefix), redislimiter.WithClock(clock.Now),
		redislimiter.WithOnFailure(redislimiter.FailClosed))
	ctx := context.Background()
	q := ratelimit.Quota{Name: "ip", Key: "ip|203.0.113.7", Limit: 100, Window: time.Minute}
	key := prefix + "ip|203.0.113.7@1m0s"
	first := ratelimit.BucketIndex(time.Minute, clock.Now())
	for range 3 {
		allow(t, l, q)
	}
	clock.Advance(6 * time.Second) // the next bucket
	allow(t, l, q)
	got, err := client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{strconv.FormatInt(first, 10): "3", strconv.FormatInt(first+1, 10): "1"}
	if len(got) != len(want) || got[strconv.FormatInt(first, 10)] != "3" || got[strconv.FormatInt(first+1, 10)] != "1" {
		t.Errorf("HGETALL %s = %v, want %v", key, got, want)
	}
	ttl, err := client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Minute + 6*time.Second + time.Second; ttl <= want-5*time.Second || ttl > want {
		t.Errorf("PTTL %s = %v, want about %v (a window, a bucket, a margin)", key, ttl, want)
	}
	clock.Advance(time.Minute) // the first bucket leaves the window
	allow(t, l, q)
	got, err = client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[strconv.FormatInt(first, 10)]; ok || len(got) != 2 {
		t.Errorf("HGETALL %s = %v after a window, want the first bucket dropped", key, got)
	}
}

// TestWindowTooShort: a window under a millisecond is refused, not
// decided with bucket indices Lua cannot hold exactly.
func TestWindowTooShort(t *testing.T) {
	t.Parallel()
	l := redislimiter.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	if _, err := l.Allow(context.Background(), ratelimit.Quota{Name: "q", Key: "k", Limit: 1, Window: time.Microsecond}); err == nil {
		t.Error("Allow(1µs window) error = nil, want an error")
	}
}

// TestOutage starts a redis-server of its own, decides through it, kills
// it, and checks for each failure mode: local keeps counting (the calls
// Redis admitted included) and refusing, open admits, closed errors; no
// decision takes more than 200 ms while Redis is dead; the outage is
// logged once and counted; and when a new redis-server listens on the
// same port, the limiter decides in Redis again. With local, the calls
// admitted during the outage still count after it, though the new Redis
// never saw them.
func TestOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range []redislimiter.FailureMode{redislimiter.FailLocal, redislimiter.FailOpen, redislimiter.FailClosed} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			client := newClient(t, srv.URL)
			var logs syncBuffer
			clock := ratelimittest.NewClock(t0)
			l := redislimiter.New(client, redislimiter.WithOnFailure(mode), redislimiter.WithClock(clock.Now),
				redislimiter.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
				redislimiter.WithProbeInterval(100*time.Millisecond))
			ctx := context.Background()
			q := ratelimit.Quota{Name: "user", Key: "u|alice", Limit: 5, Window: time.Minute}
			for i := range 3 {
				if !allow(t, l, q).Allowed {
					t.Fatalf("call %d refused with Redis up", i+1)
				}
			}
			if n := client.Exists(ctx, "guard:rl:u|alice@1m0s").Val(); n != 1 {
				t.Fatal("the calls were not counted in Redis")
			}

			srv.Kill()
			admitted, failed, slowest := 0, 0, time.Duration(0)
			for range 10 {
				start := time.Now()
				d, err := l.Allow(ctx, q)
				slowest = max(slowest, time.Since(start))
				switch {
				case err != nil && errors.Is(err, redislimiter.ErrUnavailable):
					failed++
				case err != nil:
					t.Fatalf("Allow() error = %v, want one wrapping ErrUnavailable or none", err)
				case d.Allowed:
					admitted++
				}
			}
			t.Logf("Redis dead: %d admitted, %d errors of 10; slowest decision %v", admitted, failed, slowest)
			want := map[redislimiter.FailureMode][2]int{
				redislimiter.FailLocal:  {2, 0}, // 3 counted in Redis, and locally too
				redislimiter.FailOpen:   {10, 0},
				redislimiter.FailClosed: {0, 10},
			}[mode]
			if admitted != want[0] || failed != want[1] {
				t.Errorf("%d admitted and %d errors of 10, want %d and %d", admitted, failed, want[0], want[1])
			}
			if slowest > 200*time.Millisecond {
				t.Errorf("slowest decision with Redis dead took %v, want at most 200ms", slowest)
			}
			if got := l.Outages(); got != 1 {
				t.Errorf("Outages() = %d, want 1", got)
			}
			if got := l.Failures(); got != 10 {
				t.Errorf("Failures() = %d, want 10", got)
			}
			if n := strings.Count(logs.String(), "redis rate-limit store unavailable"); n != 1 {
				t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
			}

			srv.Restart()
			fresh := ratelimit.Quota{Name: "user", Key: "u|bob", Limit: 1000, Window: time.Minute}
			waitForRedis(t, l, client, fresh, "guard:rl:u|bob@1m0s")
			if n := strings.Count(logs.String(), "redis rate-limit store answers again"); n != 1 {
				t.Errorf("the end of the outage was logged %d times, want once:\n%s", n, logs.String())
			}
			failures := l.Failures()
			allow(t, l, fresh)
			if got := l.Failures(); got != failures {
				t.Errorf("Failures() went from %d to %d with Redis back", failures, got)
			}
			if got := l.Outages(); got != 1 {
				t.Errorf("Outages() = %d after Redis came back, want 1", got)
			}
			if mode != redislimiter.FailLocal {
				return
			}
			// alice spent her 5 (3 in the old Redis, 2 locally); the new
			// Redis is empty, and she is still refused until her calls
			// leave the window.
			if allow(t, l, q).Allowed {
				t.Error("alice admitted after the outage: the calls admitted during it were forgotten")
			}
			clock.Advance(time.Minute + 7*time.Second)
			if !allow(t, l, q).Allowed {
				t.Error("alice refused a window after her calls")
			}
			if n := client.Exists(ctx, "guard:rl:u|alice@1m0s").Val(); n != 1 {
				t.Error("alice's call was not counted in the new Redis")
			}
		})
	}
}

// TestFrozenRedis: a Redis that accepts connections and never answers
// (SIGSTOP: hung, or cut off) costs a decision one read timeout at most,
// and only the first ones: the rest are decided locally at once, and a
// background probe finds Redis again when it thaws.
func TestFrozenRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.URL)
	var logs syncBuffer
	l := redislimiter.New(client, redislimiter.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		redislimiter.WithProbeInterval(100*time.Millisecond))
	q := ratelimit.Quota{Name: "ip", Key: "ip|198.51.100.7", Limit: 1000, Window: time.Minute}
	allow(t, l, q)
	srv.Freeze()
	var slowest, rest time.Duration
	for i := range 20 {
		start := time.Now()
		if !allow(t, l, q).Allowed {
			t.Fatal("refused within the budget while Redis was frozen")
		}
		took := time.Since(start)
		slowest = max(slowest, took)
		if i > 0 {
			rest = max(rest, took)
		}
	}
	t.Logf("Redis frozen: slowest decision %v (the first, which met the timeout); slowest after it %v", slowest, rest)
	if slowest > 200*time.Millisecond {
		t.Errorf("slowest decision with Redis frozen took %v, want at most 200ms", slowest)
	}
	if l.Failures() != 20 || l.Outages() != 1 {
		t.Errorf("Failures() = %d, Outages() = %d, want 20 and 1", l.Failures(), l.Outages())
	}
	srv.Thaw()
	waitForRedis(t, l, client, ratelimit.Quota{Name: "ip", Key: "ip|198.51.100.8", Limit: 1000, Window: time.Minute}, "guard:rl:ip|198.51.100.8@1m0s")
	if n := strings.Count(logs.String(), "redis rate-limit store unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestPoolTimeoutIsNoOutage: a decision that finds no free connection in
// time (a burst wider than the pool) is decided locally and counted as a
// failure, but declares no outage: Redis answers, and the next decision
// uses it.
func TestPoolTimeoutIsNoOutage(t *testing.T) {
	t.Parallel()
	redistest.Client(t) // or skip
	opts, err := redislimiter.ClientOptions(redistest.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.PoolSize = 1
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	prefix := redistest.Prefix(t, client)
	var logs syncBuffer
	l := redislimiter.New(client, redislimiter.WithPrefix(prefix), redislimiter.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	q := ratelimit.Quota{Name: "ip", Key: "ip|192.0.2.1", Limit: 10, Window: time.Minute}
	allow(t, l, q)

	held := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		// The pool's one connection, held by Redis for a second.
		close(held)
		done <- client.BLPop(context.Background(), time.Second, prefix+"nothing").Err()
	}()
	<-held
	time.Sleep(50 * time.Millisecond)
	if !allow(t, l, q).Allowed {
		t.Fatal("refused within the budget")
	}
	if err := <-done; !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP: %v, want redis.Nil after its timeout", err)
	}
	if l.Failures() != 1 || l.Outages() != 0 {
		t.Errorf("Failures() = %d, Outages() = %d, want 1 and 0", l.Failures(), l.Outages())
	}
	allow(t, l, q)
	// The calls may fall in two buckets (6 s each): count them all.
	if got := client.HGetAll(context.Background(), prefix+"ip|192.0.2.1@1m0s").Val(); sumValues(t, got) != 2 {
		t.Errorf("the key in Redis holds %v, want the two calls Redis decided", got)
	}
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing", logs.String())
	}
}

// sumValues is the calls counted in a key's buckets.
func sumValues(t *testing.T, buckets map[string]string) int {
	t.Helper()
	n := 0
	for _, v := range buckets {
		c, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("bucket count %q: %v", v, err)
		}
		n += c
	}
	return n
}

// TestClientOptions: the recommended timeouts, unless the URL sets its
// own; and an unparsable URL's error does not show its password.
func TestClientOptions(t *testing.T) {
	t.Parallel()
	o, err := redislimiter.ClientOptions("redis://:pw@127.0.0.1:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addr != "127.0.0.1:6380" || o.DB != 2 || o.Password != "pw" {
		t.Errorf("Addr, DB, Password = %q, %d, %q, want 127.0.0.1:6380, 2, pw", o.Addr, o.DB, o.Password)
	}
	if o.DialTimeout != 100*time.Millisecond || o.ReadTimeout != 100*time.Millisecond || o.WriteTimeout != 100*time.Millisecond ||
		o.PoolTimeout != 100*time.Millisecond || o.MaxRetries != -1 || o.DialerRetries != 1 || !o.ContextTimeoutEnabled {
		t.Errorf("options %+v, want 100ms timeouts, MaxRetries -1, DialerRetries 1, ContextTimeoutEnabled", o)
	}
	o, err = redislimiter.ClientOptions("redis://127.0.0.1/0?read_timeout=250ms&max_retries=2")
	if err != nil {
		t.Fatal(err)
	}
	if o.ReadTimeout != 250*time.Millisecond || o.MaxRetries != 2 || o.DialTimeout != 100*time.Millisecond {
		t.Errorf("ReadTimeout, MaxRetries, DialTimeout = %v, %d, %v, want the URL's 250ms and 2, and 100ms", o.ReadTimeout, o.MaxRetries, o.DialTimeout)
	}
	for _, bad := range []string{"redis://u:s3cretpw@host:63%zz/0", "http://u:s3cretpw@host/0", "redis://u:s3cretpw@host/x"} {
		_, err := redislimiter.ClientOptions(bad)
		if err == nil {
			t.Errorf("ClientOptions(%q) error = nil, want an error", bad)
		} else if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("ClientOptions(%q) error = %q, shows the password", bad, err)
		}
	}
}

func TestFailureModeText(t *testing.T) {
	t.Parallel()
	for _, m := range []redislimiter.FailureMode{redislimiter.FailLocal, redislimiter.FailOpen, redislimiter.FailClosed} {
		var got redislimiter.FailureMode
		if err := got.UnmarshalText([]byte(m.String())); err != nil || got != m {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v", m, got, err, m)
		}
	}
	var m redislimiter.FailureMode
	if err := m.UnmarshalText([]byte("ignore")); err == nil {
		t.Error(`UnmarshalText("ignore") error = nil, want an error`)
	}
}

// BenchmarkAllow measures a decision in Redis (one round trip to
// redistest.Addr: EVALSHA of the script) beside ratelimit.Memory in the
// same run, on keys cycling through 10,000, with one quota and with four,
// serial and parallel; ping is the bare round trip.
func BenchmarkAllow(b *testing.B) {
	const keys = 10_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "ip|198.51." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	ctx := context.Background()
	quota := func(i int) ratelimit.Quota {
		return ratelimit.Quota{Name: "ip", Key: names[i%keys], Limit: 1 << 30, Window: time.Minute}
	}
	four := func(i int) []ratelimit.Quota {
		return []ratelimit.Quota{
			{Name: "user", Key: "u|" + names[i%keys], Limit: 1 << 30, Window: time.Minute},
			{Name: "method-user", Key: "m|u|" + names[i%keys], Limit: 1 << 30, Window: time.Minute},
			{Name: "method-ip", Key: "m|i|" + names[i%keys], Limit: 1 << 30, Window: time.Minute},
			{Name: "ip", Key: names[i%keys], Limit: 1 << 30, Window: time.Minute},
		}
	}
	run := func(b *testing.B, l ratelimit.Limiter, quotas func(int) []ratelimit.Quota) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := l.Allow(ctx, quotas(i)...); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	parallel := func(b *testing.B, l ratelimit.Limiter) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := l.Allow(ctx, quota(i)); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	}
	one := func(i int) []ratelimit.Quota { return []ratelimit.Quota{quota(i)} }
	newRedis := func(b *testing.B) (*redislimiter.Limiter, *redis.Client) {
		client := redistest.Client(b)
		return redislimiter.New(client, redislimiter.WithPrefix(redistest.Prefix(b, client)),
			redislimiter.WithOnFailure(redislimiter.FailClosed)), client
	}
	b.Run("memory", func(b *testing.B) { run(b, ratelimit.NewMemory(), one) })
	b.Run("redis", func(b *testing.B) {
		l, _ := newRedis(b)
		run(b, l, one)
	})
	b.Run("memory_4_quotas", func(b *testing.B) { run(b, ratelimit.NewMemory(), four) })
	b.Run("redis_4_quotas", func(b *testing.B) {
		l, _ := newRedis(b)
		run(b, l, four)
	})
	b.Run("memory_parallel", func(b *testing.B) { parallel(b, ratelimit.NewMemory()) })
	b.Run("redis_parallel", func(b *testing.B) {
		l, _ := newRedis(b)
		parallel(b, l)
	})
	b.Run("ping", func(b *testing.B) {
		_, client := newRedis(b)
		b.ReportAllocs()
		for b.Loop() {
			if err := client.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func allow(t testing.TB, l ratelimit.Limiter, quotas ...ratelimit.Quota) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), quotas...)
	if err != nil {
		t.Fatalf("Allow() error = %v", err)
	}
	return d
}

// newClient is a client of url with the recommended options, closed when
// the test ends.
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

// waitForRedis decides q until the decision lands in Redis (key appears),
// for at most 10 s.
func waitForRedis(t *testing.T, l *redislimiter.Limiter, client *redis.Client, q ratelimit.Quota, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for client.Exists(context.Background(), key).Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the limiter did not use Redis again within 10 s of its return (Failures() = %d)", l.Failures())
		}
		_, _ = l.Allow(context.Background(), q)
		time.Sleep(20 * time.Millisecond)
	}
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
