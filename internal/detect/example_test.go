package detect_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/connectguard/guard/internal/detect"
)

func Example() {
	d := detect.New(func(e detect.Event) { fmt.Println(e.Detail) }, detect.WithBlock(15*time.Minute))
	attacker := netip.MustParseAddr("2001:db8:66::1")
	// Failed logins at many accounts from one /64: the tenth distinct
	// account raises one event, and one for the block; the rest none.
	for i := range 30 {
		d.LoginFailed(fmt.Sprintf("user%d@example.com", i), attacker)
	}
	_, blocked := d.NetworkBlocked(netip.MustParseAddr("2001:db8:66::2"))
	fmt.Println(blocked)
	// Output:
	// credential_stuffing: failed logins at 10 distinct accounts from network 2001:db8:66:: within 10m0s
	// blocked network 2001:db8:66:: for 15m0s after credential_stuffing
	// true
}
