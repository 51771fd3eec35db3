package openapi

import (
	"errors"
	"fmt"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// refPrefix is where component schemas are referenced from.
const refPrefix = "#/components/schemas/"

// maxQueryDepth bounds how deep query parameters follow nested messages.
const maxQueryDepth = 4

// schemas builds the protojson schema of messages, collecting the messages
// that $refs name so that components holds exactly those.
type schemas struct {
	seen    map[protoreflect.FullName]bool
	pending []protoreflect.MessageDescriptor
}

func newSchemas() *schemas {
	return &schemas{seen: map[protoreflect.FullName]bool{}}
}

// ref returns a $ref to md's component schema, which components will build.
func (s *schemas) ref(md protoreflect.MessageDescriptor) obj {
	if !s.seen[md.FullName()] {
		s.seen[md.FullName()] = true
		s.pending = append(s.pending, md)
	}
	return obj{"$ref": refPrefix + string(md.FullName())}
}

// components builds the schema of every message referenced so far, and of
// those their fields reference in turn.
func (s *schemas) components() (obj, error) {
	out := obj{}
	var errs []error
	for len(s.pending) > 0 {
		md := s.pending[0]
		s.pending = s.pending[1:]
		sch, err := s.message(md, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("message %s: %w", md.FullName(), err))
			continue
		}
		out[string(md.FullName())] = sch
	}
	return out, errors.Join(errs...)
}

// message is md as a JSON object, leaving out the fields named in skip.
func (s *schemas) message(md protoreflect.MessageDescriptor, skip map[string]bool) (obj, error) {
	props := obj{}
	var required []any
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if skip[string(fd.Name())] {
			continue
		}
		sch, err := s.field(fd)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", fd.Name(), err)
		}
		props[fd.JSONName()] = sch
		if isRequired(fd) {
			required = append(required, fd.JSONName())
		}
	}
	out := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	if d := messageRulesDescription(md); d != "" {
		out["description"] = d
	}
	return out, nil
}

// field is the schema of a field's JSON value, with its validation rules.
func (s *schemas) field(fd protoreflect.FieldDescriptor) (obj, error) {
	rules := fieldRules(fd)
	var out obj
	var err error
	switch {
	case fd.IsMap():
		out, err = s.mapField(fd, rules)
	case fd.IsList():
		out, err = s.listField(fd, rules)
	default:
		out, err = s.singular(fd, rules)
	}
	if err != nil {
		return nil, err
	}
	addFieldCEL(out, rules)
	return out, nil
}

func (s *schemas) mapField(fd protoreflect.FieldDescriptor, rules *validate.FieldRules) (obj, error) {
	values, err := s.singular(fd.MapValue(), rules.GetMap().GetValues())
	if err != nil {
		return nil, err
	}
	out := obj{"type": "object", "additionalProperties": values}
	applyMapRules(out, rules)
	return out, nil
}

func (s *schemas) listField(fd protoreflect.FieldDescriptor, rules *validate.FieldRules) (obj, error) {
	items, err := s.singular(fd, rules.GetRepeated().GetItems())
	if err != nil {
		return nil, err
	}
	out := obj{"type": "array", "items": items}
	applyRepeatedRules(out, rules)
	return out, nil
}

// singular is the schema of one value of fd's type (an element, for a
// repeated field), with rules applied.
func (s *schemas) singular(fd protoreflect.FieldDescriptor, rules *validate.FieldRules) (obj, error) {
	var out obj
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if wk := wellKnown(fd.Message()); wk != nil {
			out = wk
		} else {
			out = s.ref(fd.Message())
		}
	case protoreflect.EnumKind:
		out = enumSchema(fd.Enum())
	default:
		out = scalarSchema(fd.Kind())
	}
	if err := applyRules(out, fd, rules); err != nil {
		return nil, err
	}
	return out, nil
}

