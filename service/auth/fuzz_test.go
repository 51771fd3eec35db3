package auth

// The parsers are unexported, so their fuzz targets are an internal test
// (as is the state cache, in statecache_test.go);
// everything else in this package is tested from package auth_test.

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/connectguard/guard/store"
)

// A key and a refresh token of the shape the server issues, with fixed
// contents so the seeds are the same in every run.
const (
	fuzzKeyID      = "abcdefghijklmnopqrstuvwxyz"                  // 26 base32 characters, as store.NewID
	fuzzSecret     = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8" // bytes 0 to 31, as randomToken
	fuzzAPIKey     = APIKeyPrefix + fuzzKeyID + "_" + fuzzSecret
	fuzzRefreshTok = refreshPrefix + fuzzSecret
)

// FuzzParseAPIKey checks that parseAPIKey accepts exactly the strings of the
// form gk_<26 characters>_<43 characters>, and that the id and secret it
// returns reassemble into its input. The committed corpus in
// testdata/fuzz/FuzzParseAPIKey holds near misses: a refresh token, a key
// one character short, a second separator.
func FuzzParseAPIKey(f *testing.F) {
	for _, s := range []string{
		fuzzAPIKey,
		APIKeyPrefix + store.NewID() + "_" + randomToken(), // what CreateAPIKey hands out
		APIKeyPrefix,
		"",
		"GK_" + fuzzKeyID + "_" + fuzzSecret,
		APIKeyPrefix + fuzzKeyID + "-" + fuzzSecret,
		APIKeyPrefix + fuzzKeyID + "_" + fuzzSecret + "A",
		APIKeyPrefix + fuzzKeyID + "_" + strings.Repeat("é", 21) + "A", // 43 bytes, 22 characters
	} {
		f.Add(s)
	}
	const keyLen = len(APIKeyPrefix) + apiKeyIDLen + 1 + apiSecretLen
	f.Fuzz(func(t *testing.T, key string) {
		id, secret, ok := parseAPIKey(key)
		shape := strings.HasPrefix(key, APIKeyPrefix) && len(key) == keyLen && key[len(APIKeyPrefix)+apiKeyIDLen] == '_'
		if ok != shape {
			t.Fatalf("parseAPIKey(%q) ok = %v, want %v", key, ok, shape)
		}
		if !ok {
			if id != "" || secret != "" {
				t.Fatalf("parseAPIKey(%q) = %q, %q, false; want empty id and secret", key, id, secret)
			}
			return
		}
		if len(id) != apiKeyIDLen || len(secret) != apiSecretLen {
			t.Fatalf("parseAPIKey(%q) id, secret lengths = %d, %d; want %d, %d", key, len(id), len(secret), apiKeyIDLen, apiSecretLen)
		}
		if got := APIKeyPrefix + id + "_" + secret; got != key {
			t.Fatalf("parseAPIKey(%q) reassembles to %q, want the input", key, got)
		}
	})
}

// FuzzParseRefreshToken checks that parseRefreshToken accepts exactly
// refreshPrefix followed by the canonical unpadded base64url spelling of 32
// bytes, which is what issue hands out, and nothing longer. The committed
// corpus in testdata/fuzz/FuzzParseRefreshToken holds near misses: padding,
// the standard alphabet, non-zero trailing bits, a line feed inside.
func FuzzParseRefreshToken(f *testing.F) {
	for _, s := range []string{
		fuzzRefreshTok,
		refreshPrefix + randomToken(), // what issue hands out
		refreshPrefix,
		"",
		fuzzAPIKey,
		refreshPrefix + fuzzSecret[:42],
		refreshPrefix + fuzzSecret + "=",
		refreshPrefix + fuzzSecret[:42] + "9", // 9 = 61: non-zero trailing bits
		refreshPrefix + strings.Repeat("A", 1<<16),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ok := parseRefreshToken(s)
		// The oracle: decode leniently, then demand the canonical spelling.
		rest, prefixed := strings.CutPrefix(s, refreshPrefix)
		b, err := base64.RawURLEncoding.DecodeString(rest)
		want := prefixed && err == nil && len(b) == 32 && base64.RawURLEncoding.EncodeToString(b) == rest
		if ok != want {
			t.Fatalf("parseRefreshToken(%q) = %v, want %v", s, ok, want)
		}
		if ok && len(s) != refreshTokenLen {
			t.Fatalf("parseRefreshToken(%q) = true for %d bytes, want only %d", s, len(s), refreshTokenLen)
		}
		// Every token the server issues must pass, whatever its bytes.
		sum := sha256.Sum256([]byte(s))
		if issued := refreshPrefix + base64.RawURLEncoding.EncodeToString(sum[:]); !parseRefreshToken(issued) {
			t.Fatalf("parseRefreshToken(%q) = false for an issued shape, want true", issued)
		}
	})
}
