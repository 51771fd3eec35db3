package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/clients/goclient"
	adminv1 "github.com/connectguard/guard/gen/guard/admin/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/servertest"
)

// readmeExample is a command of the README and the output it shows.
type readmeExample struct {
	command string
	output  []string
}

// readmeRESTExamples reads the commands between the rest-examples markers
// of the README: "$ " starts a command, a trailing backslash continues it,
// and the lines up to the next command are its output.
func readmeRESTExamples(t *testing.T) []readmeExample {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "<!-- rest-examples")
	block, _, ok2 := strings.Cut(block, "<!-- /rest-examples -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no rest-examples block")
	}
	var examples []readmeExample
	cont := false
	for _, line := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(line, "$ "):
			examples = append(examples, readmeExample{command: strings.TrimPrefix(line, "$ ")})
			cont = strings.HasSuffix(line, `\`)
		case len(examples) == 0 || strings.HasPrefix(line, "```") || strings.HasPrefix(line, "-->") || line == "":
		case cont:
			examples[len(examples)-1].command += "\n" + line
			cont = strings.HasSuffix(line, `\`)
		default:
			e := &examples[len(examples)-1]
			e.output = append(e.output, line)
		}
	}
	return examples
}

// TestREADMERESTExamples runs every REST command of the README, with curl,
// against a real server set up as the walkthrough sets it up, and checks
// each answer against the README's: the status line where it shows one,
// and the JSON, whose ids, times and shortened tokens may differ.
func TestREADMERESTExamples(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed; the README's examples need it")
		}
		t.Skip("curl is not installed (apt-get install curl); skipping the README's REST examples")
	}
	examples := readmeRESTExamples(t)
	if len(examples) < 3 {
		t.Fatalf("found %d REST examples in the README, want one per service", len(examples))
	}
	srv := servertest.Start(t)
	admin := srv.AdminToken()
	for _, u := range []struct{ email, password, role string }{
		{"alice@example.com", "alice password 1", "member"},
		{"bob@example.com", "bob password 1", "viewer"},
	} {
		if _, err := srv.Client(goclient.Connect, admin).Admin.CreateUser(context.Background(), connect.NewRequest(
			&adminv1.CreateUserRequest{Email: u.email, Password: u.password, Roles: []string{u.role}})); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := srv.Login("alice@example.com", "alice password 1"), srv.Login("bob@example.com", "bob password 1")
	note, err := srv.Client(goclient.Connect, alice).Notes.CreateNote(context.Background(),
		connect.NewRequest(&notesv1.CreateNoteRequest{Title: "First note", Body: "Hello from curl"}))
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TOKEN="+admin, "ALICE="+alice, "BOB="+bob, "NOTE="+note.Msg.GetNote().GetId())
	for _, e := range examples {
		cmd := exec.CommandContext(t.Context(), "bash", "-c", strings.ReplaceAll(e.command, "http://127.0.0.1:8080", srv.URL))
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v %s", e.command, err, stderr.String())
		}
		lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(string(out)), "\r", ""), "\n")
		if len(e.output) == 0 {
			t.Fatalf("%s: the README shows no output", e.command)
		}
		if strings.HasPrefix(e.output[0], "HTTP/") && lines[0] != e.output[0] {
			t.Errorf("%s: got %q, the README shows %q", e.command, lines[0], e.output[0])
		}
		var got, want any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
			t.Fatalf("%s: answer %q is not JSON", e.command, lines[len(lines)-1])
		}
		if err := json.Unmarshal([]byte(e.output[len(e.output)-1]), &want); err != nil {
			t.Fatalf("the README's output of %s is not JSON: %v", e.command, err)
		}
		if problem := matchShown("", got, want); problem != "" {
			t.Errorf("%s:\n%s\ngot  %s\nREADME %s", e.command, problem, lines[len(lines)-1], e.output[len(e.output)-1])
		}
	}
}

// matchShown reports how got differs from what the README shows: the
// same keys and values, except ids, times and tokens (any non-empty
// string), and values the README shortened with "…" (a prefix of the
// real one, tokens aside).
func matchShown(key string, got, shown any) string {
	switch s := shown.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(s) {
			return key + ": got " + jsonOf(got) + ", want the keys of " + jsonOf(shown)
		}
		for k, v := range s {
			if p := matchShown(k, g[k], v); p != "" {
				return p
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(s) {
			return key + ": got " + jsonOf(got) + ", want " + jsonOf(shown)
		}
		for i := range s {
			if p := matchShown(key, g[i], s[i]); p != "" {
				return p
			}
		}
	case string:
		g, ok := got.(string)
		volatile := key == "id" || strings.HasSuffix(key, "Id") || strings.HasSuffix(key, "Time") || strings.HasSuffix(key, "Token")
		switch {
		case !ok:
			return key + ": got " + jsonOf(got)
		case volatile && g != "":
		case strings.HasSuffix(s, "…") && strings.HasPrefix(g, strings.TrimSuffix(s, "…")):
		case g != s:
			return key + ": got " + jsonOf(got) + ", want " + jsonOf(shown)
		}
	default:
		if jsonOf(got) != jsonOf(shown) {
			return key + ": got " + jsonOf(got) + ", want " + jsonOf(shown)
		}
	}
	return ""
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
