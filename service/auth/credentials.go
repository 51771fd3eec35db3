package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
	"github.com/maypok86/otter/v2"
)

// A credential's state (session revoked? user disabled? roles?) is read
// from the database at most once per cacheTTL per credential, so the
// per-request revocation check is usually a map read. Changes (logout,
// password change, role change, disabling, key revocation, a reused
// refresh token) drop the cached state at once in the replica that made
// them, and in the others as soon as they are told (WithPublisher,
// invalidation); without the message, cacheTTL after the change.
const cacheTTL = time.Second

// touchEvery bounds how often last-use times are written: idle timeouts
// and "last used" are accurate to this.
const touchEvery = time.Minute

// credState is what the database said about one credential.
type credState struct {
	found     bool
	userID    string
	sessionID string
	roles     []string
	disabled  bool
	revoked   bool
	expire    time.Time // zero: never
	lastSeen  time.Time
	scopes    []string // API keys
}

// stateCache holds credStates by credential. Its rule: an entry lives
// cacheTTL from its load (an update keeps that deadline); at most
// maxEntries (briefly a few more while concurrent inserts are applied),
// and when full otter evicts by frequency and recency (W-TinyLFU);
// invalidateUser drops every entry of a user at once. It
// stores values, never pointers: a reader gets its own copy, and update
// writes a new value through the cache, so no request writes memory
// another is reading.
type stateCache struct {
	entries *otter.Cache[credKey, credState]
	// mu orders insertions against invalidations: get holds it shared
	// while it checks gen and inserts, invalidateUser exclusively while it
	// bumps gen and drops the user's entries.
	mu sync.RWMutex
	// gen counts invalidations. A state loaded while one happened may
	// predate it, so it is used for that request but not cached: else a
	// credential revoked during the read would work on for cacheTTL.
	gen atomic.Uint64
}

// credKey names a cached credential without building a string per request:
// a session by id, a cookie by its hash, an API key by id and secret hash.
type credKey struct {
	kind byte // 's' session, 'c' cookie, 'k' API key
	id   string
	hash [sha256.Size]byte
}

func newStateCache(maxEntries int, now func() time.Time) *stateCache {
	return &stateCache{entries: otter.Must(&otter.Options[credKey, credState]{
		MaximumSize:      maxEntries,
		ExpiryCalculator: otter.ExpiryCreating[credKey, credState](cacheTTL),
		Clock:            otterClock(now),
		// Maintenance (eviction, removal of expired entries) runs on the
		// caller's goroutine, amortised over reads and writes: no goroutine
		// per write. Nothing here calls the cache from a callback, the
		// one way that could deadlock.
		Executor: func(fn func()) { fn() },
	})}
}

// otterClock makes the service's clock the cache's, so entries expire by
// it (and by a test's fake one). Tick returns nil: no clean-up goroutine;
// an expired entry is never returned, and the maintenance that writes and
// reads run drops it.
type otterClock func() time.Time

func (c otterClock) NowNano() int64                    { return c().UnixNano() }
func (otterClock) Tick(time.Duration) <-chan time.Time { return nil }

// get returns the state cached under key, loading it when absent or
// stale. Load errors and credentials not found are returned and not
// cached: a flood of bad credentials cannot fill the cache, and a cache
// hit never answers for a credential nobody proved they hold.
func (c *stateCache) get(key credKey, load func() (credState, error)) (credState, error) {
	if st, ok := c.entries.GetIfPresent(key); ok {
		return st, nil
	}
	gen := c.gen.Load()
	st, err := load()
	if err != nil {
		return credState{}, err
	}
	if !st.found {
		return st, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.gen.Load() == gen {
		c.entries.Set(key, st)
	}
	return st, nil
}

// update applies f to a copy of the state cached under key, if it is
// still there, and stores the result in its place (after a write through
// this process). The entry keeps its deadline.
func (c *stateCache) update(key credKey, f func(*credState)) {
	c.entries.ComputeIfPresent(key, func(st credState) (credState, otter.ComputeOp) {
		f(&st)
		return st, otter.WriteOp
	})
}

// invalidateUser drops every cached credential of userID.
func (c *stateCache) invalidateUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for k, st := range c.entries.All() {
		if st.userID == userID {
			c.entries.Invalidate(k)
		}
	}
}

