package policy_test

import (
	"fmt"

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
