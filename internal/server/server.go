// Package server wires Guard together: configuration, store, services, the
// interceptor chain and the HTTP layer, and runs it until told to stop.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/connectguard/guard"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/detect"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/loghandler"
	"github.com/connectguard/guard/internal/metrics"
	"github.com/connectguard/guard/internal/pagetoken"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/service/admin"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/service/notes"
	"github.com/connectguard/guard/store"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Roles and Scopes are the names the demo API's policies may use.
var (
	Roles  = []string{"admin", "member", "viewer"}
	Scopes = []string{"notes:read", "notes:write", "admin"}
)

// Run runs the server binary. args are its command-line arguments, getenv
// reads the environment. When args start with the name of a command (see
// commands), Run runs that command. Otherwise args are the flags, and Run
// serves until ctx is done, then shuts down gracefully; stdout receives the
// listening address and the one-time admin password, stderr the log.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...RunOption) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return runCommand(ctx, args[0], args[1:], getenv, stdout, stderr)
	}
	cfg, err := config.Parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		printCommands(stderr)
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := newLogger(cfg, stderr)
	tp, stopTracing, err := newTracing(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() { // last: flush the spans of the calls served
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Error("flush traces", "error", err)
		}
	}()
	sh, err := newShared(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sh.close() // after the server has shut down

	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close database", "error", err)
		}
	}()

	var ro runOptions
	for _, o := range opts {
		o(&ro)
	}
	hasher := ro.hasher
	if hasher == nil {
		hasher = password.NewHasher()
	}
	if err := bootstrapAdmin(ctx, db, hasher, cfg.AdminEmail, cfg.AdminPassword, stdout); err != nil {
		return err
	}
	services, deps, err := newServices(ctx, cfg, db, hasher, log, sh)
	if err != nil {
		return err
	}
	deps.tracer = tp
	// Keep the keys and credential caches in step with the other
	// replicas until the server has shut down (before the database and
	// Redis close).
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() { stopBG(); background.Wait() }()
	background.Go(func() { deps.auth.WatchKeys(bg) })
	defer deps.audit.Close() // after the server has shut down, before the database closes
	if cfg.AuditRetention > 0 {
		background.Go(func() { pruneAudit(bg, db, cfg.AuditRetention, log) })
	}
	if sh.bus != nil {
		background.Go(func() { sh.bus.Run(bg, invalidation.Handlers{deps.auth, deps.notes}) })
	}
	h, err := mount(cfg, services, deps)
	if err != nil {
		return err
	}
	if cfg.Bare {
		log.Error("-bare: serving with NO SECURITY (no authentication, authorization, validation or limits), for the load harness only")
		h = bare(services)
	}
	if deps.metrics != nil {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		log.Info("serving metrics", "addr", mln.Addr().String())
		background.Go(func() { serveMetrics(bg, mln, deps.metrics, log) })
	}
	if cfg.PprofAddr != "" {
		pln, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			return fmt.Errorf("-pprof-addr: %w", err)
		}
		log.Info("serving pprof and expvar", "addr", pln.Addr().String())
		background.Go(func() { servePprof(bg, pln, log) })
	}

	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("-tls-cert, -tls-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	scheme := "http"
	if tlsConfig != nil {
		protocols.SetHTTP2(true) // negotiated by ALPN
		scheme = "https"
	} else {
		protocols.SetUnencryptedHTTP2(true) // gRPC in cleartext (h2c)
	}
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: min(5*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.CleartextExposed() {
		log.Warn("serving cleartext HTTP beyond loopback: the proxies in -trusted-proxies must terminate TLS, and nothing else may reach this address",
			"addr", ln.Addr().String())
	}
	fmt.Fprintf(stdout, "guard listening on %s://%s\n", scheme, ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "tls", cfg.TLSCert != "", "db", cfg.DB)

	serveErr := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // ALPN offers h2 and http/1.1
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// service is one API to mount: its schema and its handler constructor.
type service struct {
	desc  protoreflect.ServiceDescriptor
	mount func(opts ...connect.HandlerOption) (string, http.Handler)
}

// api is one of the APIs the server serves: its schema, and how to make
// its handler from the service implementations.
type api struct {
	desc    protoreflect.ServiceDescriptor
	handler func(impl implementations, opts ...connect.HandlerOption) (string, http.Handler)
}

// implementations are the services behind the APIs.
type implementations struct {
	auth  *auth.Service
	notes *notes.Service
	admin *admin.Service
}

// apis is the one list of the APIs the server serves. Serving mounts them
// (newServices), and PolicyTable reads their policies without building
// them, so the documented policies are those of the served APIs.
func apis() []api {
	return []api{
		{authv1.File_guard_auth_v1_auth_proto.Services().ByName("AuthService"), func(impl implementations, o ...connect.HandlerOption) (string, http.Handler) {
			return authv1connect.NewAuthServiceHandler(impl.auth, o...)
		}},
		{notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService"), func(impl implementations, o ...connect.HandlerOption) (string, http.Handler) {
			return notesv1connect.NewNoteServiceHandler(impl.notes, o...)
		}},
		{adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService"), func(impl implementations, o ...connect.HandlerOption) (string, http.Handler) {
			return adminv1connect.NewAdminServiceHandler(impl.admin, o...)
		}},
	}
}

