package policy_test

import (
	"slices"
	"strings"
	"testing"

	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FuzzNewTable builds policy tables from arbitrary descriptors, in two ways
// per input: file is a serialized FileDescriptorProto, resolved against the
// global registry (the seeds are the three demo services); and service,
// method and the two policies build a small file of their own, each policy
// the raw bytes of a guard.policy.v1.Policy set as the service's default
// and the method's option (empty: no option). A second method, Inherit,
// has no option and takes the service default.
//
// Properties: NewTable never panics. On success every method has a rule
// named "/pkg.Service/Method" that says what its policy declares; a public
// rule has no roles, scopes or ownership and is rate limited per IP only;
// any other rule names a role; every name is one WithRoles and WithScopes
// allow; ownership paths end in a string field and read an empty request
// without panicking. On failure there is no table and every line of the
// error names a method of the services.
//
// The committed corpus in testdata/fuzz/FuzzNewTable holds the demo files
// with one policy broken each.
func FuzzNewTable(f *testing.F) {
	files := []protoreflect.FileDescriptor{
		authv1.File_guard_auth_v1_auth_proto,
		notesv1.File_guard_notes_v1_notes_proto,
		adminv1.File_guard_admin_v1_admin_proto,
	}
	marshal := func(m proto.Message) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			f.Fatalf("Marshal(%T) error = %v, want nil", m, err)
		}
		return b
	}
	// methodPolicy returns the raw policy of a demo method.
	methodPolicy := func(fd protoreflect.FileDescriptor, service, method protoreflect.Name) []byte {
		md := fd.Services().ByName(service).Methods().ByName(method)
		return marshal(proto.GetExtension(md.Options(), policyv1.E_Method).(*policyv1.Policy))
	}
	adminDefault := marshal(proto.GetExtension(files[2].Services().Get(0).Options(), policyv1.E_Service).(*policyv1.Policy))
	login := methodPolicy(files[0], "AuthService", "Login")
	deleteNote := methodPolicy(files[1], "NoteService", "DeleteNote")
	for _, fd := range files {
		f.Add(marshal(protodesc.ToFileDescriptorProto(fd)), "FuzzService", "Get", adminDefault, login)
	}
	f.Add([]byte{}, "FuzzService", "Get", []byte{}, deleteNote)
	f.Add([]byte{}, "FuzzService", "Get", adminDefault, []byte{})
	f.Add([]byte{}, "FuzzService", "Get", []byte{}, []byte{})
	emptyPolicy := []byte{0x30, 0x00} // audit: false, set explicitly: an empty policy, not none
	f.Add([]byte{}, "FuzzService", "Get", emptyPolicy, marshal(&policyv1.Policy{Public: true, Roles: []string{"admin"}}))
	f.Add([]byte{}, "FuzzService", "Get", login, marshal(&policyv1.Policy{
		Roles:     []string{"member"},
		Ownership: &policyv1.Ownership{IdField: "inner.child.id", Resource: "thing", Access: policyv1.Access_ACCESS_WRITE, BypassRoles: []string{"admin"}},
		RateLimit: &policyv1.RateLimit{Requests: 1, Window: durationpb.New(1), Key: policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH},
	}))

	f.Fuzz(func(t *testing.T, file []byte, service, method string, servicePolicy, methodPolicy []byte) {
		var fdp descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(file, &fdp); err == nil {
			if fd, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles); err == nil {
				checkTable(t, fd)
			}
		}
		if fd, ok := fuzzFile(service, method, servicePolicy, methodPolicy); ok {
			checkTable(t, fd)
		}
	})
}

// fuzzFile builds fuzz.v1 with one service holding two methods, both taking
//
//	message Req { string id = 1; repeated string tags = 2; Inner inner = 3; }
//	message Inner { string id = 1; Inner child = 2; int32 num = 3; }
//
// It reports false when the names or policy bytes make no valid file.
func fuzzFile(service, method string, servicePolicy, methodPolicy []byte) (protoreflect.FileDescriptor, bool) {
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(n),
			Type: typ.Enum(), Label: label.Enum(),
		}
		if typeName != "" {
			fd.TypeName = proto.String(typeName)
		}
		return fd
	}
	const (
		opt = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		rep = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		str = descriptorpb.FieldDescriptorProto_TYPE_STRING
		msg = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	)
	svc := &descriptorpb.ServiceDescriptorProto{
		Name: proto.String(service),
		Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String(method), InputType: proto.String(".fuzz.v1.Req"), OutputType: proto.String(".fuzz.v1.Req")},
			{Name: proto.String("Inherit"), InputType: proto.String(".fuzz.v1.Req"), OutputType: proto.String(".fuzz.v1.Req")},
		},
	}
	if len(servicePolicy) > 0 {
		svc.Options = &descriptorpb.ServiceOptions{}
		if !withPolicy(svc.Options, policyv1.E_Service, servicePolicy) {
			return nil, false
		}
	}
	if len(methodPolicy) > 0 {
		svc.Method[0].Options = &descriptorpb.MethodOptions{}
		if !withPolicy(svc.Method[0].Options, policyv1.E_Method, methodPolicy) {
			return nil, false
		}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("fuzz/v1/fuzz.proto"),
		Package:    proto.String("fuzz.v1"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"guard/policy/v1/policy.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str, opt, ""),
				field("tags", 2, str, rep, ""),
				field("inner", 3, msg, opt, ".fuzz.v1.Inner"),
			}},
			{Name: proto.String("Inner"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str, opt, ""),
				field("child", 2, msg, opt, ".fuzz.v1.Inner"),
				field("num", 3, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, ""),
			}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{svc},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	return fd, err == nil
}

