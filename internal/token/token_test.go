package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/connectguard/guard/internal/token"
)

const (
	issuer   = "https://guard.example"
	audience = "guard-api"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(tm time.Time) token.Option {
	return token.WithClock(func() time.Time { return tm })
}

// clock is a settable clock for tests that move time.
type clock struct{ ns atomic.Int64 }

func newClock(tm time.Time) *clock {
	c := &clock{}
	c.set(tm)
	return c
}
func (c *clock) set(tm time.Time)     { c.ns.Store(tm.UnixNano()) }
func (c *clock) now() time.Time       { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) option() token.Option { return token.WithClock(c.now) }

type fixture struct {
	key  token.Key
	keys *token.Keys
	svc  *token.Service // now is t0
}

func newFixture(t testing.TB, opts ...token.Option) fixture {
	t.Helper()
	key := mustKey(t)
	keys, err := token.NewKeys(key)
	if err != nil {
		t.Fatalf("NewKeys() error = %v, want nil", err)
	}
	return fixture{
		key:  key,
		keys: keys,
		svc:  token.New(keys, issuer, audience, append([]token.Option{at(t0)}, opts...)...),
	}
}

func mustKey(t testing.TB) token.Key {
	t.Helper()
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey() error = %v, want nil", err)
	}
	return key
}

func (f fixture) sign(t testing.TB, roles ...string) string {
	t.Helper()
	tok, _, err := f.svc.Sign("user-1", "session-1", roles)
	if err != nil {
		t.Fatalf("Sign() error = %v, want nil", err)
	}
	return tok
}

// header and claims of a valid token, as crafted by hand.
func (f fixture) header() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.key.ID}
}

func claims() map[string]any {
	return map[string]any{
		"iss": issuer, "aud": audience, "sub": "user-1", "sid": "session-1",
		"jti": "jti-1", "roles": []string{"viewer"},
		"iat": t0.Unix(), "nbf": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix(),
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func without(m map[string]any, keys ...string) map[string]any {
	out := with(m)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

var b64 = base64.RawURLEncoding

// craft assembles a token; sign receives the signing input and returns the
// signature, or nil for an empty one.
func craft(t testing.TB, header, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + b64.EncodeToString(sig)
}

func ed(priv ed25519.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte { return ed25519.Sign(priv, in) }
}

func junk(n int) func([]byte) []byte {
	return func([]byte) []byte { return []byte(strings.Repeat("x", n)) }
}

func hmacWith(h func() hash.Hash, secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(h, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// checkErr requires err to be exactly want: the sentinel itself, not a
// wrapper that could leak which check failed.
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if err != want { //nolint:errorlint // identity is the point
		t.Fatalf("Verify() error = %v, want %v", err, want)
	}
	if want != nil && err.Error() != want.Error() {
		t.Fatalf("Verify() error text = %q, want %q", err.Error(), want.Error())
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		roles []string
	}{
		{name: "with_roles", roles: []string{"viewer", "editor"}},
		{name: "no_roles", roles: nil},
		{name: "empty_roles", roles: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tok, signed, err := f.svc.Sign("user-1", "session-1", tt.roles)
			if err != nil {
				t.Fatalf("Sign() error = %v, want nil", err)
			}
			got, err := f.svc.Verify(tok)
			checkErr(t, err, nil)
			if !reflect.DeepEqual(got, signed) {
				t.Errorf("Verify() = %+v, want %+v", got, signed)
			}
			want := token.Claims{
				Subject: "user-1", SessionID: "session-1", ID: signed.ID,
				IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute), KeyID: f.key.ID,
			}
			if len(tt.roles) > 0 {
				want.Roles = tt.roles
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Verify() = %+v, want %+v", got, want)
			}
			if raw, err := b64.DecodeString(got.ID); err != nil || len(raw) != 16 {
				t.Errorf("jti %q decodes to %d bytes (err %v), want 16", got.ID, len(raw), err)
			}
		})
	}
}

func TestSignedTokenLayout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token.WithTTL(time.Hour))
	tok := f.sign(t, "viewer")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	var header map[string]any
	var payload map[string]any
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	wantHeader := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.key.ID}
	if !reflect.DeepEqual(header, wantHeader) {
		t.Errorf("header = %v, want %v", header, wantHeader)
	}
	wantPayload := map[string]any{
		"iss": issuer, "aud": audience, "sub": "user-1", "sid": "session-1",
		"jti": payload["jti"], "roles": []any{"viewer"},
		"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()),
		"exp": float64(t0.Add(time.Hour).Unix()),
	}
	if !reflect.DeepEqual(payload, wantPayload) {
		t.Errorf("payload = %v, want %v", payload, wantPayload)
	}
}

func TestSignRefusesIncompleteInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name               string
		svc                *token.Service
		subject, sessionID string
	}{
		{name: "empty_subject", svc: f.svc, sessionID: "s"},
		{name: "empty_session", svc: f.svc, subject: "u"},
		{name: "nil_keys", svc: token.New(nil, issuer, audience), subject: "u", sessionID: "s"},
		{name: "empty_issuer", svc: token.New(f.keys, "", audience), subject: "u", sessionID: "s"},
		{name: "empty_audience", svc: token.New(f.keys, issuer, ""), subject: "u", sessionID: "s"},
		{name: "zero_keys", svc: token.New(&token.Keys{}, issuer, audience), subject: "u", sessionID: "s"},
		{name: "zero_service", svc: &token.Service{}, subject: "u", sessionID: "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tok, _, err := tt.svc.Sign(tt.subject, tt.sessionID, nil); err == nil {
				t.Errorf("Sign() = %q, nil, want an error", tok)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := mustKey(t)

	// jwtSigned signs legitimate claims with another algorithm via the
	// library, the way an attacker with their own key would.
	jwtSigned := func(t testing.TB, f fixture, method jwt.SigningMethod, key any) string {
		t.Helper()
		tk := jwt.NewWithClaims(method, jwt.MapClaims(claims()))
		tk.Header["typ"] = "at+jwt"
		tk.Header["kid"] = f.key.ID
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name string
		tok  func(t testing.TB, f fixture) string
		want error
	}{
		// The crafted baseline must pass, or every refusal below proves nothing.
		{name: "crafted_baseline_is_valid", want: nil, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), claims(), ed(f.key.Private))
		}},
		{name: "typ_upper_case_ok", want: nil, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "typ", "AT+JWT"), claims(), ed(f.key.Private))
		}},
		{name: "typ_media_type_ok", want: nil, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "typ", "application/at+jwt"), claims(), ed(f.key.Private))
		}},
		{name: "nbf_within_leeway_ok", want: nil, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "nbf", t0.Add(20*time.Second).Unix()), ed(f.key.Private))
		}},

		// Issuer and audience.
		{name: "wrong_issuer", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok, _, err := token.New(f.keys, "https://evil.example", audience, at(t0)).Sign("user-1", "session-1", nil)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "wrong_audience", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok, _, err := token.New(f.keys, issuer, "other-api", at(t0)).Sign("user-1", "session-1", nil)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "audience_array", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "aud", []string{audience}), ed(f.key.Private))
		}},
		{name: "issuer_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "iss"), ed(f.key.Private))
		}},
		{name: "audience_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "aud"), ed(f.key.Private))
		}},

		// Time.
		{name: "nbf_in_future", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "nbf", t0.Add(5*time.Minute).Unix()), ed(f.key.Private))
		}},
		{name: "signed_in_future", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok, _, err := token.New(f.keys, issuer, audience, at(t0.Add(time.Hour))).Sign("user-1", "session-1", nil)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{name: "iat_in_future", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "iat", t0.Add(5*time.Minute).Unix()), ed(f.key.Private))
		}},
		{name: "exp_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "exp"), ed(f.key.Private))
		}},
		{name: "iat_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "iat"), ed(f.key.Private))
		}},
		{name: "nbf_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "nbf"), ed(f.key.Private))
		}},
		{name: "exp_not_a_number", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", "2099-01-01"), ed(f.key.Private))
		}},
		// RFC 7519 section 2: a NumericDate is a JSON number, never a
		// string that holds one.
		{name: "exp_numeric_string", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", "9999999999"), ed(f.key.Private))
		}},
		{name: "iat_numeric_string", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "iat", strconv.FormatInt(t0.Unix(), 10)), ed(f.key.Private))
		}},
		{name: "nbf_numeric_string", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "nbf", strconv.FormatInt(t0.Unix(), 10)), ed(f.key.Private))
		}},
		{name: "exp_null", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", nil), ed(f.key.Private))
		}},
		// A token that lives longer than the issuer ever issues is not one
		// of ours, whoever holds the key.
		{name: "lifetime_beyond_issuer_max", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", t0.Add(15*time.Minute+time.Second).Unix()), ed(f.key.Private))
		}},
		{name: "exp_far_future", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", int64(9999999999)), ed(f.key.Private))
		}},
		{name: "lifetime_exactly_max", want: nil, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", t0.Add(15*time.Minute).Unix()), ed(f.key.Private))
		}},
		{name: "expired", want: token.ErrExpired, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", t0.Add(-time.Minute).Unix()), ed(f.key.Private))
		}},
		{name: "expired_and_wrong_audience", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", t0.Add(-time.Minute).Unix(), "aud", "other-api"), ed(f.key.Private))
		}},
		{name: "expired_and_forged", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "exp", t0.Add(-time.Minute).Unix()), ed(other.Private))
		}},

		// Required claims.
		{name: "sub_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "sub"), ed(f.key.Private))
		}},
		{name: "sid_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "sid"), ed(f.key.Private))
		}},
		{name: "jti_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), without(claims(), "jti"), ed(f.key.Private))
		}},
		{name: "sub_empty", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "sub", ""), ed(f.key.Private))
		}},

		// alg confusion. Empty signatures fail the cheap checks; 64-byte junk
		// ones reach the parser and must fail the algorithm check itself.
		{name: "alg_none_empty_sig", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "none"), claims(), nil)
		}},
		{name: "alg_none", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "none"), claims(), junk(64))
		}},
		{name: "alg_NONE", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "NONE"), claims(), junk(64))
		}},
		{name: "alg_nOnE", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "nOnE"), claims(), junk(64))
		}},
		{name: "alg_None_empty_sig", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "None"), claims(), nil)
		}},
		{name: "alg_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, without(f.header(), "alg"), claims(), ed(f.key.Private))
		}},
		{name: "alg_empty", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", ""), claims(), ed(f.key.Private))
		}},
		{name: "alg_eddsa_lower_case_real_signature", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "eddsa"), claims(), ed(f.key.Private))
		}},
		{name: "alg_Ed25519_real_signature", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "Ed25519"), claims(), ed(f.key.Private))
		}},
		{name: "hs256_public_key_as_secret", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "HS256"), claims(), hmacWith(sha256.New, f.key.Public))
		}},
		{name: "hs512_public_key_as_secret", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			// 64-byte MAC: passes the signature-length check, so the
			// algorithm allow-list is what refuses it.
			return craft(t, with(f.header(), "alg", "HS512"), claims(), hmacWith(sha512.New, f.key.Public))
		}},
		{name: "hs256_base64_public_key_as_secret", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "alg", "HS256"), claims(), hmacWith(sha256.New, []byte(b64.EncodeToString(f.key.Public))))
		}},
		{name: "rs256", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return jwtSigned(t, f, jwt.SigningMethodRS256, rsaKey)
		}},
		{name: "es256", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return jwtSigned(t, f, jwt.SigningMethodES256, ecKey)
		}},

		// Keys.
		{name: "unknown_kid", want: token.ErrUnknownKey, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "kid", other.ID), claims(), ed(other.Private))
		}},
		{name: "known_kid_other_key", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), claims(), ed(other.Private))
		}},
		{name: "kid_missing", want: token.ErrUnknownKey, tok: func(t testing.TB, f fixture) string {
			return craft(t, without(f.header(), "kid"), claims(), ed(f.key.Private))
		}},
		{name: "kid_not_a_string", want: token.ErrUnknownKey, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "kid", 1), claims(), ed(f.key.Private))
		}},

		// Key-locating and extension headers, on otherwise valid tokens
		// signed with the real key.
		{name: "header_jku", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "jku", "https://evil.example/jwks.json"), claims(), ed(f.key.Private))
		}},
		{name: "header_x5u", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "x5u", "https://evil.example/cert.pem"), claims(), ed(f.key.Private))
		}},
		{name: "header_jwk", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			jwk := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(f.key.Public)}
			return craft(t, with(f.header(), "jwk", jwk), claims(), ed(f.key.Private))
		}},
		{name: "header_x5c", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "x5c", []string{"MIIB"}), claims(), ed(f.key.Private))
		}},
		{name: "header_crit", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "crit", []string{"exp"}), claims(), ed(f.key.Private))
		}},
		{name: "header_b64_false", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "b64", false), claims(), ed(f.key.Private))
		}},

		// typ.
		{name: "typ_missing", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, without(f.header(), "typ"), claims(), ed(f.key.Private))
		}},
		{name: "typ_JWT", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "typ", "JWT"), claims(), ed(f.key.Private))
		}},
		{name: "typ_not_a_string", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, with(f.header(), "typ", true), claims(), ed(f.key.Private))
		}},

		// Tampering.
		{name: "payload_role_flipped", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			parts := strings.Split(f.sign(t, "viewer"), ".")
			raw, err := b64.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			parts[1] = b64.EncodeToString([]byte(strings.Replace(string(raw), `"viewer"`, `"admin"`, 1)))
			return strings.Join(parts, ".")
		}},
		{name: "header_swapped_kid", want: token.ErrUnknownKey, tok: func(t testing.TB, f fixture) string {
			parts := strings.Split(f.sign(t), ".")
			h, _ := json.Marshal(with(f.header(), "kid", other.ID))
			parts[0] = b64.EncodeToString(h)
			return strings.Join(parts, ".")
		}},
		{name: "signature_bit_flipped", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok := []byte(f.sign(t))
			i := len(tok) - 20 // inside the signature
			if tok[i] == 'A' {
				tok[i] = 'B'
			} else {
				tok[i] = 'A'
			}
			return string(tok)
		}},
		{name: "signature_truncated", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok := f.sign(t)
			return tok[:len(tok)-1]
		}},
		{name: "signature_nonzero_trailing_bits", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			// 64 bytes encode to 86 characters whose last one carries 4
			// unused bits; strict decoding refuses them being set.
			tok := []byte(f.sign(t))
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[len(tok)-1])
			tok[len(tok)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1]
			return string(tok)
		}},

		// Shape, refused before decoding.
		{name: "empty", want: token.ErrInvalid, tok: func(testing.TB, fixture) string { return "" }},
		{name: "two_segments", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			tok := f.sign(t)
			return tok[:strings.LastIndexByte(tok, '.')]
		}},
		{name: "four_segments", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return f.sign(t) + ".e30"
		}},
		{name: "empty_payload", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			parts := strings.Split(f.sign(t), ".")
			return parts[0] + ".." + parts[2]
		}},
		{name: "padding", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			parts := strings.Split(f.sign(t), ".")
			return parts[0] + "=." + parts[1] + "." + parts[2]
		}},
		{name: "std_base64_plus", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return strings.Replace(f.sign(t), "e", "+", 1)
		}},
		{name: "std_base64_slash", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return strings.Replace(f.sign(t), "e", "/", 1)
		}},
		{name: "whitespace", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return " " + f.sign(t)
		}},
		{name: "bearer_prefix", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return "Bearer " + f.sign(t)
		}},
		{name: "ten_kilobytes", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			return craft(t, f.header(), with(claims(), "pad", strings.Repeat("a", 10<<10)), ed(f.key.Private))
		}},
		{name: "header_not_json", want: token.ErrInvalid, tok: func(t testing.TB, f fixture) string {
			parts := strings.Split(f.sign(t), ".")
			return b64.EncodeToString([]byte("not json")) + "." + parts[1] + "." + parts[2]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tok := tt.tok(t, f)
			got, err := f.svc.Verify(tok)
			checkErr(t, err, tt.want)
			if tt.want != nil {
				if !reflect.DeepEqual(got, token.Claims{}) {
					t.Errorf("Verify() claims = %+v, want zero on refusal", got)
				}
				if token.Cached(f.svc, tok) {
					t.Errorf("refused token is cached, want not cached")
				}
			}
		})
	}
}

