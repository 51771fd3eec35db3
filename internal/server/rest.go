package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"github.com/connectguard/guard"
)

// restPrefix starts every REST route (google.api.http in the protos);
// nothing else the server serves starts with it.
const restPrefix = "/v1/"

// withREST serves the REST routes of services (the google.api.http rules
// of their methods) beside rpc, the handler of their Connect, gRPC and
// gRPC-Web procedures. A REST call is transcoded (connectrpc.com/vanguard)
// into a Connect call to the same handler, so the whole interceptor chain
// (authentication, authorization, validation, ownership, rate limits,
// access log, audit) decides it as it decides every other protocol; the
// HTTP layer in front of withREST sees it first, as it sees every call.
// Requests outside restPrefix go to rpc untouched.
//
// What the transcoder refuses itself, before the chain (a body that is
// not JSON, a query parameter the method does not have, a body over
// maxBytes), is answered in the same JSON error form with a generic
// message for its code: the transcoder's own text names Go and protobuf
// types and echoes input. The detail goes to the log at Debug.
func withREST(services []service, rpc http.Handler, maxBytes int, log *slog.Logger) (http.Handler, error) {
	// The chain is called only with the whole message: the transcoder
	// converts the body while the handler reads it, and when that fails
	// it answers the error and hands the handler an empty body, which
	// would run the method on an empty request.
	errw := connect.NewErrorWriter()
	chain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := r.Context().Value(restCallKey{}).(*restCall) // the transcoder's only caller sets it
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBytes)+1))
		if call.status != 0 {
			return // the transcoder has answered
		}
		if err != nil { // the body could not be read: answered (generically) by finish
			_ = errw.Write(w, r, connect.NewError(connect.CodeInvalidArgument, errors.New("request body could not be read")))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		call.reached = true
		rpc.ServeHTTP(&chainWriter{ResponseWriter: w, call: call}, r)
	})
	opts := []vanguard.ServiceOption{
		vanguard.WithTargetProtocols(vanguard.ProtocolConnect),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
		vanguard.WithNoTargetCompression(),
		vanguard.WithMaxMessageBufferBytes(uint32(maxBytes)), // config keeps it within 64 MiB
	}
	svcs := make([]*vanguard.Service, len(services))
	for i, s := range services {
		svcs[i] = vanguard.NewServiceWithSchema(s.desc, chain, opts...)
	}
	vt, err := vanguard.NewTranscoder(svcs, vanguard.WithUnknownHandler(rpc))
	if err != nil {
		return nil, err
	}
	tc := guard.Translated(guard.ProtocolREST, vt) // the access log and metrics say "rest"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, restPrefix) {
			rpc.ServeHTTP(w, r)
			return
		}
		call := &restCall{ResponseWriter: w}
		tc.ServeHTTP(call, r.WithContext(context.WithValue(r.Context(), restCallKey{}, call)))
		call.finish(log)
	}), nil
}

type restCallKey struct{}

// restCall is the response writer of one REST call. It passes through
// the answer to a call the chain decided, and holds back any other error:
// the transcoder's own, to answer it generically.
type restCall struct {
	http.ResponseWriter
	reached     bool         // the chain was called with the whole message
	chainFailed bool         // and answered an error
	status      int          // an error status held back, 0 when passing through
	held        bytes.Buffer // its body
}

// chainWriter is the writer the chain answers on (the transcoder's): it
// notes whether the chain's answer is an error.
type chainWriter struct {
	http.ResponseWriter
	call *restCall
}

func (w *chainWriter) WriteHeader(status int) {
	w.call.chainFailed = status >= 400
	w.ResponseWriter.WriteHeader(status)
}

// Flush implements http.Flusher, which connect-go uses.
func (w *chainWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (c *restCall) WriteHeader(status int) {
	if status >= 400 && (!c.reached || !c.chainFailed) {
		c.status = status
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *restCall) Write(p []byte) (int, error) {
	if c.status != 0 {
		if c.held.Len() < 64<<10 {
			c.held.Write(p)
		}
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

// Flush implements http.Flusher, which the transcoder needs.
func (c *restCall) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok && c.status == 0 {
		f.Flush()
	}
}

// restStatus is the part of a REST error body (google.rpc.Status in JSON)
// that finish reads and writes.
type restStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// finish writes a held-back error, in the form of the chain's errors
// (google.rpc.Status in JSON) with a message that names no type and
// echoes no input. Before the chain, the transcoder refuses the request
// (not JSON, a field or parameter the method does not have, a value of
// the wrong type): invalid_argument, whatever code it gave, unless the
// body was too large or of another media type. After the chain answered
// without error, the failure is the server's: internal.
func (c *restCall) finish(log *slog.Logger) {
	if c.status == 0 {
		return
	}
	var sent restStatus
	_ = json.Unmarshal(c.held.Bytes(), &sent)
	log.Debug("rest call answered by the transcoder", "status", c.status, "code", sent.Code, "detail", sent.Message)
	status, code, msg := http.StatusBadRequest, connect.CodeInvalidArgument,
		"the request does not fit the method: check the path, the query parameters and the JSON body"
	switch {
	case c.reached:
		status, code, msg = http.StatusInternalServerError, connect.CodeInternal, "internal error"
	case connect.Code(sent.Code) == connect.CodeResourceExhausted:
		status, code, msg = http.StatusTooManyRequests, connect.CodeResourceExhausted, "request too large"
	case c.status == http.StatusUnsupportedMediaType:
		status, msg = c.status, "send the body as JSON, with Content-Type: application/json"
	case c.status == http.StatusMethodNotAllowed:
		status, code, msg = c.status, connect.CodeUnimplemented, "method not allowed on this path"
	}
	body, _ := json.Marshal(restStatus{int(code), msg})
	h := c.Header()
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	c.ResponseWriter.WriteHeader(status)
	_, _ = c.ResponseWriter.Write(body)
}
