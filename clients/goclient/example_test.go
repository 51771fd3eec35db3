package goclient_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/server"
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
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		args := []string{"-addr=127.0.0.1:0", "-db=" + filepath.Join(dir, "guard.db")}
		env := map[string]string{"GUARD_ADMIN_PASSWORD": adminPassword}
		done <- server.Run(ctx, args, func(k string) string { return env[k] }, outW, io.Discard)
		_ = outW.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "guard listening on "); ok {
				addr <- u
			}
		}
		close(addr)
	}()
	stop = func() {
		cancel()
		<-done
		_ = os.RemoveAll(dir)
	}
	u, ok := <-addr
	if !ok {
		runErr := <-done
		cancel()
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("server exited before listening: %w", errors.Join(runErr, errors.New("no address printed")))
	}
	return u, stop, nil
}
