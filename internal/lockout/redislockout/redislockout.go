// Package redislockout keeps login lockouts in Redis, so that every
// replica of the server counts the same failures: a lockout.Store with
// the rules of lockout.Memory (lockouttest holds both to them). Without
// it, N replicas would grant N times every threshold.
//
// # Keys
//
// An account is one Redis hash, "<prefix>a|<hex SHA-256 of the normalised
// email>" (no email is stored): field "a" holds the account-wide entry,
// "p:<network>" the account from one client network (an IPv4 address, an
// IPv6 /64, as clientip.Network groups them). A client network is a
// string, "<prefix>n|<network>". Unlock deletes the account's hash, which
// lifts every lockout of the account at once and leaves the networks'.
// Each key expires by itself once nothing in it matters any more (no
// failure in the window, no lockout, no trust, escalation decayed), and a
// hash drops its dead network entries as it grows, so Redis holds only
// live state. With Redis Cluster, put a hash tag in the prefix
// ("{guard-lo}:"): an operation's two keys must share a slot.
//
// Every operation (Check, Failure, Success) is one Lua script call
// (EVALSHA): one round trip, applied atomically, so concurrent failures
// on several replicas are each counted. Times are the replica's clock in
// whole milliseconds (WithClock): keep the replicas' clocks in sync
// (NTP), as a replica whose clock runs s ahead ends lockouts s early.
//
// # When Redis fails
//
// The client's tight timeouts and a breaker (internal/breaker: after a
// failure, Redis is left alone for a second and probed in the
// background) keep a dead Redis from holding logins up. What a replica
// does meanwhile is a setting (WithOnFailure):
//
//   - FailLocal, the default, decides with a lockout.Memory of the
//     replica's own, which also counts every operation while Redis
//     answers, so a replica's recent failures still count the moment Redis
//     fails. Every threshold then holds per replica: with N replicas up
//     to N times looser during the outage, never lifted. When Redis
//     answers again it decides alone again: failures counted only locally
//     during the outage do not reach it.
//   - FailClosed refuses: Check returns an error wrapping ErrUnavailable,
//     so no login is attempted that Redis could not check.
//
// There is no mode that admits every attempt: it would let an attacker
// guess passwords freely during an outage he may have caused. Unlock
// fails with ErrUnavailable in either mode while Redis is down (an
// unlock that Redis never saw would not hold), after lifting the local
// lockouts.
package redislockout

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/internal/breaker"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is wrapped by the errors returned while Redis does not
// answer.
var ErrUnavailable = errors.New("redislockout: redis unavailable")

//go:embed lockout.lua
var lockoutLua string

var script = redis.NewScript(lockoutLua)

// margin is added to every key's time to live, for the skew between the
// replicas' clocks.
const margin = time.Second

// Store is a lockout.Store in Redis.
type Store struct {
	client  redis.UniversalClient
	cfg     config
	local   *lockout.Memory // FailLocal: the replica's own store
	breaker *breaker.Breaker
	// policy is the script's ARGV[4..17]: the three policies, the trust
	// and the margin, in milliseconds.
	policy []any
}

var _ lockout.Store = (*Store)(nil)

// New returns a Store applying p in Redis through client, which it does
// not close. Give client tight timeouts (redislimiter.ClientOptions).
func New(client redis.UniversalClient, p lockout.Policies, opts ...Option) *Store {
	cfg := config{prefix: "guard:lockout:", now: time.Now, log: slog.Default(), probeInterval: time.Second}
	for _, o := range opts {
		o.apply(&cfg)
	}
	s := &Store{client: client, cfg: cfg}
	for _, q := range []lockout.Policy{p.AccountIP, p.Account, p.IP} {
		if !q.Enabled() {
			s.policy = append(s.policy, 0, 0, 0, 0)
			continue
		}
		s.policy = append(s.policy, q.MaxFailures, ms(q.Window), ms(q.Lockout), ms(max(q.MaxLockout, q.Lockout)))
	}
	s.policy = append(s.policy, ms(lockout.TrustFor), ms(margin))
	if cfg.mode == FailLocal {
		s.local = lockout.NewMemory(p, lockout.WithClock(cfg.now))
	}
	s.breaker = breaker.New("redis lockout store", cfg.mode.consequence(), func(ctx context.Context) error {
		return client.Ping(ctx).Err()
	}, cfg.probeInterval, cfg.log)
	return s
}

// ms is d in whole milliseconds, rounded up.
func ms(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Failures returns how many operations Redis did not carry out since New:
// each call to Redis that failed, and each operation done without it
// while it was down.
func (s *Store) Failures() uint64 { return s.breaker.Failures() }

// Outages returns how many outages began since New.
func (s *Store) Outages() uint64 { return s.breaker.Outages() }

// Check implements lockout.Store.
func (s *Store) Check(ctx context.Context, account string, ip netip.Addr) (bool, time.Duration, error) {
	wait, err := s.run(ctx, "check", account, ip)
	if err != nil {
		if s.local == nil {
			return false, 0, err
		}
		return s.local.Check(ctx, account, ip)
	}
	ok, retryAfter := lockout.RetryAfter(time.Duration(wait) * time.Millisecond)
	return ok, retryAfter, nil
}

// Failure implements lockout.Store.
func (s *Store) Failure(ctx context.Context, account string, ip netip.Addr) error {
	if s.local != nil {
		_ = s.local.Failure(ctx, account, ip)
	}
	_, err := s.run(ctx, "fail", account, ip)
	if s.local != nil {
		return nil // counted locally: the replica's rules hold
	}
	return err
}

// Success implements lockout.Store.
func (s *Store) Success(ctx context.Context, account string, ip netip.Addr) error {
	if s.local != nil {
		_ = s.local.Success(ctx, account, ip)
	}
	_, err := s.run(ctx, "success", account, ip)
	if s.local != nil {
		return nil
	}
	return err
}

// Unlock implements lockout.Store. It fails while Redis is down, in every
// mode: an unlock Redis did not see would not hold.
func (s *Store) Unlock(ctx context.Context, account string) error {
	if s.local != nil {
		_ = s.local.Unlock(ctx, account)
	}
	if !s.breaker.Up() {
		return ErrUnavailable
	}
	if err := s.client.Del(ctx, s.accountKey(account)).Err(); err != nil {
		if ctx.Err() == nil {
			s.breaker.Failed(err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// run is one operation in Redis: the script over the attempt's account
// and network. Its error wraps ErrUnavailable.
func (s *Store) run(ctx context.Context, op, account string, ip netip.Addr) (int64, error) {
	if !s.breaker.Up() {
		return 0, ErrUnavailable
	}
	net := clientip.Network(ip).String()
	args := append([]any{op, strconv.FormatInt(s.cfg.now().UnixMilli(), 10), net}, s.policy...)
	n, err := script.Run(ctx, s.client, []string{s.accountKey(account), s.cfg.prefix + "n|" + net}, args...).Int64()
	if err != nil {
		if ctx.Err() == nil {
			s.breaker.Failed(err)
		}
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return n, nil
}

// accountKey names account's hash by the SHA-256 of its normalised form,
// as lockout.Memory keys it.
func (s *Store) accountKey(account string) string {
	sum := sha256.Sum256([]byte(lockout.NormalizeAccount(account)))
	return s.cfg.prefix + "a|" + hex.EncodeToString(sum[:])
}
