package guard_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectguard/guard"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	noteService  = notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService")
	adminService = adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService")
)

// tokens accepts the token "good" as a member, says ErrInvalid to any
// other, and fails outright for "broken".
type tokens struct{}

func (tokens) VerifyToken(_ context.Context, tok string) (*guard.Principal, error) {
	switch tok {
	case "good":
		return &guard.Principal{UserID: "u1", Roles: []string{"member"}}, nil
	case "broken":
		return nil, errors.New("database is down")
	}
	return nil, guard.ErrInvalid
}

// notes resolves every note as owned by the caller.
type notes struct{}

func (notes) Access(context.Context, string, *guard.Principal) (guard.Access, any, error) {
	return guard.AccessOwner, nil, nil
}

type recorder struct{ events atomic.Int64 }

func (r *recorder) RecordAudit(context.Context, guard.AuditEvent) error {
	r.events.Add(1)
	return nil
}

func TestNewFailsClosed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		services []protoreflect.ServiceDescriptor
		opts     []guard.Option
		want     string
	}{
		{"resource_without_resolver", []protoreflect.ServiceDescriptor{noteService}, []guard.Option{guard.WithAuditRecorder(&recorder{})}, `no resolver for resource kind "note"`},
		{"audit_without_recorder", []protoreflect.ServiceDescriptor{adminService}, nil, "asks for audit: give guard.WithAuditRecorder"},
		{"unknown_role", []protoreflect.ServiceDescriptor{noteService}, []guard.Option{guard.WithRoles("admin"), guard.WithResolver("note", notes{}), guard.WithAuditRecorder(&recorder{})}, "member"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := guard.New(tt.services, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() = %v, %v; want an error containing %q", g, err, tt.want)
			}
		})
	}
}

// server is a Guard around the notes and admin services, whose handlers
// answer unimplemented: what matters is whether a call gets to them.
type server struct {
	g     *guard.Guard
	mux   *http.ServeMux
	audit *recorder
	logs  *bytes.Buffer
}