// invalidateAll drops every cached credential.
func (c *stateCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	c.entries.InvalidateAll()
}

// Unlock lifts every login lockout of the account email (see
// lockout.Store.Unlock).
func (s *Service) Unlock(ctx context.Context, email string) error {
	return s.lockout.Unlock(ctx, email)
}

// InvalidateUser makes the next request of any of userID's credentials,
// on every replica, re-read its state: call it after changing the user's
// roles, password or status.
func (s *Service) InvalidateUser(ctx context.Context, userID string) {
	s.cache.invalidateUser(userID)
	s.publish(ctx, invalidation.Event{Kind: invalidation.User, UserID: userID})
}

// publish tells the other replicas of a change, if there are any to
// tell. The change is committed already: the caller's cancellation does
// not stop the message. A failure is the publisher's to log (once per
// outage); the others' cacheTTL and key reload cover what they miss.
func (s *Service) publish(ctx context.Context, e invalidation.Event) {
	if s.publisher != nil {
		_ = s.publisher.Publish(context.WithoutCancel(ctx), e)
	}
}

// Apply implements invalidation.Handler: a change another replica made.
func (s *Service) Apply(ctx context.Context, e invalidation.Event) {
	switch e.Kind {
	case invalidation.User:
		s.cache.invalidateUser(e.UserID)
	case invalidation.Keys:
		if err := s.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reload signing keys", "error", err)
		}
	}
}

// Resync implements invalidation.Handler: changes may have been missed,
// so every cached credential state is dropped and the keys reloaded.
func (s *Service) Resync(ctx context.Context) {
	s.cache.invalidateAll()
	if err := s.ReloadKeys(ctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "reload signing keys", "error", err)
	}
}

// VerifyToken implements authn.TokenVerifier for access tokens: the
// signature (cached per token until it expires), then the session and the
// user's current state (cached at most cacheTTL). Roles come from the
// database, not the token, so role changes apply to the next request.
func (s *Service) VerifyToken(ctx context.Context, tok string) (*authn.Principal, error) {
	c, err := s.tokens.Verify(tok)
	if errors.Is(err, token.ErrUnknownKey) && s.ring.reloadForUnknownKey(ctx) {
		c, err = s.tokens.Verify(tok)
	}
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, authn.ErrExpired
	case err != nil:
		return nil, authn.ErrInvalid
	}
	st, err := s.sessionState(ctx, c.SessionID)
	if err != nil {
		return nil, err
	}
	if err := s.usable(st); err != nil {
		return nil, err
	}
	if st.userID != c.Subject {
		return nil, authn.ErrInvalid
	}
	return &authn.Principal{UserID: st.userID, Roles: st.roles, Method: authn.MethodAccessToken, SessionID: st.sessionID}, nil
}

// VerifySession implements authn.SessionVerifier for the session cookie.
func (s *Service) VerifySession(ctx context.Context, cookie string) (*authn.Principal, error) {
	hash := sha256.Sum256([]byte(cookie))
	key := credKey{kind: 'c', hash: hash}
	st, err := s.cache.get(key, func() (credState, error) {
		sess, err := s.store.SessionByCookie(ctx, hash[:])
		if errors.Is(err, store.ErrNotFound) {
			return credState{}, nil
		}
		if err != nil {
			return credState{}, err
		}
		return s.loadSession(ctx, sess.ID)
	})
	if err != nil {
		return nil, err
	}
	if err := s.usable(st); err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(st.lastSeen) > s.idleTimeout {
		return nil, authn.ErrExpired
	}
	if now.Sub(st.lastSeen) > touchEvery {
		if err := s.store.TouchSession(ctx, st.sessionID, now); err != nil {
			return nil, err
		}
		s.cache.update(key, func(e *credState) { e.lastSeen = now })
	}
	return &authn.Principal{UserID: st.userID, Roles: st.roles, Method: authn.MethodSessionCookie, SessionID: st.sessionID}, nil
}

// apiKeyPattern: gk_<26 base32 id>_<43 base64url secret>.
const (
	APIKeyPrefix = "gk_"
	apiKeyIDLen  = 26
	apiSecretLen = 43
)

