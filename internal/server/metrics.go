package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/metrics"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
)

// newMetrics returns the server's metrics when -metrics-addr is set, nil
// otherwise (the chain then has no step for them): the security layer's
// (guard.WithObserver), logins and refresh reuse (auth.WithObserver), the
// verified-token cache of tokens and the active sessions in db.
func newMetrics(cfg config.Config, db *store.DB, tokens *token.Service, log *slog.Logger) (*metrics.Metrics, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	table, err := PolicyTable()
	if err != nil {
		return nil, err
	}
	var procedures []string
	for _, r := range table.Rules() {
		procedures = append(procedures, r.Procedure)
	}
	m := metrics.New(procedures)
	m.AddTokenCache(tokens.CacheStats)
	m.AddSessions(db.CountActiveSessions, log)
	return m, nil
}

// serveMetrics serves m on /metrics on ln until ctx is done: a listener
// of its own, never the API's, so that nothing of it is reachable through
// the API's address, and -metrics-addr is loopback unless forced.
func serveMetrics(ctx context.Context, ln net.Listener, m *metrics.Metrics, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	servePrivate(ctx, ln, mux, "metrics listener", log)
}
