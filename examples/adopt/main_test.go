package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	docsv1 "example.com/adopt/gen/docs/v1"
	"example.com/adopt/gen/docs/v1/docsv1connect"
	"github.com/connectguard/guard"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestMain keeps Guard's access log (one line per call, to slog.Default)
// out of the output unless -v asks for it.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
	os.Exit(m.Run())
}

var docService = docsv1.File_docs_v1_docs_proto.Services().ByName("DocumentService")

// withoutPolicy is DocumentService as it would be had someone forgotten
// the policy option on method.
func withoutPolicy(t *testing.T, method protoreflect.Name) protoreflect.ServiceDescriptor {
	t.Helper()
	fdp := protodesc.ToFileDescriptorProto(docsv1.File_docs_v1_docs_proto)
	for _, m := range fdp.GetService()[0].GetMethod() {
		if m.GetName() == string(method) {
			m.Options = nil
		}
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Services().ByName("DocumentService")
}

// TestNewFailsClosed: a service with a gap in its policy does not start,
// and the error names what to fix.
func TestNewFailsClosed(t *testing.T) {
	t.Parallel()
	docs := newStore()
	for _, tt := range []struct {
		name     string
		services []protoreflect.ServiceDescriptor
		opts     []guard.Option
		want     string
		// notNamed is a method with a policy that the error must not name.
		notNamed string
	}{
		{
			"method_without_policy",
			[]protoreflect.ServiceDescriptor{withoutPolicy(t, "StreamRevisions")},
			[]guard.Option{guard.WithTokens(toyTokens{}), guard.WithResolver("document", docs)},
			"method docs.v1.DocumentService.StreamRevisions has no policy",
			"GetDocument",
		},
		{
			"resource_without_resolver",
			[]protoreflect.ServiceDescriptor{docService},
			[]guard.Option{guard.WithTokens(toyTokens{})},
			`no resolver for resource kind "document"`,
			"",
		},
		{
			"unknown_role",
			[]protoreflect.ServiceDescriptor{docService},
			[]guard.Option{guard.WithRoles("admin"), guard.WithTokens(toyTokens{}), guard.WithResolver("document", docs)},
			`unknown role "member"`,
			"",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, err := guard.New(tt.services, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("guard.New() = %v, %v; want an error containing %q", g, err, tt.want)
			}
			if tt.notNamed != "" && strings.Contains(err.Error(), tt.notNamed) {
				t.Errorf("got %q, want %s left out: the error names only what to fix", err, tt.notNamed)
			}
		})
	}
	// The example's own wiring fails closed too.
	t.Run("newServer_without_resolver", func(t *testing.T) {
		t.Parallel()
		srv, err := newServer("127.0.0.1:0", &documentService{docs: docs}, nil)
		if err == nil || !strings.Contains(err.Error(), `"document"`) {
			t.Fatalf("newServer() = %v, %v; want an error naming the resource kind", srv, err)
		}
	})
}

// protocol is how a client talks to the server.
type protocol struct {
	name string
	opts []connect.ClientOption
	h2c  bool
}

// protocols: Connect with JSON over HTTP/1.1 (as curl), gRPC over h2c, and
// gRPC-Web over h2c.
var protocols = []protocol{
	{"connect", []connect.ClientOption{connect.WithProtoJSON()}, false},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}, true},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}, true},
}

// server is the example's own server (newServer) on a loopback port.
type server struct {
	url  string
	docs *store
	// streams counts the calls that reached the StreamRevisions handler.
	streams atomic.Int64
}

// countingService is the real service, counting the calls that reach
// StreamRevisions: a refused call must never get there.
type countingService struct {
	*documentService
	streams *atomic.Int64
}

func (s countingService) StreamRevisions(ctx context.Context, req *connect.Request[docsv1.StreamRevisionsRequest], stream *connect.ServerStream[docsv1.StreamRevisionsResponse]) error {
	s.streams.Add(1)
	return s.documentService.StreamRevisions(ctx, req, stream)
}

