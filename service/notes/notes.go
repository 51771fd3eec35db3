// Package notes implements guard.notes.v1.NoteService on the store.
//
// Access checks are not here: the ownership interceptor has already
// checked, before a handler runs, that the caller may do what the method
// needs on the note it names (see the policy in notes.proto). The handlers
// only scope what they list and create to the caller.
package notes

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/gen/guard/notes/v1/notesv1connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/ownership"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/pagetoken"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Store is the persistence the service needs.
type Store interface {
	CreateNote(ctx context.Context, ownerID, title, body string) (store.Note, error)
	Note(ctx context.Context, id string) (store.Note, error)
	NoteAccess(ctx context.Context, noteID, userID string) (store.Note, store.Permission, error)
	ListReadableNotes(ctx context.Context, userID string, after *store.NoteCursor, limit int) ([]store.Note, error)
	UpdateNote(ctx context.Context, id string, title, body *string) (store.Note, error)
	DeleteNote(ctx context.Context, id string) error
	ShareNote(ctx context.Context, noteID, userID string, p store.Permission) error
}

// Service implements NoteService.
type Service struct {
	store Store
	pages *pagetoken.Codec
	log   *slog.Logger
	// cache answers the access checks of callers who repeat a read; every
	// write below drops the note from it (see accessCache).
	cache     *accessCache
	publisher Publisher
}

// Publisher tells every other replica of a change this one made
// (invalidation.Redis).
type Publisher interface {
	Publish(ctx context.Context, e invalidation.Event) error
}

// Option configures a Service.
type Option func(*Service)

// WithPublisher announces every change of a note or its shares to the
// other replicas, which drop the note from their caches at once.
func WithPublisher(p Publisher) Option { return func(s *Service) { s.publisher = p } }

var _ notesv1connect.NoteServiceHandler = (*Service)(nil)

