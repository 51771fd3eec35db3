package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectguard/guard/internal/servertest"
)

// The real-browser test needs Debian's Chromium and the npm packages of
// testdata/browser; `make browser-deps` installs both.
const (
	chromiumPath = "/usr/bin/chromium"
	browserDir   = "../../testdata/browser"
	sessionName  = "__Host-guard_session"
	createNote   = "/guard.notes.v1.NoteService/CreateNote"
)

// TestBrowserCookieSessionAndCSRF proves in headless Chromium that a
// same-origin app can log in with the session cookie and use it, and that
// pages of another origin cannot make the browser write with it: one on
// another site (http://127.0.0.1:P while the app is http://localhost:P')
// and one on a sibling origin of the same site (http://localhost:P''),
// which SameSite does not stop. Each tries a no-cors text/plain fetch, an
// auto-submitted text/plain form and a JSON fetch that needs a preflight.
//
// The app's origin is a reverse proxy in front of Guard that serves the
// app's page itself, so page and API are same-origin; the proxy records
// what the browser sent, to tell which layer refused each attempt.
func TestBrowserCookieSessionAndCSRF(t *testing.T) {
	node := requireBrowser(t)
	srv := servertest.Start(t)
	user := srv.CreateUser("browser@example.com", "member")

	guardURL, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &requestLog{}
	proxy := httputil.NewSingleHostReverseProxy(guardURL)
	proxy.ModifyResponse = func(res *http.Response) error { return rec.add(res) }
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		t.Errorf("proxy %s %s: %v", r.Method, r.URL.Path, err)
		w.WriteHeader(http.StatusBadGateway)
	}
	appMux := http.NewServeMux()
	appMux.Handle("GET /app.html", staticPage(t, "app.html"))
	appMux.Handle("/", proxy)
	app := httptest.NewServer(appMux)
	t.Cleanup(app.Close)
	evilPage := staticPage(t, "evil.html")
	evil := httptest.NewServer(evilPage)
	t.Cleanup(evil.Close)
	sibling := httptest.NewServer(evilPage)
	t.Cleanup(sibling.Close)

	// http://localhost is a secure context to Chromium, so it keeps the
	// Secure __Host- cookie over plain HTTP; 127.0.0.1 is another site.
	appURL := onLocalhost(t, app.URL)
	evilURL := evil.URL
	siblingURL := onLocalhost(t, sibling.URL)

	res := runBrowser(t, node, user, appURL, evilURL, siblingURL)
	t.Logf("chromium %s; cookies in the browser after login: %v", res.BrowserVersion, res.Cookies)
	for _, r := range rec.all() {
		t.Logf("server saw: %s", r)
	}

	// The app worked, with the cookie.
	if len(res.Problems) > 0 {
		t.Errorf("run.mjs reported problems:\n  %s", strings.Join(res.Problems, "\n  "))
	}
	if res.App.Login.Status != http.StatusOK || res.App.WhoAmI.Status != http.StatusOK || res.App.CreateNote.Status != http.StatusOK {
		t.Errorf("app calls: login %d, WhoAmI %d, CreateNote %d; want 200 each (WhoAmI body %v, CreateNote body %v)",
			res.App.Login.Status, res.App.WhoAmI.Status, res.App.CreateNote.Status, res.App.WhoAmI.Body, res.App.CreateNote.Body)
	}
	if got := res.App.WhoAmI.Body["authMethod"]; got != "AUTH_METHOD_SESSION_COOKIE" {
		t.Errorf("WhoAmI authMethod = %v, want AUTH_METHOD_SESSION_COOKIE", got)
	}
	if res.App.CookieVisibleToScript {
		t.Error("the session cookie is visible to document.cookie; want HttpOnly")
	}
	appCalls := rec.matching(func(r seenRequest) bool { return r.Origin == appURL || r.SecFetchSite == "same-origin" })
	for _, r := range appCalls {
		if r.Method == http.MethodPost && r.Path != "/guard.auth.v1.AuthService/Login" && !r.Cookie {
			t.Errorf("same-origin call %s carried no session cookie", r.Path)
		}
	}

	// The attackers' pages could see nothing and write nothing.
	for name, a := range map[string]attackResult{"evil": res.Evil, "sibling": res.Sibling} {
		if a.JSONFetch.Outcome != "rejected" {
			t.Errorf("%s: JSON fetch = %+v, want rejected (no CORS for this origin)", name, a.JSONFetch)
		}
		if a.SimpleFetch.Outcome == "resolved" && a.SimpleFetch.Type != "opaque" {
			t.Errorf("%s: no-cors fetch gave a readable response: %+v", name, a.SimpleFetch)
		}
	}
	for name, origin := range map[string]string{"evil": evilURL, "sibling": siblingURL} {
		calls := rec.matching(func(r seenRequest) bool { return r.Origin == origin })
		posts := 0
		for _, r := range calls {
			if r.Method != http.MethodPost {
				continue
			}
			posts++
			if r.Status == http.StatusOK {
				t.Errorf("%s: the server accepted %s", name, r)
			}
			if strings.HasPrefix(r.ContentType, "application/json") {
				t.Errorf("%s: a JSON POST got past the CORS preflight: %s", name, r)
			}
			// Another site never gets the SameSite=Strict cookie attached.
			if name == "evil" && r.Cookie {
				t.Errorf("%s: the browser sent the session cookie cross-site: %s", name, r)
			}
		}
		// The attempts must have reached the server, or this test shows
		// only that the browser blocked them.
		if posts == 0 {
			t.Errorf("%s: no POST from %s reached the server", name, origin)
		}
	}

	// Exactly one note exists: the app's.
	ctx := context.Background()
	db := srv.Store()
	if n, err := db.CountNotes(ctx); err != nil || n != 1 {
		t.Errorf("CountNotes() = %d, %v; want 1 (the app's)", n, err)
	}
	notes, err := db.ListReadableNotes(ctx, user.ID, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || notes[0].Title != "written by the app" {
		t.Errorf("notes of %s = %+v, want the app's note only", user.Email, notes)
	}
	// And the access log shows one successful CreateNote.
	ok := 0
	for line := range strings.Lines(srv.Logs()) {
		if strings.Contains(line, "procedure="+createNote) && strings.Contains(line, "code=ok") {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("access log has %d successful CreateNote calls, want 1:\n%s", ok, srv.Logs())
	}
}

// requireBrowser returns the path of node, or skips the test (fails it in
// CI) when the browser or its driver is missing.
func requireBrowser(t *testing.T) string {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath)
	}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "testdata/browser/node_modules")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("real-browser test needs %s: run `make browser-deps`", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// staticPage serves the file name of testdata/browser.
func staticPage(t *testing.T, name string) http.Handler {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(browserDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+name {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
}

// onLocalhost turns http://127.0.0.1:PORT into http://localhost:PORT.
func onLocalhost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "localhost:" + u.Port()
	return u.String()
}

type callResult struct {
	Status int            `json:"status"`
	Body   map[string]any `json:"body"`
}

type settled struct {
	Outcome string `json:"outcome"`
	Type    string `json:"type"`
	Status  int    `json:"status"`
	Error   string `json:"error"`
}

type attackResult struct {
	SimpleFetch settled `json:"simpleFetch"`
	Form        settled `json:"form"`
	JSONFetch   settled `json:"jsonFetch"`
}

// browserResult is the JSON line run.mjs prints.
type browserResult struct {
	BrowserVersion string `json:"browserVersion"`
	App            struct {
		Login                 callResult `json:"login"`
		CookieVisibleToScript bool       `json:"cookieVisibleToScript"`
		WhoAmI                callResult `json:"whoAmI"`
		CreateNote            callResult `json:"createNote"`
	} `json:"app"`
	Cookies  []map[string]any `json:"cookies"`
	Evil     attackResult     `json:"evil"`
	Sibling  attackResult     `json:"sibling"`
	Problems []string         `json:"problems"`
}

// runBrowser runs testdata/browser/run.mjs, bounded to 60 s, and parses
// its result.
func runBrowser(t *testing.T, node string, user servertest.User, appURL, evilURL, siblingURL string) browserResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "run.mjs", appURL, evilURL, siblingURL)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "GUARD_EMAIL="+user.Email, "GUARD_PASSWORD="+user.Password)
	// An interrupt lets playwright close Chromium; a kill follows if not.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("run.mjs stderr:\n%s", s)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("run.mjs did not finish within 60 s; stdout:\n%s", stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var res browserResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("run.mjs: %v; output is no JSON line (%v):\n%s", runErr, err, stdout.String())
	}
	t.Logf("run.mjs: %s", lines[len(lines)-1])
	if runErr != nil && len(res.Problems) == 0 {
		t.Errorf("run.mjs: %v", runErr)
	}
	return res
}

