package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/connectguard/guard/service/auth"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// restAnswer is a REST response: its status, headers and the error body
// the gateway writes (google.rpc.Status in JSON), or the message.
type restAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a restAnswer) code() connect.Code {
	c, _ := a.body["code"].(float64)
	return connect.Code(c)
}

func (a restAnswer) message() string {
	m, _ := a.body["message"].(string)
	return m
}

// rest makes a REST call to srv; header values are "Name: value".
func rest(t *testing.T, srv *servertest.Server, method, path, body string, headers ...string) restAnswer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	res, err := srv.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := restAnswer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return a
}

func restBearer(token string) string { return "Authorization: Bearer " + token }

// TestRESTSecurity runs the chain's refusals over REST and over Connect,
// Connect JSON, gRPC and gRPC-Web: every case gives the same code and
// message on all five, REST gives the status the code maps to and the
// error body, and nothing any refused call asked for is written.
func TestRESTSecurity(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	// Each protocol gets users of its own, so that the rate limit spent
	// for one does not refuse another's calls.
	type people struct {
		owner, viewer, member servertest.User
		readKey, noteID       string
		password              string // the owner's current password
	}
	// Login allows 20 calls a minute per address: users are made with one
	// admin token, and the viewer and member serve every protocol.
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	newUser := func(email, role string) servertest.User {
		const pw = "a long test password 1"
		res, err := admin.Admin.CreateUser(ctx, connect.NewRequest(&adminv1.CreateUserRequest{Email: email, Password: pw, Roles: []string{role}}))
		if err != nil {
			t.Fatal(err)
		}
		return servertest.User{ID: res.Msg.GetUser().GetId(), Email: email, Password: pw, Token: srv.Login(email, pw)}
	}
	viewer, member := newUser("viewer@example.com", "viewer"), newUser("member@example.com", "member")
	setup := func(name string) people {
		p := people{owner: newUser("owner-"+name+"@example.com", "member"), viewer: viewer, member: member}
		owner := srv.Client(goclient.Connect, p.owner.Token)
		n, err := owner.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "mine", Body: "secret body"}))
		if err != nil {
			t.Fatal(err)
		}
		p.noteID = n.Msg.GetNote().GetId()
		k, err := owner.Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{Name: "read", Scopes: []string{"notes:read"}, Ttl: durationpb.New(time.Hour)}))
		if err != nil {
			t.Fatal(err)
		}
		p.readKey = k.Msg.GetKey()
		p.password = p.owner.Password
		return p
	}
	type restCall struct{ method, path, body string }
	cases := []struct {
		name   string
		before func(*people) // calls to make first, over Connect
		token  func(people) string
		rpc    func(*goclient.Client, people) error
		rest   func(people) restCall
		code   connect.Code
		msg    string
		status int
	}{
		{
			name:  "no credential",
			token: func(people) string { return "" },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: p.noteID}))
				return err
			},
			rest:   func(p people) restCall { return restCall{"GET", "/v1/notes/" + p.noteID, ""} },
			code:   connect.CodeUnauthenticated,
			msg:    "authentication required",
			status: http.StatusUnauthorized,
		},
		{
			name:  "forged token",
			token: func(people) string { return "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
				return err
			},
			rest:   func(people) restCall { return restCall{"GET", "/v1/notes", ""} },
			code:   connect.CodeUnauthenticated,
			msg:    "invalid credentials",
			status: http.StatusUnauthorized,
		},
		{
			name:  "role: a viewer creates a note",
			token: func(p people) string { return p.viewer.Token },
			rpc: func(c *goclient.Client, _ people) error {
				_, err := c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "viewer note"}))
				return err
			},
			rest:   func(people) restCall { return restCall{"POST", "/v1/notes", `{"title":"viewer note"}`} },
			code:   connect.CodePermissionDenied,
			msg:    "requires one of the roles: admin, member",
			status: http.StatusForbidden,
		},
		{
			name:  "role: a member reads the audit trail",
			token: func(p people) string { return p.member.Token },
			rpc: func(c *goclient.Client, _ people) error {
				_, err := c.Admin.ListAuditEvents(ctx, connect.NewRequest(&adminv1.ListAuditEventsRequest{}))
				return err
			},
			rest:   func(people) restCall { return restCall{"GET", "/v1/admin/audit-events", ""} },
			code:   connect.CodePermissionDenied,
			msg:    "requires one of the roles: admin",
			status: http.StatusForbidden,
		},
		{
			name:  "scope: a read-only API key deletes its owner's note",
			token: func(p people) string { return p.readKey },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: p.noteID}))
				return err
			},
			rest:   func(p people) restCall { return restCall{"DELETE", "/v1/notes/" + p.noteID, ""} },
			code:   connect.CodePermissionDenied,
			msg:    "credential lacks the scopes: notes:write",
			status: http.StatusForbidden,
		},
		{
			name:  "ownership: another member overwrites the note",
			token: func(p people) string { return p.member.Token },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Notes.UpdateNote(ctx, connect.NewRequest(&notesv1.UpdateNoteRequest{
					Note: &notesv1.Note{Id: p.noteID, Body: "defaced"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"body"}},
				}))
				return err
			},
			rest: func(p people) restCall {
				return restCall{"PATCH", "/v1/notes/" + p.noteID + "?updateMask=body", `{"body":"defaced"}`}
			},
			code:   connect.CodeNotFound,
			msg:    "note not found",
			status: http.StatusNotFound,
		},
		{
			name:  "ownership: another member deletes the note",
			token: func(p people) string { return p.member.Token },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Notes.DeleteNote(ctx, connect.NewRequest(&notesv1.DeleteNoteRequest{Id: p.noteID}))
				return err
			},
			rest:   func(p people) restCall { return restCall{"DELETE", "/v1/notes/" + p.noteID, ""} },
			code:   connect.CodeNotFound,
			msg:    "note not found",
			status: http.StatusNotFound,
		},
		{
			name:  "validation: an id that is not one",
			token: func(p people) string { return p.owner.Token },
			rpc: func(c *goclient.Client, _ people) error {
				_, err := c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: "NOT-AN-ID"}))
				return err
			},
			rest:   func(people) restCall { return restCall{"GET", "/v1/notes/NOT-AN-ID", ""} },
			code:   connect.CodeInvalidArgument,
			msg:    "validation error: id: does not match regex pattern `^[a-z2-7]{26}$`",
			status: http.StatusBadRequest,
		},
		{
			name:  "validation: an empty title",
			token: func(p people) string { return p.owner.Token },
			rpc: func(c *goclient.Client, _ people) error {
				_, err := c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{Title: "", Body: "no title"}))
				return err
			},
			rest:   func(people) restCall { return restCall{"POST", "/v1/notes", `{"title":"","body":"no title"}`} },
			code:   connect.CodeInvalidArgument,
			msg:    "validation error: title: must be at least 1 characters",
			status: http.StatusBadRequest,
		},
		{
			// ChangePassword allows 5 calls a minute per user, whatever the
			// protocol: the owner changes it 5 times over Connect, and the
			// sixth change is refused.
			name: "rate limit: a sixth password change in a minute",
			before: func(p *people) {
				c := srv.Client(goclient.Connect, p.owner.Token)
				for i := range 5 {
					next := fmt.Sprintf("the owner's password %d", i)
					if _, err := c.Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
						CurrentPassword: p.password, NewPassword: next,
					})); err != nil {
						t.Fatalf("change %d: %v", i, err)
					}
					p.password = next
				}
			},
			token: func(p people) string { return p.owner.Token },
			rpc: func(c *goclient.Client, p people) error {
				_, err := c.Auth.ChangePassword(ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
					CurrentPassword: p.password, NewPassword: "one change too many",
				}))
				return err
			},
			rest: func(p people) restCall {
				return restCall{"POST", "/v1/auth/password", fmt.Sprintf(`{"currentPassword":%q,"newPassword":"one change too many"}`, p.password)}
			},
			code:   connect.CodeResourceExhausted,
			msg:    "rate limit exceeded: retry in",
			status: http.StatusTooManyRequests,
		},
	}
	for _, proto := range append([]string{"rest"}, func() []string {
		var s []string
		for _, p := range protocols {
			s = append(s, p.String())
		}
		return s
	}()...) {
		p := setup(strings.ReplaceAll(proto, "+", "-"))
		for _, tc := range cases {
			if tc.before != nil {
				tc.before(&p)
			}
			var got outcome
			if proto == "rest" {
				rc := tc.rest(p)
				var hs []string
				if tok := tc.token(p); tok != "" {
					hs = append(hs, restBearer(tok))
				}
				a := rest(t, srv, rc.method, rc.path, rc.body, hs...)
				got = outcome{code: a.code(), msg: a.message()}
				if a.status != tc.status {
					t.Errorf("rest, %s: got HTTP %d, want %d (%s)", tc.name, a.status, tc.status, a.raw)
				}
				checkRESTRefusal(t, tc.name, tc.code, a)
			} else {
				var pr goclient.Protocol
				for _, x := range protocols {
					if x.String() == proto {
						pr = x
					}
				}
				got = outcomeOf(tc.rpc(srv.Client(pr, tc.token(p)), p))
			}
			if tc.code == connect.CodeResourceExhausted && strings.HasPrefix(got.msg, tc.msg) {
				got.msg = tc.msg // the rest is the wait, which varies
			}
			if want := (outcome{tc.code, tc.msg}); got != want {
				t.Errorf("%s, %s: got %v, want %v", proto, tc.name, got, want)
			}
		}
		// Nothing a refused call asked for was written.
		n, err := srv.Store().Note(ctx, p.noteID)
		if err != nil || n.Body != "secret body" {
			t.Errorf("%s: the note is now %+v (%v), want it intact", proto, n, err)
		}
		srv.Login(p.owner.Email, p.password) // the refused change did not change it
	}
	count, err := srv.Store().CountNotes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count != 5 {
		t.Errorf("got %d notes, want 5 (one per protocol, made in setup): a refused call wrote one", count)
	}
}

