package goclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
)

// Session is a signed-in user's token pair: the short-lived access token
// sent with every call and the refresh token that renews it. A client
// keeps it in memory; give it WithSessionStore to keep it elsewhere (a CLI,
// say, in a file only its user can read: see SECURITY.md).
type Session struct {
	AccessToken  string
	RefreshToken string
}

// A TokenSource gives the access token to send with a call. The client
// does not refresh what it gives: that is the source's own business.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// ErrSignedOut is what a call of a client signed out answers, wrapped in
// an unauthenticated *connect.Error: after Logout, or after a refresh
// failed (the server revoked the session, for instance because its refresh
// token was used twice: see SECURITY.md). Sign in again with Login.
var ErrSignedOut = errors.New("signed out")

// credentials is how a Client authenticates its calls: one of a static
// token, an API key, a token source, or a session it signs in to and
// refreshes.
type credentials struct {
	source TokenSource // immutable once the client is made

	mu     sync.Mutex // held by each sign-in and refresh: single flight
	static string     // a fixed bearer token or API key; "" when none

	// A session (WithPassword, WithSession, Login).
	session  Session
	gen      uint64 // counts the sessions and their refreshes
	email    string // WithPassword: signs in on first need
	password string
	store    func(Session) // WithSessionStore
	auth     authv1connect.AuthServiceClient
	signedIn bool
}

// token returns the value of the credential header for a call and the
// session generation it belongs to (0 when not a session).
func (c *credentials) token(ctx context.Context) (string, uint64, error) {
	if c.source != nil {
		t, err := c.source.Token(ctx)
		return t, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.static != "" {
		return c.static, 0, nil
	}
	if !c.signedIn && c.email != "" {
		if err := c.loginLocked(ctx, c.email, c.password); err != nil {
			return "", 0, err
		}
	}
	return c.session.AccessToken, c.gen, nil
}

// loginLocked signs in with a password and keeps the new session. c.mu
// must be held.
func (c *credentials) loginLocked(ctx context.Context, email, password string) error {
	res, err := c.auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		return err
	}
	c.setLocked(Session{AccessToken: res.Msg.GetAccessToken(), RefreshToken: res.Msg.GetRefreshToken()})
	return nil
}

// setLocked replaces the session. c.mu must be held.
func (c *credentials) setLocked(s Session) {
	c.session, c.signedIn = s, s.AccessToken != ""
	c.gen++
	if c.store != nil {
		c.store(s)
	}
}

// refresh renews the session whose generation failed, once: of the calls
// that fail together, the first refreshes and the others find the session
// renewed already. A refresh the server refuses signs the client out.
func (c *credentials) refresh(ctx context.Context, failed uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != failed {
		return nil // renewed, or signed out and in again, meanwhile
	}
	if c.session.RefreshToken == "" {
		return errors.New("no refresh token")
	}
	res, err := c.auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: c.session.RefreshToken}))
	if err != nil {
		if connect.CodeOf(err) == connect.CodeUnauthenticated || connect.CodeOf(err) == connect.CodeInvalidArgument {
			c.signOutLocked()
		}
		return err
	}
	c.setLocked(Session{AccessToken: res.Msg.GetAccessToken(), RefreshToken: res.Msg.GetRefreshToken()})
	return nil
}

// signOutLocked forgets the session; WithPassword credentials are kept
// but not used again until Login. c.mu must be held.
func (c *credentials) signOutLocked() {
	c.session, c.signedIn, c.email, c.password = Session{}, false, "", ""
	c.gen++
	if c.store != nil {
		c.store(Session{})
	}
}

// refreshable reports whether the client holds a session it can refresh.
func (c *credentials) refreshable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.static == "" && c.signedIn && c.session.RefreshToken != ""
}

// signedInNow reports whether the client holds a session.
func (c *credentials) signedInNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signedIn
}

// authenticator adds the credential to every call and, for a session,
// refreshes an access token the server refuses and retries the call once.
type authenticator struct{ c *credentials }

func (a authenticator) set(ctx context.Context, h http.Header) (uint64, error) {
	tok, gen, err := a.c.token(ctx)
	if err != nil {
		return 0, err
	}
	if tok == "" {
		return gen, nil
	}
	h.Set("Authorization", "Bearer "+tok)
	return gen, nil
}

// selfAuthenticating are the procedures that carry their own credential
// in the message: never given a token, never retried.
func selfAuthenticating(procedure string) bool {
	return strings.HasSuffix(procedure, "/Login") || strings.HasSuffix(procedure, "/Refresh")
}

func (a authenticator) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if selfAuthenticating(req.Spec().Procedure) {
			return next(ctx, req)
		}
		gen, err := a.set(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		res, err := next(ctx, req)
		if a.c.source != nil || connect.CodeOf(err) != connect.CodeUnauthenticated || !a.c.refreshable() {
			return res, err
		}
		if rerr := a.c.refresh(ctx, gen); rerr != nil {
			if !a.c.signedInNow() {
				return nil, connect.NewError(connect.CodeUnauthenticated, errors.Join(ErrSignedOut, err))
			}
			return res, err
		}
		// The request is sent again with the new token: a unary request
		// message is not consumed by sending it.
		if _, err := a.set(ctx, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient adds the credential; a stream is not retried.
func (a authenticator) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		_, _ = a.set(ctx, conn.RequestHeader())
		return conn
	}
}

func (a authenticator) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
