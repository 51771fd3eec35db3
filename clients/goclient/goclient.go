// Package goclient is a thin typed Go client for Guard's APIs, over Connect,
// gRPC or gRPC-Web, with an optional bearer credential.
//
//	c := goclient.New("http://127.0.0.1:8080", goclient.WithProtocol(goclient.GRPC))
//	res, err := c.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{...}))
//	c.SetToken(res.Msg.GetAccessToken())
package goclient

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
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

	token atomic.Pointer[string]
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
	c := &Client{}
	if cfg.token != "" {
		c.SetToken(cfg.token)
	}
	copts := append([]connect.ClientOption{connect.WithInterceptors(bearer{c})}, cfg.protocol.ClientOptions()...)
	c.Auth = authv1connect.NewAuthServiceClient(cfg.httpClient, baseURL, copts...)
	c.Notes = notesv1connect.NewNoteServiceClient(cfg.httpClient, baseURL, copts...)
	c.Admin = adminv1connect.NewAdminServiceClient(cfg.httpClient, baseURL, copts...)
	return c
}

// SetToken sets the bearer token sent with every call; "" sends none.
func (c *Client) SetToken(token string) {
	c.token.Store(&token)
}

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

// bearer adds the token to outgoing calls.
type bearer struct{ c *Client }

func (b bearer) set(h http.Header) {
	if t := b.c.token.Load(); t != nil && *t != "" {
		h.Set("Authorization", "Bearer "+*t)
	}
}

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		b.set(req.Header())
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		b.set(conn.RequestHeader())
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
