package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// A Meter is told of every request the gateway answered, admitted or
// refused, once its response is complete (for a WebSocket session: once the
// session is over). reason is the refusal's reason, if any. The event is the
// caller's only for the call; a Meter that keeps it copies it. It must not
// block: it runs on the request's goroutine.
type Meter func(e *store.UsageEvent, reason string)

// bytesPerMB is the megabyte of Route.WebSocketUnitsPerMB.
const bytesPerMB = 1_000_000

// serveMetered serves r and reports it to the meter once the response is
// over, however it ends: answered, refused, cut by the client or by a
// shutdown, or aborted by a panic (httputil.ReverseProxy aborts a response
// whose body it cannot finish copying with http.ErrAbortHandler). An admitted
// request was charged when it was decided; its usage event is its record.
func (g *Gateway) serveMetered(w http.ResponseWriter, r *http.Request) {
	start := g.clock.Now()
	mw := &meterWriter{Recorder: httpx.NewRecorder(w)}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	var admitted *route // set once r is admitted, and so charged
	defer func() {
		v := recover()
		g.meterRequest(mw, r, body, start, admitted, v)
		if v != nil {
			panic(v) // for httpx.Recover, or net/http's abort of the connection
		}
	}()
	rt, pr, end, err := g.admit(mw, r)
	if err != nil {
		apierror.Write(mw, r, err)
		return
	}
	admitted = rt
	g.unmetered.requests.Add(1)
	g.unmetered.units.Add(rt.units)
	if end != nil {
		defer end() // the session is over when the proxy returns; before metering
	}
	rt.proxy.ServeHTTP(mw, pr)
}

// meterRequest reports the request r, answered through mw, to the meter.
// rt is the route r was admitted on (charged), nil for a refusal; panicked
// is what the handler panicked with, if it did.
func (g *Gateway) meterRequest(mw *meterWriter, r *http.Request, body *countingBody, start time.Time, rt *route, panicked any) {
	info := reqinfo.From(r.Context())
	e := store.UsageEvent{
		ID:        info.ID,
		Time:      start,
		Method:    r.Method,
		Route:     info.Route,
		Path:      r.URL.Path,
		Status:    mw.Status(),
		ErrorCode: info.ErrorCode,
		ClientIP:  info.ClientIP.String(),
		UserAgent: r.UserAgent(),
	}
	if e.Status == 0 {
		switch {
		case panicked == nil:
			e.Status = http.StatusOK // what net/http sends for a handler that wrote nothing
		case isAbort(panicked):
			e.Status = StatusNoResponse // the connection is cut without an answer
		default:
			e.Status = http.StatusInternalServerError // what httpx.Recover answers
		}
	}
	if p := info.Principal; p != nil {
		e.OrgID, e.AppID, e.CredentialID, e.AuthMethod = p.OrgID, p.AppID, p.CredentialID, string(p.Method)
	}
	if body != nil {
		e.RequestBytes = body.n.Load()
	}
	e.ResponseBytes = mw.Bytes()
	if rt != nil {
		e.Units = rt.units // admitted: charged at the decision
	}
	if c := mw.conn; c != nil { // a WebSocket (or other upgraded) session
		e.WebSocket = true
		e.Status = http.StatusSwitchingProtocols
		e.RequestBytes, e.ResponseBytes = c.in.Load(), c.out.Load()
		if rt != nil && rt.unitsPerMB > 0 && info.Principal != nil {
			mb := (e.RequestBytes + e.ResponseBytes + bytesPerMB - 1) / bytesPerMB
			extra := mb * rt.unitsPerMB
			e.Units += extra
			if g.limiter != nil && extra > 0 {
				// The session is over and its context with it.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
				if err := g.limiter.Charge(ctx, info.Principal, extra); err != nil {
					g.log.Error("charging a WebSocket session's megabytes failed", "request_id", info.ID, "units", extra, "error", err)
				}
				cancel()
			}
		}
	}
	e.Latency = g.clock.Now().Sub(start)
	g.meter(&e, info.Reason)
	if rt != nil {
		g.unmetered.requests.Add(-1)
		g.unmetered.units.Add(-rt.units)
	}
}

// isAbort reports whether a handler panicked with http.ErrAbortHandler.
func isAbort(v any) bool {
	err, ok := v.(error)
	return ok && errors.Is(err, http.ErrAbortHandler)
}

// StatusNoResponse is the status metered for a request that got no answer:
// its client went away, or its connection was cut before a status was sent
// (nginx's 499).
const StatusNoResponse = 499

// Unmetered returns the number of requests admitted (and charged) that are
// still being served, not yet metered, and the units they were charged at
// their decision. A shutdown that gives up on them reports these as the
// usage it loses.
func (g *Gateway) Unmetered() (requests, units int64) {
	return g.unmetered.requests.Load(), g.unmetered.units.Load()
}

// meterWriter records a response (httpx.Recorder) and counts the bytes of
// a hijacked connection.
type meterWriter struct {
	*httpx.Recorder
	conn *countingConn
}

// Hijack hands the connection to a protocol upgrade, counting its bytes.
func (m *meterWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := m.Recorder.Hijack()
	if err != nil {
		return nil, nil, err
	}
	m.conn = &countingConn{Conn: c}
	return m.conn, brw, nil
}

// countingConn counts the bytes read from (in) and written to (out) the
// client; the two directions are copied by different goroutines.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// countingBody counts the request body bytes the upstream consumed.
// The transport may still be reading it when the response is complete.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
