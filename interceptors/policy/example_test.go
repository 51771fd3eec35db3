package policy_test

import (
	"fmt"
	"os"

	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/interceptors/policy"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func ExampleNewTable() {
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{
		authv1.File_guard_auth_v1_auth_proto.Services().ByName("AuthService"),
		notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService"),
		adminv1.File_guard_admin_v1_admin_proto.Services().ByName("AdminService"),
	}, policy.WithRoles("admin", "member", "viewer"))
	if err != nil {
		fmt.Println(err)
		return
	}

	login, _ := table.Lookup("/guard.auth.v1.AuthService/Login")
	fmt.Println("Login public:", login.Public, "limit:", login.RateLimit.Requests, "per", login.RateLimit.Window, "per IP")

	del, _ := table.Lookup("/guard.notes.v1.NoteService/DeleteNote")
	fmt.Println("DeleteNote roles:", del.Roles, "access:", del.Ownership.Access, "bypass:", del.Ownership.BypassRoles)

	users, _ := table.Lookup("/guard.admin.v1.AdminService/ListUsers")
	fmt.Println("ListUsers roles:", users.Roles, "scopes:", users.Scopes, "audit:", users.Audit)

	// A procedure the table does not know has no rule and must be denied.
	_, ok := table.Lookup("/guard.notes.v1.NoteService/PurgeNotes")
	fmt.Println("PurgeNotes known:", ok)
	// Output:
	// Login public: true limit: 20 per 1m0s per IP
	// DeleteNote roles: [admin member] access: ACCESS_OWNER bypass: [admin]
	// ListUsers roles: [admin] scopes: [admin] audit: true
	// PurgeNotes known: false
}

// ExampleWriteMarkdown documents the policies of a service: what each role
// may call, with which scopes, ownership check, rate limit and audit.
func ExampleWriteMarkdown() {
	table, err := policy.NewTable([]protoreflect.ServiceDescriptor{
		notesv1.File_guard_notes_v1_notes_proto.Services().ByName("NoteService"),
	}, policy.WithRoles("admin", "member", "viewer"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("# NoteService policies")
	fmt.Println()
	if err := policy.WriteMarkdown(os.Stdout, table); err != nil {
		fmt.Println(err)
	}
	// Output:
	// # NoteService policies
	//
	// How to read the table:
	//
	// - **Public**: no credential is needed; anyone may call, so every role column
	//   shows ✓ too. Public is never implied.
	// - **Roles** (one column each) are any-of: a caller holding at least one ✓
	//   role passes; a caller holding none is refused with `permission_denied`.
	//   A call with no credential to a method that is not public is refused with
	//   `unauthenticated`.
	// - **Scopes** are all-of and bind scoped credentials (API keys) only: a key
	//   must carry every scope listed, or the call is refused with
	//   `permission_denied`. A user's own session is unscoped.
	// - **Ownership**: the request field holding the resource id → the kind of
	//   resource, and the access the caller needs on it (read, write or owner).
	//   A caller with no access to the resource gets `not_found`, the same
	//   answer as for a missing id, so hidden resources are not revealed; a caller
	//   who may see it but lacks the access gets `permission_denied`. Bypass
	//   roles skip the check.
	// - **Rate limit**: calls per window, counted per user, per client IP, or
	//   both; beyond it, `resource_exhausted`.
	// - **Audit**: every call is recorded as an audit event, refusals included.
	// - A procedure that is not listed is refused.
	//
	// | Procedure | Public | admin | member | viewer | Scopes (API keys) | Ownership | Rate limit | Audit |
	// |:--|:-:|:-:|:-:|:-:|:--|:--|:--|:-:|
	// | `/guard.notes.v1.NoteService/CreateNote` | – | ✓ | ✓ | – | `notes:write` | – | 120 / 1m per user | – |
	// | `/guard.notes.v1.NoteService/DeleteNote` | – | ✓ | ✓ | – | `notes:write` | `id` → note, owner; bypass: admin | – | ✓ |
	// | `/guard.notes.v1.NoteService/GetNote` | – | ✓ | ✓ | ✓ | `notes:read` | `id` → note, read | – | – |
	// | `/guard.notes.v1.NoteService/ListNotes` | – | ✓ | ✓ | ✓ | `notes:read` | – | – | – |
	// | `/guard.notes.v1.NoteService/ShareNote` | – | ✓ | ✓ | – | `notes:write` | `id` → note, owner | – | ✓ |
	// | `/guard.notes.v1.NoteService/UpdateNote` | – | ✓ | ✓ | – | `notes:write` | `note.id` → note, write | – | – |
}
