package goclient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
	"google.golang.org/protobuf/types/known/durationpb"
)

// protocols are the wire protocols every test here runs over.
var protocols = []goclient.Protocol{goclient.Connect, goclient.GRPC, goclient.GRPCWeb}

// counter is an HTTP client that counts the calls of each procedure.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
	next  http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.calls[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counter) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

func newCounter(baseURL string) (*counter, *http.Client) {
	h := goclient.DefaultHTTPClient(baseURL)
	c := &counter{calls: map[string]int{}, next: h.Transport}
	h.Transport = c
	return c, h
}

// expire waits until access tokens issued now have expired (the server
// runs with -access-token-ttl=5s): a wait, not a timing assertion.
func expire() { time.Sleep(6 * time.Second) }

func whoAmI(ctx context.Context, c *goclient.Client) error {
	_, err := c.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
	return err
}

// TestPasswordSessionRefreshes signs in with a password, lets the access
// token expire, and sends ten calls at once: every one succeeds after
// exactly one Refresh, whose rotated refresh token replaces the old one.
func TestPasswordSessionRefreshes(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, "-access-token-ttl=5s")
			u := srv.CreateUser("storm@example.com", "member")
			calls, h := newCounter(srv.URL)
			var (
				mu       sync.Mutex
				sessions []goclient.Session
			)
			c := goclient.New(srv.URL, goclient.WithProtocol(p), goclient.WithHTTPClient(h),
				goclient.WithPassword(u.Email, u.Password),
				goclient.WithSessionStore(func(s goclient.Session) { mu.Lock(); sessions = append(sessions, s); mu.Unlock() }))
			ctx := context.Background()
			if err := whoAmI(ctx, c); err != nil {
				t.Fatalf("first call: %v", err)
			}
			if calls.count("Login") != 1 || !c.SignedIn() {
				t.Fatalf("Login calls = %d, signed in %v; want 1, true", calls.count("Login"), c.SignedIn())
			}
			expire()
			var wg sync.WaitGroup
			errs := make([]error, 10)
			for i := range errs {
				wg.Go(func() { errs[i] = whoAmI(ctx, c) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("call %d after expiry: %v", i, err)
				}
			}
			if n := calls.count("Refresh"); n != 1 {
				t.Errorf("Refresh calls for 10 concurrent calls = %d, want exactly 1", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sessions) != 2 || sessions[1].RefreshToken == "" || sessions[1].RefreshToken == sessions[0].RefreshToken {
				t.Errorf("saved sessions = %d, want the login's and the refresh's with a new refresh token", len(sessions))
			}
		})
	}
}

// TestRefreshReuseSignsOut: someone else spends the client's refresh
// token first (a stolen copy); when the client then refreshes with it,
// the server sees the reuse and revokes the session, and the client ends
// signed out: its calls fail with ErrSignedOut, its stored session is
// cleared, and the thief's new tokens are dead too.
func TestRefreshReuseSignsOut(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.String(), func(t *testing.T) {
			t.Parallel()
			srv := servertest.Start(t, "-access-token-ttl=5s")
			u := srv.CreateUser("reuse@example.com", "member")
			ctx := context.Background()
			raw := goclient.New(srv.URL, goclient.WithProtocol(p))
			login, err := raw.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: u.Email, Password: u.Password}))
			if err != nil {
				t.Fatal(err)
			}
			var stored atomic.Pointer[goclient.Session]
			c := goclient.New(srv.URL, goclient.WithProtocol(p),
				goclient.WithSession(goclient.Session{AccessToken: login.Msg.GetAccessToken(), RefreshToken: login.Msg.GetRefreshToken()}),
				goclient.WithSessionStore(func(s goclient.Session) { stored.Store(&s) }))
			if err := whoAmI(ctx, c); err != nil {
				t.Fatalf("call with the resumed session: %v", err)
			}
			stolen, err := raw.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: login.Msg.GetRefreshToken()}))
			if err != nil {
				t.Fatalf("the thief's refresh: %v", err)
			}
			expire()
			err = whoAmI(ctx, c)
			if connect.CodeOf(err) != connect.CodeUnauthenticated || !errors.Is(err, goclient.ErrSignedOut) {
				t.Fatalf("call after the reuse: %v, want unauthenticated wrapping ErrSignedOut", err)
			}
			if c.SignedIn() {
				t.Error("client still signed in after its refresh was refused")
			}
			if s := stored.Load(); s == nil || *s != (goclient.Session{}) {
				t.Errorf("stored session after sign-out = %+v, want it cleared", s)
			}
			if err := whoAmI(ctx, c); !errors.Is(err, goclient.ErrSignedOut) && connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("later call: %v, want unauthenticated", err)
			}
			thief := goclient.New(srv.URL, goclient.WithProtocol(p), goclient.WithToken(stolen.Msg.GetAccessToken()))
			if err := whoAmI(ctx, thief); connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Errorf("the thief's access token after the reuse: %v, want unauthenticated (session revoked)", err)
			}
		})
	}
}

