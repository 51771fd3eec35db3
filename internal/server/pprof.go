package server

import (
	"context"
	"expvar"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof serves the runtime's profiles (/debug/pprof/) and expvar
// (/debug/vars: memstats, the command line) on ln until ctx is done. It is
// its own listener, never the API's: nothing of it is reachable through
// the API's address, and -pprof-addr is loopback unless forced.
func servePprof(ctx context.Context, ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	servePrivate(ctx, ln, mux, "pprof listener", log)
}

// servePrivate serves h on ln, a private listener (pprof, metrics), until
// ctx is done; name says which in the log.
func servePrivate(ctx context.Context, ln net.Listener, h http.Handler, name string, log *slog.Logger) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Error(name, "error", err)
	}
}
