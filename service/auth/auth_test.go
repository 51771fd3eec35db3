package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
)

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	email = "user@example.com"
	pw    = "a long test password 1"
)

// fixture is an auth.Service on a real SQLite store, with the service's
// clock (and the token signer's) under the test's control. The store keeps
// the real clock; the fake one starts at the real now, so they agree on
// the times the store stamps at creation.
type fixture struct {
	svc    *auth.Service
	db     *store.DB
	gate   *gatedStore
	tokens *token.Service
	keys   *token.Keys
	clock  *fakeClock
	userID string
}

// gatedStore is the real store, except that an armed gate pauses the next
// credential state read after it has read the database: the moment a
// concurrent change can slip in between a read and its caching.
type gatedStore struct {
	*store.DB
	mu    sync.Mutex
	read  chan struct{} // closed when the paused read has read
	gate  chan struct{} // closing it lets the paused read return
	armed bool
	// keyReads counts APIKeyState calls.
	keyReads atomic.Int64
}

func (g *gatedStore) arm() (read, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.read, g.gate, g.armed = make(chan struct{}), make(chan struct{}), true
	return g.read, g.gate
}

func (g *gatedStore) pause() {
	g.mu.Lock()
	armed, read, gate := g.armed, g.read, g.gate
	g.armed = false
	g.mu.Unlock()
	if armed {
		close(read)
		<-gate
	}
}

func (g *gatedStore) SessionState(ctx context.Context, id string) (store.SessionState, error) {
	st, err := g.DB.SessionState(ctx, id)
	g.pause()
	return st, err
}

func (g *gatedStore) APIKeyState(ctx context.Context, id string, secretHash []byte) (store.APIKeyState, error) {
	g.keyReads.Add(1)
	st, err := g.DB.APIKeyState(ctx, id, secretHash)
	g.pause()
	return st, err
}