// PolicyTable returns the policy table of the APIs the server serves, built
// as serving builds it, with no database or configuration: the policy
// command documents it, and tests hold the running server to it.
func PolicyTable() (*policy.Table, error) {
	return newTable(Services())
}

// Services returns the descriptors of the APIs the server serves, in the
// order it mounts them.
func Services() []protoreflect.ServiceDescriptor {
	var descs []protoreflect.ServiceDescriptor
	for _, a := range apis() {
		descs = append(descs, a.desc)
	}
	return descs
}

// newTable builds the policy table of services, which may use only the
// demo API's role and scope names.
func newTable(services []protoreflect.ServiceDescriptor) (*policy.Table, error) {
	return policy.NewTable(services, policy.WithRoles(Roles...), policy.WithScopes(Scopes...))
}

// deps are what the security layer needs from the services.
type deps struct {
	log   *slog.Logger
	auth  *auth.Service  // verifies every kind of credential
	notes *notes.Service // caches access to notes
	jwks  http.Handler   // public signing keys; nil serves none
	// audit stores audit events; resolvers check ownership per kind.
	audit     *auditStore
	resolvers map[string]guard.Resolver
	// limiter keeps the rate limits (-redis); nil keeps them in memory.
	limiter ratelimit.Limiter
	// metrics observes the security layer (-metrics-addr); nil for none.
	metrics *metrics.Metrics
	// detect notices suspicious activity and keeps the blocks of
	// -block-suspicious; nil for none (bare).
	detect *detect.Detector
	// tracer makes the spans of calls and decisions; nil makes none.
	tracer trace.TracerProvider
}

// newServices builds the services and what the security layer needs, with
// the state sh shares with other replicas.
func newServices(ctx context.Context, cfg config.Config, db *store.DB, hasher *password.Hasher, log *slog.Logger, sh shared) ([]service, deps, error) {
	keys, err := auth.LoadKeys(ctx, db)
	if err != nil {
		return nil, deps{}, err
	}
	tokens := token.New(keys, cfg.Issuer, cfg.Audience, token.WithTTL(cfg.AccessTokenTTL))
	pageKey, err := db.Secret(ctx, "pagetoken", 32)
	if err != nil {
		return nil, deps{}, fmt.Errorf("load page token key: %w", err)
	}
	pages, err := pagetoken.New(pageKey)
	if err != nil {
		return nil, deps{}, err
	}

	lockouts := sh.lockouts
	if lockouts == nil {
		lockouts = lockout.NewMemory(lockoutPolicies(cfg))
	}
	authOpts := []auth.Option{auth.WithSessionTTL(cfg.SessionTTL), auth.WithIdleTimeout(cfg.IdleTimeout), auth.WithTokenTTL(cfg.AccessTokenTTL)}
	if sh.bus != nil {
		authOpts = append(authOpts, auth.WithPublisher(sh.bus))
	}
	m, err := newMetrics(cfg, db, tokens, log)
	if err != nil {
		return nil, deps{}, err
	}
	det := newDetector(cfg, db, m, log)
	authOpts = append(authOpts, auth.WithObserver(observers{m, det}))
	authSvc := auth.New(db, hasher, tokens, keys, lockouts, log, authOpts...)
	var notesOpts []notes.Option
	if sh.bus != nil {
		notesOpts = append(notesOpts, notes.WithPublisher(sh.bus))
	}
	notesSvc := notes.New(db, pages, log, notesOpts...)
	impl := implementations{
		auth:  authSvc,
		notes: notesSvc,
		admin: admin.New(db, hasher, pages, adminCredentials{authSvc, det, db, log}, log),
	}
	var services []service
	for _, a := range apis() {
		services = append(services, service{a.desc, func(o ...connect.HandlerOption) (string, http.Handler) {
			return a.handler(impl, o...)
		}})
	}
	return services, deps{
		log:       log,
		auth:      authSvc,
		jwks:      authSvc.JWKSHandler(),
		audit:     newAuditStore(db, log),
		notes:     notesSvc,
		resolvers: map[string]guard.Resolver{"note": notesSvc},
		limiter:   sh.limiter,
		metrics:   m,
		detect:    det,
	}, nil
}