// scalarSchema is the protojson form of a scalar kind: 64-bit integers are
// strings, bytes are base64.
func scalarSchema(k protoreflect.Kind) obj {
	switch k {
	case protoreflect.BoolKind:
		return obj{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return obj{"type": "integer", "format": "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return obj{"type": "integer", "format": "int64", "minimum": 0, "maximum": uint64(1<<32 - 1)}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return obj{"type": "string", "format": "int64", "pattern": `^-?[0-9]+$`}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return obj{"type": "string", "format": "uint64", "pattern": `^[0-9]+$`}
	case protoreflect.FloatKind:
		return obj{"type": "number", "format": "float"}
	case protoreflect.DoubleKind:
		return obj{"type": "number", "format": "double"}
	case protoreflect.BytesKind:
		return obj{"type": "string", "contentEncoding": "base64"}
	}
	return obj{"type": "string"}
}

// enumSchema lists an enum's value names, as protojson writes them.
func enumSchema(ed protoreflect.EnumDescriptor) obj {
	values := ed.Values()
	names := make([]any, 0, values.Len())
	for i := range values.Len() {
		names = append(names, string(values.Get(i).Name()))
	}
	return obj{"type": "string", "enum": names}
}

// durationPattern is protojson's Duration: seconds with up to 9 decimals.
const durationPattern = `^-?[0-9]+(\.[0-9]{1,9})?s$`

// wellKnown is the schema of a well-known type that protojson writes in a
// special form, or nil for an ordinary message.
func wellKnown(md protoreflect.MessageDescriptor) obj {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return obj{"type": "string", "format": "date-time"}
	case "google.protobuf.Duration":
		return obj{"type": "string", "pattern": durationPattern, "description": `A duration in seconds with an "s" suffix, such as "3600s".`}
	case "google.protobuf.FieldMask":
		return obj{"type": "string", "description": "Field paths in lowerCamelCase, separated by commas, such as \"title,body\"."}
	case "google.protobuf.Empty":
		return obj{"type": "object"}
	case "google.protobuf.Struct":
		return obj{"type": "object", "additionalProperties": true}
	case "google.protobuf.Value":
		return obj{}
	case "google.protobuf.ListValue":
		return obj{"type": "array"}
	case "google.protobuf.Any":
		return obj{"$ref": refPrefix + anySchema}
	case "google.protobuf.StringValue":
		return obj{"type": "string"}
	case "google.protobuf.BytesValue":
		return scalarSchema(protoreflect.BytesKind)
	case "google.protobuf.BoolValue":
		return scalarSchema(protoreflect.BoolKind)
	case "google.protobuf.Int32Value":
		return scalarSchema(protoreflect.Int32Kind)
	case "google.protobuf.UInt32Value":
		return scalarSchema(protoreflect.Uint32Kind)
	case "google.protobuf.Int64Value":
		return scalarSchema(protoreflect.Int64Kind)
	case "google.protobuf.UInt64Value":
		return scalarSchema(protoreflect.Uint64Kind)
	case "google.protobuf.FloatValue":
		return scalarSchema(protoreflect.FloatKind)
	case "google.protobuf.DoubleValue":
		return scalarSchema(protoreflect.DoubleKind)
	}
	return nil
}

// scalarWellKnown reports whether protojson writes md as one JSON scalar,
// so that it can stand in a path or query parameter.
func scalarWellKnown(md protoreflect.MessageDescriptor) bool {
	wk := wellKnown(md)
	if wk == nil {
		return false
	}
	t, _ := wk["type"].(string)
	return t != "" && t != "object" && t != "array"
}

// wholeBody is the request body of body "*": the request message minus
// the fields bound by the path.
func (s *schemas) wholeBody(in protoreflect.MessageDescriptor, bound map[string]bool) (obj, error) {
	var sch obj
	if len(bound) == 0 {
		sch = s.ref(in)
	} else {
		for p := range bound {
			if strings.Contains(p, ".") {
				return nil, fmt.Errorf("body \"*\" with the nested path variable %s is not supported", p)
			}
		}
		var err error
		if sch, err = s.message(in, bound); err != nil {
			return nil, err
		}
	}
	return obj{"required": hasRequired(in, bound), "content": obj{"application/json": obj{"schema": sch}}}, nil
}

// fieldBody is the request body of body "field": that field's value.
func (s *schemas) fieldBody(in protoreflect.MessageDescriptor, name string) (obj, error) {
	fd := in.Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		return nil, fmt.Errorf("body names %q, which %s does not have", name, in.FullName())
	}
	sch, err := s.field(fd)
	if err != nil {
		return nil, fmt.Errorf("body %s: %w", name, err)
	}
	return obj{"required": isRequired(fd), "content": obj{"application/json": obj{"schema": sch}}}, nil
}

