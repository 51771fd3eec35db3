package openapi_test

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/internal/openapi"
	"github.com/connectguard/guard/internal/server"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

var info = openapi.Info{Title: "Guard demo API", Version: "v1", Server: "http://127.0.0.1:8080"}

// generate writes the document of the served APIs.
func generate(t *testing.T) []byte {
	t.Helper()
	table, err := server.PolicyTable()
	if err != nil {
		t.Fatalf("PolicyTable() error = %v", err)
	}
	var b bytes.Buffer
	if err := openapi.Write(&b, server.Services(), table, info); err != nil {
		t.Fatalf("Write() error = %v, want nil", err)
	}
	return b.Bytes()
}

// load parses and validates a document with kin-openapi.
func load(t *testing.T, data []byte) (*openapi3.T, error) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
}

func TestWrite_validOpenAPI31(t *testing.T) {
	t.Parallel()
	doc, err := load(t, generate(t))
	if err != nil {
		t.Fatalf("kin-openapi: the document is not valid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Info.Title != "Guard demo API" || len(doc.Servers) != 1 || doc.Servers[0].URL != "http://127.0.0.1:8080" {
		t.Errorf("info = %+v, servers = %+v, want the title and one server", doc.Info, doc.Servers)
	}
}

// TestWrite_validatorRejects: the validator the test above relies on does
// reject a broken document (a dangling $ref, a bad type).
func TestWrite_validatorRejects(t *testing.T) {
	t.Parallel()
	data := generate(t)
	broken := map[string][]byte{
		"dangling_ref": bytes.Replace(data, []byte("    guard.notes.v1.Note:\n"), []byte("    guard.notes.v1.Gone:\n"), 1),
		"bad_type":     bytes.Replace(data, []byte("type: integer"), []byte("type: integr"), 1),
	}
	for name, b := range broken {
		if bytes.Equal(b, data) {
			t.Fatalf("%s: the mutation changed nothing", name)
		}
		if _, err := load(t, b); err == nil {
			t.Errorf("%s: kin-openapi accepted a broken document", name)
		}
	}
}

func TestWrite_deterministic(t *testing.T) {
	t.Parallel()
	first := generate(t)
	for range 3 {
		if got := generate(t); !bytes.Equal(got, first) {
			t.Fatal("Write() output differs between runs")
		}
	}
}

// shape unnames path variables: /v1/notes/{note.id} -> /v1/notes/{}.
var shape = regexp.MustCompile(`\{[^}]*\}`)

// TestWrite_routes: every RPC with a google.api.http rule is an operation
// with that method and path, and its policy.
func TestWrite_routes(t *testing.T) {
	t.Parallel()
	doc, err := load(t, generate(t))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	table, err := server.PolicyTable()
	if err != nil {
		t.Fatal(err)
	}
	ops := operations(doc)
	n := 0
	for _, sd := range server.Services() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				continue
			}
			n++
			id := string(sd.Name()) + "_" + string(md.Name())
			t.Run(id, func(t *testing.T) {
				wantMethod, wantPath := httpRule(rule)
				got, ok := ops[id]
				if !ok {
					t.Fatalf("no operation %s", id)
				}
				if got.method != wantMethod || shape.ReplaceAllString(got.path, "{}") != shape.ReplaceAllString(wantPath, "{}") {
					t.Errorf("%s is %s %s, want %s %s", id, got.method, got.path, wantMethod, wantPath)
				}
				pol, _ := table.Lookup("/" + string(sd.FullName()) + "/" + string(md.Name()))
				checkSecurity(t, got.op, pol)
			})
		}
	}
	if len(ops) != n {
		t.Errorf("the document has %d operations, want %d (one per RPC with an http rule)", len(ops), n)
	}
	for _, want := range []struct{ id, method, path string }{
		{"NoteService_GetNote", "GET", "/v1/notes/{id}"},
		{"NoteService_UpdateNote", "PATCH", "/v1/notes/{id}"},
		{"AuthService_Login", "POST", "/v1/auth/login"},
		{"AdminService_SetUserRoles", "PUT", "/v1/admin/users/{user_id}/roles"},
	} {
		if got := ops[want.id]; got.method != want.method || got.path != want.path {
			t.Errorf("%s is %s %s, want %s %s", want.id, got.method, got.path, want.method, want.path)
		}
	}
}

type located struct {
	method, path string
	op           *openapi3.Operation
}

func operations(doc *openapi3.T) map[string]located {
	out := map[string]located{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[op.OperationID] = located{method, path, op}
		}
	}
	return out
}

func httpRule(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	}
	return "", ""
}

