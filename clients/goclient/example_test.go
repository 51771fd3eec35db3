package goclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
)

// Example signs in with a password over gRPC, creates a note, and shows
// how refusals look and what they carry. It is the README's Go client
// walkthrough, run against a real server.
func Example() {
	// A real Guard server on a random loopback port with a temporary
	// database; in the README this is the server started with
	// `go run ./cmd/server` at http://127.0.0.1:8080.
	baseURL, stop, err := startGuard("correct horse battery staple")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	ctx := context.Background()
	// The client signs in on its first call, keeps the session in memory
	// and refreshes its access token when the server refuses it.
	c := goclient.New(baseURL, goclient.WithProtocol(goclient.GRPC),
		goclient.WithPassword("admin@example.com", "correct horse battery staple"))

	res, err := c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{
		Title: "From Go",
		Body:  "sent over gRPC",
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created:", res.Msg.GetNote().GetTitle())

	// Refusals are *connect.Error values with a code.
	_, err = c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}))
	fmt.Println("absent note:", connect.CodeOf(err))

	// Invalid input names each field the server refused.
	_, err = c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: ""}))
	fmt.Println("empty title:", connect.CodeOf(err), goclient.FieldViolations(err))

	if err := c.Logout(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_, err = c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: res.Msg.GetNote().GetId()}))
	fmt.Println("signed out:", connect.CodeOf(err))
	// Output:
	// created: From Go
	// absent note: not_found
	// empty title: invalid_argument map[title:must be at least 1 characters]
	// signed out: unauthenticated
}

// ExampleWithSessionStore resumes a session a CLI saved, and saves each
// new one: the refresh token rotates with every refresh, so the copy on
// disk must follow. Keep the file readable by its user alone (0600): it
// signs in as them. See SECURITY.md.
func ExampleWithSessionStore() {
	baseURL, stop, err := startGuard("correct horse battery staple")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "guard-cli-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "session.json")

	save := func(s goclient.Session) {
		b, _ := json.Marshal(s)
		_ = os.WriteFile(path, b, 0o600)
	}
	// First run: sign in, and the store writes the session.
	first := goclient.New(baseURL, goclient.WithSessionStore(save))
	if _, err := first.Login(ctx, "admin@example.com", "correct horse battery staple"); err != nil {
		fmt.Println(err)
		return
	}

	// A later run: resume from the file, no password needed.
	var saved goclient.Session
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &saved) != nil {
		fmt.Println("no saved session")
		return
	}
	later := goclient.New(baseURL, goclient.WithSession(saved), goclient.WithSessionStore(save))
	who, err := later.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("resumed as", who.Msg.GetUser().GetEmail())
	// Output:
	// resumed as admin@example.com
}

// startGuard runs the server as the binary does, with adminPassword for
// admin@example.com, and returns its base URL and a function that stops it
// and removes its database.
func startGuard(adminPassword string) (baseURL string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "guard-example-")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	url, wait, err := servertest.Launch(ctx, []string{"-db=" + filepath.Join(dir, "guard.db")},
		map[string]string{"GUARD_ADMIN_PASSWORD": adminPassword}, io.Discard)
	if err != nil {
		cancel()
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return url, func() {
		cancel()
		_ = wait()
		_ = os.RemoveAll(dir)
	}, nil
}
