// Package admin implements guard.admin.v1.AdminService. The policy in
// admin.proto limits every method to the admin role (and the admin scope
// for API keys) and audits every call.
package admin

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
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
}

// Service implements AdminService. Methods not built yet answer
// unimplemented.
type Service struct {
	adminv1connect.UnimplementedAdminServiceHandler

	store  Store
	hasher *password.Hasher
	pages  *pagetoken.Codec
	log    *slog.Logger
}

var _ adminv1connect.AdminServiceHandler = (*Service)(nil)

// New returns a Service.
func New(st Store, hasher *password.Hasher, pages *pagetoken.Codec, log *slog.Logger) *Service {
	return &Service{store: st, hasher: hasher, pages: pages, log: log}
}

// CreateUser implements AdminService.
func (s *Service) CreateUser(ctx context.Context, req *connect.Request[adminv1.CreateUserRequest]) (*connect.Response[adminv1.CreateUserResponse], error) {
	if err := password.Check(req.Msg.GetPassword()); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
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
