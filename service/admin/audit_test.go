package admin_test

import (
	"slices"
	"testing"

	auditv1 "github.com/connectguard/guard/gen/guard/audit/v1"
	"github.com/connectguard/guard/interceptors/audit"
	"github.com/connectguard/guard/service/admin"
)

// TestEventTypesMatchSchema: the event types the code writes and the enum
// of guard.audit.v1 are the same set, so no stored type reads back as
// EVENT_TYPE_UNSPECIFIED and no enum value goes unused.
func TestEventTypesMatchSchema(t *testing.T) {
	t.Parallel()
	for _, typ := range audit.Types() {
		p := admin.TypeToProto(string(typ))
		if p == auditv1.EventType_EVENT_TYPE_UNSPECIFIED {
			t.Errorf("type %q has no EventType", typ)
		}
		if got := admin.TypeFromProto(p); got != string(typ) {
			t.Errorf("TypeFromProto(TypeToProto(%q)) = %q", typ, got)
		}
	}
	values := auditv1.EventType_EVENT_TYPE_UNSPECIFIED.Descriptor().Values()
	for i := range values.Len() {
		v := auditv1.EventType(values.Get(i).Number())
		if v != auditv1.EventType_EVENT_TYPE_UNSPECIFIED && !slices.Contains(audit.Types(), audit.Type(admin.TypeFromProto(v))) {
			t.Errorf("EventType %s is not in audit.Types()", v)
		}
	}
}
