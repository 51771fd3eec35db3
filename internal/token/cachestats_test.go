package token_test

import (
	"testing"

	"github.com/connectguard/guard/internal/token"
)

// TestCacheStats: a token's first verification is a miss and the next
// ones are hits; a forged token is a miss every time (never cached); a
// service without a cache reports zeros.
func TestCacheStats(t *testing.T) {
	t.Parallel()
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := token.NewKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := token.New(keys, "iss", "aud")
	tok, _, err := svc.Sign("u1", "s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := svc.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	forged := []byte(tok)
	if i := len(forged) - 10; forged[i] == 'A' {
		forged[i] = 'B'
	} else {
		forged[i] = 'A'
	}
	for range 2 {
		if _, err := svc.Verify(string(forged)); err == nil {
			t.Fatal("a forged token verified")
		}
	}
	if hits, misses := svc.CacheStats(); hits != 2 || misses != 3 {
		t.Errorf("CacheStats() = %d hits, %d misses; want 2, 3", hits, misses)
	}
	off := token.New(keys, "iss", "aud", token.WithCacheSize(0))
	if _, err := off.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if hits, misses := off.CacheStats(); hits != 0 || misses != 0 {
		t.Errorf("without a cache: CacheStats() = %d, %d; want 0, 0", hits, misses)
	}
}