// checkRESTRefusal checks the parts of a REST refusal that do not depend
// on the case's message: the challenge, the rate-limit headers, the
// validation detail, and that the response is never cacheable.
func checkRESTRefusal(t *testing.T, name string, code connect.Code, a restAnswer) {
	t.Helper()
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("rest, %s: Cache-Control %q, want no-store", name, a.header.Get("Cache-Control"))
	}
	if a.header.Get("X-Request-Id") == "" {
		t.Errorf("rest, %s: no request id", name)
	}
	switch code {
	case connect.CodeUnauthenticated:
		if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("rest, %s: WWW-Authenticate %q, want a Bearer challenge", name, a.header.Get("WWW-Authenticate"))
		}
	case connect.CodeResourceExhausted:
		if a.header.Get("Retry-After") == "" || a.header.Get("RateLimit") == "" {
			t.Errorf("rest, %s: headers %v, want Retry-After and RateLimit", name, a.header)
		}
		if !strings.Contains(a.raw, "google.rpc.RetryInfo") {
			t.Errorf("rest, %s: body %s, want a RetryInfo detail", name, a.raw)
		}
	case connect.CodeInvalidArgument:
		if !strings.Contains(a.raw, "buf.validate.Violations") {
			t.Errorf("rest, %s: body %s, want a Violations detail", name, a.raw)
		}
	}
}

