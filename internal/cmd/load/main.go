// Command load measures the whole Guard server under load, as users run
// it: the full security chain against a bare server with no security at
// all, per protocol and concurrency, and reports the ratios.
//
// It builds the server with the guardload build tag (the only build with
// -bare), seeds a fresh SQLite database through the full server (an admin,
// a member alice, one note of hers), then starts a bare server on the same
// file. Both processes stay up. For each protocol and concurrency c, c
// goroutines call GetNote of alice's note as alice, in rounds that measure
// the full server and then the bare one right after; the ratios are the
// median of the rounds'. Server CPU comes from /proc/<pid>/stat,
// allocations from the server's expvar (-pprof-addr), latency from the
// client. Everything listens on 127.0.0.1.
//
//	go run ./internal/cmd/load -protocols=grpc,connect -c=64 -duration=5s
//
// A failed call fails the run: a load test that measures errors is worthless.
// See docs/performance.md for what each column means.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// The seeded accounts. The admin's password only ever meets an empty
// database of this run's own.
const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct horse battery staple"
	aliceEmail    = "alice@example.com"
	alicePassword = "a long load password 1"
)

// passEnv are the runtime settings handed on to both servers when set, so
// that `GOGC=200 make load` tries a setting on the servers (the client
// gets it too).
var passEnv = []string{"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG"}

// options are the command-line flags.
type options struct {
	goCmd       string
	protocols   []goclient.Protocol
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	allH2C      bool
	// profiles, if set, is a directory for CPU and allocation profiles of
	// both servers during each protocol and concurrency.
	profiles string
}

// settle is the unmeasured time before every round but a cell's first: the
// closed loop of c goroutines, on connections already open, reaches its
// steady state within a few milliseconds.
const settle = 100 * time.Millisecond

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(out)
	protocols := fs.String("protocols", "connect,connect+json,grpc,grpcweb", "comma-separated protocols: connect (binary), connect+json, grpc, grpcweb")
	conc := fs.String("c", "1,16,64", "comma-separated concurrencies: goroutines calling in a closed loop")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measuring time of each cell (one mode, protocol and concurrency), split into -rounds windows")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up before each cell's first round")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds per protocol and concurrency, each measuring the full server and then the bare one for -duration/-rounds; the ratios are the median of the rounds'")
	fs.BoolVar(&o.allH2C, "h2c", false, "send every protocol over h2c, as goclient.DefaultHTTPClient does for http:// URLs; by default only gRPC uses h2c and the others HTTP/1.1, as browsers, curl and most proxies send them")
	fs.StringVar(&o.goCmd, "go", "go", "the go command that builds the server")
	fs.StringVar(&o.profiles, "profiles", "", "directory to write CPU and allocation profiles of both servers in, one per protocol, concurrency and mode (<protocol>-c<c>-<full|bare>-<profile|allocs>.pprof), taken over -duration while they are measured")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.protocols, err = parseProtocols(*protocols); err != nil {
		return options{}, err
	}
	if o.concurrency, err = parseConcurrency(*conc); err != nil {
		return options{}, err
	}
	if o.duration <= 0 || o.warmup < 0 || o.rounds < 1 {
		return options{}, errors.New("-duration must be positive, -warmup not negative and -rounds at least 1")
	}
	if o.duration/time.Duration(o.rounds) < 100*time.Millisecond {
		return options{}, errors.New("-duration/-rounds must be at least 100ms: shorter windows measure the clock")
	}
	return o, nil
}

