package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/pgtest"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// benchEnv is one server's handlers, bare and secured, over one database.
type benchEnv struct {
	bare, full http.Handler
	// redisCalls counts the commands sent to Redis (with -redis).
	redisCalls atomic.Int64
	// authnHit and authnMiss have only the authn interceptor: with the
	// verified-token cache, and without it (a full Ed25519 verify per call).
	authnHit, authnMiss http.Handler
	token               string
	body                []byte
	// cfg, services and deps mount more variants of full (remount).
	cfg      config.Config
	services []service
	deps     deps
}

// newBenchEnv builds the handlers with the budgets lifted out of the way;
// args are more flags.
func newBenchEnv(b testing.TB, args ...string) *benchEnv {
	return newBenchEnvLimits(b, true, args...)
}

// newBenchEnvLimits is newBenchEnv; with sharedLimits false, the rate
// limits stay in memory whatever -redis says, so that what remains in
// Redis is the shared security state alone.
func newBenchEnvLimits(b testing.TB, sharedLimits bool, args ...string) *benchEnv {
	b.Helper()
	e := &benchEnv{}
	ctx := context.Background()
	args = append([]string{"-ip-rate-limit=1000000000", "-user-rate-limit=1000000000",
		"-db=" + filepath.Join(b.TempDir(), "bench.db"),
		"-metrics-addr=127.0.0.1:0"}, args...) // metrics on (nothing listens here); -metrics-addr= turns them off
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	hasher := password.NewHasher(password.WithParams(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	log := slog.New(slog.DiscardHandler)
	sh, err := newShared(ctx, cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sh.close)
	if sh.client != nil {
		sh.client.AddHook(countCalls{&e.redisCalls})
	}
	if !sharedLimits {
		sh.limiter = nil
	}
	services, deps, err := newServices(ctx, cfg, db, hasher, log, sh)
	if err != nil {
		b.Fatal(err)
	}
	full, err := mount(cfg, services, deps)
	if err != nil {
		b.Fatal(err)
	}
	authnOnly := func(v *auth.Service) http.Handler {
		descs := make([]protoreflect.ServiceDescriptor, len(services))
		for i, s := range services {
			descs[i] = s.desc
		}
		table, err := policy.NewTable(descs)
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		for _, s := range services {
			mux.Handle(s.mount(connect.WithInterceptors(authn.NewInterceptor(table, v))))
		}
		return mux
	}
	keys, err := auth.LoadKeys(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	uncached := auth.New(db, hasher, token.New(keys, cfg.Issuer, cfg.Audience, token.WithCacheSize(0)), keys,
		lockout.NewMemory(lockout.Policies{}), log)
	hash, err := hasher.Hash(ctx, "bench password 1")
	if err != nil {
		b.Fatal(err)
	}
	u, err := db.CreateUser(ctx, "bench@example.com", hash, []string{"member"})
	if err != nil {
		b.Fatal(err)
	}
	n, err := db.CreateNote(ctx, u.ID, "bench", "a note read by the benchmark")
	if err != nil {
		b.Fatal(err)
	}
	login, err := proto.Marshal(&authv1.LoginRequest{Email: u.Email, Password: "bench password 1"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/guard.auth.v1.AuthService/Login", bytes.NewReader(login))
	req.Header.Set("Content-Type", "application/proto")
	rec := httptest.NewRecorder()
	full.ServeHTTP(rec, req)
	var res authv1.LoginResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
		b.Fatalf("login: HTTP %d, %v", rec.Code, err)
	}
	tok := res.GetAccessToken()
	body, err := proto.Marshal(&notesv1.GetNoteRequest{Id: n.ID})
	if err != nil {
		b.Fatal(err)
	}
	e.bare, e.full, e.token, e.body = bare(services), full, tok, body
	e.cfg, e.services, e.deps = cfg, services, deps
	e.authnHit, e.authnMiss = authnOnly(deps.auth), authnOnly(uncached)
	return e
}

// countCalls is a go-redis hook that counts the commands sent.
type countCalls struct{ n *atomic.Int64 }

func (c countCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c countCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

func (c countCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestSharedStateCostsNoRoundTrip: with -redis, a GetNote with a cached
// token costs exactly its two rate-limit decisions in Redis (the per-IP
// one and the user's); the shared lockouts and invalidations add none to
// a request that changes no state. With the rate limits in memory, it
// costs none at all.
func TestSharedStateCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	prefix := redistest.Prefix(t, redistest.Client(t))
	flags := []string{"-redis=" + redistest.URL, "-redis-prefix=" + prefix + "rl:", "-redis-lockout-prefix=" + prefix + "lo:",
		"-redis-channel=" + prefix + "inv", "-redis-on-failure=closed", "-redis-lockout-on-failure=closed"}
	for _, tt := range []struct {
		name         string
		sharedLimits bool
		perCall      int64
	}{{"limits_and_state_in_redis", true, 2}, {"state_in_redis", false, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newBenchEnvLimits(t, tt.sharedLimits, flags...)
			e.call(t, e.full) // loads the scripts and caches the token's state
			before := e.redisCalls.Load()
			for range 10 {
				e.call(t, e.full)
			}
			if got := e.redisCalls.Load() - before; got != 10*tt.perCall {
				t.Errorf("10 GetNote calls sent %d commands to Redis, want %d", got, 10*tt.perCall)
			}
		})
	}
}

// call sends GetNote over Connect (binary) to h in-process.
func (e *benchEnv) call(b testing.TB, h http.Handler) {
	req := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/GetNote", bytes.NewReader(e.body))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("got HTTP %d %s, want 200", rec.Code, rec.Body)
	}
}

// BenchmarkGetNote measures one call through the bare handler and through
// the full chain (HTTP layer, authn with a cached token, authz, validation,
// ownership lookup), separately for exact allocs/op.
func BenchmarkGetNote(b *testing.B) {
	e := newBenchEnv(b)
	for _, tt := range []struct {
		name string
		h    http.Handler
	}{{"bare", e.bare}, {"full", e.full}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.call(b, tt.h)
			}
		})
	}
}

