package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
)

// KeyStore holds the token signing keys.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	RetireSigningKeys(ctx context.Context, keepID string, before, at time.Time) (int, error)
}

// LoadKeys returns the stored signing keys, creating the first one on a
// fresh database. The newest key signs.
func LoadKeys(ctx context.Context, ks KeyStore) (*token.Keys, error) {
	stored, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(stored) == 0 {
		k, err := newSigningKey(ctx, ks)
		if err != nil {
			return nil, err
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
	set, err := token.NewKeys(keys...)
	if err != nil {
		return nil, err
	}
	// Retirements scheduled before a restart still apply.
	for _, sk := range stored[1:] {
		if sk.RetireTime != nil {
			if err := set.Retire(sk.ID, *sk.RetireTime); err != nil {
				return nil, err
			}
		}
	}
	return set, nil
}

func newSigningKey(ctx context.Context, ks KeyStore) (token.Key, error) {
	k, err := token.GenerateKey()
	if err != nil {
		return token.Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	sk := store.SigningKey{ID: k.ID, Algorithm: "EdDSA", Private: k.Private, Public: k.Public}
	if err := ks.CreateSigningKey(ctx, sk); err != nil {
		return token.Key{}, fmt.Errorf("store signing key: %w", err)
	}
	return k, nil
}

// RotateSigningKey makes a new signing key, used for every token from now
// on. The previous keys retire once the tokens they signed have expired
// (access token lifetime plus the verification leeway), or at once with
// revokePrevious (a leaked key); until then they verify and are published
// in the JWKS. Retirement is recorded in the database, so it holds across
// restarts.
func (s *Service) RotateSigningKey(ctx context.Context, revokePrevious bool) (string, error) {
	previous := s.keys.Public(s.now())
	k, err := newSigningKey(ctx, s.store)
	if err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	if err := s.keys.Add(k); err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	now := s.now()
	at := now.Add(s.tokenTTL + 30*time.Second)
	if revokePrevious {
		at = now
	}
	for _, p := range previous {
		if err := s.keys.Retire(p.ID, at); err != nil {
			return "", rpcerr.Internal(ctx, s.log, err)
		}
	}
	// Every stored key but the new one, whenever it was made.
	everything := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.store.RetireSigningKeys(ctx, k.ID, everything, at); err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "signing key rotated", "kid", k.ID, "previous_retire_time", at)
	return k.ID, nil
}

// JWKSHandler serves the public signing keys as a JSON Web Key Set
// (RFC 7517, OKP keys per RFC 8037), for other services that verify
// Guard's access tokens.
func (s *Service) JWKSHandler() http.Handler {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pub := s.keys.Public(s.now())
		set := struct {
			Keys []jwk `json:"keys"`
		}{Keys: make([]jwk, 0, len(pub))}
		for _, k := range slices.Backward(pub) { // newest first
			set.Keys = append(set.Keys, jwk{
				Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public),
				Kid: k.ID, Alg: "EdDSA", Use: "sig",
			})
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_ = json.NewEncoder(w).Encode(set)
	})
}
