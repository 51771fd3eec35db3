package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	auditv1 "github.com/connectguard/guard/gen/guard/audit/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
)

// suspicious returns the suspicious_activity events in the trail, read
// as admin; detections only, or blocks only when blocks is set.
func suspicious(t *testing.T, srv *servertest.Server, blocks bool) []*auditv1.Event {
	t.Helper()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	res := listAudit(t, admin, &adminv1.ListAuditEventsRequest{
		Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_SUSPICIOUS_ACTIVITY},
	})
	var out []*auditv1.Event
	for _, e := range res.GetEvents() {
		if strings.HasPrefix(e.GetDetail(), "blocked ") == blocks && !strings.HasPrefix(e.GetDetail(), "unblocked ") {
			out = append(out, e)
		}
	}
	return out
}

// wantSuspicious checks that the trail holds exactly one detection of
// kind, and that the metric counted it.
func wantSuspicious(t *testing.T, srv *servertest.Server, addr, kind string) *auditv1.Event {
	t.Helper()
	events := suspicious(t, srv, false)
	if len(events) != 1 || !strings.HasPrefix(events[0].GetDetail(), kind+":") {
		t.Fatalf("suspicious_activity events = %v, want one of kind %s", events, kind)
	}
	if got, _ := value(scrape(t, addr), "guard_suspicious_activity_total", "kind", kind); got != 1 {
		t.Errorf("guard_suspicious_activity_total{kind=%q} = %v, want 1", kind, got)
	}
	return events[0]
}

// noteID is a well-formed note id that names no note.
func noteID(i int) string {
	s := strings.Map(func(r rune) rune { return 'a' + (r - '0') }, fmt.Sprint(i))
	return strings.Repeat("z", 26-len(s)) + s
}

func TestDetectRefreshReuse(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-block-suspicious=15m")
	addr := metricsAddr(t, srv)
	ctx := context.Background()
	alice := srv.CreateUser("alice@example.com", "member")
	c := srv.Client(goclient.Connect, "")
	login, err := c.Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: alice.Email, Password: alice.Password}))
	if err != nil {
		t.Fatal(err)
	}
	old := login.Msg.GetRefreshToken()
	if _, err := c.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: old})); err != nil {
		t.Fatal(err)
	}
	if len(suspicious(t, srv, false)) != 0 {
		t.Fatal("a detection before any reuse")
	}
	_, err = c.Auth.Refresh(ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: old}))
	wantCode(t, "reused refresh token", err, connect.CodeUnauthenticated)
	e := wantSuspicious(t, srv, addr, "refresh_reuse")
	if e.GetSubjectId() != alice.ID || strings.Contains(e.GetDetail(), old) {
		t.Errorf("event = %v, want subject %s and no token", e, alice.ID)
	}
	// No block: alice's other sessions go on.
	if blocks := suspicious(t, srv, true); len(blocks) != 0 {
		t.Errorf("block events = %v, want none", blocks)
	}
	if _, err := srv.Client(goclient.Connect, alice.Token).Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{})); err != nil {
		t.Errorf("alice's other session: %v", err)
	}
}

func TestDetectCredentialStuffing(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-trusted-proxies=127.0.0.1", "-block-suspicious=15m")
	addr := metricsAddr(t, srv)
	alice := srv.CreateUser("alice@example.com", "member")
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	const attacker, owner = "2001:db8:66::1", "198.51.100.7"
	fail := func(i int) {
		t.Helper()
		res, body := post(t, srv, procLogin, loginJSON(fmt.Sprintf("victim%d@example.com", i), "some leaked password", false), from(attacker))
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d: HTTP %d %s, want 401", i, res.StatusCode, body)
		}
	}
	for i := range 9 {
		fail(i)
	}
	if got := suspicious(t, srv, false); len(got) != 0 {
		t.Fatalf("below the threshold: events %v, want none", got)
	}
	fail(9)
	e := wantSuspicious(t, srv, addr, "credential_stuffing")
	if strings.Contains(e.GetDetail(), "@") {
		t.Errorf("detail %q names an account", e.GetDetail())
	}
	if blocks := suspicious(t, srv, true); len(blocks) != 1 || !strings.Contains(blocks[0].GetDetail(), "network 2001:db8:66::") {
		t.Errorf("block events = %v, want one of the attacker's /64", blocks)
	}
	// The attacker's /64 is refused, even with a right password; others are not.
	res, body := post(t, srv, procLogin, loginJSON(alice.Email, alice.Password, false), from("2001:db8:66::2"))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("attacker's network: HTTP %d %s (Retry-After %q), want 429 with Retry-After", res.StatusCode, body, res.Header.Get("Retry-After"))
	}
	if res, body := post(t, srv, procLogin, loginJSON(alice.Email, alice.Password, false), from(owner)); res.StatusCode != http.StatusOK {
		t.Errorf("another network: HTTP %d %s, want 200", res.StatusCode, body)
	}
	if got := len(suspicious(t, srv, false)); got != 1 {
		t.Errorf("detections after the block = %d, want 1", got)
	}
	// An admin lifts the network's block, which the trail records.
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	for _, want := range []bool{true, false} {
		res, err := admin.Admin.UnblockNetwork(context.Background(), connect.NewRequest(&adminv1.UnblockNetworkRequest{Ip: attacker}))
		if err != nil || res.Msg.GetWasBlocked() != want {
			t.Fatalf("UnblockNetwork: got %v, %v; want was_blocked %v", res, err, want)
		}
	}
	if res, body := post(t, srv, procLogin, loginJSON(alice.Email, alice.Password, false), from("2001:db8:66::2")); res.StatusCode != http.StatusOK {
		t.Errorf("after UnblockNetwork: HTTP %d %s, want 200", res.StatusCode, body)
	}
	res2 := listAudit(t, admin, &adminv1.ListAuditEventsRequest{
		Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_SUSPICIOUS_ACTIVITY},
	})
	var lifted int
	for _, e := range res2.GetEvents() {
		if e.GetDetail() == "unblocked network 2001:db8:66::" && e.GetActorId() != "" {
			lifted++
		}
	}
	if lifted != 1 {
		t.Errorf("unblock events = %d, want 1: %v", lifted, res2.GetEvents())
	}
}

