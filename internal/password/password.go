// Package password hashes and verifies user passwords with argon2id and
// enforces the password policy.
//
// Hashes are PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) that
// carry their own parameters, so the parameters can be raised later: Verify
// reports when a stored hash is weaker than the current parameters and should
// be replaced. Every argon2id computation takes a slot from a semaphore, so a
// burst of logins costs bounded memory instead of one 19 MiB allocation per
// request.
//
// The policy ([Check]) follows NIST SP 800-63B: length limits, and a
// strength estimate (zxcvbn, with its dictionaries of breached passwords,
// words and names, and the user's own email as one more) instead of
// composition rules. A refusal says why: too common, too similar to the
// email, too predictable, or too easy to guess.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
	"golang.org/x/crypto/argon2"
)

// Policy limits. Lengths are counted in runes.
const (
	// MinLength is the shortest password Check accepts, in runes.
	MinLength = 8
	// MaxLength is the longest password Check and Hash accept, in runes.
	MaxLength = 128
	// maxBytes bounds the byte length: MaxLength runes of at most 4 bytes.
	// Comparing it first rejects huge input without reading it.
	maxBytes = MaxLength * utf8.UTFMax
)

// Bounds on parameters, both for the Hasher's own and for those read from an
// encoded hash. A planted hash with absurd parameters must not turn one login
// into gigabytes of memory or minutes of CPU.
const (
	maxMemory  = 1 << 20 // KiB, 1 GiB
	maxTime    = 100
	maxThreads = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
	// maxEncodedLen is well above the longest encoding the bounds allow
	// (about 300 bytes) and stops a huge string before it is split.
	maxEncodedLen = 512
)

var (
	// ErrTooShort means the password has fewer than MinLength runes.
	ErrTooShort = errors.New("password too short")
	// ErrTooLong means the password has more than MaxLength runes or more
	// than MaxLength*4 bytes.
	ErrTooLong = errors.New("password too long")
	// ErrInvalid means the password is not valid UTF-8.
	ErrInvalid = errors.New("password is not valid utf-8")
	// ErrCommon means the password is mostly a common password.
	ErrCommon = errors.New("password is too common")
	// ErrSimilar means the password is built from the user's own details,
	// such as the email.
	ErrSimilar = errors.New("password is too similar to your email")
	// ErrPredictable means the password is mostly repeats, sequences,
	// keyboard patterns or dates.
	ErrPredictable = errors.New("password is too predictable: repeats, sequences, keyboard patterns or dates")
	// ErrWeak means the password is too easy to guess for any other reason.
	ErrWeak = errors.New("password is too easy to guess: use a few uncommon words or a longer password")
	// ErrMalformedHash means an encoded hash could not be parsed or carries
	// parameters outside the accepted bounds.
	ErrMalformedHash = errors.New("malformed password hash")
	// ErrInvalidParams means the Hasher was configured with parameters
	// outside the bounds documented on Params.
	ErrInvalidParams = errors.New("invalid argon2id parameters")
)

// Params are the argon2id cost parameters.
//
// Accepted bounds: Memory from 8*Threads to 1048576 KiB (1 GiB), Time from 1
// to 100, Threads from 1 to 64, SaltLen from 8 to 64 bytes, KeyLen from 16 to
// 128 bytes. Encoded hashes outside these bounds are malformed.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32
}

// DefaultParams returns the OWASP recommendation for argon2id: 19 MiB of
// memory, 2 passes, 1 thread, a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads,
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory,
		p.Time < 1 || p.Time > maxTime,
		p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen,
		p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return ErrInvalidParams
	}
	return nil
}

// weakerThan reports whether any cost parameter of p is below that of q.
func (p Params) weakerThan(q Params) bool {
	return p.Memory < q.Memory || p.Time < q.Time || p.Threads < q.Threads ||
		p.SaltLen < q.SaltLen || p.KeyLen < q.KeyLen
}

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use; at most the configured number of computations run at once.
type Hasher struct {
	params    Params
	paramsErr error
	sem       chan struct{}

	dummyOnce sync.Once
	dummy     string
}

