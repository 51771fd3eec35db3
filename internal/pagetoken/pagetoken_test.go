package pagetoken_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connectguard/guard/internal/pagetoken"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

func newCodec(t *testing.T, key []byte) *pagetoken.Codec {
	t.Helper()
	c, err := pagetoken.New(key)
	if err != nil {
		t.Fatalf("New(%d-byte key) error = %v, want nil", len(key), err)
	}
	return c
}

func TestCodec_roundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		scope  string
		cursor []byte
	}{
		{"empty_cursor", "notes|user-1", nil},
		{"text_cursor", "notes|user-1", []byte("2026-11-01T12:00:00Z|note-42")},
		{"binary_cursor", "users", []byte{0, 1, 2, 0xff, 0, 0xfe}},
		{"long_cursor", "audit|", bytes.Repeat([]byte("x"), 400)},
		{"empty_scope", "", []byte("c")},
		{"unicode_scope", "notes|ünïcødé", []byte("c")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCodec(t, testKey)
			tok := c.Encode(tt.scope, tt.cursor)
			if strings.ContainsAny(tok, "+/= ") {
				t.Errorf("Encode() = %q, want unpadded URL-safe base64", tok)
			}
			got, err := c.Decode(tt.scope, tok)
			if err != nil {
				t.Fatalf("Decode(Encode()) error = %v, want nil", err)
			}
			if !bytes.Equal(got, tt.cursor) {
				t.Errorf("Decode(Encode()) = %q, want %q", got, tt.cursor)
			}
			// Another Codec with the same key (a restart) accepts it too.
			got, err = newCodec(t, bytes.Clone(testKey)).Decode(tt.scope, tok)
			if err != nil || !bytes.Equal(got, tt.cursor) {
				t.Errorf("Decode() after restart = %q, %v; want %q, nil", got, err, tt.cursor)
			}
		})
	}
}

func TestCodec_Decode_refusesOtherScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		encodeScope  string
		encodeCursor string
		decodeScope  string
	}{
		{"other_user", "notes|alice", "cursor", "notes|bob"},
		{"other_list", "notes|alice", "cursor", "users"},
		{"scope_prefix", "notes|alice", "cursor", "notes|alic"},
		{"scope_extended", "notes|alice", "cursor", "notes|alice2"},
		{"empty_scope", "notes|alice", "cursor", ""},
		{"case", "notes|alice", "cursor", "notes|Alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCodec(t, testKey)
			tok := c.Encode(tt.encodeScope, []byte(tt.encodeCursor))
			got, err := c.Decode(tt.decodeScope, tok)
			if !errors.Is(err, pagetoken.ErrInvalid) {
				t.Errorf("Decode(%q, token for %q) = %q, %v; want ErrInvalid", tt.decodeScope, tt.encodeScope, got, err)
			}
			if got != nil {
				t.Errorf("Decode() cursor = %q, want nil on error", got)
			}
		})
	}
}

// TestCodec_Decode_refusesBoundaryShift: the split between scope and
// cursor is signed, so moving the first cursor byte into the scope does not
// keep the tag valid.
func TestCodec_Decode_refusesBoundaryShift(t *testing.T) {
	t.Parallel()
	c := newCodec(t, testKey)
	raw, err := base64.RawURLEncoding.DecodeString(c.Encode("notes|a", []byte("bc")))
	if err != nil {
		t.Fatal(err)
	}
	// Same tag, cursor "c": the signed bytes would be "notes|a"+"bc" =
	// "notes|ab"+"c" without a separator.
	forged := base64.RawURLEncoding.EncodeToString(raw[1:])
	if got, err := c.Decode("notes|ab", forged); !errors.Is(err, pagetoken.ErrInvalid) {
		t.Errorf("Decode(\"notes|ab\", shifted token) = %q, %v; want ErrInvalid", got, err)
	}
}

func TestCodec_Decode_refusesOtherKey(t *testing.T) {
	t.Parallel()
	tok := newCodec(t, testKey).Encode("s", []byte("cursor"))
	other := bytes.Clone(testKey)
	other[31] ^= 1
	if got, err := newCodec(t, other).Decode("s", tok); !errors.Is(err, pagetoken.ErrInvalid) {
		t.Errorf("Decode() with another key = %q, %v; want ErrInvalid", got, err)
	}
}