func newFixture(t testing.TB, opts ...auth.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "guard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	clock := &fakeClock{now: time.Now()}
	keys, err := auth.LoadKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tokens := token.New(keys, "guard", "guard-api", token.WithClock(clock.Now), token.WithTTL(15*time.Minute))
	// Cheap parameters: these tests are about time, not hashing.
	hasher := password.NewHasher(password.WithParams(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	hash, err := hasher.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUser(ctx, email, hash, []string{"member"})
	if err != nil {
		t.Fatal(err)
	}
	guard := lockout.NewMemory(lockout.Policies{}, lockout.WithClock(clock.Now))
	opts = append([]auth.Option{auth.WithClock(clock.Now)}, opts...)
	gate := &gatedStore{DB: db}
	svc := auth.New(gate, hasher, tokens, keys, guard, slog.New(slog.DiscardHandler), opts...)
	return &fixture{svc: svc, db: db, gate: gate, tokens: tokens, keys: keys, clock: clock, userID: u.ID}
}

// cookieLogin logs in for a session cookie and returns its value.
func (f *fixture) cookieLogin(t *testing.T) string {
	t.Helper()
	res, err := f.svc.Login(context.Background(), connect.NewRequest(&authv1.LoginRequest{Email: email, Password: pw, UseCookie: true}))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	for _, line := range res.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == auth.CookieName && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("got Set-Cookie %q, want %s", res.Header().Values("Set-Cookie"), auth.CookieName)
	return ""
}

// tokenLogin logs in for tokens and returns the access token.
func (f *fixture) tokenLogin(t *testing.T) string {
	t.Helper()
	res, err := f.svc.Login(context.Background(), connect.NewRequest(&authv1.LoginRequest{Email: email, Password: pw}))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return res.Msg.GetAccessToken()
}

// apiKey stores an API key of the user expiring at expire and returns it
// with the given secret (43 characters).
func (f *fixture) apiKey(t testing.TB, secret string, expire time.Time) string {
	t.Helper()
	sum := sha256.Sum256([]byte(secret))
	k := store.APIKey{ID: store.NewID(), UserID: f.userID, Name: "k", Scopes: []string{"notes:read"},
		Last4: secret[len(secret)-4:], SecretHash: sum[:], ExpireTime: &expire}
	if _, err := f.db.CreateAPIKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return auth.APIKeyPrefix + k.ID + "_" + secret
}

// step moves the clock by advance, then expects a credential check to
// succeed (want nil) or fail matching want.
type step struct {
	advance time.Duration
	want    error
}

// errAny as a step's want accepts any refusal.
var errAny = errors.New("any refusal")

func runSteps(t *testing.T, f *fixture, steps []step, verify func() (*authn.Principal, error)) {
	t.Helper()
	var elapsed time.Duration
	for i, s := range steps {
		f.clock.Advance(s.advance)
		elapsed += s.advance
		p, err := verify()
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("step %d (+%v): got %v, want the credential accepted", i, elapsed, err)
		case s.want == nil && p.UserID != f.userID:
			t.Fatalf("step %d (+%v): got user %q, want %q", i, elapsed, p.UserID, f.userID)
		case errors.Is(s.want, errAny) && err == nil:
			t.Fatalf("step %d (+%v): got principal %v, want the credential refused", i, elapsed, p)
		case s.want != nil && !errors.Is(s.want, errAny) && !errors.Is(err, s.want):
			t.Fatalf("step %d (+%v): got principal %v, error %v; want %v", i, elapsed, p, err, s.want)
		}
	}
}

// TestCookieSessionTimeouts: a cookie session ends after the idle timeout
// without use, each use (recorded at most once a minute) pushes that end
// back, and the absolute lifetime ends it whatever the use.
func TestCookieSessionTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []auth.Option
		steps []step
	}{
		{"idle_too_long", []auth.Option{auth.WithIdleTimeout(30 * time.Minute)}, []step{
			{0, nil},
			{31 * time.Minute, authn.ErrExpired},
		}},
		{"use_extends_idle", []auth.Option{auth.WithIdleTimeout(30 * time.Minute)}, []step{
			{29 * time.Minute, nil},
			{29 * time.Minute, nil}, // 58 min after login, 29 after the last use
			{29 * time.Minute, nil},
			{31 * time.Minute, authn.ErrExpired},
		}},
		{"expired_stays_expired", []auth.Option{auth.WithIdleTimeout(30 * time.Minute)}, []step{
			{31 * time.Minute, authn.ErrExpired},
			{time.Second, authn.ErrExpired}, // the refused use did not revive it
			{2 * time.Minute, authn.ErrExpired},
		}},
		{"absolute_lifetime", []auth.Option{auth.WithIdleTimeout(30 * time.Minute), auth.WithSessionTTL(time.Hour)}, []step{
			{20 * time.Minute, nil},
			{20 * time.Minute, nil},
			{21 * time.Minute, authn.ErrExpired}, // in use, but 61 min old
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.opts...)
			cookie := f.cookieLogin(t)
			runSteps(t, f, tt.steps, func() (*authn.Principal, error) {
				return f.svc.VerifySession(context.Background(), cookie)
			})
		})
	}
}

// TestAccessTokenExpires: an access token stops at its lifetime (plus the
// 30 s leeway) and says so, while its session lives on.
func TestAccessTokenExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.svc.Login(context.Background(), connect.NewRequest(&authv1.LoginRequest{Email: email, Password: pw}))
	if err != nil {
		t.Fatal(err)
	}
	tok := res.Msg.GetAccessToken()
	runSteps(t, f, []step{
		{0, nil},
		{14 * time.Minute, nil},
		{2 * time.Minute, authn.ErrExpired}, // 16 min: past 15 min + 30 s
	}, func() (*authn.Principal, error) { return f.svc.VerifyToken(context.Background(), tok) })
}

// TestAPIKeyExpires: a key stops at its expiry time; a wrong secret is
// refused as invalid, never told that the key has expired.
func TestAPIKeyExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	key := f.apiKey(t, strings.Repeat("s", 43), f.clock.Now().Add(time.Hour))
	wrong := key[:len(key)-43] + strings.Repeat("w", 43)

	runSteps(t, f, []step{
		{0, nil},
		{59 * time.Minute, nil},
		{2 * time.Minute, authn.ErrExpired},
	}, func() (*authn.Principal, error) { return f.svc.VerifyAPIKey(ctx, key) })

	p, err := f.svc.VerifyAPIKey(ctx, wrong)
	if err == nil || errors.Is(err, authn.ErrExpired) {
		t.Errorf("wrong secret of an expired key: got %v, %v; want invalid, not expired", p, err)
	}
}

