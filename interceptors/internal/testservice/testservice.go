// Package testservice serves guard.testservice.v1.TestService for the
// interceptors' own tests: a handler that records what reaches it, behind
// a real HTTP/2 server, called with Connect, gRPC and gRPC-Web clients.
//
// The service's policies (proto/guard/testservice/v1/testservice.proto)
// give one RPC per kind of check, in the three shapes a check must cover:
// unary, server streaming (ListItems) and bidi streaming (SyncItems).
package testservice

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/clientip"
	testservicev1 "github.com/connectguard/guard/interceptors/internal/testservice/gen/guard/testservice/v1"
	"github.com/connectguard/guard/interceptors/internal/testservice/gen/guard/testservice/v1/testservicev1connect"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/interceptors/requestid"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The procedures of the test service.
const (
	Ping                = testservicev1connect.TestServicePingProcedure
	GetItem             = testservicev1connect.TestServiceGetItemProcedure
	UpdateItem          = testservicev1connect.TestServiceUpdateItemProcedure
	LimitedPerUser      = testservicev1connect.TestServiceLimitedPerUserProcedure
	LimitedPerIP        = testservicev1connect.TestServiceLimitedPerIPProcedure
	LimitedPerUserAndIP = testservicev1connect.TestServiceLimitedPerUserAndIPProcedure
	ListItems           = testservicev1connect.TestServiceListItemsProcedure
	SyncItems           = testservicev1connect.TestServiceSyncItemsProcedure
)

// ListItemsCount is how many responses Call asks ListItems to stream.
const ListItemsCount = 2

// Descriptor returns the descriptor of TestService.
func Descriptor() protoreflect.ServiceDescriptor {
	return testservicev1.File_guard_testservice_v1_testservice_proto.Services().ByName("TestService")
}

// Table returns the policy table of TestService, with its roles (reader,
// writer, admin) and scopes (items:read, items:write) declared.
func Table() (*policy.Table, error) {
	return policy.NewTable([]protoreflect.ServiceDescriptor{Descriptor()},
		policy.WithRoles("reader", "writer", "admin"), policy.WithScopes("items:read", "items:write"))
}

// Protocols returns the names of the three protocols, as connect.Peer
// gives them: connect, grpc and grpcweb.
func Protocols() []string {
	return []string{connect.ProtocolConnect, connect.ProtocolGRPC, connect.ProtocolGRPCWeb}
}

// Hook runs for every request message that reaches the handler, with the
// handler's context; a non-nil error ends the call with it. It may block
// or panic, as a handler may.
type Hook func(ctx context.Context, procedure, id string) error

// Reached is a request message that reached the handler.
type Reached struct {
	Procedure string
	ID        string
}

// Service implements TestService. It answers every request with its id,
// after recording it and running its hook.
type Service struct {
	hook Hook

	mu      sync.Mutex
	reached []Reached
}

var _ testservicev1connect.TestServiceHandler = (*Service)(nil)

// NewService returns a Service running hook (nil: none).
func NewService(hook Hook) *Service {
	return &Service{hook: hook}
}

// Reached returns the request messages that reached the handler, in order.
func (s *Service) Reached() []Reached {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reached(nil), s.reached...)
}

func (s *Service) reach(ctx context.Context, procedure, id string) error {
	s.mu.Lock()
	s.reached = append(s.reached, Reached{Procedure: procedure, ID: id})
	s.mu.Unlock()
	if s.hook != nil {
		return s.hook(ctx, procedure, id)
	}
	return nil
}

// Ping implements TestServiceHandler.
func (s *Service) Ping(ctx context.Context, req *connect.Request[testservicev1.PingRequest]) (*connect.Response[testservicev1.PingResponse], error) {
	if err := s.reach(ctx, Ping, req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.PingResponse{Id: req.Msg.GetId()}), nil
}

// GetItem implements TestServiceHandler.
func (s *Service) GetItem(ctx context.Context, req *connect.Request[testservicev1.GetItemRequest]) (*connect.Response[testservicev1.GetItemResponse], error) {
	if err := s.reach(ctx, GetItem, req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.GetItemResponse{Id: req.Msg.GetId()}), nil
}

// UpdateItem implements TestServiceHandler.
func (s *Service) UpdateItem(ctx context.Context, req *connect.Request[testservicev1.UpdateItemRequest]) (*connect.Response[testservicev1.UpdateItemResponse], error) {
	id := req.Msg.GetItem().GetId()
	if err := s.reach(ctx, UpdateItem, id); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.UpdateItemResponse{Id: id}), nil
}