func TestDetectInvalidTokenBurst(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-trusted-proxies=127.0.0.1", "-block-suspicious=15m")
	addr := metricsAddr(t, srv)
	alice := srv.CreateUser("alice@example.com", "member")
	const attacker, owner = "203.0.113.66", "198.51.100.7"
	const forged = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"
	call := func(token, ip string) (*http.Response, string) {
		t.Helper()
		return post(t, srv, "/guard.notes.v1.NoteService/ListNotes", "{}",
			http.Header{"X-Forwarded-For": {ip}, "Authorization": {"Bearer " + token}})
	}
	for i := range 19 {
		if res, body := call(forged, attacker); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged token %d: HTTP %d %s, want 401", i, res.StatusCode, body)
		}
	}
	if got := suspicious(t, srv, false); len(got) != 0 {
		t.Fatalf("below the threshold: events %v, want none", got)
	}
	for range 5 {
		call(forged, attacker)
	}
	e := wantSuspicious(t, srv, addr, "invalid_token_burst")
	if e.GetClientIp() != attacker {
		t.Errorf("event client ip %q, want %q", e.GetClientIp(), attacker)
	}
	if res, body := call(alice.Token, attacker); res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("valid token from the attacker's network: HTTP %d %s, want 429", res.StatusCode, body)
	}
	if res, body := call(alice.Token, owner); res.StatusCode != http.StatusOK {
		t.Errorf("valid token from another network: HTTP %d %s, want 200", res.StatusCode, body)
	}
}

func TestDetectEnumeration(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-metrics-addr=127.0.0.1:0", "-block-suspicious=15m", "-user-rate-limit=1000")
	addr := metricsAddr(t, srv)
	ctx := context.Background()
	admin := srv.Client(goclient.Connect, srv.AdminToken())
	mallory := srv.CreateUser("mallory@example.com", "member")
	bob := srv.CreateUser("bob@example.com", "member")
	mc := srv.Client(goclient.Connect, mallory.Token)
	get := func(c *goclient.Client, id string) error {
		_, err := c.Notes.GetNote(ctx, connect.NewRequest(&notesv1.GetNoteRequest{Id: id}))
		return err
	}
	for i := range 19 {
		wantCode(t, "probe", get(mc, noteID(i)), connect.CodeNotFound)
		wantCode(t, "probe again", get(mc, noteID(i)), connect.CodeNotFound) // not a new id
	}
	if got := suspicious(t, srv, false); len(got) != 0 {
		t.Fatalf("below the threshold: events %v, want none", got)
	}
	wantCode(t, "20th probe", get(mc, noteID(19)), connect.CodeNotFound)
	e := wantSuspicious(t, srv, addr, "enumeration")
	if e.GetSubjectId() != mallory.ID {
		t.Errorf("event subject %q, want %q", e.GetSubjectId(), mallory.ID)
	}
	// Mallory is blocked, everywhere; bob is not.
	wantCode(t, "blocked user", get(mc, noteID(100)), connect.CodeResourceExhausted)
	_, err := mc.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
	wantCode(t, "blocked user's ListNotes", err, connect.CodeResourceExhausted)
	_, err = srv.Client(goclient.Connect, bob.Token).Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
	if err != nil {
		t.Errorf("another user: %v", err)
	}
	// An admin lifts the block, which the trail records.
	if _, err := admin.Admin.UnlockUser(ctx, connect.NewRequest(&adminv1.UnlockUserRequest{UserId: mallory.ID})); err != nil {
		t.Fatal(err)
	}
	_, err = mc.Notes.ListNotes(ctx, connect.NewRequest(&notesv1.ListNotesRequest{}))
	if err != nil {
		t.Errorf("unblocked user: %v", err)
	}
	res := listAudit(t, admin, &adminv1.ListAuditEventsRequest{
		Types: []auditv1.EventType{auditv1.EventType_EVENT_TYPE_SUSPICIOUS_ACTIVITY},
	})
	var lifted int
	for _, e := range res.GetEvents() {
		if e.GetDetail() == "unblocked user "+mallory.ID && e.GetSubjectId() == mallory.ID {
			lifted++
		}
	}
	if lifted != 1 {
		t.Errorf("unblock events = %d, want 1: %v", lifted, res.GetEvents())
	}
}
