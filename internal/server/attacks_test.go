package server_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/connectguard/guard/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// post sends a raw Connect JSON call, as curl would.
func post(t *testing.T, srv *servertest.Server, procedure, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	for k, vs := range header {
		h[k] = append(h[k], vs...)
	}
	return send(t, srv, http.MethodPost, procedure, body, h)
}

func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	return connect.CodeOf(err)
}

func countNotes(t *testing.T, srv *servertest.Server) int {
	t.Helper()
	n, err := srv.Store().CountNotes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBadCredentialsWriteNothing attacks authentication with tampered,
// foreign and doubled credentials on a write method; each must be refused
// with unauthenticated and an RFC 6750 challenge, and no note written.
func TestBadCredentialsWriteNothing(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	good := srv.AdminToken()
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"admin"`, `"member"`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`))
	algNone := noneHeader + "." + parts[1] + "."

	tests := []struct {
		name      string
		auth      []string
		wantMsg   string
		wantError string // the error= parameter of WWW-Authenticate
	}{
		{"missing", nil, "authentication required", ""},
		{"tampered_payload", []string{"Bearer " + tampered}, "invalid credentials", "invalid_token"},
		{"alg_none", []string{"Bearer " + algNone}, "invalid credentials", "invalid_token"},
		{"garbage", []string{"Bearer not-a-token"}, "invalid credentials", "invalid_token"},
		{"oversized", []string{"Bearer " + strings.Repeat("a", 8000)}, "invalid credentials", "invalid_request"},
		{"wrong_scheme", []string{"Basic " + good}, "invalid credentials", "invalid_request"},
		{"two_headers", []string{"Bearer " + good, "Bearer " + good}, "more than one credential", "invalid_request"},
	}
	before := countNotes(t, srv)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, a := range tt.auth {
				h.Add("Authorization", a)
			}
			res, body := post(t, srv, "/guard.notes.v1.NoteService/CreateNote", `{"title":"pwned"}`, h)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("got HTTP %d, want 401", res.StatusCode)
			}
			if want := `"code":"unauthenticated","message":"` + tt.wantMsg + `"`; !strings.Contains(body, want) {
				t.Errorf("got body %s, want it to contain %s", body, want)
			}
			challenge := res.Header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, "Bearer ") {
				t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", challenge)
			}
			if tt.wantError != "" && !strings.Contains(challenge, `error="`+tt.wantError+`"`) {
				t.Errorf("got WWW-Authenticate %q, want error=%q", challenge, tt.wantError)
			}
		})
	}
	if after := countNotes(t, srv); after != before {
		t.Errorf("got %d notes after the attacks, want %d", after, before)
	}
}

