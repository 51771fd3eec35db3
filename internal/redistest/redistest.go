// Package redistest gives tests a Redis: the shared one at Addr, under a
// key prefix of the test's own (Client, Prefix), or a redis-server of the
// test's own that it may stop, kill and restart (Start).
//
// Without Redis, a test is skipped with a message saying how to start it,
// or fails when CI=true (Unavailable): CI must not pass by skipping.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/redis/go-redis/v9"
)

// Addr is where the shared test Redis listens.
const Addr = "127.0.0.1:6379"

// URL is Addr as a -redis URL.
const URL = "redis://" + Addr + "/0"

// start is how to start a Redis for the tests, for the messages.
const start = `redis-server --port 6379 --save "" --appendonly no`

// Unavailable skips the test because what it needs is missing, or fails
// it when the environment says CI=true.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: failing instead of skipping)")
	}
	t.Skip(msg)
}

// Client returns a client of the Redis at Addr with the limiter's
// recommended options (redislimiter.ClientOptions), closed when the test
// ends. Without that Redis, see Unavailable.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redislimiter.ClientOptions(URL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	if err := ping(c, 0); err != nil {
		Unavailable(t, "no Redis at %s (%v): start one with `%s`", Addr, err, start)
	}
	return c
}

// ping pings c until it answers or d has passed (once for 0).
func ping(c *redis.Client, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Prefix returns a key prefix no other test uses. When the test ends,
// every key under it is deleted (SCAN and DEL).
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "guardtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if n, err := DeletePrefix(ctx, c, prefix); err != nil {
			t.Errorf("delete the test's keys (%s*, %d deleted): %v", prefix, n, err)
		}
	})
	return prefix
}

// Keys returns the keys under prefix.
func Keys(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// DeletePrefix deletes every key under prefix and returns how many.
func DeletePrefix(ctx context.Context, c redis.UniversalClient, prefix string) (int, error) {
	keys, err := Keys(ctx, c, prefix)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	return len(keys), c.Del(ctx, keys...).Err()
}

// Server is a redis-server of a test's own, on a loopback port, without
// persistence: a restart starts empty.
type Server struct {
	// Addr is host:port; URL is it as a redis:// URL.
	Addr, URL string
	t         testing.TB
	port      int
	mu        sync.Mutex
	cmd       *exec.Cmd
}

// Start starts a redis-server on a free port until the test ends. Without
// redis-server in PATH, see Unavailable.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server is not installed (apt-get install redis-server): this test starts and kills one of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{t: t, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.URL = "redis://" + s.Addr + "/0"
	t.Cleanup(s.Kill)
	s.Restart()
	return s
}

// Restart starts a new, empty redis-server on the same port, once the
// old one is killed, and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart while the server runs; Kill it first")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", //nolint:gosec // a port number and constants
		"--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer func() { _ = c.Close() }()
	if err := ping(c, 10*time.Second); err != nil {
		s.t.Fatalf("redis-server on %s does not answer: %v", s.Addr, err)
	}
}

// Kill kills the server (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Freeze stops the server (SIGSTOP): the kernel still accepts
// connections, and nothing answers them, as with a hung or partitioned
// Redis. Thaw continues it (SIGCONT).
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw continues a frozen server.
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatal("redistest: the server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}