// withPolicy decodes raw as the policy extension xt of options, the way
// protoc's output is decoded: it reports false when raw is not a valid
// encoding, which no compiled descriptor holds.
func withPolicy(options proto.Message, xt protoreflect.ExtensionType, raw []byte) bool {
	b := protowire.AppendTag(nil, xt.TypeDescriptor().Number(), protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	return proto.Unmarshal(b, options) == nil
}

// checkTable builds the table of the services of fd, the way the server
// does, and checks the properties listed on FuzzNewTable.
func checkTable(t *testing.T, fd protoreflect.FileDescriptor) {
	t.Helper()
	var services []protoreflect.ServiceDescriptor
	var methods []protoreflect.MethodDescriptor
	for i := range fd.Services().Len() {
		sd := fd.Services().Get(i)
		services = append(services, sd)
		for j := range sd.Methods().Len() {
			methods = append(methods, sd.Methods().Get(j))
		}
	}
	table, err := policy.NewTable(services, policy.WithRoles(knownRoles...), policy.WithScopes(knownScopes...))
	if err != nil {
		if table != nil {
			t.Fatalf("NewTable(%s) = %v, %v; want no table with an error", fd.Path(), table, err)
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if !slices.ContainsFunc(methods, func(md protoreflect.MethodDescriptor) bool {
				name := "method " + string(md.FullName())
				return strings.Contains(line, name+" ") || strings.Contains(line, name+":")
			}) {
				t.Fatalf("NewTable(%s) error line %q names no method of the file; error = %q", fd.Path(), line, err)
			}
		}
		return
	}
	if got := len(table.Rules()); got != len(methods) {
		t.Fatalf("NewTable(%s) has %d rules, want one per method: %d", fd.Path(), got, len(methods))
	}
	for _, md := range methods {
		checkRule(t, table, md)
	}
}

// checkRule checks the rule of md against the policy declared for it.
func checkRule(t *testing.T, table *policy.Table, md protoreflect.MethodDescriptor) {
	t.Helper()
	proc := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	r, ok := table.Lookup(proc)
	if !ok {
		t.Fatalf("Lookup(%q) found no rule, want one for every method", proc)
	}
	if r.Procedure != proc {
		t.Fatalf("Lookup(%q).Procedure = %q, want %q", proc, r.Procedure, proc)
	}
	p, _ := proto.GetExtension(md.Options(), policyv1.E_Method).(*policyv1.Policy)
	if p == nil {
		p, _ = proto.GetExtension(md.Parent().Options(), policyv1.E_Service).(*policyv1.Policy)
	}
	if p == nil {
		t.Fatalf("%s has rule %+v without a declared policy", proc, r)
	}
	if r.Public != p.GetPublic() || !slices.Equal(r.Roles, p.GetRoles()) || !slices.Equal(r.Scopes, p.GetScopes()) ||
		r.Audit != p.GetAudit() || (r.Ownership == nil) != (p.GetOwnership() == nil) || (r.RateLimit == nil) != (p.GetRateLimit() == nil) {
		t.Fatalf("%s rule = %+v, want what its policy declares: %v", proc, r, p)
	}
	switch {
	case r.Public && (len(r.Roles) > 0 || len(r.Scopes) > 0 || r.Ownership != nil):
		t.Fatalf("%s rule = %+v: public with roles, scopes or ownership", proc, r)
	case r.Public && r.RateLimit != nil && r.RateLimit.Key != policyv1.RateLimitKey_RATE_LIMIT_KEY_IP:
		t.Fatalf("%s rule = %+v: public with a rate limit key %v, want per IP only", proc, r, r.RateLimit.Key)
	case !r.Public && len(r.Roles) == 0:
		t.Fatalf("%s rule = %+v: neither public nor naming a role", proc, r)
	}
	for _, name := range r.Roles {
		if !slices.Contains(knownRoles, name) {
			t.Fatalf("%s rule has role %q, want one of %q", proc, name, knownRoles)
		}
	}
	for _, name := range r.Scopes {
		if !slices.Contains(knownScopes, name) {
			t.Fatalf("%s rule has scope %q, want one of %q", proc, name, knownScopes)
		}
	}
	if rl := r.RateLimit; rl != nil && (rl.Requests <= 0 || rl.Window <= 0 || policyv1.RateLimitKey_name[int32(rl.Key)] == "" ||
		rl.Key == policyv1.RateLimitKey_RATE_LIMIT_KEY_UNSPECIFIED) {
		t.Fatalf("%s rule has rate limit %+v, want requests, a window and a key", proc, rl)
	}
	if o := r.Ownership; o != nil {
		for _, name := range o.BypassRoles {
			if !slices.Contains(knownRoles, name) {
				t.Fatalf("%s rule has bypass role %q, want one of %q", proc, name, knownRoles)
			}
		}
		if o.Resource == "" || o.Access == policyv1.Access_ACCESS_UNSPECIFIED || policyv1.Access_name[int32(o.Access)] == "" || len(o.Field) == 0 {
			t.Fatalf("%s rule has ownership %+v, want a resource, an access level and a field", proc, o)
		}
		last := o.Field[len(o.Field)-1]
		if last.Kind() != protoreflect.StringKind || last.Cardinality() == protoreflect.Repeated {
			t.Fatalf("%s ownership field %s is %v %v, want a singular string", proc, last.FullName(), last.Cardinality(), last.Kind())
		}
		if id := o.ResourceID(dynamicpb.NewMessage(md.Input())); id != "" {
			t.Fatalf("%s ResourceID(empty request) = %q, want empty", proc, id)
		}
	}
}
