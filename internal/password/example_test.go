package password_test

import (
	"context"
	"fmt"

	"github.com/connectguard/guard/internal/password"
)

func Example() {
	ctx := context.Background()
	if err := password.Check("pässwörd-ñ-日本語"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(password.Check("iloveyou"))
	fmt.Println(password.Check("alice2026!", "alice@example.com"))

	// Cheap parameters keep the example fast; production uses the defaults.
	h := password.NewHasher(password.WithParams(password.Params{
		Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32,
	}))
	encoded, err := h.Hash(ctx, "pässwörd-ñ-日本語")
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, rehash, err := h.Verify(ctx, "pässwörd-ñ-日本語", encoded)
	fmt.Println(ok, rehash, err)

	// Raising the parameters later flags old hashes for replacement.
	stronger := password.NewHasher(password.WithParams(password.Params{
		Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32,
	}))
	ok, rehash, err = stronger.Verify(ctx, "pässwörd-ñ-日本語", encoded)
	fmt.Println(ok, rehash, err)
	// Output:
	// password is too common
	// password is too similar to your email
	// true false <nil>
	// true true <nil>
}
