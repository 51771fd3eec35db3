package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
)

// KeyStore holds the token signing keys.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	CreateFirstSigningKey(ctx context.Context, k store.SigningKey) (bool, error)
	RetireSigningKeys(ctx context.Context, keepID string, before, at time.Time) (int, error)
}

// keyReload is how often WatchKeys reloads the signing keys: the bound on
// how long a rotation on another replica can go unseen when its
// announcement does not arrive. The same second as cacheTTL, so that one
// bound holds for every kind of change; a reload reads a handful of rows.
const keyReload = time.Second

// LoadKeys returns the stored signing keys, creating the first one on a
// fresh database. The newest key signs. Of replicas starting together on a
// fresh database, exactly one creates the key, and all read it.
func LoadKeys(ctx context.Context, ks KeyStore) (*token.Keys, error) {
	keys, err := readKeys(ctx, ks)
	if !errors.Is(err, token.ErrNoKeys) {
		return keys, err
	}
	_, sk, err := generateSigningKey()
	if err != nil {
		return nil, err
	}
	if _, err := ks.CreateFirstSigningKey(ctx, sk); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	return readKeys(ctx, ks)
}

// readKeys returns the stored signing keys that still verify (the store
// leaves out those retired already), those retiring later marked so; an
// error wrapping token.ErrNoKeys when there are none.
func readKeys(ctx context.Context, ks KeyStore) (*token.Keys, error) {
	stored, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(stored) == 0 {
		return nil, fmt.Errorf("load signing keys: %w", token.ErrNoKeys)
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
	k, sk, err := generateSigningKey()
	if err != nil {
		return token.Key{}, err
	}
	if err := ks.CreateSigningKey(ctx, sk); err != nil {
		return token.Key{}, fmt.Errorf("store signing key: %w", err)
	}
	return k, nil
}

// generateSigningKey returns a new key and its stored form.
func generateSigningKey() (token.Key, store.SigningKey, error) {
	k, err := token.GenerateKey()
	if err != nil {
		return token.Key{}, store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return k, store.SigningKey{ID: k.ID, Algorithm: "EdDSA", Private: k.Private, Public: k.Public}, nil
}

// keyring keeps the signing keys in step with the database, which every
// replica shares: one reload (or rotation) at a time, and reloads for
// tokens of unknown keys at most once per keyReload.
type keyring struct {
	store KeyStore
	keys  *token.Keys
	now   func() time.Time

	mu sync.Mutex // held by each reload and rotation
	// reloads counts finished reloads; lastMiss is when a token of an
	// unknown key last caused one (mu).
	reloads  atomic.Uint64
	lastMiss time.Time
}

// reload makes the set hold what the database holds. r.mu must be held.
func (r *keyring) reload(ctx context.Context) error {
	fresh, err := readKeys(ctx, r.store)
	if err != nil {
		return err
	}
	r.keys.Replace(fresh)
	r.reloads.Add(1)
	return nil
}

// reloadForUnknownKey reloads the keys for a token whose kid the set
// lacks, which may be a key another replica has just made. A caller that
// waited while another reload ran does not reload again, and such reloads
// happen at most once per keyReload: tokens with made-up kids cannot make
// a replica read the database per request. It reports whether a reload
// finished since the caller's token was refused.
func (r *keyring) reloadForUnknownKey(ctx context.Context) bool {
	seen := r.reloads.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reloads.Load() != seen {
		return true
	}
	now := r.now()
	if now.Sub(r.lastMiss) < keyReload && !now.Before(r.lastMiss) {
		return false
	}
	r.lastMiss = now
	return r.reload(ctx) == nil
}

// ReloadKeys reads the signing keys from the database: a rotation on
// another replica is announced (invalidation.Keys) or found by WatchKeys.
func (s *Service) ReloadKeys(ctx context.Context) error {
	s.ring.mu.Lock()
	defer s.ring.mu.Unlock()
	return s.ring.reload(ctx)
}

// WatchKeys reloads the signing keys every second until ctx is done: the
// backstop for a rotation on another replica whose announcement did not
// arrive (Redis down, or down for the replica that rotated). While
// reloads fail (the database is down) the replica keeps the keys it has;
// that is logged when it starts and when it ends.
func (s *Service) WatchKeys(ctx context.Context) {
	t := time.NewTicker(keyReload)
	defer t.Stop()
	var failing time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.ReloadKeys(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && failing.IsZero():
			failing = time.Now()
			s.log.ErrorContext(ctx, "signing keys cannot be reloaded: this replica keeps the keys it has, and rotations elsewhere reach it once they can", "error", err)
		case err == nil && !failing.IsZero():
			s.log.InfoContext(ctx, "signing keys reload again", "outage", time.Since(failing).Round(time.Millisecond).String())
			failing = time.Time{}
		}
	}
}

// RotateSigningKey makes a new signing key, used for every token from now
// on. The previous keys retire once the tokens they signed have expired
// (access token lifetime plus the verification leeway), or at once with
// revokePrevious (a leaked key); until then they verify and are published
// in the JWKS. Retirement is recorded in the database, so it holds across
// restarts, and the replica reloads its keys from there; the others are
// told to (invalidation.Keys), and find it by themselves within a second.
func (s *Service) RotateSigningKey(ctx context.Context, revokePrevious bool) (string, error) {
	s.ring.mu.Lock()
	defer s.ring.mu.Unlock()
	k, err := newSigningKey(ctx, s.store)
	if err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	now := s.now()
	at := now.Add(s.tokenTTL + 30*time.Second)
	if revokePrevious {
		at = now
	}
	// Every stored key but the new one, whenever it was made.
	everything := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.store.RetireSigningKeys(ctx, k.ID, everything, at); err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	if err := s.ring.reload(ctx); err != nil {
		return "", rpcerr.Internal(ctx, s.log, err)
	}
	s.publish(ctx, invalidation.Event{Kind: invalidation.Keys})
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
