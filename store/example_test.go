package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/connectguard/guard/store"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, filepath.Join(dir, "guard.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	alice, err := db.CreateUser(ctx, "alice@example.com", "$argon2id$...", []string{"member"})
	if err != nil {
		log.Fatal(err)
	}
	bob, err := db.CreateUser(ctx, "bob@example.com", "$argon2id$...", []string{"viewer"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := db.CreateUser(ctx, "ALICE@example.com", "$argon2id$...", nil); errors.Is(err, store.ErrConflict) {
		fmt.Println("email taken")
	}

	note, err := db.CreateNote(ctx, alice.ID, "Plans", "Ship it.")
	if err != nil {
		log.Fatal(err)
	}
	if err := db.ShareNote(ctx, note.ID, bob.ID, store.PermissionRead); err != nil {
		log.Fatal(err)
	}
	for _, u := range []store.User{alice, bob} {
		_, p, err := db.NoteAccess(ctx, note.ID, u.ID)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %v\n", u.Email, p)
	}
	// Output:
	// email taken
	// alice@example.com: owner
	// bob@example.com: read
}

// A refresh token works once. Presenting it again, as whoever copied it
// would, revokes the session, and with it the token the rotation issued.
func ExampleDB_RotateRefreshToken() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := store.Open(ctx, filepath.Join(dir, "guard.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	hash := func(token string) []byte {
		h := sha256.Sum256([]byte(token))
		return h[:]
	}
	u, err := db.CreateUser(ctx, "alice@example.com", "$argon2id$...", []string{"member"})
	if err != nil {
		log.Fatal(err)
	}
	expire := time.Now().Add(24 * time.Hour)
	// A token session: no cookie hash.
	sess, err := db.CreateSession(ctx, u.ID, expire, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := db.CreateRefreshToken(ctx, sess.ID, hash("first"), expire); err != nil {
		log.Fatal(err)
	}

	_, err = db.RotateRefreshToken(ctx, hash("first"), hash("second"), expire)
	fmt.Println("rotate first:", err)
	s, err := db.RotateRefreshToken(ctx, hash("first"), hash("third"), expire)
	fmt.Println("rotate first again:", errors.Is(err, store.ErrReused), s.ID == sess.ID, s.RevokeTime != nil)
	_, err = db.RotateRefreshToken(ctx, hash("second"), hash("fourth"), expire)
	fmt.Println("rotate second:", errors.Is(err, store.ErrExpired))
	// Output:
	// rotate first: <nil>
	// rotate first again: true true true
	// rotate second: true
}
