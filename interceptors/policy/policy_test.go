package policy_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The roles and scopes of DESIGN.md.
var (
	knownRoles  = []string{"admin", "member", "viewer"}
	knownScopes = []string{"notes:read", "notes:write", "admin"}
)

func realServices() []protoreflect.ServiceDescriptor {
	return []protoreflect.ServiceDescriptor{
		authv1.File_guard_auth_v1_auth_proto.Services().ByName("AuthService"),
		notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService"),
		adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService"),
	}
}

func realTable(t *testing.T) *policy.Table {
	t.Helper()
	table, err := policy.NewTable(realServices(), policy.WithRoles(knownRoles...), policy.WithScopes(knownScopes...))
	if err != nil {
		t.Fatalf("NewTable(real services) error = %v, want nil", err)
	}
	return table
}

func procedure(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

func lookup(t *testing.T, table *policy.Table, proc string) *policy.Rule {
	t.Helper()
	r, ok := table.Lookup(proc)
	if !ok {
		t.Fatalf("Lookup(%q) found no rule, want one", proc)
	}
	return r
}

func fieldNames(fds []protoreflect.FieldDescriptor) []string {
	out := make([]string, 0, len(fds))
	for _, fd := range fds {
		out = append(out, string(fd.Name()))
	}
	return out
}

func TestNewTable_realServices(t *testing.T) {
	t.Parallel()
	for _, sd := range realServices() {
		if sd == nil {
			t.Fatal("a real service descriptor is nil: was a service renamed?")
		}
	}
	table := realTable(t)

	var want []string
	var wantInputs []protoreflect.FullName
	for _, sd := range realServices() {
		for i := range sd.Methods().Len() {
			md := sd.Methods().Get(i)
			want = append(want, procedure(md))
			wantInputs = append(wantInputs, md.Input().FullName())
		}
	}

	t.Run("every_method_has_a_rule", func(t *testing.T) {
		t.Parallel()
		for _, proc := range want {
			r := lookup(t, table, proc)
			if r.Procedure != proc {
				t.Errorf("Lookup(%q).Procedure = %q, want %q", proc, r.Procedure, proc)
			}
		}
	})
	t.Run("rules_sorted_and_complete", func(t *testing.T) {
		t.Parallel()
		var got []string
		for _, r := range table.Rules() {
			got = append(got, r.Procedure)
		}
		sorted := slices.Clone(want)
		slices.Sort(sorted)
		if !slices.Equal(got, sorted) {
			t.Errorf("Rules() procedures = %v, want %v", got, sorted)
		}
	})
	t.Run("inputs_are_every_request_message", func(t *testing.T) {
		t.Parallel()
		var got []protoreflect.FullName
		for _, md := range table.Inputs() {
			got = append(got, md.FullName())
		}
		slices.Sort(got)
		w := slices.Clone(wantInputs)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("Inputs() = %v, want %v", got, w)
		}
	})
	t.Run("resources", func(t *testing.T) {
		t.Parallel()
		if got, want := table.Resources(), []string{"note"}; !slices.Equal(got, want) {
			t.Errorf("Resources() = %v, want %v", got, want)
		}
	})
	t.Run("unknown_procedure_has_no_rule", func(t *testing.T) {
		t.Parallel()
		for _, proc := range []string{
			"",
			"/guard.notes.v1.NoteService/PurgeNotes",
			"/guard.notes.v1.NoteService/getnote",
			"guard.notes.v1.NoteService/GetNote",
			"/guard.notes.v1.NoteService.GetNote",
		} {
			if r, ok := table.Lookup(proc); ok {
				t.Errorf("Lookup(%q) = %+v, true; want no rule", proc, r)
			}
		}
	})
}

func TestNewTable_adminServiceInheritsDefault(t *testing.T) {
	t.Parallel()
	table := realTable(t)
	sd := adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService")
	if sd.Methods().Len() == 0 {
		t.Fatal("AdminService has no methods")
	}
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		t.Run(string(md.Name()), func(t *testing.T) {
			t.Parallel()
			r := lookup(t, table, procedure(md))
			if r.Public {
				t.Errorf("Public = true, want false")
			}
			if got, want := r.Roles, []string{"admin"}; !slices.Equal(got, want) {
				t.Errorf("Roles = %v, want %v", got, want)
			}
			if got, want := r.Scopes, []string{"admin"}; !slices.Equal(got, want) {
				t.Errorf("Scopes = %v, want %v", got, want)
			}
			if !r.Audit {
				t.Errorf("Audit = false, want true")
			}
			if r.Ownership != nil {
				t.Errorf("Ownership = %+v, want nil", r.Ownership)
			}
			if r.RateLimit != nil {
				t.Errorf("RateLimit = %+v, want nil", r.RateLimit)
			}
		})
	}
}