// response is the 200 response: the response message, or its field named
// by response_body.
func (s *schemas) response(out protoreflect.MessageDescriptor, field string) (obj, error) {
	sch := s.ref(out)
	if field != "" {
		fd := out.Fields().ByName(protoreflect.Name(field))
		if fd == nil {
			return nil, fmt.Errorf("response_body names %q, which %s does not have", field, out.FullName())
		}
		var err error
		if sch, err = s.field(fd); err != nil {
			return nil, err
		}
	}
	return obj{"description": "OK", "content": obj{"application/json": obj{"schema": sch}}}, nil
}

// queryParams are the fields of in that neither the path nor the body
// binds, as query parameters named by their JSON paths. Message fields are
// followed to their scalar fields; maps and repeated messages cannot be
// written in a query and are an error.
func (s *schemas) queryParams(in protoreflect.MessageDescriptor, bound map[string]bool) ([]any, error) {
	var out []any
	err := s.collectQuery(in, "", "", bound, 0, &out)
	return out, err
}

func (s *schemas) collectQuery(md protoreflect.MessageDescriptor, protoPrefix, jsonPrefix string, bound map[string]bool, depth int, out *[]any) error {
	if depth > maxQueryDepth {
		return fmt.Errorf("query parameters nest deeper than %d messages at %s", maxQueryDepth, protoPrefix)
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		protoPath, jsonPath := protoPrefix+string(fd.Name()), jsonPrefix+fd.JSONName()
		if bound[protoPath] {
			continue
		}
		if fd.IsMap() || (fd.IsList() && fd.Message() != nil && !scalarWellKnown(fd.Message())) {
			return fmt.Errorf("field %s cannot be a query parameter: bind it with body", protoPath)
		}
		if fd.Message() != nil && !fd.IsList() && !scalarWellKnown(fd.Message()) {
			if err := s.collectQuery(fd.Message(), protoPath+".", jsonPath+".", bound, depth+1, out); err != nil {
				return err
			}
			continue
		}
		sch, err := s.field(fd)
		if err != nil {
			return fmt.Errorf("field %s: %w", protoPath, err)
		}
		p := obj{"name": jsonPath, "in": "query", "schema": sch}
		if isRequired(fd) {
			p["required"] = true
		}
		*out = append(*out, p)
	}
	return nil
}

// hasRequired reports whether md has a required field outside skip.
func hasRequired(md protoreflect.MessageDescriptor, skip map[string]bool) bool {
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); !skip[string(fd.Name())] && isRequired(fd) {
			return true
		}
	}
	return false
}

// statusSchema and anySchema name the error body's component schemas.
const (
	statusSchema = "Status"
	anySchema    = "Any"
)

// statusSchemaObject is google.rpc.Status in JSON, which the REST gateway
// writes for every error.
func statusSchemaObject() obj {
	return obj{
		"type":        "object",
		"description": "An error, as google.rpc.Status in JSON. The message is safe to show and never contains internals.",
		"required":    []any{"code"},
		"properties": obj{
			"code": obj{"type": "integer", "format": "int32", "description": "The Connect and gRPC code number: " +
				"3 invalid_argument, 5 not_found, 7 permission_denied, 8 resource_exhausted, 13 internal, 16 unauthenticated."},
			"message": obj{"type": "string"},
			"details": obj{"type": "array", "items": obj{"$ref": refPrefix + anySchema}},
		},
	}
}

// anySchemaObject is google.protobuf.Any in JSON: the message's fields
// next to its type URL.
func anySchemaObject() obj {
	return obj{
		"type":                 "object",
		"description":          "A message of the type that @type names (type.googleapis.com/<full name>), its fields next to @type.",
		"required":             []any{"@type"},
		"properties":           obj{"@type": obj{"type": "string"}},
		"additionalProperties": true,
	}
}
