package policy_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// markdown renders table and returns the lines of its Markdown table.
func markdown(t *testing.T, table *policy.Table) (doc string, rows []string) {
	t.Helper()
	var b bytes.Buffer
	if err := policy.WriteMarkdown(&b, table); err != nil {
		t.Fatalf("WriteMarkdown() error = %v, want nil", err)
	}
	for line := range strings.Lines(b.String()) {
		if strings.HasPrefix(line, "|") {
			rows = append(rows, strings.TrimSuffix(line, "\n"))
		}
	}
	return b.String(), rows
}

func TestWriteMarkdown_rows(t *testing.T) {
	t.Parallel()
	sd := testService(t, nil,
		// Declared out of order: rows are sorted by procedure.
		method{"Zap", &policyv1.Policy{
			Roles:     []string{"admin"},
			RateLimit: rateLimit(100, durationpb.New(90*time.Second), policyv1.RateLimitKey_RATE_LIMIT_KEY_USER),
		}},
		method{"Open", &policyv1.Policy{
			Public:    true,
			RateLimit: rateLimit(10, durationpb.New(30*time.Second), policyv1.RateLimitKey_RATE_LIMIT_KEY_IP),
			Audit:     true,
		}},
		method{"Write", &policyv1.Policy{
			Roles:  []string{"member"},
			Scopes: []string{"things:read", "things:write"},
			Ownership: &policyv1.Ownership{
				IdField: "inner.id", Resource: "thing", Access: policyv1.Access_ACCESS_WRITE,
				BypassRoles: []string{"admin", "member"},
			},
			RateLimit: rateLimit(5, durationpb.New(time.Hour), policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH),
			Audit:     true,
		}},
		method{"Read", &policyv1.Policy{
			Roles:     []string{"viewer", "member"},
			Scopes:    []string{"things:read"},
			Ownership: &policyv1.Ownership{IdField: "id", Resource: "thing", Access: policyv1.Access_ACCESS_READ},
		}},
		method{"Own", &policyv1.Policy{
			Roles:     []string{"member"},
			Ownership: &policyv1.Ownership{IdField: "id", Resource: "thing", Access: policyv1.Access_ACCESS_OWNER},
		}},
	)
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd}, policy.WithRoles("admin", "member", "viewer", "auditor"))
	if err != nil {
		t.Fatalf("NewTable() error = %v, want nil", err)
	}
	_, got := markdown(t, table)
	want := []string{
		"| Procedure | Public | admin | member | viewer | auditor | Scopes (API keys) | Ownership | Rate limit | Audit |",
		"|:--|:-:|:-:|:-:|:-:|:-:|:--|:--|:--|:-:|",
		"| `/test.v1.TestService/Open` | ✓ | ✓ | ✓ | ✓ | ✓ | – | – | 10 / 30s per IP | ✓ |",
		"| `/test.v1.TestService/Own` | – | – | ✓ | – | – | – | `id` → thing, owner | – | – |",
		"| `/test.v1.TestService/Read` | – | – | ✓ | ✓ | – | `things:read` | `id` → thing, read | – | – |",
		"| `/test.v1.TestService/Write` | – | – | ✓ | – | – | `things:read`, `things:write` | `inner.id` → thing, write; bypass: admin, member | 5 / 1h per user and per IP | ✓ |",
		"| `/test.v1.TestService/Zap` | – | ✓ | – | – | – | – | – | 100 / 1m30s per user | – |",
	}
	if !slices.Equal(got, want) {
		t.Errorf("table rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWriteMarkdown_rolesFromRules: without WithRoles, the role columns are
// every role the rules name, bypass roles included, sorted.
func TestWriteMarkdown_rolesFromRules(t *testing.T) {
	t.Parallel()
	sd := testService(t, nil,
		method{"A", &policyv1.Policy{Roles: []string{"zeta", "beta"}}},
		method{"B", &policyv1.Policy{Roles: []string{"beta"}, Ownership: &policyv1.Ownership{
			IdField: "id", Resource: "thing", Access: policyv1.Access_ACCESS_READ, BypassRoles: []string{"alpha"},
		}}},
	)
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd})
	if err != nil {
		t.Fatalf("NewTable() error = %v, want nil", err)
	}
	_, rows := markdown(t, table)
	if got, want := rows[0], "| Procedure | Public | alpha | beta | zeta | Scopes (API keys) | Ownership | Rate limit | Audit |"; got != want {
		t.Errorf("header = %q, want %q", got, want)
	}
}

// TestWriteMarkdown_escapesPipes: a name with a pipe stays in its cell, so
// every row has as many cells as the header.
func TestWriteMarkdown_escapesPipes(t *testing.T) {
	t.Parallel()
	sd := testService(t, nil,
		method{"A", &policyv1.Policy{Roles: []string{"a|b"}, Scopes: []string{"x|y"}}},
	)
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{sd})
	if err != nil {
		t.Fatalf("NewTable() error = %v, want nil", err)
	}
	_, rows := markdown(t, table)
	cells := func(row string) int {
		return strings.Count(row, "|") - strings.Count(row, `\|`) - 1
	}
	for _, row := range rows {
		if got, want := cells(row), cells(rows[1]); got != want {
			t.Errorf("row %q has %d cells, want %d", row, got, want)
		}
	}
	if !strings.Contains(rows[0], `| a\|b |`) || !strings.Contains(rows[2], "`x\\|y`") {
		t.Errorf("rows = %q, want the pipes in a|b and x|y escaped", rows)
	}
}

// TestWriteMarkdown_realServices: the document explains the semantics, has
// a row per procedure, and is the same bytes however the table was built.
func TestWriteMarkdown_realServices(t *testing.T) {
	t.Parallel()
	doc, rows := markdown(t, realTable(t))
	for _, want := range []string{"any-of", "all-of", "API keys", "unscoped", "`unauthenticated`", "`permission_denied`", "`not_found`", "`resource_exhausted`"} {
		if !strings.Contains(doc, want) {
			t.Errorf("document does not mention %s", want)
		}
	}
	if got, want := len(rows)-2, len(realTable(t).Rules()); got != want {
		t.Errorf("got %d procedure rows, want %d", got, want)
	}

	reversed := slices.Clone(realServices())
	slices.Reverse(reversed)
	table, err := policy.NewTable(reversed, policy.WithRoles(knownRoles...), policy.WithScopes(knownScopes...))
	if err != nil {
		t.Fatalf("NewTable(reversed) error = %v, want nil", err)
	}
	if again, _ := markdown(t, table); again != doc {
		t.Errorf("document of the services in reverse order differs:\n%s\nwant:\n%s", again, doc)
	}
}

type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteMarkdown_writeError(t *testing.T) {
	t.Parallel()
	if err := policy.WriteMarkdown(failingWriter{}, realTable(t)); !errors.Is(err, errWrite) {
		t.Errorf("WriteMarkdown(failing writer) error = %v, want %v", err, errWrite)
	}
}
