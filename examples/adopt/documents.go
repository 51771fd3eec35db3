package main

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"

	"connectrpc.com/connect"
	docsv1 "example.com/adopt/gen/docs/v1"
	"github.com/connectguard/guard"
)

// store keeps documents in memory. It is also the resolver of the
// "document" resource kind that the policies in docs.proto name.
type store struct {
	mu   sync.Mutex
	docs map[string]*document
}

type document struct {
	owner, title string
	revisions    []string
}

func newStore() *store {
	return &store{docs: make(map[string]*document)}
}

// Access implements guard.Resolver. The owner has every access and anyone
// else none, which Guard answers with not_found, exactly as for a document
// that does not exist.
func (s *store) Access(_ context.Context, id string, p *guard.Principal) (guard.Access, any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	switch {
	case !ok:
		return guard.AccessNone, nil, guard.ErrNotFound
	case d.owner != p.UserID:
		return guard.AccessNone, nil, nil
	}
	return guard.AccessOwner, nil, nil
}

// create stores a new document with its first revision under a random id.
func (s *store) create(owner, title, body string) *docsv1.Document {
	id := rand.Text()
	d := &document{owner: owner, title: title, revisions: []string{body}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[id] = d
	return d.proto(id)
}

func (s *store) get(id string) (*docsv1.Document, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	if !ok {
		return nil, false
	}
	return d.proto(id), true
}

// addRevision appends body to the document's revisions and returns its
// number.
func (s *store) addRevision(id, body string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	if !ok {
		return 0, false
	}
	d.revisions = append(d.revisions, body)
	return uint32(len(d.revisions)), true
}

// revisions returns a copy of the document's revisions, oldest first.
func (s *store) revisions(id string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(d.revisions), true
}

func (d *document) proto(id string) *docsv1.Document {
	return &docsv1.Document{Id: id, OwnerId: d.owner, Title: d.title, Revisions: uint32(len(d.revisions))}
}

// errNotFound is what the handlers answer for a document that went away
// after Guard's ownership check; the check itself answers the same.
func errNotFound() error {
	return connect.NewError(connect.CodeNotFound, errors.New("document not found"))
}

// documentService implements docsv1connect.DocumentServiceHandler. Guard
// has checked every call against its policy before a method here runs, so
// the methods only do their work.
type documentService struct {
	docs *store
}

func (s *documentService) GetServiceInfo(context.Context, *connect.Request[docsv1.GetServiceInfoRequest]) (*connect.Response[docsv1.GetServiceInfoResponse], error) {
	return connect.NewResponse(&docsv1.GetServiceInfoResponse{Name: "documents example"}), nil
}

func (s *documentService) CreateDocument(ctx context.Context, req *connect.Request[docsv1.CreateDocumentRequest]) (*connect.Response[docsv1.CreateDocumentResponse], error) {
	p, ok := guard.PrincipalFrom(ctx)
	if !ok { // cannot happen: the policy names a role, so Guard authenticated the caller
		return nil, connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	if req.Msg.GetTitle() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("title is required"))
	}
	d := s.docs.create(p.UserID, req.Msg.GetTitle(), req.Msg.GetBody())
	return connect.NewResponse(&docsv1.CreateDocumentResponse{Document: d}), nil
}

func (s *documentService) GetDocument(_ context.Context, req *connect.Request[docsv1.GetDocumentRequest]) (*connect.Response[docsv1.GetDocumentResponse], error) {
	d, ok := s.docs.get(req.Msg.GetId())
	if !ok {
		return nil, errNotFound()
	}
	return connect.NewResponse(&docsv1.GetDocumentResponse{Document: d}), nil
}

func (s *documentService) AddRevision(_ context.Context, req *connect.Request[docsv1.AddRevisionRequest]) (*connect.Response[docsv1.AddRevisionResponse], error) {
	n, ok := s.docs.addRevision(req.Msg.GetDocumentId(), req.Msg.GetBody())
	if !ok {
		return nil, errNotFound()
	}
	return connect.NewResponse(&docsv1.AddRevisionResponse{Revision: &docsv1.Revision{Number: n, Body: req.Msg.GetBody()}}), nil
}

// StreamRevisions sends one message per revision. Guard checked the
// caller's access to document_id when the request message was received,
// before this method was called.
func (s *documentService) StreamRevisions(ctx context.Context, req *connect.Request[docsv1.StreamRevisionsRequest], stream *connect.ServerStream[docsv1.StreamRevisionsResponse]) error {
	revisions, ok := s.docs.revisions(req.Msg.GetDocumentId())
	if !ok {
		return errNotFound()
	}
	for i, body := range revisions {
		if err := ctx.Err(); err != nil {
			return err
		}
		rev := &docsv1.Revision{Number: uint32(i + 1), Body: body}
		if err := stream.Send(&docsv1.StreamRevisionsResponse{Revision: rev}); err != nil {
			return err
		}
	}
	return nil
}
