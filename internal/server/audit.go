package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/store"
)

// Bounds on rate-limit rows: a flood of refusals must not become a flood
// of rows (each one also a hash-chain append).
const (
	// rateLimitInterval is the interval in which each source writes at
	// most one row after its first.
	rateLimitInterval = time.Minute
	// rateLimitSources is how many sources an interval counts apart;
	// refusals of further sources are counted together, in one row.
	rateLimitSources = 1000
)

// auditStore records the audit interceptor's events in the database. It
// writes every event at once, except rate-limit hits: in each interval
// the first hit of a source (the user, or the client's network when
// unauthenticated) is written at once, and the rest of that source's hits
// become one row with their count when the interval ends. Sources beyond
// rateLimitSources in one interval share one row. So a flood writes at
// most 2*rateLimitSources+1 rows a minute, however fast it is refused.
type auditStore struct {
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*pendingHits // per source, hits not yet written
	other   *pendingHits            // hits of sources beyond the bound
	running bool                    // a flush is scheduled
	closed  bool
}

// pendingHits are the rate-limit hits of one source not yet written.
type pendingHits struct {
	count int64
	last  audit.Event
}

func newAuditStore(db *store.DB, log *slog.Logger) *auditStore {
	return &auditStore{db: db, log: log, pending: make(map[string]*pendingHits)}
}

// RecordAudit implements audit.Recorder.
func (a *auditStore) RecordAudit(ctx context.Context, e audit.Event) error {
	if e.Type == audit.TypeRateLimitHit && !a.count(e) {
		return nil
	}
	return a.db.RecordAuditEvent(ctx, store.AuditEvent{
		Type: string(e.Type), Time: e.Time, ActorID: e.ActorID, Procedure: e.Procedure, Code: e.Code,
		ClientIP: e.ClientIP, RequestID: e.RequestID,
	})
}

// count counts a rate-limit hit, and reports whether it is its source's
// first in the interval, to be written at once.
func (a *auditStore) count(e audit.Event) bool {
	source := "user " + e.ActorID
	if e.ActorID == "" {
		source = "ip " + e.ClientIP
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return true
	}
	if !a.running {
		a.running = true
		time.AfterFunc(rateLimitInterval, a.flush)
	}
	if p, ok := a.pending[source]; ok {
		p.count++
		p.last = e
		return false
	}
	if len(a.pending) >= rateLimitSources {
		if a.other == nil {
			a.other = &pendingHits{}
		}
		a.other.count++
		a.other.last = e
		return false
	}
	a.pending[source] = &pendingHits{}
	return true
}

// flush writes one row per source with hits not yet written.
func (a *auditStore) flush() {
	a.mu.Lock()
	pending, other := a.pending, a.other
	a.pending, a.other, a.running = make(map[string]*pendingHits), nil, false
	a.mu.Unlock()
	write := func(p *pendingHits, detail string) {
		e := p.last
		err := a.db.RecordAuditEvent(context.Background(), store.AuditEvent{
			Type: string(audit.TypeRateLimitHit), Time: e.Time, ActorID: e.ActorID, Procedure: e.Procedure,
			Code: e.Code, ClientIP: e.ClientIP, RequestID: e.RequestID, Count: p.count, Detail: detail,
		})
		if err != nil {
			a.log.Error("audit record lost", "type", audit.TypeRateLimitHit, "count", p.count, "error", err)
		}
	}
	for _, p := range pending {
		if p.count > 0 {
			write(p, fmt.Sprintf("%d more refusals of this source within %s, the last one shown", p.count, rateLimitInterval))
		}
	}
	if other != nil {
		write(other, fmt.Sprintf("%d refusals of other sources (more than %d refused) within %s, the last one shown",
			other.count, rateLimitSources, rateLimitInterval))
	}
}

// Close writes the hits not yet written; later hits are written one by
// one.
func (a *auditStore) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.flush()
}

// pruneAudit deletes the audit events older than retention, at once and
// then every hour, until ctx is done. The chain stays verifiable: the
// oldest kept row is anchored (store.PruneAudit).
func pruneAudit(ctx context.Context, db *store.DB, retention time.Duration, log *slog.Logger) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		n, err := db.PruneAudit(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune audit trail", "error", err)
		case n > 0:
			log.Info("pruned audit trail", "deleted", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
