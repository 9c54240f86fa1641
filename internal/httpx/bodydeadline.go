package httpx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
)

// BodyDeadlineOptions configure BodyDeadline.
type BodyDeadlineOptions struct {
	// Timeout is the time a request body has to arrive, counted from the
	// end of its headers; MinRate extends it. It must be positive.
	Timeout time.Duration
	// MinRate, in bytes per second, extends Timeout by one second for
	// every MinRate bytes received, as Apache's mod_reqtimeout does
	// (body=20,MinRate=500). 0: no extension, the whole body must arrive
	// within Timeout.
	MinRate int64
	// OnTimeout, when set, is told of each request whose body was cut, on
	// the request's goroutine, once the handler has returned. It must not
	// block.
	OnTimeout func(r *http.Request, cut SlowBody)
}

// SlowBody describes a request body cut by BodyDeadline.
type SlowBody struct {
	// Received is the number of body bytes the handler read before the cut.
	Received int64
	// Elapsed is the time from the end of the headers to the end of the
	// handler.
	Elapsed time.Duration
	// Answered says the client was answered 408 REQUEST_TIMEOUT. It is
	// false when the response had begun before the cut (the connection, or
	// the HTTP/2 stream, is then cut short), and when the handler had
	// answered without reading the body (its answer is sent, and the
	// connection closed).
	Answered bool
}

// BodyDeadline bounds the time a request body may take, so that a client
// cannot hold a connection and a handler by sending its body a byte at a
// time: the body must arrive within opts.Timeout of the headers, extended by
// one second for every opts.MinRate bytes received. The deadline is a read
// deadline set through http.ResponseController: on the connection for
// HTTP/1.x, on the stream for HTTP/2. It binds whoever reads the body: a
// handler, or a reverse proxy's transport streaming it upstream.
//
// A read past the deadline fails with an *apierror.Error of status 408 and
// code REQUEST_TIMEOUT (BodyTimedOut reports it to the handler's writer).
// Whatever the handler then answers, the client is answered 408 with that
// error, unless the response had begun already; an HTTP/1.x connection is
// closed after it, since the rest of the body is still on the wire.
//
// A handler that answers an HTTP/1.x request without reading all of its
// body (a refusal, typically) has the rest read and discarded before its
// answer goes out, as net/http would do itself (up to 256 KiB; with more
// left, net/http closes the connection instead), but within Timeout and
// without extension, since nobody needs that body. If it does not arrive in
// time, the handler's answer is sent all the same (it says more than a
// 408), the connection is closed, and the cut is reported like the others.
// With Expect: 100-continue the client sends no body unless it is read, so
// none is awaited. Handlers must not use ResponseController.EnableFullDuplex.
//
// The deadline is set when the headers have been read, moved when the first
// read comes late (a handler slow to start reading is not the client's
// fault), then moved forward as bytes arrive, in steps: only when it gains
// at least a quarter of Timeout and at least what is left of it, so that a
// large or fast body costs a few deadline updates, not one per read. A
// client that falls behind MinRate is cut after at most Timeout plus what
// it had earned; one that stalls may be cut after half of what it had
// earned.
//
// Requests without a body cost nothing. A body read to its end clears the
// deadline of an HTTP/1.x connection: net/http then keeps a read pending to
// notice the client leaving, and would take the deadline for it leaving. A
// hijacked connection (a WebSocket upgrade) keeps no body deadline. Writers
// that cannot set read deadlines (httptest.ResponseRecorder) are served
// unguarded.
//
// Deadlines are enforced by the network poller against the system clock,
// so they are computed from time.Now, not from an injected clock.
func BodyDeadline(o BodyDeadlineOptions) Middleware {
	msg := fmt.Sprintf("request body not received in time: %v allowed, plus 1s for every %d bytes", o.Timeout, o.MinRate)
	if o.MinRate <= 0 {
		msg = fmt.Sprintf("request body not received within %v", o.Timeout)
	}
	errTimeout := apierror.New(http.StatusRequestTimeout, apierror.RequestTimeout, msg)
	step := o.Timeout / 4
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !hasBody(r) {
				next.ServeHTTP(w, r)
				return
			}
			now := time.Now()
			b := &bodyGuard{
				rw: w, req: r, body: r.Body, err: errTimeout,
				timeout: o.Timeout, rate: o.MinRate, step: step, h1: r.ProtoMajor == 1,
				t0: now, anchor: now, deadline: now.Add(o.Timeout),
			}
			if b.h1 {
				b.expectContinue = strings.EqualFold(strings.TrimSpace(r.Header.Get("Expect")), "100-continue")
			}
			b.noteHeaders()
			if http.NewResponseController(w).SetReadDeadline(b.deadline) != nil {
				next.ServeHTTP(w, r) // nothing to enforce with
				return
			}
			r.Body = (*bodyReader)(b)
			next.ServeHTTP((*bodyWriter)(b), r)
			b.finish(o.OnTimeout)
		})
	}
}