// TestRESTReads: the REST routes read and write what the other protocols
// do, every authenticated answer is marked no-store, and ListNotes takes
// its page size from the query.
func TestRESTReads(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	member := srv.CreateUser("rest-reader@example.com", "member")
	created := rest(t, srv, "POST", "/v1/notes", `{"title":"über","body":"日本語"}`, restBearer(member.Token))
	note, _ := created.body["note"].(map[string]any)
	id, _ := note["id"].(string)
	if created.status != http.StatusOK || id == "" {
		t.Fatalf("create: HTTP %d %s", created.status, created.raw)
	}
	got, err := srv.Client(goclient.GRPC, member.Token).Notes.GetNote(t.Context(), connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
	if err != nil || got.Msg.GetNote().GetTitle() != "über" {
		t.Fatalf("gRPC read of the REST note: %v %v", got, err)
	}
	patched := rest(t, srv, "PATCH", "/v1/notes/"+id+"?updateMask=body", `{"body":"new","title":"ignored"}`, restBearer(member.Token))
	if n, _ := patched.body["note"].(map[string]any); patched.status != http.StatusOK || n["body"] != "new" || n["title"] != "über" {
		t.Errorf("patch: HTTP %d %s, want body changed and title kept", patched.status, patched.raw)
	}
	for _, a := range []restAnswer{
		created, patched,
		rest(t, srv, "GET", "/v1/notes/"+id, "", restBearer(member.Token)),
		rest(t, srv, "GET", "/v1/notes?pageSize=1", "", restBearer(member.Token)),
		rest(t, srv, "GET", "/v1/auth/me", "", restBearer(member.Token)),
	} {
		if a.status != http.StatusOK {
			t.Errorf("HTTP %d %s, want 200", a.status, a.raw)
		}
		if a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q on %s, want no-store", a.header.Get("Cache-Control"), a.raw)
		}
	}
	// The access log names REST calls as such, and Connect calls as theirs.
	logs := srv.Logs()
	for _, want := range []string{
		"procedure=/guard.notes.v1.NoteService/UpdateNote protocol=rest code=ok",
		"procedure=/guard.notes.v1.NoteService/GetNote protocol=grpc code=ok",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log has no %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, member.Token) {
		t.Error("the access log holds the member's token")
	}
	if del := rest(t, srv, "DELETE", "/v1/notes/"+id, "", restBearer(member.Token)); del.status != http.StatusOK {
		t.Errorf("delete: HTTP %d %s", del.status, del.raw)
	}
	if _, err := srv.Store().Note(t.Context(), id); err == nil {
		t.Error("the note deleted over REST is still there")
	}
}

