package server_test

import (
	"context"
	"errors"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

var protocols = []goclient.Protocol{goclient.Connect, goclient.ConnectJSON, goclient.GRPC, goclient.GRPCWeb}

// outcome is what a call returned, in a form comparable across protocols.
type outcome struct {
	code connect.Code // 0 for success
	msg  string
}

func outcomeOf(err error) outcome {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return outcome{code: ce.Code(), msg: ce.Message()}
	}
	if err != nil {
		return outcome{code: connect.CodeUnknown, msg: err.Error()}
	}
	return outcome{}
}

// TestProtocolsAgree runs the same script of calls over Connect (binary and
// JSON), gRPC and gRPC-Web and asserts that every step has the same outcome
// on all of them, successes and each kind of refusal alike.
func TestProtocolsAgree(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	member := srv.CreateUser("member@example.com", "member")
	viewer := srv.CreateUser("viewer@example.com", "viewer")
	ctx := context.Background()

	script := func(p goclient.Protocol) []outcome {
		m := srv.Client(p, member.Token)
		v := srv.Client(p, viewer.Token)
		anon := srv.Client(p, "")
		var got []outcome
		add := func(err error) { got = append(got, outcomeOf(err)) }

		created, err := m.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t-" + p.String(), Body: "b"}))
		add(err)
		if err != nil {
			return got
		}
		id := created.Msg.GetNote().GetId()
		got1, err := m.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		add(err)
		if err == nil && got1.Msg.GetNote().GetTitle() != "t-"+p.String() {
			t.Errorf("%s: GetNote title = %q, want %q", p, got1.Msg.GetNote().GetTitle(), "t-"+p.String())
		}
		_, err = m.Notes.UpdateNote(ctx, connect.NewRequest(&notesv1.UpdateNoteRequest{
			Note:       &notesv1.Note{Id: id, Body: "new"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"body"}},
		}))
		add(err)
		_, err = anon.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		add(err) // unauthenticated
		_, err = v.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "x"}))
		add(err) // permission_denied
		_, err = v.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		add(err) // not_found: not shared with the viewer
		_, err = m.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: ""}))
		add(err) // invalid_argument
		_, err = m.Admin.ListAuditEvents(ctx, connect.NewRequest(&adminv1.ListAuditEventsRequest{}))
		add(err) // permission_denied: admin only
		_, err = m.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id}))
		add(err)
		// The member logs in afresh, logs out, and the token stops working at once.
		fresh := srv.Client(p, srv.Login(member.Email, member.Password))
		_, err = fresh.Auth.Logout(ctx, connect.NewRequest(&authv1.LogoutRequest{}))
		add(err)
		_, err = fresh.Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
		add(err) // unauthenticated: session revoked
		return got
	}

	want := []outcome{
		{}, {}, {},
		{connect.CodeUnauthenticated, "authentication required"},
		{connect.CodePermissionDenied, "requires one of the roles: admin, member"},
		{connect.CodeNotFound, "note not found"},
		{connect.CodeInvalidArgument, "validation error: title: must be at least 1 characters"},
		{connect.CodePermissionDenied, "requires one of the roles: admin"},
		{},
		{},
		{connect.CodeUnauthenticated, "invalid credentials"},
	}
	for _, p := range protocols {
		got := script(p)
		if len(got) != len(want) {
			t.Fatalf("%s: got %d outcomes %v, want %d", p, len(got), got, len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s step %d: got %v, want %v", p, i, got[i], want[i])
			}
		}
	}
}

// TestNoteCrossesProtocols is the README's promise: a note created over
// Connect JSON is read back over gRPC (and gRPC-Web).
func TestNoteCrossesProtocols(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	tok := srv.AdminToken()
	ctx := context.Background()
	res, err := srv.Client(goclient.ConnectJSON, tok).Notes.CreateNote(ctx,
		connect.NewRequest(&notesv1.CreateNoteRequest{Title: "über", Body: "日本語 body"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []goclient.Protocol{goclient.GRPC, goclient.GRPCWeb, goclient.Connect} {
		got, err := srv.Client(p, tok).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: res.Msg.GetNote().GetId()}))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if got.Msg.GetNote().GetTitle() != "über" || got.Msg.GetNote().GetBody() != "日本語 body" {
			t.Errorf("%s: got %v, want the note created over Connect JSON", p, got.Msg.GetNote())
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	for _, p := range []goclient.Protocol{goclient.Connect, goclient.GRPC} {
		opts := []connect.ClientOption{}
		if p == goclient.GRPC {
			opts = append(opts, connect.WithGRPC())
		}
		c := grpchealth.NewClient(srv.HTTPClient(), srv.URL, opts...)
		res, err := c.Check(context.Background(), &grpchealth.CheckRequest{Service: "guard.notes.v1.NoteService"})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if res.Status != grpchealth.StatusServing {
			t.Errorf("%s: got status %v, want serving", p, res.Status)
		}
	}
}
