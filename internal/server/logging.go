package server

import (
	"context"
	"log/slog"
)

// utcHandler writes the time of every log record in UTC, whatever the
// machine's zone, so lines from replicas in different zones sort and
// join (by trace id, request id) without conversion. It changes the
// record, once, rather than each attribute (HandlerOptions.ReplaceAttr
// would be called for every attribute of every line).
type utcHandler struct{ slog.Handler }

func (h utcHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Time = r.Time.UTC()
	return h.Handler.Handle(ctx, r)
}

func (h utcHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return utcHandler{h.Handler.WithAttrs(attrs)}
}

func (h utcHandler) WithGroup(name string) slog.Handler {
	return utcHandler{h.Handler.WithGroup(name)}
}
