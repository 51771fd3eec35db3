package server_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/connectguard/guard/internal/servertest"
)

// TestPprofListener: -pprof-addr serves profiles and expvar on a listener
// of its own, and the API's address serves neither.
func TestPprofListener(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, "-pprof-addr=127.0.0.1:0")
	m := regexp.MustCompile(`msg="serving pprof and expvar" addr=(127\.0\.0\.1:[0-9]+)`).FindStringSubmatch(srv.Logs())
	if m == nil {
		t.Fatalf("no pprof listener in the log:\n%s", srv.Logs())
	}
	res, err := http.Get("http://" + m[1] + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var vars struct {
		Memstats struct{ Mallocs uint64 } `json:"memstats"`
	}
	if err := json.NewDecoder(res.Body).Decode(&vars); err != nil || vars.Memstats.Mallocs == 0 {
		t.Errorf("GET /debug/vars: %v, memstats.Mallocs = %d; want memory statistics", err, vars.Memstats.Mallocs)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/vars"} {
		res, err := srv.HTTPClient().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the API's address: HTTP %d, want 404", path, res.StatusCode)
		}
	}
	if strings.Contains(srv.Logs(), "NO SECURITY") {
		t.Error("a normal build logged bare mode")
	}
}