// TestOtherCredentials: an API key and a token source authenticate calls
// as their user, on every protocol; a token source's error stops the
// call before it is sent.
func TestOtherCredentials(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	u := srv.CreateUser("keys@example.com", "member")
	ctx := context.Background()
	session := goclient.New(srv.URL, goclient.WithPassword(u.Email, u.Password))
	key, err := session.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{Name: "test", Scopes: []string{"notes:read", "notes:write"}, Ttl: durationpb.New(time.Hour)}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		withKey := goclient.New(srv.URL, goclient.WithProtocol(p), goclient.WithAPIKey(key.Msg.GetKey()))
		if _, err := withKey.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "by key " + p.String()})); err != nil {
			t.Errorf("%s: CreateNote with the API key: %v", p, err)
		}
		withSource := goclient.New(srv.URL, goclient.WithProtocol(p), goclient.WithTokenSource(tokenFunc(func(context.Context) (string, error) { return u.Token, nil })))
		if err := whoAmI(ctx, withSource); err != nil {
			t.Errorf("%s: WhoAmI with a token source: %v", p, err)
		}
	}
	failing := goclient.New(srv.URL, goclient.WithTokenSource(tokenFunc(func(context.Context) (string, error) { return "", errors.New("vault sealed") })))
	if err := whoAmI(ctx, failing); err == nil || !strings.Contains(err.Error(), "vault sealed") {
		t.Errorf("WhoAmI with a failing token source: %v, want its error", err)
	}
}

type tokenFunc func(context.Context) (string, error)

func (f tokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }

// TestErrorHelpers reads what refusals carry, on every protocol: the
// violated fields, the delay of a rate limit, the request id.
func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-user-rate-limit=4", "-user-rate-window=1m")
	u := srv.CreateUser("errors@example.com", "member")
	ctx := context.Background()
	for _, p := range protocols {
		c := goclient.New(srv.URL, goclient.WithProtocol(p), goclient.WithToken(u.Token))
		_, err := c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: strings.Repeat("x", 201)}))
		if v := goclient.FieldViolations(err); connect.CodeOf(err) != connect.CodeInvalidArgument || v["title"] == "" {
			t.Errorf("%s: CreateNote with a long title: %v, violations %v; want invalid_argument naming title", p, err, v)
		}
		if goclient.RequestID(err) == "" {
			t.Errorf("%s: no request id in %v", p, err)
		}
		if d, ok := goclient.RetryDelay(err); ok || d != 0 {
			t.Errorf("%s: RetryDelay of invalid_argument = %v, %v; want 0, false", p, d, ok)
		}
	}
	// The user's budget of 4 was spent by the three refused calls above
	// and this one; the next is refused with its delay.
	c := goclient.New(srv.URL, goclient.WithToken(u.Token))
	var err error
	for range 3 {
		if err = whoAmI(ctx, c); connect.CodeOf(err) == connect.CodeResourceExhausted {
			break
		}
	}
	d, ok := goclient.RetryDelay(err)
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !ok || d <= 0 || d > time.Minute+10*time.Second {
		t.Errorf("beyond the budget: %v, RetryDelay = %v, %v; want resource_exhausted with a delay of at most the window", err, d, ok)
	}
	if goclient.FieldViolations(err) != nil {
		t.Errorf("violations of a rate limit = %v, want none", goclient.FieldViolations(err))
	}
}
