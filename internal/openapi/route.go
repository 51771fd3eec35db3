package openapi

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// route is a google.api.http path template read against a request message.
type route struct {
	// path is the OpenAPI path: the template with each variable as {name}.
	path string
	// vars are the path's variables, in order.
	vars []pathVar
}

// pathVar is one variable of a path template, such as {note.id}.
type pathVar struct {
	// name is the variable as written, "note.id".
	name string
	// path is name, the proto field path from the request message.
	path string
	// fields are the fields along path; the last one is the bound value.
	fields []protoreflect.FieldDescriptor
}

// parseTemplate reads a path template: literal segments and variables
// {field.path} or {field.path=*}. Multi-segment patterns ({name=a/*/b},
// **) have no OpenAPI form and are an error.
func parseTemplate(template string, input protoreflect.MessageDescriptor) (route, error) {
	if !strings.HasPrefix(template, "/") {
		return route{}, fmt.Errorf("path template %q does not start with /", template)
	}
	var r route
	var out strings.Builder
	rest := template
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			out.WriteString(rest)
			break
		}
		out.WriteString(rest[:open])
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return route{}, fmt.Errorf("path template %q has an unclosed {", template)
		}
		v, err := parseVar(rest[open+1:open+end], input)
		if err != nil {
			return route{}, fmt.Errorf("path template %q: %w", template, err)
		}
		r.vars = append(r.vars, v)
		out.WriteString("{" + v.name + "}")
		rest = rest[open+end+1:]
	}
	r.path = out.String()
	return r, nil
}

// parseVar reads the inside of {...}.
func parseVar(s string, input protoreflect.MessageDescriptor) (pathVar, error) {
	name, pattern, hasPattern := strings.Cut(s, "=")
	if hasPattern && pattern != "*" {
		return pathVar{}, fmt.Errorf("variable {%s}: only single-segment variables have an OpenAPI form", s)
	}
	fields, err := resolve(input, name)
	if err != nil {
		return pathVar{}, fmt.Errorf("variable {%s}: %w", s, err)
	}
	return pathVar{name: name, path: name, fields: fields}, nil
}

// resolve finds the fields along a dotted path of proto field names: every
// step but the last a singular message, the last a singular non-message.
func resolve(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	if path == "" {
		return nil, errors.New("empty field path")
	}
	names := strings.Split(path, ".")
	out := make([]protoreflect.FieldDescriptor, 0, len(names))
	for i, n := range names {
		fd := md.Fields().ByName(protoreflect.Name(n))
		if fd == nil {
			return nil, fmt.Errorf("%s has no field %q", md.FullName(), n)
		}
		if fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("field %q is repeated", n)
		}
		last := i == len(names)-1
		switch {
		case last && fd.Message() != nil && !scalarWellKnown(fd.Message()):
			return nil, fmt.Errorf("field %q is a message", n)
		case !last && fd.Message() == nil:
			return nil, fmt.Errorf("field %q is not a message", n)
		}
		out = append(out, fd)
		md = fd.Message()
	}
	return out, nil
}
