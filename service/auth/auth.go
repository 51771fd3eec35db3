// Package auth implements guard.auth.v1.AuthService and the verification
// of the credentials it issues: access tokens (authn.TokenVerifier),
// session cookies (authn.SessionVerifier) and API keys
// (authn.APIKeyVerifier).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"connectrpc.com/connect"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/interceptors/authn"
	"github.com/connectguard/guard/interceptors/clientip"
	"github.com/connectguard/guard/interceptors/ratelimit"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/internal/invalidation"
	"github.com/connectguard/guard/internal/lockout"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/internal/rpcerr"
	"github.com/connectguard/guard/internal/token"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// CookieName is the session cookie. The __Host- prefix makes browsers
// insist on Secure, Path=/ and no Domain, so no subdomain can set or read it.
const CookieName = "__Host-guard_session"

// refreshPrefix marks refresh tokens, so that one is never mistaken for an
// access token or an API key.
const refreshPrefix = "grt_"

// Store is the persistence the service needs.
type Store interface {
	UserByEmail(ctx context.Context, email string) (store.User, string, error)
	UserByID(ctx context.Context, id string) (store.User, error)
	PasswordHash(ctx context.Context, userID string) (string, error)
	SetPasswordHash(ctx context.Context, userID, hash string) error

	CreateSession(ctx context.Context, userID string, expire time.Time, cookieHash []byte) (store.Session, error)
	SessionByCookie(ctx context.Context, cookieHash []byte) (store.Session, error)
	SessionState(ctx context.Context, sessionID string) (store.SessionState, error)
	TouchSession(ctx context.Context, id string, seen time.Time) error
	RevokeSession(ctx context.Context, id string) error
	RevokeUserSessions(ctx context.Context, userID, exceptID string) (int, error)
	CreateRefreshToken(ctx context.Context, sessionID string, hash []byte, expire time.Time) error
	RotateRefreshToken(ctx context.Context, oldHash, newHash []byte, newExpire time.Time) (store.Session, error)

	CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error)
	APIKeyState(ctx context.Context, id string, secretHash []byte) (store.APIKeyState, error)
	ListAPIKeys(ctx context.Context, userID, root string) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, userID, id, root string) error
	RevokeUserAPIKeys(ctx context.Context, userID string) (int, error)
	TouchAPIKey(ctx context.Context, id string, used time.Time) error

	RecordAuditEvent(ctx context.Context, e store.AuditEvent) error
	KeyStore
}

// Service implements AuthService.
type Service struct {
	store   Store
	hasher  *password.Hasher
	tokens  *token.Service
	keys    *token.Keys
	lockout lockout.Store
	log     *slog.Logger
	cache   *stateCache
	ring    *keyring
	// publisher tells the other replicas of changes; nil with none.
	publisher Publisher
	observer  Observer // logins and refresh reuse, for metrics

	sessionTTL  time.Duration
	idleTimeout time.Duration
	tokenTTL    time.Duration
	now         func() time.Time
}

var _ authv1connect.AuthServiceHandler = (*Service)(nil)

// New returns a Service. tokens must sign with keys.
func New(st Store, hasher *password.Hasher, tokens *token.Service, keys *token.Keys, guard lockout.Store, log *slog.Logger, opts ...Option) *Service {
	s := &Service{
		store: st, hasher: hasher, tokens: tokens, keys: keys, lockout: guard, log: log,
		sessionTTL: 7 * 24 * time.Hour, idleTimeout: 30 * time.Minute, tokenTTL: 15 * time.Minute,
		now: time.Now, observer: noObserver{},
	}
	for _, o := range opts {
		o.apply(s)
	}
	s.cache = newStateCache(100_000, s.now)
	s.ring = &keyring{store: st, keys: keys, now: s.now}
	return s
}

// Publisher tells every other replica of a change this one made
// (invalidation.Redis).
type Publisher interface {
	Publish(ctx context.Context, e invalidation.Event) error
}

// errLogin is the one answer to every failed login: unknown email, wrong
// password and disabled account are indistinguishable.
func errLogin() *connect.Error {
	return authn.Unauthenticated("invalid email or password", "")
}

