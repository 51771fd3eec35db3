package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/pgtest"
	"github.com/connectguard/guard/internal/redistest"
	"github.com/connectguard/guard/internal/server"
	"github.com/connectguard/guard/internal/servertest"
	"github.com/jackc/pgx/v5"
)

// TestReplicasShareRateLimits builds the server binary and runs two
// replicas of it, A and B, as separate processes sharing one PostgreSQL
// database and one Redis (-redis, under a key prefix of the test's own), and shows
// that a user's budget and a client IP's budget hold across both: calls
// to A spend what B grants, and the call after the budget is refused
// wherever it lands. Each replica alone would have admitted it.
func TestReplicasShareRateLimits(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	client := redistest.Client(t)
	prefix := redistest.Prefix(t, client)
	dir := t.TempDir()
	bin := buildServer(t, dir)
	const userLimit, ipLimit = 5, 6
	flags := []string{
		sharedDatabase(t).flag, "-log-level=debug",
		"-redis=" + redistest.URL, "-redis-prefix=" + prefix + "rl:",
		"-redis-lockout-prefix=" + prefix + "lo:", "-redis-channel=" + prefix + "inv",
		"-user-rate-limit=" + strconv.Itoa(userLimit), "-ip-rate-limit=" + strconv.Itoa(ipLimit),
		"-trusted-proxies=127.0.0.1", // each phase speaks for a client IP of its own
	}
	// A first: it creates the database, the keys and the admin, which B
	// then finds.
	a := startReplica(t, "A", bin, flags)
	b := startReplica(t, "B", bin, flags)
	for _, r := range []*replica{a, b} {
		if !strings.Contains(r.logs.String(), "rate limits kept in redis") {
			t.Fatalf("replica %s does not say it keeps its limits in Redis:\n%s", r.name, r.logs.String())
		}
	}

	admin := replicaLogin(t, a, servertest.AdminEmail, servertest.AdminPassword)
	res, body := call(t, a, "/guard.admin.v1.AdminService/CreateUser", admin, "192.0.2.200",
		`{"email":"alice@example.com","password":"a long test password 1","roles":["member"]}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("CreateUser: HTTP %d %s", res.StatusCode, body)
	}
	alice := replicaLogin(t, b, "alice@example.com", "a long test password 1")

	t.Run("user_budget", func(t *testing.T) {
		// Every call from another IP, so that only the user's budget
		// can refuse.
		for i, r := range []*replica{a, a, a, b, b, b} {
			res, body := call(t, r, "/guard.auth.v1.AuthService/WhoAmI", alice, "192.0.2."+strconv.Itoa(i+1), `{}`)
			if i < userLimit {
				if res.StatusCode != http.StatusOK {
					t.Fatalf("call %d (to %s): HTTP %d %s, want 200", i+1, r.name, res.StatusCode, body)
				}
				if got, want := userRemaining(res), userLimit-i-1; got != want {
					t.Errorf("call %d (to %s): user budget remaining %d, want %d (RateLimit: %q)", i+1, r.name, got, want, res.Header.Values("RateLimit"))
				}
				continue
			}
			if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "resource_exhausted") {
				t.Fatalf("call %d (to %s), beyond the user's budget of %d: HTTP %d %s, want 429 resource_exhausted", i+1, r.name, userLimit, res.StatusCode, body)
			}
		}
	})

	t.Run("ip_budget", func(t *testing.T) {
		const ip = "198.51.100.7"
		for i, r := range []*replica{a, b, a, b, a, b, a} {
			res, body := call(t, r, "/grpc.health.v1.Health/Check", "", ip, `{}`)
			if i < ipLimit && res.StatusCode != http.StatusOK {
				t.Fatalf("call %d (to %s): HTTP %d %s, want 200", i+1, r.name, res.StatusCode, body)
			}
			if i >= ipLimit && res.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("call %d (to %s), beyond the IP's budget of %d: HTTP %d %s, want 429", i+1, r.name, ipLimit, res.StatusCode, body)
			}
		}
	})

	keys, err := redistest.Keys(context.Background(), client, prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "rl:u|", prefix + "rl:ip|198.51.100.7@1m0s"}
	for _, w := range want {
		found := false
		for _, k := range keys {
			found = found || strings.HasPrefix(k, w)
		}
		if !found {
			t.Errorf("no Redis key %s*; keys: %q", w, keys)
		}
	}
}

// buildServer builds the server binary into dir.
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "guard")
	build := exec.Command("go", "build", "-o", bin, "github.com/connectguard/guard/cmd/server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// database is the database the replicas of a test share: its -db flag,
// and a way to count what was written. PostgreSQL, in a schema of the
// test's own (see package pgtest for how to start one).
type database struct {
	flag string
	url  string
}

func sharedDatabase(t *testing.T) database {
	url := pgtest.URL(t)
	return database{flag: "-db=" + url, url: url}
}

// count returns the rows of table that match where ($1... parameters).
func (d database) count(t *testing.T, table, where string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// replica is a server process.
type replica struct {
	name, url    string
	logs, stdout *servertest.Log
}

// startReplica runs the binary with flags on a free loopback port until
// the test ends, and waits until it listens.
func startReplica(t *testing.T, name, bin string, flags []string) *replica {
	t.Helper()
	return startReplicas(t, bin, flags, name)[0]
}

// startReplicas starts one process per name at once, then waits until
// each listens: replicas racing to set up an empty database.
func startReplicas(t *testing.T, bin string, flags []string, names ...string) []*replica {
	t.Helper()
	rs := make([]*replica, len(names))
	listening := make([]chan string, len(names))
	for i, name := range names {
		rs[i], listening[i] = launchReplica(t, name, bin, flags)
	}
	for i, r := range rs {
		select {
		case u, ok := <-listening[i]:
			if !ok {
				t.Fatalf("replica %s exited before listening:\n%s", r.name, r.logs.String())
			}
			r.url = u
		case <-time.After(60 * time.Second):
			t.Fatalf("replica %s did not listen within 60 s:\n%s", r.name, r.logs.String())
		}
	}
	return rs
}

// launchReplica starts the binary, stopped when the test ends; the
// channel gets its base URL once it listens, and is closed if it exits.
func launchReplica(t *testing.T, name, bin string, flags []string) (*replica, chan string) {
	t.Helper()
	r := &replica{name: name, logs: &servertest.Log{}, stdout: &servertest.Log{}}
	cmd := exec.Command(bin, append([]string{"-addr=127.0.0.1:0"}, flags...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"GUARD_ADMIN_EMAIL=" + servertest.AdminEmail,
		"GUARD_ADMIN_PASSWORD=" + servertest.AdminPassword,
	}
	cmd.Stderr = r.logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("replica %s: %v\n%s", r.name, err, r.logs.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("replica %s did not stop within 15 s of SIGINT", r.name)
		}
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(r.stdout, sc.Text())
			if u, ok := strings.CutPrefix(sc.Text(), "guard listening on "); ok {
				listening <- u
			}
		}
		close(listening)
		exited <- cmd.Wait()
	}()
	return r, listening
}

// call posts a Connect JSON request to procedure on r, with a bearer
// token (or none) and X-Forwarded-For.
func call(t *testing.T, r *replica, procedure, token, forwardedFor, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", forwardedFor)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// replicaLogin logs in on r and returns the access token.
func replicaLogin(t *testing.T, r *replica, email, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, b := call(t, r, "/guard.auth.v1.AuthService/Login", "", "192.0.2.100", string(body))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login %s on %s: HTTP %d %s", email, r.name, res.StatusCode, b)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal([]byte(b), &out); err != nil || out.AccessToken == "" {
		t.Fatalf("login %s: no access token in %s", email, b)
	}
	return out.AccessToken
}

// userRemaining is r= of the "user" item of the RateLimit header, or -1.
func userRemaining(res *http.Response) int {
	for _, v := range res.Header.Values("RateLimit") {
		for item := range strings.SplitSeq(v, ",") {
			rest, ok := strings.CutPrefix(strings.TrimSpace(item), `"user";r=`)
			if !ok {
				continue
			}
			n, err := strconv.Atoi(strings.SplitN(rest, ";", 2)[0])
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// TestRedisDownAtStartup: with Redis unreachable, -redis-on-failure=closed
// and -redis-lockout-on-failure=closed refuse to start (they would refuse
// every rate-limited call, or every login), and local, the default,
// starts, says so, and still enforces the limits and the lockouts, per
// replica.
func TestRedisDownAtStartup(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String() + "/0" // nothing listens once closed
	_ = ln.Close()

	for _, closed := range []string{"-redis-on-failure=closed", "-redis-lockout-on-failure=closed"} {
		t.Run("closed_refuses_to_start"+closed, func(t *testing.T) {
			t.Parallel()
			err := server.Run(context.Background(), []string{"-db=" + filepath.Join(t.TempDir(), "x.db"), "-redis=" + dead, closed},
				func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), "does not answer") {
				t.Errorf("Run() error = %v, want a refusal naming %s", err, closed)
			}
		})
	}
	t.Run("local_starts_and_limits", func(t *testing.T) {
		t.Parallel()
		srv := servertest.Start(t, "-redis="+dead, "-ip-rate-limit=3", "-lockout-failures=2")
		if !strings.Contains(srv.Logs(), "redis does not answer at start-up") {
			t.Errorf("the log does not say Redis is down:\n%s", srv.Logs())
		}
		var got []string
		for _, pw := range []string{"wrong one", "wrong two", servertest.AdminPassword, servertest.AdminPassword} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/guard.auth.v1.AuthService/Login",
				strings.NewReader(`{"email":"`+servertest.AdminEmail+`","password":"`+pw+`"}`))
			req.Header.Set("Content-Type", "application/json")
			res, err := srv.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			var e struct{ Message string }
			_ = json.Unmarshal(body, &e)
			got = append(got, fmt.Sprintf("%d %s", res.StatusCode, strings.SplitN(e.Message, ":", 2)[0]))
		}
		// Two failures lock the account from this address, so the right
		// password is refused; the per-IP budget of 3 refuses the fourth
		// call before it reaches Login.
		want := []string{"401 invalid email or password", "401 invalid email or password", "429 too many failed logins", "429 rate limit exceeded"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("logins with -lockout-failures=2, -ip-rate-limit=3 and Redis down: %q, want %q", got, want)
		}
		for _, kind := range []string{"redis rate-limit store unavailable", "redis lockout store unavailable"} {
			if n := strings.Count(srv.Logs(), kind); n != 1 {
				t.Errorf("%q was logged %d times, want once:\n%s", kind, n, srv.Logs())
			}
		}
	})
}
