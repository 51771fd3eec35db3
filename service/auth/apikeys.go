package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// roleScopes are the scopes each role may put on an API key: a key never
// exceeds the rights of the user who made it.
var roleScopes = map[string][]string{
	"admin":  {"admin", "notes:read", "notes:write"},
	"member": {"notes:read", "notes:write"},
	"viewer": {"notes:read"},
}

// allowedScopes returns the scopes the caller may grant: those of its
// roles, and, for a scoped credential, no more than its own scopes.
func allowedScopes(roles []string, scoped bool, own []string) []string {
	var out []string
	for _, r := range roles {
		for _, s := range roleScopes[r] {
			if !slices.Contains(out, s) && (!scoped || slices.Contains(own, s)) {
				out = append(out, s)
			}
		}
	}
	return out
}

// CreateAPIKey implements AuthService. The key is gk_<id>_<secret> with a
// 256-bit secret; only its SHA-256 is stored, and it is shown only here.
//
// A key minted with an API key is that key's child: it expires no later
// than its parent (the ttl asked for is cut), and revoking the parent, or
// anything above it, revokes it too. So a leaked short-lived key cannot be
// turned into a long-lived one.
func (s *Service) CreateAPIKey(ctx context.Context, req *connect.Request[authv1.CreateAPIKeyRequest]) (*connect.Response[authv1.CreateAPIKeyResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	allowed := allowedScopes(p.Roles, p.Scoped, p.Scopes)
	for _, sc := range req.Msg.GetScopes() {
		if !slices.Contains(allowed, sc) {
			return nil, connect.NewError(connect.CodePermissionDenied, fmt.Errorf("scope %q exceeds your rights", sc))
		}
	}
	secret := randomToken()
	sum := sha256.Sum256([]byte(secret))
	now := s.now().UTC().Truncate(time.Microsecond) // the store's precision
	expire := now.Add(req.Msg.GetTtl().AsDuration())
	k, err := s.store.CreateAPIKey(ctx, store.APIKey{
		ID: store.NewID(), UserID: p.UserID, Name: req.Msg.GetName(), Scopes: slices.Sorted(slices.Values(req.Msg.GetScopes())),
		Last4: secret[len(secret)-4:], SecretHash: sum[:], CreateTime: now, ExpireTime: &expire, ParentID: p.KeyID,
	})
	switch {
	case p.KeyID != "" && (errors.Is(err, store.ErrExpired) || errors.Is(err, store.ErrNotFound)):
		// The presenting key was revoked or expired since it was checked.
		return nil, authn.Unauthenticated("credentials expired", `error="invalid_token", error_description="expired"`)
	case err != nil:
		return nil, rpcerr.FromStore(ctx, s.log, "api key", err)
	}
	s.event(ctx, audit.TypeAPIKeyCreated, authv1connect.AuthServiceCreateAPIKeyProcedure, p.UserID, p.UserID, nil,
		fmt.Sprintf("key %s %q, scopes %s, parent %q", k.ID, k.Name, strings.Join(k.Scopes, " "), k.ParentID))
	return connect.NewResponse(&authv1.CreateAPIKeyResponse{
		Key:    APIKeyPrefix + k.ID + "_" + secret,
		ApiKey: apiKeyToProto(k),
	}), nil
}

// ListAPIKeys implements AuthService. A user's session lists all their
// keys; an API key lists only itself and the keys minted through it.
func (s *Service) ListAPIKeys(ctx context.Context, _ *connect.Request[authv1.ListAPIKeysRequest]) (*connect.Response[authv1.ListAPIKeysResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ListAPIKeys(ctx, p.UserID, p.KeyID)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	res := &authv1.ListAPIKeysResponse{ApiKeys: make([]*authv1.APIKey, len(keys))}
	for i, k := range keys {
		res.ApiKeys[i] = apiKeyToProto(k)
	}
	return connect.NewResponse(res), nil
}

// RevokeAPIKey implements AuthService: the key and every key minted
// through it stop working. A user's session may revoke any of their keys;
// an API key only itself and the keys minted through it, so a leaked
// read-only key cannot revoke its owner's other keys. A key the caller may
// not manage answers exactly like a missing one.
func (s *Service) RevokeAPIKey(ctx context.Context, req *connect.Request[authv1.RevokeAPIKeyRequest]) (*connect.Response[authv1.RevokeAPIKeyResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	err = s.store.RevokeAPIKey(ctx, p.UserID, req.Msg.GetId(), p.KeyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("api key not found"))
	}
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	s.InvalidateUser(ctx, p.UserID)
	s.event(ctx, audit.TypeAPIKeyRevoked, authv1connect.AuthServiceRevokeAPIKeyProcedure, p.UserID, p.UserID, nil,
		"key "+req.Msg.GetId()+" and the keys minted through it")
	return connect.NewResponse(&authv1.RevokeAPIKeyResponse{}), nil
}

func apiKeyToProto(k store.APIKey) *authv1.APIKey {
	return &authv1.APIKey{
		Id: k.ID, Name: k.Name, Scopes: slices.Clone(k.Scopes), Last4: k.Last4,
		CreateTime: timestamppb.New(k.CreateTime), ExpireTime: optTime(k.ExpireTime), LastUseTime: optTime(k.LastUseTime),
		ParentId: k.ParentID,
	}
}

func optTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
