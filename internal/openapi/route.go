package openapi

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// route is a google.api.http path template read against a request message.
type route struct {
	// literals are the text around the variables: one more than vars.
	literals []string
	// vars are the path's variables, in order.
	vars []pathVar
}

// pathVar is one variable of a path template, such as {note.id}.
type pathVar struct {
	// name is the path parameter's name: the variable as written, unless
	// another route of the same shape named it first (see routes.canonical).
	name string
	// path is the proto field path from the request message, "note.id".
	path string
	// fields are the fields along path; the last one is the bound value.
	fields []protoreflect.FieldDescriptor
}

// path is the OpenAPI path: the template with each variable as {name}.
func (r route) path() string {
	return r.join(func(v pathVar) string { return "{" + v.name + "}" })
}

// shape is the path with its variables unnamed: OpenAPI takes two paths of
// one shape for the same path, whatever their variables are called.
func (r route) shape() string {
	return r.join(func(pathVar) string { return "{}" })
}

func (r route) join(variable func(pathVar) string) string {
	var b strings.Builder
	for i, lit := range r.literals {
		b.WriteString(lit)
		if i < len(r.vars) {
			b.WriteString(variable(r.vars[i]))
		}
	}
	return b.String()
}

// routes gives the path parameters of every route of one shape the names
// that the first such route gave them: /v1/notes/{id} and
// /v1/notes/{note.id} are one OpenAPI path, and must be written alike.
type routes map[string][]string

// canonical renames r's variables after the first route of its shape.
func (rs routes) canonical(r route) route {
	names, ok := rs[r.shape()]
	if !ok {
		for _, v := range r.vars {
			names = append(names, v.name)
		}
		rs[r.shape()] = names
		return r
	}
	vars := make([]pathVar, len(r.vars))
	for i, v := range r.vars {
		v.name = names[i]
		vars[i] = v
	}
	r.vars = vars
	return r
}

// parseTemplate reads a path template: literal segments and variables
// {field.path} or {field.path=*}. Multi-segment patterns ({name=a/*/b},
// **) have no OpenAPI form and are an error.
func parseTemplate(template string, input protoreflect.MessageDescriptor) (route, error) {
	if !strings.HasPrefix(template, "/") {
		return route{}, fmt.Errorf("path template %q does not start with /", template)
	}
	var r route
	rest := template
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			r.literals = append(r.literals, rest)
			break
		}
		r.literals = append(r.literals, rest[:open])
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return route{}, fmt.Errorf("path template %q has an unclosed {", template)
		}
		v, err := parseVar(rest[open+1:open+end], input)
		if err != nil {
			return route{}, fmt.Errorf("path template %q: %w", template, err)
		}
		r.vars = append(r.vars, v)
		rest = rest[open+end+1:]
	}
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
