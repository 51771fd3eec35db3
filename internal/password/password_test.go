package password_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/connectguard/guard/internal/password"
)

// cheap keeps tests fast; one test uses the defaults.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func cheapHasher(opts ...password.Option) *password.Hasher {
	return password.NewHasher(append([]password.Option{password.WithParams(cheap)}, opts...)...)
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		attempt  string
		want     bool
	}{
		{name: "same_password", password: "correct horse battery", attempt: "correct horse battery", want: true},
		{name: "wrong_password", password: "correct horse battery", attempt: "correct horse battery!", want: false},
		{name: "case_differs", password: "Correct Horse", attempt: "correct horse", want: false},
		{name: "unicode", password: "pässwörd-ñ-日本語", attempt: "pässwörd-ñ-日本語", want: true},
		{name: "unicode_other_normalization", password: "pässwörd-ñ-日本語", attempt: "pa\u0308sswo\u0308rd-n\u0303-日本語", want: false},
		{name: "empty_attempt", password: "correct horse battery", attempt: "", want: false},
	}
	h := cheapHasher()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			encoded, err := h.Hash(ctx, tt.password)
			if err != nil {
				t.Fatalf("Hash() error = %v, want nil", err)
			}
			ok, rehash, err := h.Verify(ctx, tt.attempt, encoded)
			if err != nil {
				t.Fatalf("Verify() error = %v, want nil", err)
			}
			if ok != tt.want {
				t.Errorf("Verify() ok = %v, want %v", ok, tt.want)
			}
			if rehash {
				t.Errorf("Verify() rehash = true, want false for current params")
			}
		})
	}
}

