package admin

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"

	"connectrpc.com/connect"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	auditv1 "github.com/connectguard/guard/gen/guard/audit/v1"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/pagetoken"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// typePrefix is what the names of guard.audit.v1.EventType start with; the
// store keeps the rest in lower case.
const typePrefix = "EVENT_TYPE_"

// TypeToProto returns the enum value of an event type as stored,
// EVENT_TYPE_UNSPECIFIED for a type the schema does not know.
func TypeToProto(t string) auditv1.EventType {
	return auditv1.EventType(auditv1.EventType_value[typePrefix+strings.ToUpper(t)])
}

// TypeFromProto returns the stored name of an event type.
func TypeFromProto(t auditv1.EventType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), typePrefix))
}

// EventToProto converts a stored audit event.
func EventToProto(e store.AuditEvent) *auditv1.Event {
	return &auditv1.Event{
		Id: e.ID, Seq: e.Seq, Time: timestamppb.New(e.Time), Type: TypeToProto(e.Type),
		ActorId: e.ActorID, SubjectId: e.SubjectID, Procedure: e.Procedure, Code: e.Code,
		ClientIp: e.ClientIP, RequestId: e.RequestID, Detail: e.Detail, Count: e.Count, Hash: e.Hash,
	}
}

// ListAuditEvents implements AdminService: the events the filters select,
// newest first. A page token is bound to the caller and to the filters, so
// it cannot be replayed with other filters to skip past a filter's rows.
func (s *Service) ListAuditEvents(ctx context.Context, req *connect.Request[adminv1.ListAuditEventsRequest]) (*connect.Response[adminv1.ListAuditEventsResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	f := store.AuditFilter{UserID: m.GetUserId(), Procedure: m.GetProcedure(), Code: m.GetCode()}
	for _, t := range m.GetTypes() {
		f.Types = append(f.Types, TypeFromProto(t))
	}
	slices.Sort(f.Types)
	f.Types = slices.Compact(f.Types)
	if m.GetStartTime() != nil {
		f.Since = m.GetStartTime().AsTime()
	}
	if m.GetEndTime() != nil {
		f.Until = m.GetEndTime().AsTime()
	}
	size := pagetoken.PageSize(m.GetPageSize())
	scope := auditScope(p.UserID, f)
	if tok := m.GetPageToken(); tok != "" {
		raw, err := s.pages.Decode(scope, tok)
		if err != nil || len(raw) != 8 {
			return nil, connect.NewError(connect.CodeInvalidArgument, pagetoken.ErrInvalid)
		}
		f.BeforeSeq = int64(binary.BigEndian.Uint64(raw))
		if f.BeforeSeq <= 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, pagetoken.ErrInvalid)
		}
	}
	got, err := s.store.ListAuditEvents(ctx, f, size+1)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	res := &adminv1.ListAuditEventsResponse{}
	if len(got) > size {
		got = got[:size]
		res.NextPageToken = s.pages.Encode(scope, binary.BigEndian.AppendUint64(nil, uint64(got[size-1].Seq)))
	}
	res.Events = make([]*auditv1.Event, len(got))
	for i, e := range got {
		res.Events[i] = EventToProto(e)
	}
	return connect.NewResponse(res), nil
}

// auditScope is the page token scope of a listing by user with filters f:
// a digest of both, each field length-prefixed so no two listings share
// one.
func auditScope(userID string, f store.AuditFilter) string {
	h := sha256.New()
	field := func(s string) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		h.Write([]byte(s))
	}
	field(userID)
	field(f.UserID)
	field(f.Procedure)
	field(f.Code)
	field(strings.Join(f.Types, ","))
	var times []byte
	for _, t := range []int64{f.Since.UnixMicro(), f.Until.UnixMicro()} {
		times = binary.BigEndian.AppendUint64(times, uint64(t))
	}
	field(string(times))
	return "audit|" + hex.EncodeToString(h.Sum(nil))
}

// record writes an audit event of type t about subject, with detail for
// admins, for the call in ctx. A failure is logged: the change it records
// has already happened.
func (s *Service) record(ctx context.Context, t audit.Type, procedure, subject, detail string) {
	var actor string
	if p, ok := authn.PrincipalFrom(ctx); ok {
		actor = p.UserID
	}
	ip, _ := clientip.From(ctx)
	e := store.AuditEvent{
		Type: string(t), ActorID: actor, SubjectID: subject, Procedure: procedure, Code: "ok",
		ClientIP: ip.String(), RequestID: requestid.From(ctx), Detail: detail,
	}
	if err := s.store.RecordAuditEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "type", t, "request_id", e.RequestID, "error", err)
	}
}
