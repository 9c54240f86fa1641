package connguard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
)

// within bounds every wait of these tests: what has not happened by then is
// a failure, not a slow machine.
const within = 10 * time.Second

// counts is an Observer.
type counts struct {
	perAddr, total, accept, send atomic.Int64
}

func (c *counts) Refused(reason string) {
	if reason == RefusedPerAddr {
		c.perAddr.Add(1)
	} else {
		c.total.Add(1)
	}
}
func (c *counts) AcceptError() { c.accept.Add(1) }
func (c *counts) SendTimeout() { c.send.Add(1) }

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serve runs an HTTP server answering "ok" on a loopback listener guarded
// by a Guard made from o; it returns the guard and the address.
func serve(t *testing.T, o Options, h http.Handler) (*Guard, string) {
	t.Helper()
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	}
	g := New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: within, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(g.Listen(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g, ln.Addr().String()
}

// eventually polls cond until it holds, failing with what after within.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get sends a GET on c and reads the answer.
func get(c net.Conn) (*http.Response, error) {
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// refused reports whether a connection to addr is closed by the server
// without an answer: at once (the reset may even reach the dialer before
// the connection is established) or at the first request.
func refused(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer c.Close()
	return closedByPeer(t, c)
}

// closedByPeer reports whether the server closed c without answering.
func closedByPeer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection over the limit is still open")
	}
	return err != nil
}

func TestPerAddressLimit(t *testing.T) {
	obs := &counts{}
	logs := &logBuffer{}
	g, addr := serve(t, Options{Name: "public", MaxPerAddr: 3, Observer: obs,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Clock: clock.NewFake(time.Now())}, nil)
	loopback := netip.MustParseAddr("127.0.0.1")

	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp, err := get(c); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection within the limit: %v %v", resp, err)
		}
		conns = append(conns, c)
	}
	if g.Open() != 3 || g.OpenFrom(loopback) != 3 {
		t.Fatalf("open %d, from loopback %d; want 3", g.Open(), g.OpenFrom(loopback))
	}
	// Two more: closed at once, counted, logged once (the log is throttled).
	for range 2 {
		if !refused(t, addr) {
			t.Fatal("the connection over the limit was served")
		}
	}
	if obs.perAddr.Load() != 2 || g.Open() != 3 {
		t.Fatalf("refused %d, open %d; want 2 and 3", obs.perAddr.Load(), g.Open())
	}
	if n := strings.Count(logs.String(), "too many open connections"); n != 1 || !strings.Contains(logs.String(), `"level":"WARN"`) ||
		!strings.Contains(logs.String(), `"peer":"127.0.0.1"`) {
		t.Errorf("%d refusal log lines: %s", n, logs)
	}

	// A connection closed frees its place.
	conns[0].Close()
	eventually(t, "the closed connection's place freed", func() bool { return g.OpenFrom(loopback) == 2 })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := get(c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("connection after one closed: %v %v", resp, err)
	}
	c.Close()
	// All closed: nothing left counted, nothing leaked.
	for _, c := range conns[1:] {
		c.Close()
	}
	eventually(t, "every place freed", func() bool { return g.Open() == 0 && g.OpenFrom(loopback) == 0 })
	g.mu.Lock()
	left := len(g.perAddr)
	g.mu.Unlock()
	if left != 0 {
		t.Errorf("%d addresses still in the table", left)
	}
}

// Peers named by Exempt (trusted proxies) are not limited per address.
func TestExemptPeers(t *testing.T) {
	obs := &counts{}
	g, addr := serve(t, Options{MaxPerAddr: 1, Observer: obs,
		Exempt: func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }}, nil)
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp, err := get(c); err != nil || resp.StatusCode != 200 {
			t.Fatalf("exempt peer: %v %v", resp, err)
		}
	}
	if obs.perAddr.Load() != 0 || g.Open() != 4 || g.OpenFrom(netip.MustParseAddr("127.0.0.1")) != 0 {
		t.Fatalf("refused %d, open %d", obs.perAddr.Load(), g.Open())
	}
}