// hasBody reports whether r may have a body. HTTP/1.x requests without one
// have http.NoBody; an HTTP/2 request's body is never NoBody, and its
// length is 0 both when the stream was ended with the headers and when
// Content-Length: 0 was declared on a stream left open, which a client
// could then hold: only the first is bodiless.
func hasBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	if r.ContentLength != 0 {
		return true
	}
	_, declared := r.Header["Content-Length"]
	return declared
}

// BodyTimedOut reports whether the body of the request w answers was cut by
// BodyDeadline. w is the handler's writer or one wrapping it (through
// Unwrap() http.ResponseWriter).
func BodyTimedOut(w http.ResponseWriter) bool {
	for {
		switch t := w.(type) {
		case *bodyWriter:
			return t.timedOut.Load()
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return false
		}
	}
}

// bodyGuard is the state of one guarded request: its body (bodyReader) and
// its writer (bodyWriter) are views of it, so that a request with a body
// costs one allocation.
type bodyGuard struct {
	rw      http.ResponseWriter // the writer BodyDeadline was given
	req     *http.Request
	body    io.ReadCloser // the original body
	err     *apierror.Error
	timeout time.Duration
	rate    int64
	step    time.Duration
	h1      bool
	t0      time.Time // the end of the headers
	// expectContinue: the client waits for 100 Continue before sending
	// the body, which it is not sent if the handler does not read.
	expectContinue bool
	// The response headers set before the handler's (X-Request-Id, HSTS):
	// a 408 keeps them and drops the handler's (WWW-Authenticate, ...).
	outer     [4]string
	outerAll  bool // more than fit in outer: the 408 keeps every header
	outerSize int

	// The reader's, under mu: a proxy's transport reads on its own
	// goroutine, and the handler's may drain what is left (begin).
	mu       sync.Mutex
	anchor   time.Time // from when Timeout counts: t0, or a late first read
	deadline time.Time // the read deadline set
	reading  bool      // the first read happened
	ended    bool      // EOF was read; the deadline is cleared
	draining bool      // the handler answered: no more extension
	received atomic.Int64

	timedOut atomic.Bool
	hijacked atomic.Bool

	// The handler goroutine's.
	began    bool // the response began
	replaced bool // ... as the 408 of the timeout, not the handler's
}

// setDeadline moves the read deadline to d.
func (b *bodyGuard) setDeadline(d time.Time) {
	if b.hijacked.Load() {
		return // the connection is the session's now
	}
	b.deadline = d
	_ = http.NewResponseController(b.rw).SetReadDeadline(d)
}

// bodyReader is the request body seen by the handler.
type bodyReader bodyGuard

