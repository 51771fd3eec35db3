// Package token signs and verifies short-lived Ed25519 (EdDSA) JWT access
// tokens (RFC 9068, typ at+jwt).
//
// Verification accepts only what Sign produces: alg EdDSA, typ at+jwt, a known
// kid, no key-locating headers, the issuer, audience and claims this service
// sets, dates that are JSON numbers, and a lifetime (exp - iat) no longer
// than the configured TTL, so lowering the TTL also ends longer-lived
// tokens issued before. Every refusal is [ErrInvalid] or, for a genuine token past its
// expiry, [ErrExpired], so callers cannot learn which check failed; the one
// refinement, [ErrUnknownKey] (a kid the set lacks), matches ErrInvalid. Verified
// tokens are cached until they expire, because an Ed25519 verification costs
// several times a whole request.
package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

var (
	// ErrInvalid is returned for every refused token that is not merely
	// expired. Its text is exactly "invalid token".
	ErrInvalid = errors.New("invalid token")
	// ErrExpired is returned for an authentic token whose expiry, plus the
	// leeway, has passed. Its text is exactly "token expired".
	ErrExpired = errors.New("token expired")
	// ErrInvalidKey means a Key is incomplete, inconsistent or reuses an ID.
	ErrInvalidKey = errors.New("invalid signing key")
	// ErrNoKeys means a key set was created without keys.
	ErrNoKeys = errors.New("no signing keys")
	// ErrUnknownKey is returned by Verify for a token whose kid names no
	// key of the set: a key another replica has just made, which a reload
	// of the set would bring (Keys.Replace), or a forgery. It matches
	// ErrInvalid (errors.Is) and reads "invalid token" too, so callers
	// that only map ErrInvalid need no change.
	ErrUnknownKey = fmt.Errorf("%w", ErrInvalid)
)

const (
	// typ is the media type of access tokens, RFC 9068 section 2.1.
	typ = "at+jwt"
	// maxTokenLen bounds the input before any parsing; our tokens are well
	// under 1 KiB.
	maxTokenLen = 4096
	// sigLen is the length of a base64url Ed25519 signature (64 bytes).
	sigLen = 86
	// maxKeyIDLen keeps key IDs small enough to sit in every token header.
	maxKeyIDLen = 64
)

// Key is an Ed25519 key pair with the ID that tokens carry as kid.
type Key struct {
	// ID identifies the key in the token header (kid).
	ID string
	// Private signs tokens; it is nil in the keys returned by Keys.Public.
	Private ed25519.PrivateKey
	// Public verifies tokens.
	Public ed25519.PublicKey
}

// GenerateKey returns a new random key whose ID is 16 random bytes,
// base64url-encoded without padding.
func GenerateKey() (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	id, err := randomID()
	if err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	return Key{ID: id, Private: priv, Public: pub}, nil
}

func (k Key) validate() error {
	if k.ID == "" || len(k.ID) > maxKeyIDLen {
		return fmt.Errorf("key id must be 1 to %d bytes: %w", maxKeyIDLen, ErrInvalidKey)
	}
	if len(k.Private) != ed25519.PrivateKeySize || len(k.Public) != ed25519.PublicKeySize {
		return fmt.Errorf("key %q has wrong key sizes: %w", k.ID, ErrInvalidKey)
	}
	if subtle.ConstantTimeCompare(k.Private.Public().(ed25519.PublicKey), k.Public) != 1 {
		return fmt.Errorf("key %q: public key does not match private key: %w", k.ID, ErrInvalidKey)
	}
	return nil
}

// Keys is a set of keys, safe for concurrent use. The most recently added key
// signs; every key in the set verifies. Create it with NewKeys; an empty set
// signs nothing and verifies nothing.
type Keys struct {
	mu      sync.RWMutex
	signing Key
	all     []Key // in the order added
	public  map[string]ed25519.PublicKey
	retire  map[string]time.Time // when a key stops verifying
}

// NewKeys returns a set holding keys; the last one signs. It returns an error
// wrapping [ErrNoKeys] when keys is empty and [ErrInvalidKey] when a key is
// malformed or two keys share an ID.
func NewKeys(keys ...Key) (*Keys, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("new keys: %w", ErrNoKeys)
	}
	k := &Keys{public: make(map[string]ed25519.PublicKey, len(keys))}
	for _, key := range keys {
		if err := k.Add(key); err != nil {
			return nil, fmt.Errorf("new keys: %w", err)
		}
	}
	return k, nil
}