func TestNewTable_ownership(t *testing.T) {
	t.Parallel()
	table := realTable(t)
	tests := []struct {
		name   string
		proc   string
		path   []string
		access policyv1.Access
		bypass []string
	}{
		{"get_note", "/guard.notes.v1.NoteService/GetNote", []string{"id"}, policyv1.Access_ACCESS_READ, nil},
		{"update_note", "/guard.notes.v1.NoteService/UpdateNote", []string{"note", "id"}, policyv1.Access_ACCESS_WRITE, nil},
		{"delete_note", "/guard.notes.v1.NoteService/DeleteNote", []string{"id"}, policyv1.Access_ACCESS_OWNER, []string{"admin"}},
		{"share_note", "/guard.notes.v1.NoteService/ShareNote", []string{"id"}, policyv1.Access_ACCESS_OWNER, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := lookup(t, table, tt.proc).Ownership
			if o == nil {
				t.Fatalf("Ownership = nil, want a check on %v", tt.path)
			}
			if got := fieldNames(o.Field); !slices.Equal(got, tt.path) {
				t.Errorf("Ownership.Field = %v, want %v", got, tt.path)
			}
			if got, want := o.Field[len(o.Field)-1].Kind(), protoreflect.StringKind; got != want {
				t.Errorf("id field kind = %v, want %v", got, want)
			}
			if got, want := o.Resource, "note"; got != want {
				t.Errorf("Ownership.Resource = %q, want %q", got, want)
			}
			if o.Access != tt.access {
				t.Errorf("Ownership.Access = %v, want %v", o.Access, tt.access)
			}
			if !slices.Equal(o.BypassRoles, tt.bypass) {
				t.Errorf("Ownership.BypassRoles = %v, want %v", o.BypassRoles, tt.bypass)
			}
		})
	}
	t.Run("no_ownership_elsewhere", func(t *testing.T) {
		t.Parallel()
		checked := make(map[string]bool)
		for _, tt := range tests {
			checked[tt.proc] = true
		}
		for _, r := range table.Rules() {
			if !checked[r.Procedure] && r.Ownership != nil {
				t.Errorf("%s: Ownership = %+v, want nil", r.Procedure, r.Ownership)
			}
		}
	})
}

func TestNewTable_rateLimits(t *testing.T) {
	t.Parallel()
	table := realTable(t)
	// Every rate limit of the real schemas; every other method has none.
	want := map[string]policy.RateLimit{
		"/guard.auth.v1.AuthService/Login":          {Requests: 20, Window: time.Minute, Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_IP},
		"/guard.auth.v1.AuthService/Refresh":        {Requests: 60, Window: time.Minute, Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_IP},
		"/guard.auth.v1.AuthService/ChangePassword": {Requests: 5, Window: time.Minute, Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_USER},
		"/guard.notes.v1.NoteService/CreateNote":    {Requests: 120, Window: time.Minute, Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_USER},
	}
	for _, r := range table.Rules() {
		t.Run(strings.TrimPrefix(r.Procedure, "/"), func(t *testing.T) {
			t.Parallel()
			w, limited := want[r.Procedure]
			switch {
			case !limited && r.RateLimit != nil:
				t.Errorf("RateLimit = %+v, want nil", *r.RateLimit)
			case limited && r.RateLimit == nil:
				t.Errorf("RateLimit = nil, want %+v", w)
			case limited && *r.RateLimit != w:
				t.Errorf("RateLimit = %+v, want %+v", *r.RateLimit, w)
			}
		})
	}
}

