// Package requestid gives every HTTP request a random id, returned in the
// X-Request-Id response header and available to logs and error messages, so
// a user's report of a failure can be matched to the server's log.
//
// Ids sent by clients are ignored: a client must not be able to choose the
// id under which the server logs its request.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// Header is the response header carrying the id.
const Header = "X-Request-Id"

type key struct{}

// From returns the id of the request whose context is ctx.
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Middleware assigns the id.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := New()
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, id)))
	})
}

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a fresh random id.
func New() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return encoding.EncodeToString(b[:])
}

// InternalError is the answer to a failure of the server's own, safe to
// show a stranger: code internal and a message naming only the request id
// of ctx, under which the caller logs the detail.
func InternalError(ctx context.Context) *connect.Error {
	if id := From(ctx); id != "" {
		return connect.NewError(connect.CodeInternal, fmt.Errorf("internal error (request id %s)", id))
	}
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}