// mount builds the security layer from exactly the services mounted, so
// no mounted method can lack a policy, and wraps the mux in its HTTP layer.
func mount(cfg config.Config, services []service, d deps) (http.Handler, error) {
	descs := make([]protoreflect.ServiceDescriptor, len(services))
	names := make([]string, len(services))
	for i, s := range services {
		descs[i], names[i] = s.desc, string(s.desc.FullName())
	}
	opts := []guard.Option{
		guard.WithRoles(Roles...), guard.WithScopes(Scopes...),
		guard.WithLogger(d.log), guard.WithRealm("guard"),
		guard.WithMaxBodyBytes(cfg.MaxBodyBytes),
		guard.WithIPRateLimit(cfg.IPRateLimit, cfg.IPRateWindow),
		guard.WithUserRateLimit(cfg.UserRateLimit, cfg.UserRateWindow),
		guard.WithTrustedProxies(cfg.TrustedProxies),
		guard.WithCORSOrigins(cfg.CORSOrigins),
	}
	if d.auth != nil {
		opts = append(opts, guard.WithTokens(d.auth),
			guard.WithAPIKeys(auth.APIKeyPrefix, d.auth),
			guard.WithSessionCookie(auth.CookieName, d.auth))
	}
	if d.audit != nil {
		opts = append(opts, guard.WithAuditRecorder(d.audit))
	}
	if d.limiter != nil {
		opts = append(opts, guard.WithLimiter(d.limiter))
	}
	switch {
	case d.detect != nil:
		opts = append(opts, guard.WithObserver(observers{d.metrics, d.detect}), guard.WithAdmission(blocks{d.detect}))
	case d.metrics != nil:
		opts = append(opts, guard.WithObserver(d.metrics))
	}
	for kind, r := range d.resolvers {
		opts = append(opts, guard.WithResolver(kind, r))
	}
	hopts := []connect.HandlerOption{compressMinBytes}
	if d.tracer != nil {
		spans, err := rpcSpans(d.tracer)
		if err != nil {
			return nil, err
		}
		opts = append(opts, guard.WithTracerProvider(d.tracer))
		hopts = append(hopts, connect.WithInterceptors(spans)) // outside the chain
	}
	g, err := guard.New(descs, opts...)
	if err != nil {
		return nil, err
	}
	hopts = append(hopts, g.HandlerOptions()...)
	mux := http.NewServeMux()
	for _, s := range services {
		mux.Handle(s.mount(hopts...))
	}
	if d.jwks != nil {
		mux.Handle("GET /.well-known/jwks.json", d.jwks)
	}
	// Health and reflection are public by nature and carry no policy; they
	// still sit behind the HTTP layer (per-IP limit, body limit).
	plain := connect.WithHandlerOptions(g.PlainHandlerOptions()...)
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(names...), plain))
	if cfg.Reflection {
		reflector := grpcreflect.NewStaticReflector(append(names, grpchealth.HealthV1ServiceName,
			grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName)...)
		mux.Handle(grpcreflect.NewHandlerV1(reflector, plain))
		mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, plain))
	}
	api, err := withREST(services, mux, cfg.MaxBodyBytes, d.log)
	if err != nil {
		return nil, err
	}
	if d.detect != nil {
		return g.Handler(blockNetworks(d.detect, api)), nil
	}
	return g.Handler(api), nil
}

// bare serves the services' handlers with nothing in front: what the load
// harness compares the secured server against (-bare, guardload builds).
func bare(services []service) http.Handler {
	mux := http.NewServeMux()
	for _, s := range services {
		mux.Handle(s.mount(compressMinBytes))
	}
	return mux
}

// compressMinBytes leaves responses under 1 KiB uncompressed, whatever
// the client accepts. connect-go compresses every response a client
// accepts gzip for, which made flate's set-up a third of the server's CPU
// on small answers such as GetNote (make load), for a few bytes saved;
// and compressing a secret (a token, an API key) beside text a caller
// chose is how compression oracles (CRIME, BREACH) read secrets.
var compressMinBytes = connect.WithCompressMinBytes(1024)

// bootstrapAdmin creates the first admin on a database without users. With
// no password given it generates one and prints it once. Of replicas
// starting together on an empty database, exactly one creates the admin
// (store.CreateFirstUser); a generated password is printed by that one.
func bootstrapAdmin(ctx context.Context, db *store.DB, hasher *password.Hasher, email, pw string, stdout io.Writer) error {
	n, err := db.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	generated := pw == ""
	if generated {
		var b [15]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate admin password: %w", err)
		}
		pw = base32.StdEncoding.EncodeToString(b[:])
	}
	if err := password.Check(pw, email); err != nil {
		return fmt.Errorf("GUARD_ADMIN_PASSWORD: %w", err)
	}
	hash, err := hasher.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("hash admin password: %w", err)
	}
	_, created, err := db.CreateFirstUser(ctx, email, hash, []string{"admin"})
	switch {
	case err != nil:
		return fmt.Errorf("create admin %s: %w", email, err)
	case !created:
		return nil // another replica was first
	case generated:
		fmt.Fprintf(stdout, "created admin %s with password %s (shown once: store it now)\n", email, pw)
	default:
		fmt.Fprintf(stdout, "created admin %s with the password from GUARD_ADMIN_PASSWORD\n", email)
	}
	return nil
}

// RunOption changes how Run serves, for programs that embed the server.
type RunOption func(*runOptions)

type runOptions struct {
	hasher *password.Hasher
}

// WithPasswordHasher hashes and checks passwords with h instead of the
// default (argon2id at OWASP's recommended cost). The tests' servers
// (internal/servertest) use a cheap one.
func WithPasswordHasher(h *password.Hasher) RunOption {
	return func(o *runOptions) { o.hasher = h }
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	format := loghandler.Text
	if cfg.LogFormat == "json" {
		format = loghandler.JSON
	}
	return slog.New(loghandler.New(w, format, cfg.LogLevel))
}
