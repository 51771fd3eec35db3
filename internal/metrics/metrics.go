// Package metrics exposes Guard's security metrics to Prometheus: it
// implements guard.Observer and auth.Observer, and collects the Go
// runtime, the process, the active sessions and the verified-token cache,
// all into a registry of its own (never the global one).
//
// Every label value comes from a closed set fixed at New: procedures of
// the policy table (anything else is "unknown"), connect's protocols and
// codes, and Guard's own constants. No caller can create a series.
// Counters are resolved once per label set and kept, so a call costs a
// few atomic adds and no allocation.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/authz"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/internal/detect"
	"github.com/connectguard/guard/service/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Unknown is the label value of anything outside a closed set.
const Unknown = "unknown"

// Protocols are the protocol label's values, Unknown aside.
var Protocols = []string{connect.ProtocolConnect, connect.ProtocolGRPC, connect.ProtocolGRPCWeb, guard.ProtocolREST}

// numCodes covers "ok" (0) and connect's codes 1..16.
const numCodes = 17

// codeName is the code label's value of a code below numCodes.
func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// Metrics is the server's metrics. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	calls     *prometheus.CounterVec
	durations *prometheus.HistogramVec
	authns    *prometheus.CounterVec
	denials   *prometheus.CounterVec
	limited   *prometheus.CounterVec
	lockouts  prometheus.Counter
	started   prometheus.Counter
	reuse     prometheus.Counter
	suspect   *prometheus.CounterVec

	procs   map[string]*procedure
	unknown *procedure
	// authnBy[method][result], limitedBy[kind]: resolved at New (small sets).
	authnBy   [authn.MethodSessionCookie + 1][len(authResults)]prometheus.Counter
	passwords map[string]prometheus.Counter
	limitedBy map[string]prometheus.Counter
	suspectBy map[detect.Kind]prometheus.Counter
}

// procedure holds one procedure's series, each made on first use: only
// label sets that happened are exported, and each is resolved once.
type procedure struct {
	name      string
	calls     [len(protocolIndex) + 1][numCodes]atomic.Pointer[prometheus.Counter]
	durations [len(protocolIndex) + 1]atomic.Pointer[prometheus.Observer]
	denials   [len(reasons) + 1]atomic.Pointer[prometheus.Counter]
}

// protocolIndex numbers Protocols; len(protocolIndex) is Unknown.
var protocolIndex = [4]string{connect.ProtocolConnect, connect.ProtocolGRPC, connect.ProtocolGRPCWeb, guard.ProtocolREST}

// reasons are the denial reasons; len(reasons) is Unknown.
var reasons = [3]string{authz.ReasonRole, authz.ReasonScope, ownership.ReasonOwnership}

// Buckets are the call duration histogram's upper bounds, in seconds:
// from a cached GetNote (tens of microseconds) to a slow login (argon2).
var Buckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// New returns the metrics of a server serving procedures (the policy
// table's, such as "/guard.notes.v1.NoteService/GetNote").
func New(procedures []string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_calls_total",
			Help: "RPC calls answered, by procedure, protocol and the code the caller received (refusals in the HTTP layer included).",
		}, []string{"procedure", "protocol", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "guard_call_duration_seconds",
			Help:    "Time spent in the interceptor chain and the handler, by procedure and protocol.",
			Buckets: Buckets,
		}, []string{"procedure", "protocol"}),
		authns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_authentications_total",
			Help: "Credentials checked, by method (token, api_key, cookie, password) and result (ok, invalid, expired, error, locked_out).",
		}, []string{"method", "result"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_authorization_denials_total",
			Help: "Calls refused by authorization, by procedure and reason (role, scope, ownership).",
		}, []string{"procedure", "reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_rate_limit_refusals_total",
			Help: "Requests refused by a rate limit, by the kind of budget that was full (ip, user, method).",
		}, []string{"kind"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "guard_login_lockout_refusals_total",
			Help: "Logins refused because the account, network or both were locked out after failed logins.",
		}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "guard_lockouts_started_total",
			Help: "Failed password checks after which the account, the network or both were locked out.",
		}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "guard_refresh_token_reuse_total",
			Help: "Spent refresh tokens presented again; each revoked its session.",
		}),
		suspect: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guard_suspicious_activity_total",
			Help: "Suspicious activity detected (internal/detect), by kind; each also an audit event.",
		}, []string{"kind"}),
		procs:     make(map[string]*procedure, len(procedures)),
		unknown:   &procedure{name: Unknown},
		passwords: make(map[string]prometheus.Counter),
		limitedBy: make(map[string]prometheus.Counter),
		suspectBy: make(map[detect.Kind]prometheus.Counter),
	}
	for _, p := range procedures {
		m.procs[p] = &procedure{name: p}
	}
	methods := map[authn.Method]string{authn.MethodAccessToken: "token", authn.MethodAPIKey: "api_key", authn.MethodSessionCookie: "cookie"}
	for method, name := range methods {
		for i, r := range authResults {
			m.authnBy[method][i] = m.authns.WithLabelValues(name, r)
		}
	}
	for _, r := range []string{auth.LoginOK, auth.LoginInvalid, auth.LoginLockedOut} {
		m.passwords[r] = m.authns.WithLabelValues("password", r)
	}
	for _, k := range []string{guard.RateLimitIP, guard.RateLimitUser, guard.RateLimitMethod} {
		m.limitedBy[k] = m.limited.WithLabelValues(k)
	}
	for _, k := range detect.Kinds() {
		m.suspectBy[k] = m.suspect.WithLabelValues(string(k))
	}
	reg.MustRegister(m.calls, m.durations, m.authns, m.denials, m.limited, m.lockouts, m.started, m.reuse, m.suspect,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry the metrics are in, for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError, // a failed collector does not hide the others
		Registry:          m.reg,                    // promhttp's own counts
		EnableOpenMetrics: true,
	})
}