// checkSecurity: public operations require nothing, explicitly; the others
// take any of the three credentials, the method's scopes binding API keys,
// and list the roles.
func checkSecurity(t *testing.T, op *openapi3.Operation, pol *policy.Rule) {
	t.Helper()
	if op.Security == nil {
		t.Fatal("security is absent, want it on every operation")
	}
	if pol.Public {
		if len(*op.Security) != 0 {
			t.Errorf("public: security = %v, want []", *op.Security)
		}
		if _, ok := op.Extensions["x-guard-roles"]; ok {
			t.Error("public: has x-guard-roles")
		}
		return
	}
	var schemes []string
	for _, req := range *op.Security {
		for name, scopes := range req {
			schemes = append(schemes, name)
			want := pol.Scopes
			if name != "apiKey" {
				want = nil
			}
			if !slices.Equal(scopes, want) && (len(scopes) > 0 || len(want) > 0) {
				t.Errorf("%s scopes = %v, want %v", name, scopes, want)
			}
		}
	}
	if want := []string{"bearer", "apiKey", "cookie"}; !slices.Equal(schemes, want) {
		t.Errorf("security alternatives = %v, want %v", schemes, want)
	}
	if got := names(op.Extensions["x-guard-roles"]); !slices.Equal(got, pol.Roles) {
		t.Errorf("x-guard-roles = %v, want %v", got, pol.Roles)
	}
	if _, ok := op.Responses.Map()["401"]; !ok {
		t.Error("no 401 response")
	}
}

func names(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestWrite_policy(t *testing.T) {
	t.Parallel()
	doc, err := load(t, generate(t))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ops := operations(doc)
	for _, id := range []string{"AuthService_Login", "AuthService_Refresh"} {
		if s := ops[id].op.Security; s == nil || len(*s) != 0 {
			t.Errorf("%s security = %v, want []", id, s)
		}
	}
	create := ops["NoteService_CreateNote"].op
	if got := names(create.Extensions["x-guard-roles"]); !slices.Equal(got, []string{"admin", "member"}) {
		t.Errorf("CreateNote x-guard-roles = %v, want [admin member]", got)
	}
	if got := (*create.Security)[1]["apiKey"]; !slices.Equal(got, []string{"notes:write"}) {
		t.Errorf("CreateNote apiKey scopes = %v, want [notes:write]", got)
	}
	if rl, _ := create.Extensions["x-guard-rate-limit"].(map[string]any); rl["requests"] != float64(120) || rl["window"] != "60s" || rl["key"] != "user" {
		t.Errorf("CreateNote x-guard-rate-limit = %v, want 120 per 60s per user", create.Extensions["x-guard-rate-limit"])
	}
	del := ops["NoteService_DeleteNote"].op
	if own, _ := del.Extensions["x-guard-ownership"].(map[string]any); own["field"] != "id" || own["access"] != "owner" || !slices.Equal(names(own["bypassRoles"]), []string{"admin"}) {
		t.Errorf("DeleteNote x-guard-ownership = %v, want id, owner, bypass admin", own)
	}
	n := 0
	for id, o := range ops {
		if !strings.HasPrefix(id, "AdminService_") {
			continue
		}
		n++
		if got := (*o.op.Security)[1]["apiKey"]; !slices.Contains(got, "admin") {
			t.Errorf("%s apiKey scopes = %v, want admin among them", id, got)
		}
	}
	if n == 0 {
		t.Error("no AdminService operation")
	}
	for id, o := range ops {
		if _, ok := o.op.Responses.Map()["429"]; !ok {
			t.Errorf("%s has no 429 response (there is a per-IP limit on every request)", id)
		}
	}
}

func TestWrite_constraints(t *testing.T) {
	t.Parallel()
	doc, err := load(t, generate(t))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ops := operations(doc)

	id := ops["NoteService_GetNote"].op.Parameters.GetByInAndName("path", "id")
	if id == nil || !id.Required || id.Schema.Value.Pattern != "^[a-z2-7]{26}$" {
		t.Errorf("GetNote path parameter id = %+v, want required with pattern ^[a-z2-7]{26}$", id)
	}

	body := ops["NoteService_CreateNote"].op.RequestBody.Value.Content.Get("application/json").Schema.Value
	title := body.Properties["title"].Value
	if title.MinLength != 1 || title.MaxLength == nil || *title.MaxLength != 200 {
		t.Errorf("CreateNote title minLength, maxLength = %d, %v, want 1, 200", title.MinLength, title.MaxLength)
	}
	if title.Extensions["x-guard-max-bytes"] != float64(800) {
		t.Errorf("CreateNote title x-guard-max-bytes = %v, want 800", title.Extensions["x-guard-max-bytes"])
	}

	size := ops["NoteService_ListNotes"].op.Parameters.GetByInAndName("query", "pageSize")
	if size == nil || size.Schema.Value.Min == nil || *size.Schema.Value.Min != 0 || size.Schema.Value.Max == nil || *size.Schema.Value.Max != 1000 {
		t.Errorf("ListNotes pageSize = %+v, want minimum 0, maximum 1000", size)
	}

	update := ops["NoteService_UpdateNote"].op
	if mask := update.Parameters.GetByInAndName("query", "updateMask"); mask == nil || !mask.Required || !mask.Schema.Value.Type.Is("string") {
		t.Errorf("UpdateNote updateMask query parameter = %+v, want a required string", mask)
	}
	if ref := update.RequestBody.Value.Content.Get("application/json").Schema.Ref; ref != "#/components/schemas/guard.notes.v1.Note" {
		t.Errorf("UpdateNote body = %q, want the Note", ref)
	}

	share := doc.Components.Schemas["guard.notes.v1.ShareNoteRequest"]
	if share != nil {
		t.Errorf("ShareNoteRequest is a component, want its body inline without the path's id")
	}
	shareBody := ops["NoteService_ShareNote"].op.RequestBody.Value.Content.Get("application/json").Schema.Value
	if _, ok := shareBody.Properties["id"]; ok {
		t.Error("ShareNote body has id, which the path binds")
	}
	if perm := shareBody.Properties["permission"].Value; !slices.Equal(perm.Enum, []any{"SHARE_PERMISSION_READER", "SHARE_PERMISSION_WRITER"}) {
		t.Errorf("ShareNote permission enum = %v, want READER and WRITER (not_in: [0])", perm.Enum)
	}

	key := doc.Components.Schemas["guard.auth.v1.CreateAPIKeyRequest"].Value
	if !slices.Equal(key.Required, []string{"ttl"}) {
		t.Errorf("CreateAPIKeyRequest required = %v, want [ttl]", key.Required)
	}
	scopes := key.Properties["scopes"].Value
	if scopes.MinItems != 1 || scopes.MaxItems == nil || *scopes.MaxItems != 3 || !scopes.UniqueItems || len(scopes.Items.Value.Enum) != 3 {
		t.Errorf("CreateAPIKeyRequest scopes = %+v, want 1-3 unique of 3 names", scopes)
	}
	if email := doc.Components.Schemas["guard.auth.v1.LoginRequest"].Value.Properties["email"].Value; email.Format != "email" {
		t.Errorf("LoginRequest email format = %q, want email", email.Format)
	}
	note := doc.Components.Schemas["guard.notes.v1.Note"].Value
	if f := note.Properties["createTime"].Value; f.Format != "date-time" || !f.Type.Is("string") {
		t.Errorf("Note createTime = %v %q, want a date-time string", f.Type, f.Format)
	}
	for _, name := range []string{"Status", "Any", "buf.validate.Violations", "google.rpc.RetryInfo"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s (the error body and its details)", name)
		}
	}
	if seq := doc.Components.Schemas["guard.audit.v1.Event"].Value.Properties["seq"].Value; !seq.Type.Is("string") {
		t.Errorf("Event seq (int64) type = %v, want string", seq.Type)
	}
}

