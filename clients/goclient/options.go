package goclient

import "net/http"

// An Option configures a Client.
type Option interface{ apply(*config) }

type config struct {
	protocol        Protocol
	httpClient      *http.Client
	token           string
	source          TokenSource
	email, password string
	session         Session
	store           func(Session)
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

// WithToken sends a fixed access token with every call, never refreshed.
// The default is no credential.
func WithToken(token string) Option {
	return optionFunc(func(c *config) { c.token = token })
}

// WithAPIKey sends an API key (gk_...) with every call: for services and
// scripts, with the scopes and expiry the key was made with.
func WithAPIKey(key string) Option {
	return optionFunc(func(c *config) { c.token = key })
}

// WithTokenSource asks src for the access token of every call; the client
// neither keeps nor refreshes what it gives.
func WithTokenSource(src TokenSource) Option {
	return optionFunc(func(c *config) { c.source = src })
}

// WithPassword signs in with email and password on the first call that
// needs it, and keeps and refreshes the session in memory. After the
// session ends (Logout, a refused refresh), the password is forgotten too.
func WithPassword(email, password string) Option {
	return optionFunc(func(c *config) { c.email, c.password = email, password })
}

// WithSession resumes a session signed in earlier, such as one a CLI saved
// with WithSessionStore; the client refreshes it.
func WithSession(s Session) Option {
	return optionFunc(func(c *config) { c.session = s })
}

// WithSessionStore calls save with every new session (after each sign-in
// and refresh: the refresh token rotates) and with the zero Session when
// it ends, so that the caller can keep it where it belongs (see
// SECURITY.md). save runs while the client holds its session lock: it
// must not call the client.
func WithSessionStore(save func(Session)) Option {
	return optionFunc(func(c *config) { c.store = save })
}