// Add puts key into the set and makes it the signing key, while tokens signed
// by earlier keys keep verifying. It returns an error wrapping
// [ErrInvalidKey] when key is malformed or its ID is already in the set.
// The set keeps its own copy of the key material.
func (k *Keys) Add(key Key) error {
	if err := key.validate(); err != nil {
		return fmt.Errorf("add key: %w", err)
	}
	key = Key{ID: key.ID, Private: slices.Clone(key.Private), Public: slices.Clone(key.Public)}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.public == nil {
		k.public = make(map[string]ed25519.PublicKey)
	}
	if _, dup := k.public[key.ID]; dup {
		return fmt.Errorf("add key: duplicate key id %q: %w", key.ID, ErrInvalidKey)
	}
	k.public[key.ID] = key.Public
	k.all = append(k.all, key)
	k.signing = key
	return nil
}

// Retire makes the key id stop verifying at at (an earlier time set before
// stays). Tokens it signed are refused from then on, cached or not. The
// signing key cannot be retired: add its successor first.
func (k *Keys) Retire(id string, at time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.public[id]; !ok {
		return fmt.Errorf("retire key %q: %w", id, ErrInvalidKey)
	}
	if id == k.signing.ID {
		return fmt.Errorf("retire key %q: it is the signing key: %w", id, ErrInvalidKey)
	}
	if k.retire == nil {
		k.retire = make(map[string]time.Time)
	}
	if prev, ok := k.retire[id]; !ok || at.Before(prev) {
		k.retire[id] = at
	}
	return nil
}

// Replace makes k hold exactly the keys of from, with its signing key and
// its retirements: a reload of the set from storage. Tokens of a key that
// is no longer in the set, or retired in from, stop verifying at once,
// cached ones included.
func (k *Keys) Replace(from *Keys) {
	if k == from {
		return
	}
	from.mu.RLock()
	signing, all := from.signing, slices.Clone(from.all)
	public, retire := maps.Clone(from.public), maps.Clone(from.retire)
	from.mu.RUnlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.signing, k.all, k.public, k.retire = signing, all, public, retire
}

// Public returns the public halves of the keys that still verify at now,
// oldest first, with Private nil, for publishing as a JWKS. The slices are
// copies.
func (k *Keys) Public(now time.Time) []Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Key, 0, len(k.all))
	for _, key := range k.all {
		if k.verifies(key.ID, now) {
			out = append(out, Key{ID: key.ID, Public: slices.Clone(key.Public)})
		}
	}
	return out
}

// verifies reports whether key id is not retired at now. k.mu must be held.
func (k *Keys) verifies(id string, now time.Time) bool {
	at, ok := k.retire[id]
	return !ok || now.Before(at)
}

func (k *Keys) signer() (Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.signing, k.signing.Private != nil
}

// lookup returns the public key id that verifies at now, or ErrUnknownKey
// when the set does not hold id, or ErrInvalid when it is retired.
func (k *Keys) lookup(id string, now time.Time) (ed25519.PublicKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	pub, ok := k.public[id]
	switch {
	case !ok:
		return nil, ErrUnknownKey
	case !k.verifies(id, now):
		return nil, ErrInvalid
	}
	return pub, nil
}

// valid reports whether key id is in the set and not retired at now.
func (k *Keys) valid(id string, now time.Time) bool {
	_, err := k.lookup(id, now)
	return err == nil
}

// Claims are the verified contents of an access token.
type Claims struct {
	// Subject is the user the token was issued to (sub).
	Subject string
	// SessionID is the login session the token belongs to (sid).
	SessionID string
	// ID is the unique token ID (jti), 128 random bits.
	ID string
	// Roles are the roles granted; nil when there are none. Claims returned
	// by Verify may share this slice with the cache and other callers: treat
	// it as read-only.
	Roles []string
	// IssuedAt is when the token was signed (iat and nbf), in UTC at second
	// precision.
	IssuedAt time.Time
	// ExpiresAt is when the token stops being valid (exp), before leeway, in
	// UTC at second precision.
	ExpiresAt time.Time
	// KeyID is the key that signed the token (kid).
	KeyID string
}

// wireClaims is the JSON payload. aud is a single string as we issue it; an
// array in its place fails to decode and the token is refused.
type wireClaims struct {
	Issuer    string       `json:"iss"`
	Audience  string       `json:"aud"`
	Subject   string       `json:"sub"`
	ExpiresAt *numericDate `json:"exp"`
	IssuedAt  *numericDate `json:"iat"`
	NotBefore *numericDate `json:"nbf"`
	ID        string       `json:"jti"`
	SessionID string       `json:"sid"`
	Roles     []string     `json:"roles,omitempty"`
}

