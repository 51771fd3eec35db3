// Package goclient is a typed Go client for Guard's APIs, over Connect,
// gRPC or gRPC-Web, that authenticates its calls with the credential it is
// given:
//
//   - WithPassword signs in on the first call and keeps the session (the
//     access and refresh tokens) in memory;
//   - WithSession resumes a session saved earlier, and WithSessionStore
//     saves each new one (a CLI keeps it in a file only its user reads);
//   - WithAPIKey sends an API key (server to server);
//   - WithTokenSource asks the caller's own source for each call's token;
//   - WithToken sends one fixed access token.
//
// A session's access token is refreshed when the server refuses it: once,
// by one Refresh shared by every call that failed together, with the
// refresh token rotated as the server requires; the failed call is then
// sent again, once. When the refresh is refused (the session was revoked,
// for instance because its refresh token was used twice), the client is
// signed out and calls fail with ErrSignedOut until Login.
//
//	c := goclient.New("http://127.0.0.1:8080", goclient.WithPassword(email, password))
//	res, err := c.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
//
// FieldViolations, RetryDelay and RequestID read what an error carries.
package goclient

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
)

// Protocol is a wire protocol.
type Protocol int

// The protocols Guard serves.
const (
	Connect     Protocol = iota // Connect, binary protobuf
	ConnectJSON                 // Connect, JSON
	GRPC
	GRPCWeb
)

// String returns the protocol's name.
func (p Protocol) String() string {
	return [...]string{"connect", "connect+json", "grpc", "grpcweb"}[p]
}

// ClientOptions returns the options that make a connect client speak p,
// for clients built outside this package (of dynamic messages, say).
func (p Protocol) ClientOptions() []connect.ClientOption {
	switch p {
	case ConnectJSON:
		return []connect.ClientOption{connect.WithProtoJSON()}
	case GRPC:
		return []connect.ClientOption{connect.WithGRPC()}
	case GRPCWeb:
		return []connect.ClientOption{connect.WithGRPCWeb()}
	}
	return nil
}

// Client calls the three Guard services.
type Client struct {
	Auth  authv1connect.AuthServiceClient
	Notes notesv1connect.NoteServiceClient
	Admin adminv1connect.AdminServiceClient

	creds *credentials
}

// New returns a Client for the server at baseURL (such as
// "http://127.0.0.1:8080").
func New(baseURL string, opts ...Option) *Client {
	cfg := config{protocol: Connect}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = DefaultHTTPClient(baseURL)
	}
	creds := &credentials{
		source: cfg.source, static: cfg.token,
		email: cfg.email, password: cfg.password, store: cfg.store,
		// Login and Refresh carry their credential in the message.
		auth: authv1connect.NewAuthServiceClient(cfg.httpClient, baseURL, cfg.protocol.ClientOptions()...),
	}
	if cfg.session.AccessToken != "" {
		creds.session, creds.signedIn = cfg.session, true
	}
	c := &Client{creds: creds}
	copts := append([]connect.ClientOption{connect.WithInterceptors(authenticator{creds})}, cfg.protocol.ClientOptions()...)
	c.Auth = authv1connect.NewAuthServiceClient(cfg.httpClient, baseURL, copts...)
	c.Notes = notesv1connect.NewNoteServiceClient(cfg.httpClient, baseURL, copts...)
	c.Admin = adminv1connect.NewAdminServiceClient(cfg.httpClient, baseURL, copts...)
	return c
}

// SetToken sets a fixed bearer token (an access token or an API key) sent
// with every call, in place of any session; "" sends none.
func (c *Client) SetToken(token string) {
	c.creds.mu.Lock()
	defer c.creds.mu.Unlock()
	c.creds.static = token
}

// Login signs in with email and password and keeps the session, which the
// client then refreshes; it returns the signed-in user.
func (c *Client) Login(ctx context.Context, email, password string) (*authv1.User, error) {
	res, err := c.creds.auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		return nil, err
	}
	c.creds.mu.Lock()
	defer c.creds.mu.Unlock()
	c.creds.static = ""
	c.creds.setLocked(Session{AccessToken: res.Msg.GetAccessToken(), RefreshToken: res.Msg.GetRefreshToken()})
	return res.Msg.GetUser(), nil
}

// Logout ends the session on the server and forgets it; calls then fail
// with ErrSignedOut until Login.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Auth.Logout(ctx, connect.NewRequest(&authv1.LogoutRequest{}))
	c.creds.mu.Lock()
	defer c.creds.mu.Unlock()
	c.creds.signOutLocked()
	return err
}

// SignedIn reports whether the client holds a session.
func (c *Client) SignedIn() bool { return c.creds.signedInNow() }

// DefaultHTTPClient returns an HTTP client able to speak every protocol to
// baseURL: HTTP/2 over TLS for https, and HTTP/2 without TLS (h2c, which
// gRPC needs) or HTTP/1.1 for http.
func DefaultHTTPClient(baseURL string) *http.Client {
	var protocols http.Protocols
	if strings.HasPrefix(baseURL, "http://") {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
	}
	return &http.Client{
		Transport: &http.Transport{
			Protocols:           &protocols,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout: 60 * time.Second,
	}
}
