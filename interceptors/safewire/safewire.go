// Package safewire keeps what goes wrong on the wire, before a call reaches
// the interceptor chain, from reaching the caller raw: read timeouts, broken
// chunked bodies, undecodable messages and malformed timeout headers get the
// right Connect code and a generic message, on every protocol, and the
// detail goes to the log.
//
// connect-go reads and decodes a unary request before any interceptor runs,
// and formats those failures itself: a slow body answered `read tcp
// 127.0.0.1:P->127.0.0.1:Q: i/o timeout`, a bad chunk length was a 500
// `unknown`, unmarshal errors named Go types, and a bad Connect-Timeout-Ms
// quoted strconv. Middleware fixes the first two and the last at the HTTP
// layer; Codecs replaces connect-go's protobuf and JSON codecs with ones that
// fail with a generic message.
package safewire

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/requestid"
)

// The refusals callers see.
var (
	errTimeoutHeader = errors.New("invalid timeout header")
	errSlowBody      = errors.New("request body not received in time")
	errBadBody       = errors.New("malformed request body")
	errCanceled      = errors.New("request canceled")
)

// Middleware checks the timeout headers of each RPC before connect-go
// parses them, and makes failures to read a request body Connect errors:
// deadline_exceeded when the body is too slow to arrive, canceled when the
// client went away, invalid_argument when it is malformed (such as a bad
// chunk length). Each is logged at Info with the request id (the client,
// not the server, caused it) and its detail. It must run inside
// requestid.Middleware.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	errw := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if header, value, ok := badTimeout(r.Header); ok {
			log.LogAttrs(r.Context(), slog.LevelInfo, "rpc refused: malformed timeout header",
				slog.String("path", r.URL.Path), slog.String("header", header), slog.String("value", truncate(value)),
				slog.String("request_id", requestid.From(r.Context())))
			_ = errw.Write(w, r, connect.NewError(connect.CodeInvalidArgument, errTimeoutHeader))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &body{ReadCloser: r.Body, ctx: r.Context(), log: log, path: r.URL.Path}
		}
		next.ServeHTTP(w, r)
	})
}

// badTimeout reports the timeout header of r's protocol when it is present
// and malformed: Grpc-Timeout for gRPC and gRPC-Web (1 to 8 digits and a
// unit of H, M, S, m, u or n), Connect-Timeout-Ms otherwise (1 to 10
// digits).
func badTimeout(h http.Header) (header, value string, bad bool) {
	if strings.HasPrefix(h.Get("Content-Type"), "application/grpc") {
		v, ok := h["Grpc-Timeout"]
		if !ok {
			return "", "", false
		}
		if len(v) != 1 || len(v[0]) < 2 || len(v[0]) > 9 || !digits(v[0][:len(v[0])-1]) || !strings.ContainsRune("HMSmun", rune(v[0][len(v[0])-1])) {
			return "Grpc-Timeout", strings.Join(v, ","), true
		}
		return "", "", false
	}
	v, ok := h["Connect-Timeout-Ms"]
	if !ok {
		return "", "", false
	}
	if len(v) != 1 || len(v[0]) < 1 || len(v[0]) > 10 || !digits(v[0]) {
		return "Connect-Timeout-Ms", strings.Join(v, ","), true
	}
	return "", "", false
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate bounds what a client-chosen value adds to a log line.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// body turns read errors into Connect errors, which connect-go passes on
// as they are, and logs their detail once.
type body struct {
	io.ReadCloser
	ctx    context.Context
	log    *slog.Logger
	path   string
	logged bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return n, err // connect-go maps it to resource_exhausted
	}
	var ne net.Error
	code, safe := connect.CodeInvalidArgument, errBadBody
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		code, safe = connect.CodeDeadlineExceeded, errSlowBody
	case errors.Is(err, context.Canceled), b.ctx.Err() != nil:
		code, safe = connect.CodeCanceled, errCanceled
	}
	if !b.logged {
		b.logged = true
		b.log.LogAttrs(b.ctx, slog.LevelInfo, "rpc refused: request body unreadable",
			slog.String("path", b.path), slog.String("code", code.String()), slog.String("error", err.Error()),
			slog.String("request_id", requestid.From(b.ctx)))
	}
	return n, connect.NewError(code, safe)
}