func TestNewTable_loginIsPublic(t *testing.T) {
	t.Parallel()
	r := lookup(t, realTable(t), "/guard.auth.v1.AuthService/Login")
	if !r.Public {
		t.Errorf("Login Public = false, want true")
	}
	if len(r.Roles) != 0 || len(r.Scopes) != 0 {
		t.Errorf("Login Roles, Scopes = %v, %v; want none", r.Roles, r.Scopes)
	}
	if r.RateLimit == nil {
		t.Fatal("Login RateLimit = nil, want a per-IP limit")
	}
	if got, want := r.RateLimit.Key, policyv1.RateLimitKey_RATE_LIMIT_KEY_IP; got != want {
		t.Errorf("Login RateLimit.Key = %v, want %v", got, want)
	}
	if !r.Audit {
		t.Errorf("Login Audit = false, want true")
	}
}

// access is one row of the role x method matrix.
type access struct {
	anonymous, admin, member, viewer bool
	scopes                           []string
	audit                            bool
}

// TestRoleMethodMatrix is the invariant that any edit of who may call what
// must also be made here. From DESIGN.md: viewer reads notes shared with
// them; member creates and manages its own notes; admin may delete any note
// (moderation); AdminService is admin only.
func TestRoleMethodMatrix(t *testing.T) {
	t.Parallel()
	var (
		all      = access{admin: true, member: true, viewer: true}
		public   = access{anonymous: true, admin: true, member: true, viewer: true}
		writers  = access{admin: true, member: true, scopes: []string{"notes:write"}}
		readers  = access{admin: true, member: true, viewer: true, scopes: []string{"notes:read"}}
		adminSvc = access{admin: true, scopes: []string{"admin"}, audit: true}
	)
	audited := func(a access) access { a.audit = true; return a }
	matrix := map[string]access{
		"/guard.auth.v1.AuthService/Login":          audited(public),
		"/guard.auth.v1.AuthService/Refresh":        public,
		"/guard.auth.v1.AuthService/Logout":         audited(all),
		"/guard.auth.v1.AuthService/WhoAmI":         all,
		"/guard.auth.v1.AuthService/ChangePassword": audited(all),
		"/guard.auth.v1.AuthService/CreateAPIKey":   audited(all),
		"/guard.auth.v1.AuthService/ListAPIKeys":    all,
		"/guard.auth.v1.AuthService/RevokeAPIKey":   audited(all),

		"/guard.notes.v1.NoteService/CreateNote": writers,
		"/guard.notes.v1.NoteService/GetNote":    readers,
		"/guard.notes.v1.NoteService/ListNotes":  readers,
		"/guard.notes.v1.NoteService/UpdateNote": writers,
		"/guard.notes.v1.NoteService/DeleteNote": audited(writers),
		"/guard.notes.v1.NoteService/ShareNote":  audited(writers),

		"/guard.admin.v1.AdminService/CreateUser":       adminSvc,
		"/guard.admin.v1.AdminService/ListUsers":        adminSvc,
		"/guard.admin.v1.AdminService/SetUserRoles":     adminSvc,
		"/guard.admin.v1.AdminService/DisableUser":      adminSvc,
		"/guard.admin.v1.AdminService/UnlockUser":       adminSvc,
		"/guard.admin.v1.AdminService/ListAuditEvents":  adminSvc,
		"/guard.admin.v1.AdminService/RotateSigningKey": adminSvc,
		"/guard.admin.v1.AdminService/UnblockNetwork":   adminSvc,
	}
	// Only an admin skips the ownership check, and only to delete.
	bypass := map[string][]string{
		"/guard.notes.v1.NoteService/DeleteNote": {"admin"},
	}

	table := realTable(t)
	rules := table.Rules()
	if got, want := len(rules), len(matrix); got != want {
		t.Errorf("table has %d rules, matrix has %d rows; want equal", got, want)
	}
	for _, r := range rules {
		if _, ok := matrix[r.Procedure]; !ok {
			t.Errorf("procedure %s has no row in the matrix", r.Procedure)
		}
	}
	allows := func(r *policy.Rule, role string) bool {
		return r.Public || slices.Contains(r.Roles, role)
	}
	for proc, want := range matrix {
		t.Run(strings.TrimPrefix(proc, "/"), func(t *testing.T) {
			t.Parallel()
			r := lookup(t, table, proc)
			if got := r.Public; got != want.anonymous {
				t.Errorf("anonymous allowed = %v, want %v", got, want.anonymous)
			}
			for role, w := range map[string]bool{"admin": want.admin, "member": want.member, "viewer": want.viewer} {
				if got := allows(r, role); got != w {
					t.Errorf("%s allowed = %v, want %v", role, got, w)
				}
			}
			if !slices.Equal(r.Scopes, want.scopes) {
				t.Errorf("Scopes = %v, want %v", r.Scopes, want.scopes)
			}
			if r.Audit != want.audit {
				t.Errorf("Audit = %v, want %v", r.Audit, want.audit)
			}
			var gotBypass []string
			if r.Ownership != nil {
				gotBypass = r.Ownership.BypassRoles
			}
			if !slices.Equal(gotBypass, bypass[proc]) {
				t.Errorf("ownership bypass roles = %v, want %v", gotBypass, bypass[proc])
			}
		})
	}
}

