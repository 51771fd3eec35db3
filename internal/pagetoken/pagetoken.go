// Package pagetoken makes page tokens that clients cannot forge or alter:
// a cursor plus an HMAC-SHA256 tag bound to the list it belongs to (for
// example one user's notes), so a token from one list or one user is
// worthless for another.
package pagetoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrInvalid is returned for a token that was not made by this codec for
// this scope.
var ErrInvalid = errors.New("invalid page token")

const tagLen = 16

// Codec signs and checks page tokens.
type Codec struct {
	key []byte
}

// New returns a Codec keyed by key (at least 32 random bytes, kept secret
// and stable across restarts so tokens survive them).
func New(key []byte) (*Codec, error) {
	if len(key) < 32 {
		return nil, errors.New("pagetoken: key shorter than 32 bytes")
	}
	return &Codec{key: key}, nil
}

// Encode returns a token carrying cursor, valid only for scope.
func (c *Codec) Encode(scope string, cursor []byte) string {
	buf := make([]byte, 0, len(cursor)+tagLen)
	buf = append(buf, cursor...)
	buf = append(buf, c.tag(scope, cursor)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode returns the cursor of a token made by Encode for scope.
func (c *Codec) Decode(scope, token string) ([]byte, error) {
	// The decoder skips CR and LF even in strict mode; a token must have
	// exactly one spelling.
	if strings.ContainsAny(token, "\r\n") {
		return nil, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < tagLen {
		return nil, ErrInvalid
	}
	cursor, tag := raw[:len(raw)-tagLen], raw[len(raw)-tagLen:]
	if !hmac.Equal(tag, c.tag(scope, cursor)) {
		return nil, ErrInvalid
	}
	return cursor, nil
}

func (c *Codec) tag(scope string, cursor []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(scope))
	m.Write([]byte{0})
	m.Write(cursor)
	return m.Sum(nil)[:tagLen]
}

// Page sizes of every List method.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// PageSize returns the page size to serve for a requested one: the default
// for 0, at most MaxPageSize.
func PageSize(requested int32) int {
	switch {
	case requested <= 0:
		return DefaultPageSize
	case requested > MaxPageSize:
		return MaxPageSize
	default:
		return int(requested)
	}
}
