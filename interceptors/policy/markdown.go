package policy

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	policyv1 "github.com/connectguard/guard/gen/guard/policy/v1"
)

// WriteMarkdown writes t to w as Markdown, for a service to document its own
// policies: a list saying what the columns mean, then a table with one row
// per procedure, sorted, and a column per role (the names given to
// WithRoles, or else every role the rules name). It writes no title and
// nothing that changes from run to run, so the caller can put it under a
// heading of its own and commit the result as a generated file.
func WriteMarkdown(w io.Writer, t *Table) error {
	var b strings.Builder
	b.WriteString(markdownLegend)
	b.WriteString("\n")

	header := []string{"Procedure", "Public"}
	align := []string{":--", ":-:"}
	for _, role := range t.roles {
		header = append(header, role)
		align = append(align, ":-:")
	}
	header = append(header, "Scopes (API keys)", "Ownership", "Rate limit", "Audit")
	align = append(align, ":--", ":--", ":--", ":-:")
	writeRow(&b, header)
	b.WriteString("|" + strings.Join(align, "|") + "|\n") // not escaped: it is the delimiter row

	for _, r := range t.Rules() {
		cells := []string{codeSpan(r.Procedure), mark(r.Public)}
		for _, role := range t.roles {
			cells = append(cells, mark(r.Public || slices.Contains(r.Roles, role)))
		}
		cells = append(cells, codeSpans(r.Scopes), ownershipCell(r.Ownership), rateLimitCell(r.RateLimit), mark(r.Audit))
		writeRow(&b, cells)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markdownLegend explains the columns; it states what the interceptors
// enforce, so it changes only when they do.
const markdownLegend = `How to read the table:

- **Public**: no credential is needed; anyone may call, so every role column
  shows ✓ too. Public is never implied.
- **Roles** (one column each) are any-of: a caller holding at least one ✓
  role passes; a caller holding none is refused with ` + "`permission_denied`" + `.
  A call with no credential to a method that is not public is refused with
  ` + "`unauthenticated`" + `.
- **Scopes** are all-of and bind scoped credentials (API keys) only: a key
  must carry every scope listed, or the call is refused with
  ` + "`permission_denied`" + `. A user's own session is unscoped.
- **Ownership**: the request field holding the resource id → the kind of
  resource, and the access the caller needs on it (read, write or owner).
  A caller with no access to the resource gets ` + "`not_found`" + `, the same
  answer as for a missing id, so hidden resources are not revealed; a caller
  who may see it but lacks the access gets ` + "`permission_denied`" + `. Bypass
  roles skip the check.
- **Rate limit**: calls per window, counted per user, per client IP, or
  both; beyond it, ` + "`resource_exhausted`" + `.
- **Audit**: every call is recorded as an audit event, refusals included.
- A procedure that is not listed is refused.
`

func writeRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" ")
		b.WriteString(escapeCell(c))
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

// escapeCell keeps a cell in its column: a pipe would end it (even inside a
// code span, in GitHub's tables) and a newline would end the row. Names
// are free text unless WithRoles and WithScopes constrain them.
func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(s)
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "–"
}

func codeSpan(s string) string { return "`" + s + "`" }

func codeSpans(names []string) string {
	if len(names) == 0 {
		return "–"
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = codeSpan(n)
	}
	return strings.Join(out, ", ")
}

func ownershipCell(o *Ownership) string {
	if o == nil {
		return "–"
	}
	path := make([]string, len(o.Field))
	for i, fd := range o.Field {
		path[i] = string(fd.Name())
	}
	s := codeSpan(strings.Join(path, ".")) + " → " + o.Resource + ", " + AccessName(o.Access)
	if len(o.BypassRoles) > 0 {
		s += "; bypass: " + strings.Join(o.BypassRoles, ", ")
	}
	return s
}

// AccessName is the word for an access level in messages and documents:
// read, write or owner.
func AccessName(a policyv1.Access) string {
	switch a {
	case policyv1.Access_ACCESS_READ:
		return "read"
	case policyv1.Access_ACCESS_WRITE:
		return "write"
	case policyv1.Access_ACCESS_OWNER:
		return "owner"
	}
	return a.String()
}

func rateLimitCell(rl *RateLimit) string {
	if rl == nil {
		return "–"
	}
	var key string
	switch rl.Key {
	case policyv1.RateLimitKey_RATE_LIMIT_KEY_USER:
		key = "per user"
	case policyv1.RateLimitKey_RATE_LIMIT_KEY_IP:
		key = "per IP"
	case policyv1.RateLimitKey_RATE_LIMIT_KEY_BOTH:
		key = "per user and per IP"
	default:
		key = rl.Key.String()
	}
	return strconv.Itoa(rl.Requests) + " / " + window(rl.Window) + " " + key
}

// window drops the zero units time.Duration.String prints: "1m", not "1m0s".
func window(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