// TestOwnership attacks notes across users: a stranger cannot tell another
// user's note from a missing one, a reader cannot write, a writer cannot
// delete or share, and nothing changes when they try.
func TestOwnership(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	owner := srv.CreateUser("owner@example.com", "member")
	stranger := srv.CreateUser("stranger@example.com", "member")
	reader := srv.CreateUser("reader@example.com", "viewer")
	writer := srv.CreateUser("writer@example.com", "member")
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	oc := srv.Client(goclient.Connect, owner.Token)

	created, err := oc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "secret", Body: "owner's"}))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.GetNote().GetId()
	for _, s := range []struct {
		user string
		perm notesv1.SharePermission
	}{{reader.ID, notesv1.SharePermission_SHARE_PERMISSION_READER}, {writer.ID, notesv1.SharePermission_SHARE_PERMISSION_WRITER}} {
		if _, err := oc.Notes.ShareNote(ctx, connect.NewRequest(&notesv1.ShareNoteRequest{Id: id, UserId: s.user, Permission: s.perm})); err != nil {
			t.Fatal(err)
		}
	}
	missing := "aaaaaaaaaaaaaaaaaaaaaaaaaa"
	update := func(noteID string) *connect.Request[notesv1.UpdateNoteRequest] {
		return connect.NewRequest(&notesv1.UpdateNoteRequest{
			Note: &notesv1.Note{Id: noteID, Title: "defaced"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}},
		})
	}
	clientOf := func(u servertest.User) *goclient.Client { return srv.Client(goclient.Connect, u.Token) }

	tests := []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"stranger_get", func() error {
			_, err := clientOf(stranger).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
			return err
		}, connect.CodeNotFound},
		{"stranger_update", func() error { _, err := clientOf(stranger).Notes.UpdateNote(ctx, update(id)); return err }, connect.CodeNotFound},
		{"stranger_delete", func() error {
			_, err := clientOf(stranger).Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id}))
			return err
		}, connect.CodeNotFound},
		{"stranger_share_to_self", func() error {
			_, err := clientOf(stranger).Notes.ShareNote(ctx, connect.NewRequest(&notesv1.ShareNoteRequest{Id: id, UserId: stranger.ID, Permission: notesv1.SharePermission_SHARE_PERMISSION_WRITER}))
			return err
		}, connect.CodeNotFound},
		{"reader_get", func() error {
			_, err := clientOf(reader).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
			return err
		}, 0},
		{"reader_update", func() error { _, err := clientOf(reader).Notes.UpdateNote(ctx, update(id)); return err }, connect.CodePermissionDenied},
		{"writer_delete", func() error {
			_, err := clientOf(writer).Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id}))
			return err
		}, connect.CodePermissionDenied},
		{"writer_share", func() error {
			_, err := clientOf(writer).Notes.ShareNote(ctx, connect.NewRequest(&notesv1.ShareNoteRequest{Id: id, UserId: stranger.ID, Permission: notesv1.SharePermission_SHARE_PERMISSION_READER}))
			return err
		}, connect.CodePermissionDenied},
		{"admin_get_unshared", func() error {
			_, err := admin.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
			return err
		}, connect.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codeOf(tt.call()); got != tt.want {
				t.Errorf("got code %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("hidden_equals_missing", func(t *testing.T) {
		_, errHidden := clientOf(stranger).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		_, errMissing := clientOf(stranger).Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: missing}))
		if outcomeOf(errHidden) != outcomeOf(errMissing) {
			t.Errorf("got hidden %v and missing %v, want the same answer", outcomeOf(errHidden), outcomeOf(errMissing))
		}
	})
	t.Run("note_unchanged", func(t *testing.T) {
		n, err := srv.Store().Note(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n.Title != "secret" || n.Body != "owner's" {
			t.Errorf("got note %q/%q after the attacks, want secret/owner's", n.Title, n.Body)
		}
		if _, p, _ := srv.Store().NoteAccess(ctx, id, stranger.ID); p != 0 {
			t.Errorf("got stranger permission %v, want none", p)
		}
	})
	t.Run("writer_updates", func(t *testing.T) {
		if _, err := clientOf(writer).Notes.UpdateNote(ctx, connect.NewRequest(&notesv1.UpdateNoteRequest{
			Note: &notesv1.Note{Id: id, Body: "edited"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"body"}},
		})); err != nil {
			t.Fatalf("writer update: %v", err)
		}
		n, _ := srv.Store().Note(ctx, id)
		if n.Title != "secret" || n.Body != "edited" {
			t.Errorf("got %q/%q, want the body alone updated", n.Title, n.Body)
		}
	})
	t.Run("admin_moderates", func(t *testing.T) {
		if _, err := admin.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id})); err != nil {
			t.Fatalf("admin delete: %v", err)
		}
		if _, err := srv.Store().Note(ctx, id); err == nil {
			t.Error("got the note after the admin deleted it, want it gone")
		}
	})
}

// TestListNotesScopedAndTamperProof checks that a list holds only what the
// caller may read, pages visit every note once, and page tokens cannot be
// forged or reused by another user.
func TestListNotesScopedAndTamperProof(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	alice := srv.CreateUser("alice@example.com", "member")
	bob := srv.CreateUser("bob@example.com", "member")
	ac, bc := srv.Client(goclient.Connect, alice.Token), srv.Client(goclient.Connect, bob.Token)
	for i := range 5 {
		if _, err := ac.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "a" + string(rune('0'+i))})); err != nil {
			t.Fatal(err)
		}
	}
	bobs, err := bc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "bob's"}))
	if err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	var token string
	for page := 0; ; page++ {
		res, err := ac.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{PageSize: 2, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range res.Msg.GetNotes() {
			if seen[n.GetId()] {
				t.Errorf("note %s listed twice", n.GetId())
			}
			seen[n.GetId()] = true
			if n.GetId() == bobs.Msg.GetNote().GetId() {
				t.Error("got bob's note in alice's list")
			}
		}
		token = res.Msg.GetNextPageToken()
		if token == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging did not end")
		}
		if page == 0 {
			_, err := bc.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{PageToken: token}))
			if codeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("bob using alice's token: got %v, want invalid_argument", err)
			}
			forged := token[:len(token)-2] + "AA"
			if forged == token {
				forged = token[:len(token)-2] + "BB"
			}
			_, err = ac.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{PageToken: forged}))
			if codeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("forged token: got %v, want invalid_argument", err)
			}
		}
	}
	if len(seen) != 5 {
		t.Errorf("got %d notes over all pages, want 5", len(seen))
	}
}

