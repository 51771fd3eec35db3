// Package openapi writes an OpenAPI 3.1 document for the REST routes that
// the google.api.http annotations give the RPCs of Connect services.
//
// Paths, parameters and bodies come from the annotations; schemas from the
// request and response messages in their protojson form, with the
// protovalidate rules that JSON Schema can express; security, roles,
// ownership, rate limits and audit from the policy table. The output is
// the same bytes on every run, so it can be committed and checked for
// staleness.
//
// The generated Go descriptors carry no source comments, so operations and
// schemas have no prose from the .proto files: descriptions say only what
// the policy and the validation rules say.
package openapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/connectguard/guard/interceptors/policy"
	"go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Info describes the API as a whole, for the document's info and servers.
type Info struct {
	// Title names the API.
	Title string
	// Version is the version of the API the document describes.
	Version string
	// Description introduces the API; empty for none.
	Description string
	// Server is the base URL the routes are served under.
	Server string
}

// obj is a JSON object of the document. YAML encoding sorts its keys, which
// makes the output deterministic.
type obj = map[string]any

// Write writes the OpenAPI document of the REST routes of services as YAML.
// Every method of services must have a google.api.http rule and a rule in
// table; the error names each one that does not, or whose rule cannot be
// mapped.
func Write(w io.Writer, services []protoreflect.ServiceDescriptor, table *policy.Table, info Info) error {
	doc, err := build(services, table, info)
	if err != nil {
		return err
	}
	top, err := ordered(doc, topLevel)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(top); err != nil {
		return fmt.Errorf("openapi: encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("openapi: encode YAML: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("openapi: write: %w", err)
	}
	return nil
}

// topLevel is the order of the document's fields, as the specification
// lists them; every object below them has its keys sorted.
var topLevel = []string{"openapi", "info", "servers", "tags", "paths", "components"}

// ordered is doc as a YAML mapping with keys in the order given.
func ordered(doc obj, keys []string) (*yaml.Node, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		var v yaml.Node
		if err := v.Encode(doc[k]); err != nil {
			return nil, fmt.Errorf("openapi: encode %s: %w", k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &v)
	}
	return n, nil
}

// build assembles the document.
func build(services []protoreflect.ServiceDescriptor, table *policy.Table, info Info) (obj, error) {
	s := newSchemas()
	paths := obj{}
	shapes := routes{}
	var tags []any
	var errs []error
	for i, sd := range services {
		if sd == nil {
			errs = append(errs, fmt.Errorf("service %d of %d is nil", i+1, len(services)))
			continue
		}
		tags = append(tags, obj{"name": string(sd.Name()), "description": "Connect service " + string(sd.FullName())})
		methods := sd.Methods()
		for j := range methods.Len() {
			if err := addMethod(paths, shapes, s, table, methods.Get(j)); err != nil {
				errs = append(errs, fmt.Errorf("method %s: %w", methods.Get(j).FullName(), err))
			}
		}
	}
	// The error details that clients read: which rules a request broke,
	// and when to retry.
	s.ref((&validate.Violations{}).ProtoReflect().Descriptor())
	s.ref((&errdetails.RetryInfo{}).ProtoReflect().Descriptor())
	schemas, err := s.components()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	schemas[statusSchema] = statusSchemaObject()
	schemas[anySchema] = anySchemaObject()
	infoObj := obj{"title": info.Title, "version": info.Version}
	if info.Description != "" {
		infoObj["description"] = info.Description
	}
	return obj{
		"openapi": "3.1.0",
		"info":    infoObj,
		"servers": []any{obj{"url": info.Server}},
		"tags":    tags,
		"paths":   paths,
		"components": obj{
			"schemas":         schemas,
			"responses":       errorResponses(),
			"securitySchemes": securitySchemes(),
		},
	}, nil
}

// addMethod adds the operations of md's google.api.http rule (and its
// additional bindings) to paths.
func addMethod(paths obj, shapes routes, s *schemas, table *policy.Table, md protoreflect.MethodDescriptor) error {
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return errors.New("streaming methods have no REST route")
	}
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if rule == nil || rule.GetPattern() == nil {
		return errors.New("no google.api.http rule")
	}
	procedure := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	pol, ok := table.Lookup(procedure)
	if !ok {
		return errors.New("no policy in the table")
	}
	id := string(md.Parent().Name()) + "_" + string(md.Name())
	bindings := append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...)
	for i, b := range bindings {
		opID := id
		if i > 0 {
			opID = fmt.Sprintf("%s_%d", id, i)
		}
		if err := addBinding(paths, shapes, s, md, b, pol, opID); err != nil {
			return err
		}
	}
	return nil
}

// addBinding adds one operation: one HTTP method on one path.
func addBinding(paths obj, shapes routes, s *schemas, md protoreflect.MethodDescriptor, rule *annotations.HttpRule, pol *policy.Rule, opID string) error {
	method, template, err := verbAndTemplate(rule)
	if err != nil {
		return err
	}
	parsed, err := parseTemplate(template, md.Input())
	if err != nil {
		return err
	}
	r := shapes.canonical(parsed)
	op, err := operation(s, md, rule, r, pol)
	if err != nil {
		return err
	}
	op["operationId"] = opID
	item, _ := paths[r.path()].(obj)
	if item == nil {
		item = obj{}
		paths[r.path()] = item
	}
	if _, dup := item[method]; dup {
		return fmt.Errorf("%s %s is already the route of another method", strings.ToUpper(method), template)
	}
	item[method] = op
	return nil
}