func TestVerifyExpiryAndLeeway(t *testing.T) {
	t.Parallel()
	exp := t0.Add(15 * time.Minute)
	tests := []struct {
		name   string
		now    time.Time
		leeway []token.Option
		want   error
	}{
		{name: "just_before_exp", now: exp.Add(-time.Second), want: nil},
		{name: "within_default_leeway", now: exp.Add(29 * time.Second), want: nil},
		{name: "at_end_of_leeway", now: exp.Add(30 * time.Second), want: token.ErrExpired},
		{name: "beyond_leeway", now: exp.Add(31 * time.Second), want: token.ErrExpired},
		{name: "long_expired", now: exp.Add(24 * time.Hour), want: token.ErrExpired},
		{name: "zero_leeway_at_exp", now: exp, leeway: []token.Option{token.WithLeeway(0)}, want: token.ErrExpired},
		{name: "zero_leeway_before_exp", now: exp.Add(-time.Second), leeway: []token.Option{token.WithLeeway(0)}, want: nil},
		{name: "leeway_clamped_to_30s", now: exp.Add(31 * time.Second), leeway: []token.Option{token.WithLeeway(time.Hour)}, want: token.ErrExpired},
		{name: "negative_leeway_is_zero", now: exp.Add(-time.Second), leeway: []token.Option{token.WithLeeway(-time.Hour)}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tok := f.sign(t)
			verifier := token.New(f.keys, issuer, audience, append([]token.Option{at(tt.now)}, tt.leeway...)...)
			_, err := verifier.Verify(tok)
			checkErr(t, err, tt.want)
			// A second call goes through the cache when the first succeeded
			// and must agree.
			_, err = verifier.Verify(tok)
			checkErr(t, err, tt.want)
		})
	}
}

func TestWithTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{name: "one_hour", ttl: time.Hour, want: time.Hour},
		{name: "fraction_truncated", ttl: 90*time.Second + 500*time.Millisecond, want: 90 * time.Second},
		{name: "below_one_second_ignored", ttl: time.Millisecond, want: 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, token.WithTTL(tt.ttl))
			tok, c, err := f.svc.Sign("u", "s", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ExpiresAt.Sub(c.IssuedAt); got != tt.want {
				t.Errorf("exp - iat = %v, want %v", got, tt.want)
			}
			got, err := f.svc.Verify(tok)
			checkErr(t, err, nil)
			if !got.ExpiresAt.Equal(c.ExpiresAt) {
				t.Errorf("Verify() ExpiresAt = %v, want %v", got.ExpiresAt, c.ExpiresAt)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token.WithCacheSize(0)) // every Verify checks the signature
	oldTok := f.sign(t)

	next := mustKey(t)
	if err := f.keys.Add(next); err != nil {
		t.Fatalf("Add() error = %v, want nil", err)
	}
	newTok := f.sign(t)

	for _, tc := range []struct {
		name, tok, kid string
	}{
		{name: "old_token_still_verifies", tok: oldTok, kid: f.key.ID},
		{name: "new_token_uses_new_key", tok: newTok, kid: next.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := f.svc.Verify(tc.tok); err != nil {
				t.Errorf("Verify() error = %v, want nil", err)
			}
			if got := kidOf(t, tc.tok); got != tc.kid {
				t.Errorf("kid = %q, want %q", got, tc.kid)
			}
		})
	}

	pub := f.keys.Public(time.Now())
	if got, want := len(pub), 2; got != want {
		t.Fatalf("len(Public()) = %d, want %d", got, want)
	}
	for i, want := range []token.Key{f.key, next} {
		if pub[i].ID != want.ID || !pub[i].Public.Equal(want.Public) || pub[i].Private != nil {
			t.Errorf("Public()[%d] = {%q, %x, private %v}, want {%q, %x, private nil}",
				i, pub[i].ID, pub[i].Public, pub[i].Private != nil, want.ID, want.Public)
		}
	}
	// The returned keys are copies.
	pub[0].Public[0] ^= 0xff
	if _, err := f.svc.Verify(oldTok); err != nil {
		t.Errorf("Verify() after mutating Public() result: error = %v, want nil", err)
	}
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	raw, err := b64.DecodeString(strings.SplitN(tok, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func TestKeys(t *testing.T) {
	t.Parallel()
	good := mustKey(t)
	other := mustKey(t)
	tests := []struct {
		name string
		keys []token.Key
		want error
	}{
		{name: "one_key", keys: []token.Key{good}},
		{name: "two_keys", keys: []token.Key{good, other}},
		{name: "empty", keys: nil, want: token.ErrNoKeys},
		{name: "no_id", keys: []token.Key{{Private: good.Private, Public: good.Public}}, want: token.ErrInvalidKey},
		{name: "long_id", keys: []token.Key{{ID: strings.Repeat("k", 65), Private: good.Private, Public: good.Public}}, want: token.ErrInvalidKey},
		{name: "no_private", keys: []token.Key{{ID: "k", Public: good.Public}}, want: token.ErrInvalidKey},
		{name: "no_public", keys: []token.Key{{ID: "k", Private: good.Private}}, want: token.ErrInvalidKey},
		{name: "short_public", keys: []token.Key{{ID: "k", Private: good.Private, Public: good.Public[:31]}}, want: token.ErrInvalidKey},
		{name: "mismatched_pair", keys: []token.Key{{ID: "k", Private: good.Private, Public: other.Public}}, want: token.ErrInvalidKey},
		{name: "duplicate_id", keys: []token.Key{good, {ID: good.ID, Private: other.Private, Public: other.Public}}, want: token.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			keys, err := token.NewKeys(tt.keys...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewKeys() error = %v, want %v", err, tt.want)
			}
			if tt.want != nil && keys != nil {
				t.Errorf("NewKeys() = %v, want nil on error", keys)
			}
		})
	}

	t.Run("generated_key_id", func(t *testing.T) {
		t.Parallel()
		raw, err := b64.DecodeString(good.ID)
		if err != nil || len(raw) != 16 {
			t.Errorf("key ID %q decodes to %d bytes (err %v), want 16", good.ID, len(raw), err)
		}
		if good.ID == other.ID {
			t.Errorf("two generated keys share ID %q", good.ID)
		}
	})

	t.Run("add_rejects_duplicate_and_keeps_signer", func(t *testing.T) {
		t.Parallel()
		keys, err := token.NewKeys(good)
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.Add(token.Key{ID: good.ID, Private: other.Private, Public: other.Public}); !errors.Is(err, token.ErrInvalidKey) {
			t.Fatalf("Add() error = %v, want %v", err, token.ErrInvalidKey)
		}
		tok, _, err := token.New(keys, issuer, audience, at(t0)).Sign("u", "s", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := kidOf(t, tok); got != good.ID {
			t.Errorf("kid = %q, want %q", got, good.ID)
		}
	})

	t.Run("zero_value_add", func(t *testing.T) {
		t.Parallel()
		var keys token.Keys
		if err := keys.Add(good); err != nil {
			t.Fatalf("Add() error = %v, want nil", err)
		}
		svc := token.New(&keys, issuer, audience, at(t0))
		tok, _, err := svc.Sign("u", "s", nil)
		if err != nil {
			t.Fatalf("Sign() error = %v, want nil", err)
		}
		if _, err := svc.Verify(tok); err != nil {
			t.Errorf("Verify() error = %v, want nil", err)
		}
	})

	t.Run("caller_mutation_does_not_reach_set", func(t *testing.T) {
		t.Parallel()
		k := mustKey(t)
		keys, err := token.NewKeys(k)
		if err != nil {
			t.Fatal(err)
		}
		svc := token.New(keys, issuer, audience, at(t0))
		tok, _, err := svc.Sign("u", "s", nil)
		if err != nil {
			t.Fatal(err)
		}
		k.Public[0] ^= 0xff
		if _, err := svc.Verify(tok); err != nil {
			t.Errorf("Verify() error = %v, want nil", err)
		}
	})
}

func TestUnusableServiceRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.sign(t)
	tests := []struct {
		name string
		svc  *token.Service
	}{
		{name: "nil_keys", svc: token.New(nil, issuer, audience, at(t0))},
		{name: "empty_issuer", svc: token.New(f.keys, "", audience, at(t0))},
		{name: "empty_audience", svc: token.New(f.keys, issuer, "", at(t0))},
		{name: "zero_keys", svc: token.New(&token.Keys{}, issuer, audience, at(t0))},
		{name: "zero_service", svc: &token.Service{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.svc.Verify(tok)
			if !errors.Is(err, token.ErrInvalid) || err.Error() != "invalid token" { // an empty set knows no kid: ErrUnknownKey
				t.Fatalf("Verify() error = %v, want one matching ErrInvalid", err)
			}
		})
	}
}

func TestCache(t *testing.T) {
	t.Parallel()

	t.Run("second_verify_is_a_hit", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		tok := f.sign(t, "viewer")
		first, err := f.svc.Verify(tok)
		checkErr(t, err, nil)
		if !token.Cached(f.svc, tok) {
			t.Fatalf("token not cached after a successful Verify")
		}
		second, err := f.svc.Verify(tok)
		checkErr(t, err, nil)
		if !reflect.DeepEqual(second, first) {
			t.Errorf("cached Verify() = %+v, want %+v", second, first)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, token.WithCacheSize(4))
		for i := range 100 {
			tok, _, err := f.svc.Sign(fmt.Sprintf("user-%d", i), "s", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Verify(tok); err != nil {
				t.Fatalf("Verify() token %d: error = %v, want nil", i, err)
			}
			if got := token.CacheLen(f.svc); got > 4 || got < 1 {
				t.Fatalf("after %d tokens the cache holds %d, want 1 to 4", i+1, got)
			}
			if !token.Cached(f.svc, tok) {
				t.Fatalf("token %d not cached right after Verify", i)
			}
		}
	})

	t.Run("expired_entries_evicted_first", func(t *testing.T) {
		t.Parallel()
		clk := newClock(t0)
		keys, err := token.NewKeys(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		svc := token.New(keys, issuer, audience, clk.option(), token.WithCacheSize(4))
		signVerify := func(prefix string, n int) []string {
			t.Helper()
			var toks []string
			for i := range n {
				tok, _, err := svc.Sign(fmt.Sprintf("%s-%d", prefix, i), "s", nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Verify(tok); err != nil {
					t.Fatal(err)
				}
				toks = append(toks, tok)
			}
			return toks
		}
		old := signVerify("old", 4) // fills the cache
		clk.set(t0.Add(20 * time.Minute))
		// The old entries have expired, so the first insert into the full
		// cache sweeps them all and no arbitrary eviction is needed.
		fresh := signVerify("fresh", 3)
		for i, tok := range fresh {
			if !token.Cached(svc, tok) {
				t.Errorf("fresh token %d not cached, want expired entries evicted instead", i)
			}
		}
		for i, tok := range old {
			if token.Cached(svc, tok) {
				t.Errorf("expired token %d still cached", i)
			}
		}
		if got := token.CacheLen(svc); got != 3 {
			t.Errorf("cache holds %d, want 3", got)
		}
	})

	t.Run("expired_cached_token_refused", func(t *testing.T) {
		t.Parallel()
		clk := newClock(t0)
		keys, err := token.NewKeys(mustKey(t))
		if err != nil {
			t.Fatal(err)
		}
		svc := token.New(keys, issuer, audience, clk.option())
		tok, c, err := svc.Sign("u", "s", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Verify(tok)
		checkErr(t, err, nil)
		if !token.Cached(svc, tok) {
			t.Fatal("token not cached")
		}
		clk.set(c.ExpiresAt.Add(29 * time.Second))
		_, err = svc.Verify(tok)
		checkErr(t, err, nil)
		clk.set(c.ExpiresAt.Add(31 * time.Second))
		_, err = svc.Verify(tok)
		checkErr(t, err, token.ErrExpired)
	})

	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, token.WithCacheSize(0))
		tok := f.sign(t)
		for range 2 {
			_, err := f.svc.Verify(tok)
			checkErr(t, err, nil)
		}
		if got := token.CacheLen(f.svc); got != 0 {
			t.Errorf("disabled cache holds %d, want 0", got)
		}
	})
}

// TestVerifyAllocs is not parallel: testing.AllocsPerRun panics in parallel
// tests.
func TestVerifyAllocs(t *testing.T) {
	f := newFixture(t)
	tok := f.sign(t, "viewer", "editor")
	if _, err := f.svc.Verify(tok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tok  string
		want error
	}{
		// A miss would parse and allocate dozens of times, so zero also
		// shows that a hit does not verify again.
		{name: "cache_hit", tok: tok, want: nil},
		{name: "ten_kilobytes", tok: strings.Repeat("a", 10<<10), want: token.ErrInvalid},
		{name: "bad_alphabet", tok: strings.Replace(tok, "e", "+", 1), want: token.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(100, func() { _, err = f.svc.Verify(tt.tok) })
			checkErr(t, err, tt.want)
			if allocs != 0 {
				t.Errorf("Verify() allocs = %v, want 0", allocs)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token.WithCacheSize(8))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				tok, _, err := f.svc.Sign(fmt.Sprintf("u-%d-%d", g, i), "s", []string{"viewer"})
				if err != nil {
					t.Error(err)
					return
				}
				for range 2 {
					if _, err := f.svc.Verify(tok); err != nil {
						t.Errorf("Verify() error = %v, want nil", err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			k, err := token.GenerateKey()
			if err != nil {
				t.Error(err)
				return
			}
			if err := f.keys.Add(k); err != nil {
				t.Error(err)
				return
			}
			_ = f.keys.Public(time.Now())
		}
	})
	wg.Wait()
	if got := token.CacheLen(f.svc); got > 8 {
		t.Errorf("cache holds %d, want at most 8", got)
	}
}

func BenchmarkVerifyCacheHit(b *testing.B) {
	f := newFixture(b)
	tok := f.sign(b, "viewer", "editor")
	if _, err := f.svc.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCacheMiss(b *testing.B) {
	f := newFixture(b, token.WithCacheSize(0))
	tok := f.sign(b, "viewer", "editor")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	roles := []string{"viewer", "editor"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.svc.Sign("user-1", "session-1", roles); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRejectOversized(b *testing.B) {
	f := newFixture(b)
	tok := strings.Repeat("a", 10<<10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Verify(tok); err == nil {
			b.Fatal("accepted oversized token")
		}
	}
}

// TestRetire: a retired key stops verifying at its retirement time, for
// tokens seen before (cached) and new ones alike, and leaves the JWKS; the
// signing key cannot be retired.
func TestRetire(t *testing.T) {
	t.Parallel()
	now := t0
	old := mustKey(t)
	keys, err := token.NewKeys(old)
	if err != nil {
		t.Fatal(err)
	}
	svc := token.New(keys, issuer, audience, token.WithClock(func() time.Time { return now }))
	cached, _, err := svc.Sign("user-1", "session-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(cached); err != nil {
		t.Fatalf("before rotation: got %v, want nil", err)
	}
	if err := keys.Retire(old.ID, now); err == nil {
		t.Error("Retire(signing key): got nil, want an error")
	}
	next := mustKey(t)
	if err := keys.Add(next); err != nil {
		t.Fatal(err)
	}
	if err := keys.Retire(old.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := keys.Retire(old.ID, t0.Add(time.Hour)); err != nil { // a later time does not postpone it
		t.Fatal(err)
	}
	// A token the old key signs after rotation (as with a leaked key).
	forger := token.New(mustKeys(t, old), issuer, audience, token.WithClock(func() time.Time { return now }))
	forged, _, err := forger.Sign("user-1", "session-1", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(cached); err != nil {
		t.Errorf("before retirement, cached: got %v, want nil", err)
	}
	if got := len(keys.Public(now)); got != 2 {
		t.Errorf("before retirement: got %d public keys, want 2", got)
	}
	now = t0.Add(time.Minute)
	for name, tok := range map[string]string{"cached": cached, "forged": forged} {
		if _, err := svc.Verify(tok); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("after retirement, %s: got %v, want ErrInvalid", name, err)
		}
	}
	if pub := keys.Public(now); len(pub) != 1 || pub[0].ID != next.ID {
		t.Errorf("after retirement: got public keys %v, want only %s", pub, next.ID)
	}
	fresh, _, err := svc.Sign("user-1", "session-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(fresh); err != nil {
		t.Errorf("new key after retirement: got %v, want nil", err)
	}
}

func mustKeys(t *testing.T, k token.Key) *token.Keys {
	t.Helper()
	keys, err := token.NewKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestKeysReplace: a set reloaded from storage (Replace) verifies exactly
// the new keys at once: a token of a key that another replica added is
// first refused as ErrUnknownKey, then accepted; one of a key that is
// gone or retired in the reloaded set is refused, cached or not.
func TestKeysReplace(t *testing.T) {
	t.Parallel()
	now := t0
	clock := func() time.Time { return now }
	k1, k2 := mustKey(t), mustKey(t)
	keys := mustKeys(t, k1)
	svc := token.New(keys, issuer, audience, token.WithClock(clock))
	old, _, err := svc.Sign("u", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(old); err != nil { // now cached
		t.Fatal(err)
	}
	// Another replica rotates: its set has k2, which signs.
	other, err := token.NewKeys(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, err := token.New(other, issuer, audience, token.WithClock(clock)).Sign("u", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(fresh); err != token.ErrUnknownKey { //nolint:errorlint // identity is the point
		t.Fatalf("Verify(token of a key the set lacks) error = %v, want ErrUnknownKey", err)
	}
	if err := other.Retire(k1.ID, now); err != nil { // revoke_previous
		t.Fatal(err)
	}
	keys.Replace(other)
	if _, err := svc.Verify(fresh); err != nil {
		t.Errorf("Verify(token of the new key) after Replace: %v", err)
	}
	if _, err := svc.Verify(old); err != token.ErrInvalid { //nolint:errorlint // identity is the point
		t.Errorf("Verify(cached token of the retired key) after Replace error = %v, want ErrInvalid", err)
	}
	if tok, c, err := svc.Sign("u", "s", nil); err != nil || c.KeyID != k2.ID {
		t.Errorf("Sign() after Replace: kid %q, %v (%s), want the new key %q", c.KeyID, err, tok, k2.ID)
	}
	// The set without k1 at all (storage leaves revoked keys out).
	only2, err := token.NewKeys(k2)
	if err != nil {
		t.Fatal(err)
	}
	keys.Replace(only2)
	if _, err := svc.Verify(old); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("Verify(token of a key gone from the set) error = %v, want ErrInvalid", err)
	}
}

// BenchmarkVerifyStorm verifies 100,000 distinct valid tokens in turn with
// the default cache (10,000 entries), so that every call misses and every
// insertion evicts, as under a storm of fresh tokens, and reports the
// median ratio, over paired blocks, of that to an Ed25519 verify of one
// token's signature alone: what the storm costs beyond the cryptography.
func BenchmarkVerifyStorm(b *testing.B) {
	f := newFixture(b)
	const distinct = 100_000
	toks := make([]string, distinct)
	for i := range toks {
		toks[i] = f.sign(b, "viewer")
	}
	signed, sig, ok := strings.Cut(toks[0][strings.Index(toks[0], ".")+1:], ".")
	if !ok {
		b.Fatal("token without a signature")
	}
	input := []byte(toks[0][:strings.Index(toks[0], ".")+1] + signed)
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		b.Fatal(err)
	}
	if !ed25519.Verify(f.key.Public, input, raw) {
		b.Fatal("the signature does not verify")
	}
	const block = 64
	var ratios []float64
	next := 0
	for b.Loop() {
		start := time.Now()
		for range block {
			ed25519.Verify(f.key.Public, input, raw)
		}
		alone := time.Since(start)
		start = time.Now()
		for range block {
			if _, err := f.svc.Verify(toks[next]); err != nil {
				b.Fatal(err)
			}
			next = (next + 1) % distinct
		}
		ratios = append(ratios, float64(time.Since(start))/float64(alone))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "storm/ed25519")
	b.ReportMetric(0, "ns/op")
}
