package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/connectguard/guard/clients/goclient"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	"github.com/connectguard/guard/gen/guard/auth/v1/authv1connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/internal/server"
	"github.com/connectguard/guard/internal/servertest"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The policy's own refusals, as interceptors/authn, interceptors/authz and
// interceptors/internal/callcheck word them. A handler may refuse with the
// same codes for reasons of its own (an API key may not change the
// password); only these messages say that the policy refused.
const (
	msgNoCredential = "authentication required"
	msgRolesPrefix  = "requires one of the roles: "
	msgScopesPrefix = "credential lacks the scopes: "
	msgNoPolicy     = "no access policy for this procedure"
)

// policyDoc is the generated documentation of the policy table.
const policyDoc = "../../docs/policy.md"

// authnRefusals are every message with which authn refuses a credential.
var authnRefusals = []string{msgNoCredential, "invalid credentials", "credentials expired", "more than one credential"}

// matrixCaller is a kind of caller, described as the policy sees it.
type matrixCaller struct {
	name string
	// user spends per-user budgets; "" is anonymous (no credential).
	user  string
	roles []string
	// scoped credentials (API keys) must carry a rule's scopes.
	scoped bool
	scopes []string
}

// verdict is what a rule says about a caller.
type verdict int

const (
	allowed      verdict = iota // on to the handler
	noCredential                // unauthenticated, from authn
	missingRole                 // permission_denied, from authz
	missingScope                // permission_denied, from authz
)

func (v verdict) String() string {
	return [...]string{"allowed", "no_credential", "missing_role", "missing_scope"}[v]
}

// verdict applies r to c as DESIGN.md states the semantics, independently
// of interceptors/authz: public lets anyone through; otherwise a credential
// is needed, roles are any-of, and scopes are all-of for scoped
// credentials only.
func (c matrixCaller) verdict(r *policy.Rule) verdict {
	switch {
	case r.Public:
		return allowed
	case c.user == "":
		return noCredential
	case !slices.ContainsFunc(c.roles, func(role string) bool { return slices.Contains(r.Roles, role) }):
		return missingRole
	case c.scoped && slices.ContainsFunc(r.Scopes, func(s string) bool { return !slices.Contains(c.scopes, s) }):
		return missingScope
	}
	return allowed
}

// matrixProtocol is a way the matrix calls a procedure: a Connect client
// speaking rpc, or the REST route of the procedure (google.api.http).
type matrixProtocol struct {
	name string
	rpc  goclient.Protocol // the protocol; for REST, the one of the WhoAmI check
	rest bool
}

// TestPolicyMatrix calls every procedure of the policy table through the
// real server, as every kind of caller, over Connect and gRPC, and checks
// that the running chain answers what the table says. Each call sends an
// empty request of the method's input type: what the handler makes of it
// does not matter, only whether the policy let it through.
//
// The expectations are computed from the table (server.PolicyTable, built
// from the list of APIs the server mounts), never copied by hand, so the
// matrix holds the server to whatever the protos declare. What pins the
// declarations themselves is the reviewed docs/policy.md: the table must
// be the one it documents, so changing a policy option fails this test
// until `make generate` rewrites the file and the diff shows the change.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	runPolicyMatrix(t, []matrixProtocol{{name: "connect", rpc: goclient.Connect}, {name: "grpc", rpc: goclient.GRPC}})
}

// TestPolicyMatrixREST is TestPolicyMatrix over the REST routes, on a
// server of its own (Login's per-IP budget would not cover both): every
// procedure of the table must have a route, and each route must be
// decided as its procedure is.
func TestPolicyMatrixREST(t *testing.T) {
	t.Parallel()
	runPolicyMatrix(t, []matrixProtocol{{name: "rest", rpc: goclient.Connect, rest: true}})
}

