package respsign

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// DefaultMaxBody is the largest body a Middleware with a zero MaxBody
// buffers and signs: 1 MiB.
const DefaultMaxBody = 1 << 20

// Reasons for an unsigned response, sent in HeaderStatus; see the package
// documentation.
const (
	ReasonTooLarge       = "too-large"
	ReasonStreamed       = "streamed"
	ReasonTrailers       = "trailers"
	ReasonUpgrade        = "upgrade"
	ReasonLengthMismatch = "length-mismatch"
	ReasonNoKey          = "no-key"
)

// Buffers above this capacity are not pooled, so that one large response
// does not pin its buffer for ever.
const maxPooledBuffer = 64 << 10

// Middleware signs the responses of the handlers it wraps with the signing
// key of Keyring. It buffers each response up to MaxBody bytes and sends it,
// once the handler returns, with X-Signature and X-Signature-Key-Id and a
// Content-Length of the exact body; the package documentation says which
// responses go through unsigned instead, and how.
//
// Wrap it outside anything that changes the body (compression), so that the
// signature covers the bytes sent. Headers a handler sets after it has
// written the status but before it returns are sent, since nothing is sent
// before; trailers declared with http.TrailerPrefix once the body is written
// are sent as trailers, unsigned.
//
// A Middleware must not be changed once Wrap has been called. The wrapped
// handler is safe for concurrent use.
type Middleware struct {
	// Keyring signs. It must not be nil.
	Keyring *Keyring
	// MaxBody is the largest body, in bytes, that is buffered and signed;
	// larger responses stream through unsigned. Zero or negative means
	// DefaultMaxBody.
	MaxBody int64
}

// Wrap returns next with its responses signed. It panics if m.Keyring is nil.
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	if m.Keyring == nil {
		panic("respsign: Middleware without a Keyring")
	}
	k, limit := m.Keyring, m.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := writers.Get().(*responseWriter)
		w.rw, w.keyring, w.max, w.head = rw, k, limit, r.Method == http.MethodHead
		// Not deferred: if next panics, nothing buffered is sent.
		next.ServeHTTP(w, r)
		w.finish()
		if w.mode != hijacked {
			w.release()
		}
	})
}

var writers = sync.Pool{New: func() any { return &responseWriter{buf: make([]byte, 0, 4096), declared: -1} }}

type mode uint8

const (
	buffering mode = iota // nothing sent yet
	passing               // status and headers sent, unsigned; the body goes through
	hijacked              // the connection was hijacked
)

// responseWriter buffers a response to sign it, or lets it through. Its
// header map is the underlying writer's, which sends nothing before
// WriteHeader.
type responseWriter struct {
	rw        http.ResponseWriter
	keyring   *Keyring
	max       int64
	head      bool  // a response to HEAD: no body is sent
	status    int   // 0 until the handler writes the header
	mode      mode  // what has been sent
	declared  int64 // the Content-Length the handler declared, or -1
	discarded int64 // bytes written to a HEAD response
	buf       []byte
}

func (w *responseWriter) release() {
	buf := w.buf[:0]
	if cap(buf) > maxPooledBuffer {
		buf = make([]byte, 0, 4096)
	}
	*w = responseWriter{buf: buf, declared: -1}
	writers.Put(w)
}

// Header returns the underlying writer's header map.
func (w *responseWriter) Header() http.Header { return w.rw.Header() }

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.rw }

// WriteHeader records the status; informational (1xx) responses other than
// 101 are sent at once. A 101, declared trailers or a declared
// Content-Length above the limit send the headers at once, unsigned.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.rw.WriteHeader(code)
		return
	}
	if w.mode != buffering {
		w.rw.WriteHeader(code) // superfluous: net/http says so
		return
	}
	if w.status != 0 {
		return // superfluous, and nothing sent yet to complain
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	w.status = code
	h := w.rw.Header()
	switch {
	case code == http.StatusSwitchingProtocols:
		_ = w.pass(ReasonUpgrade)
	case len(h["Trailer"]) > 0:
		_ = w.pass(ReasonTrailers)
	default:
		w.declared = declaredLength(h)
		if w.declared > w.max && w.sendsBody() {
			_ = w.pass(ReasonTooLarge)
		}
	}
}

// bodyAllowed reports whether the status allows a body, as net/http's
// bodyAllowedForStatus.
func (w *responseWriter) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

// sendsBody reports whether a body is sent.
func (w *responseWriter) sendsBody() bool { return !w.head && w.bodyAllowed() }

