package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/connectguard/guard/internal/server"
)

func run(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = server.Run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestPolicyCommand: `guard policy` writes docs/policy.md, the same bytes
// on every run, without a database or any configuration.
func TestPolicyCommand(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(policyDoc)
	if err != nil {
		t.Fatalf("read %s: %v", policyDoc, err)
	}
	for range 2 {
		out, errOut, err := run("policy")
		if err != nil {
			t.Fatalf("Run(policy) error = %v, want nil", err)
		}
		if errOut != "" {
			t.Errorf("Run(policy) stderr = %q, want nothing", errOut)
		}
		if out != string(want) {
			t.Fatalf("Run(policy) output differs from %s (run make generate and commit the result): %s", policyDoc, firstDiff(out, string(want)))
		}
	}
	for _, s := range []string{"go run ./cmd/server policy", "any-of", "all-of", "`not_found`", "| `/guard.notes.v1.NoteService/DeleteNote` |"} {
		if !strings.Contains(string(want), s) {
			t.Errorf("%s does not contain %q", policyDoc, s)
		}
	}
}

func TestCommands_usage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantErr    string // "" for none
		wantStderr string
	}{
		{"policy_help", []string{"policy", "-h"}, "", "Usage: guard policy"},
		{"policy_extra_argument", []string{"policy", "extra"}, "policy: unexpected arguments: extra", ""},
		{"policy_unknown_flag", []string{"policy", "-db=x.db"}, "flag provided but not defined: -db", ""},
		{"unknown_command", []string{"openapi"}, `unknown command "openapi": the commands are policy`, ""},
		{"serve_help_lists_commands", []string{"-h"}, "", "Commands (guard <command> -h describes one):\n  policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := run(tt.args...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Run(%q) error = %v, want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Run(%q) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("Run(%q) stderr = %q, want it to contain %q", tt.args, errOut, tt.wantStderr)
			}
			if out != "" {
				t.Errorf("Run(%q) stdout = %q, want nothing", tt.args, out)
			}
		})
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, gl, wl)
		}
	}
	return "no line differs"
}