func TestTotalLimit(t *testing.T) {
	obs := &counts{}
	g, addr := serve(t, Options{MaxTotal: 2, Observer: obs,
		Exempt: func(netip.Addr) bool { return true }}, nil) // exempt peers count towards the total
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := get(c); err != nil {
			t.Fatal(err)
		}
	}
	if !refused(t, addr) || obs.total.Load() != 1 || g.Open() != 2 {
		t.Fatalf("over the total: refused %d, open %d", obs.total.Load(), g.Open())
	}
}

// IPv6 peers are counted by /64: a host picking a fresh address in its
// subnet for each connection gains nothing.
func TestLimitKey(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"fe80::1%eth0", "fe80::2"},
	} {
		if ka, kb := limitKey(netip.MustParseAddr(c.a)), limitKey(netip.MustParseAddr(c.b)); ka != kb {
			t.Errorf("%s and %s are counted apart (%s, %s)", c.a, c.b, ka, kb)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"192.0.2.7", "192.0.2.8"},
	} {
		if limitKey(netip.MustParseAddr(c.a)) == limitKey(netip.MustParseAddr(c.b)) {
			t.Errorf("%s and %s are counted together", c.a, c.b)
		}
	}
}

// failingListener fails its first Accepts as a process out of file
// descriptors does, then accepts.
type failingListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Accept errors are logged at error level and counted, and http.Server
// keeps serving after them (it retries with its backoff).
func TestAcceptErrors(t *testing.T) {
	obs := &counts{}
	logs := &logBuffer{}
	clk := clock.NewFake(time.Now())
	g := New(Options{Name: "public", Observer: obs, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Clock: clk})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln}
	fl.fails.Store(3)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: within, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(g.Listen(fl)) }()

	resp, err := (&http.Client{Timeout: within}).Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || obs.accept.Load() != 3 {
		t.Fatalf("status %d after %d accept errors; want 200 after 3", resp.StatusCode, obs.accept.Load())
	}
	out := logs.String()
	if n := strings.Count(out, "accepting a connection failed"); n != 1 ||
		!strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, "too many open files") {
		t.Errorf("want one error line naming EMFILE (the others throttled), got %d: %s", n, out)
	}
	// The next interval's line reports what was held back. (The server is
	// blocked in an Accept already: the failure comes after the next
	// connection.)
	clk.Advance(time.Second)
	fl.fails.Store(1)
	resp, err = (&http.Client{Timeout: within, Transport: &http.Transport{}}).Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	eventually(t, "the next error line, reporting the two held back", func() bool {
		return strings.Contains(logs.String(), `"errors_not_logged":2`) && obs.accept.Load() == 4
	})
	// Closing the listener is no error.
	_ = srv.Close()
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if obs.accept.Load() != 4 {
		t.Errorf("%d accept errors counted, want 4 (closing is none)", obs.accept.Load())
	}
}

// A client that does not read its response has its connection closed after
// the send timeout; one that reads gets all of it.
func TestSendTimeout(t *testing.T) {
	obs := &counts{}
	writeErr := make(chan error, 1)
	big := strings.Repeat("z", 1<<20)
	_, addr := serve(t, Options{SendTimeout: 200 * time.Millisecond, Observer: obs}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			_, _ = io.WriteString(w, "small")
			return
		}
		for range 256 { // 256 MiB: more than any socket buffer
			if _, err := io.WriteString(w, big); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// ... and read nothing.
	select {
	case err := <-writeErr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the handler's write ended with %v, want a deadline", err)
		}
	case <-time.After(within):
		t.Fatal("the write to a client that reads nothing is still blocked")
	}
	if obs.send.Load() != 1 {
		t.Errorf("%d send timeouts counted", obs.send.Load())
	}
}

