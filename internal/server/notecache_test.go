package server_test

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestNoteAccessCacheIsExact attacks the in-process cache of note access
// (service/notes): every change to a note or its shares holds on the very
// next call of the same process, with no wait, although each caller's
// access was just cached by a call made a moment before. A writer demoted
// to reader can no longer write, a stranger given a share can read, an
// update is seen, a deleted note is gone; and what was refused wrote
// nothing.
func TestNoteAccessCacheIsExact(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	owner := srv.CreateUser("owner@example.com", "member")
	bob := srv.CreateUser("bob@example.com", "member")
	carol := srv.CreateUser("carol@example.com", "member")
	notesOf := func(u servertest.User) *goclient.Client { return srv.Client(goclient.Connect, u.Token) }
	oc, bc, cc := notesOf(owner), notesOf(bob), notesOf(carol)

	created, err := oc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t0", Body: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.GetNote().GetId()
	share := func(u servertest.User, p notesv1.SharePermission) {
		t.Helper()
		if _, err := oc.Notes.ShareNote(ctx, connect.NewRequest(&notesv1.ShareNoteRequest{Id: id, UserId: u.ID, Permission: p})); err != nil {
			t.Fatal(err)
		}
	}
	get := func(c *goclient.Client) (*notesv1.Note, error) {
		res, err := c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetNote(), nil
	}
	update := func(c *goclient.Client, title string) error {
		_, err := c.Notes.UpdateNote(ctx, connect.NewRequest(&notesv1.UpdateNoteRequest{
			Note: &notesv1.Note{Id: id, Title: title}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}},
		}))
		return err
	}
	code := func(err error) connect.Code {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return ce.Code()
		}
		return 0
	}

	t.Run("a writer demoted to reader cannot write on the next call", func(t *testing.T) {
		share(bob, notesv1.SharePermission_SHARE_PERMISSION_WRITER)
		if err := update(bc, "t1"); err != nil { // caches bob: writer
			t.Fatalf("bob as writer: %v", err)
		}
		share(bob, notesv1.SharePermission_SHARE_PERMISSION_READER)
		if err := update(bc, "defaced"); code(err) != connect.CodePermissionDenied {
			t.Fatalf("bob's update after the demotion: %v, want permission_denied", err)
		}
		n, err := srv.Store().Note(ctx, id)
		if err != nil || n.Title != "t1" {
			t.Errorf("stored title = %q, %v; want t1 (nothing written)", n.Title, err)
		}
	})

	t.Run("a stranger given a share reads on the next call", func(t *testing.T) {
		if _, err := get(cc); code(err) != connect.CodeNotFound { // caches carol: none
			t.Fatalf("carol before the share: %v, want not_found", err)
		}
		share(carol, notesv1.SharePermission_SHARE_PERMISSION_READER)
		if n, err := get(cc); err != nil || n.GetTitle() != "t1" {
			t.Fatalf("carol after the share: %v, %v; want the note", n, err)
		}
	})

	t.Run("an update is seen on the next call", func(t *testing.T) {
		if n, err := get(bc); err != nil || n.GetTitle() != "t1" { // caches bob's view
			t.Fatalf("bob: %v, %v", n, err)
		}
		if err := update(oc, "t2"); err != nil {
			t.Fatal(err)
		}
		if n, err := get(bc); err != nil || n.GetTitle() != "t2" {
			t.Errorf("bob after the owner's update: %v, %v; want title t2", n, err)
		}
	})

	t.Run("a deleted note is gone on the next call", func(t *testing.T) {
		if _, err := get(cc); err != nil {
			t.Fatal(err)
		}
		if _, err := oc.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id})); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*goclient.Client{oc, bc, cc} {
			if _, err := get(c); code(err) != connect.CodeNotFound {
				t.Errorf("GetNote after the delete: %v, want not_found", err)
			}
		}
	})
}