// VerifyAPIKey implements authn.APIKeyVerifier. A malformed key, an
// unknown id and a wrong secret are refused alike, and the last two after
// the same work: the state is cached under the id and the secret's hash
// together, so only the exact key ever hits the cache, and a miss reads the
// database by id and hash in one lookup that finds nothing in either case
// (store.APIKeyState). Whether an id exists, or was used lately, does not
// show in the response time.
func (s *Service) VerifyAPIKey(ctx context.Context, key string) (*authn.Principal, error) {
	id, secret, ok := parseAPIKey(key)
	if !ok {
		return nil, authn.ErrInvalid
	}
	sum := sha256.Sum256([]byte(secret))
	cacheKey := credKey{kind: 'k', id: id, hash: sum}
	st, err := s.cache.get(cacheKey, func() (credState, error) {
		ks, err := s.store.APIKeyState(ctx, id, sum[:])
		if errors.Is(err, store.ErrNotFound) {
			return credState{}, nil
		}
		if err != nil {
			return credState{}, err
		}
		st := credState{
			found: true, userID: ks.Key.UserID, roles: ks.Roles, disabled: ks.Disabled,
			revoked: ks.Key.RevokeTime != nil, scopes: ks.Key.Scopes,
		}
		if ks.Key.ExpireTime != nil {
			st.expire = *ks.Key.ExpireTime
		}
		if ks.Key.LastUseTime != nil {
			st.lastSeen = *ks.Key.LastUseTime
		}
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.usable(st); err != nil {
		return nil, err
	}
	if now := s.now(); now.Sub(st.lastSeen) > touchEvery {
		if err := s.store.TouchAPIKey(ctx, id, now); err != nil {
			return nil, err
		}
		s.cache.update(cacheKey, func(e *credState) { e.lastSeen = now })
	}
	return &authn.Principal{UserID: st.userID, Roles: st.roles, Scoped: true, Scopes: st.scopes, Method: authn.MethodAPIKey, KeyID: id}, nil
}

// parseAPIKey splits gk_<id>_<secret> by position: it checks the prefix,
// the length and the separator only; the store lookup by id and secret
// hash does the rest.
func parseAPIKey(key string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(rest) != apiKeyIDLen+1+apiSecretLen || rest[apiKeyIDLen] != '_' {
		return "", "", false
	}
	return rest[:apiKeyIDLen], rest[apiKeyIDLen+1:], true
}

// refreshTokenLen is the length of what issue hands out: refreshPrefix and
// randomToken's 32 bytes in unpadded base64url (43 characters).
const refreshTokenLen = len(refreshPrefix) + 43

// parseRefreshToken reports whether s has exactly the shape of a refresh
// token this server issues, so that anything else is refused before it is
// hashed and looked up. The length is checked before any decoding. Strict
// decoding refuses a second spelling of the same bytes (non-zero trailing
// bits); the decoder skips CR and LF, but 43 characters with one of them
// hold at most 31 bytes, so such a token is refused too.
func parseRefreshToken(s string) (ok bool) {
	rest, ok := strings.CutPrefix(s, refreshPrefix)
	if !ok || len(s) != refreshTokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == 32
}

// usable refuses revoked, expired and disabled credentials.
func (s *Service) usable(st credState) error {
	switch {
	case !st.found, st.revoked, st.disabled:
		return authn.ErrInvalid
	case !st.expire.IsZero() && !s.now().Before(st.expire):
		return authn.ErrExpired
	}
	return nil
}

func (s *Service) sessionState(ctx context.Context, sessionID string) (credState, error) {
	return s.cache.get(credKey{kind: 's', id: sessionID}, func() (credState, error) { return s.loadSession(ctx, sessionID) })
}

func (s *Service) loadSession(ctx context.Context, sessionID string) (credState, error) {
	ss, err := s.store.SessionState(ctx, sessionID)
	if errors.Is(err, store.ErrNotFound) {
		return credState{}, nil
	}
	if err != nil {
		return credState{}, err
	}
	return credState{
		found: true, userID: ss.Session.UserID, sessionID: ss.Session.ID, roles: ss.Roles,
		disabled: ss.Disabled, revoked: ss.Session.RevokeTime != nil,
		expire: ss.Session.ExpireTime, lastSeen: ss.Session.LastSeenTime,
	}, nil
}
