// Package policy reads the guard.policy.v1 options declared on RPCs into a
// table that the other interceptors consult on every call.
//
// The table is built once, at startup, from service descriptors. Building it
// fails, naming the method, when an RPC has no policy or a policy that
// cannot be enforced, so a server with a gap in its policy never starts.
// At request time a lookup is a map read.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"
	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Rule is the enforced form of one method's policy.
type Rule struct {
	// Procedure is the Connect procedure, "/pkg.Service/Method".
	Procedure string
	// Public methods need no credential.
	Public bool
	// Roles: the caller needs at least one.
	Roles []string
	// Scopes: a scoped credential needs all of them.
	Scopes []string
	// Ownership is nil when the method checks no resource.
	Ownership *Ownership
	// RateLimit is nil when the method has no limit of its own.
	RateLimit *RateLimit
	// Audit records every call.
	Audit bool
}

// Ownership is a per-resource check.
type Ownership struct {
	// Field is the path from the request message to the id field.
	Field []protoreflect.FieldDescriptor
	// Resource is the kind of resource, such as "note".
	Resource string
	// Access is the level the caller needs.
	Access policyv1.Access
	// BypassRoles skip the check.
	BypassRoles []string
}

// ResourceID reads the resource id from a request message. It returns ""
// when an intermediate message is unset.
func (o *Ownership) ResourceID(msg protoreflect.Message) string {
	for _, fd := range o.Field[:len(o.Field)-1] {
		if !msg.Has(fd) {
			return ""
		}
		msg = msg.Get(fd).Message()
	}
	return msg.Get(o.Field[len(o.Field)-1]).String()
}

// RateLimit is a budget of calls.
type RateLimit struct {
	Requests int
	Window   time.Duration
	Key      policyv1.RateLimitKey
}

// ErrNoPolicy is the refusal for a procedure the table does not know: a
// call the table cannot vouch for is denied.
func ErrNoPolicy() *connect.Error {
	return connect.NewError(connect.CodePermissionDenied, errNoPolicy)
}

var errNoPolicy = errors.New("no access policy for this procedure")

// Table maps procedures to rules.
type Table struct {
	rules  map[string]*Rule
	inputs []protoreflect.MessageDescriptor
	// roles are the names given to WithRoles, in that order, or else every
	// role the rules name, sorted; WriteMarkdown gives each a column.
	roles []string
}

