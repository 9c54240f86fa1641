package gateway

import (
	"bufio"
	"context"
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

// serveMetered serves r through serve and reports it to the meter.
func (g *Gateway) serveMetered(w http.ResponseWriter, r *http.Request) {
	start := g.clock.Now()
	mw := &meterWriter{Recorder: httpx.NewRecorder(w), g: g}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	rt, err := g.serve(mw, r)
	if err != nil {
		apierror.Write(mw, r, err)
	}
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
		e.Status = http.StatusOK
	}
	if p := info.Principal; p != nil {
		e.OrgID, e.AppID, e.CredentialID, e.AuthMethod = p.OrgID, p.AppID, p.CredentialID, string(p.Method)
	}
	if body != nil {
		e.RequestBytes = body.n.Load()
	}
	e.ResponseBytes = mw.Bytes()
	if err == nil && rt != nil {
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
		g.sessions.Done()
	}
	e.Latency = g.clock.Now().Sub(start)
	g.meter(&e, info.Reason)
}

// WaitSessions waits until every upgraded (WebSocket) session has been
// metered, or ctx ends. http.Server.Shutdown does not wait for hijacked
// connections; call this after it, and after the base context of the
// sessions is cancelled, so that their usage is recorded before the
// recorder stops.
func (g *Gateway) WaitSessions(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		g.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// meterWriter records a response (httpx.Recorder) and counts the bytes of
// a hijacked connection.
type meterWriter struct {
	*httpx.Recorder
	conn *countingConn
	g    *Gateway
}

// Hijack hands the connection to a protocol upgrade, counting its bytes.
func (m *meterWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := m.Recorder.Hijack()
	if err != nil {
		return nil, nil, err
	}
	m.conn = &countingConn{Conn: c}
	m.g.sessions.Add(1)
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
