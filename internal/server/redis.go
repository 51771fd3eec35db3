package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/ratelimit/redislimiter"
	"github.com/connectguard/guard/internal/config"
	"github.com/redis/go-redis/v9"
)

// newLimiter returns the rate-limit store of -redis, shared by every
// replica, and the function that closes its client; nil without -redis
// (guard.New then keeps the limits in memory). Redis down at start-up
// stops the server only with -redis-on-failure=closed, which would refuse
// every rate-limited call; otherwise the limiter falls back as it would
// in any outage, and finds Redis when it answers.
func newLimiter(ctx context.Context, cfg config.Config, log *slog.Logger) (ratelimit.Limiter, func(), error) {
	if cfg.Redis == "" {
		return nil, func() {}, nil
	}
	opts, err := redislimiter.ClientOptions(cfg.Redis)
	if err != nil {
		return nil, nil, fmt.Errorf("-redis: %w", err)
	}
	var mode redislimiter.FailureMode
	if err := mode.UnmarshalText([]byte(cfg.RedisOnFailure)); err != nil {
		return nil, nil, fmt.Errorf("-redis-on-failure: %w", err)
	}
	// go-redis logs each failed dial through one process-wide logger; the
	// limiter logs what matters (an outage's start and end), so those
	// lines go to Debug.
	redis.SetLogger(redisLog{log})
	client := redis.NewClient(opts)
	closeClient := func() {
		if err := client.Close(); err != nil {
			log.Warn("close redis client", "error", err)
		}
	}
	where := []any{"redis", opts.Addr, "redis_db", opts.DB, "redis_prefix", cfg.RedisPrefix, "on_failure", mode.String()}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	err = client.Ping(pctx).Err()
	cancel()
	switch {
	case err == nil:
		log.Info("rate limits kept in redis, shared by every replica", where...)
	case mode == redislimiter.FailClosed:
		closeClient()
		return nil, nil, fmt.Errorf("redis at %s does not answer (%w), and -redis-on-failure=closed would refuse every rate-limited call: start Redis, or choose -redis-on-failure=local", opts.Addr, err)
	default:
		log.Warn("redis does not answer at start-up: rate limits are decided as -redis-on-failure says until it does",
			append(where, "error", err)...)
	}
	l := redislimiter.New(client, redislimiter.WithPrefix(cfg.RedisPrefix),
		redislimiter.WithOnFailure(mode), redislimiter.WithLogger(log))
	return l, closeClient, nil
}

// redisLog sends go-redis's own log lines to Debug.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
