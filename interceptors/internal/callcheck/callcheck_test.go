package callcheck_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/interceptors/internal/callcheck"
	"github.com/connectguard/guard/interceptors/internal/testservice"
)

type procedureKey struct{}

// checker is a check that records the calls it sees, by their X-Call-Id
// header, refuses those with an X-Refuse header, and gives the others a
// context carrying their procedure.
type checker struct {
	mu    sync.Mutex
	calls map[string]callcheck.Call
}

func (c *checker) check(ctx context.Context, call callcheck.Call) (context.Context, error) {
	c.mu.Lock()
	if c.calls == nil {
		c.calls = make(map[string]callcheck.Call)
	}
	c.calls[call.Header.Get("X-Call-Id")] = call
	c.mu.Unlock()
	if call.Header.Get("X-Refuse") != "" {
		return ctx, connect.NewError(connect.CodePermissionDenied, errors.New("refused by the check"))
	}
	return context.WithValue(ctx, procedureKey{}, call.Spec.Procedure), nil
}

func (c *checker) call(id string) (callcheck.Call, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	call, ok := c.calls[id]
	return call, ok
}

// derived is the handler's hook: it fails unless the context carries the
// value the check derived.
func derived(ctx context.Context, procedure, _ string) error {
	if got, _ := ctx.Value(procedureKey{}).(string); got != procedure {
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("the handler's context lacks the check's value"))
	}
	return nil
}

func shortName(procedure string) string {
	return procedure[strings.LastIndex(procedure, "/")+1:]
}

var streamTypes = map[string]connect.StreamType{
	testservice.GetItem:   connect.StreamTypeUnary,
	testservice.ListItems: connect.StreamTypeServer,
	testservice.SyncItems: connect.StreamTypeBidi,
}

// TestHandlerCalls: the check runs on unary, server-streaming and bidi
// handler calls alike, sees the call's spec, peer and headers, and the
// context it returns is the handler's; a refusal ends the call before the
// handler.
func TestHandlerCalls(t *testing.T) {
	t.Parallel()
	c := &checker{}
	svc := testservice.NewService(derived)
	srv := testservice.Start(svc, connect.WithInterceptors(callcheck.New(c.check)))
	t.Cleanup(srv.Close)
	for procedure, streamType := range streamTypes {
		for _, protocol := range testservice.Protocols() {
			for _, refuse := range []bool{false, true} {
				name := shortName(procedure) + "/" + protocol + "/allowed"
				if refuse {
					name = shortName(procedure) + "/" + protocol + "/refused"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					h := http.Header{"X-Call-Id": {t.Name()}}
					if refuse {
						h.Set("X-Refuse", "1")
					}
					res := testservice.Call(t.Context(), srv.Client(protocol), procedure, h, t.Name())
					wantCode := "ok"
					if refuse {
						wantCode = "permission_denied"
					}
					if got := res.Code(); got != wantCode {
						t.Fatalf("code = %s (%v), want %s", got, res.Err, wantCode)
					}
					call, ok := c.call(t.Name())
					if !ok {
						t.Fatal("the check did not run")
					}
					if call.Spec.Procedure != procedure || call.Spec.StreamType != streamType || call.Spec.IsClient {
						t.Errorf("check saw spec %+v, want the handler spec of %s (%v)", call.Spec, procedure, streamType)
					}
					if call.Peer.Protocol != protocol || call.Peer.Addr == "" {
						t.Errorf("check saw peer %+v, want protocol %s and an address", call.Peer, protocol)
					}
					reached := false
					for _, r := range svc.Reached() {
						reached = reached || r.ID == t.Name()
					}
					if reached == refuse {
						t.Errorf("handler reached = %v, want %v", reached, !refuse)
					}
				})
			}
		}
	}
}

// TestClientCalls: on a client, the check never runs.
func TestClientCalls(t *testing.T) {
	t.Parallel()
	c := &checker{}
	srv := testservice.Start(testservice.NewService(nil))
	t.Cleanup(srv.Close)
	for procedure := range streamTypes {
		t.Run(shortName(procedure), func(t *testing.T) {
			t.Parallel()
			client := srv.Client(connect.ProtocolConnect, connect.WithInterceptors(callcheck.New(c.check)))
			res := testservice.Call(t.Context(), client, procedure, http.Header{"X-Call-Id": {t.Name()}, "X-Refuse": {"1"}}, "a")
			if res.Err != nil {
				t.Fatalf("error = %v, want none: the check must not run on clients", res.Err)
			}
			if call, ok := c.call(t.Name()); ok {
				t.Errorf("check ran on a client call: %+v", call.Spec)
			}
		})
	}
}
