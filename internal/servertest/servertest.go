// Package servertest starts the real Guard server (server.Run, as the
// binary does) on a random loopback port with a temporary SQLite database,
// for tests that call it over the network.
package servertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/server"
	"github.com/connectguard/guard/store"
)

// AdminEmail and AdminPassword are the bootstrap admin's credentials.
const (
	AdminEmail    = "admin@example.com"
	AdminPassword = "correct horse battery staple"
)

// Server is a running server.
type Server struct {
	// URL is the base URL, such as "http://127.0.0.1:40123".
	URL string
	// DB is the database, for tests that assert what was written: a SQLite
	// file of the test's own, or the -db the test gave.
	DB   string
	log  *Log
	t    testing.TB
	http *http.Client
}

// Start runs a server until the test ends. flags are extra command-line
// flags, such as "-cors-origins=https://app.example".
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	return start(t, t.TempDir(), flags)
}

// StartTLS runs a server on HTTPS (-tls-cert, -tls-key) with a
// certificate for 127.0.0.1 made for the test. The clients Server returns
// trust that certificate, and it alone.
func StartTLS(t testing.TB, flags ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool, err := writeCert(certFile, keyFile)
	if err != nil {
		t.Fatalf("make test certificate: %v", err)
	}
	s := start(t, dir, append([]string{"-tls-cert=" + certFile, "-tls-key=" + keyFile}, flags...))
	s.http = goclient.DefaultHTTPClient(s.URL)
	s.http.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
	return s
}

func start(t testing.TB, dir string, flags []string) *Server {
	t.Helper()
	s := &Server{DB: filepath.Join(dir, "guard.db"), log: &Log{}, t: t}
	for _, f := range flags {
		if db, ok := strings.CutPrefix(f, "-db="); ok {
			s.DB = db
		}
	}
	args := append([]string{"-db=" + s.DB, "-log-level=debug"}, flags...)
	env := map[string]string{"GUARD_ADMIN_PASSWORD": AdminPassword, "GUARD_ADMIN_EMAIL": AdminEmail}
	ctx, cancel := context.WithCancel(context.Background())
	url, wait, err := Launch(ctx, args, env, s.log)
	if err != nil {
		cancel()
		t.Fatalf("%v\nlog:\n%s", err, s.log.String())
	}
	s.URL = url
	s.http = goclient.DefaultHTTPClient(url)
	t.Cleanup(func() {
		cancel()
		if err := wait(); err != nil {
			t.Errorf("server.Run: %v", err)
		}
	})
	return s
}

// testParams are the servers' password hashing parameters: argon2id as in
// production, at a cost that keeps the tests fast under the race detector
// (the default costs a quarter of a second a hash there). What the cost
// does not change (salts, the encoding, the same work for unknown emails)
// is the same; internal/password tests the production parameters.
var testParams = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Launch runs the server as the binary does (server.Run) on a random
// loopback port, with args and the environment env, logging to log, until
// ctx is done. It returns the base URL once the server listens, and wait,
// which returns Run's result after ctx is done.
func Launch(ctx context.Context, args []string, env map[string]string, log io.Writer) (url string, wait func() error, err error) {
	args = append([]string{"-addr=127.0.0.1:0"}, args...)
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, args, func(k string) string { return env[k] }, outW, log, server.WithPasswordHasher(password.NewHasher(password.WithParams(testParams))))
		_ = outW.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "guard listening on "); ok {
				addr <- u
			}
		}
		close(addr)
	}()
	select {
	case u, ok := <-addr:
		if !ok {
			return "", nil, fmt.Errorf("server exited before listening: %w", <-done)
		}
		return u, func() error { return <-done }, nil
	case <-time.After(60 * time.Second):
		return "", nil, errors.New("server did not start within 60s")
	}
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string {
	return s.log.String()
}

// Client returns a client of s over protocol p, authenticated with token
// ("" for none).
func (s *Server) Client(p goclient.Protocol, token string) *goclient.Client {
	return goclient.New(s.URL, goclient.WithProtocol(p), goclient.WithToken(token), goclient.WithHTTPClient(s.http))
}

// Login logs in and returns the access token.
func (s *Server) Login(email, password string) string {
	s.t.Helper()
	res, err := s.Client(goclient.Connect, "").Auth.Login(context.Background(),
		connect.NewRequest(&authv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		s.t.Fatalf("login %s: %v", email, err)
	}
	return res.Msg.GetAccessToken()
}

// AdminToken logs the bootstrap admin in.
func (s *Server) AdminToken() string {
	s.t.Helper()
	return s.Login(AdminEmail, AdminPassword)
}

// User is a user created for a test.
type User struct {
	ID, Email, Password, Token string
}

// CreateUser creates a user with roles through AdminService and logs it in.
func (s *Server) CreateUser(email string, roles ...string) User {
	s.t.Helper()
	const pw = "a long test password 1"
	admin := s.Client(goclient.Connect, s.AdminToken())
	res, err := admin.Admin.CreateUser(context.Background(), connect.NewRequest(&adminv1.CreateUserRequest{
		Email: email, Password: pw, Roles: roles,
	}))
	if err != nil {
		s.t.Fatalf("create user %s: %v", email, err)
	}
	return User{ID: res.Msg.GetUser().GetId(), Email: email, Password: pw, Token: s.Login(email, pw)}
}

// Store opens the server's database, for assertions on what was written.
func (s *Server) Store() *store.DB {
	s.t.Helper()
	db, err := store.Open(context.Background(), s.DB)
	if err != nil {
		s.t.Fatalf("open store: %v", err)
	}
	s.t.Cleanup(func() { _ = db.Close() })
	return db
}

// HTTPClient returns a plain HTTP client for raw requests (curl-like).
func (s *Server) HTTPClient() *http.Client {
	return s.http
}
