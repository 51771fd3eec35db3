package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

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
