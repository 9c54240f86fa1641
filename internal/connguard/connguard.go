// Package connguard protects a listener from clients that would hold a
// node's connections. A Guard wraps a net.Listener so that
//
//   - the connections open from one client address are counted and those
//     past a limit are closed at once, as are those past a limit on the
//     listener's total. The address is the TCP peer's, the only one known
//     before a request is read; IPv6 peers are counted by /64, the
//     smallest prefix a site is assigned (RFC 6177), since a host can pick
//     any address in its subnet (a site with a shorter prefix counts as
//     several peers). Peers an Exempt function names (trusted proxies, which
//     carry every client) are not limited per address;
//   - a write to a client may block for at most a send timeout: a client
//     that stops reading its response (a "slow read") has its connection
//     closed, as nginx's send_timeout does;
//   - accept errors, such as EMFILE when the process is out of file
//     descriptors, are logged at error level and counted, and still
//     returned, so that http.Server and grpc.Server retry with their
//     backoff.
//
// Refusals, accept errors and send timeouts are logged through a
// logging.Throttle each, so that a flood of them costs one line per second.
package connguard

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/logging"
)

// Reasons a connection is refused, as given to Observer.Refused.
const (
	// RefusedPerAddr: the peer's address (or IPv6 /64) has MaxPerAddr
	// connections open.
	RefusedPerAddr = "per_address"
	// RefusedTotal: the listener has MaxTotal connections open.
	RefusedTotal = "total"
)

// Observer is told what a Guard does, for metrics. Its methods must be cheap
// and safe for concurrent use.
type Observer interface {
	// Refused counts a connection closed at accept; reason is
	// RefusedPerAddr or RefusedTotal.
	Refused(reason string)
	// AcceptError counts an error of the listener's Accept.
	AcceptError()
	// SendTimeout counts a connection whose write outlasted SendTimeout.
	SendTimeout()
}

// Options configure a Guard. The zero value limits nothing and logs to
// nowhere.
type Options struct {
	// Name names the listener in log lines ("public", "admin", ...).
	Name string
	// MaxPerAddr bounds the connections open from one client address (one
	// IPv6 /64); 0: no bound.
	MaxPerAddr int
	// MaxTotal bounds the listener's open connections; 0: no bound.
	MaxTotal int
	// Exempt reports the peers MaxPerAddr does not apply to: proxies that
	// carry many clients. They count towards MaxTotal. Nil exempts nobody.
	Exempt func(netip.Addr) bool
	// SendTimeout bounds each write to a connection, of SendChunk bytes at
	// most (larger ones are split): a write that has not completed after
	// SendTimeout fails and the server closes the connection. A deadline set by the server itself (a TLS handshake's)
	// takes precedence while it is set. 0: writes are not bounded.
	SendTimeout time.Duration
	// Observer is told of refusals, accept errors and send timeouts; nil:
	// nobody.
	Observer Observer
	// Logger receives the (throttled) log lines; nil: discarded.
	Logger *slog.Logger
	// Clock paces the log lines; default clock.System{}. Write deadlines
	// are enforced by the network poller against the system clock, so
	// they are computed from it whatever Clock is.
	Clock clock.Clock
}

// Guard holds the connection counts of one listener. Create one with New;
// it is safe for concurrent use.
type Guard struct {
	o    Options
	base time.Time // origin of the monotonic times of the send timeout

	mu      sync.Mutex
	total   int
	perAddr map[netip.Addr]int // only addresses with connections open

	refusedLog, acceptLog, sendLog logging.Throttle
}

// New returns a Guard with no connection open.
func New(o Options) *Guard {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return &Guard{o: o, base: time.Now(), perAddr: make(map[netip.Addr]int)}
}

// Listen returns ln guarded by g. Closing it closes ln; connections already
// accepted stay counted until they are closed.
func (g *Guard) Listen(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

// Open returns the number of connections open through g's listeners.
func (g *Guard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// OpenFrom returns the number of connections counted against a's limit: a's
// own for IPv4, those of a's /64 for IPv6. Exempt peers are not counted.
func (g *Guard) OpenFrom(a netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.perAddr[limitKey(a)]
}

// limitKey is what a peer's connections are counted under: the address for
// IPv4, the /64 for IPv6.
func limitKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

type listener struct {
	net.Listener
	g *Guard
}

// Accept returns the next connection within the limits; those over them
// are closed and not returned.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.g.acceptFailed(err)
			}
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
	}
}

// admit counts c, or closes it when it is over a limit and returns nil.
func (g *Guard) admit(c net.Conn) net.Conn {
	var peer netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr().Unmap()
	}
	limited := g.o.MaxPerAddr > 0 && peer.IsValid() && (g.o.Exempt == nil || !g.o.Exempt(peer))
	key := limitKey(peer)
	g.mu.Lock()
	reason := ""
	switch {
	case g.o.MaxTotal > 0 && g.total >= g.o.MaxTotal:
		reason = RefusedTotal
	case limited && g.perAddr[key] >= g.o.MaxPerAddr:
		reason = RefusedPerAddr
	default:
		g.total++
		if limited {
			g.perAddr[key]++
		}
	}
	g.mu.Unlock()
	if reason != "" {
		g.refuse(c, peer, reason)
		return nil
	}
	gc := &conn{Conn: c, g: g, key: key, limited: limited}
	gc.armedAt.Store(neverArmed)
	return gc
}

