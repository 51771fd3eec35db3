package outcome_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/connectguard/guard/internal/outcome"
)

func TestString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "ok"},
		{"connect_error", connect.NewError(connect.CodeNotFound, errors.New("x")), "not_found"},
		{"wrapped_connect_error", fmt.Errorf("load: %w", connect.NewError(connect.CodeInternal, errors.New("x"))), "internal"},
		{"client_deadline", context.DeadlineExceeded, "deadline_exceeded"},
		{"wrapped_deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{"canceled", context.Canceled, "canceled"},
		{"other", errors.New("boom"), "unknown"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := outcome.String(tt.err); got != tt.want {
				t.Errorf("String(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestCallProtocol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if got := outcome.CallProtocol(ctx, connect.ProtocolConnect); got != connect.ProtocolConnect {
		t.Errorf("untranslated call: got %q, want the peer's protocol", got)
	}
	if got := outcome.CallProtocol(outcome.WithTranslated(ctx, "rest"), connect.ProtocolConnect); got != "rest" {
		t.Errorf("translated call: got %q, want rest", got)
	}
}
