package store_test

import (
	"path/filepath"
	"testing"

	"github.com/connectguard/guard/internal/pgtest"
	"github.com/connectguard/guard/store"
)

// engine makes databases of one engine for the tests.
type engine struct {
	name string
	// dsn returns the dsn of a new, empty database.
	dsn func(t *testing.T) string
}

// open opens a new database of e; see openPath.
func (e engine) open(t *testing.T) *store.DB {
	t.Helper()
	return openPath(t, e.dsn(t))
}

// reopen opens the database dsn of e again; see openPath.
func (e engine) reopen(t *testing.T, dsn string) *store.DB {
	t.Helper()
	return openPath(t, dsn)
}

var (
	sqlite = engine{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "guard.db") }}
	// postgres gives each database a schema of its own in the shared
	// server; see package pgtest for how to start one.
	postgres = engine{"postgres", func(t *testing.T) string { return pgtest.URL(t) }}
)

// TestEngines runs the store's tests against each engine: both must
// behave the same.
func TestEngines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(*testing.T, engine)
	}{
		{"DeleteUserCascades", testDeleteUserCascades},
		{"CreateUser", testCreateUser},
		{"UserByEmail", testUserByEmail},
		{"UserByIDNotFound", testUserByIDNotFound},
		{"ListUsers", testListUsers},
		{"NoteAccess", testNoteAccess},
		{"ListReadableNotes", testListReadableNotes},
		{"UpdateNote", testUpdateNote},
		{"DeleteNote", testDeleteNote},
		{"ShareNote", testShareNote},
		{"CreateNoteMissingOwner", testCreateNoteMissingOwner},
		{"Secret", testSecret},
		{"InjectionStoredVerbatim", testInjectionStoredVerbatim},
		{"AuditEvents", testAuditEvents},
		{"AuditChainVerifies", testAuditChainVerifies},
		{"AuditEditedRowCaught", testAuditEditedRowCaught},
		{"AuditDeletedRowCaught", testAuditDeletedRowCaught},
		{"AuditConcurrentAppends", testAuditConcurrentAppends},
		{"AuditPrune", testAuditPrune},
		{"AuditFilters", testAuditFilters},
		{"SigningKeys", testSigningKeys},
		{"Sessions", testSessions},
		{"SessionByCookie", testSessionByCookie},
		{"Touch", testTouch},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"SessionState", testSessionState},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RotateRefreshTokenRace", testRotateRefreshTokenRace},
		{"CreateRefreshToken", testCreateRefreshToken},
		{"DisableUser", testDisableUser},
		{"PasswordHash", testPasswordHash},
		{"SetUserRoles", testSetUserRoles},
		{"APIKeys", testAPIKeys},
		{"CreateAPIKeyInvalid", testCreateAPIKeyInvalid},
		{"RetireSigningKeys", testRetireSigningKeys},
		{"APIKeyLineage", testAPIKeyLineage},
		{"CreateFirstUserRace", testCreateFirstUserRace},
		{"CreateFirstSigningKeyRace", testCreateFirstSigningKeyRace},
		{"ShareNoteRace", testShareNoteRace},
	}
	for _, e := range []engine{sqlite, postgres} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.run(t, e) })
			}
		})
	}
}
