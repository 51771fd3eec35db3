package testservice

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/connectguard/guard/interceptors/authn"
)

// Log is a logger whose JSON lines, at every level, are kept for the test
// to read back. It is safe for the server's concurrent writes.
type Log struct {
	// Logger writes to the Log.
	Logger *slog.Logger

	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLog returns an empty Log.
func NewLog() *Log {
	l := &Log{}
	l.Logger = slog.New(slog.NewJSONHandler(lockedWriter{l}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l
}

type lockedWriter struct{ l *Log }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.buf.Write(p)
}

// At returns a logger writing to l that drops records below level.
func (l *Log) At(level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(lockedWriter{l}, &slog.HandlerOptions{Level: level}))
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns the records logged so far whose every attribute in match
// has the given value (as a string; nil matches all), decoded.
func (l *Log) Lines(match map[string]string) []map[string]any {
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue
		}
		ok := true
		for k, want := range match {
			if got, _ := rec[k].(string); got != want {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, rec)
		}
	}
	return out
}

// Tokens is an authn.TokenVerifier for tests: it knows the principal of
// each token in the map, and answers authn.ErrInvalid for any other.
type Tokens map[string]*authn.Principal

// VerifyToken implements authn.TokenVerifier.
func (t Tokens) VerifyToken(_ context.Context, token string) (*authn.Principal, error) {
	if p, ok := t[token]; ok {
		return p, nil
	}
	return nil, authn.ErrInvalid
}

// Bearer returns a header carrying token as a bearer credential.
func Bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// Panics records the panics that leave a handler, and lets them go on.
type Panics struct {
	mu     sync.Mutex
	values []any
}

// Middleware records the panics of next.
func (p *Panics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				p.mu.Lock()
				p.values = append(p.values, v)
				p.mu.Unlock()
				panic(v)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Values returns the panic values recorded so far.
func (p *Panics) Values() []any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]any(nil), p.values...)
}