// TestInvalidationBeatsInFlightRead: a credential check that read the
// database before a user was disabled must not cache what it read after
// the disabling call has dropped the cache; else the disabled user's
// credential works on after DisableUser returned (up to the cache TTL, and
// here, with the clock held still, for ever).
func TestInvalidationBeatsInFlightRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		verify func(t *testing.T, f *fixture) func() (*authn.Principal, error)
	}{
		{"access_token", func(t *testing.T, f *fixture) func() (*authn.Principal, error) {
			tok := f.tokenLogin(t)
			return func() (*authn.Principal, error) { return f.svc.VerifyToken(context.Background(), tok) }
		}},
		{"cookie", func(t *testing.T, f *fixture) func() (*authn.Principal, error) {
			cookie := f.cookieLogin(t)
			return func() (*authn.Principal, error) { return f.svc.VerifySession(context.Background(), cookie) }
		}},
		{"api_key", func(t *testing.T, f *fixture) func() (*authn.Principal, error) {
			key := f.apiKey(t, strings.Repeat("k", 43), f.clock.Now().Add(time.Hour))
			return func() (*authn.Principal, error) { return f.svc.VerifyAPIKey(context.Background(), key) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			verify := tt.verify(t, f)
			read, release := f.gate.arm()
			done := make(chan error, 1)
			go func() {
				_, err := verify() // began before the disabling: may succeed
				done <- err
			}()
			<-read
			if err := f.db.DisableUser(context.Background(), f.userID); err != nil {
				t.Fatal(err)
			}
			f.svc.InvalidateUser(context.Background(), f.userID) // what AdminService.DisableUser does
			close(release)
			<-done
			if p, err := verify(); err == nil {
				t.Errorf("got principal %+v after the user was disabled, want the credential refused", p)
			}
		})
	}
}

