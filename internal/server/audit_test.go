package server_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	"github.com/connectguard/guard/gen/guard/admin/v1/adminv1connect"
	auditv1 "github.com/connectguard/guard/gen/guard/audit/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/internal/server"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const procListAudit = adminv1connect.AdminServiceListAuditEventsProcedure

// listAudit calls ListAuditEvents as c and fails the test on an error.
func listAudit(t *testing.T, c *goclient.Client, req *adminv1.ListAuditEventsRequest) *adminv1.ListAuditEventsResponse {
	t.Helper()
	res, err := c.Admin.ListAuditEvents(context.Background(), connect.NewRequest(req))
	if err != nil {
		t.Fatalf("ListAuditEvents(%v): %v", req, err)
	}
	return res.Msg
}

// TestListAuditEvents: the typed events of a small story, read back through
// the real server with each filter; pages; what a non-admin and a forged
// page token get; the listing itself in the trail.
func TestListAuditEvents(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	alice := addUser(t, admin, "alice@example.com", "member")
	// A wrong password, then the right one.
	if _, err := srv.Client(goclient.Connect, "").Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: alice.Email, Password: "not her password at all"})); codeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("wrong password: got %v, want unauthenticated", err)
	} else if strings.Contains(err.Error(), "wrong password") {
		t.Errorf("the caller was told the reason: %v", err)
	}
	ac := srv.Client(goclient.Connect, srv.Login(alice.Email, alice.Password))
	if _, err := admin.Admin.SetUserRoles(ctx, connect.NewRequest(&adminv1.SetUserRolesRequest{UserId: alice.ID, Roles: []string{"viewer"}})); err != nil {
		t.Fatal(err)
	}

	t.Run("non_admin_refused", func(t *testing.T) {
		res, err := ac.Admin.ListAuditEvents(ctx, connect.NewRequest(&adminv1.ListAuditEventsRequest{}))
		if codeOf(err) != connect.CodePermissionDenied || res != nil {
			t.Fatalf("ListAuditEvents as a viewer: got %v, %v; want permission_denied and nothing", res, err)
		}
		if msg := connect.NewError(connect.CodeUnknown, err).Message(); strings.Contains(msg, "password") || strings.Contains(msg, alice.ID) {
			t.Errorf("refusal message %q says something of the trail", msg)
		}
		// The refusal is itself in the trail, typed.
		got := listAudit(t, admin, &adminv1.ListAuditEventsRequest{
			UserId: alice.ID, Procedure: procListAudit, Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_AUTHORIZATION_DENIED},
		})
		if len(got.GetEvents()) != 1 || got.GetEvents()[0].GetCode() != "permission_denied" {
			t.Errorf("authorization_denied events of alice's ListAuditEvents = %v, want one", got.GetEvents())
		}
	})

	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			name string
			req  *adminv1.ListAuditEventsRequest
			// each must hold for every event, and some event must exist
			each func(*auditv1.Event) bool
			// some must hold for at least one event
			some func(*auditv1.Event) bool
		}{
			{"type_login_failure_with_reason",
				&adminv1.ListAuditEventsRequest{Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_LOGIN_FAILURE}},
				func(e *auditv1.Event) bool { return e.GetType() == auditv1.EventType_EVENT_TYPE_LOGIN_FAILURE },
				func(e *auditv1.Event) bool { return e.GetSubjectId() == alice.ID && e.GetDetail() == "wrong password" }},
			{"user",
				&adminv1.ListAuditEventsRequest{UserId: alice.ID},
				func(e *auditv1.Event) bool { return e.GetActorId() == alice.ID || e.GetSubjectId() == alice.ID },
				func(e *auditv1.Event) bool {
					return e.GetType() == auditv1.EventType_EVENT_TYPE_ROLE_CHANGE && e.GetDetail() == "roles: viewer"
				}},
			{"procedure_and_type",
				&adminv1.ListAuditEventsRequest{Procedure: adminv1connect.AdminServiceSetUserRolesProcedure, Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_RPC}},
				func(e *auditv1.Event) bool {
					return e.GetProcedure() == adminv1connect.AdminServiceSetUserRolesProcedure && e.GetType() == auditv1.EventType_EVENT_TYPE_RPC
				},
				func(e *auditv1.Event) bool { return e.GetCode() == "ok" }},
			{"code",
				&adminv1.ListAuditEventsRequest{Code: "unauthenticated"},
				func(e *auditv1.Event) bool { return e.GetCode() == "unauthenticated" },
				func(e *auditv1.Event) bool { return e.GetType() == auditv1.EventType_EVENT_TYPE_LOGIN_FAILURE }},
			{"time_range",
				&adminv1.ListAuditEventsRequest{StartTime: timestamppb.New(time.Now().Add(-time.Hour)), EndTime: timestamppb.New(time.Now().Add(time.Hour))},
				func(e *auditv1.Event) bool { return len(e.GetHash()) == 32 },
				func(e *auditv1.Event) bool { return e.GetType() == auditv1.EventType_EVENT_TYPE_LOGIN_SUCCESS }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := listAudit(t, admin, tt.req).GetEvents()
				if len(got) == 0 {
					t.Fatal("no events")
				}
				for _, e := range got {
					if !tt.each(e) {
						t.Errorf("event %v does not match the filter", e)
					}
				}
				if !slices.ContainsFunc(got, tt.some) {
					t.Errorf("events %v lack the one expected", got)
				}
			})
		}
		old := listAudit(t, admin, &adminv1.ListAuditEventsRequest{EndTime: timestamppb.New(time.Now().Add(-time.Hour))})
		if len(old.GetEvents()) != 0 {
			t.Errorf("events before an hour ago = %v, want none", old.GetEvents())
		}
	})

	t.Run("pages", func(t *testing.T) {
		req := &adminv1.ListAuditEventsRequest{PageSize: 2}
		var seqs []int64
		for page := 0; ; page++ {
			res := listAudit(t, admin, req)
			if len(res.GetEvents()) > 2 {
				t.Fatalf("page of %d events, want at most 2", len(res.GetEvents()))
			}
			for _, e := range res.GetEvents() {
				seqs = append(seqs, e.GetSeq())
			}
			if res.GetNextPageToken() == "" || page > 100 {
				break
			}
			req.PageToken = res.GetNextPageToken()
		}
		if len(seqs) < 5 || !slices.IsSortedFunc(seqs, func(a, b int64) int { return int(b - a) }) || seqs[len(seqs)-1] != 1 {
			t.Errorf("seqs over the pages = %v, want newest first down to 1", seqs)
		}
		if len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Errorf("seqs over the pages = %v, want no repeats", seqs)
		}
	})

	t.Run("forged_page_token", func(t *testing.T) {
		first := listAudit(t, admin, &adminv1.ListAuditEventsRequest{PageSize: 1})
		tok := first.GetNextPageToken()
		if tok == "" {
			t.Fatal("no next page token")
		}
		flipped := []byte(tok)
		flipped[len(flipped)/2] ^= 1
		for _, tt := range []struct {
			name string
			req  *adminv1.ListAuditEventsRequest
		}{
			{"altered", &adminv1.ListAuditEventsRequest{PageSize: 1, PageToken: string(flipped)}},
			{"garbage", &adminv1.ListAuditEventsRequest{PageToken: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
			// A token made for one listing does not continue another.
			{"other_filters", &adminv1.ListAuditEventsRequest{PageSize: 1, PageToken: tok, Code: "ok"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res, err := admin.Admin.ListAuditEvents(ctx, connect.NewRequest(tt.req))
				if codeOf(err) != connect.CodeInvalidArgument || res != nil {
					t.Errorf("got %v, %v; want invalid_argument", res, err)
				}
			})
		}
	})

	t.Run("listing_audited", func(t *testing.T) {
		got := listAudit(t, admin, &adminv1.ListAuditEventsRequest{Procedure: procListAudit, Code: "ok", PageSize: 1})
		if len(got.GetEvents()) != 1 || got.GetEvents()[0].GetActorId() == "" || got.GetEvents()[0].GetType() != auditv1.EventType_EVENT_TYPE_RPC {
			t.Errorf("ListAuditEvents rows = %v, want the admin's calls", got.GetEvents())
		}
	})
}

// TestRateLimitHitsAggregated: a flood of refused calls writes one row per
// source at once (the rest wait for the end of the minute, as one row).
func TestRateLimitHitsAggregated(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken()) // before Login's budget is spent
	anon := srv.Client(goclient.Connect, "")
	limited := 0
	for i := range 30 {
		_, err := anon.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: "nobody" + string(rune('a'+i%26)) + "@example.com", Password: "guessing wildly 123"}))
		if codeOf(err) == connect.CodeResourceExhausted {
			limited++
		}
	}
	if limited < 5 {
		t.Fatalf("%d calls rate-limited, want at least 5", limited)
	}
	got := listAudit(t, admin, &adminv1.ListAuditEventsRequest{Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_RATE_LIMIT_HIT}})
	if len(got.GetEvents()) != 1 || got.GetEvents()[0].GetCount() != 1 || got.GetEvents()[0].GetClientIp() == "" {
		t.Errorf("rate_limit_hit rows after %d refusals = %v, want one, for the first", limited, got.GetEvents())
	}
}