// LimitedPerUser implements TestServiceHandler.
func (s *Service) LimitedPerUser(ctx context.Context, req *connect.Request[testservicev1.LimitedPerUserRequest]) (*connect.Response[testservicev1.LimitedPerUserResponse], error) {
	if err := s.reach(ctx, LimitedPerUser, req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.LimitedPerUserResponse{Id: req.Msg.GetId()}), nil
}

// LimitedPerIP implements TestServiceHandler.
func (s *Service) LimitedPerIP(ctx context.Context, req *connect.Request[testservicev1.LimitedPerIPRequest]) (*connect.Response[testservicev1.LimitedPerIPResponse], error) {
	if err := s.reach(ctx, LimitedPerIP, req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.LimitedPerIPResponse{Id: req.Msg.GetId()}), nil
}

// LimitedPerUserAndIP implements TestServiceHandler.
func (s *Service) LimitedPerUserAndIP(ctx context.Context, req *connect.Request[testservicev1.LimitedPerUserAndIPRequest]) (*connect.Response[testservicev1.LimitedPerUserAndIPResponse], error) {
	if err := s.reach(ctx, LimitedPerUserAndIP, req.Msg.GetId()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&testservicev1.LimitedPerUserAndIPResponse{Id: req.Msg.GetId()}), nil
}

// ListItems implements TestServiceHandler.
func (s *Service) ListItems(ctx context.Context, req *connect.Request[testservicev1.ListItemsRequest], stream *connect.ServerStream[testservicev1.ListItemsResponse]) error {
	if err := s.reach(ctx, ListItems, req.Msg.GetId()); err != nil {
		return err
	}
	for range max(1, req.Msg.GetCount()) {
		if err := stream.Send(&testservicev1.ListItemsResponse{Id: req.Msg.GetId()}); err != nil {
			return err
		}
	}
	return nil
}

// SyncItems implements TestServiceHandler.
func (s *Service) SyncItems(ctx context.Context, stream *connect.BidiStream[testservicev1.SyncItemsRequest, testservicev1.SyncItemsResponse]) error {
	for {
		req, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.reach(ctx, SyncItems, req.GetId()); err != nil {
			return err
		}
		if err := stream.Send(&testservicev1.SyncItemsResponse{Id: req.GetId()}); err != nil {
			return err
		}
	}
}

// Handler returns a mux serving svc with opts.
func Handler(svc testservicev1connect.TestServiceHandler, opts ...connect.HandlerOption) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(testservicev1connect.NewTestServiceHandler(svc, opts...))
	return mux
}

// Server is an HTTP/2 server over TLS on the loopback interface.
type Server struct {
	// URL is the base URL of the server.
	URL string
	srv *httptest.Server
	// errors is what net/http logs, such as trailers it refused to send.
	errors *Log
}

// NewServer starts a Server for h behind the HTTP layer every call of the
// chain needs: requestid.Middleware, so every response carries an
// X-Request-Id, and clientip.Middleware trusting X-Forwarded-For from
// loopback peers, so a test chooses its client address with that header
// (the default is 127.0.0.1). Close it when done.
func NewServer(h http.Handler) *Server {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	srv := httptest.NewUnstartedServer(requestid.Middleware(clientip.NewResolver(loopback).Middleware(h)))
	errLog := NewLog()
	srv.Config.ErrorLog = slog.NewLogLogger(errLog.Logger.Handler(), slog.LevelError)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	return &Server{URL: srv.URL, srv: srv, errors: errLog}
}

// ErrorLog returns what the http.Server logged, as JSON lines: connection
// errors and what net/http refused to send, such as a forbidden trailer.
func (s *Server) ErrorLog() string { return s.errors.String() }