// numericDate is a jwt.NumericDate that must be a JSON number, as RFC 7519
// section 2 defines it. jwt.NumericDate alone also takes a string holding
// a number ("exp":"9999999999").
type numericDate struct{ jwt.NumericDate }

var errNotNumber = errors.New("numeric date is not a JSON number")

func newNumericDate(t time.Time) *numericDate {
	return &numericDate{*jwt.NewNumericDate(t)}
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return errNotNumber
	}
	return d.NumericDate.UnmarshalJSON(b)
}

// get returns the date for the jwt parser, which treats nil as absent.
func (d *numericDate) get() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

var errMissingClaim = errors.New("missing required claim")

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.get(), nil }
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.get(), nil }
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.get(), nil }
func (c *wireClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *wireClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}

// Validate is called by the jwt parser after the standard checks.
// exp is required by a parser option; iat and nbf are checked by it only
// when present, so their presence is required here.
func (c *wireClaims) Validate() error {
	if c.Subject == "" || c.SessionID == "" || c.ID == "" || c.IssuedAt == nil || c.NotBefore == nil {
		return errMissingClaim
	}
	return nil
}

// Service signs and verifies access tokens. It is safe for concurrent use.
type Service struct {
	keys     *Keys
	issuer   string
	audience string
	ttl      time.Duration
	leeway   time.Duration
	clock    func() time.Time
	parser   *jwt.Parser
	cache    *otter.Cache[[sha256.Size]byte, cacheEntry] // nil when disabled; see newCache
	stats    *stats.Counter                              // the cache's hits and misses
}

// New returns a Service that signs with the newest key of keys, stamps
// issuer and audience into tokens and requires them exactly on
// verification. A Service with nil keys or an empty issuer or audience is
// unusable: Sign returns an error and Verify returns [ErrInvalid].
func New(keys *Keys, issuer, audience string, opts ...Option) *Service {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	// Tolerance for clock skew never stretches a token's life by more than
	// a fifth: 30 s on the default 15 minutes, 1 s on a 5 s token.
	cfg.leeway = min(cfg.leeway, cfg.ttl/5)
	s := &Service{
		keys:     keys,
		issuer:   issuer,
		audience: audience,
		ttl:      cfg.ttl,
		leeway:   cfg.leeway,
		clock:    cfg.clock,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.leeway),
			jwt.WithStrictDecoding(),
			jwt.WithTimeFunc(cfg.clock),
		),
	}
	if cfg.cacheSize > 0 {
		s.stats = stats.NewCounter()
		s.cache = newCache(cfg.cacheSize, cfg.clock, s.stats)
	}
	return s
}

// CacheStats returns how many lookups of the verified-token cache found
// the token (hits) and how many did not (misses: new tokens, and bad ones,
// which are never cached), since New; zeros when the cache is disabled.
func (s *Service) CacheStats() (hits, misses uint64) {
	if s.stats == nil {
		return 0, 0
	}
	st := s.stats.Snapshot()
	return st.Hits, st.Misses
}

func (s *Service) usable() bool {
	return s.keys != nil && s.issuer != "" && s.audience != ""
}

// Sign issues a token for subject in session sessionID with roles, signed
// by the newest key. The token ID is 128 random bits; iat and nbf are now and
// exp is now plus the TTL, all at second precision. The returned Claims equal
// what Verify returns for the token.
func (s *Service) Sign(subject, sessionID string, roles []string) (token string, c Claims, err error) {
	if !s.usable() {
		return "", Claims{}, errors.New("sign token: service needs keys, an issuer and an audience")
	}
	if subject == "" || sessionID == "" {
		return "", Claims{}, errors.New("sign token: subject and session id are required")
	}
	jti, err := randomID()
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	now := time.Unix(s.clock().Unix(), 0).UTC()
	c = Claims{
		Subject:   subject,
		SessionID: sessionID,
		ID:        jti,
		IssuedAt:  now,
		ExpiresAt: now.Add(s.ttl).Truncate(time.Second),
	}
	if len(roles) > 0 {
		c.Roles = slices.Clone(roles)
	}
	key, ok := s.keys.signer()
	if !ok {
		return "", Claims{}, fmt.Errorf("sign token: %w", ErrNoKeys)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &wireClaims{
		Issuer:    s.issuer,
		Audience:  s.audience,
		Subject:   c.Subject,
		ExpiresAt: newNumericDate(c.ExpiresAt),
		IssuedAt:  newNumericDate(c.IssuedAt),
		NotBefore: newNumericDate(c.IssuedAt),
		ID:        c.ID,
		SessionID: c.SessionID,
		Roles:     c.Roles,
	})
	t.Header["typ"] = typ
	t.Header["kid"] = key.ID
	c.KeyID = key.ID
	token, err = t.SignedString(key.Private)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	return token, c, nil
}