// NewTable reads the policy of every method of services. The error lists
// every method whose policy is missing or unenforceable.
func NewTable(services []protoreflect.ServiceDescriptor, opts ...Option) (*Table, error) {
	cfg := config{}
	for _, o := range opts {
		o.apply(&cfg)
	}
	t := &Table{rules: make(map[string]*Rule)}
	var errs []error
	for i, sd := range services {
		if sd == nil {
			// A misspelt name in Services().ByName gives nil.
			errs = append(errs, fmt.Errorf("service %d of %d is nil: look its descriptor up again", i+1, len(services)))
			continue
		}
		def, _ := proto.GetExtension(sd.Options(), policyv1.E_Service).(*policyv1.Policy)
		methods := sd.Methods()
		for j := range methods.Len() {
			md := methods.Get(j)
			p, _ := proto.GetExtension(md.Options(), policyv1.E_Method).(*policyv1.Policy)
			if p == nil {
				p = def
			}
			if p == nil {
				errs = append(errs, fmt.Errorf("method %s has no policy: add option (guard.policy.v1.method) or a service default", md.FullName()))
				continue
			}
			r, err := newRule(md, p, &cfg)
			if err != nil {
				errs = append(errs, fmt.Errorf("method %s: %w", md.FullName(), err))
				continue
			}
			t.rules[r.Procedure] = r
			t.inputs = append(t.inputs, md.Input())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	t.roles = cfg.roles
	if t.roles == nil {
		for _, r := range t.rules {
			t.roles = append(t.roles, r.Roles...)
			if r.Ownership != nil {
				t.roles = append(t.roles, r.Ownership.BypassRoles...)
			}
		}
		slices.Sort(t.roles)
		t.roles = slices.Compact(t.roles)
	}
	return t, nil
}

// Lookup returns the rule for a procedure. A procedure without a rule must
// be denied.
func (t *Table) Lookup(procedure string) (*Rule, bool) {
	r, ok := t.rules[procedure]
	return r, ok
}

// Rules returns every rule, sorted by procedure.
func (t *Table) Rules() []*Rule {
	out := make([]*Rule, 0, len(t.rules))
	for _, r := range t.rules {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Rule) int { return strings.Compare(a.Procedure, b.Procedure) })
	return out
}

// Inputs returns the request message of every method, so that work per
// message type (such as compiling validation rules) can be done at startup.
func (t *Table) Inputs() []protoreflect.MessageDescriptor {
	return slices.Clone(t.inputs)
}

// Resources returns the resource kinds that ownership rules name.
func (t *Table) Resources() []string {
	var out []string
	for _, r := range t.rules {
		if r.Ownership != nil && !slices.Contains(out, r.Ownership.Resource) {
			out = append(out, r.Ownership.Resource)
		}
	}
	slices.Sort(out)
	return out
}

func newRule(md protoreflect.MethodDescriptor, p *policyv1.Policy, cfg *config) (*Rule, error) {
	r := &Rule{
		Procedure: "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		Public:    p.GetPublic(),
		Roles:     slices.Clone(p.GetRoles()),
		Scopes:    slices.Clone(p.GetScopes()),
		Audit:     p.GetAudit(),
	}
	switch {
	case r.Public && (len(r.Roles) > 0 || len(r.Scopes) > 0 || p.GetOwnership() != nil):
		return nil, errors.New("a public policy cannot also require roles, scopes or ownership")
	case !r.Public && len(r.Roles) == 0:
		return nil, errors.New("policy must be public or name at least one role")
	}
	if err := checkNames("role", r.Roles, cfg.roles); err != nil {
		return nil, err
	}
	if err := checkNames("scope", r.Scopes, cfg.scopes); err != nil {
		return nil, err
	}
	if o := p.GetOwnership(); o != nil {
		own, err := newOwnership(md.Input(), o)
		if err != nil {
			return nil, err
		}
		if err := checkNames("role", own.BypassRoles, cfg.roles); err != nil {
			return nil, err
		}
		r.Ownership = own
	}
	if rl := p.GetRateLimit(); rl != nil {
		lim, err := newRateLimit(rl)
		if err != nil {
			return nil, err
		}
		if r.Public && lim.Key != policyv1.RateLimitKey_RATE_LIMIT_KEY_IP {
			return nil, errors.New("a public method can only be rate limited per IP")
		}
		r.RateLimit = lim
	}
	return r, nil
}

func newOwnership(input protoreflect.MessageDescriptor, o *policyv1.Ownership) (*Ownership, error) {
	if o.GetResource() == "" {
		return nil, errors.New("ownership needs a resource kind")
	}
	if o.GetAccess() == policyv1.Access_ACCESS_UNSPECIFIED {
		return nil, errors.New("ownership needs an access level")
	}
	if _, ok := policyv1.Access_name[int32(o.GetAccess())]; !ok {
		return nil, fmt.Errorf("unknown access level %d", o.GetAccess())
	}
	path, err := fieldPath(input, o.GetIdField())
	if err != nil {
		return nil, fmt.Errorf("ownership id_field: %w", err)
	}
	return &Ownership{
		Field:       path,
		Resource:    o.GetResource(),
		Access:      o.GetAccess(),
		BypassRoles: slices.Clone(o.GetBypassRoles()),
	}, nil
}

// fieldPath resolves "a.b.c" to fields: every step but the last a singular
// message, the last a singular string.
func fieldPath(md protoreflect.MessageDescriptor, path string) ([]protoreflect.FieldDescriptor, error) {
	if path == "" {
		return nil, errors.New("empty field path")
	}
	names := strings.Split(path, ".")
	out := make([]protoreflect.FieldDescriptor, 0, len(names))
	for i, name := range names {
		fd := md.Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return nil, fmt.Errorf("%s has no field %q", md.FullName(), name)
		}
		if fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("field %q is repeated", name)
		}
		last := i == len(names)-1
		switch {
		case last && fd.Kind() != protoreflect.StringKind:
			return nil, fmt.Errorf("field %q is not a string", name)
		case !last && fd.Message() == nil:
			return nil, fmt.Errorf("field %q is not a message", name)
		}
		out = append(out, fd)
		md = fd.Message()
	}
	return out, nil
}

func newRateLimit(rl *policyv1.RateLimit) (*RateLimit, error) {
	w := rl.GetWindow()
	if err := w.CheckValid(); err != nil || w.AsDuration() <= 0 {
		return nil, errors.New("rate_limit needs a positive window")
	}
	if rl.GetRequests() == 0 {
		return nil, errors.New("rate_limit needs requests > 0")
	}
	if _, ok := policyv1.RateLimitKey_name[int32(rl.GetKey())]; !ok || rl.GetKey() == policyv1.RateLimitKey_RATE_LIMIT_KEY_UNSPECIFIED {
		return nil, errors.New("rate_limit needs a key: user, ip or both")
	}
	return &RateLimit{Requests: int(rl.GetRequests()), Window: w.AsDuration(), Key: rl.GetKey()}, nil
}

func checkNames(kind string, got, known []string) error {
	for _, n := range got {
		if n == "" {
			return fmt.Errorf("empty %s name", kind)
		}
		if known == nil {
			continue
		}
		if !slices.Contains(known, n) {
			return fmt.Errorf("unknown %s %q (known: %s)", kind, n, strings.Join(known, ", "))
		}
	}
	return nil
}
