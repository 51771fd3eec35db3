package goclient

import (
	"errors"
	"regexp"
	"strconv"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// FieldViolations returns what an invalid_argument error says of each
// field the server refused, by field path ("note.title"), from its
// buf.validate.Violations detail; nil when there is none.
func FieldViolations(err error) map[string]string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var out map[string]string
	for _, d := range ce.Details() {
		v, derr := d.Value()
		vs, ok := v.(*validate.Violations)
		if derr != nil || !ok {
			continue
		}
		for _, viol := range vs.GetViolations() {
			if out == nil {
				out = map[string]string{}
			}
			out[protovalidate.FieldPathString(viol.GetField())] = viol.GetMessage()
		}
	}
	return out
}

// RetryDelay returns how long a resource_exhausted error (a rate limit, a
// login lockout) asks the caller to wait: its google.rpc.RetryInfo
// detail, else its Retry-After header. ok is false for any other error.
func RetryDelay(err error) (d time.Duration, ok bool) {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
		return 0, false
	}
	for _, det := range ce.Details() {
		if v, derr := det.Value(); derr == nil {
			if ri, isRetry := v.(*errdetails.RetryInfo); isRetry && ri.GetRetryDelay() != nil {
				return ri.GetRetryDelay().AsDuration(), true
			}
		}
	}
	if secs, perr := strconv.Atoi(ce.Meta().Get("Retry-After")); perr == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	return 0, false
}

// requestIDInMessage finds the id in "internal error (request id X)".
var requestIDInMessage = regexp.MustCompile(`\(request id ([A-Za-z0-9_-]+)\)`)

// RequestID returns the request id of an error, under which the server
// logged what happened: from its X-Request-Id header, else from its
// message; "" when there is none.
func RequestID(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	if id := ce.Meta().Get("X-Request-Id"); id != "" {
		return id
	}
	if m := requestIDInMessage.FindStringSubmatch(ce.Message()); m != nil {
		return m[1]
	}
	return ""
}