// verbAndTemplate returns the OpenAPI method name and the path template.
func verbAndTemplate(rule *annotations.HttpRule) (method, template string, err error) {
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "get", p.Get, nil
	case *annotations.HttpRule_Post:
		return "post", p.Post, nil
	case *annotations.HttpRule_Put:
		return "put", p.Put, nil
	case *annotations.HttpRule_Patch:
		return "patch", p.Patch, nil
	case *annotations.HttpRule_Delete:
		return "delete", p.Delete, nil
	case *annotations.HttpRule_Custom:
		return "", "", fmt.Errorf("custom HTTP method %q has no OpenAPI 3.1 operation", p.Custom.GetKind())
	}
	return "", "", errors.New("google.api.http rule without a method")
}

// operation builds the operation object of one binding.
func operation(s *schemas, md protoreflect.MethodDescriptor, rule *annotations.HttpRule, r route, pol *policy.Rule) (obj, error) {
	in := md.Input()
	params := make([]any, 0, len(r.vars))
	for _, v := range r.vars {
		sch, err := s.field(v.fields[len(v.fields)-1])
		if err != nil {
			return nil, err
		}
		p := obj{"name": v.name, "in": "path", "required": true, "schema": sch}
		if v.name != v.path {
			p["description"] = "Binds the request field " + v.path + "."
		}
		params = append(params, p)
	}
	bound := map[string]bool{}
	for _, v := range r.vars {
		bound[v.path] = true
	}
	body := rule.GetBody()
	op := obj{
		"tags":              []any{string(md.Parent().Name())},
		"description":       policyDescription(pol),
		"x-guard-procedure": pol.Procedure,
	}
	if d := messageRulesDescription(in); d != "" && body != "*" {
		// The request message has no schema here to carry them: its
		// fields are parameters, or one of them is the body.
		describe(op, "Request rules: "+d)
	}
	switch body {
	case "*":
		reqBody, err := s.wholeBody(in, bound)
		if err != nil {
			return nil, err
		}
		op["requestBody"] = reqBody
	default:
		if body != "" {
			reqBody, err := s.fieldBody(in, body)
			if err != nil {
				return nil, err
			}
			op["requestBody"] = reqBody
			bound[body] = true
		}
		query, err := s.queryParams(in, bound)
		if err != nil {
			return nil, err
		}
		params = append(params, query...)
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	resp, err := s.response(md.Output(), rule.GetResponseBody())
	if err != nil {
		return nil, err
	}
	op["responses"] = responses(resp, pol, len(r.vars) > 0)
	addPolicy(op, pol)
	return op, nil
}

// policyDescription says in words what the policy extensions say.
func policyDescription(p *policy.Rule) string {
	if p.Public {
		return "Public: no credential is needed."
	}
	parts := []string{"Roles (any of): " + strings.Join(p.Roles, ", ") + "."}
	if len(p.Scopes) > 0 {
		parts = append(parts, "An API key needs the scopes (all of): "+strings.Join(p.Scopes, ", ")+".")
	}
	if o := p.Ownership; o != nil {
		s := fmt.Sprintf("The caller needs %s access to the %s named by %s; a %s the caller may not see is not_found.",
			policy.AccessName(o.Access), o.Resource, fieldPath(o.Field), o.Resource)
		if len(o.BypassRoles) > 0 {
			s += " Roles that bypass this check: " + strings.Join(o.BypassRoles, ", ") + "."
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func fieldPath(fields []protoreflect.FieldDescriptor) string {
	names := make([]string, len(fields))
	for i, fd := range fields {
		names[i] = string(fd.Name())
	}
	return strings.Join(names, ".")
}

// addPolicy sets the operation's security requirements and the x-guard
// extensions from its policy.
func addPolicy(op obj, p *policy.Rule) {
	if p.Public {
		op["security"] = []any{}
	} else {
		op["security"] = []any{
			obj{"bearer": []any{}},
			obj{"apiKey": strs(p.Scopes)},
			obj{"cookie": []any{}},
		}
		op["x-guard-roles"] = strs(p.Roles)
	}
	if o := p.Ownership; o != nil {
		own := obj{"field": fieldPath(o.Field), "resource": o.Resource, "access": policy.AccessName(o.Access)}
		if len(o.BypassRoles) > 0 {
			own["bypassRoles"] = strs(o.BypassRoles)
		}
		op["x-guard-ownership"] = own
	}
	if rl := p.RateLimit; rl != nil {
		op["x-guard-rate-limit"] = obj{"requests": rl.Requests, "window": durationString(rl.Window.Nanoseconds()), "key": rateLimitKey(rl)}
	}
	if p.Audit {
		op["x-guard-audit"] = true
	}
}

func rateLimitKey(rl *policy.RateLimit) string {
	name := strings.TrimPrefix(rl.Key.String(), "RATE_LIMIT_KEY_")
	return strings.ToLower(name)
}

// strs makes a YAML sequence of names, empty rather than null when there
// are none.
func strs(names []string) []any {
	out := make([]any, 0, len(names))
	for _, n := range names {
		out = append(out, n)
	}
	return out
}

// durationString writes nanoseconds as protojson writes a Duration: "60s",
// "1.5s".
func durationString(nanos int64) string {
	sign := ""
	if nanos < 0 {
		sign, nanos = "-", -nanos
	}
	secs, frac := nanos/1e9, nanos%1e9
	if frac == 0 {
		return fmt.Sprintf("%s%ds", sign, secs)
	}
	return sign + strings.TrimRight(fmt.Sprintf("%d.%09d", secs, frac), "0") + "s"
}
