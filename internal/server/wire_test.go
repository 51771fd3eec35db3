package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/servertest"
)

// wireProtocol is how a raw test call frames its message and reads the
// outcome, for calls no well-behaved client would make.
type wireProtocol struct {
	name        string
	contentType string
	envelope    bool // gRPC and gRPC-Web frame messages: flags, length, data
	h2          bool // gRPC needs HTTP/2
}

var wireProtocols = []wireProtocol{
	{"connect", "application/json", false, false},
	{"grpc", "application/grpc", true, true},
	{"grpcweb", "application/grpc-web+proto", true, false},
}

func frame(msg []byte) []byte {
	var b bytes.Buffer
	b.WriteByte(0)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(msg)))
	b.Write(msg)
	return b.Bytes()
}

// wireOutcome is the code and message of an answer, whichever protocol
// carried it.
type wireOutcome struct {
	code, message, requestID string
}

// readOutcome reads the error from a response in protocol p.
func readOutcome(t *testing.T, p wireProtocol, res *http.Response) wireOutcome {
	t.Helper()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := wireOutcome{requestID: res.Header.Get("X-Request-Id")}
	switch p.name {
	case "connect":
		var e struct{ Code, Message string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("HTTP %d, body %q: %v", res.StatusCode, body, err)
		}
		out.code, out.message = e.Code, e.Message
		return out
	case "grpc":
		status, msg := res.Trailer.Get("Grpc-Status"), res.Trailer.Get("Grpc-Message")
		if status == "" { // trailers-only response
			status, msg = res.Header.Get("Grpc-Status"), res.Header.Get("Grpc-Message")
		}
		out.code, out.message = grpcCode(t, status), unescape(msg)
		return out
	default: // gRPC-Web: the trailers are the last frame of the body
		for len(body) >= 5 {
			flags, n := body[0], binary.BigEndian.Uint32(body[1:5])
			data := body[5 : 5+n]
			body = body[5+n:]
			if flags&0x80 == 0 {
				continue
			}
			h := http.Header{}
			for _, line := range strings.Split(string(data), "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok {
					h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
				}
			}
			out.code, out.message = grpcCode(t, h.Get("Grpc-Status")), unescape(h.Get("Grpc-Message"))
			return out
		}
		// A trailers-only answer carries them as headers.
		out.code, out.message = grpcCode(t, res.Header.Get("Grpc-Status")), unescape(res.Header.Get("Grpc-Message"))
		return out
	}
}

func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

func grpcCode(t *testing.T, status string) string {
	t.Helper()
	n, err := strconv.Atoi(status)
	if err != nil {
		t.Fatalf("grpc-status %q", status)
	}
	return [...]string{"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
		"already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted",
		"out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"}[n]
}

// wireClient returns an HTTP client speaking p's HTTP version.
func wireClient(p wireProtocol) *http.Client {
	var protocols http.Protocols
	if p.h2 {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: &http.Transport{Protocols: &protocols}, Timeout: 30 * time.Second}
}

// leaks are texts that a message a stranger sees must never contain:
// Go types, library prefixes, addresses, parser internals.
var leaks = []string{"*", "notesv1", "authv1", "proto:", "strconv", "tcp", "127.0.0.1", "chunk", "i/o", "syntax"}

func wantSafe(t *testing.T, got wireOutcome, code, message string) {
	t.Helper()
	if got.code != code || got.message != message {
		t.Errorf("got %s %q, want %s %q", got.code, got.message, code, message)
	}
	for _, l := range leaks {
		if strings.Contains(got.message, l) {
			t.Errorf("message %q contains %q", got.message, l)
		}
	}
}

// wantLogged waits for the log line with the request id to show the
// detail the caller was spared.
func wantLogged(t *testing.T, srv *servertest.Server, requestID, detail string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(srv.Logs(), "\n") {
			if strings.Contains(line, requestID) && strings.Contains(line, detail) {
				return
			}
		}
	}
	t.Errorf("no log line with request id %q and %q; log:\n%s", requestID, detail, srv.Logs())
}