func TestCodec_Decode_refusesTampering(t *testing.T) {
	t.Parallel()
	c := newCodec(t, testKey)
	const scope = "notes|alice"
	tok, raw := awkwardToken(t, c, scope)

	t.Run("every_byte_flipped", func(t *testing.T) {
		t.Parallel()
		for i := range raw {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				bad := bytes.Clone(raw)
				bad[i] ^= mask
				forged := base64.RawURLEncoding.EncodeToString(bad)
				if got, err := c.Decode(scope, forged); !errors.Is(err, pagetoken.ErrInvalid) {
					t.Errorf("byte %d ^ %#x: Decode() = %q, %v; want ErrInvalid", i, mask, got, err)
				}
			}
		}
	})
	t.Run("every_prefix", func(t *testing.T) {
		t.Parallel()
		for n := range len(tok) {
			if got, err := c.Decode(scope, tok[:n]); !errors.Is(err, pagetoken.ErrInvalid) {
				t.Errorf("Decode(token[:%d]) = %q, %v; want ErrInvalid", n, got, err)
			}
		}
	})

	forgeries := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"byte_dropped_at_end", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1])},
		{"byte_dropped_at_start", base64.RawURLEncoding.EncodeToString(raw[1:])},
		{"byte_appended", base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0))},
		{"tag_only", base64.RawURLEncoding.EncodeToString(raw[len(raw)-16:])},
		{"cursor_only", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-16])},
		{"padded", tok + "="},
		{"padded_twice", tok + "=="},
		{"std_padded_encoding", base64.URLEncoding.EncodeToString(raw)},
		{"std_alphabet", base64.RawStdEncoding.EncodeToString(raw)},
		{"surrounding_space", " " + tok + " "},
		{"not_base64", "!!!!not-a-token!!!!"},
		{"sixteen_zero_bytes", base64.RawURLEncoding.EncodeToString(make([]byte, 16))},
		{"doubled", tok + tok},
	}
	for _, f := range forgeries {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			if f.token == tok {
				t.Fatalf("forgery %q is the genuine token", f.token)
			}
			if got, err := c.Decode(scope, f.token); !errors.Is(err, pagetoken.ErrInvalid) {
				t.Errorf("Decode(%q) = %q, %v; want ErrInvalid", f.token, got, err)
			}
		})
	}
}

// awkwardToken returns a token for scope, and its bytes, whose length needs
// padding in padded base64 and whose text uses the URL-only characters - or
// _, so that the other base64 spellings of it differ from it.
func awkwardToken(t *testing.T, c *pagetoken.Codec, scope string) (string, []byte) {
	t.Helper()
	for i := range 1000 {
		cursor := []byte(fmt.Sprintf("2026-11-01|note-%d", i))
		tok := c.Encode(scope, cursor)
		if (len(cursor)+16)%3 != 0 && strings.ContainsAny(tok, "-_") {
			raw, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil {
				t.Fatalf("token %q is not unpadded URL base64: %v", tok, err)
			}
			return tok, raw
		}
	}
	t.Fatal("no cursor gave a token with - or _ and padding")
	return "", nil
}

// TestCodec_Decode_refusesNewlines: base64 decoders skip CR and LF, even in
// Strict mode, so a token with line breaks inserted is a second spelling of
// a valid token.
func TestCodec_Decode_refusesNewlines(t *testing.T) {
	t.Parallel()
	c := newCodec(t, testKey)
	tok := c.Encode("s", []byte("cursor"))
	for _, forged := range []string{tok + "\n", tok + "\r\n", tok[:4] + "\n" + tok[4:], "\r" + tok} {
		if got, err := c.Decode("s", forged); !errors.Is(err, pagetoken.ErrInvalid) {
			t.Errorf("Decode(%q) = %q, %v; want ErrInvalid", forged, got, err)
		}
	}
}

// TestCodec_Decode_refusesNonCanonicalEncoding: a second spelling of a
// valid token (different unused bits in its last character) is refused, so
// tokens cannot be varied to dodge a cache or a replay check.
func TestCodec_Decode_refusesNonCanonicalEncoding(t *testing.T) {
	t.Parallel()
	c := newCodec(t, testKey)
	// 3 cursor bytes + a 16-byte tag = 19 bytes: the last character carries
	// 2 bits of data and 4 unused bits.
	tok := c.Encode("s", []byte("abc"))
	if len(tok)%4 != 2 {
		t.Fatalf("len(token) = %d, want 2 mod 4 for this test", len(tok))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	variant := tok[:len(tok)-1] + string(alphabet[last|1])
	if variant == tok {
		variant = tok[:len(tok)-1] + string(alphabet[last|2])
	}
	lenient, err := base64.RawURLEncoding.DecodeString(variant)
	genuine, _ := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !bytes.Equal(lenient, genuine) {
		t.Fatalf("variant %q does not decode leniently to the same bytes (err %v)", variant, err)
	}
	if got, err := c.Decode("s", variant); !errors.Is(err, pagetoken.ErrInvalid) {
		t.Errorf("Decode(non-canonical %q) = %q, %v; want ErrInvalid", variant, got, err)
	}
}

func TestNew_keyLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"empty", []byte{}, true},
		{"16_bytes", make([]byte, 16), true},
		{"31_bytes", make([]byte, 31), true},
		{"32_bytes", make([]byte, 32), false},
		{"64_bytes", make([]byte, 64), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := pagetoken.New(tt.key)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("New(%d bytes) error = %v, want error: %v", len(tt.key), err, tt.wantErr)
			}
			if tt.wantErr && c != nil {
				t.Errorf("New(%d bytes) = %v, want nil Codec with the error", len(tt.key), c)
			}
			if !tt.wantErr && c == nil {
				t.Errorf("New(%d bytes) = nil, want a Codec", len(tt.key))
			}
		})
	}
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		requested int32
		want      int
	}{
		{0, 50},
		{-1, 50},
		{-2147483648, 50},
		{1, 1},
		{7, 7},
		{50, 50},
		{99, 99},
		{100, 100},
		{101, 100},
		{1000, 100},
		{2147483647, 100},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.requested), func(t *testing.T) {
			t.Parallel()
			if got := pagetoken.PageSize(tt.requested); got != tt.want {
				t.Errorf("PageSize(%d) = %d, want %d", tt.requested, got, tt.want)
			}
		})
	}
}