// refuse closes c at once, with a reset so that no TIME_WAIT state is
// kept for a connection that was never served.
func (g *Guard) refuse(c net.Conn, peer netip.Addr, reason string) {
	g.o.Observer.Refused(reason)
	if ok, suppressed := g.refusedLog.Allow(g.o.Clock.Now()); ok {
		limit := g.o.MaxPerAddr
		if reason == RefusedTotal {
			limit = g.o.MaxTotal
		}
		g.o.Logger.Warn("connection refused: too many open connections",
			"listener", g.o.Name, "peer", peer.String(), "reason", reason, "limit", limit,
			"refusals_not_logged", suppressed)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// release uncounts a closed connection.
func (g *Guard) release(c *conn) {
	g.mu.Lock()
	g.total--
	if c.limited {
		if n := g.perAddr[c.key] - 1; n > 0 {
			g.perAddr[c.key] = n
		} else {
			delete(g.perAddr, c.key)
		}
	}
	g.mu.Unlock()
}

func (g *Guard) acceptFailed(err error) {
	g.o.Observer.AcceptError()
	if ok, suppressed := g.acceptLog.Allow(g.o.Clock.Now()); ok {
		g.o.Logger.Error("accepting a connection failed; retrying", "listener", g.o.Name, "error", err,
			"errors_not_logged", suppressed)
	}
}

func (g *Guard) sendTimedOut(c *conn) {
	g.o.Observer.SendTimeout()
	if ok, suppressed := g.sendLog.Allow(g.o.Clock.Now()); ok {
		g.o.Logger.Info("client not reading its response: connection closed", "listener", g.o.Name,
			"peer", c.RemoteAddr().String(), "send_timeout", g.o.SendTimeout.String(), "timeouts_not_logged", suppressed)
	}
}

// since is the monotonic time since g was made.
func (g *Guard) since() int64 { return int64(time.Since(g.base)) }

// neverArmed is conn.armedAt before the first write: far enough in the past
// that the first write sets the deadline.
const neverArmed = -1 << 62

// conn is an accepted connection counted by its Guard until it is closed.
type conn struct {
	net.Conn
	g       *Guard
	key     netip.Addr
	limited bool
	closed  atomic.Bool

	// The send timeout. The write deadline is moved forward only when the
	// one set is at least 1/8 of SendTimeout old, so that a write costs a
	// clock reading and no deadline update: every write (of at most
	// SendChunk) then has between 7/8 of SendTimeout and SendTimeout to
	// complete.
	armedAt  atomic.Int64 // Guard.since() when the deadline was last set
	external atomic.Bool  // a deadline set through SetWriteDeadline governs
	timedOut atomic.Bool  // reported once
}

// SendChunk is the most a write must send within SendTimeout: a larger
// write is made in chunks of this size, each with its own time, so that the
// client must read at least SendChunk bytes per SendTimeout (546 bytes a
// second for 32 KiB and a minute), whatever the size of the server's writes.
const SendChunk = 32 << 10

func (c *conn) Write(b []byte) (int, error) {
	t := c.g.o.SendTimeout
	if t <= 0 || c.external.Load() {
		return c.Conn.Write(b)
	}
	written := 0
	for {
		chunk := b[written:]
		if len(chunk) > SendChunk {
			chunk = chunk[:SendChunk]
		}
		if now := c.g.since(); now-c.armedAt.Load() > int64(t/8) {
			c.armedAt.Store(now)
			_ = c.Conn.SetWriteDeadline(c.g.base.Add(time.Duration(now) + t))
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !c.external.Load() && c.timedOut.CompareAndSwap(false, true) {
				c.g.sendTimedOut(c)
			}
			return written, err
		}
		if written == len(b) {
			return written, nil
		}
	}
}

// SetWriteDeadline sets a deadline of the server's (net/http sets one for
// a TLS handshake, and clears it after each request). While it is set, it
// governs the writes; clearing it restores the send timeout.
func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.g.o.SendTimeout <= 0 {
		return c.Conn.SetWriteDeadline(t)
	}
	if t.IsZero() {
		if !c.external.Swap(false) {
			return nil // nothing of the server's to clear; the send timeout stays
		}
		c.armedAt.Store(neverArmed)
	} else {
		c.external.Store(true)
	}
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read deadline and, as SetWriteDeadline does, the
// write deadline. net/http clears both when a connection is hijacked.
func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.Conn.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// CloseWrite half-closes a TCP connection, which net/http does before
// closing one whose request body it did not read, so that the client gets
// the response rather than a reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and frees its place in the counts.
func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.g.release(c)
	}
	return err
}

type nopObserver struct{}

func (nopObserver) Refused(string) {}
func (nopObserver) AcceptError()   {}
func (nopObserver) SendTimeout()   {}

var _ net.Conn = (*conn)(nil)
