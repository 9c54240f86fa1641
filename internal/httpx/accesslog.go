package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate/tollgate/internal/jsontext"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// An AccessLogger writes the access-log line of a finished request: rec is
// its response, end the time it finished, d how long it took.
type AccessLogger interface {
	LogRequest(r *http.Request, rec *Recorder, info *reqinfo.Info, end time.Time, d time.Duration)
}

// accessLevel is the level of a request's line: ERROR for a 5xx, INFO
// otherwise.
func accessLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}

func recordedStatus(rec *Recorder) int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// SlogAccessLog writes access-log lines through log, in whatever format its
// handler has.
func SlogAccessLog(log *slog.Logger) AccessLogger { return slogAccess{log} }

type slogAccess struct{ log *slog.Logger }

func (l slogAccess) LogRequest(r *http.Request, rec *Recorder, info *reqinfo.Info, _ time.Time, d time.Duration) {
	status := recordedStatus(rec)
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", info.ID),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path), // never the query: it may carry secrets
		slog.String("proto", r.Proto),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("latency_ms", float64(d.Microseconds())/1000),
		slog.String("client_ip", info.ClientIP.String()),
		slog.String("user_agent", r.UserAgent()),
	)
	if info.Route != "" {
		attrs = append(attrs, slog.String("route", info.Route))
	}
	if p := info.Principal; p != nil {
		attrs = append(attrs, slog.String("org", p.OrgID), slog.String("credential", p.CredentialID), slog.String("auth", string(p.Method)))
	}
	if info.ErrorCode != "" {
		attrs = append(attrs, slog.String("error_code", info.ErrorCode))
	}
	if info.Reason != "" {
		attrs = append(attrs, slog.String("reason", info.Reason))
	}
	if info.Err != nil {
		attrs = append(attrs, slog.String("error", info.Err.Error()))
	}
	l.log.LogAttrs(r.Context(), accessLevel(status), "request", attrs...)
}

// JSONAccessLog writes access-log lines to w as JSON objects, one Write per
// line, with the fields and levels of SlogAccessLog over slog's JSON
// handler, and lines below level dropped. It formats a line by appending to
// a pooled buffer, several times cheaper than going through slog: it runs
// once per request.
func JSONAccessLog(w io.Writer, level slog.Leveler) AccessLogger {
	return &jsonAccess{w: w, level: level}
}

type jsonAccess struct {
	w     io.Writer
	level slog.Leveler
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (l *jsonAccess) LogRequest(r *http.Request, rec *Recorder, info *reqinfo.Info, end time.Time, d time.Duration) {
	status := recordedStatus(rec)
	level := accessLevel(status)
	if level < l.level.Level() {
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	b := appendAccessJSON((*bp)[:0], r, rec.bytes, status, level, info, end, d)
	_, _ = l.w.Write(b)
	if cap(b) <= 64<<10 { // a huge line's buffer is not kept
		*bp = b
		lineBuffers.Put(bp)
	}
}

func appendAccessJSON(b []byte, r *http.Request, bytes int64, status int, level slog.Level, info *reqinfo.Info, end time.Time, d time.Duration) []byte {
	b = append(b, `{"time":"`...)
	b = end.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":"request"`...)
	b = appendField(b, "request_id", info.ID)
	b = appendField(b, "method", r.Method)
	b = appendField(b, "path", r.URL.Path) // never the query: it may carry secrets
	b = appendField(b, "proto", r.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"client_ip":"`...)
	b = info.ClientIP.AppendTo(b) // digits, dots, colons, hex: nothing to escape
	b = append(b, '"')
	b = appendField(b, "user_agent", r.UserAgent())
	if info.Route != "" {
		b = appendField(b, "route", info.Route)
	}
	if p := info.Principal; p != nil {
		b = appendField(b, "org", p.OrgID)
		b = appendField(b, "credential", p.CredentialID)
		b = appendField(b, "auth", string(p.Method))
	}
	if info.ErrorCode != "" {
		b = appendField(b, "error_code", info.ErrorCode)
	}
	if info.Reason != "" {
		b = appendField(b, "reason", info.Reason)
	}
	if info.Err != nil {
		b = appendField(b, "error", info.Err.Error())
	}
	return append(b, "}\n"...)
}

// appendField appends ,"key":"value"; key needs no escaping.
func appendField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return jsontext.AppendString(b, value)
}