// TestRESTTranscoderRefusals: what the REST gateway refuses before the
// chain (not JSON, an unknown parameter, the wrong media type or method,
// a body over the limit) is answered with a generic message that echoes
// nothing, and the method does not run: not on an empty message either.
func TestRESTTranscoderRefusals(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-max-body-bytes=2048")
	member := srv.CreateUser("rest-refused@example.com", "member")
	const generic = "the request does not fit the method: check the path, the query parameters and the JSON body"
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     connect.Code
		msg                      string
	}{
		{"unknown query parameter on Logout", "POST", "/v1/auth/logout?injected=%3Cscript%3E", `{}`, nil, 400, connect.CodeInvalidArgument, generic},
		{"unknown query parameter on a read", "GET", "/v1/notes?injected=1", "", nil, 400, connect.CodeInvalidArgument, generic},
		{"truncated JSON", "POST", "/v1/notes", `{"title":`, nil, 400, connect.CodeInvalidArgument, generic},
		{"a string for a number", "GET", "/v1/notes?pageSize=ten", "", nil, 400, connect.CodeInvalidArgument, generic},
		{"a form post", "POST", "/v1/notes", "title=x", []string{"Content-Type: application/x-www-form-urlencoded"}, 415, connect.CodeInvalidArgument, "send the body as JSON, with Content-Type: application/json"},
		{"the wrong method", "PUT", "/v1/notes", `{"title":"x"}`, nil, 405, connect.CodeUnimplemented, "method not allowed on this path"},
		{"a body over -max-body-bytes", "POST", "/v1/notes", `{"title":"big","body":"` + strings.Repeat("A", 4096) + `"}`, nil, 429, connect.CodeResourceExhausted, "request too large"},
	} {
		a := rest(t, srv, tc.method, tc.path, tc.body, append([]string{restBearer(member.Token)}, tc.headers...)...)
		if a.status != tc.status || a.code() != tc.code || a.message() != tc.msg {
			t.Errorf("%s: got HTTP %d %s, want %d code %d %q", tc.name, a.status, a.raw, tc.status, tc.code, tc.msg)
		}
		for _, leak := range []string{"proto", "guard.", "injected", "script", "field path", "AAAA"} {
			if strings.Contains(a.raw, leak) {
				t.Errorf("%s: body %s echoes %q", tc.name, a.raw, leak)
			}
		}
	}
	// Logout did not run on an empty message: the session still works.
	if _, err := srv.Client(goclient.Connect, member.Token).Auth.WhoAmI(t.Context(), connect.NewRequest(&authv1.WhoAmIRequest{})); err != nil {
		t.Errorf("the token stopped working after a refused REST logout: %v", err)
	}
	if n, err := srv.Store().CountNotes(t.Context()); err != nil || n != 0 {
		t.Errorf("got %d notes (%v), want none: a refused REST call wrote one", n, err)
	}
}