func runPolicyMatrix(t *testing.T, protocols []matrixProtocol) {
	table, err := server.PolicyTable()
	if err != nil {
		t.Fatalf("PolicyTable() error = %v, want nil", err)
	}
	requireDocumented(t, table)
	rules := table.Rules()
	if len(rules) == 0 {
		t.Fatal("PolicyTable() has no rules")
	}
	// Logout ends the session it is called with, so it comes last for each
	// (caller, protocol) pair, each of which has a session of its own.
	slices.SortStableFunc(rules, func(a, b *policy.Rule) int {
		return boolInt(a.Procedure == authv1connect.AuthServiceLogoutProcedure) - boolInt(b.Procedure == authv1connect.AuthServiceLogoutProcedure)
	})

	callers := []matrixCaller{
		{name: "anonymous"},
		{name: "viewer", user: "viewer", roles: []string{"viewer"}},
		{name: "member", user: "member", roles: []string{"member"}},
		{name: "admin", user: "admin", roles: []string{"admin"}},
		{name: "apikey", user: "member", roles: []string{"member"}, scoped: true, scopes: []string{"notes:read"}},
	}
	var held []string
	for _, c := range callers {
		held = append(held, c.roles...)
	}
	for _, role := range server.Roles {
		if !slices.Contains(held, role) {
			t.Fatalf("no caller holds the role %q: add one to the matrix", role)
		}
	}
	requireEveryVerdict(t, rules, callers)

	// The per-IP limit of the HTTP layer is not what this test is about.
	s := servertest.Start(t, "-ip-rate-limit=1000000", "-reflection")
	requireMountedTable(t, s, rules)
	creds, logins := matrixCredentials(t, s, callers, protocols)
	requireBudgets(t, rules, callers, protocols, logins)

	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range protocols {
				t.Run(p.name, func(t *testing.T) {
					t.Parallel()
					hc := s.HTTPClient()
					// One procedure after another: Logout must be last.
					for _, r := range rules {
						t.Run(strings.TrimPrefix(r.Procedure, "/"), func(t *testing.T) {
							md := methodOf(t, r.Procedure)
							call := callEmpty
							if p.rest {
								call = callREST
							}
							err := call(context.Background(), hc, s.URL, p.rpc, md, creds[c.name][p.name])
							checkVerdict(t, r, c.verdict(r), outcomeOf(err))
						})
					}
				})
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkVerdict asserts that the server answered as the rule says: each
// refusal with its exact code and the policy's message (so that the rule
// enforced is the table's: the message names its roles or scopes), and an
// allowed call with anything but a refusal of the policy.
func checkVerdict(t *testing.T, r *policy.Rule, want verdict, got outcome) {
	t.Helper()
	expect := func(code connect.Code, msg string) {
		t.Helper()
		if got.code != code || got.msg != msg {
			t.Errorf("got %s %q, want %s %q (%s)", codeName(got.code), got.msg, code, msg, want)
		}
	}
	switch want {
	case noCredential:
		expect(connect.CodeUnauthenticated, msgNoCredential)
	case missingRole:
		expect(connect.CodePermissionDenied, msgRolesPrefix+strings.Join(r.Roles, ", "))
	case missingScope:
		expect(connect.CodePermissionDenied, msgScopesPrefix+strings.Join(r.Scopes, ", "))
	case allowed:
		switch {
		case got.code == connect.CodeUnauthenticated && slices.Contains(authnRefusals, got.msg),
			got.code == connect.CodePermissionDenied && (strings.HasPrefix(got.msg, msgRolesPrefix) ||
				strings.HasPrefix(got.msg, msgScopesPrefix) || got.msg == msgNoPolicy):
			t.Errorf("got %s %q, want the policy to let the call through to the handler", codeName(got.code), got.msg)
		case got.code == connect.CodeUnimplemented && got.msg == stubMessage(r.Procedure):
			// The generated stub of a method not built yet (README, Status):
			// the chain let the call through to it.
			t.Logf("allowed; the handler is a stub: %s %q", codeName(got.code), got.msg)
		case slices.Contains([]connect.Code{
			connect.CodeUnimplemented,     // not mounted
			connect.CodeResourceExhausted, // rate limited before authz could decide
			connect.CodeInternal, connect.CodeUnknown, connect.CodeUnavailable,
			connect.CodeDeadlineExceeded, connect.CodeCanceled,
		}, got.code):
			t.Errorf("got %s %q, want the handler's answer to an empty request", codeName(got.code), got.msg)
		default:
			t.Logf("allowed; the handler answered %s %q", codeName(got.code), got.msg)
		}
	}
}

// stubMessage is the refusal of the Unimplemented...Handler that
// protoc-gen-connect-go generates for procedure.
func stubMessage(procedure string) string {
	return strings.ReplaceAll(strings.TrimPrefix(procedure, "/"), "/", ".") + " is not implemented"
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// requireDocumented checks that table is the one docs/policy.md documents.
func requireDocumented(t *testing.T, table *policy.Table) {
	t.Helper()
	doc, err := os.ReadFile(policyDoc)
	if err != nil {
		t.Fatalf("read the policy documentation: %v", err)
	}
	var b bytes.Buffer
	if err := policy.WriteMarkdown(&b, table); err != nil {
		t.Fatalf("WriteMarkdown() error = %v, want nil", err)
	}
	if !bytes.HasSuffix(doc, b.Bytes()) {
		t.Errorf("%s does not document the policy table: a policy option changed? "+
			"Run make generate (or go run ./cmd/server policy > docs/policy.md) and review the diff", policyDoc)
	}
}

// requireEveryVerdict keeps the matrix from passing vacuously: each kind of
// outcome must be expected somewhere.
func requireEveryVerdict(t *testing.T, rules []*policy.Rule, callers []matrixCaller) {
	t.Helper()
	seen := make(map[verdict]int)
	for _, r := range rules {
		for _, c := range callers {
			seen[c.verdict(r)]++
		}
	}
	for _, v := range []verdict{allowed, noCredential, missingRole, missingScope} {
		if seen[v] == 0 {
			t.Fatalf("no case of the matrix expects %s: it would not test that refusal", v)
		}
	}
}

// requireMountedTable checks that the table under test is the one the
// server mounts: the services the server serves (as gRPC reflection lists
// them) are exactly those of the table, plus health and reflection. Every
// call of the matrix then also shows that each procedure is routed through
// the chain with the table's rule (the refusals name its roles and scopes).
func requireMountedTable(t *testing.T, s *servertest.Server, rules []*policy.Rule) {
	t.Helper()
	want := []string{grpchealth.HealthV1ServiceName, grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName}
	for _, r := range rules {
		svc := strings.Split(r.Procedure, "/")[1]
		if !slices.Contains(want, svc) {
			want = append(want, svc)
		}
	}
	stream := grpcreflect.NewClient(s.HTTPClient(), s.URL).NewStream(context.Background())
	names, err := stream.ListServices()
	if err != nil {
		t.Fatalf("reflection ListServices: %v", err)
	}
	if _, err := stream.Close(); err != nil {
		t.Errorf("close reflection stream: %v", err)
	}
	got := make([]string, len(names))
	for i, n := range names {
		got[i] = string(n)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("server serves %v, want the table's services and health and reflection: %v", got, want)
	}
}

// matrixCredentials makes a credential for every caller and protocol: a
// session of its own for each (user, protocol) pair, since Logout ends the
// session it is called with, and one API key created by the member. It
// checks, through WhoAmI, that each credential is what its caller claims
// (roles and scopes), and returns how many logins it made.
func matrixCredentials(t *testing.T, s *servertest.Server, callers []matrixCaller, protocols []matrixProtocol) (map[string]map[string]string, int) {
	t.Helper()
	ctx := context.Background()
	logins := 0
	users := make(map[string]servertest.User)
	for _, role := range []string{"viewer", "member"} {
		users[role] = s.CreateUser("matrix-"+role+"@example.com", role)
		logins += 2 // the admin, to create the user; then the user
	}
	users["admin"] = servertest.User{Email: servertest.AdminEmail, Password: servertest.AdminPassword}

	key, err := s.Client(goclient.Connect, users["member"].Token).Auth.CreateAPIKey(ctx, connect.NewRequest(&authv1.CreateAPIKeyRequest{
		Name: "matrix", Scopes: []string{"notes:read"}, Ttl: durationpb.New(time.Hour),
	}))
	if err != nil {
		t.Fatalf("create API key: %v", err)
	}

	creds := make(map[string]map[string]string)
	for _, c := range callers {
		creds[c.name] = make(map[string]string)
		for i, p := range protocols {
			switch u := users[c.user]; {
			case c.user == "":
				// anonymous: no credential
			case c.scoped:
				creds[c.name][p.name] = key.Msg.GetKey()
			case i == 0 && u.Token != "":
				creds[c.name][p.name] = u.Token
			default:
				creds[c.name][p.name] = s.Login(u.Email, u.Password)
				logins++
			}
		}
	}

	for _, c := range callers {
		for _, p := range protocols {
			if c.user == "" {
				continue
			}
			who, err := s.Client(p.rpc, creds[c.name][p.name]).Auth.WhoAmI(ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
			if err != nil {
				t.Fatalf("%s/%s: WhoAmI: %v", c.name, p.name, err)
			}
			if got := who.Msg.GetUser().GetRoles(); !slices.Equal(got, c.roles) {
				t.Fatalf("%s/%s: WhoAmI roles = %v, want %v", c.name, p.name, got, c.roles)
			}
			if got := who.Msg.GetScopes(); !slices.Equal(got, c.scopes) {
				t.Fatalf("%s/%s: WhoAmI scopes = %v, want %v", c.name, p.name, got, c.scopes)
			}
			if got, want := who.Msg.GetAuthMethod() == authv1.AuthMethod_AUTH_METHOD_API_KEY, c.scoped; got != want {
				t.Fatalf("%s/%s: WhoAmI auth method = %v, want scoped = %v", c.name, p.name, who.Msg.GetAuthMethod(), want)
			}
		}
	}
	return creds, logins
}

// requireBudgets fails before any matrix call if the calls would exceed a
// rate limit of the table. ratelimit runs before authz, so a call over a
// limit would say nothing about the policy. Every call comes from one IP;
// per-user budgets are shared by all of a user's credentials. logins were
// made before the matrix, from the same IP.
func requireBudgets(t *testing.T, rules []*policy.Rule, callers []matrixCaller, protocols []matrixProtocol, logins int) {
	t.Helper()
	perUser := make(map[string]int)
	for _, c := range callers {
		if c.user != "" {
			perUser[c.user] += len(protocols)
		}
	}
	for _, r := range rules {
		rl := r.RateLimit
		if rl == nil {
			continue
		}
		if rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_IP || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH {
			n := len(callers) * len(protocols)
			if r.Procedure == authv1connect.AuthServiceLoginProcedure {
				n += logins
			}
			if n > rl.Requests {
				t.Fatalf("%s: the matrix makes %d calls from one IP, over its limit of %d per %v", r.Procedure, n, rl.Requests, rl.Window)
			}
		}
		if rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_USER || rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH {
			for user, n := range perUser {
				if n > rl.Requests {
					t.Fatalf("%s: the matrix makes %d calls as %s, over its limit of %d per %v", r.Procedure, n, user, rl.Requests, rl.Window)
				}
			}
		}
	}
}

// methodOf finds the schema of a procedure in the generated code.
func methodOf(t *testing.T, procedure string) protoreflect.MethodDescriptor {
	t.Helper()
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(procedure, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		t.Fatalf("%s is a %T, want a method", name, d)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		t.Fatalf("%s streams: the matrix calls unary methods only; teach it streams", name)
	}
	return md
}

// callEmpty calls md with an empty request message over protocol p, with
// credential as a bearer token ("" for none).
func callEmpty(ctx context.Context, hc connect.HTTPClient, baseURL string, p goclient.Protocol, md protoreflect.MethodDescriptor, credential string) error {
	procedure := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
	opts := append(p.ClientOptions(),
		connect.WithSchema(md),
		connect.WithResponseInitializer(func(_ connect.Spec, msg any) error {
			res, ok := msg.(*dynamicpb.Message)
			if !ok {
				return fmt.Errorf("response is a %T, want *dynamicpb.Message", msg)
			}
			*res = *dynamicpb.NewMessage(md.Output())
			return nil
		}),
	)
	client := connect.NewClient[dynamicpb.Message, dynamicpb.Message](hc, baseURL+procedure, opts...)
	req := connect.NewRequest(dynamicpb.NewMessage(md.Input()))
	if credential != "" {
		req.Header().Set("Authorization", "Bearer "+credential)
	}
	_, err := client.CallUnary(ctx, req)
	return err
}

// restIDFiller stands in for every path variable of a REST route: a
// well-formed id that names nothing.
const restIDFiller = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

// callREST calls md through its REST route (its google.api.http rule),
// with every path variable set to restIDFiller and an empty JSON body
// where the rule takes one, with credential as a bearer token ("" for
// none). A refusal comes back as the *connect.Error of its code and
// message, as callEmpty returns them.
func callREST(ctx context.Context, hc connect.HTTPClient, baseURL string, _ goclient.Protocol, md protoreflect.MethodDescriptor, credential string) error {
	rule, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if !ok || rule == nil {
		return fmt.Errorf("%s has no google.api.http rule: every RPC needs a REST route", md.FullName())
	}
	var method, path string
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, path = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		method, path = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		method, path = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		method, path = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		method, path = http.MethodDelete, p.Delete
	default:
		return fmt.Errorf("%s: rule %v: the matrix knows get, post, put, patch and delete", md.FullName(), rule)
	}
	path = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(path, restIDFiller)
	var body io.Reader
	if rule.GetBody() != "" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var status struct {
		Code    int    `json:"code"` // a number: google.rpc.Status
		Message string `json:"message"`
	}
	if err := json.NewDecoder(res.Body).Decode(&status); err != nil {
		return fmt.Errorf("%s %s: HTTP %d, body not JSON: %w", method, path, res.StatusCode, err)
	}
	if res.StatusCode == http.StatusOK {
		return nil
	}
	return connect.NewError(connect.Code(status.Code), errors.New(status.Message))
}
