package token_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/token"
)

// fuzzKeyID is the kid of the fixed key FuzzVerify signs with.
const fuzzKeyID = "fuzz-key-1"

// fuzzJTI replaces the random jti of Sign, so that the tokens FuzzVerify
// signs are the same in every run and in every fuzz worker process: the
// committed corpus and the mutations of the fuzzer are judged against them.
const fuzzJTI = "ZnV6ei1qdGktMDAwMDAwMQ"

// fuzzCase is a token FuzzVerify signed with its key, and what Verify must
// answer for it.
type fuzzCase struct {
	name   string
	tok    string
	claims token.Claims // when err is nil
	err    error
}

// fuzzVerifyFixture returns the service FuzzVerify checks (the fixed key, now
// is t0, no cache) and every token the test signs with that key. Ed25519
// signatures are deterministic, so the tokens are too.
//
// Each token is Sign's output with the jti replaced and the JSON edited as
// named, then signed again with the real key: the signature is genuine, so
// only the checks after it can refuse the token.
func fuzzVerifyFixture(t testing.TB) (*token.Service, []fuzzCase) {
	t.Helper()
	seed := sha256.Sum256([]byte("guard FuzzVerify key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	keys, err := token.NewKeys(token.Key{ID: fuzzKeyID, Private: priv, Public: priv.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatalf("NewKeys() error = %v, want nil", err)
	}
	svc := token.New(keys, issuer, audience, at(t0), token.WithCacheSize(0))

	// parts signs with s and returns the header and payload JSON of the
	// token, with the jti made fixed, and the claims Verify must return.
	parts := func(s *token.Service, roles []string) (header, payload string, c token.Claims) {
		t.Helper()
		tok, c, err := s.Sign("user-1", "session-1", roles)
		if err != nil {
			t.Fatalf("Sign() error = %v, want nil", err)
		}
		seg := strings.Split(tok, ".")
		h, err := b64.DecodeString(seg[0])
		if err != nil {
			t.Fatal(err)
		}
		p, err := b64.DecodeString(seg[1])
		if err != nil {
			t.Fatal(err)
		}
		payload = strings.Replace(string(p), `"jti":"`+c.ID+`"`, `"jti":"`+fuzzJTI+`"`, 1)
		if payload == string(p) {
			t.Fatalf("payload %s has no jti %q", p, c.ID)
		}
		c.ID = fuzzJTI
		return string(h), payload, c
	}
	sign := func(header, payload string) string {
		in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
		return in + "." + b64.EncodeToString(ed25519.Sign(priv, []byte(in)))
	}
	// edit replaces from by to in s exactly once, so that a change in
	// Sign's output cannot silently turn a case into a copy of the valid
	// token.
	edit := func(s, from, to string) string {
		t.Helper()
		if n := strings.Count(s, from); n != 1 {
			t.Fatalf("%s holds %s %d times, want once", s, from, n)
		}
		return strings.Replace(s, from, to, 1)
	}

	h, p, member := parts(svc, []string{"member"})
	_, pNoRoles, noRoles := parts(svc, nil)
	_, pExpired, _ := parts(token.New(keys, issuer, audience, at(t0.Add(-time.Hour))), nil)
	exp := `"exp":` + strconv.FormatInt(member.ExpiresAt.Unix(), 10)
	iat := `"iat":` + strconv.FormatInt(member.IssuedAt.Unix(), 10)

	cases := []fuzzCase{
		{name: "valid", tok: sign(h, p), claims: member},
		{name: "valid_no_roles", tok: sign(h, pNoRoles), claims: noRoles},
		{name: "valid_typ_media_type", tok: sign(edit(h, `"typ":"at+jwt"`, `"typ":"application/at+jwt"`), p), claims: member},
		{name: "expired", tok: sign(h, pExpired), err: token.ErrExpired},

		{name: "alg_none", tok: sign(edit(h, `"alg":"EdDSA"`, `"alg":"none"`), p), err: token.ErrInvalid},
		{name: "alg_hs256", tok: sign(edit(h, `"alg":"EdDSA"`, `"alg":"HS256"`), p), err: token.ErrInvalid},
		{name: "header_jku", tok: sign(edit(h, `{`, `{"jku":"https://evil.example/jwks",`), p), err: token.ErrInvalid},
		{name: "header_jwk", tok: sign(edit(h, `{`, `{"jwk":{"kty":"OKP","crv":"Ed25519","x":"AA"},`), p), err: token.ErrInvalid},
		{name: "header_crit", tok: sign(edit(h, `{`, `{"crit":["exp"],`), p), err: token.ErrInvalid},
		{name: "header_b64", tok: sign(edit(h, `{`, `{"b64":false,`), p), err: token.ErrInvalid},
		{name: "kid_unknown", tok: sign(edit(h, fuzzKeyID, "fuzz-key-2"), p), err: token.ErrUnknownKey},
		{name: "kid_number", tok: sign(edit(h, `"`+fuzzKeyID+`"`, `1`), p), err: token.ErrUnknownKey},
		{name: "typ_jwt", tok: sign(edit(h, `"typ":"at+jwt"`, `"typ":"JWT"`), p), err: token.ErrInvalid},
		// RFC 7519: a NumericDate is a JSON number, never a quoted one.
		{name: "exp_string", tok: sign(h, edit(p, exp, strings.Replace(exp, ":", `:"`, 1)+`"`)), err: token.ErrInvalid},
		{name: "iat_string", tok: sign(h, edit(p, iat, strings.Replace(iat, ":", `:"`, 1)+`"`)), err: token.ErrInvalid},
		{name: "exp_missing", tok: sign(h, edit(p, exp+",", "")), err: token.ErrInvalid},
		{name: "aud_array", tok: sign(h, edit(p, `"aud":"`+audience+`"`, `"aud":["`+audience+`"]`)), err: token.ErrInvalid},
		{name: "iss_other", tok: sign(h, edit(p, issuer, "https://evil.example")), err: token.ErrInvalid},
		{name: "sid_missing", tok: sign(h, edit(p, `"sid":"session-1",`, "")), err: token.ErrInvalid},
		{name: "sub_number", tok: sign(h, edit(p, `"sub":"user-1"`, `"sub":1`)), err: token.ErrInvalid},
		{name: "roles_string", tok: sign(h, edit(p, `"roles":["member"]`, `"roles":"admin"`)), err: token.ErrInvalid},
		{name: "nbf_future", tok: sign(h, edit(p, `"nbf":`+strconv.FormatInt(member.IssuedAt.Unix(), 10), `"nbf":`+strconv.FormatInt(t0.Add(time.Hour).Unix(), 10))), err: token.ErrInvalid},
		{name: "payload_array", tok: sign(h, `[`+p+`]`), err: token.ErrInvalid},
	}
	return svc, cases
}

// FuzzVerify feeds arbitrary strings to Verify. The committed corpus in
// testdata/fuzz/FuzzVerify adds tokens no key signed: a key-confusion HS256
// token, a signature in a non-canonical spelling, swapped signatures,
// padding, truncation.
//
// Properties: Verify never panics; it refuses with exactly ErrInvalid or
// ErrExpired and empty claims; it accepts only a token this test signed as
// valid, returning complete claims equal to those Sign returned; and it
// answers ErrExpired only for a token this test signed, so expiry never
// tells a forger anything.
func FuzzVerify(f *testing.F) {
	svc, cases := fuzzVerifyFixture(f)
	want := make(map[string]fuzzCase, len(cases))
	for _, c := range cases {
		want[c.tok] = c
		f.Add(c.tok)
	}
	f.Add("")
	f.Add("..")
	f.Add(strings.Repeat("A", 4097))

	f.Fuzz(func(t *testing.T, tok string) {
		got, err := svc.Verify(tok)
		w, signed := want[tok]
		if !signed {
			w = fuzzCase{name: "not signed by the test", err: token.ErrInvalid}
		}
		if err != w.err { //nolint:errorlint // identity is the point: nothing may wrap the sentinels
			t.Fatalf("Verify(%q) error = %v, want %v (%s)", tok, err, w.err, w.name)
		}
		if err != nil {
			if !reflect.DeepEqual(got, token.Claims{}) {
				t.Fatalf("Verify(%q) claims = %+v with error %v, want none", tok, got, err)
			}
			return
		}
		if got.Subject == "" || got.SessionID == "" || got.ID == "" || got.KeyID != fuzzKeyID ||
			got.IssuedAt.IsZero() || !got.ExpiresAt.After(got.IssuedAt) {
			t.Fatalf("Verify(%q) claims = %+v, want complete claims", tok, got)
		}
		if !reflect.DeepEqual(got, w.claims) {
			t.Fatalf("Verify(%q) claims = %+v, want %+v (%s)", tok, got, w.claims, w.name)
		}
	})
}