// Login implements AuthService. Before any password work it consults the
// lockout guard; every failure is counted for the account (known or not)
// and the client IP.
func (s *Service) Login(ctx context.Context, req *connect.Request[authv1.LoginRequest]) (*connect.Response[authv1.LoginResponse], error) {
	email := req.Msg.GetEmail()
	ip, _ := clientip.From(ctx)
	if ok, wait, err := s.lockout.Check(ctx, email, ip); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	} else if !ok {
		s.observer.ObserveLogin(LoginLockedOut)
		err := ratelimit.Exhausted("too many failed logins", wait)
		s.event(ctx, audit.TypeLockout, procLogin, "", "", err, "login refused: locked out after failed logins")
		return nil, err
	}
	u, hash, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		// Same work as a real check, so timing does not reveal the account.
		s.hasher.VerifyDummy(ctx, req.Msg.GetPassword())
		s.failure(ctx, email, ip)
		s.observer.ObserveLogin(LoginInvalid)
		if o, ok := s.observer.(SourceObserver); ok {
			o.ObserveLoginFailure(email, ip)
		}
		// The email is not recorded: people type passwords into it.
		s.event(ctx, audit.TypeLoginFailure, procLogin, "", "", errLogin(), "unknown email")
		return nil, errLogin()
	}
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, req.Msg.GetPassword(), hash)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, fmt.Errorf("verify password of user %s: %w", u.ID, err))
	}
	if !ok || u.Disabled {
		s.failure(ctx, email, ip)
		s.observer.ObserveLogin(LoginInvalid)
		if o, ok := s.observer.(SourceObserver); ok {
			o.ObserveLoginFailure(email, ip)
		}
		reason := "wrong password"
		if ok {
			reason = "account disabled"
		}
		s.event(ctx, audit.TypeLoginFailure, procLogin, "", u.ID, errLogin(), reason)
		return nil, errLogin()
	}
	s.success(ctx, email, ip)
	s.observer.ObserveLogin(LoginOK)
	s.event(ctx, audit.TypeLoginSuccess, procLogin, u.ID, u.ID, nil, "")
	authn.Identify(ctx, u.ID)
	if rehash {
		s.rehash(ctx, u.ID, req.Msg.GetPassword())
	}
	expire := s.now().Add(s.sessionTTL)
	if req.Msg.GetUseCookie() {
		secret := randomToken()
		sum := sha256.Sum256([]byte(secret))
		if _, err := s.store.CreateSession(ctx, u.ID, expire, sum[:]); err != nil {
			return nil, rpcerr.Internal(ctx, s.log, err)
		}
		res := connect.NewResponse(&authv1.LoginResponse{User: UserToProto(u)})
		res.Header().Add("Set-Cookie", s.cookie(secret, s.sessionTTL).String())
		return res, nil
	}
	sess, err := s.store.CreateSession(ctx, u.ID, expire, nil)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	res, err := s.issue(ctx, sess, u.Roles)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&authv1.LoginResponse{
		AccessToken: res.AccessToken, RefreshToken: res.RefreshToken,
		AccessTokenExpireTime: res.AccessTokenExpireTime, User: UserToProto(u),
	}), nil
}

// failure counts a failed password check for the lockouts. A store that
// could not count it (shared, down, set to fail closed) refuses the next
// Check too, so the attempt is only logged.
func (s *Service) failure(ctx context.Context, email string, ip netip.Addr) {
	if err := s.lockout.Failure(ctx, email, ip); err != nil {
		s.log.WarnContext(ctx, "failed login not counted", "error", err)
		return
	}
	s.lockoutStarted(ctx, email, ip)
}

// success records a good password for the lockouts (trust of the network).
func (s *Service) success(ctx context.Context, email string, ip netip.Addr) {
	if err := s.lockout.Success(ctx, email, ip); err != nil {
		s.log.WarnContext(ctx, "successful login not recorded for the lockouts", "error", err)
	}
}

// rehash upgrades a stored hash to the current parameters; a failure is
// logged and retried at the next login.
func (s *Service) rehash(ctx context.Context, userID, pw string) {
	hash, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.store.SetPasswordHash(ctx, userID, hash)
	}
	if err != nil {
		s.log.WarnContext(ctx, "password rehash failed", "user_id", userID, "error", err)
	}
}

