package main

import (
	"context"

	"github.com/connectguard/guard"
)

// toyTokens is a guard.TokenVerifier for this example only: two fixed
// tokens, alice-token and bob-token, each a member. A real service checks
// a signed token (signature, expiry, audience) or looks a session up, and
// answers guard.ErrInvalid or guard.ErrExpired for a credential the caller
// got wrong; any other error is treated as the server's own failure.
type toyTokens struct{}

// VerifyToken implements guard.TokenVerifier.
func (toyTokens) VerifyToken(_ context.Context, token string) (*guard.Principal, error) {
	switch token {
	case "alice-token":
		return &guard.Principal{UserID: "alice", Roles: []string{"member"}}, nil
	case "bob-token":
		return &guard.Principal{UserID: "bob", Roles: []string{"member"}}, nil
	}
	return nil, guard.ErrInvalid
}
