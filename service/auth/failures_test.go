package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/interceptors/authn"
)

// TestStoreFailureIsNotABadCredential: when the database fails, the
// verifiers say so with their own error, never authn.ErrInvalid or
// ErrExpired, so the interceptor answers internal instead of telling a
// client with a good credential to log in again.
func TestStoreFailureIsNotABadCredential(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.svc.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: email, Password: pw}))
	if err != nil {
		t.Fatal(err)
	}
	tok := res.Msg.GetAccessToken()
	key := f.apiKey(t, strings.Repeat("k", 43), f.clock.Now().Add(time.Hour))
	cookie := f.cookieLogin(t)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second) // past the state cache
	for name, verify := range map[string]func() (*authn.Principal, error){
		"access_token": func() (*authn.Principal, error) { return f.svc.VerifyToken(ctx, tok) },
		"api_key":      func() (*authn.Principal, error) { return f.svc.VerifyAPIKey(ctx, key) },
		"cookie":       func() (*authn.Principal, error) { return f.svc.VerifySession(ctx, cookie) },
	} {
		p, err := verify()
		if p != nil || err == nil || errors.Is(err, authn.ErrInvalid) || errors.Is(err, authn.ErrExpired) {
			t.Errorf("%s with the database closed: got %v, %v; want an error of its own", name, p, err)
		}
	}
}
