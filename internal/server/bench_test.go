package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	authv1 "github.com/connectguard/guard/gen/guard/auth/v1"
	notesv1 "github.com/connectguard/guard/gen/guard/notes/v1"
	"github.com/connectguard/guard/internal/config"
	"github.com/connectguard/guard/internal/password"
	"github.com/connectguard/guard/store"
	"google.golang.org/protobuf/proto"
)

// benchEnv is one server's handlers, bare and secured, over one database.
type benchEnv struct {
	bare, full http.Handler
	token      string
	body       []byte
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	cfg, err := config.Parse([]string{"-ip-rate-limit=1000000000"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	hasher := password.NewHasher(password.WithParams(password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}))
	log := slog.New(slog.DiscardHandler)
	services, deps, err := newServices(ctx, cfg, db, hasher, log)
	if err != nil {
		b.Fatal(err)
	}
	full, err := mount(cfg, services, deps)
	if err != nil {
		b.Fatal(err)
	}
	bare := http.NewServeMux()
	for _, s := range services {
		bare.Handle(s.mount())
	}
	hash, err := hasher.Hash(ctx, "bench password 1")
	if err != nil {
		b.Fatal(err)
	}
	u, err := db.CreateUser(ctx, "bench@example.com", hash, []string{"member"})
	if err != nil {
		b.Fatal(err)
	}
	n, err := db.CreateNote(ctx, u.ID, "bench", "a note read by the benchmark")
	if err != nil {
		b.Fatal(err)
	}
	login, err := proto.Marshal(&authv1.LoginRequest{Email: u.Email, Password: "bench password 1"})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/guard.auth.v1.AuthService/Login", bytes.NewReader(login))
	req.Header.Set("Content-Type", "application/proto")
	rec := httptest.NewRecorder()
	full.ServeHTTP(rec, req)
	var res authv1.LoginResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &res); err != nil || rec.Code != http.StatusOK {
		b.Fatalf("login: HTTP %d, %v", rec.Code, err)
	}
	tok := res.GetAccessToken()
	body, err := proto.Marshal(&notesv1.GetNoteRequest{Id: n.ID})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{bare: bare, full: full, token: tok, body: body}
}

// call sends GetNote over Connect (binary) to h in-process.
func (e *benchEnv) call(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodPost, "/guard.notes.v1.NoteService/GetNote", bytes.NewReader(e.body))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+e.token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("got HTTP %d %s, want 200", rec.Code, rec.Body)
	}
}

// BenchmarkGetNote measures one call through the bare handler and through
// the full chain (HTTP layer, authn with a cached token, authz, validation,
// ownership lookup), separately for exact allocs/op.
func BenchmarkGetNote(b *testing.B) {
	e := newBenchEnv(b)
	for _, tt := range []struct {
		name string
		h    http.Handler
	}{{"bare", e.bare}, {"full", e.full}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e.call(b, tt.h)
			}
		})
	}
}

// BenchmarkGetNoteRatio runs the bare and full handlers alternately in
// blocks of 64 calls and reports the median of the per-pair time ratios
// (full/bare): on shared, noisy machines only paired ratios are stable.
func BenchmarkGetNoteRatio(b *testing.B) {
	e := newBenchEnv(b)
	const block = 64
	var ratios []float64
	for b.Loop() {
		start := time.Now()
		for range block {
			e.call(b, e.bare)
		}
		bare := time.Since(start)
		start = time.Now()
		for range block {
			e.call(b, e.full)
		}
		ratios = append(ratios, float64(time.Since(start))/float64(bare))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "full/bare")
	b.ReportMetric(0, "ns/op") // a loop iteration is 128 calls; the ratio is the result
}