func (br *bodyReader) Read(p []byte) (int, error) {
	b := (*bodyGuard)(br)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.reading {
		b.reading = true
		if time.Since(b.anchor) >= b.step { // the monotonic clock alone: cheaper than time.Now
			now := time.Now() // the handler was late to read
			b.anchor = now
			b.setDeadline(now.Add(b.timeout))
		}
	}
	n, err := b.body.Read(p)
	if n > 0 {
		total := b.received.Add(int64(n))
		if b.rate > 0 && !b.ended && !b.draining {
			b.extend(total)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.ended {
			b.ended = true
			if b.h1 && !b.timedOut.Load() {
				b.setDeadline(time.Time{})
			}
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(true)
		return n, b.err.Wrap(err)
	}
	return n, err
}

// maxCounted bounds the bytes counted, so that the credit in nanoseconds
// cannot overflow.
const maxCounted = 1 << 33

// extend moves the deadline forward for total bytes received when it gains
// at least a step and at least what is left of the deadline set.
func (b *bodyGuard) extend(total int64) {
	credit := time.Duration(min(total, maxCounted)) * time.Second / time.Duration(b.rate)
	ideal := b.anchor.Add(b.timeout + credit)
	gain := ideal.Sub(b.deadline)
	if gain < b.step || gain < time.Until(b.deadline) {
		return
	}
	b.setDeadline(ideal)
}

func (br *bodyReader) Close() error { return br.body.Close() }

// bodyWriter is the writer seen by the handler: the writer BodyDeadline was
// given, with the handler's response replaced by the 408 of a timeout.
type bodyWriter bodyGuard

func (bw *bodyWriter) Header() http.Header { return bw.rw.Header() }

func (bw *bodyWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if !bw.began && !bw.timedOut.Load() {
			bw.rw.WriteHeader(code) // informational: the response is still to come
		}
		return
	}
	if (*bodyGuard)(bw).begin() {
		return
	}
	bw.rw.WriteHeader(code)
}

func (bw *bodyWriter) Write(p []byte) (int, error) {
	if (*bodyGuard)(bw).begin() {
		return 0, bw.err
	}
	return bw.rw.Write(p)
}

// Flush implements http.Flusher.
func (bw *bodyWriter) Flush() {
	if (*bodyGuard)(bw).begin() {
		return
	}
	_ = http.NewResponseController(bw.rw).Flush()
}

// Hijack hands the connection over (a WebSocket upgrade) without the body's
// read deadline: net/http clears a connection's deadlines when it is
// hijacked, and so does Hijack, whatever net/http's version.
func (bw *bodyWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	bw.hijacked.Store(true)
	c, brw, err := http.NewResponseController(bw.rw).Hijack()
	if err == nil {
		_ = c.SetReadDeadline(time.Time{})
		bw.began = true
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the connection.
func (bw *bodyWriter) Unwrap() http.ResponseWriter { return bw.rw }

// begin is called before any part of the final response is written; it
// reports whether the handler's response is replaced by the 408 of a timed
// out body, which it then writes.
func (b *bodyGuard) begin() bool {
	if b.replaced {
		return true
	}
	if b.began {
		return false
	}
	b.began = true
	if b.h1 && !b.expectContinue && !b.timedOut.Load() && !b.hijacked.Load() {
		if b.drain() {
			// The handler answered without the body, which came too
			// slowly: its answer says more than a 408 would. The rest of
			// the body is on the wire: the connection is closed.
			b.rw.Header().Set("Connection", "close")
			return false
		}
	}
	if !b.timedOut.Load() {
		return false
	}
	b.answer()
	return true
}

// maxDrain is what drain reads at most: net/http's own bound on the body
// it reads after a handler (maxPostHandlerReadBytes).
const maxDrain = 256 << 10

// drain reads and discards what is left of an HTTP/1.x body before the
// response, as net/http would (the client may be sending the whole request
// before reading the response), but within Timeout and without extension:
// a body nobody needs earns no time. A body with more than maxDrain bytes
// left is not read: net/http closes the connection after the response
// instead. drain reports whether the body timed out.
func (b *bodyGuard) drain() (cut bool) {
	b.mu.Lock()
	ended := b.ended
	b.draining = true
	if limit := time.Now().Add(b.timeout); !ended && b.reading && b.deadline.After(limit) {
		b.setDeadline(limit) // what was earned by a partial read is not for this
	}
	b.mu.Unlock()
	if ended {
		return false
	}
	if cl := b.req.ContentLength; cl > 0 && cl-b.received.Load() > maxDrain {
		return false
	}
	_, _ = io.CopyN(io.Discard, (*bodyReader)(b), maxDrain+1)
	return b.timedOut.Load()
}

// answer writes the 408 in place of the handler's response. HTTP/1.x
// connections are closed after it: what is left of the body is still on
// the wire.
func (b *bodyGuard) answer() {
	b.replaced = true
	h := b.rw.Header()
	if !b.outerAll {
		for k := range h {
			if !slices.Contains(b.outer[:b.outerSize], k) {
				delete(h, k)
			}
		}
	}
	if b.h1 {
		h.Set("Connection", "close")
	}
	apierror.Write(b.rw, b.req, b.err)
}

// noteHeaders notes the names of the response headers set so far.
func (b *bodyGuard) noteHeaders() {
	h := b.rw.Header()
	if len(h) > len(b.outer) {
		b.outerAll = true
		return
	}
	for k := range h {
		b.outer[b.outerSize] = k
		b.outerSize++
	}
}

// finish answers a timed out request the handler left unanswered, and
// reports the cut.
func (b *bodyGuard) finish(report func(*http.Request, SlowBody)) {
	if !b.timedOut.Load() {
		return
	}
	if !b.began {
		b.began = true
		b.answer()
	}
	if report != nil {
		report(b.req, SlowBody{Received: b.received.Load(), Elapsed: time.Since(b.t0), Answered: b.replaced})
	}
}

var (
	_ http.ResponseWriter = (*bodyWriter)(nil)
	_ http.Flusher        = (*bodyWriter)(nil)
	_ http.Hijacker       = (*bodyWriter)(nil)
	_ io.ReadCloser       = (*bodyReader)(nil)
)
