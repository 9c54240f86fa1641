package httpx

import (
	"net/http"
	"time"
)

// SendChunk is the most SendDeadline sends under one deadline, in bytes: a
// client must take each SendChunk of a response within the timeout, as
// package connguard asks of connections.
const SendChunk = 32 << 10

// SendDeadline bounds each write of an HTTP/2 response, as
// server.send_timeout bounds the writes to a connection (package
// connguard): a client that stops reading one stream, by never opening its
// flow-control window, writes nothing to the connection, so the
// connection's own deadline never fires, and the handler (a reverse proxy
// holding its upstream's connection and response) would wait for good.
// Each SendChunk of the response is written and flushed under a stream
// write deadline (http.ResponseController.SetWriteDeadline) of timeout,
// cleared once it is out: a stream idle between writes (server-sent
// events) is not cut. A write that outlasts it resets the stream, fails,
// and onTimeout, when set, is told of the request (on the handler's
// goroutine; it must not block). HTTP/1.x requests, which the connection's
// deadline covers, pass through untouched, and so do writers that cannot
// set write deadlines (httptest.ResponseRecorder).
//
// The flush after each write sends the response as it is written; a
// reverse proxy writes it in chunks of its own buffer's size (32 KiB).
// Deadlines are enforced against the system clock: they are computed from
// time.Now, not from an injected clock.
func SendDeadline(timeout time.Duration, onTimeout func(*http.Request)) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor != 2 || timeout <= 0 {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			if rc.SetWriteDeadline(time.Time{}) != nil {
				next.ServeHTTP(w, r) // nothing to enforce with
				return
			}
			next.ServeHTTP(&sendWriter{ResponseWriter: w, rc: rc, timeout: timeout, req: r, onTimeout: onTimeout}, r)
		})
	}
}

// sendWriter is the ResponseWriter of SendDeadline.
type sendWriter struct {
	http.ResponseWriter
	rc        *http.ResponseController
	timeout   time.Duration
	req       *http.Request
	onTimeout func(*http.Request)
	timedOut  bool
}

func (w *sendWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), SendChunk)
		m, err := w.send(func() (int, error) {
			m, err := w.ResponseWriter.Write(p[:n])
			if err == nil {
				err = w.rc.Flush()
			}
			return m, err
		})
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Flush implements http.Flusher, under the deadline too.
func (w *sendWriter) Flush() {
	_, _ = w.send(func() (int, error) { return 0, w.rc.Flush() })
}

// send runs write under a write deadline of w.timeout, and reports a write
// that failed once the deadline had passed.
func (w *sendWriter) send(write func() (int, error)) (int, error) {
	start := time.Now()
	_ = w.rc.SetWriteDeadline(start.Add(w.timeout))
	n, err := write()
	_ = w.rc.SetWriteDeadline(time.Time{})
	if err != nil && !w.timedOut && time.Since(start) >= w.timeout {
		w.timedOut = true
		if w.onTimeout != nil {
			w.onTimeout(w.req)
		}
	}
	return n, err
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *sendWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