// issue makes a refresh token and an access token for sess.
func (s *Service) issue(ctx context.Context, sess store.Session, roles []string) (*authv1.RefreshResponse, error) {
	refresh := refreshPrefix + randomToken()
	sum := sha256.Sum256([]byte(refresh))
	if err := s.store.CreateRefreshToken(ctx, sess.ID, sum[:], sess.ExpireTime); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	access, claims, err := s.tokens.Sign(sess.UserID, sess.ID, roles)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	return &authv1.RefreshResponse{
		AccessToken: access, RefreshToken: refresh, AccessTokenExpireTime: timestamppb.New(claims.ExpiresAt),
	}, nil
}

func errRefresh() *connect.Error {
	return authn.Unauthenticated("invalid refresh token", `error="invalid_token"`)
}

// Refresh implements AuthService: the presented token is spent and a new
// pair issued, atomically. A token presented a second time revokes its
// whole session and is recorded as a security event: either the client or
// a thief holds a copy, and the server cannot tell which.
func (s *Service) Refresh(ctx context.Context, req *connect.Request[authv1.RefreshRequest]) (*connect.Response[authv1.RefreshResponse], error) {
	old := req.Msg.GetRefreshToken()
	if !parseRefreshToken(old) {
		return nil, errRefresh()
	}
	next := refreshPrefix + randomToken()
	oldSum, nextSum := sha256.Sum256([]byte(old)), sha256.Sum256([]byte(next))
	sess, err := s.store.RotateRefreshToken(ctx, oldSum[:], nextSum[:], s.now().Add(s.sessionTTL))
	switch {
	case errors.Is(err, store.ErrReused):
		s.InvalidateUser(ctx, sess.UserID)
		s.observer.ObserveRefreshReuse()
		if o, ok := s.observer.(SourceObserver); ok {
			ip, _ := clientip.From(ctx)
			o.ObserveRefreshReuseBy(sess.UserID, ip)
		}
		s.event(ctx, audit.TypeRefreshTokenReuse, procRefresh, sess.UserID, sess.UserID, errRefresh(),
			"refresh token reused: session "+sess.ID+" revoked")
		return nil, errRefresh()
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExpired):
		return nil, errRefresh()
	case err != nil:
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	st, err := s.store.SessionState(ctx, sess.ID)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	if st.Disabled {
		return nil, errRefresh()
	}
	access, claims, err := s.tokens.Sign(sess.UserID, sess.ID, st.Roles)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	s.event(ctx, audit.TypeRefresh, procRefresh, sess.UserID, sess.UserID, nil, "session "+sess.ID)
	return connect.NewResponse(&authv1.RefreshResponse{
		AccessToken: access, RefreshToken: next, AccessTokenExpireTime: timestamppb.New(claims.ExpiresAt),
	}), nil
}

const (
	procLogin   = authv1connect.AuthServiceLoginProcedure
	procRefresh = authv1connect.AuthServiceRefreshProcedure
)

// event records an event of type t in the audit trail: actor acted on
// subject (either may be ""), the caller received err (nil: ok), and
// detail is for admins only (the caller is never told it). Reuse of a
// refresh token is also logged at Warn. A failure to record is logged:
// what the event records has already happened.
func (s *Service) event(ctx context.Context, t audit.Type, procedure, actor, subject string, err error, detail string) {
	ip, _ := clientip.From(ctx)
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	e := store.AuditEvent{
		Type: string(t), ActorID: actor, SubjectID: subject, Procedure: procedure, Code: code,
		ClientIP: ip.String(), RequestID: requestid.From(ctx), Detail: detail,
	}
	if t == audit.TypeRefreshTokenReuse {
		s.log.WarnContext(ctx, "security event", "type", t, "user_id", subject, "detail", detail, "request_id", e.RequestID)
	}
	if err := s.store.RecordAuditEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "audit record lost", "type", t, "request_id", e.RequestID, "error", err)
	}
}

// Logout implements AuthService: the caller's session is revoked, and with
// it every access token and refresh token it issued.
func (s *Service) Logout(ctx context.Context, _ *connect.Request[authv1.LogoutRequest]) (*connect.Response[authv1.LogoutResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.SessionID == "" {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("an API key has no session: revoke the key instead"))
	}
	if err := s.store.RevokeSession(ctx, p.SessionID); err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "session", err)
	}
	s.InvalidateUser(ctx, p.UserID)
	s.event(ctx, audit.TypeLogout, authv1connect.AuthServiceLogoutProcedure, p.UserID, p.UserID, nil, "session "+p.SessionID)
	res := connect.NewResponse(&authv1.LogoutResponse{})
	if p.Method == authn.MethodSessionCookie {
		res.Header().Add("Set-Cookie", s.cookie("", -1).String())
	}
	return res, nil
}