// TestRotatedKeyRetires: after a rotation the old signing key verifies
// only while tokens it signed can still be live (access token lifetime
// plus leeway); then it neither verifies nor is published, so a leaked
// old key, the usual reason to rotate, stops minting tokens.
func TestRotatedKeyRetires(t *testing.T) {
	t.Parallel()
	f := newFixture(t, auth.WithTokenTTL(15*time.Minute))
	ctx := context.Background()
	stored, err := f.db.SigningKeys(ctx)
	if err != nil || len(stored) != 1 {
		t.Fatalf("got keys %v (%v), want the one first key", stored, err)
	}
	oldKeys, err := token.NewKeys(token.Key{ID: stored[0].ID, Private: stored[0].Private, Public: stored[0].Public})
	if err != nil {
		t.Fatal(err)
	}
	// forger holds the old private key, as whoever it leaked to would.
	forger := token.New(oldKeys, "guard", "guard-api", token.WithClock(f.clock.Now))
	c, err := f.tokens.Verify(f.tokenLogin(t))
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := f.svc.RotateSigningKey(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	verifyForged := func() (*authn.Principal, error) {
		tok, _, err := forger.Sign(c.Subject, c.SessionID, nil)
		if err != nil {
			t.Fatal(err)
		}
		return f.svc.VerifyToken(ctx, tok)
	}
	t.Run("grace_period", func(t *testing.T) {
		runSteps(t, f, []step{{0, nil}}, verifyForged) // proves the forgery is well made
	})
	t.Run("after_retirement", func(t *testing.T) {
		runSteps(t, f, []step{{16 * time.Minute, errAny}}, verifyForged)
		rec := httptest.NewRecorder()
		f.svc.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 1 || set.Keys[0].Kid != newKid {
			t.Errorf("got published keys %v, want only %s", set.Keys, newKid)
		}
	})
}

// TestRotateRevokesPreviousAtOnce: after a leak, rotating with
// revokePrevious stops the old key at once, in this process and after a
// restart (LoadKeys reads the retirement back).
func TestRotateRevokesPreviousAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	before := f.tokenLogin(t)
	if _, err := f.svc.VerifyToken(ctx, before); err != nil {
		t.Fatalf("before rotation: got %v, want nil", err)
	}
	if _, err := f.svc.RotateSigningKey(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.VerifyToken(ctx, before); err == nil {
		t.Error("old key's token after revoking rotation: got nil, want a refusal")
	}
	if _, err := f.svc.VerifyToken(ctx, f.tokenLogin(t)); err != nil {
		t.Errorf("new key's token: got %v, want nil", err)
	}
	reloaded, err := auth.LoadKeys(ctx, f.db)
	if err != nil {
		t.Fatal(err)
	}
	// Retirement happened at the fixture clock's "now"; any later moment
	// must not list the old key.
	if pub := reloaded.Public(f.clock.Now().Add(time.Second)); len(pub) != 1 {
		t.Errorf("after restart: got %d verifying keys, want 1", len(pub))
	}
}

// TestAPIKeyProbesDoSameWork: a probe with a real key id and a wrong secret
// must do exactly the work of a probe with an unknown id (one database
// read, nothing cached), or response times tell which ids exist. Before,
// a used key's id was answered from the cache, much faster.
func TestAPIKeyProbesDoSameWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	secret := strings.Repeat("s", 43)
	key := f.apiKey(t, secret, f.clock.Now().Add(time.Hour))
	id := strings.TrimSuffix(strings.TrimPrefix(key, auth.APIKeyPrefix), "_"+secret)
	if _, err := f.svc.VerifyAPIKey(ctx, key); err != nil { // the key is in use: cached
		t.Fatal(err)
	}
	probes := map[string]string{
		"valid_cached":     key,
		"known_id":         auth.APIKeyPrefix + id + "_" + strings.Repeat("w", 43),
		"unknown_id":       auth.APIKeyPrefix + store.NewID() + "_" + secret,
		"unknown_id_again": auth.APIKeyPrefix + store.NewID() + "_" + secret,
	}
	wantReads := map[string]int64{"valid_cached": 0, "known_id": 1, "unknown_id": 1, "unknown_id_again": 1}
	for round := range 3 { // repeats: a refused probe is never cached
		for name, probe := range probes {
			before := f.gate.keyReads.Load()
			p, err := f.svc.VerifyAPIKey(ctx, probe)
			reads := f.gate.keyReads.Load() - before
			if reads != wantReads[name] {
				t.Errorf("round %d, %s: %d database reads, want %d", round, name, reads, wantReads[name])
			}
			if name == "valid_cached" {
				if err != nil || p == nil || p.KeyID != id {
					t.Errorf("valid key: got %v, %v, want the key's principal", p, err)
				}
			} else if err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	}
}

// BenchmarkAPIKeyProbe times the two refusals an id prober can compare.
// They should cost the same.
func BenchmarkAPIKeyProbe(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	secret := strings.Repeat("s", 43)
	key := f.apiKey(b, secret, f.clock.Now().Add(time.Hour))
	id := strings.TrimSuffix(strings.TrimPrefix(key, auth.APIKeyPrefix), "_"+secret)
	for name, probe := range map[string]string{
		"known_id_wrong_secret": auth.APIKeyPrefix + id + "_" + strings.Repeat("w", 43),
		"unknown_id":            auth.APIKeyPrefix + store.NewID() + "_" + secret,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.svc.VerifyAPIKey(ctx, probe); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}

// TestConcurrentUseAfterIdle: requests with one cookie or API key that
// arrive together after more than touchEvery (a minute) idle each record
// the use and update the cached state, while the others read it. Run under
// -race: the cached state must not be shared memory that one request
// writes while another copies it.
func TestConcurrentUseAfterIdle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		verify func(t *testing.T, f *fixture) func() (*authn.Principal, error)
	}{
		{"cookie", func(t *testing.T, f *fixture) func() (*authn.Principal, error) {
			cookie := f.cookieLogin(t)
			return func() (*authn.Principal, error) { return f.svc.VerifySession(context.Background(), cookie) }
		}},
		{"api_key", func(t *testing.T, f *fixture) func() (*authn.Principal, error) {
			key := f.apiKey(t, strings.Repeat("c", 43), f.clock.Now().Add(time.Hour))
			return func() (*authn.Principal, error) { return f.svc.VerifyAPIKey(context.Background(), key) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			verify := tt.verify(t, f)
			if _, err := verify(); err != nil {
				t.Fatal(err)
			}
			const rounds, requests = 5, 8
			for round := range rounds {
				f.clock.Advance(time.Minute + time.Second) // idle: the next use is recorded
				var wg sync.WaitGroup
				for range requests {
					wg.Go(func() {
						if p, err := verify(); err != nil || p.UserID != f.userID {
							t.Errorf("round %d: got %v, %v, want the user's principal", round, p, err)
						}
					})
				}
				wg.Wait()
			}
		})
	}
}