// Verify checks token and returns its claims. It returns [ErrExpired] for an
// authentic token past its expiry plus leeway, [ErrUnknownKey] for one
// whose kid the set does not hold, and [ErrInvalid] for every other
// refusal, never anything more specific. A token over 4096 bytes, or
// not three segments of unpadded base64url, is refused before any decoding.
//
// A token seen before is answered from the cache without verifying the
// signature again, until it expires; the returned Roles are then shared.
func (s *Service) Verify(token string) (Claims, error) {
	if len(token) > maxTokenLen || !s.usable() {
		return Claims{}, ErrInvalid
	}
	var sum [sha256.Size]byte
	if s.cache != nil {
		// Only tokens that passed every check below are cached, so a hit
		// needs none of them again, not even wellFormed.
		sum = hashToken(token)
		if e, ok := s.cache.GetIfPresent(sum); ok {
			now := s.clock()
			if !s.keys.valid(e.claims.KeyID, now) {
				return Claims{}, ErrInvalid // its key was retired since
			}
			// otter stops returning an entry at its deadline; checking
			// again keeps that Verify's own guarantee.
			if !now.Before(e.until) {
				return Claims{}, ErrExpired
			}
			return e.claims, nil
		}
	}
	return s.verify(token, sum)
}

// verify is Verify's work on a token it has not cached: parse, check,
// verify the signature, cache. Its frame is several kilobytes (the JWT
// parser's), so it is a function of its own, never inlined: a cache hit
// does not reserve that stack, which on the small goroutine of an HTTP/2
// stream would grow (a copy of the whole stack) on every call.
//
//go:noinline
func (s *Service) verify(token string, sum [sha256.Size]byte) (Claims, error) {
	if !wellFormed(token) {
		return Claims{}, ErrInvalid
	}

	var w wireClaims
	parsed, err := s.parser.ParseWithClaims(token, &w, s.keyFunc)
	if err != nil {
		switch {
		case onlyExpired(err):
			return Claims{}, ErrExpired
		case errors.Is(err, ErrUnknownKey):
			return Claims{}, ErrUnknownKey
		}
		return Claims{}, ErrInvalid
	}
	// The parser skips iss and aud checks when the expected value is empty;
	// usable rules that out, and comparing again costs nothing.
	if w.Issuer != s.issuer || w.Audience != s.audience {
		return Claims{}, ErrInvalid
	}
	c := Claims{
		Subject:   w.Subject,
		SessionID: w.SessionID,
		ID:        w.ID,
		IssuedAt:  w.IssuedAt.UTC(),
		ExpiresAt: w.ExpiresAt.UTC(),
	}
	// This issuer never signs a token that lives longer than its TTL; one
	// that does was not made by Sign, whoever holds the key. With iat no
	// later than now plus leeway (checked by the parser), this also bounds
	// exp.
	if c.ExpiresAt.Sub(c.IssuedAt) > s.ttl {
		return Claims{}, ErrInvalid
	}
	c.KeyID, _ = parsed.Header["kid"].(string)
	if len(w.Roles) > 0 {
		c.Roles = w.Roles
	}
	if s.cache != nil {
		s.cache.SetIfAbsent(sum, cacheEntry{claims: c, until: c.ExpiresAt.Add(s.leeway)})
	}
	return c, nil
}

// keyFunc runs after the parser has accepted alg. It refuses any header but
// alg, typ and kid: jku, x5u, jwk and x5c would name a key we must never
// fetch or trust, crit would demand extensions we do not implement, and b64
// would change what the signature covers.
func (s *Service) keyFunc(t *jwt.Token) (any, error) {
	for name := range t.Header {
		switch name {
		case "alg", "typ", "kid":
		default:
			return nil, ErrInvalid
		}
	}
	// RFC 8725 section 3.11 and RFC 9068 section 4: compare typ
	// case-insensitively; the "application/" prefix may be present.
	got, _ := t.Header["typ"].(string)
	if !strings.EqualFold(got, typ) && !strings.EqualFold(got, "application/"+typ) {
		return nil, ErrInvalid
	}
	kid, _ := t.Header["kid"].(string)
	return s.keys.lookup(kid, s.clock())
}