var (
	_ guard.Observer = (*Metrics)(nil)
	_ auth.Observer  = (*Metrics)(nil)
)

func (m *Metrics) procedure(name string) *procedure {
	if p, ok := m.procs[name]; ok {
		return p
	}
	return m.unknown
}

func protocolOf(protocol string) int {
	for i, p := range protocolIndex {
		if p == protocol {
			return i
		}
	}
	return len(protocolIndex)
}

func protocolName(i int) string {
	if i < len(protocolIndex) {
		return protocolIndex[i]
	}
	return Unknown
}

// ObserveCall implements guard.Observer.
func (m *Metrics) ObserveCall(procedure, protocol string, code connect.Code, elapsed time.Duration) {
	p, pi := m.procedure(procedure), protocolOf(protocol)
	if code >= numCodes {
		code = connect.CodeUnknown
	}
	c := p.calls[pi][code].Load()
	if c == nil {
		v := m.calls.WithLabelValues(p.name, protocolName(pi), codeName(code))
		c = &v
		p.calls[pi][code].Store(c)
	}
	(*c).Inc()
	h := p.durations[pi].Load()
	if h == nil {
		v := m.durations.WithLabelValues(p.name, protocolName(pi))
		h = &v
		p.durations[pi].Store(h)
	}
	(*h).Observe(elapsed.Seconds())
}

// authResults are the results of guard.Observer.ObserveAuthentication.
var authResults = [...]string{guard.AuthOK, guard.AuthInvalid, guard.AuthExpired, guard.AuthError}

// ObserveAuthentication implements guard.Observer.
func (m *Metrics) ObserveAuthentication(method authn.Method, result string) {
	if method <= 0 || int(method) >= len(m.authnBy) {
		return
	}
	for i, r := range authResults {
		if r == result {
			m.authnBy[method][i].Inc()
			return
		}
	}
}

// ObserveDenial implements guard.Observer.
func (m *Metrics) ObserveDenial(procedure, reason string) {
	p, ri := m.procedure(procedure), len(reasons)
	for i, r := range reasons {
		if r == reason {
			ri = i
		}
	}
	c := p.denials[ri].Load()
	if c == nil {
		name := Unknown
		if ri < len(reasons) {
			name = reasons[ri]
		}
		v := m.denials.WithLabelValues(p.name, name)
		c = &v
		p.denials[ri].Store(c)
	}
	(*c).Inc()
}

// ObserveRateLimited implements guard.Observer.
func (m *Metrics) ObserveRateLimited(kind string) {
	if c, ok := m.limitedBy[kind]; ok {
		c.Inc()
	}
}

// ObserveLogin implements auth.Observer.
func (m *Metrics) ObserveLogin(result string) {
	if c, ok := m.passwords[result]; ok {
		c.Inc()
	}
	if result == auth.LoginLockedOut {
		m.lockouts.Inc()
	}
}

// ObserveLockoutStarted implements auth.Observer.
func (m *Metrics) ObserveLockoutStarted() { m.started.Inc() }

// ObserveRefreshReuse implements auth.Observer.
func (m *Metrics) ObserveRefreshReuse() { m.reuse.Inc() }

// ObserveSuspicious counts a detection of kind; a kind outside
// detect.Kinds is not counted, so that no caller can create a series.
func (m *Metrics) ObserveSuspicious(kind detect.Kind) {
	if c, ok := m.suspectBy[kind]; ok {
		c.Inc()
	}
}

// CacheStats reports a cache's lookups that found an entry and those that
// did not (token.Service.CacheStats).
type CacheStats func() (hits, misses uint64)

// AddTokenCache exports the verified-token cache's hits and misses, read
// at each scrape.
func (m *Metrics) AddTokenCache(stats CacheStats) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "guard_token_cache_hits_total",
			Help: "Access tokens answered from the verified-token cache (no signature check).",
		}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "guard_token_cache_misses_total",
			Help: "Access tokens not in the verified-token cache: new ones, and bad ones (never cached).",
		}, func() float64 { _, ms := stats(); return float64(ms) }),
	)
}

// SessionCounter counts the sessions in use at now
// (store.DB.CountActiveSessions).
type SessionCounter func(ctx context.Context, now time.Time) (int, error)

// sessionsMaxAge is how long a count of sessions is served before the
// database is asked again: scrapes from several Prometheus servers, or a
// caller hammering the metrics port, cost one query per interval.
const sessionsMaxAge = 10 * time.Second

// AddSessions exports guard_active_sessions: the sessions neither revoked
// nor expired, counted in the database at scrape time, at most every 10
// seconds. It is the database's count, so it is the same on every replica.
func (m *Metrics) AddSessions(count SessionCounter, log *slog.Logger) {
	m.reg.MustRegister(&sessions{
		count: count, log: log,
		desc: prometheus.NewDesc("guard_active_sessions",
			"Sessions neither revoked nor past their absolute expiry, in the database (counted at most every 10 s).", nil, nil),
	})
}

// sessions is the collector of guard_active_sessions.
type sessions struct {
	count SessionCounter
	log   *slog.Logger
	desc  *prometheus.Desc

	mu   sync.Mutex
	n    int
	at   time.Time // of n; zero before the first count
	fail bool      // the last count failed
}

func (s *sessions) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

func (s *sessions) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.at.IsZero() || now.Sub(s.at) >= sessionsMaxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := s.count(ctx, now)
		cancel()
		s.at, s.fail = now, err != nil
		if err != nil {
			s.log.Warn("metrics: count active sessions", "error", err)
		} else {
			s.n = n
		}
	}
	if s.fail {
		return // no value rather than a stale one
	}
	ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(s.n))
}