// TestRESTCookie: a browser session works over REST from the server's own
// origin, and another site's request carrying the cookie is refused
// (the same CSRF defence as Connect's).
func TestRESTCookie(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	member := srv.CreateUser("rest-cookie@example.com", "member")
	login := rest(t, srv, "POST", "/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":%q,"useCookie":true}`, member.Email, member.Password))
	var cookie string
	for _, c := range (&http.Response{Header: login.header}).Cookies() {
		if c.Name == auth.CookieName {
			cookie = c.Name + "=" + c.Value
		}
	}
	if login.status != http.StatusOK || cookie == "" {
		t.Fatalf("cookie login over REST: HTTP %d %s, no session cookie", login.status, login.raw)
	}
	if strings.Contains(login.raw, strings.SplitN(cookie, "=", 2)[1]) {
		t.Error("the session cookie's value is in the response body")
	}
	if a := rest(t, srv, "GET", "/v1/auth/me", "", "Cookie: "+cookie); a.status != http.StatusOK {
		t.Errorf("cookie call: HTTP %d %s", a.status, a.raw)
	}
	a := rest(t, srv, "POST", "/v1/notes", `{"title":"csrf"}`, "Cookie: "+cookie, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site")
	if a.status < 400 || a.status >= 500 {
		t.Errorf("cross-site cookie call: HTTP %d %s, want a refusal", a.status, a.raw)
	}
	if n, err := srv.Store().CountNotes(t.Context()); err != nil || n != 0 {
		t.Errorf("got %d notes (%v), want none after a cross-site call", n, err)
	}
}

// TestOpenAPIDescribesTheServer calls every operation of docs/openapi.yaml
// on the real server, anonymously: an operation with no security
// requirement must get past authentication, and every other one must be
// refused with 401 by the chain, so the document's routes and security
// are the server's.
func TestOpenAPIDescribesTheServer(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t)
	filler := regexp.MustCompile(`\{[^}]*\}`)
	operations := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			operations++
			body := ""
			if op.RequestBody != nil {
				body = "{}"
			}
			a := rest(t, srv, method, filler.ReplaceAllString(path, "aaaaaaaaaaaaaaaaaaaaaaaaaa"), body)
			public := op.Security != nil && len(*op.Security) == 0
			switch {
			case public && a.status == http.StatusUnauthorized:
				t.Errorf("%s %s: documented as public, got %d %s", method, path, a.status, a.raw)
			case !public && (a.status != http.StatusUnauthorized || a.message() != "authentication required"):
				t.Errorf("%s %s: documented as needing a credential, got %d %s", method, path, a.status, a.raw)
			case a.status == http.StatusMethodNotAllowed || a.message() == "" || strings.HasPrefix(a.message(), "the request does not fit"):
				t.Errorf("%s %s: got %d %s, want the chain's answer", method, path, a.status, a.raw)
			}
		}
	}
	if operations < 20 {
		t.Errorf("the document has %d operations, want one per RPC", operations)
	}
}

// TestRESTPreflight: with -cors-origins, a browser on a listed origin may
// send the REST methods (PATCH here), and one on any other origin is not
// told it may.
func TestRESTPreflight(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-cors-origins=https://app.example")
	for _, tc := range []struct {
		origin string
		allow  bool
	}{{"https://app.example", true}, {"https://evil.example", false}} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, srv.URL+"/v1/notes/aaaaaaaaaaaaaaaaaaaaaaaaaa", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", tc.origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPatch)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		res, err := srv.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		allowed := res.Header.Get("Access-Control-Allow-Origin") == tc.origin &&
			strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), http.MethodPatch)
		if allowed != tc.allow {
			t.Errorf("preflight from %s: HTTP %d, headers %v; want allowed = %v", tc.origin, res.StatusCode, res.Header, tc.allow)
		}
	}
}

// TestRESTTruncatedBody: a body shorter than its Content-Length (the
// client stops sending) is refused with the generic 400, and the method
// does not run on what arrived.
func TestRESTTruncatedBody(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	member := srv.CreateUser("rest-truncated@example.com", "member")
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"title":"cut short","body":"`
	fmt.Fprintf(conn, "POST /v1/notes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		member.Token, len(body)+100, body)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || strings.Contains(string(raw), "EOF") {
		t.Errorf("got HTTP %d %s, want the generic 400", res.StatusCode, raw)
	}
	if n, err := srv.Store().CountNotes(t.Context()); err != nil || n != 0 {
		t.Errorf("got %d notes (%v), want none", n, err)
	}
}
