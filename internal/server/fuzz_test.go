package server_test

import (
	"errors"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"github.com/connectguard/guard/internal/server"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// FuzzDecodeValidate decodes the fuzz bytes as the request of every method
// of the three services, both as binary protobuf (Connect's proto codec and
// gRPC) and as JSON (Connect's JSON codec, which discards unknown fields),
// and validates every message that decodes with a validator built the way
// chain builds the server's: protovalidate.New with the request messages of
// the policy table of the mounted services.
//
// Properties: neither decoding nor validation panics, and validation passes
// or fails with a *protovalidate.ValidationError that lists violations,
// never a compilation or runtime error, which would reach the client as an
// internal error instead of invalid_argument.
//
// The committed corpus in testdata/fuzz/FuzzDecodeValidate holds requests
// near the edge of their rules: an update mask naming other fields, an API
// key ttl over a year, an unknown share permission, binary messages.
func FuzzDecodeValidate(f *testing.F) {
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{
		authv1.File_guard_auth_v1_auth_proto.Services().ByName("AuthService"),
		notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService"),
		adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService"),
	}, policy.WithRoles(server.Roles...), policy.WithScopes(server.Scopes...))
	if err != nil {
		f.Fatalf("NewTable() error = %v, want nil", err)
	}
	validator, err := protovalidate.New(protovalidate.WithMessageDescriptors(table.Inputs()...))
	if err != nil {
		f.Fatalf("protovalidate.New() error = %v, want nil", err)
	}
	var inputs []protoreflect.MessageType
	for _, md := range table.Inputs() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
		if err != nil {
			f.Fatalf("FindMessageByName(%s) error = %v, want nil", md.FullName(), err)
		}
		inputs = append(inputs, mt)
	}

	for _, s := range []string{
		`{"title":"groceries","body":"milk"}`,
		`{"title":"","body":"milk"}`,
		`{"title":"` + strings.Repeat("x", 201) + `"}`,
		`{"email":"alice@example.com","password":"correct horse battery staple","useCookie":true}`,
		`{"email":"not an email","password":""}`,
		`{"note":{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","title":""},"updateMask":"title"}`,
		`{"note":{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","body":"b"},"updateMask":"body"}`,
		`{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaa","userId":"bbbbbbbbbbbbbbbbbbbbbbbbbb","permission":"SHARE_PERMISSION_WRITER"}`,
		`{"name":"ci","scopes":["notes:read","notes:read"],"ttl":"3600s"}`,
		`{"pageSize":-1,"pageToken":"x"}`,
	} {
		f.Add([]byte(s))
	}
	for _, m := range []proto.Message{
		&notesv1.CreateNoteRequest{Title: "groceries", Body: "milk"},
		&authv1.LoginRequest{Email: "alice@example.com", Password: "pw"},
		&notesv1.UpdateNoteRequest{Note: &notesv1.Note{Title: "t"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title", "owner_id"}}},
		&authv1.CreateAPIKeyRequest{Name: "ci", Scopes: []string{"admin"}, Ttl: durationpb.New(-1)},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatalf("Marshal(%T) error = %v, want nil", m, err)
		}
		f.Add(b)
	}

	jsonOpts := protojson.UnmarshalOptions{DiscardUnknown: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mt := range inputs {
			msg := mt.New().Interface()
			if err := proto.Unmarshal(data, msg); err == nil {
				checkValidation(t, validator, msg, "binary", data)
			}
			msg = mt.New().Interface()
			if err := jsonOpts.Unmarshal(data, msg); err == nil {
				checkValidation(t, validator, msg, "JSON", data)
			}
		}
	})
}

// checkValidation requires validator to pass msg or refuse it with a
// *protovalidate.ValidationError holding at least one violation.
func checkValidation(t *testing.T, validator protovalidate.Validator, msg proto.Message, codec string, data []byte) {
	t.Helper()
	err := validator.Validate(msg)
	if err == nil {
		return
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Validate(%s from %s %q) error = %T %v, want nil or a *protovalidate.ValidationError",
			msg.ProtoReflect().Descriptor().FullName(), codec, data, err, err)
	}
	if len(verr.Violations) == 0 {
		t.Fatalf("Validate(%s from %s %q) = ValidationError without violations, want at least one",
			msg.ProtoReflect().Descriptor().FullName(), codec, data)
	}
}