// parseProtocols reads a comma-separated list of protocol names.
func parseProtocols(s string) ([]goclient.Protocol, error) {
	var ps []goclient.Protocol
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		p, ok := protocolNamed(name)
		if !ok {
			return nil, fmt.Errorf("-protocols: unknown protocol %q: want connect, connect+json, grpc or grpcweb", name)
		}
		if slices.Contains(ps, p) {
			return nil, fmt.Errorf("-protocols: %s twice", name)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func protocolNamed(name string) (goclient.Protocol, bool) {
	for _, p := range []goclient.Protocol{goclient.Connect, goclient.ConnectJSON, goclient.GRPC, goclient.GRPCWeb} {
		if p.String() == name {
			return p, true
		}
	}
	return 0, false
}

// parseConcurrency reads a comma-separated list of concurrencies.
func parseConcurrency(s string) ([]int, error) {
	var cs []int
	for f := range strings.SplitSeq(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 1024 {
			return nil, fmt.Errorf("-c: %q is not a concurrency between 1 and 1024", f)
		}
		if slices.Contains(cs, c) {
			return nil, fmt.Errorf("-c: %d twice", c)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// transport is the HTTP version protocol p is sent over.
func (o options) transport(p goclient.Protocol) string {
	if p == goclient.GRPC || o.allH2C {
		return "h2c"
	}
	return "http/1.1"
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cells := len(o.protocols) * len(o.concurrency) * 2
	measuring := time.Duration(cells) * (o.warmup + o.duration + time.Duration(o.rounds-1)*settle)
	fmt.Fprintf(stderr, "load: %d cells, %s of load after the build\n", cells, measuring.Round(time.Second))

	dir, err := os.MkdirTemp("", "guard-load-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	fmt.Fprintln(stderr, "load: building the server (-tags guardload)")
	bin := filepath.Join(dir, "guard")
	build := exec.CommandContext(ctx, o.goCmd, "build", "-tags", "guardload", "-o", bin, "github.com/connectguard/guard/cmd/server") //nolint:gosec // the go command of the operator's own -go flag
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the server: %w\n%s", err, out)
	}
	machine := describeMachine()

	// The bound: a stuck server or client must not hold the run forever.
	ctx, cancel := context.WithTimeout(ctx, measuring+2*time.Minute)
	defer cancel()
	env := []string{"PATH=" + getenv("PATH")}
	for _, k := range passEnv {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	db := "-db=" + filepath.Join(dir, "guard.db")
	// Tokens must outlive the run: a verify on every call after expiry
	// would measure failures.
	ttl := max(15*time.Minute, measuring+10*time.Minute)
	full, err := startServer(ctx, "full", bin, []string{
		db, "-log-level=warn", "-ip-rate-limit=1000000000", "-user-rate-limit=1000000000",
		"-access-token-ttl=" + ttl.String(),
	}, append(env, "GUARD_ADMIN_EMAIL="+adminEmail, "GUARD_ADMIN_PASSWORD="+adminPassword))
	if err != nil {
		return err
	}
	defer full.stop(stderr)
	token, noteID, err := seed(ctx, full.url)
	if err != nil {
		return fmt.Errorf("seed through the full server: %w\n%s", err, full.logs)
	}
	bare, err := startServer(ctx, "bare", bin, []string{db, "-log-level=warn", "-bare"}, env)
	if err != nil {
		return err
	}
	defer bare.stop(stderr)
	if err := checkModes(ctx, full.url, bare.url, noteID); err != nil {
		return err
	}

	var rows []row
	rs := rounds{n: o.rounds, warmup: o.warmup, settle: settle, window: o.duration / time.Duration(o.rounds)}
	for _, p := range o.protocols {
		for _, c := range o.concurrency {
			l := load{protocol: p, transport: o.transport(p), c: c, token: token, noteID: noteID}
			profiled := make(chan error, 4)
			for _, s := range []*server{full, bare} {
				for _, kind := range []string{"profile", "allocs"} {
					if o.profiles == "" {
						profiled <- nil
						continue
					}
					go func() {
						path := filepath.Join(o.profiles, fmt.Sprintf("%s-c%d-%s-%s.pprof", p, c, s.mode, kind))
						profiled <- fetchProfile(ctx, s, kind, path, o.warmup+o.duration)
					}()
				}
			}
			r, err := measurePair(ctx, full, bare, l, rs)
			for range 4 {
				if perr := <-profiled; err == nil && perr != nil {
					err = perr
				}
			}
			if err != nil {
				return fmt.Errorf("%s c=%d: %w", p, c, err)
			}
			fmt.Fprintf(stderr, "load: %-12s c=%-3d full %6.0f req/s %6.1f µs/call | bare %6.0f req/s %6.1f µs/call | full÷bare req/s %.2f CPU %.2f | %d errors\n",
				p, c, r.full.rate(), r.full.cpuPerCall(), r.bare.rate(), r.bare.cpuPerCall(), r.rateRatio, r.cpuRatio, r.full.errors+r.bare.errors)
			rows = append(rows, r)
		}
	}
	writeReport(stdout, machine, o, rows)
	if failed := failures(rows); failed > 0 {
		return fmt.Errorf("%d calls failed (see the table)", failed)
	}
	return nil
}

// fetchProfile writes the profile kind of s taken over d to path: profile
// (CPU) or allocs (the allocations made meanwhile, a delta).
func fetchProfile(ctx context.Context, s *server, kind, path string, d time.Duration) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", s.pprof, kind, secs), nil) //nolint:gosec // the loopback pprof listener of a server this run started
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req) //nolint:gosec // as above
	if err != nil {
		return fmt.Errorf("%s profile: %w", kind, err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s profile: HTTP %d", kind, res.StatusCode)
	}
	f, err := os.Create(path) //nolint:gosec // the operator's own -cpuprofile directory
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// seed creates what the workload reads, through the full server as a user
// would: alice, a member, and one note of hers. It returns alice's access
// token and the note's id.
func seed(ctx context.Context, url string) (token, noteID string, err error) {
	admin, err := login(ctx, url, adminEmail, adminPassword)
	if err != nil {
		return "", "", err
	}
	c := goclient.New(url, goclient.WithToken(admin))
	if _, err := c.Admin.CreateUser(ctx, connect.NewRequest(&adminv1.CreateUserRequest{
		Email: aliceEmail, Password: alicePassword, Roles: []string{"member"},
	})); err != nil {
		return "", "", fmt.Errorf("create alice: %w", err)
	}
	token, err = login(ctx, url, aliceEmail, alicePassword)
	if err != nil {
		return "", "", err
	}
	c.SetToken(token)
	res, err := c.Notes.CreateNote(ctx, connect.NewRequest(&notesv1.CreateNoteRequest{
		Title: "Load test",
		Body:  "The note every call of the load test reads: a title and a short body, as most notes are.",
	}))
	if err != nil {
		return "", "", fmt.Errorf("create alice's note: %w", err)
	}
	return token, res.Msg.GetNote().GetId(), nil
}

func login(ctx context.Context, url, email, password string) (string, error) {
	res, err := goclient.New(url).Auth.Login(ctx, connect.NewRequest(&authv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		return "", fmt.Errorf("log in %s: %w", email, err)
	}
	return res.Msg.GetAccessToken(), nil
}

// checkModes makes sure that the two servers are what the table says: the
// full one refuses a call without a credential, the bare one serves it.
// A server that ignored -bare would make every ratio 1 and look fine.
func checkModes(ctx context.Context, fullURL, bareURL, noteID string) error {
	req := func() *connect.Request[notesv1.GetNoteRequest] {
		return connect.NewRequest(&notesv1.GetNoteRequest{Id: noteID})
	}
	_, err := goclient.New(fullURL).Notes.GetNote(ctx, req())
	if err == nil {
		return errors.New("the full server served GetNote without a credential")
	}
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		return fmt.Errorf("the full server answered GetNote without a credential with %w, want unauthenticated", err)
	}
	if _, err := goclient.New(bareURL).Notes.GetNote(ctx, req()); err != nil {
		return fmt.Errorf("the bare server refused GetNote without a credential (is -bare in effect?): %w", err)
	}
	return nil
}

// server is a running server process.
type server struct {
	mode  string // full or bare
	url   string
	vars  string // expvar URL on its -pprof-addr
	pprof string // its -pprof-addr
	pid   int
	cmd   *exec.Cmd
	logs  *tail
	done  chan struct{} // closed when the process has exited
}

// startServer runs bin with args on a free loopback port and waits until
// it listens.
func startServer(ctx context.Context, mode, bin string, args, env []string) (*server, error) {
	pprofAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{mode: mode, vars: "http://" + pprofAddr + "/debug/vars", pprof: pprofAddr, logs: &tail{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"-addr=127.0.0.1:0", "-pprof-addr=" + pprofAddr}, args...)...) //nolint:gosec // the server this run built
	s.cmd.Env = env
	s.cmd.Stderr = s.logs
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s server: %w", mode, err)
	}
	s.pid = s.cmd.Process.Pid
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "guard listening on "); ok {
				listening <- u
			}
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case s.url = <-listening:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("the %s server exited before listening:\n%s", mode, s.logs)
	case <-time.After(60 * time.Second):
		s.stop(io.Discard)
		return nil, fmt.Errorf("the %s server did not listen within 60 s:\n%s", mode, s.logs)
	case <-ctx.Done():
		s.stop(io.Discard)
		return nil, ctx.Err()
	}
}

// stop interrupts the server and waits for it to exit, killing it after
// 15 s.
func (s *server) stop(log io.Writer) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(log, "load: the %s server did not stop within 15 s of SIGINT; killing it\n", s.mode)
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// exited reports whether the server process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// tail keeps the last 64 KiB written to it: a server's log, shown when
// something fails.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 64<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// newHTTPClient returns a client of one transport with room for c idle
// connections, so that HTTP/1.1 keeps one connection per goroutine
// instead of dialling again (h2c multiplexes on one).
func newHTTPClient(transport string, c int) *http.Client {
	var protocols http.Protocols
	if transport == "h2c" {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	return &http.Client{
		Transport: &http.Transport{
			Protocols:           &protocols,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: c,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout: 10 * time.Second,
	}
}

// describeMachine names what the numbers were measured on.
func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		model = cpuModel(b)
	}
	loadavg := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			loadavg = f[0]
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s, %s; the load client and both servers share these cores; load average before the run %s",
		runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), loadavg)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo []byte) string {
	for line := range strings.Lines(string(cpuinfo)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