// NewHasher returns a Hasher configured by opts. Invalid parameters are
// reported by Hash as [ErrInvalidParams] rather than here, so that a Hasher
// is always usable as a value.
func NewHasher(opts ...Option) *Hasher {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	n := max(cfg.maxConcurrent, 1)
	return &Hasher{
		params:    cfg.params,
		paramsErr: cfg.params.validate(),
		sem:       make(chan struct{}, n),
	}
}

// Hash derives an argon2id hash of password with a fresh random salt and
// returns it as a PHC string. It returns [ErrTooLong] before any hashing for a
// password over MaxLength runes, and an error wrapping ctx.Err() when ctx ends
// while waiting for a slot. Hash does not apply the policy; call [Check] first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if tooLong(password) {
		return "", fmt.Errorf("hash password: %w", ErrTooLong)
	}
	if h.paramsErr != nil {
		return "", fmt.Errorf("hash password: %w", h.paramsErr)
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches the encoded hash, comparing in
// constant time. When it matches and the encoded parameters are weaker than
// the Hasher's, rehash is true and the caller should store a fresh Hash.
// A malformed encoding, or one with parameters outside the bounds on
// [Params], returns an error wrapping [ErrMalformedHash].
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	if tooLong(password) {
		// Hash never stores such a password, so it cannot match.
		return false, false, fmt.Errorf("verify password: %w", ErrTooLong)
	}
	got, err := h.derive(ctx, password, salt, p)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p.weakerThan(h.params), nil
}

// VerifyDummy does the work of a Verify against a hash with the Hasher's
// parameters and discards the result. Call it when the account does not
// exist, so response time does not reveal which accounts do.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) {
	h.dummyOnce.Do(func() {
		p := h.params
		if p.validate() != nil {
			p = DefaultParams()
		}
		// Random bytes in place of a derived key cost Verify the same work
		// as a real hash and spare one argon2id run.
		b := make([]byte, p.SaltLen+p.KeyLen)
		_, _ = rand.Read(b)
		h.dummy = encode(p, b[:p.SaltLen], b[p.SaltLen:])
	})
	_, _, _ = h.Verify(ctx, password, h.dummy)
}

