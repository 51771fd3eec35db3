package safewire_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"github.com/connectguard/guard/interceptors/requestid"
	"github.com/connectguard/guard/interceptors/safewire"
)

// failingBody yields some bytes, then err.
type failingBody struct {
	err  error
	sent bool
}

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "{"), nil
	}
	return 0, b.err
}

func (*failingBody) Close() error { return nil }

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	// A handler that reads the body as connect-go does and reports the error.
	var got error
	h := requestid.Middleware(safewire.Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, got = io.ReadAll(r.Body)
	})))
	tests := []struct {
		name     string
		header   http.Header
		bodyErr  error
		wantCode connect.Code // of the body read, or of the answer
		wantHTTP int
	}{
		{"read_timeout", nil, os.ErrDeadlineExceeded, connect.CodeDeadlineExceeded, 200},
		{"broken_body", nil, errors.New("invalid byte in chunk length"), connect.CodeInvalidArgument, 200},
		{"connect_timeout_letters", http.Header{"Connect-Timeout-Ms": {"abc"}}, nil, connect.CodeInvalidArgument, 400},
		{"connect_timeout_too_long", http.Header{"Connect-Timeout-Ms": {"12345678901"}}, nil, connect.CodeInvalidArgument, 400},
		{"connect_timeout_negative", http.Header{"Connect-Timeout-Ms": {"-1"}}, nil, connect.CodeInvalidArgument, 400},
		{"connect_timeout_twice", http.Header{"Connect-Timeout-Ms": {"1", "2"}}, nil, connect.CodeInvalidArgument, 400},
		{"connect_timeout_ok", http.Header{"Connect-Timeout-Ms": {"1500"}}, nil, 0, 200},
		{"grpc_timeout_bad_unit", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Timeout": {"10x"}}, nil, connect.CodeInvalidArgument, 200},
		{"grpc_timeout_too_long", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Timeout": {"123456789S"}}, nil, connect.CodeInvalidArgument, 200},
		{"grpc_timeout_ok", http.Header{"Content-Type": {"application/grpc"}, "Grpc-Timeout": {"5S"}}, nil, 0, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest(http.MethodPost, "/svc/Method", nil)
			r.Body = &failingBody{err: io.EOF}
			if tt.bodyErr != nil {
				r.Body = &failingBody{err: tt.bodyErr}
			}
			if r.Header.Get("Content-Type") == "" {
				r.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tt.header {
				r.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantHTTP {
				t.Errorf("got HTTP %d, want %d", rec.Code, tt.wantHTTP)
			}
			switch {
			case tt.bodyErr != nil:
				if connect.CodeOf(got) != tt.wantCode || strings.Contains(got.Error(), tt.bodyErr.Error()) {
					t.Errorf("got body error %v, want code %v without the detail", got, tt.wantCode)
				}
			case tt.wantCode != 0:
				if rec.Header().Get("Grpc-Status") != "" && rec.Header().Get("Grpc-Status") != "3" {
					t.Errorf("got grpc-status %q, want 3", rec.Header().Get("Grpc-Status"))
				}
				if strings.Contains(rec.Body.String(), tt.header.Get("Connect-Timeout-Ms")+"\"") && tt.header.Get("Connect-Timeout-Ms") != "" {
					t.Errorf("got body %s, want the value not echoed", rec.Body.String())
				}
			default:
				if got != nil {
					t.Errorf("got body error %v, want none", got)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "invalid byte in chunk length") || !strings.Contains(logs.String(), "request_id=") {
		t.Errorf("got log %s, want the details with request ids", logs.String())
	}
}

// TestCodecs: an undecodable message is refused with a message that names
// neither the Go type nor the input, over JSON and binary, and a good one
// still works.
func TestCodecs(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(), safewire.Codecs(slog.New(slog.DiscardHandler))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		name, contentType, body, want string
	}{
		{"json_garbage", "application/json", `{"service": 5`, `"unmarshal message: request message is not valid JSON"`},
		{"json_wrong_type", "application/json; charset=utf-8", `{"service": 5}`, `"unmarshal message: request message is not valid JSON"`},
		{"json_empty", "application/json", ``, `"unmarshal message: request message is not valid JSON"`},
		{"proto_garbage", "application/proto", "\xff\xff\xff", `"unmarshal message: request message is not valid protobuf"`},
		{"json_ok", "application/json", `{"service": ""}`, `"status":"SERVING_STATUS_SERVING"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := http.Post(srv.URL+"/grpc.health.v1.Health/Check", tt.contentType, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("got %s, want it to contain %s", b, tt.want)
			}
			if strings.Contains(string(b), "grpchealth") || strings.Contains(string(b), "*") {
				t.Errorf("got %s, naming a Go type", b)
			}
		})
	}
}