// TestRoleChecksWriteNothing: callers without the role are refused before
// any handler runs.
func TestRoleChecksWriteNothing(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	member := srv.CreateUser("m@example.com", "member")
	viewer := srv.CreateUser("v@example.com", "viewer")
	users, _ := srv.Store().CountUsers(ctx)
	notes := countNotes(t, srv)

	_, err := srv.Client(goclient.GRPC, member.Token).Admin.CreateUser(ctx, connect.NewRequest(&adminv1.CreateUserRequest{
		Email: "evil@example.com", Password: "a long test password 1", Roles: []string{"admin"},
	}))
	if codeOf(err) != connect.CodePermissionDenied {
		t.Errorf("member CreateUser: got %v, want permission_denied", err)
	}
	_, err = srv.Client(goclient.GRPCWeb, viewer.Token).Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "x"}))
	if codeOf(err) != connect.CodePermissionDenied {
		t.Errorf("viewer CreateNote: got %v, want permission_denied", err)
	}
	if got, _ := srv.Store().CountUsers(ctx); got != users {
		t.Errorf("got %d users, want %d", got, users)
	}
	if got := countNotes(t, srv); got != notes {
		t.Errorf("got %d notes, want %d", got, notes)
	}
}

// TestLoginDoesNotRevealAccounts: unknown email and wrong password get
// byte-identical answers.
func TestLoginDoesNotRevealAccounts(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	resA, bodyA := post(t, srv, "/guard.auth.v1.AuthService/Login", `{"email":"admin@example.com","password":"wrong password!"}`, nil)
	resB, bodyB := post(t, srv, "/guard.auth.v1.AuthService/Login", `{"email":"nobody@example.com","password":"wrong password!"}`, nil)
	if resA.StatusCode != http.StatusUnauthorized || resB.StatusCode != resA.StatusCode {
		t.Errorf("got HTTP %d and %d, want 401 for both", resA.StatusCode, resB.StatusCode)
	}
	if bodyA != bodyB {
		t.Errorf("got bodies %s and %s, want identical", bodyA, bodyB)
	}
	if strings.Contains(bodyA, "example.com") {
		t.Errorf("got body %s, want no email echoed", bodyA)
	}
}

// TestLoginRateLimitedPerIP: the Login policy allows 20 calls a minute per
// IP; X-Forwarded-For from an untrusted peer does not buy a fresh budget.
// (Lockouts are raised out of the way: each attempt names another account.)
func TestLoginRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-ip-lockout-failures=1000")
	body := `{"email":"nobody@example.com","password":"wrong password!"}`
	for i := range 20 {
		h := http.Header{"X-Forwarded-For": {"10.9.8." + string(rune('0'+i%10))}}
		b := strings.Replace(body, "nobody", "nobody"+string(rune('a'+i)), 1)
		if res, b := post(t, srv, "/guard.auth.v1.AuthService/Login", b, h); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: got HTTP %d %s, want 401", i, res.StatusCode, b)
		}
	}
	res, b := post(t, srv, "/guard.auth.v1.AuthService/Login", body, http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("got HTTP %d %s, want 429", res.StatusCode, b)
	}
	policies := strings.Join(res.Header.Values("RateLimit-Policy"), ", ")
	if res.Header.Get("Retry-After") == "" || !strings.Contains(policies, `"method";q=20;w=60`) {
		t.Errorf("got Retry-After %q RateLimit-Policy %q, want both set, with Login's 20 per minute", res.Header.Get("Retry-After"), policies)
	}
	// The same refusal over gRPC carries a RetryInfo detail.
	_, err := srv.Client(goclient.GRPC, "").Auth.Login(context.Background(),
		connect.NewRequest(&authv1.LoginRequest{Email: "nobody@example.com", Password: "x"}))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		t.Fatalf("gRPC: got %v, want resource_exhausted", err)
	}
	found := false
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
				found = true
			}
		}
	}
	if !found {
		t.Error("got no RetryInfo detail, want one with a positive delay")
	}
}