func start(t *testing.T) *server {
	t.Helper()
	s := &server{docs: newStore()}
	srv, err := newServer("127.0.0.1:0", countingService{&documentService{docs: s.docs}, &s.streams}, s.docs)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "http://" + ln.Addr().String()
	return s
}

func (s *server) client(t *testing.T, p protocol) docsv1connect.DocumentServiceClient {
	t.Helper()
	var protocols http.Protocols
	if p.h2c {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	return docsv1connect.NewDocumentServiceClient(&http.Client{Transport: tr}, s.url, p.opts...)
}

// count counts the documents.
func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs)
}

// owned counts the documents of owner.
func (s *store) owned(owner string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.docs {
		if d.owner == owner {
			n++
		}
	}
	return n
}

// as is a request carrying token as its bearer credential ("" for none).
func as[T any](token string, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	if token != "" {
		req.Header().Set("Authorization", "Bearer "+token)
	}
	return req
}

// streamRevisions reads the whole stream of document id's revisions.
func streamRevisions(c docsv1connect.DocumentServiceClient, token, id string) ([]string, error) {
	stream, err := c.StreamRevisions(context.Background(), as(token, &docsv1.StreamRevisionsRequest{DocumentId: id}))
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var bodies []string
	for stream.Receive() {
		bodies = append(bodies, stream.Msg().GetRevision().GetBody())
	}
	return bodies, stream.Err()
}

func create(t *testing.T, c docsv1connect.DocumentServiceClient, token, title string) *docsv1.Document {
	t.Helper()
	res, err := c.CreateDocument(context.Background(), as(token, &docsv1.CreateDocumentRequest{Title: title, Body: "v1"}))
	if err != nil {
		t.Fatalf("CreateDocument as %s: %v", token, err)
	}
	return res.Msg.GetDocument()
}

// TestAnonymousRefused: without a valid credential only the public method
// answers; nothing is written and no handler streams.
func TestAnonymousRefused(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := start(t)
			c := s.client(t, p)
			ctx := context.Background()
			alice := create(t, c, "alice-token", "alice's").GetId()
			for _, token := range []string{"", "mallory-token"} {
				name := "no_token"
				if token != "" {
					name = "unknown_token"
				}
				t.Run(name, func(t *testing.T) {
					_, err := c.CreateDocument(ctx, as(token, &docsv1.CreateDocumentRequest{Title: "x"}))
					wantCode(t, "CreateDocument", err, connect.CodeUnauthenticated)
					_, err = c.GetDocument(ctx, as(token, &docsv1.GetDocumentRequest{Id: alice}))
					wantCode(t, "GetDocument", err, connect.CodeUnauthenticated)
					_, err = c.AddRevision(ctx, as(token, &docsv1.AddRevisionRequest{DocumentId: alice, Body: "x"}))
					wantCode(t, "AddRevision", err, connect.CodeUnauthenticated)
					_, err = streamRevisions(c, token, alice)
					wantCode(t, "StreamRevisions", err, connect.CodeUnauthenticated)
				})
			}
			if n := s.docs.count(); n != 1 {
				t.Errorf("got %d documents, want 1: a refused call wrote one", n)
			}
			if revs, _ := s.docs.revisions(alice); len(revs) != 1 {
				t.Errorf("got %d revisions, want 1: a refused call added one", len(revs))
			}
			if n := s.streams.Load(); n != 0 {
				t.Errorf("StreamRevisions handler ran %d times, want 0", n)
			}
			t.Run("public_method", func(t *testing.T) {
				res, err := c.GetServiceInfo(ctx, as("", &docsv1.GetServiceInfoRequest{}))
				if err != nil || res.Msg.GetName() == "" {
					t.Errorf("GetServiceInfo without a token = %v, %v; want an answer", res, err)
				}
			})
		})
	}
}

