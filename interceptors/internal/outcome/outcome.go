// Package outcome names the result of a call the way its caller receives
// it, for the interceptors that record calls (accesslog, audit).
package outcome

import (
	"context"
	"errors"

	"connectrpc.com/connect"
)

// Code returns the code the caller receives for err, nil being ok. It is
// connect.CodeOf, except that a bare context error has the code connect-go
// sends for it (canceled, deadline_exceeded) rather than unknown: a client
// that gives up or sets a short deadline is not a server failure.
func Code(err error) (connect.Code, bool) {
	if err == nil {
		return 0, true
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code(), false
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled, false
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded, false
	}
	return connect.CodeUnknown, false
}

// String returns Code(err) as written in logs: "ok" or the code's name.
func String(err error) string {
	if c, ok := Code(err); !ok {
		return c.String()
	}
	return "ok"
}