// derive runs argon2id while holding a semaphore slot.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for hash slot: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	// select picks at random when both cases are ready; checking again makes
	// an already ended context fail every time instead of half the time.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wait for hash slot: %w", err)
	}
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), nil
}

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// decode parses a PHC argon2id string strictly and checks its parameters
// against the bounds before anything is allocated for hashing.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	if len(encoded) > maxEncodedLen {
		return p, nil, nil, ErrMalformedHash
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" ||
		parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformedHash
	}
	var m, t, par uint64
	for i, field := range strings.Split(parts[3], ",") {
		name, value, found := strings.Cut(field, "=")
		if !found || i > 2 || name != [...]string{"m", "t", "p"}[i] {
			return p, nil, nil, ErrMalformedHash
		}
		n, perr := strconv.ParseUint(value, 10, 32)
		if perr != nil {
			return p, nil, nil, ErrMalformedHash
		}
		switch i {
		case 0:
			m = n
		case 1:
			t = n
		case 2:
			par = n
		}
	}
	if par < 1 || par > maxThreads || t < 1 || t > maxTime || m < 8*par || m > maxMemory {
		return p, nil, nil, ErrMalformedHash
	}
	enc := base64.RawStdEncoding.Strict()
	if salt, err = enc.DecodeString(parts[4]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	if key, err = enc.DecodeString(parts[5]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	p = Params{
		Memory:  uint32(m),
		Time:    uint32(t),
		Threads: uint8(par),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	if p.validate() != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}

// tooLong checks bytes first so that huge input costs nothing.
func tooLong(password string) bool {
	return len(password) > maxBytes || utf8.RuneCountInString(password) > MaxLength
}

// maxCheckedRunes bounds what the strength estimate reads: its cost grows
// with the square of the length (a 128-rune string of kana took 190 ms, 64
// runes 20 ms). A password whose first 64 runes are strong is strong.
const maxCheckedRunes = 64

// minScore is the zxcvbn score a password needs: 3 means about 10^8
// guesses or more, "safely unguessable" against online attacks and costly
// offline against argon2id.
const minScore = 3

// Check applies the password policy: valid UTF-8, MinLength to MaxLength
// runes, and hard enough to guess by the zxcvbn strength estimate, with its
// dictionaries of common passwords, words and names, and with userInputs
// (such as the account's email) as one more dictionary. Any Unicode is
// accepted. It returns [ErrTooLong], [ErrInvalid] or [ErrTooShort],
// checked in that order so oversized input is rejected before it is read;
// then, for a weak password, [ErrSimilar], [ErrCommon], [ErrPredictable] or
// [ErrWeak], whose texts say why, for the user to read.
func Check(password string, userInputs ...string) error {
	if len(password) > maxBytes {
		return ErrTooLong
	}
	if !utf8.ValidString(password) {
		return ErrInvalid
	}
	n := utf8.RuneCountInString(password)
	if n < MinLength {
		return ErrTooShort
	}
	if n > MaxLength {
		return ErrTooLong
	}
	if n > maxCheckedRunes {
		password = string([]rune(password)[:maxCheckedRunes])
	}
	// The estimate's pattern matchers work on bytes and miss repeats of
	// multibyte runes (64 times the same emoji scores as strong).
	if distinctRunes(password) < minDistinctRunes {
		return ErrPredictable
	}
	words := inputs(userInputs)
	res := zxcvbn.PasswordStrength(password, words)
	if res.Score >= minScore {
		return nil
	}
	return weakness(password, words, res.Sequence)
}

// minDistinctRunes is the fewest different characters a password may have.
const minDistinctRunes = 5

func distinctRunes(s string) int {
	seen := make(map[rune]struct{}, minDistinctRunes)
	for _, r := range s {
		seen[r] = struct{}{}
	}
	return len(seen)
}

// inputs returns the user's own words for the estimate: each input, and
// for an email also its local part and the labels of its domain.
func inputs(userInputs []string) []string {
	var out []string
	for _, in := range userInputs {
		in = strings.ToLower(strings.TrimSpace(in))
		if in == "" {
			continue
		}
		out = append(out, in)
		local, domain, _ := strings.Cut(in, "@")
		out = append(out, local)
		// The words of the local part (alice.smith, bob_jones+news) and
		// the labels of the domain.
		out = append(out, strings.FieldsFunc(local+"."+domain, func(r rune) bool {
			return r == '.' || r == '_' || r == '-' || r == '+'
		})...)
	}
	return out
}

// weakness names what makes a weak password weak, from the matches that
// the estimate found cheapest to guess it by: the user's own words first,
// then a common password, then patterns covering most of it.
func weakness(password string, userWords []string, seq []*match.Match) error {
	// The estimate may have found a cheaper reading than the user's own
	// word ("smith" is also the commonest surname); say so all the same.
	lower := strings.ToLower(password)
	for _, w := range userWords {
		if utf8.RuneCountInString(w) >= 3 && strings.Contains(lower, w) {
			return ErrSimilar
		}
	}
	size := len(password) // the matches' tokens are counted in bytes too
	covered := map[string]int{}
	for _, m := range seq {
		length := len(m.Token)
		switch {
		case m.Pattern == "dictionary" && m.DictionaryName == "user_inputs":
			return ErrSimilar
		case m.Pattern == "dictionary" && m.DictionaryName == "passwords":
			covered["common"] += length
		case m.Pattern == "repeat", m.Pattern == "sequence", m.Pattern == "spatial", m.Pattern == "date":
			covered["pattern"] += length
		}
	}
	switch {
	case 2*covered["common"] >= size:
		return ErrCommon
	case 2*covered["pattern"] >= size:
		return ErrPredictable
	default:
		return ErrWeak
	}
}
