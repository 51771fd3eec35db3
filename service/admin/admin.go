// Package admin implements guard.admin.v1.AdminService. The policy in
// admin.proto limits every method to the admin role (and the admin scope
// for API keys) and audits every call.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"connectrpc.com/connect"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/internal/pagetoken"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/service/auth"
	"github.com/connectguard/guard/store"
)

// Store is the persistence the service needs.
type Store interface {
	CreateUser(ctx context.Context, email, passwordHash string, roles []string) (store.User, error)
	ListUsers(ctx context.Context, afterID string, limit int) ([]store.User, error)
	SetUserRoles(ctx context.Context, userID string, roles []string) (store.User, error)
	DisableUser(ctx context.Context, userID string) error
	UserByID(ctx context.Context, id string) (store.User, error)
	RecordAuditEvent(ctx context.Context, e store.AuditEvent) error
	ListAuditEvents(ctx context.Context, f store.AuditFilter, limit int) ([]store.AuditEvent, error)
}

// Credentials is the part of the auth service that administration drives.
type Credentials interface {
	// InvalidateUser makes the user's next request, on every replica,
	// re-read its state.
	InvalidateUser(ctx context.Context, userID string)
	RotateSigningKey(ctx context.Context, revokePrevious bool) (string, error)
	// Unlock lifts every login lockout of the account email.
	Unlock(ctx context.Context, email string) error
}

// Unblocker, when the Credentials given to New also implement it, lifts
// a user's block after suspicious activity (the server's -block-suspicious)
// in UnlockUser, with the lockouts; it records the lift if there was a
// block.
type Unblocker interface {
	UnblockUser(ctx context.Context, userID string)
}

// NetworkUnblocker, when the Credentials given to New also implement it,
// lifts the block of the client network of ip in UnblockNetwork, records
// the lift if there was a block, and reports whether there was one.
// Without it UnblockNetwork answers unimplemented.
type NetworkUnblocker interface {
	UnblockNetwork(ctx context.Context, ip netip.Addr) bool
}

// Service implements AdminService.
type Service struct {
	adminv1connect.UnimplementedAdminServiceHandler

	store  Store
	hasher *password.Hasher
	pages  *pagetoken.Codec
	creds  Credentials
	log    *slog.Logger
}

var _ adminv1connect.AdminServiceHandler = (*Service)(nil)

// New returns a Service.
func New(st Store, hasher *password.Hasher, pages *pagetoken.Codec, creds Credentials, log *slog.Logger) *Service {
	return &Service{store: st, hasher: hasher, pages: pages, creds: creds, log: log}
}

// CreateUser implements AdminService.
func (s *Service) CreateUser(ctx context.Context, req *connect.Request[adminv1.CreateUserRequest]) (*connect.Response[adminv1.CreateUserResponse], error) {
	if err := password.Check(req.Msg.GetPassword(), req.Msg.GetEmail()); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("password: %w", err))
	}
	hash, err := s.hasher.Hash(ctx, req.Msg.GetPassword())
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	u, err := s.store.CreateUser(ctx, req.Msg.GetEmail(), hash, req.Msg.GetRoles())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	return connect.NewResponse(&adminv1.CreateUserResponse{User: auth.UserToProto(u)}), nil
}

// ListUsers implements AdminService.
func (s *Service) ListUsers(ctx context.Context, req *connect.Request[adminv1.ListUsersRequest]) (*connect.Response[adminv1.ListUsersResponse], error) {
	size := pagetoken.PageSize(req.Msg.GetPageSize())
	const scope = "users"
	var after string
	if tok := req.Msg.GetPageToken(); tok != "" {
		raw, err := s.pages.Decode(scope, tok)
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, pagetoken.ErrInvalid)
		}
		after = string(raw)
	}
	got, err := s.store.ListUsers(ctx, after, size+1)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	res := &adminv1.ListUsersResponse{}
	if len(got) > size {
		got = got[:size]
		res.NextPageToken = s.pages.Encode(scope, []byte(got[size-1].ID))
	}
	res.Users = make([]*authv1.User, len(got))
	for i, u := range got {
		res.Users[i] = auth.UserToProto(u)
	}
	return connect.NewResponse(res), nil
}

