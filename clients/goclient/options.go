package goclient

import "net/http"

// An Option configures a Client.
type Option interface{ apply(*config) }

type config struct {
	protocol   Protocol
	httpClient *http.Client
	token      string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithProtocol picks the wire protocol. The default is Connect (binary).
func WithProtocol(p Protocol) Option {
	return optionFunc(func(c *config) { c.protocol = p })
}

// WithHTTPClient sets the HTTP client. The default is DefaultHTTPClient.
func WithHTTPClient(h *http.Client) Option {
	return optionFunc(func(c *config) { c.httpClient = h })
}

// WithToken sets the initial bearer token. The default is none.
func WithToken(token string) Option {
	return optionFunc(func(c *config) { c.token = token })
}