// TestStreamOwnership: the ownership check of StreamRevisions runs on the
// requested document id before the handler streams anything. Bob gets the
// same not_found for Alice's document as for one that does not exist.
func TestStreamOwnership(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := start(t)
			c := s.client(t, p)
			ctx := context.Background()
			doc := create(t, c, "alice-token", "alice's plans")
			if _, err := c.AddRevision(ctx, as("alice-token", &docsv1.AddRevisionRequest{DocumentId: doc.GetId(), Body: "v2"})); err != nil {
				t.Fatalf("AddRevision as alice: %v", err)
			}

			t.Run("owner_streams", func(t *testing.T) {
				got, err := streamRevisions(c, "alice-token", doc.GetId())
				if err != nil || !slices.Equal(got, []string{"v1", "v2"}) {
					t.Errorf("alice streams her document: got %q, %v; want [v1 v2]", got, err)
				}
			})

			// The answer for Alice's document is the answer for none at all.
			var answers []string
			for _, tt := range []struct{ name, id string }{
				{"other_users_document", doc.GetId()},
				{"missing_document", rand.Text()},
				{"empty_id", ""},
			} {
				t.Run(tt.name, func(t *testing.T) {
					before := s.streams.Load()
					got, err := streamRevisions(c, "bob-token", tt.id)
					wantCode(t, "StreamRevisions", err, connect.CodeNotFound)
					if len(got) != 0 {
						t.Errorf("bob received %q", got)
					}
					if n := s.streams.Load() - before; n != 0 {
						t.Errorf("the handler ran %d times for a refused stream, want 0", n)
					}
					answers = append(answers, connect.CodeOf(err).String()+": "+errorMessage(err))
				})
			}
			if len(slices.Compact(slices.Clone(answers))) != 1 {
				t.Errorf("got answers %q, want one answer for all", answers)
			}

			t.Run("other_user_unary", func(t *testing.T) {
				_, err := c.GetDocument(ctx, as("bob-token", &docsv1.GetDocumentRequest{Id: doc.GetId()}))
				wantCode(t, "GetDocument", err, connect.CodeNotFound)
				_, err = c.AddRevision(ctx, as("bob-token", &docsv1.AddRevisionRequest{DocumentId: doc.GetId(), Body: "bob was here"}))
				wantCode(t, "AddRevision", err, connect.CodeNotFound)
				if revs, _ := s.docs.revisions(doc.GetId()); !slices.Equal(revs, []string{"v1", "v2"}) {
					t.Errorf("got revisions %q, want [v1 v2]: bob wrote to alice's document", revs)
				}
			})
		})
	}
}

// TestPerUserRateLimit: CreateDocument allows 3 calls a minute per user.
// Alice's fourth is refused with resource_exhausted and a Retry-After,
// and writes nothing; Bob's budget is his own.
func TestPerUserRateLimit(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s := start(t)
			c := s.client(t, p)
			for i := range 3 {
				create(t, c, "alice-token", "doc "+strconv.Itoa(i))
			}
			_, err := c.CreateDocument(context.Background(), as("alice-token", &docsv1.CreateDocumentRequest{Title: "one too many"}))
			wantCode(t, "4th CreateDocument", err, connect.CodeResourceExhausted)
			// Guard's limiter is a sliding window: the wait can run past the
			// current minute into the next, never beyond two.
			var ce *connect.Error
			if errors.As(err, &ce) {
				if secs, perr := strconv.Atoi(ce.Meta().Get("Retry-After")); perr != nil || secs < 1 || secs > 120 {
					t.Errorf("got Retry-After %q, want 1 to 120 seconds", ce.Meta().Get("Retry-After"))
				}
			}
			if n := s.docs.owned("alice"); n != 3 {
				t.Errorf("alice owns %d documents, want 3", n)
			}
			create(t, c, "bob-token", "bob's first")
		})
	}
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Errorf("%s: got %v (%v), want %v", what, got, err, want)
	}
}

func errorMessage(err error) string {
	if ce := new(connect.Error); errors.As(err, &ce) {
		return ce.Message()
	}
	return fmt.Sprint(err)
}