// seenRequest is what the app's proxy passed to Guard and got back.
type seenRequest struct {
	Method, Path, Origin, ContentType        string
	SecFetchSite, SecFetchMode, SecFetchDest string
	// Cookie reports whether the session cookie came along.
	Cookie bool
	Status int
	// Answer is the start of an error response's body.
	Answer string
}

func (r seenRequest) String() string {
	return fmt.Sprintf("%s %s origin=%q sec-fetch-site=%q mode=%q dest=%q content-type=%q session-cookie=%t -> %d %s",
		r.Method, r.Path, r.Origin, r.SecFetchSite, r.SecFetchMode, r.SecFetchDest, r.ContentType, r.Cookie, r.Status, r.Answer)
}

// requestLog records the requests the proxy forwarded.
type requestLog struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (l *requestLog) add(res *http.Response) error {
	req := res.Request
	s := seenRequest{
		Method: req.Method, Path: req.URL.Path, Origin: req.Header.Get("Origin"),
		ContentType: req.Header.Get("Content-Type"), SecFetchSite: req.Header.Get("Sec-Fetch-Site"),
		SecFetchMode: req.Header.Get("Sec-Fetch-Mode"), SecFetchDest: req.Header.Get("Sec-Fetch-Dest"),
		Status: res.StatusCode,
	}
	for _, c := range req.Cookies() {
		if c.Name == sessionName {
			s.Cookie = true
		}
	}
	if res.StatusCode != http.StatusOK {
		// Error bodies are small; read a bounded prefix and hand the
		// browser the same bytes.
		body, err := io.ReadAll(io.LimitReader(res.Body, 512))
		if err != nil {
			return err
		}
		s.Answer = string(body)
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), res.Body), res.Body}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, s)
	return nil
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seenRequest(nil), l.seen...)
}

func (l *requestLog) matching(keep func(seenRequest) bool) []seenRequest {
	var out []seenRequest
	for _, r := range l.all() {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}