// TestWrite_errors: a method the document cannot describe is an error that
// names it, never a panic or a silent gap.
func TestWrite_errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule *annotations.HttpRule // nil for none
		want string
	}{
		{"no_http_rule", nil, "test.v1.TestService.Get: no google.api.http rule"},
		{"unknown_path_field", &annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/things/{nope}"}}, `has no field "nope"`},
		{"multi_segment_variable", &annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/{id=things/**}"}}, "only single-segment variables"},
		{"custom_method", &annotations.HttpRule{Pattern: &annotations.HttpRule_Custom{Custom: &annotations.CustomHttpPattern{Kind: "HEAD", Path: "/v1/x"}}}, `custom HTTP method "HEAD"`},
		{"unknown_body_field", &annotations.HttpRule{Pattern: &annotations.HttpRule_Post{Post: "/v1/things"}, Body: "nope"}, `body names "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sd := testService(t, tt.rule)
			table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd})
			if err != nil {
				t.Fatalf("NewTable: %v", err)
			}
			var b bytes.Buffer
			err = openapi.Write(&b, []protoreflect.ServiceDescriptor{sd}, table, info)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write() error = %v, want one containing %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("Write() wrote %d bytes on error, want none", b.Len())
			}
		})
	}
}

// testService builds test.v1.TestService with one method, Get, whose
// policy is roles [member] and whose http rule is rule.
func testService(t *testing.T, rule *annotations.HttpRule) protoreflect.ServiceDescriptor {
	t.Helper()
	opts := &descriptorpb.MethodOptions{}
	proto.SetExtension(opts, policyv1.E_Method, &policyv1.Policy{Roles: []string{"member"}})
	if rule != nil {
		proto.SetExtension(opts, annotations.E_Http, rule)
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("test/v1/test.proto"),
		Package: proto.String("test.v1"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("GetRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name: proto.String("id"), JsonName: proto.String("id"), Number: proto.Int32(1),
				Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("TestService"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: proto.String("Get"), InputType: proto.String(".test.v1.GetRequest"), OutputType: proto.String(".test.v1.GetRequest"),
				Options: opts,
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("protodesc.NewFile: %v", err)
	}
	return fd.Services().Get(0)
}