// New returns a Service. Every write to notes and their shares must go
// through it, so that its access cache stays exact.
func New(st Store, pages *pagetoken.Codec, log *slog.Logger, opts ...Option) *Service {
	s := &Service{store: st, pages: pages, log: log, cache: newAccessCache(time.Now)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// changed drops the note noteID from this replica's cache and announces
// the change to the others. It runs after the write, whether it failed or
// not: a write that failed may still have committed.
func (s *Service) changed(ctx context.Context, noteID string) {
	s.cache.invalidate(noteID)
	if s.publisher != nil {
		// The change is committed: the caller's cancellation does not stop
		// the message. A failure is the publisher's to log; the others'
		// cacheTTL covers what they miss.
		_ = s.publisher.Publish(context.WithoutCancel(ctx), invalidation.Event{Kind: invalidation.Note, NoteID: noteID})
	}
}

// Apply implements invalidation.Handler: a change another replica made.
func (s *Service) Apply(_ context.Context, e invalidation.Event) {
	if e.Kind == invalidation.Note {
		s.cache.invalidate(e.NoteID)
	}
}

// Resync implements invalidation.Handler: changes may have been missed,
// so the whole cache is dropped.
func (s *Service) Resync(context.Context) { s.cache.invalidateAll() }

// Access implements ownership.Resolver for the "note" resource kind. It
// hands the note it read to the handler (see GetNote).
func (s *Service) Access(ctx context.Context, id string, p *authn.Principal) (policyv1.Access, any, error) {
	n, perm, err := s.cachedAccess(ctx, id, p.UserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return policyv1.Access_ACCESS_UNSPECIFIED, nil, ownership.ErrNotFound
	case err != nil:
		return policyv1.Access_ACCESS_UNSPECIFIED, nil, rpcerr.Internal(ctx, s.log, err)
	}
	switch perm {
	case store.PermissionOwner:
		return policyv1.Access_ACCESS_OWNER, n, nil
	case store.PermissionWrite:
		return policyv1.Access_ACCESS_WRITE, n, nil
	case store.PermissionRead:
		return policyv1.Access_ACCESS_READ, n, nil
	default:
		return policyv1.Access_ACCESS_UNSPECIFIED, nil, nil
	}
}

// CreateNote implements NoteService.
func (s *Service) CreateNote(ctx context.Context, req *connect.Request[notesv1.CreateNoteRequest]) (*connect.Response[notesv1.CreateNoteResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.store.CreateNote(ctx, p.UserID, req.Msg.GetTitle(), req.Msg.GetBody())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note", err)
	}
	return connect.NewResponse(&notesv1.CreateNoteResponse{Note: toProto(n)}), nil
}

// GetNote implements NoteService. The ownership check has usually read
// the note already; it is read again only when the check did not (a role
// that bypasses it).
func (s *Service) GetNote(ctx context.Context, req *connect.Request[notesv1.GetNoteRequest]) (*connect.Response[notesv1.GetNoteResponse], error) {
	if n, ok := ownership.Resource[store.Note](ctx); ok && n.ID == req.Msg.GetId() {
		return connect.NewResponse(&notesv1.GetNoteResponse{Note: toProto(n)}), nil
	}
	n, err := s.store.Note(ctx, req.Msg.GetId())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note", err)
	}
	return connect.NewResponse(&notesv1.GetNoteResponse{Note: toProto(n)}), nil
}

// ListNotes implements NoteService.
func (s *Service) ListNotes(ctx context.Context, req *connect.Request[notesv1.ListNotesRequest]) (*connect.Response[notesv1.ListNotesResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	size := pagetoken.PageSize(req.Msg.GetPageSize())
	scope := "notes|" + p.UserID
	var after *store.NoteCursor
	if tok := req.Msg.GetPageToken(); tok != "" {
		raw, err := s.pages.Decode(scope, tok)
		if err != nil || len(raw) <= 8 {
			return nil, connect.NewError(connect.CodeInvalidArgument, pagetoken.ErrInvalid)
		}
		after = &store.NoteCursor{
			CreateTime: time.UnixMicro(int64(binary.BigEndian.Uint64(raw[:8]))).UTC(),
			ID:         string(raw[8:]),
		}
	}
	got, err := s.store.ListReadableNotes(ctx, p.UserID, after, size+1)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note", err)
	}
	res := &notesv1.ListNotesResponse{}
	if len(got) > size {
		got = got[:size]
		last := got[size-1]
		raw := binary.BigEndian.AppendUint64(nil, uint64(last.CreateTime.UnixMicro()))
		res.NextPageToken = s.pages.Encode(scope, append(raw, last.ID...))
	}
	res.Notes = make([]*notesv1.Note, len(got))
	for i, n := range got {
		res.Notes[i] = toProto(n)
	}
	return connect.NewResponse(res), nil
}

// UpdateNote implements NoteService.
func (s *Service) UpdateNote(ctx context.Context, req *connect.Request[notesv1.UpdateNoteRequest]) (*connect.Response[notesv1.UpdateNoteResponse], error) {
	var title, body *string
	in := req.Msg.GetNote()
	for _, path := range req.Msg.GetUpdateMask().GetPaths() {
		switch path {
		case "title":
			title = &in.Title
		case "body":
			body = &in.Body
		}
	}
	n, err := s.store.UpdateNote(ctx, in.GetId(), title, body)
	s.changed(ctx, in.GetId())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note", err)
	}
	return connect.NewResponse(&notesv1.UpdateNoteResponse{Note: toProto(n)}), nil
}

// DeleteNote implements NoteService.
func (s *Service) DeleteNote(ctx context.Context, req *connect.Request[notesv1.DeleteNoteRequest]) (*connect.Response[notesv1.DeleteNoteResponse], error) {
	err := s.store.DeleteNote(ctx, req.Msg.GetId())
	s.changed(ctx, req.Msg.GetId())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note", err)
	}
	return connect.NewResponse(&notesv1.DeleteNoteResponse{}), nil
}

// ShareNote implements NoteService.
func (s *Service) ShareNote(ctx context.Context, req *connect.Request[notesv1.ShareNoteRequest]) (*connect.Response[notesv1.ShareNoteResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if req.Msg.GetUserId() == p.UserID {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("a note cannot be shared with its owner"))
	}
	perm := store.PermissionRead
	if req.Msg.GetPermission() == notesv1.SharePermission_SHARE_PERMISSION_WRITER {
		perm = store.PermissionWrite
	}
	err = s.store.ShareNote(ctx, req.Msg.GetId(), req.Msg.GetUserId(), perm)
	s.changed(ctx, req.Msg.GetId())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "note or user", err)
	}
	return connect.NewResponse(&notesv1.ShareNoteResponse{}), nil
}

func toProto(n store.Note) *notesv1.Note {
	return &notesv1.Note{
		Id:         n.ID,
		OwnerId:    n.OwnerID,
		Title:      n.Title,
		Body:       n.Body,
		CreateTime: timestamppb.New(n.CreateTime),
		UpdateTime: timestamppb.New(n.UpdateTime),
	}
}