// TestAuditVerifyCommand: `guard audit verify` passes on the server's
// trail, then names the row an intruder edited.
func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	addUser(t, admin, "carol@example.com", "member")
	listAudit(t, admin, &adminv1.ListAuditEventsRequest{})

	verify := func() (string, error) {
		var out, errOut bytes.Buffer
		err := server.Run(ctx, []string{"audit", "verify", "-db=" + srv.DB}, func(string) string { return "" }, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	out, err := verify()
	if err != nil || !strings.HasPrefix(out, "audit trail OK: ") {
		t.Fatalf("audit verify = %q, %v; want OK", out, err)
	}
	var id string
	db := rawDB(t, srv)
	if err := db.QueryRow(`SELECT id FROM audit_events WHERE procedure = ? ORDER BY seq LIMIT 1`, adminv1connect.AdminServiceCreateUserProcedure).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET code = 'permission_denied' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	out, err = verify()
	if err == nil || !strings.Contains(out, "BROKEN at row "+id) {
		t.Errorf("audit verify after an edit = %q, %v; want the row %s named and an error", out, err, id)
	}
	if _, err := verifyMissing(ctx); err == nil {
		t.Error("audit verify of a missing database: no error")
	}
	// Without -db it reads GUARD_DB, as the server does: the broken trail
	// is found there too.
	var envOut bytes.Buffer
	err = server.Run(ctx, []string{"audit", "verify"}, func(k string) string {
		if k == "GUARD_DB" {
			return srv.DB
		}
		return ""
	}, &envOut, &envOut)
	if err == nil || !strings.Contains(envOut.String(), "BROKEN at row "+id) {
		t.Errorf("audit verify with GUARD_DB = %q, %v; want the row %s named", envOut.String(), err, id)
	}
}

func verifyMissing(ctx context.Context) (string, error) {
	var out bytes.Buffer
	err := server.Run(ctx, []string{"audit", "verify", "-db=/nonexistent/guard.db"}, func(string) string { return "" }, &out, &out)
	return out.String(), err
}

// TestIPRateLimitHitsAudited: refusals of the per-IP budget, in the HTTP
// layer, reach the trail too, aggregated, and a client's odd path is
// stored as printable text.
func TestIPRateLimitHitsAudited(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-ip-rate-limit=3")
	for range 10 {
		send(t, srv, "POST", "/no/such%00path%ff", "{}", nil)
	}
	got, err := srv.Store().ListAuditEvents(context.Background(), store.AuditFilter{Types: []string{"rate_limit_hit"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ClientIP == "" || got[0].Procedure != "/no/such?path?" {
		t.Errorf("rate_limit_hit rows = %+v, want one, with the client IP and the path made printable", got)
	}
}
