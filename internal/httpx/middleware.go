// Package httpx holds Tollgate's HTTP plumbing: the middleware every request
// passes through (request ID, client IP, access log, panic recovery, security
// headers, body limits) and strict JSON decoding for the control plane.
//
// Middleware has the shape func(http.Handler) http.Handler and is composed
// once, at start-up.
package httpx

import (
	"bufio"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/reqtarget"
)

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain composes middleware so that the first one is outermost.
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// IDGenerator makes request IDs: a random per-process prefix and a counter,
// unique across nodes with overwhelming probability and cheap to make. It is
// safe for concurrent use.
type IDGenerator struct {
	prefix string
	n      atomic.Uint64
}

// NewIDGenerator returns a generator with a fresh random prefix.
func NewIDGenerator() *IDGenerator {
	var b [5]byte
	_, _ = rand.Read(b[:])
	enc := base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
	return &IDGenerator{prefix: "req_" + enc.EncodeToString(b[:]) + "-"}
}

// Next returns a new request ID.
func (g *IDGenerator) Next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// ClientIPFunc resolves the client address of a request (see package clientip).
type ClientIPFunc func(r *http.Request) netip.Addr

// RequestInfo attaches a reqinfo.Info with a request ID and the client IP,
// echoes the ID in X-Request-Id, and writes one access-log line per request
// when log is not nil.
func RequestInfo(ids *IDGenerator, clientIP ClientIPFunc, clk clock.Clock, log AccessLogger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := clk.Now()
			info := &reqinfo.Info{ID: ids.Next(), ClientIP: clientIP(r), UserAgent: r.UserAgent()}
			w.Header()["X-Request-Id"] = []string{info.ID}
			rec := NewRecorder(w)
			next.ServeHTTP(rec, r.WithContext(reqinfo.With(r.Context(), info)))
			if log != nil {
				end := clk.Now()
				log.LogRequest(r, rec, info, end, end.Sub(start))
			}
		})
	}
}

// Recorder notes the status and body size of a response. It passes Flush
// and Hijack through (Unwrap), as streaming and WebSocket upgrades need.
type Recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *Recorder) WriteHeader(code int) {
	if r.status == 0 || (r.status < 200 && code >= 200) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// NewRecorder returns a Recorder writing to w.
func NewRecorder(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Status is the status sent: 0 before anything was written, 101 after a
// Hijack.
func (r *Recorder) Status() int { return r.status }

// Bytes is the number of body bytes written.
func (r *Recorder) Bytes() int64 { return r.bytes }

// Hijack lets a WebSocket upgrade take the connection; the status logged is
// 101 Switching Protocols.
func (r *Recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Flush implements http.Flusher for streaming responses.
func (r *Recorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Recover turns a panic in a handler into a 500 and a log line, keeping the
// server up. http.ErrAbortHandler is re-raised, as net/http expects.
func Recover(log *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error("panic serving request", "request_id", reqinfo.From(r.Context()).ID, "panic", fmt.Sprint(v))
				apierror.Write(w, r, fmt.Errorf("panic: %v", v))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// HSTS sets Strict-Transport-Security on every response sent over TLS.
func HSTS(maxAge time.Duration, includeSubdomains bool) Middleware {
	value := "max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	if includeSubdomains {
		value += "; includeSubDomains"
	}
	return func(next http.Handler) http.Handler {
		if maxAge <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil {
				w.Header()["Strict-Transport-Security"] = []string{value}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody refuses a request whose declared length exceeds limit and bounds
// the reading of any other body to limit bytes.
func LimitBody(limit int64) Middleware {
	tooLarge := apierror.New(http.StatusRequestEntityTooLarge, apierror.PayloadTooLarge,
		fmt.Sprintf("request body exceeds %d bytes", limit))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				apierror.Write(w, r, tooLarge)
				return
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CanonicalTarget makes the request's path canonical (package reqtarget)
// before anything routes or decides on it, and refuses an ambiguous target
// with 400 BAD_REQUEST, reason ambiguous_path. The request the next handler
// gets has the canonical path in URL.Path and URL.RawPath; RequestURI stays
// as the client sent it, for the request signatures that cover it.
func CanonicalTarget() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, err := reqtarget.Parse(r.RequestURI)
			if err != nil {
				apierror.Write(w, r, AmbiguousTarget(err))
				return
			}
			raw := t.RawPath
			if raw == t.Path {
				raw = ""
			}
			if r.URL.Path != t.Path || r.URL.RawPath != raw {
				u := *r.URL
				u.Path, u.RawPath = t.Path, raw
				r2 := *r
				r2.URL = &u
				r = &r2
			}
			next.ServeHTTP(w, r)
		})
	}
}

// AmbiguousTarget is the refusal of a request target that reqtarget.Parse
// refused with err.
func AmbiguousTarget(err error) *apierror.Error {
	msg := "the request target is ambiguous"
	var re *reqtarget.Error
	if errors.As(err, &re) {
		msg += ": " + re.Reason
	}
	return apierror.New(http.StatusBadRequest, apierror.BadRequest, msg).WithReason(apierror.ReasonAmbiguousPath).Wrap(err)
}