// wellFormed does the cheap checks before any decoding: bounded length,
// exactly three non-empty segments of unpadded base64url, and a signature
// segment as long as an Ed25519 signature.
func wellFormed(token string) bool {
	if len(token) > maxTokenLen {
		return false
	}
	dots, start := 0, 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		if base64URL[c] {
			continue
		}
		if c != '.' || i == start || dots == 2 {
			return false
		}
		dots++
		start = i + 1
	}
	return dots == 2 && len(token)-start == sigLen
}

// base64URL marks the bytes of the unpadded base64url alphabet. A table
// keeps wellFormed, which runs on every request, near a byte per cycle.
var base64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// onlyExpired reports whether the only failures in err, a jwt parse error,
// are the expiry itself. The parser checks claims only after the signature,
// so such a token is authentic; a token that also fails another check is
// simply invalid.
func onlyExpired(err error) bool {
	expired := false
	var walk func(error) bool
	walk = func(e error) bool {
		// This walks the error tree itself, one node at a time, so it compares
		// nodes directly (errorlint would have it use errors.Is).
		switch e {
		case jwt.ErrTokenExpired: //nolint:errorlint // see above
			expired = true
			return true
		case jwt.ErrTokenInvalidClaims: //nolint:errorlint // see above
			return true
		}
		switch u := e.(type) { //nolint:errorlint // see above
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if !walk(inner) {
					return false
				}
			}
			return true
		case interface{ Unwrap() error }:
			return walk(u.Unwrap())
		}
		return false
	}
	return walk(err) && expired
}

// hashToken is sha256.Sum256([]byte(token)) without the heap copy that
// conversion makes: wellFormed has bounded the length, so the bytes fit a
// buffer on the stack.
func hashToken(token string) [sha256.Size]byte {
	// The token's own bytes, read in place: no allocation, and no copy
	// into a buffer of maxTokenLen on the stack, which made Verify's frame
	// 4.7 KB and grew the small stacks of HTTP/2 stream goroutines on
	// every call. sha256 only reads its input.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token))) //nolint:gosec // a read-only view of the string's bytes, used and dropped within this call
}

func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// cacheEntry is a verified token's claims and the end of its life.
type cacheEntry struct {
	claims Claims
	until  time.Time // exp plus leeway
}

// newCache returns the verified-token cache, keyed by the SHA-256 of a
// token's text. Its rule: an entry lives until its token's exp plus leeway,
// by clock; at most size entries (briefly a few more while concurrent
// inserts are applied), and when full otter evicts by frequency and
// recency (W-TinyLFU), so tokens in use tend to outlast a burst of new
// ones. Only tokens that passed every check are put in (Verify).
func newCache(size int, clock func() time.Time, rec stats.Recorder) *otter.Cache[[sha256.Size]byte, cacheEntry] {
	// Must cannot fail: size is positive and no weigher is set.
	return otter.Must(&otter.Options[[sha256.Size]byte, cacheEntry]{
		MaximumSize:     size,
		InitialCapacity: min(size, 1024),
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[[sha256.Size]byte, cacheEntry]) time.Duration {
			// At least a nanosecond: otter reads a non-positive duration
			// as "keep the current deadline", which a new entry lacks.
			return max(time.Duration(e.Value.until.UnixNano()-e.SnapshotAtNano), time.Nanosecond)
		}),
		Clock:         otterClock(clock),
		StatsRecorder: rec, // striped atomic counters: no lock, no allocation
		// Maintenance (eviction, removal of expired entries) runs on the
		// caller's goroutine, amortised over reads and writes: no goroutine
		// per write, nothing allocated on a hit. Nothing here calls the
		// cache from a callback, the one way that could deadlock.
		Executor: func(fn func()) { fn() },
	})
}

// otterClock makes the service's clock the cache's, so entries expire by
// it (and by a test's fake one). Tick returns nil: no clean-up goroutine;
// an expired entry is never returned, and the maintenance that writes and
// reads run drops it.
type otterClock func() time.Time

func (c otterClock) NowNano() int64                    { return c().UnixNano() }
func (otterClock) Tick(time.Duration) <-chan time.Time { return nil }