func TestOwnership_ResourceID(t *testing.T) {
	t.Parallel()
	table := realTable(t)
	get := lookup(t, table, "/guard.notes.v1.NoteService/GetNote").Ownership
	update := lookup(t, table, "/guard.notes.v1.NoteService/UpdateNote").Ownership
	tests := []struct {
		name string
		o    *policy.Ownership
		msg  proto.Message
		want string
	}{
		{"top_level", get, &notesv1.GetNoteRequest{Id: "abcdefghijklmnopqrstuvwxyz"}, "abcdefghijklmnopqrstuvwxyz"},
		{"top_level_empty", get, &notesv1.GetNoteRequest{}, ""},
		{"nested", update, &notesv1.UpdateNoteRequest{Note: &notesv1.Note{Id: "n1", OwnerId: "u1"}}, "n1"},
		{"nested_intermediate_unset", update, &notesv1.UpdateNoteRequest{}, ""},
		{"nested_intermediate_empty", update, &notesv1.UpdateNoteRequest{Note: &notesv1.Note{Title: "t"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.o.ResourceID(tt.msg.ProtoReflect()); got != tt.want {
				t.Errorf("ResourceID() = %q, want %q", got, tt.want)
			}
		})
	}
}

// --- Descriptors built in the test, to reach every refusal. ---

// method is a method of the test service with an optional policy.
type method struct {
	name   string
	policy *policyv1.Policy // nil: no method option
}

// testService builds test.v1.TestService: every method takes test.v1.Req:
//
//	message Req {
//	  string id = 1; int32 num = 2; repeated string tags = 3;
//	  Inner inner = 4; map<string, string> labels = 5;
//	  repeated Inner inners = 6;
//	}
//	message Inner { string id = 1; Inner child = 2; bytes raw = 3; }
func testService(t *testing.T, def *policyv1.Policy, methods ...method) protoreflect.ServiceDescriptor {
	t.Helper()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(name),
			JsonName: proto.String(name),
			Number:   proto.Int32(n),
			Type:     typ.Enum(),
			Label:    label.Enum(),
		}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	const (
		opt = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		rep = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("test/v1/test.proto"),
		Package:    proto.String("test.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"guard/policy/v1/policy.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{
				Name: proto.String("Req"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("id", 1, str, opt, ""),
					field("num", 2, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
					field("tags", 3, str, rep, ""),
					field("inner", 4, msg, opt, ".test.v1.Inner"),
					field("labels", 5, msg, rep, ".test.v1.Req.LabelsEntry"),
					field("inners", 6, msg, rep, ".test.v1.Inner"),
				},
				NestedType: []*descriptorpb.DescriptorProto{{
					Name: proto.String("LabelsEntry"),
					Field: []*descriptorpb.FieldDescriptorProto{
						field("key", 1, str, opt, ""),
						field("value", 2, str, opt, ""),
					},
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				}},
			},
			{
				Name: proto.String("Inner"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("id", 1, str, opt, ""),
					field("child", 2, msg, opt, ".test.v1.Inner"),
					field("raw", 3, descriptorpb.FieldDescriptorProto_TYPE_BYTES, opt, ""),
				},
			},
			{Name: proto.String("Resp")},
		},
	}
	svc := &descriptorpb.ServiceDescriptorProto{Name: proto.String("TestService")}
	if def != nil {
		svc.Options = &descriptorpb.ServiceOptions{}
		proto.SetExtension(svc.Options, policyv1.E_Service, def)
	}
	for _, m := range methods {
		mdp := &descriptorpb.MethodDescriptorProto{
			Name:       proto.String(m.name),
			InputType:  proto.String(".test.v1.Req"),
			OutputType: proto.String(".test.v1.Resp"),
		}
		if m.policy != nil {
			mdp.Options = &descriptorpb.MethodOptions{}
			proto.SetExtension(mdp.Options, policyv1.E_Method, m.policy)
		}
		svc.Method = append(svc.Method, mdp)
	}
	fdp.Service = []*descriptorpb.ServiceDescriptorProto{svc}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("protodesc.NewFile() error = %v, want nil", err)
	}
	return fd.Services().Get(0)
}