// BenchmarkGetNoteRatio reports the median time ratio full/bare over
// paired blocks (see pairedRatio), and the commands sent to Redis per
// call: with everything in memory; if the test Redis answers, with the
// shared security state (lockouts, invalidations) alone in Redis, which
// costs a call with a cached token nothing; and with the rate limits in
// Redis too (two decisions per call: the per-IP one in the HTTP layer,
// the user's in the chain).
func BenchmarkGetNoteRatio(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		e := newBenchEnv(b)
		e.pairedRatio(b, e.full, "full/bare")
	})
	b.Run("metrics_vs_none", func(b *testing.B) {
		on, off := newBenchEnv(b), newBenchEnv(b, "-metrics-addr=")
		pairedRatio(b, "metrics/none", func() { off.call(b, off.full) }, func() { on.call(b, on.full) })
	})
	redisFlags := func(b *testing.B) []string {
		prefix := redistest.Prefix(b, redistest.Client(b))
		return []string{"-redis=" + redistest.URL, "-redis-prefix=" + prefix + "rl:", "-redis-lockout-prefix=" + prefix + "lo:",
			"-redis-channel=" + prefix + "inv", "-redis-on-failure=closed", "-redis-lockout-on-failure=closed"}
	}
	b.Run("redis_state", func(b *testing.B) {
		e := newBenchEnvLimits(b, false, redisFlags(b)...)
		e.pairedRatio(b, e.full, "full/bare")
	})
	b.Run("redis_state_and_limits", func(b *testing.B) {
		e := newBenchEnv(b, redisFlags(b)...)
		e.pairedRatio(b, e.full, "full/bare")
	})
}

// BenchmarkGetNoteEngines reports what PostgreSQL costs against SQLite,
// in-process: GetNote over the full chain with each database (one note
// read a call; the credential state is cached), as the median ratio over
// paired blocks, and the full chain against the bare handler on
// PostgreSQL. It needs the test PostgreSQL (see package pgtest).
func BenchmarkGetNoteEngines(b *testing.B) {
	sqlite := newBenchEnv(b)
	pg := newBenchEnv(b, "-db="+pgtest.URL(b))
	b.Run("postgres_vs_sqlite", func(b *testing.B) {
		pairedRatio(b, "postgres/sqlite", func() { sqlite.call(b, sqlite.full) }, func() { pg.call(b, pg.full) })
	})
	b.Run("postgres_full_vs_bare", func(b *testing.B) { pg.pairedRatio(b, pg.full, "full/bare") })
}

// BenchmarkAuthnRatio reports what authentication alone adds to the bare
// handler: with a repeated token (verified-token cache and session state
// cache warm) and with every token verified afresh.
func BenchmarkAuthnRatio(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("cache_hit", func(b *testing.B) { e.pairedRatio(b, e.authnHit, "authn/bare") })
	b.Run("cache_miss", func(b *testing.B) { e.pairedRatio(b, e.authnMiss, "authn/bare") })
}

// pairedRatio runs the bare handler and h alternately in blocks of 64
// calls and reports the median of the per-pair time ratios h/bare, and the
// commands sent to Redis per call.
func (e *benchEnv) pairedRatio(b *testing.B, h http.Handler, unit string) {
	calls := e.redisCalls.Load()
	n := pairedRatio(b, unit, func() { e.call(b, e.bare) }, func() { e.call(b, h) })
	b.ReportMetric(float64(e.redisCalls.Load()-calls)/float64(n), "redis-calls/call")
}

// pairedRatio runs base and f alternately in blocks of 64 calls and
// reports the median of the per-pair time ratios f/base: on shared, noisy
// machines only paired ratios are stable. It returns how many times it
// called f.
func pairedRatio(b *testing.B, unit string, base, f func()) int {
	const block = 64
	var ratios []float64
	for b.Loop() {
		start := time.Now()
		for range block {
			base()
		}
		took := time.Since(start)
		start = time.Now()
		for range block {
			f()
		}
		ratios = append(ratios, float64(time.Since(start))/float64(took))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], unit)
	b.ReportMetric(0, "ns/op") // a loop iteration is 128 calls; the ratio is the result
	return len(ratios) * block
}

// BenchmarkRESTRatio reports what the REST gateway adds: GetNote as
// GET /v1/notes/{id} (transcoded into a Connect call) against the same
// call in Connect's JSON, both through the full chain, paired blocks.
func BenchmarkRESTRatio(b *testing.B) {
	e := newBenchEnv(b)
	var req notesv1.GetNoteRequest
	if err := proto.Unmarshal(e.body, &req); err != nil {
		b.Fatal(err)
	}
	jsonBody := []byte(`{"id":"` + req.GetId() + `"}`)
	call := func(method, path, contentType string, body []byte) {
		r := httptest.NewRequest(method, path, bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Header.Set("Authorization", "Bearer "+e.token)
		rec := httptest.NewRecorder()
		e.full.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s %s: HTTP %d %s", method, path, rec.Code, rec.Body)
		}
	}
	pairedRatio(b, "rest/connect-json",
		func() { call(http.MethodPost, "/guard.notes.v1.NoteService/GetNote", "application/json", jsonBody) },
		func() { call(http.MethodGet, "/v1/notes/"+req.GetId(), "", nil) })
}
