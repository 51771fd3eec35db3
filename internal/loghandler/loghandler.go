// Package loghandler is the server's slog.Handler: slog's own text and
// JSON formats, byte for byte, with every record's time in UTC, written
// faster for the records the server writes most (the access line of each
// call: a flat list of strings, integers and durations).
//
// A record whose attributes are all strings, integers, booleans or
// durations, on a handler without WithAttrs or WithGroup, is encoded here;
// any other record goes to slog's handler unchanged. The output is the
// same either way, which the tests check against slog on hostile input:
// so are slog's guarantees for a log reader, that a value a caller chose
// (a path, a header) is quoted or escaped and cannot start a line, or a
// JSON field, of its own.
//
// Both paths write each record with one Write call, under one lock.
package loghandler

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format is the line format: Text (slog.TextHandler's) or JSON
// (slog.JSONHandler's).
type Format int

// The formats.
const (
	Text Format = iota
	JSON
)

// Handler writes records to one writer. Create one with New.
type Handler struct {
	format Format
	level  slog.Leveler
	w      *lockedWriter
	slow   slog.Handler // slog's handler on w, for what the fast path does not encode
}

// lockedWriter serializes the Write calls of both paths.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// New returns a Handler writing records of level at least level (nil:
// Info) to w in format.
func New(w io.Writer, format Format, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	lw := &lockedWriter{w: w}
	opts := &slog.HandlerOptions{Level: level}
	var slow slog.Handler = slog.NewTextHandler(lw, opts)
	if format == JSON {
		slow = slog.NewJSONHandler(lw, opts)
	}
	return &Handler{format: format, level: level, w: lw, slow: slow}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	r.Time = r.Time.UTC()
	if !fast(r) {
		return h.slow.Handle(ctx, r)
	}
	bp := buffers.Get().(*[]byte)
	b := (*bp)[:0]
	if h.format == JSON {
		b = appendJSON(b, r)
	} else {
		b = appendText(b, r)
	}
	_, err := h.w.Write(b)
	if cap(b) <= 16<<10 { // a huge record's buffer is not kept
		*bp = b
		buffers.Put(bp)
	}
	return err
}

// WithAttrs implements slog.Handler; the handler it returns takes the
// slow path.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return utc{h.slow.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler; the handler it returns takes the
// slow path.
func (h *Handler) WithGroup(name string) slog.Handler {
	return utc{h.slow.WithGroup(name)}
}

// utc is slog's handler, with the record's time in UTC.
type utc struct{ slog.Handler }

func (u utc) Handle(ctx context.Context, r slog.Record) error {
	r.Time = r.Time.UTC()
	return u.Handler.Handle(ctx, r)
}

func (u utc) WithAttrs(attrs []slog.Attr) slog.Handler { return utc{u.Handler.WithAttrs(attrs)} }
func (u utc) WithGroup(name string) slog.Handler       { return utc{u.Handler.WithGroup(name)} }

// fast reports whether the fast path encodes r: attributes with a key,
// of the scalar kinds it knows, and a time slog would not refuse.
func fast(r slog.Record) bool {
	if y := r.Time.Year(); !r.Time.IsZero() && (y < 0 || y >= 10000) {
		return false
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
			ok = a.Key != ""
		default:
			ok = false
		}
		return ok
	})
	return ok
}

func appendText(b []byte, r slog.Record) []byte {
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendMillis(b, r.Time)
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendTextString(b, r.Level.String())
	b = append(b, " msg="...)
	b = appendTextString(b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ' ')
		b = appendTextString(b, a.Key)
		b = append(b, '=')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b = appendTextString(b, v.String())
		case slog.KindDuration:
			b = append(b, v.Duration().String()...)
		default:
			b = appendScalar(b, v)
		}
		return true
	})
	return append(b, '\n')
}

func appendJSON(b []byte, r slog.Record) []byte {
	b = append(b, '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendJSONString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		b = appendJSONString(b, a.Key)
		b = append(b, ':')
		switch v := a.Value; v.Kind() {
		case slog.KindString:
			b = appendJSONString(b, v.String())
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10) // nanoseconds, as json.Marshal
		default:
			b = appendScalar(b, v)
		}
		return true
	})
	return append(b, "}\n"...)
}

// appendScalar writes an integer or a boolean, the same in both formats.
func appendScalar(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	default: // KindBool, the only other kind fast lets through
		return strconv.AppendBool(b, v.Bool())
	}
}

// appendMillis writes t as slog's text format does: RFC 3339 with exactly
// three digits of fractional seconds, truncated.
func appendMillis(b []byte, t time.Time) []byte {
	const withMillis = "2006-01-02T15:04:05.000Z07:00"
	return t.AppendFormat(b, withMillis)
}

// appendTextString writes s bare, or quoted with Go's escapes when it is
// empty or holds anything but printable, non-space characters other than
// '=' and '"': a line break, a quote or a space cannot end the value.
func appendTextString(b []byte, s string) []byte {
	if textNeedsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func textNeedsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if textQuote[c] {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// textQuote and jsonEscape mark the ASCII bytes that make a text value
// quoted, and that a JSON string escapes.
var textQuote, jsonEscape = func() (text, json [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		text[c] = c < 0x20 || c == ' ' || c == '=' || c == '"'
		json[c] = c < 0x20 || c == '"' || c == '\\'
	}
	return text, json
}()

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: control characters, quotes
// and backslashes escaped, invalid UTF-8 as U+FFFD, and U+2028 and U+2029
// (line breaks to JavaScript) escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonEscape[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