func TestHashFormat(t *testing.T) {
	t.Parallel()
	h := cheapHasher()
	a, err := h.Hash(t.Context(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash() error = %v, want nil", err)
	}
	b, err := h.Hash(t.Context(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash() error = %v, want nil", err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal (%q), want distinct salts", a)
	}
	const prefix = "$argon2id$v=19$m=64,t=1,p=1$"
	if !strings.HasPrefix(a, prefix) {
		t.Errorf("Hash() = %q, want prefix %q", a, prefix)
	}
	parts := strings.Split(a, "$")
	if got, want := len(parts), 6; got != want {
		t.Fatalf("Hash() has %d $-separated parts, want %d", got, want)
	}
	// RawStdEncoding: 16-byte salt is 22 characters, 32-byte key is 43, no padding.
	if got, want := len(parts[4]), 22; got != want {
		t.Errorf("salt is %d characters, want %d", got, want)
	}
	if got, want := len(parts[5]), 43; got != want {
		t.Errorf("key is %d characters, want %d", got, want)
	}
	if strings.ContainsRune(parts[4]+parts[5], '=') {
		t.Errorf("Hash() = %q, want no base64 padding", a)
	}
}

func TestDefaultParams(t *testing.T) {
	t.Parallel()
	if got, want := password.DefaultParams(), (password.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}); got != want {
		t.Errorf("DefaultParams() = %+v, want %+v", got, want)
	}
	h := password.NewHasher()
	encoded, err := h.Hash(t.Context(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash() error = %v, want nil", err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("Hash() = %q, want prefix %q", encoded, want)
	}
	ok, rehash, err := h.Verify(t.Context(), "correct horse battery", encoded)
	if err != nil || !ok || rehash {
		t.Errorf("Verify() = %v, %v, %v, want true, false, nil", ok, rehash, err)
	}
}

func TestVerifyRehash(t *testing.T) {
	t.Parallel()
	old := cheapHasher()
	encoded, err := old.Hash(t.Context(), "correct horse battery")
	if err != nil {
		t.Fatalf("Hash() error = %v, want nil", err)
	}
	raise := func(f func(*password.Params)) password.Params {
		p := cheap
		f(&p)
		return p
	}
	tests := []struct {
		name       string
		params     password.Params
		attempt    string
		wantOK     bool
		wantRehash bool
	}{
		{name: "same_params", params: cheap, attempt: "correct horse battery", wantOK: true},
		{name: "memory_raised", params: raise(func(p *password.Params) { p.Memory = 128 }), attempt: "correct horse battery", wantOK: true, wantRehash: true},
		{name: "time_raised", params: raise(func(p *password.Params) { p.Time = 2 }), attempt: "correct horse battery", wantOK: true, wantRehash: true},
		{name: "threads_raised", params: raise(func(p *password.Params) { p.Threads = 2 }), attempt: "correct horse battery", wantOK: true, wantRehash: true},
		{name: "key_raised", params: raise(func(p *password.Params) { p.KeyLen = 64 }), attempt: "correct horse battery", wantOK: true, wantRehash: true},
		{name: "memory_lowered", params: raise(func(p *password.Params) { p.Memory = 32 }), attempt: "correct horse battery", wantOK: true},
		{name: "raised_but_wrong_password", params: raise(func(p *password.Params) { p.Memory = 128 }), attempt: "wrong horse battery", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := password.NewHasher(password.WithParams(tt.params))
			ok, rehash, err := h.Verify(t.Context(), tt.attempt, encoded)
			if err != nil {
				t.Fatalf("Verify() error = %v, want nil", err)
			}
			if ok != tt.wantOK || rehash != tt.wantRehash {
				t.Errorf("Verify() = %v, %v, want %v, %v", ok, rehash, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	const (
		salt = "c29tZXNhbHRzb21lc2FsdA"                      // 16 bytes
		key  = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U" // 32 bytes
	)
	tests := []struct {
		name    string
		encoded string
	}{
		{name: "empty", encoded: ""},
		{name: "garbage", encoded: "not a hash"},
		{name: "bcrypt", encoded: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{name: "argon2i", encoded: "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "old_version", encoded: "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "missing_version", encoded: "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "params_reordered", encoded: "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{name: "params_missing", encoded: "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{name: "params_extra", encoded: "$argon2id$v=19$m=64,t=1,p=1,x=1$" + salt + "$" + key},
		{name: "params_negative", encoded: "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{name: "params_not_numbers", encoded: "$argon2id$v=19$m=a,t=b,p=c$" + salt + "$" + key},
		{name: "params_overflow", encoded: "$argon2id$v=19$m=99999999999999999999,t=1,p=1$" + salt + "$" + key},
		{name: "time_zero", encoded: "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{name: "threads_zero", encoded: "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{name: "memory_below_8_per_thread", encoded: "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{name: "absurd_memory", encoded: "$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key},
		{name: "absurd_memory_4gib", encoded: "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{name: "absurd_time", encoded: "$argon2id$v=19$m=64,t=101,p=1$" + salt + "$" + key},
		{name: "absurd_threads", encoded: "$argon2id$v=19$m=1024,t=1,p=65$" + salt + "$" + key},
		{name: "threads_over_uint8", encoded: "$argon2id$v=19$m=4096,t=1,p=257$" + salt + "$" + key},
		{name: "salt_not_base64", encoded: "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{name: "salt_padded", encoded: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{name: "salt_too_short", encoded: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{name: "key_empty", encoded: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{name: "key_too_short", encoded: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5"},
		{name: "extra_segment", encoded: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$"},
		{name: "no_leading_dollar", encoded: "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{name: "huge", encoded: "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 1<<20)},
	}
	h := cheapHasher()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := h.Verify(t.Context(), "correct horse battery", tt.encoded)
			if !errors.Is(err, password.ErrMalformedHash) {
				t.Errorf("Verify() error = %v, want %v", err, password.ErrMalformedHash)
			}
			if ok || rehash {
				t.Errorf("Verify() = %v, %v, want false, false", ok, rehash)
			}
		})
	}
}

func TestHashRefusesLongInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		password string
		wantErr  error
	}{
		{name: "max_runes", password: strings.Repeat("a", password.MaxLength)},
		{name: "max_runes_multibyte", password: strings.Repeat("日", password.MaxLength)},
		{name: "too_many_runes", password: strings.Repeat("a", password.MaxLength+1), wantErr: password.ErrTooLong},
		{name: "too_many_multibyte_runes", password: strings.Repeat("日", password.MaxLength+1), wantErr: password.ErrTooLong},
		{name: "megabyte", password: strings.Repeat("a", 1<<20), wantErr: password.ErrTooLong},
	}
	h := cheapHasher()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			encoded, err := h.Hash(t.Context(), tt.password)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Hash() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if encoded != "" {
					t.Errorf("Hash() = %q, want empty on error", encoded)
				}
				return
			}
			if ok, _, err := h.Verify(t.Context(), tt.password, encoded); !ok || err != nil {
				t.Errorf("Verify() = %v, %v, want true, nil", ok, err)
			}
		})
	}
}

func TestInvalidParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params password.Params
	}{
		{name: "zero", params: password.Params{}},
		{name: "time_zero", params: password.Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{name: "threads_zero", params: password.Params{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32}},
		{name: "salt_short", params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}},
		{name: "key_short", params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8}},
		{name: "memory_huge", params: password.Params{Memory: 1<<20 + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := password.NewHasher(password.WithParams(tt.params))
			if _, err := h.Hash(t.Context(), "correct horse battery"); !errors.Is(err, password.ErrInvalidParams) {
				t.Errorf("Hash() error = %v, want %v", err, password.ErrInvalidParams)
			}
			h.VerifyDummy(t.Context(), "correct horse battery") // must not panic
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	t.Parallel()
	h := cheapHasher()
	// It returns nothing; what matters is that it runs a real verification
	// (covered by the benchmark) and is safe to call concurrently.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { h.VerifyDummy(t.Context(), "correct horse battery") })
	}
	wg.Wait()
	if _, inUse := password.Slots(h); inUse != 0 {
		t.Errorf("slots in use after VerifyDummy = %d, want 0", inUse)
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()

	t.Run("waiting_caller_honours_cancel", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(1))
		release := password.HoldSlot(h) // as if a hash were running
		defer release()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		// The only slot is taken, so the context is the only way out: a hash
		// that ran anyway would return a nil error here.
		if _, err := h.Hash(ctx, "correct horse battery"); !errors.Is(err, context.Canceled) {
			t.Errorf("Hash() error = %v, want %v", err, context.Canceled)
		}
		if _, _, err := h.Verify(ctx, "correct horse battery", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"); !errors.Is(err, context.Canceled) {
			t.Errorf("Verify() error = %v, want %v", err, context.Canceled)
		}
	})

	t.Run("waiting_caller_cancelled_while_blocked", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(1))
		release := password.HoldSlot(h)
		defer release()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := h.Hash(ctx, "correct horse battery")
			done <- err
		}()
		cancel() // before or after Hash blocks: either way it must fail
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Hash() error = %v, want %v", err, context.Canceled)
		}
	})

	t.Run("waiting_caller_proceeds_after_release", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(1))
		release := password.HoldSlot(h)
		done := make(chan error, 1)
		go func() {
			_, err := h.Hash(t.Context(), "correct horse battery")
			done <- err
		}()
		release()
		if err := <-done; err != nil {
			t.Errorf("Hash() error = %v, want nil", err)
		}
	})

	t.Run("cancelled_context_with_free_slot", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(1))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		// With a free slot select may pick either case; repeating makes a
		// missing re-check of ctx fail this test all but 2^-32 of the time.
		for range 32 {
			if _, err := h.Hash(ctx, "correct horse battery"); !errors.Is(err, context.Canceled) {
				t.Fatalf("Hash() error = %v, want %v", err, context.Canceled)
			}
		}
		if _, inUse := password.Slots(h); inUse != 0 {
			t.Errorf("slots in use = %d, want 0", inUse)
		}
	})

	t.Run("many_callers_two_slots", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(2))
		if capacity, _ := password.Slots(h); capacity != 2 {
			t.Fatalf("semaphore capacity = %d, want 2", capacity)
		}
		errs := make(chan error, 16)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				_, err := h.Hash(t.Context(), "correct horse battery")
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Hash() error = %v, want nil", err)
			}
		}
		if _, inUse := password.Slots(h); inUse != 0 {
			t.Errorf("slots in use after all returned = %d, want 0", inUse)
		}
	})

	t.Run("max_concurrent_below_one_means_one", func(t *testing.T) {
		t.Parallel()
		h := cheapHasher(password.WithMaxConcurrent(0))
		if capacity, _ := password.Slots(h); capacity != 1 {
			t.Errorf("semaphore capacity = %d, want 1", capacity)
		}
	})
}