// Start starts a Server for svc with opts: NewServer(Handler(svc, opts...)).
func Start(svc testservicev1connect.TestServiceHandler, opts ...connect.HandlerOption) *Server {
	return NewServer(Handler(svc, opts...))
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// Client returns a client of the server speaking protocol (one of
// Protocols), with binary protobuf, and opts.
func (s *Server) Client(protocol string, opts ...connect.ClientOption) testservicev1connect.TestServiceClient {
	switch protocol {
	case connect.ProtocolGRPC:
		opts = append(opts, connect.WithGRPC())
	case connect.ProtocolGRPCWeb:
		opts = append(opts, connect.WithGRPCWeb())
	}
	return testservicev1connect.NewTestServiceClient(s.srv.Client(), s.URL, opts...)
}

// Result is what a client got from a call.
type Result struct {
	// IDs are those of the responses received, in order.
	IDs []string
	// Err is the call's error, nil when it succeeded.
	Err error
	// Meta is every response header and trailer the client saw, those of
	// the error included.
	Meta http.Header
}

// Code returns "ok" or the name of the error's code.
func (r Result) Code() string {
	if r.Err == nil {
		return "ok"
	}
	return connect.CodeOf(r.Err).String()
}

// Message returns the error's message, "" when the call succeeded.
func (r Result) Message() string {
	var ce *connect.Error
	if errors.As(r.Err, &ce) {
		return ce.Message()
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	return ""
}

// Call calls procedure with client, sending header. Unary procedures get
// one request with ids[0] ("" when there is none); ListItems gets one
// with ids[0] and a count of ListItemsCount; SyncItems gets one request
// per id, each sent after the answer to the one before, until the stream
// fails.
func Call(ctx context.Context, client testservicev1connect.TestServiceClient, procedure string, header http.Header, ids ...string) Result {
	id := ""
	if len(ids) > 0 {
		id = ids[0]
	}
	var (
		r       Result
		headers []http.Header
	)
	switch procedure {
	case Ping:
		res, err := client.Ping(ctx, request(&testservicev1.PingRequest{Id: id}, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case GetItem:
		res, err := client.GetItem(ctx, request(&testservicev1.GetItemRequest{Id: id}, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case UpdateItem:
		msg := &testservicev1.UpdateItemRequest{}
		if len(ids) > 0 {
			msg.Item = &testservicev1.Item{Id: id}
		}
		res, err := client.UpdateItem(ctx, request(msg, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case LimitedPerUser:
		res, err := client.LimitedPerUser(ctx, request(&testservicev1.LimitedPerUserRequest{Id: id}, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case LimitedPerIP:
		res, err := client.LimitedPerIP(ctx, request(&testservicev1.LimitedPerIPRequest{Id: id}, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case LimitedPerUserAndIP:
		res, err := client.LimitedPerUserAndIP(ctx, request(&testservicev1.LimitedPerUserAndIPRequest{Id: id}, header))
		r.Err = err
		if err == nil {
			r.IDs, headers = []string{res.Msg.GetId()}, []http.Header{res.Header(), res.Trailer()}
		}
	case ListItems:
		stream, err := client.ListItems(ctx, request(&testservicev1.ListItemsRequest{Id: id, Count: ListItemsCount}, header))
		if err != nil {
			r.Err = err
			break
		}
		for stream.Receive() {
			r.IDs = append(r.IDs, stream.Msg().GetId())
		}
		r.Err = stream.Err()
		headers = []http.Header{stream.ResponseHeader(), stream.ResponseTrailer()}
		_ = stream.Close()
	case SyncItems:
		r.IDs, headers, r.Err = callSync(ctx, client, header, ids)
	default:
		r.Err = errors.New("testservice: no such procedure: " + procedure)
	}
	var ce *connect.Error
	if errors.As(r.Err, &ce) {
		headers = append(headers, ce.Meta())
	}
	r.Meta = merge(headers...)
	return r
}

func callSync(ctx context.Context, client testservicev1connect.TestServiceClient, header http.Header, ids []string) ([]string, []http.Header, error) {
	stream := client.SyncItems(ctx)
	for k, v := range header {
		stream.RequestHeader()[k] = v
	}
	var (
		got []string
		err error
	)
	for _, id := range ids {
		if err = stream.Send(&testservicev1.SyncItemsRequest{Id: id}); err != nil {
			break // io.EOF: the server ended the stream; Receive says why
		}
		var res *testservicev1.SyncItemsResponse
		if res, err = stream.Receive(); err != nil {
			break
		}
		got = append(got, res.GetId())
	}
	if len(ids) == 0 || err == nil || errors.Is(err, io.EOF) {
		_ = stream.CloseRequest()
		for {
			res, rerr := stream.Receive()
			if rerr != nil {
				err = rerr
				break
			}
			got = append(got, res.GetId())
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	headers := []http.Header{stream.ResponseHeader(), stream.ResponseTrailer()}
	_ = stream.CloseResponse()
	return got, headers, err
}

func request[T any](msg *T, header http.Header) *connect.Request[T] {
	req := connect.NewRequest(msg)
	for k, v := range header {
		req.Header()[k] = v
	}
	return req
}

// merge returns the values of all headers, each value of a key once.
func merge(headers ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range headers {
		for k, vs := range h {
			k = http.CanonicalHeaderKey(k)
			for _, v := range vs {
				if !slices.Contains(out[k], v) {
					out[k] = append(out[k], v)
				}
			}
		}
	}
	return out
}
