package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/lockout/redislockout"
	"github.com/connectguard/guard/store"
	"github.com/redis/go-redis/v9"
)

// shared is the state the replicas share through -redis, over one Redis
// client. Without -redis every field is nil: rate limits and lockouts
// stay in the process (guard.New's and newServices' defaults), and no
// change is announced.
type shared struct {
	client   *redis.Client
	limiter  ratelimit.Limiter
	lockouts lockout.Store
	bus      *invalidation.Redis
	close    func() // closes the client, after the server has shut down
}

// newShared connects the state of -redis. Redis down at start-up stops
// the server only when a failure mode is closed (-redis-on-failure,
// -redis-lockout-on-failure), which would refuse every rate-limited call
// or every login; otherwise each store falls back as it would in any
// outage, and finds Redis when it answers.
func newShared(ctx context.Context, cfg config.Config, log *slog.Logger) (shared, error) {
	if cfg.Redis == "" {
		if store.IsPostgres(cfg.DB) {
			log.Warn("the database is shared but -redis is not set: each replica counts rate limits and failed logins alone (N replicas grant N times the budgets and the password guesses); set -redis to share them")
		}
		return shared{close: func() {}}, nil
	}
	opts, err := redislimiter.ClientOptions(cfg.Redis)
	if err != nil {
		return shared{}, fmt.Errorf("-redis: %w", err)
	}
	var limits redislimiter.FailureMode
	if err := limits.UnmarshalText([]byte(cfg.RedisOnFailure)); err != nil {
		return shared{}, fmt.Errorf("-redis-on-failure: %w", err)
	}
	var lockouts redislockout.FailureMode
	if err := lockouts.UnmarshalText([]byte(cfg.RedisLockoutOnFailure)); err != nil {
		return shared{}, fmt.Errorf("-redis-lockout-on-failure: %w", err)
	}
	// go-redis logs each failed dial through one process-wide logger; the
	// stores log what matters (an outage's start and end), so those lines
	// go to Debug.
	redis.SetLogger(redisLog{log})
	client := redis.NewClient(opts)
	closeClient := func() {
		if err := client.Close(); err != nil {
			log.Warn("close redis client", "error", err)
		}
	}
	where := []any{"redis", opts.Addr, "redis_db", opts.DB}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err = client.Ping(pctx).Err()
	cancel()
	switch {
	case err == nil:
		log.Info("rate limits kept in redis, shared by every replica", append(where, "redis_prefix", cfg.RedisPrefix, "on_failure", limits.String())...)
		log.Info("lockouts kept in redis and changes announced on its channel, shared by every replica",
			append(where, "redis_lockout_prefix", cfg.RedisLockoutPrefix, "lockout_on_failure", lockouts.String(), "redis_channel", cfg.RedisChannel)...)
	case limits == redislimiter.FailClosed || lockouts == redislockout.FailClosed:
		closeClient()
		return shared{}, fmt.Errorf("redis at %s does not answer (%w), and -redis-on-failure=closed or -redis-lockout-on-failure=closed would refuse every rate-limited call or login: start Redis, or choose local", opts.Addr, err)
	default:
		log.Warn("redis does not answer at start-up: rate limits and lockouts are decided as -redis-on-failure and -redis-lockout-on-failure say until it does, and changes reach other replicas within a second",
			append(where, "error", err)...)
	}
	return shared{
		client: client,
		limiter: redislimiter.New(client, redislimiter.WithPrefix(cfg.RedisPrefix),
			redislimiter.WithOnFailure(limits), redislimiter.WithLogger(log)),
		lockouts: redislockout.New(client, lockoutPolicies(cfg), redislockout.WithPrefix(cfg.RedisLockoutPrefix),
			redislockout.WithOnFailure(lockouts), redislockout.WithLogger(log)),
		bus:   invalidation.NewRedis(client, cfg.RedisChannel, invalidation.WithLogger(log)),
		close: closeClient,
	}, nil
}

// lockoutPolicies are the lockout policies of cfg.
func lockoutPolicies(cfg config.Config) lockout.Policies {
	policy := func(failures int) lockout.Policy {
		return lockout.Policy{MaxFailures: failures, Window: cfg.LockoutWindow, Lockout: cfg.LockoutDuration, MaxLockout: cfg.LockoutMax}
	}
	return lockout.Policies{
		AccountIP: policy(cfg.LockoutFailures),
		Account:   policy(cfg.AccountLockoutFailures),
		IP:        policy(cfg.IPLockoutFailures),
	}
}

// redisLog sends go-redis's own log lines to Debug.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
