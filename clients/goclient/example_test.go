package goclient_test

import (
	"context"
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

// Example logs in over gRPC, creates a note, and shows how a refusal
// looks. It is the README's Go client walkthrough, run against a real
// server.
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
	c := goclient.New(baseURL, goclient.WithProtocol(goclient.GRPC))

	login, err := c.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{
		Email:    "admin@example.com",
		Password: "correct horse battery staple",
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	c.SetToken(login.Msg.GetAccessToken())

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

	c.SetToken("")
	_, err = c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: res.Msg.GetNote().GetId()}))
	fmt.Println("no token:", connect.CodeOf(err))
	// Output:
	// created: From Go
	// absent note: not_found
	// no token: unauthenticated
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