func ownership(idField string) *policyv1.Ownership {
	return &policyv1.Ownership{IdField: idField, Resource: "thing", Access: policyv1.Access_ACCESS_READ}
}

func rateLimit(requests uint32, window *durationpb.Duration, key policyv1.RateLimitKey) *policyv1.RateLimit {
	return &policyv1.RateLimit{Requests: requests, Window: window, Key: key}
}

func members() *policyv1.Policy { return &policyv1.Policy{Roles: []string{"member"}} }

func TestNewTable_refusesUnenforceablePolicy(t *testing.T) {
	t.Parallel()
	minute := durationpb.New(time.Minute)
	withOwnership := func(o *policyv1.Ownership) *policyv1.Policy {
		return &policyv1.Policy{Roles: []string{"member"}, Ownership: o}
	}
	withRateLimit := func(public bool, rl *policyv1.RateLimit) *policyv1.Policy {
		p := &policyv1.Policy{Public: public, RateLimit: rl}
		if !public {
			p.Roles = []string{"member"}
		}
		return p
	}
	tests := []struct {
		name   string
		def    *policyv1.Policy
		policy *policyv1.Policy
		opts   []policy.Option
		// want are substrings of the error, besides the method's full name.
		want []string
	}{
		{name: "no_policy_no_default", want: []string{"has no policy"}},
		{name: "empty_policy", policy: &policyv1.Policy{}, want: []string{"public or name at least one role"}},
		{name: "scopes_without_roles", policy: &policyv1.Policy{Scopes: []string{"notes:read"}}, want: []string{"public or name at least one role"}},
		{name: "audit_only", policy: &policyv1.Policy{Audit: true}, want: []string{"public or name at least one role"}},
		{name: "empty_method_policy_does_not_inherit", def: members(), policy: &policyv1.Policy{}, want: []string{"public or name at least one role"}},
		{name: "empty_service_default", def: &policyv1.Policy{}, want: []string{"public or name at least one role"}},
		{name: "public_with_roles", policy: &policyv1.Policy{Public: true, Roles: []string{"member"}}, want: []string{"public policy cannot"}},
		{name: "public_with_scopes", policy: &policyv1.Policy{Public: true, Scopes: []string{"notes:read"}}, want: []string{"public policy cannot"}},
		{name: "public_with_ownership", policy: &policyv1.Policy{Public: true, Ownership: ownership("id")}, want: []string{"public policy cannot"}},

		{name: "ownership_missing_field", policy: withOwnership(ownership("nope")), want: []string{"id_field", `"nope"`}},
		{name: "ownership_missing_nested_field", policy: withOwnership(ownership("inner.nope")), want: []string{"id_field", `"nope"`}},
		{name: "ownership_non_string_field", policy: withOwnership(ownership("num")), want: []string{"id_field", `"num"`, "not a string"}},
		{name: "ownership_bytes_field", policy: withOwnership(ownership("inner.raw")), want: []string{"id_field", `"raw"`, "not a string"}},
		{name: "ownership_message_as_last_step", policy: withOwnership(ownership("inner")), want: []string{"id_field", `"inner"`, "not a string"}},
		{name: "ownership_repeated_field", policy: withOwnership(ownership("tags")), want: []string{"id_field", `"tags"`, "repeated"}},
		{name: "ownership_map_field", policy: withOwnership(ownership("labels")), want: []string{"id_field", `"labels"`, "repeated"}},
		{name: "ownership_through_repeated_message", policy: withOwnership(ownership("inners.id")), want: []string{"id_field", `"inners"`, "repeated"}},
		{name: "ownership_through_scalar", policy: withOwnership(ownership("id.x")), want: []string{"id_field", `"id"`, "not a message"}},
		{name: "ownership_empty_path", policy: withOwnership(ownership("")), want: []string{"id_field", "empty"}},
		{name: "ownership_empty_step", policy: withOwnership(ownership("inner..id")), want: []string{"id_field", `""`}},
		{name: "ownership_no_resource", policy: withOwnership(&policyv1.Ownership{IdField: "id", Access: policyv1.Access_ACCESS_READ}), want: []string{"resource kind"}},
		{name: "ownership_no_access", policy: withOwnership(&policyv1.Ownership{IdField: "id", Resource: "thing"}), want: []string{"access level"}},
		{name: "ownership_unknown_access", policy: withOwnership(&policyv1.Ownership{IdField: "id", Resource: "thing", Access: 42}), want: []string{"access level 42"}},

		{name: "rate_limit_zero_requests", policy: withRateLimit(false, rateLimit(0, minute, policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"requests > 0"}},
		{name: "rate_limit_no_window", policy: withRateLimit(false, rateLimit(10, nil, policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"positive window"}},
		{name: "rate_limit_zero_window", policy: withRateLimit(false, rateLimit(10, durationpb.New(0), policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"positive window"}},
		{name: "rate_limit_negative_window", policy: withRateLimit(false, rateLimit(10, durationpb.New(-time.Minute), policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"positive window"}},
		{name: "rate_limit_invalid_window", policy: withRateLimit(false, rateLimit(10, &durationpb.Duration{Seconds: 1, Nanos: -5}, policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"positive window"}},
		{name: "rate_limit_unspecified_key", policy: withRateLimit(false, rateLimit(10, minute, policyv1.RateLimitKey_RATE_LIMIT_KEY_UNSPECIFIED)), want: []string{"needs a key"}},
		{name: "rate_limit_unknown_key", policy: withRateLimit(false, rateLimit(10, minute, 9)), want: []string{"needs a key"}},
		{name: "public_per_user_rate_limit", policy: withRateLimit(true, rateLimit(10, minute, policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)), want: []string{"public method", "per IP"}},
		{name: "public_user_and_ip_rate_limit", policy: withRateLimit(true, rateLimit(10, minute, policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH)), want: []string{"public method", "per IP"}},

		{
			name:   "unknown_role",
			policy: &policyv1.Policy{Roles: []string{"member", "editor"}},
			opts:   []policy.Option{policy.WithRoles(knownRoles...)},
			want:   []string{`unknown role "editor"`},
		},
		{
			name: "unknown_role_in_service_default",
			def:  &policyv1.Policy{Roles: []string{"Admin"}},
			opts: []policy.Option{policy.WithRoles(knownRoles...)},
			want: []string{`unknown role "Admin"`},
		},
		{
			name:   "unknown_bypass_role",
			policy: withOwnership(&policyv1.Ownership{IdField: "id", Resource: "thing", Access: policyv1.Access_ACCESS_OWNER, BypassRoles: []string{"moderator"}}),
			opts:   []policy.Option{policy.WithRoles(knownRoles...)},
			want:   []string{`unknown role "moderator"`},
		},
		{
			name:   "unknown_scope",
			policy: &policyv1.Policy{Roles: []string{"member"}, Scopes: []string{"notes:read", "notes:delete"}},
			opts:   []policy.Option{policy.WithScopes(knownScopes...)},
			want:   []string{`unknown scope "notes:delete"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sd := testService(t, tt.def, method{name: "Do", policy: tt.policy})
			table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd}, tt.opts...)
			if err == nil {
				t.Fatalf("NewTable() = %v, nil; want an error", table)
			}
			if table != nil {
				t.Errorf("NewTable() table = %v, want nil with an error", table)
			}
			for _, w := range append([]string{"test.v1.TestService.Do"}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewTable() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewTable_acceptsEnforceablePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		def    *policyv1.Policy
		policy *policyv1.Policy
		opts   []policy.Option
		check  func(t *testing.T, r *policy.Rule)
	}{
		{
			name:   "nested_ownership_path",
			policy: &policyv1.Policy{Roles: []string{"member"}, Ownership: ownership("inner.child.id")},
			check: func(t *testing.T, r *policy.Rule) {
				if got, want := fieldNames(r.Ownership.Field), []string{"inner", "child", "id"}; !slices.Equal(got, want) {
					t.Errorf("Ownership.Field = %v, want %v", got, want)
				}
			},
		},
		{
			name:   "method_policy_replaces_default",
			def:    &policyv1.Policy{Roles: []string{"admin"}, Scopes: []string{"admin"}, Audit: true, RateLimit: rateLimit(1, durationpb.New(time.Second), policyv1.RateLimitKey_RATE_LIMIT_KEY_USER)},
			policy: &policyv1.Policy{Roles: []string{"viewer"}},
			check: func(t *testing.T, r *policy.Rule) {
				if !slices.Equal(r.Roles, []string{"viewer"}) || r.Scopes != nil || r.Audit || r.RateLimit != nil {
					t.Errorf("rule = %+v, want roles [viewer] only: a method policy is never merged with the default", *r)
				}
			},
		},
		{
			name:   "public_ip_rate_limit",
			policy: &policyv1.Policy{Public: true, RateLimit: rateLimit(3, durationpb.New(90*time.Second), policyv1.RateLimitKey_RATE_LIMIT_KEY_IP)},
			check: func(t *testing.T, r *policy.Rule) {
				want := policy.RateLimit{Requests: 3, Window: 90 * time.Second, Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_IP}
				if !r.Public || r.RateLimit == nil || *r.RateLimit != want {
					t.Errorf("rule = %+v, want public with rate limit %+v", *r, want)
				}
			},
		},
		{
			name:   "known_names",
			policy: &policyv1.Policy{Roles: []string{"member", "viewer"}, Scopes: []string{"notes:read"}},
			opts:   []policy.Option{policy.WithRoles(knownRoles...), policy.WithScopes(knownScopes...)},
			check: func(t *testing.T, r *policy.Rule) {
				if !slices.Equal(r.Roles, []string{"member", "viewer"}) || !slices.Equal(r.Scopes, []string{"notes:read"}) {
					t.Errorf("Roles, Scopes = %v, %v; want [member viewer], [notes:read]", r.Roles, r.Scopes)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sd := testService(t, tt.def, method{name: "Do", policy: tt.policy})
			table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd}, tt.opts...)
			if err != nil {
				t.Fatalf("NewTable() error = %v, want nil", err)
			}
			tt.check(t, lookup(t, table, "/test.v1.TestService/Do"))
		})
	}
}

func TestNewTable_namesEveryBadMethod(t *testing.T) {
	t.Parallel()
	sd := testService(t, nil,
		method{name: "Good", policy: members()},
		method{name: "Naked"},
		method{name: "Empty", policy: &policyv1.Policy{}},
		method{name: "AlsoGood", policy: &policyv1.Policy{Public: true}},
	)
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd})
	if err == nil {
		t.Fatalf("NewTable() = %v, nil; want an error", table)
	}
	msg := err.Error()
	for _, want := range []string{"test.v1.TestService.Naked", "test.v1.TestService.Empty"} {
		if !strings.Contains(msg, want) {
			t.Errorf("NewTable() error = %q, want it to name %s", msg, want)
		}
	}
	for _, good := range []string{"TestService.Good", "TestService.AlsoGood"} {
		if strings.Contains(msg, good) {
			t.Errorf("NewTable() error = %q, want it not to name %s", msg, good)
		}
	}
}

func TestNewTable_refusesAcrossServices(t *testing.T) {
	t.Parallel()
	// One gap in one service fails the whole table, even next to the real,
	// well-formed services.
	services := append(realServices(), testService(t, nil, method{name: "Naked"}))
	table, err := policy.NewTable(services, policy.WithRoles(knownRoles...))
	if err == nil {
		t.Fatalf("NewTable() = %v, nil; want an error", table)
	}
	if got, want := err.Error(), "test.v1.TestService.Naked"; !strings.Contains(got, want) {
		t.Errorf("NewTable() error = %q, want it to contain %q", got, want)
	}
}

func TestRules_isACopyOfTheOrder(t *testing.T) {
	t.Parallel()
	table := realTable(t)
	first := table.Rules()
	first[0], first[len(first)-1] = first[len(first)-1], first[0]
	second := table.Rules()
	if !slices.IsSortedFunc(second, func(a, b *policy.Rule) int { return strings.Compare(a.Procedure, b.Procedure) }) {
		t.Errorf("Rules() after a caller reordered an earlier result is not sorted")
	}
	inputs := table.Inputs()
	inputs[0] = nil
	if table.Inputs()[0] == nil {
		t.Errorf("Inputs() shares its backing array with the table, want a copy")
	}
}