// WhoAmI implements AuthService.
func (s *Service) WhoAmI(ctx context.Context, _ *connect.Request[authv1.WhoAmIRequest]) (*connect.Response[authv1.WhoAmIResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	return connect.NewResponse(&authv1.WhoAmIResponse{
		User:       UserToProto(u),
		AuthMethod: authMethod(p.Method),
		Scopes:     slices.Clone(p.Scopes),
	}), nil
}

// ChangePassword implements AuthService: with the current password, it
// sets a new one and revokes the user's other sessions and every API key.
// The caller's own session stays signed in. A wrong current password counts
// as a failed login (a stolen session must not become a free password
// oracle), and a locked-out account cannot change its password.
func (s *Service) ChangePassword(ctx context.Context, req *connect.Request[authv1.ChangePasswordRequest]) (*connect.Response[authv1.ChangePasswordResponse], error) {
	p, err := authn.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Method == authn.MethodAPIKey {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("an API key cannot change the password"))
	}
	current, next := req.Msg.GetCurrentPassword(), req.Msg.GetNewPassword()
	u, err := s.store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	if err := password.Check(next, u.Email); err != nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("new_password: %w", err))
	}
	if current == next {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("new_password: must differ from the current password"))
	}
	ip, _ := clientip.From(ctx)
	if ok, wait, err := s.lockout.Check(ctx, u.Email, ip); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	} else if !ok {
		return nil, ratelimit.Exhausted("too many failed password checks", wait)
	}
	hash, err := s.store.PasswordHash(ctx, p.UserID)
	if err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	ok, _, err := s.hasher.Verify(ctx, current, hash)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	if !ok {
		s.failure(ctx, u.Email, ip)
		err := connect.NewError(connect.CodePermissionDenied, errors.New("current password is incorrect"))
		s.event(ctx, audit.TypeSuspiciousActivity, authv1connect.AuthServiceChangePasswordProcedure, p.UserID, p.UserID, err,
			"wrong current password (counted as a failed login)")
		return nil, err
	}
	s.success(ctx, u.Email, ip)
	newHash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	if err := s.store.SetPasswordHash(ctx, p.UserID, newHash); err != nil {
		return nil, rpcerr.FromStore(ctx, s.log, "user", err)
	}
	if _, err := s.store.RevokeUserSessions(ctx, p.UserID, p.SessionID); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	if _, err := s.store.RevokeUserAPIKeys(ctx, p.UserID); err != nil {
		return nil, rpcerr.Internal(ctx, s.log, err)
	}
	s.InvalidateUser(ctx, p.UserID)
	s.event(ctx, audit.TypePasswordChange, authv1connect.AuthServiceChangePasswordProcedure, p.UserID, p.UserID, nil,
		"other sessions and all API keys revoked")
	return connect.NewResponse(&authv1.ChangePasswordResponse{}), nil
}

// cookie returns the session cookie carrying value for maxAge (negative:
// delete it).
func (s *Service) cookie(value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name: CookieName, Value: value, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// randomToken returns 256 random bits, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func authMethod(m authn.Method) authv1.AuthMethod {
	switch m {
	case authn.MethodAccessToken:
		return authv1.AuthMethod_AUTH_METHOD_ACCESS_TOKEN
	case authn.MethodAPIKey:
		return authv1.AuthMethod_AUTH_METHOD_API_KEY
	case authn.MethodSessionCookie:
		return authv1.AuthMethod_AUTH_METHOD_SESSION_COOKIE
	default:
		return authv1.AuthMethod_AUTH_METHOD_UNSPECIFIED
	}
}

// UserToProto converts a stored user for the API.
func UserToProto(u store.User) *authv1.User {
	return &authv1.User{
		Id:         u.ID,
		Email:      u.Email,
		Roles:      slices.Clone(u.Roles),
		Disabled:   u.Disabled,
		CreateTime: timestamppb.New(u.CreateTime),
	}
}