// Write buffers p, or writes it through once the response is unsigned; it
// fails as net/http does for a body the status does not allow or beyond the
// declared Content-Length.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.mode == buffering && w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch w.mode {
	case passing:
		return w.rw.Write(p)
	case hijacked:
		return 0, http.ErrHijacked
	case buffering:
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	n := int64(len(w.buf)) + w.discarded + int64(len(p))
	if w.declared >= 0 && n > w.declared {
		return 0, http.ErrContentLength
	}
	if w.head {
		w.discarded += int64(len(p))
		return len(p), nil
	}
	if n > w.max {
		if err := w.pass(ReasonTooLarge); err != nil {
			return 0, err
		}
		return w.rw.Write(p)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// FlushError flushes a streaming response (see streaming): it sends the
// response so far, unsigned, and flushes it; from then on the body goes
// through. A flush of any other response is deferred: the body stays
// buffered, to be signed whole, and goes out when the handler returns (or
// unsigned once it outgrows the limit). httputil.ReverseProxy flushes after
// every write of an upstream body without a Content-Length, which is how
// most JSON APIs answer; signing those is the point.
func (w *responseWriter) FlushError() error {
	switch w.mode {
	case hijacked:
		return http.ErrHijacked
	case buffering:
		if !streaming(w.rw.Header()) {
			return nil
		}
		if w.status == 0 {
			w.WriteHeader(http.StatusOK)
		}
		if w.mode == buffering {
			if err := w.pass(ReasonStreamed); err != nil {
				return err
			}
		}
	case passing:
	}
	return http.NewResponseController(w.rw).Flush()
}

// streaming reports whether h is the header of a response meant to be
// read as it is written: Server-Sent Events or a stream of JSON values.
func streaming(h http.Header) bool {
	ct := h.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "text/event-stream", "application/x-ndjson", "application/jsonl", "application/stream+json", "application/json-seq":
		return true
	}
	return false
}

// Flush is FlushError without the error, for http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Hijack hijacks the underlying connection. The response is unsigned;
// HeaderStatus is set in the header map, where httputil.ReverseProxy reads
// the headers of the 101 it writes to the hijacked connection.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.mode == buffering {
		if w.status == 0 {
			setUnsigned(w.rw.Header(), ReasonUpgrade)
		} else if err := w.pass(ReasonUpgrade); err != nil {
			return nil, nil, err
		}
	}
	conn, brw, err := http.NewResponseController(w.rw).Hijack()
	if err == nil {
		w.mode = hijacked
	}
	return conn, brw, err
}

// pass sends the status, the headers marked unsigned for reason and the body
// buffered so far; the rest of the body goes through.
func (w *responseWriter) pass(reason string) error {
	setUnsigned(w.rw.Header(), reason)
	w.mode = passing
	w.rw.WriteHeader(w.status)
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.rw.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// finish sends a buffered response, signed.
func (w *responseWriter) finish() {
	if w.mode == buffering && w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.mode != buffering {
		return
	}
	h := w.rw.Header()
	vals := make([]string, 3) // one allocation for the values of three headers
	var body []byte
	switch {
	case w.sendsBody():
		body = w.buf
		if w.declared >= 0 && w.declared != int64(len(body)) {
			// Short: let net/http break the response as it would.
			_ = w.pass(ReasonLengthMismatch)
			return
		}
		if !hasTrailers(h) { // trailers need the chunked framing
			vals[2] = strconv.Itoa(len(body))
			h["Content-Length"] = vals[2:3:3]
		}
	case w.head && w.bodyAllowed() && w.declared < 0 && w.discarded > 0:
		// The length of the body not sent, as net/http sets it.
		vals[2] = strconv.FormatInt(w.discarded, 10)
		h["Content-Length"] = vals[2:3:3]
	}
	kid, sig := w.keyring.Sign(body)
	if kid == "" {
		_ = w.pass(ReasonNoKey)
		return
	}
	delete(h, HeaderStatus)
	vals[0], vals[1] = sig, kid
	h[HeaderSignature] = vals[0:1:1]
	h[HeaderKeyID] = vals[1:2:2]
	w.rw.WriteHeader(w.status)
	if len(body) > 0 {
		_, _ = w.rw.Write(body) // the client is gone; nothing to tell the handler
	}
}

// setUnsigned removes any signature headers from h and marks it unsigned.
func setUnsigned(h http.Header, reason string) {
	delete(h, HeaderSignature)
	delete(h, HeaderKeyID)
	h[HeaderStatus] = []string{`unsigned; reason="` + reason + `"`}
}

// declaredLength returns the Content-Length in h, or -1.
func declaredLength(h http.Header) int64 {
	v := h["Content-Length"]
	if len(v) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v[0]), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// hasTrailers reports whether h declares trailers or holds some.
func hasTrailers(h http.Header) bool {
	if len(h["Trailer"]) > 0 {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
)
