package pagetoken_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/connectguard/guard/internal/pagetoken"
)

// base64URL is the alphabet of page tokens, in order.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// FuzzDecode feeds Decode a scope, a cursor and a token. The codec's key is
// fixed (testKey), so the tokens in the seeds and in the committed corpus in
// testdata/fuzz/FuzzDecode were made by this codec and decode in every run.
//
// Properties: Decode never panics; the token Encode makes for the fuzzed
// scope and cursor decodes to that cursor, and only for that scope and key;
// every single-character change, truncation or extension of it is refused;
// and a fuzzed token that Decode accepts is exactly the token Encode makes
// for the cursor it returned, so no other spelling and no forgery passes.
func FuzzDecode(f *testing.F) {
	c, err := pagetoken.New(testKey)
	if err != nil {
		f.Fatalf("New() error = %v, want nil", err)
	}
	other, err := pagetoken.New(bytes.Repeat([]byte{0xa5}, 32))
	if err != nil {
		f.Fatalf("New() error = %v, want nil", err)
	}
	const scope = "notes|user-1"
	cursor := []byte("2026-11-01T12:00:00Z|note-42")
	tok := c.Encode(scope, cursor)
	f.Add(scope, cursor, tok)
	f.Add(scope, []byte{}, c.Encode(scope, nil))
	f.Add("notes|user-2", cursor, tok)                // another user's token
	f.Add(scope, cursor, other.Encode(scope, cursor)) // another key
	f.Add(scope, cursor, tok+"=")
	f.Add(scope, cursor, tok[:10]+"\n"+tok[10:])
	f.Add("", []byte{0, 0xff}, "")

	f.Fuzz(func(t *testing.T, scope string, cursor []byte, tok string) {
		// The fuzzed token: accepted only in the one spelling Encode makes.
		if got, err := c.Decode(scope, tok); err == nil {
			if want := c.Encode(scope, got); tok != want {
				t.Fatalf("Decode(%q, %q) = %q, nil; want only the token %q to decode to it", scope, tok, got, want)
			}
		} else if err != pagetoken.ErrInvalid { //nolint:errorlint // identity: nothing more specific may leak
			t.Fatalf("Decode(%q, %q) error = %v, want %v", scope, tok, err, pagetoken.ErrInvalid)
		}

		// The token made for the fuzzed scope and cursor.
		made := c.Encode(scope, cursor)
		got, err := c.Decode(scope, made)
		if err != nil || !bytes.Equal(got, cursor) {
			t.Fatalf("Decode(%q, Encode(%q, %q)) = %q, %v; want the cursor, nil", scope, scope, cursor, got, err)
		}
		if _, err := c.Decode(scope+"x", made); err == nil {
			t.Fatalf("Decode(%q, %q) accepted a token made for scope %q", scope+"x", made, scope)
		}
		if _, err := other.Decode(scope, made); err == nil {
			t.Fatalf("Decode(%q, %q) with another key accepted it", scope, made)
		}
		refuse := func(how, tampered string) {
			t.Helper()
			if got, err := c.Decode(scope, tampered); err == nil {
				t.Fatalf("Decode(%q, %q) = %q, nil for a %s token; want an error", scope, tampered, got, how)
			}
		}
		refuse("truncated", made[:len(made)-1])
		refuse("extended", made+"A")
		// Any other character in any position: the strict decoder refuses
		// other spellings of the same bytes, so the bytes change and the
		// tag no longer matches. Long tokens are checked at their ends.
		for i := range len(made) {
			if i >= 64 && i < len(made)-64 {
				continue
			}
			j := strings.IndexByte(base64URL, made[i])
			b := []byte(made)
			b[i] = base64URL[(j+1+int(cursorByte(cursor, i))%63)%64]
			refuse("tampered", string(b))
		}
	})
}

// cursorByte picks a byte of cursor to vary which replacement character the
// tampering uses; 0 for an empty cursor.
func cursorByte(cursor []byte, i int) byte {
	if len(cursor) == 0 {
		return 0
	}
	return cursor[i%len(cursor)]
}
