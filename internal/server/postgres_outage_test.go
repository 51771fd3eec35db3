package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/pgtest"
	"github.com/connectguard/guard/internal/servertest"
)

// TestPostgresOutage runs the server on PostgreSQL through a proxy the
// test can cut, as a database that goes away: while it is gone, a call that
// needs it fails with internal, promptly, naming only the request id, and
// writes nothing; once it is back, the server serves again without a
// restart.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr
	srv := servertest.Start(t, "-db="+u.String())
	alice := srv.CreateUser("alice@example.com", "member")
	notes := srv.Client(goclient.Connect, alice.Token).Notes
	create := func(title string) error {
		// A bound against hanging, not a timing assertion.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: title, Body: "b"}))
		return err
	}
	if err := create("before"); err != nil {
		t.Fatalf("CreateNote before the outage: %v", err)
	}

	p.cut()
	for _, title := range []string{"during 1", "during 2"} {
		err := create(title)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeInternal {
			t.Fatalf("CreateNote with the database gone: %v, want internal", err)
		}
		for _, leak := range []string{"5432", p.addr, "dial", "pgx", "SQLSTATE", "connect:", "tcp"} {
			if strings.Contains(ce.Message(), leak) {
				t.Errorf("error message %q leaks %q", ce.Message(), leak)
			}
		}
		if !strings.Contains(ce.Message(), "request id") {
			t.Errorf("error message %q does not name the request id", ce.Message())
		}
	}

	p.restore()
	var err2 error
	for range 50 { // the pool drops its broken connections as it meets them
		if err2 = create("after"); err2 == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err2 != nil {
		t.Fatalf("CreateNote after the database came back: %v", err2)
	}
	n, err := srv.Store().CountNotes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("notes = %d, want 2 (before and after; none written during the outage)", n)
	}
}

// proxy forwards TCP connections from a loopback port to target until cut.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *proxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
	_, _ = io.Copy(c, s)
	_ = c.Close()
}

// cut closes the listener and every connection: the database is gone.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// restore listens on the same address again.
func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}