// TestOversizedBody: a message over -max-body-bytes is refused with
// resource_exhausted and not written.
func TestOversizedBody(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-max-body-bytes=4096")
	tok := srv.AdminToken()
	before := countNotes(t, srv)
	_, err := srv.Client(goclient.Connect, tok).Notes.CreateNote(context.Background(),
		connect.NewRequest(&notesv1.CreateNoteRequest{Title: "big", Body: strings.Repeat("x", 10000)}))
	if codeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("got %v, want resource_exhausted", err)
	}
	if got := countNotes(t, srv); got != before {
		t.Errorf("got %d notes, want %d", got, before)
	}
}

// TestCORS: preflights from allowed origins are answered without
// credentials; other origins get no CORS headers at all.
func TestCORS(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-cors-origins=https://app.example.com")
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/guard.auth.v1.AuthService/WhoAmI", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // browsers send them sorted
		res, err := srv.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	tests := []struct {
		origin    string
		wantAllow string
	}{
		{"https://app.example.com", "https://app.example.com"},
		{"https://evil.example.com", ""},
		{"https://app.example.com.evil.net", ""},
		{"null", ""},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			res := preflight(tt.origin)
			if res.StatusCode == http.StatusUnauthorized {
				t.Error("got 401 on a preflight, want preflights never authenticated")
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("got Access-Control-Allow-Origin %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// TestRefusalsCarryRequestID: every answer names its request id, so a
// user's report can be found in the log.
func TestRefusalsCarryRequestID(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	res, _ := post(t, srv, "/guard.notes.v1.NoteService/GetNote", `{"id":"x"}`, http.Header{"X-Request-Id": {"attacker-chosen"}})
	id := res.Header.Get("X-Request-Id")
	if id == "" || id == "attacker-chosen" {
		t.Fatalf("got X-Request-Id %q, want a server-made id", id)
	}
	if !strings.Contains(srv.Logs(), "request_id="+id) {
		t.Errorf("got no log line with request_id=%s", id)
	}
}

// TestAuditRecordsOutcomes: audited methods leave an event for refusals
// as well as successes, with the actor and the code; unaudited ones none.
func TestAuditRecordsOutcomes(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	owner := srv.CreateUser("owner@example.com", "member")
	stranger := srv.CreateUser("stranger@example.com", "member")
	oc := srv.Client(goclient.Connect, owner.Token)
	created, err := oc.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "t"}))
	if err != nil {
		t.Fatal(err)
	}
	id := created.Msg.GetNote().GetId()
	_, err = srv.Client(goclient.GRPC, stranger.Token).Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id}))
	if codeOf(err) != connect.CodeNotFound {
		t.Fatalf("stranger delete: got %v, want not_found", err)
	}
	_, err = srv.Client(goclient.Connect, "").Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id}))
	if codeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("anonymous delete: got %v, want unauthenticated", err)
	}
	if _, err := oc.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: id})); err != nil {
		t.Fatal(err)
	}

	events, err := srv.Store().ListAuditEvents(ctx, store.AuditFilter{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ actor, code string }
	var deletes []row
	for _, e := range events {
		switch e.Procedure {
		case "/guard.notes.v1.NoteService/DeleteNote":
			deletes = append(deletes, row{e.ActorID, e.Code})
			if e.RequestID == "" || e.ClientIP == "" {
				t.Errorf("got event %+v, want request id and client IP", e)
			}
		case "/guard.notes.v1.NoteService/CreateNote":
			t.Errorf("got an audit event for CreateNote, which is not audited")
		}
	}
	want := []row{{owner.ID, "ok"}, {"", "unauthenticated"}, {stranger.ID, "not_found"}} // newest first
	if len(deletes) != len(want) {
		t.Fatalf("got DeleteNote events %v, want %v", deletes, want)
	}
	for i := range want {
		if deletes[i] != want[i] {
			t.Errorf("event %d: got %v, want %v", i, deletes[i], want[i])
		}
	}
}