func newServer(t testing.TB) *server {
	t.Helper()
	s := &server{audit: &recorder{}, logs: &bytes.Buffer{}}
	g, err := guard.New([]protoreflect.ServiceDescriptor{noteService, adminService},
		guard.WithTokens(tokens{}), guard.WithResolver("note", notes{}), guard.WithAuditRecorder(s.audit),
		guard.WithRealm("test"), guard.WithLogger(slog.New(slog.NewTextHandler(s.logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	s.g, s.mux = g, http.NewServeMux()
	s.mux.Handle(notesv1connect.NewNoteServiceHandler(notesv1connect.UnimplementedNoteServiceHandler{}, g.HandlerOptions()...))
	s.mux.Handle(adminv1connect.NewAdminServiceHandler(adminv1connect.UnimplementedAdminServiceHandler{}, g.HandlerOptions()...))
	return s
}

// countingBody is a request body that counts what is read of it.
type countingBody struct {
	r    io.Reader
	read *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (countingBody) Close() error { return nil }

// protocols are the content types of Connect (JSON), gRPC and gRPC-Web,
// and how each frames a message.
var protocols = []struct {
	name, contentType string
	frame             bool
}{
	{"connect", "application/json", false},
	{"grpc", "application/grpc", true},
	{"grpcweb", "application/grpc-web+proto", true},
}

func request(contentType string, frame bool, msg []byte, header http.Header, read *atomic.Int64) *http.Request {
	if frame {
		var b bytes.Buffer
		b.WriteByte(0)
		_ = binary.Write(&b, binary.BigEndian, uint32(len(msg)))
		b.Write(msg)
		msg = b.Bytes()
	}
	r := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/CreateNote", nil)
	r.Body = countingBody{r: bytes.NewReader(msg), read: read}
	r.ContentLength = int64(len(msg))
	r.Header.Set("Content-Type", contentType)
	for k, v := range header {
		r.Header[k] = v
	}
	if frame {
		r.ProtoMajor = 2
	}
	return r
}

// TestRefuseBeforeDecoding: a call with no credential, two, or a
// malformed one is refused before its body is read, with exactly the
// answer the interceptor chain gives, and it is still logged and audited.
func TestRefuseBeforeDecoding(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("a"), 1<<20-64)
	for _, p := range protocols {
		for _, tt := range []struct {
			name   string
			header http.Header
		}{
			{"no_credential", nil},
			{"wrong_scheme", http.Header{"Authorization": {"Basic dTpw"}}},
			{"two_credentials", http.Header{"Authorization": {"Bearer a", "Bearer b"}}},
		} {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := newServer(t)
				var readEarly, readChain atomic.Int64
				msg := createNote(t, p.frame, big)
				early := httptest.NewRecorder()
				s.g.Handler(s.mux).ServeHTTP(early, request(p.contentType, p.frame, msg, tt.header, &readEarly))
				chain := httptest.NewRecorder()
				guard.WithoutEarlyRefusal(s.g).Handler(s.mux).ServeHTTP(chain, request(p.contentType, p.frame, msg, tt.header, &readChain))

				if n := readEarly.Load(); n != 0 {
					t.Errorf("read %d bytes of the body before refusing, want 0", n)
				}
				if readChain.Load() == 0 {
					t.Error("the chain read nothing: the comparison proves nothing")
				}
				if early.Code != chain.Code || early.Body.String() != chain.Body.String() {
					t.Errorf("early refusal %d %q, chain %d %q: want the same answer", early.Code, early.Body, chain.Code, chain.Body)
				}
				e, c := metadata(early), metadata(chain)
				for _, h := range []string{"Www-Authenticate", "Grpc-Status", "Grpc-Message", "Content-Type"} {
					if e.Get(h) != c.Get(h) {
						t.Errorf("%s: early %q, chain %q", h, e.Get(h), c.Get(h))
					}
				}
				if p.name != "connect" && e.Get("Grpc-Status") != "16" {
					t.Errorf("got grpc-status %q, want 16 (unauthenticated)", e.Get("Grpc-Status"))
				}
				if p.name == "connect" && !strings.HasPrefix(e.Get("Www-Authenticate"), `Bearer realm="test"`) {
					t.Errorf("Connect challenge %q, want the realm", e.Get("Www-Authenticate"))
				}
				if p.name != "connect" && (e.Get("Www-Authenticate") != "" || c.Get("Www-Authenticate") != "") {
					t.Errorf("%s answer carries WWW-Authenticate; HTTP forbids it as a trailer", p.name)
				}
			})
		}
	}
	t.Run("logged_and_audited", func(t *testing.T) {
		t.Parallel()
		s := newServer(t)
		var read atomic.Int64
		r := request("application/json", false, []byte(`{}`), nil, &read)
		r.URL.Path = "/guard.admin.v1.AdminService/ListUsers" // audited
		s.g.Handler(s.mux).ServeHTTP(httptest.NewRecorder(), r)
		if s.audit.events.Load() != 1 {
			t.Errorf("got %d audit events, want 1", s.audit.events.Load())
		}
		if !strings.Contains(s.logs.String(), "procedure=/guard.admin.v1.AdminService/ListUsers") || !strings.Contains(s.logs.String(), "code=unauthenticated") {
			t.Errorf("got log %q, want the refused call", s.logs.String())
		}
	})
}

// createNote is a CreateNote request with a title of big: JSON, or
// protobuf when frame (gRPC, gRPC-Web) asks for it.
func createNote(t testing.TB, frame bool, big []byte) []byte {
	t.Helper()
	if !frame {
		return append(append([]byte(`{"title":"`), big...), `"}`...)
	}
	msg, err := proto.Marshal(&notesv1.CreateNoteRequest{Title: string(big)})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// metadata is what a response said outside its body: headers and
// trailers together.
func metadata(rec *httptest.ResponseRecorder) http.Header {
	res := rec.Result()
	h := res.Header.Clone()
	for k, v := range res.Trailer {
		h[k] = append(h[k], v...)
	}
	return h
}

// TestVerifierFailureIsInternal: only ErrInvalid and ErrExpired mean
// "log in again"; a verifier that fails is the server's fault.
func TestVerifierFailureIsInternal(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for tok, want := range map[string]string{"bad": `"code":"unauthenticated"`, "broken": `"code":"internal"`} {
		rec := httptest.NewRecorder()
		var read atomic.Int64
		r := request("application/json", false, []byte(`{"title":"x"}`), http.Header{"Authorization": {"Bearer " + tok}}, &read)
		s.g.Handler(s.mux).ServeHTTP(rec, r)
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("token %q: got %s, want %s", tok, rec.Body, want)
		}
	}
	if !strings.Contains(s.logs.String(), "database is down") {
		t.Errorf("got log %q, want the verifier's failure logged", s.logs.String())
	}
}

// BenchmarkAnonymousFlood is the CPU an anonymous call with a 1 MiB body
// costs the server: refused before the body is read, and (before) by the
// interceptor chain after connect-go read and decoded it.
func BenchmarkAnonymousFlood(b *testing.B) {
	s := newServer(b)
	msg := append(append([]byte(`{"title":"`), bytes.Repeat([]byte("a"), 1<<20-64)...), `"}`...)
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{{"chain", guard.WithoutEarlyRefusal(s.g).Handler(s.mux)}, {"early", s.g.Handler(s.mux)}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			var read atomic.Int64
			for b.Loop() {
				rec := httptest.NewRecorder()
				bb.h.ServeHTTP(rec, request("application/json", false, msg, nil, &read))
				if rec.Code != http.StatusUnauthorized {
					b.Fatalf("got HTTP %d", rec.Code)
				}
			}
		})
	}
}

// TestNewNilService: a misspelt service name gives a nil descriptor; New
// says so instead of panicking.
func TestNewNilService(t *testing.T) {
	t.Parallel()
	missing := notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NotesService") // sic
	if _, err := guard.New([]protoreflect.ServiceDescriptor{missing}); err == nil || !strings.Contains(err.Error(), "is nil") {
		t.Errorf("New(nil service) error = %v, want one saying the descriptor is nil", err)
	}
}