// TestWireErrorsAreSafe: failures before the chain (a body that never
// arrives, a broken chunked body, an undecodable message, a malformed
// timeout header) get the right code and a generic message on every
// protocol, and the detail is logged under the request id.
func TestWireErrorsAreSafe(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-read-timeout=1s")
	const proc = "/guard.auth.v1.AuthService/Login"
	for _, p := range wireProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			do := func(t *testing.T, body io.Reader, header http.Header) wireOutcome {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, srv.URL+proc, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header = header
				req.Header.Set("Content-Type", p.contentType)
				res, err := wireClient(p).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return readOutcome(t, p, res)
			}
			t.Run("undecodable_message", func(t *testing.T) {
				t.Parallel()
				msg := []byte(`{"email": 5, "password": [}`)
				want := "unmarshal message: request message is not valid JSON"
				if p.envelope {
					msg = frame([]byte{0xff, 0xff, 0xff}) // not protobuf
					want = "unmarshal message: request message is not valid protobuf"
				}
				wantSafe(t, do(t, bytes.NewReader(msg), http.Header{}), "invalid_argument", want)
			})
			t.Run("malformed_timeout", func(t *testing.T) {
				t.Parallel()
				h := http.Header{"Connect-Timeout-Ms": {"12x"}}
				if p.envelope {
					h = http.Header{"Grpc-Timeout": {"12x"}}
				}
				got := do(t, bytes.NewReader(frameIf(p, []byte(`{}`))), h)
				wantSafe(t, got, "invalid_argument", "invalid timeout header")
				wantLogged(t, srv, got.requestID, "12x")
			})
			t.Run("body_too_slow", func(t *testing.T) {
				t.Parallel()
				pr, pw := io.Pipe()
				defer pw.Close()
				go func() { _, _ = pw.Write([]byte{0, 0, 0}) }() // a start, then nothing
				got := do(t, pr, http.Header{})
				wantSafe(t, got, "deadline_exceeded", "request body not received in time")
				wantLogged(t, srv, got.requestID, "code=deadline_exceeded")
			})
			if p.h2 {
				return // chunked encoding is HTTP/1.1's
			}
			t.Run("broken_chunked_body", func(t *testing.T) {
				t.Parallel()
				conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: guard\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n", proc, p.contentType)
				res, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				got := readOutcome(t, p, res)
				wantSafe(t, got, "invalid_argument", "malformed request body")
				wantLogged(t, srv, got.requestID, "chunk")
			})
		})
	}
}

func frameIf(p wireProtocol, msg []byte) []byte {
	if p.envelope {
		return frame(nil) // an empty LoginRequest
	}
	return msg
}

// TestClientDeadlineIsNotAnError: a deadline the client set and the server
// missed is logged as deadline_exceeded at INFO, not as an ERROR the client
// can produce at will.
func TestClientDeadlineIsNotAnError(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	// A deadline of 0 ms has passed when the handler is reached.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/Login",
		strings.NewReader(`{"email":"x@example.com","password":"some password 1"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connect-Timeout-Ms", "0")
	res, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := readOutcome(t, wireProtocols[0], res)
	if got.code != "deadline_exceeded" {
		t.Fatalf("got %s %q, want deadline_exceeded", got.code, got.message)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logs := srv.Logs()
		var line string
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, got.requestID) && strings.Contains(l, "msg=rpc ") {
				line = l
			}
		}
		if line != "" {
			if !strings.Contains(line, "level=INFO") || !strings.Contains(line, "code=deadline_exceeded") {
				t.Errorf("got access log line %q, want INFO with code=deadline_exceeded", line)
			}
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("got an ERROR line for a client's deadline:\n%s", logs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for request %s:\n%s", got.requestID, logs)
		}
	}
}
