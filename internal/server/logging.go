package server

import (
	"log/slog"
)

// utcTime writes the time of every log record in UTC, whatever the
// machine's zone, so lines from replicas in different zones sort and
// join (by trace id, request id) without conversion.
func utcTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		a.Value = slog.TimeValue(a.Value.Time().UTC())
	}
	return a
}