func TestCheck(t *testing.T) {
	t.Parallel()
	const email = "alice.smith@example.com"
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{name: "ok_ascii", password: "correct horse battery staple"},
		{name: "ok_unicode", password: "pässwörd-ñ-日本語"},
		{name: "ok_words_and_digit", password: "a long test password 1"},
		{name: "ok_random", password: "Y2GXCLUSU54GZHXJGIRKPROW"},
		{name: "ok_max_runes", password: strings.Repeat("Tr0ub4dor&3 ", 11)[:password.MaxLength-4] + "yes!"},
		{name: "ok_max_runes_4_bytes", password: strings.Repeat("😀🐙🚀🎲🌵", password.MaxLength/5) + "😀🐙🚀"},
		{name: "empty", password: "", want: password.ErrTooShort},
		{name: "seven_runes", password: "abcdefg", want: password.ErrTooShort},
		{name: "seven_runes_many_bytes", password: "日本語日本語日", want: password.ErrTooShort},
		{name: "too_many_runes", password: strings.Repeat("x", password.MaxLength+1), want: password.ErrTooLong},
		{name: "too_many_bytes", password: strings.Repeat("😀", password.MaxLength+1), want: password.ErrTooLong},
		{name: "megabyte", password: strings.Repeat("x", 1<<20), want: password.ErrTooLong},
		{name: "invalid_utf8", password: "abcdefgh\xff", want: password.ErrInvalid},
		// From breach corpora; the old 102-entry list let the last four through.
		{name: "common_password", password: "password", want: password.ErrCommon},
		{name: "common_12345678", password: "12345678", want: password.ErrCommon},
		{name: "common_qwertyui", password: "qwertyui", want: password.ErrCommon},
		{name: "common_upper_case", password: "PASSWORD", want: password.ErrCommon},
		{name: "common_mixed_case", password: "PassWord1", want: password.ErrCommon},
		{name: "common_spongebob", password: "spongebob", want: password.ErrCommon},
		{name: "common_babygirl1", password: "babygirl1", want: password.ErrCommon},
		{name: "common_tinkerbell", password: "tinkerbell", want: password.ErrCommon},
		{name: "common_12345678910", password: "12345678910", want: password.ErrCommon},
		{name: "common_season_year", password: "Summer2024!", want: password.ErrCommon},
		{name: "the_email", password: email, want: password.ErrSimilar},
		{name: "the_local_part", password: "alice.smith", want: password.ErrSimilar},
		{name: "name_and_year", password: "smith2026!", want: password.ErrSimilar},
		{name: "repeat", password: "aaaaaaaaaaaa", want: password.ErrPredictable},
		{name: "sequence", password: "abcdefghijkl", want: password.ErrPredictable},
		{name: "repeated_multibyte", password: strings.Repeat("😀", password.MaxLength), want: password.ErrPredictable},
		{name: "few_distinct_runes", password: "日本語日本語日本", want: password.ErrPredictable},
		{name: "two_plain_words", password: "mauvelamp", want: password.ErrWeak},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := password.Check(tt.password, email); !errors.Is(got, tt.want) {
				t.Errorf("Check(%.20q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

func BenchmarkHash(b *testing.B) {
	h := password.NewHasher()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := password.NewHasher()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.VerifyDummy(ctx, "correct horse battery")
	}
}

func BenchmarkCheckTooLong(b *testing.B) {
	long := strings.Repeat("x", 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		_ = password.Check(long)
	}
}

// BenchmarkCheck times the strength estimate on the longest password it
// reads (longer ones are cut), in the slowest alphabet seen.
func BenchmarkCheck(b *testing.B) {
	pw := strings.Repeat("日本語パスワード", 16)
	b.ReportAllocs()
	for b.Loop() {
		_ = password.Check(pw, "alice@example.com")
	}
}