// A client that reads gets a response much larger than the socket buffers
// through a guard with a send timeout, over TLS too (whose handshake sets
// deadlines of its own through the connection).
func TestSendTimeoutSparesReaders(t *testing.T) {
	const size = 32 << 20
	g := New(Options{SendTimeout: 5 * time.Second})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.CopyN(w, zeroReader{}, size)
	}))
	srv.Listener = g.Listen(srv.Listener)
	srv.StartTLS()
	defer srv.Close()
	client := srv.Client()
	client.Timeout = within
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || resp.TLS == nil {
		t.Fatalf("read %d of %d bytes over %v: %v", n, size, resp.Proto, err)
	}
	client.CloseIdleConnections()
	eventually(t, "the connection uncounted", func() bool { return g.Open() == 0 })
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A hijacked connection (a WebSocket session) stays counted until it is
// closed, and its writes are still bounded by the send timeout after the
// server cleared its deadlines.
func TestHijackedConnections(t *testing.T) {
	obs := &counts{}
	sessionEnd := make(chan error, 1)
	g, addr := serve(t, Options{MaxPerAddr: 5, SendTimeout: 200 * time.Millisecond, Observer: obs}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			sessionEnd <- err
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		chunk := make([]byte, 1<<20)
		for {
			if _, err := c.Write(chunk); err != nil {
				sessionEnd <- err
				return
			}
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sessionEnd:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("session ended with %v", err)
		}
	case <-time.After(within):
		t.Fatal("the session's writes to a client that reads nothing are not bounded")
	}
	eventually(t, "the session's connection uncounted", func() bool { return g.Open() == 0 })
}

func Example() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	g := New(Options{Name: "public", MaxPerAddr: 256, SendTimeout: time.Minute})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(g.Listen(ln)) }()
	defer srv.Close()
	fmt.Println(g.Open())
	// Output: 0
}

// recordingConn is a net.Conn that records its writes and write deadlines.
type recordingConn struct {
	net.Conn
	writes    []int
	deadlines []time.Time
}

func (r *recordingConn) Write(b []byte) (int, error) {
	r.writes = append(r.writes, len(b))
	return len(b), nil
}
func (r *recordingConn) SetWriteDeadline(t time.Time) error {
	r.deadlines = append(r.deadlines, t)
	return nil
}
func (r *recordingConn) SetReadDeadline(time.Time) error { return nil }

// A large write goes out in chunks of SendChunk, each within the send
// timeout: the bound is on the client's progress, not on the server's
// write sizes. The deadline is set once for writes in quick succession, and
// the server's own deadlines take precedence while set.
func TestSendTimeoutChunks(t *testing.T) {
	g := New(Options{SendTimeout: time.Minute})
	rc := &recordingConn{}
	c := &conn{Conn: rc, g: g}
	c.armedAt.Store(neverArmed)
	if n, err := c.Write(make([]byte, 3*SendChunk+100)); n != 3*SendChunk+100 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if fmt.Sprint(rc.writes) != fmt.Sprint([]int{SendChunk, SendChunk, SendChunk, 100}) {
		t.Errorf("writes %v", rc.writes)
	}
	if len(rc.deadlines) != 1 || time.Until(rc.deadlines[0]) < 50*time.Second {
		t.Fatalf("deadlines %v, want one a minute ahead", rc.deadlines)
	}
	// net/http clears its deadlines after every request: nothing of its own
	// to clear, the send timeout stays and costs nothing.
	_ = c.SetWriteDeadline(time.Time{})
	_, _ = c.Write([]byte("x"))
	if len(rc.deadlines) != 1 {
		t.Errorf("deadlines %v after a clearing with nothing to clear", rc.deadlines)
	}
	// A deadline of the server's (a TLS handshake's) governs until cleared.
	hs := time.Now().Add(10 * time.Second)
	_ = c.SetWriteDeadline(hs)
	_, _ = c.Write([]byte("x"))
	if len(rc.deadlines) != 2 || !rc.deadlines[1].Equal(hs) {
		t.Errorf("deadlines %v, want the server's to stand", rc.deadlines)
	}
	_ = c.SetDeadline(time.Time{})
	_, _ = c.Write([]byte("x"))
	if len(rc.deadlines) != 4 || !rc.deadlines[2].IsZero() || time.Until(rc.deadlines[3]) < 50*time.Second {
		t.Errorf("deadlines %v, want the server's cleared, then the send timeout again", rc.deadlines)
	}
}

type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkWrite is what the send timeout adds to a write of a response
// (a monotonic clock reading), against the bare connection.
func BenchmarkWrite(b *testing.B) {
	p := make([]byte, 4096)
	b.Run("bare", func(b *testing.B) {
		var c net.Conn = discardConn{}
		for b.Loop() {
			_, _ = c.Write(p)
		}
	})
	b.Run("guarded", func(b *testing.B) {
		c := &conn{Conn: discardConn{}, g: New(Options{SendTimeout: time.Minute})}
		c.armedAt.Store(neverArmed)
		for b.Loop() {
			_, _ = c.Write(p)
		}
	})
}