// SetUserRoles implements AdminService. The new roles apply from the
// user's next request. An admin cannot remove its own admin role, so the
// last admin cannot lock everyone out by mistake.
func (s *Service) SetUserRoles(ctx context.Context, req *connect.Request[adminv1.SetUserRolesRequest]) (*connect.Response[adminv1.SetUserRolesResponse], error) {
	if self(ctx, req.Msg.GetUserId()) && !slices.Contains(req.Msg.GetRoles(), "admin") {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("an admin cannot remove its own admin role"))
	}
	u, err := s.store.SetUserRoles(ctx, req.Msg.GetUserId(), req.Msg.GetRoles())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	s.creds.InvalidateUser(ctx, u.ID)
	s.record(ctx, audit.TypeRoleChange, adminv1connect.AdminServiceSetUserRolesProcedure, u.ID, "roles: "+strings.Join(u.Roles, ", "))
	return connect.NewResponse(&adminv1.SetUserRolesResponse{User: auth.UserToProto(u)}), nil
}

// DisableUser implements AdminService: the user can no longer log in, and
// every session and API key of theirs stops working at once.
func (s *Service) DisableUser(ctx context.Context, req *connect.Request[adminv1.DisableUserRequest]) (*connect.Response[adminv1.DisableUserResponse], error) {
	if self(ctx, req.Msg.GetUserId()) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("an admin cannot disable itself"))
	}
	if err := s.store.DisableUser(ctx, req.Msg.GetUserId()); err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	s.creds.InvalidateUser(ctx, req.Msg.GetUserId())
	s.record(ctx, audit.TypeUserDisabled, adminv1connect.AdminServiceDisableUserProcedure, req.Msg.GetUserId(), "")
	return connect.NewResponse(&adminv1.DisableUserResponse{}), nil
}

// UnlockUser implements AdminService: the way back for an account locked
// out by failed logins (say, by a guessing run spread over many networks).
// The call is audited like every admin call.
func (s *Service) UnlockUser(ctx context.Context, req *connect.Request[adminv1.UnlockUserRequest]) (*connect.Response[adminv1.UnlockUserResponse], error) {
	u, err := s.store.UserByID(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	if err := s.creds.Unlock(ctx, u.Email); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	if b, ok := s.creds.(Unblocker); ok {
		b.UnblockUser(ctx, u.ID)
	}
	return connect.NewResponse(&adminv1.UnlockUserResponse{}), nil
}

// UnblockNetwork implements AdminService.
func (s *Service) UnblockNetwork(ctx context.Context, req *connect.Request[adminv1.UnblockNetworkRequest]) (*connect.Response[adminv1.UnblockNetworkResponse], error) {
	b, ok := s.creds.(NetworkUnblocker)
	if !ok {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("network blocks are not kept"))
	}
	ip, err := netip.ParseAddr(req.Msg.GetIp())
	if err != nil { // protovalidate checked it: only a direct call gets here
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("ip: not an IP address"))
	}
	return connect.NewResponse(&adminv1.UnblockNetworkResponse{WasBlocked: b.UnblockNetwork(ctx, ip)}), nil
}

// RotateSigningKey implements AdminService.
func (s *Service) RotateSigningKey(ctx context.Context, req *connect.Request[adminv1.RotateSigningKeyRequest]) (*connect.Response[adminv1.RotateSigningKeyResponse], error) {
	kid, err := s.creds.RotateSigningKey(ctx, req.Msg.GetRevokePrevious())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&adminv1.RotateSigningKeyResponse{KeyId: kid}), nil
}

func self(ctx context.Context, userID string) bool {
	p, ok := authn.PrincipalFrom(ctx)
	return ok && p.UserID == userID
}
