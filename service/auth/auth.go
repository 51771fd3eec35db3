// Package auth implements guard.auth.v1.AuthService and the verification
// of the credentials it issues (authn.TokenVerifier).
package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Store is the persistence the service needs.
type Store interface {
	UserByEmail(ctx context.Context, email string) (store.User, string, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	CreateSession(ctx context.Context, userID string, expire time.Time) (store.Session, error)
}

// Service implements AuthService. Methods not built yet answer
// unimplemented.
type Service struct {
	authv1connect.UnimplementedAuthServiceHandler

	store      Store
	hasher     *password.Hasher
	tokens     *token.Service
	sessionTTL time.Duration
	log        *slog.Logger
}

var _ authv1connect.AuthServiceHandler = (*Service)(nil)

// New returns a Service. Sessions last sessionTTL from login.
func New(st Store, hasher *password.Hasher, tokens *token.Service, sessionTTL time.Duration, log *slog.Logger) *Service {
	return &Service{store: st, hasher: hasher, tokens: tokens, sessionTTL: sessionTTL, log: log}
}

// errLogin is the one answer to every failed login: unknown email, wrong
// password and disabled account are indistinguishable.
func errLogin() *connect.Error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New("invalid email or password"))
}

// Login implements AuthService.
func (s *Service) Login(ctx context.Context, req *connect.Request[authv1.LoginRequest]) (*connect.Response[authv1.LoginResponse], error) {
	if req.Msg.GetUseCookie() {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("cookie sessions are not available yet"))
	}
	u, hash, err := s.store.UserByEmail(ctx, req.Msg.GetEmail())
	if errors.Is(err, store.ErrNotFound) {
		// Same work as a real check, so timing does not reveal the account.
		s.hasher.VerifyDummy(ctx, req.Msg.GetPassword())
		return nil, errLogin()
	}
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	ok, _, err := s.hasher.Verify(ctx, req.Msg.GetPassword(), hash)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, fmt.Errorf("verify password of user %s: %w", u.ID, err))
	}
	if !ok || u.Disabled {
		return nil, errLogin()
	}
	sess, err := s.store.CreateSession(ctx, u.ID, time.Now().Add(s.sessionTTL))
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	tok, claims, err := s.tokens.Sign(u.ID, sess.ID, u.Roles)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	return connect.NewResponse(&authv1.LoginResponse{
		AccessToken:           tok,
		AccessTokenExpireTime: timestamppb.New(claims.ExpiresAt),
		User:                  UserToProto(u),
	}), nil
}

// WhoAmI implements AuthService.
func (s *Service) WhoAmI(ctx context.Context, _ *connect.Request[authv1.WhoAmIRequest]) (*connect.Response[authv1.WhoAmIResponse], error) {
	p, ok := authn.PrincipalFrom(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("authentication required"))
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	return connect.NewResponse(&authv1.WhoAmIResponse{
		User:       UserToProto(u),
		AuthMethod: authMethod(p.Method),
		Scopes:     slices.Clone(p.Scopes),
	}), nil
}

// VerifyToken implements authn.TokenVerifier for access tokens.
func (s *Service) VerifyToken(_ context.Context, tok string) (*authn.Principal, error) {
	c, err := s.tokens.Verify(tok)
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, authn.ErrExpired
	case err != nil:
		return nil, err
	}
	return &authn.Principal{
		UserID:    c.Subject,
		Roles:     c.Roles,
		Method:    authn.MethodAccessToken,
		SessionID: c.SessionID,
	}, nil
}

func authMethod(m authn.Method) authv1.AuthMethod {
	switch m {
	case authn.MethodAccessToken:
		return authv1.AuthMethod_AUTH_METHOD_ACCESS_TOKEN
	case authn.MethodAPIKey:
		return authv1.AuthMethod_AUTH_METHOD_API_KEY
	case authn.MethodSessionCookie:
		return authv1.AuthMethod_AUTH_METHOD_SESSION_COOKIE
	default:
		return authv1.AuthMethod_AUTH_METHOD_UNSPECIFIED
	}
}

// UserToProto converts a stored user for the API.
func UserToProto(u store.User) *authv1.User {
	return &authv1.User{
		Id:         u.ID,
		Email:      u.Email,
		Roles:      slices.Clone(u.Roles),
		Disabled:   u.Disabled,
		CreateTime: timestamppb.New(u.CreateTime),
	}
}

// KeyStore holds the token signing keys.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
}

// LoadKeys returns the stored signing keys, creating the first one on a
// fresh database. The newest key signs.
func LoadKeys(ctx context.Context, ks KeyStore) (*token.Keys, error) {
	stored, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(stored) == 0 {
		k, err := token.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		sk := store.SigningKey{ID: k.ID, Algorithm: "EdDSA", Private: k.Private, Public: k.Public}
		if err := ks.CreateSigningKey(ctx, sk); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		return token.NewKeys(k)
	}
	keys := make([]token.Key, 0, len(stored))
	// Oldest first, so the newest is added last and signs.
	for _, sk := range slices.Backward(stored) {
		if sk.Algorithm != "EdDSA" || len(sk.Private) != ed25519.PrivateKeySize || len(sk.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("signing key %s: unsupported or corrupt", sk.ID)
		}
		keys = append(keys, token.Key{ID: sk.ID, Private: ed25519.PrivateKey(sk.Private), Public: ed25519.PublicKey(sk.Public)})
	}
	return token.NewKeys(keys...)
}
