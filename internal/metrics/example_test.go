package metrics_test

import (
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/internal/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A procedure outside the table is counted under "unknown": callers never
// choose a label.
func Example() {
	m := metrics.New([]string{"/guard.notes.v1.NoteService/GetNote"})
	m.ObserveCall("/guard.notes.v1.NoteService/GetNote", connect.ProtocolConnect, 0, time.Millisecond)
	m.ObserveCall("/made.Up/Procedure", connect.ProtocolConnect, connect.CodeUnimplemented, time.Millisecond)
	err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP guard_calls_total RPC calls answered, by procedure, protocol and the code the caller received (refusals in the HTTP layer included).
# TYPE guard_calls_total counter
guard_calls_total{code="ok",procedure="/guard.notes.v1.NoteService/GetNote",protocol="connect"} 1
guard_calls_total{code="unimplemented",procedure="unknown",protocol="connect"} 1
`), "guard_calls_total")
	fmt.Println(err)
	// Output: <nil>
}
