package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tollgate/tollgate/internal/connguard"
	"github.com/tollgate/tollgate/internal/metrics"
)

// answerWithin bounds the waits of these tests: what has not happened by
// then is a failure, not a slow machine.
const answerWithin = 10 * time.Second

// withServer adds lines to the server section of a baseYAML configuration.
func withServer(yaml string, lines ...string) string {
	return strings.Replace(yaml, "  insecure_http: true", "  insecure_http: true\n  "+strings.Join(lines, "\n  "), 1)
}

// slowloris sends head, declaring a body of 60000 bytes, then one space
// every 20 ms, as the attack does (with a shorter period), and returns
// everything the server sent until it closed the connection.
func slowloris(t *testing.T, addr, head string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head+"Host: tollgate.test\r\nContent-Length: 60000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte(" ")); err != nil { // white space: valid JSON, read on and on
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%q: neither answered nor cut within %v; read %q", head, answerWithin, got)
	}
	return string(got)
}

// isCut checks a raw answer: the status and error code, the connection
// closed after it.
func isCut(t *testing.T, what, raw string, status int, code string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%s: answer %q: %v", what, raw, err)
	}
	r := readResponse(t, resp)
	if got, _ := r.errCode(t); r.Status != status || got != code || !resp.Close {
		t.Fatalf("%s: %d %s (close %v), want %d %s and the connection closed", what, r.Status, r.Body, resp.Close, status, code)
	}
}

// metricValue returns the value of the series named by prefix (name and
// labels) on the admin listener's /metrics, -1 when it is absent.
func metricValue(t *testing.T, n *node, series string) int {
	t.Helper()
	body := string(do(t, "GET", n.admin+"/metrics", nil).Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

func waitMetric(t *testing.T, n *node, series string, want int) {
	t.Helper()
	deadline := time.Now().Add(answerWithin)
	for {
		got := metricValue(t, n, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", series, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The slowloris attack: headers declaring 60000 bytes, then a byte at a
// time. Every listener cuts it after server.body_timeout and closes the
// connection, whatever the request: proxied (read by the upstream's
// transport), control plane, admin API, decision API, over HTTP/1.1 and
// h2c, answered 408; refused before the upstream, answered its refusal.
func TestSlowlorisIsCut(t *testing.T) {
	be := newRecorder(t, nil)
	yaml := withServer(baseYAML(t.TempDir(), be.URL), "body_timeout: 300ms", "min_body_rate: 500") + fmt.Sprintf(`
auth_service:
  listen: 127.0.0.1:0
  token: %s
`, serviceToken)
	n := start(t, yaml, nil)
	token := n.account("sol@example.com", "Sol")
	key, _ := n.createKey(token, nil)
	public, admin, auth := n.srv.Addr(), n.srv.AdminAddr(), n.srv.AuthAddr()

	for _, c := range []struct{ name, addr, head string }{
		{"public route", public, "POST /status HTTP/1.1\r\n"},
		{"authenticated route", public, "POST /v1/upload HTTP/1.1\r\nX-API-KEY: " + key + "\r\n"},
		{"control plane", public, "POST /api/v1/auth/email/login HTTP/1.1\r\nContent-Type: application/json\r\n"},
		{"admin API", admin, "POST /admin/v1/bans HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer " + adminToken + "\r\n"},
		{"decision API", auth, "POST /v1/usage HTTP/1.1\r\nContent-Type: application/json\r\nX-Tollgate-Service-Token: " + serviceToken + "\r\n"},
	} {
		isCut(t, c.name, slowloris(t, c.addr, c.head), 408, "REQUEST_TIMEOUT")
	}
	// Refused without its body being read: the refusal, after body_timeout,
	// and the connection closed.
	isCut(t, "refused before the upstream", slowloris(t, public, "POST /v1/upload HTTP/1.1\r\n"), 401, "UNAUTHORIZED")

	// h2c: the stream is answered 408.
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stop := make(chan struct{})
	defer close(stop)
	req, _ := http.NewRequest("POST", n.base+"/status", &tricklingBody{tick: tick.C, stop: stop})
	req.ContentLength = 60000
	resp, err := (&http.Client{Transport: tr, Timeout: answerWithin}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := readResponse(t, resp)
	if code, _ := r.errCode(t); resp.ProtoMajor != 2 || r.Status != 408 || code != "REQUEST_TIMEOUT" {
		t.Fatalf("h2c: HTTP/%d %d %s", resp.ProtoMajor, r.Status, r.Body)
	}

	// Counted per listener, and logged without the credentials.
	waitMetric(t, n, `tollgate_request_body_timeouts_total{listener="public"}`, 5)
	waitMetric(t, n, `tollgate_request_body_timeouts_total{listener="admin"}`, 1)
	waitMetric(t, n, `tollgate_request_body_timeouts_total{listener="auth_service"}`, 1)
	logs := n.logs.String()
	if !strings.Contains(logs, "request body too slow: cut") || strings.Contains(logs, key) ||
		strings.Contains(logs, adminToken) || strings.Contains(logs, serviceToken) {
		t.Errorf("log of the cuts (no line, or a secret in it):\n%s", grepLines(logs, "too slow"))
	}
	// The access log records the 408.
	if !strings.Contains(logs, `"status":408`) || !strings.Contains(logs, `"REQUEST_TIMEOUT"`) {
		t.Errorf("no access-log line with status 408 REQUEST_TIMEOUT")
	}
}

// tricklingBody yields a byte per tick until stop.
type tricklingBody struct {
	tick <-chan time.Time
	stop <-chan struct{}
}

func (b *tricklingBody) Read(p []byte) (int, error) {
	select {
	case <-b.tick:
		p[0] = ' '
		return 1, nil
	case <-b.stop:
		return 0, io.ErrUnexpectedEOF
	}
}

// pacedBody yields chunk bytes per tick, size in all.
type pacedBody struct {
	left, chunk int
	tick        <-chan time.Time
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	<-b.tick
	k := min(b.chunk, b.left, len(p))
	for i := range k {
		p[i] = 'u'
	}
	b.left -= k
	return k, nil
}

// An upload that takes longer than body_timeout but keeps well above
// min_body_rate goes through whole, to the upstream and to the control
// plane.
func TestSlowUploadAboveTheMinimumRate(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "body_timeout: 1s", "min_body_rate: 500"), nil)
	// 3200 bytes, 400 every 200 ms: 2000 B/s, four times the minimum,
	// about 1.6 s in all. Each chunk earns 0.8 s, room for a loaded
	// machine's stalls.
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	req, _ := http.NewRequest("POST", n.base+"/status", &pacedBody{left: 3200, chunk: 400, tick: tick.C})
	req.ContentLength = 3200
	resp, err := (&http.Client{Timeout: answerWithin}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r := readResponse(t, resp); r.Status != 200 {
		t.Fatalf("slow upload: %d %s", r.Status, r.Body)
	}
	all := be.all()
	if len(all) != 1 || len(all[0].Body) != 3200 {
		t.Fatalf("the upstream received %d requests, the last with %d bytes", len(all), len(all[len(all)-1].Body))
	}
}

// rawGet sends a GET on c and reads the answer's status.
func rawGet(c net.Conn, path string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(answerWithin))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: tollgate.test\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// refusedAt reports whether a new connection to addr is closed without an
// answer (at the dial already, or at the first request).
func refusedAt(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return true
	}
	defer c.Close()
	_, err = rawGet(c, "/healthz")
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection over the limit is neither served nor closed")
	}
	return err != nil
}

// One client address holds at most server.max_connections_per_ip
// connections; closing them frees their places, down to none.
func TestConnectionsPerIP(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "max_connections_per_ip: 4"), nil)
	loopback := netip.MustParseAddr("127.0.0.1")
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", n.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st, err := rawGet(c, "/healthz"); err != nil || st != 200 {
			t.Fatalf("connection within the limit: %d %v", st, err)
		}
		conns = append(conns, c)
	}
	if !refusedAt(t, n.srv.Addr()) {
		t.Fatal("a fifth connection from 127.0.0.1 was served")
	}
	waitMetric(t, n, `tollgate_connections_refused_total{listener="public",reason="per_address"}`, 1)
	waitMetric(t, n, `tollgate_connections_open{listener="public"}`, 4)
	if !strings.Contains(n.logs.String(), "too many open connections") {
		t.Error("the refusal is not logged")
	}

	conns[0].Close()
	conns[1].Close()
	g := n.srv.publicGuard
	waitFor(t, "two places freed", func() bool { return g.OpenFrom(loopback) == 2 })
	c, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := rawGet(c, "/healthz"); err != nil || st != 200 {
		t.Fatalf("connection after two were closed: %d %v", st, err)
	}
	c.Close()
	for _, c := range conns[2:] {
		c.Close()
	}
	waitFor(t, "every place freed", func() bool { return g.Open() == 0 && g.OpenFrom(loopback) == 0 })
}

// A trusted proxy (a load balancer) carries every client: the per-address
// limit does not apply to it.
func TestTrustedProxyHasNoConnectionLimit(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "max_connections_per_ip: 2", "trusted_proxies: [127.0.0.1]"), nil)
	for range 5 {
		c, err := net.Dial("tcp", n.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st, err := rawGet(c, "/healthz"); err != nil || st != 200 {
			t.Fatalf("connection from a trusted proxy: %d %v", st, err)
		}
	}
	if got := metricValue(t, n, `tollgate_connections_refused_total{listener="public",reason="per_address"}`); got != 0 {
		t.Errorf("%d connections of a trusted proxy refused", got)
	}
}

// The Envoy ext_authz gRPC listener is guarded too
// (auth_service.max_connections_per_ip).
func TestGRPCListenerIsGuarded(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, strings.Replace(authYAML(t, be.URL), "auth_service:\n", "auth_service:\n  max_connections_per_ip: 1\n", 1), nil)
	first, err := net.Dial("tcp", n.srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, "the first connection counted", func() bool { return n.srv.grpcGuard.Open() == 1 })
	second, err := net.Dial("tcp", n.srv.GRPCAddr())
	if err == nil {
		defer second.Close()
		_ = second.SetReadDeadline(time.Now().Add(answerWithin))
		_, err = second.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a second connection from 127.0.0.1 to the gRPC listener is open")
		}
	}
	waitMetric(t, n, `tollgate_connections_refused_total{listener="auth_service_grpc",reason="per_address"}`, 1)
	first.Close()
	waitFor(t, "the gRPC listener's count back to zero", func() bool { return n.srv.grpcGuard.Open() == 0 })
}

// A WebSocket session is no request body: it outlives body_timeout and
// send_timeout, idle in between.
func TestWebSocketOutlivesTheTimeouts(t *testing.T) {
	const timeout = 200 * time.Millisecond
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			_ = c.Write(r.Context(), typ, msg)
		}
	})
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "body_timeout: 200ms", "send_timeout: 200ms"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		// Not waiting for an event: letting both timeouts pass.
		time.Sleep(2 * timeout)
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// The refusal reasons of connguard are the label values of the metric.
func TestRefusalReasonsAreMetricLabels(t *testing.T) {
	if connguard.RefusedPerAddr != metrics.RefusedPerAddr || connguard.RefusedTotal != metrics.RefusedTotal {
		t.Fatal("connguard's refusal reasons and the metrics' reason labels differ")
	}
}

// Headers trickled a byte at a time, or never sent, hold no connection
// past server.read_header_timeout: net/http's own bound, kept on every
// listener.
func TestSlowHeadersAreCut(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "read_header_timeout: 300ms"), nil)
	for name, addr := range map[string]string{"public": n.srv.Addr(), "admin": n.srv.AdminAddr()} {
		for _, trickle := range []bool{false, true} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			if trickle {
				go func() {
					head := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 10000)
					for i := range len(head) {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						if _, err := c.Write([]byte{head[i]}); err != nil {
							return
						}
					}
				}()
			}
			_ = c.SetReadDeadline(time.Now().Add(answerWithin))
			_, err = io.ReadAll(c)
			close(stop)
			c.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s (trickling %v): the connection is still open after %v", name, trickle, answerWithin)
			}
		}
	}
	waitFor(t, "the connections uncounted", func() bool { return n.srv.publicGuard.Open() == 0 })
}

// A client that stops reading a large response has its connection closed
// after server.send_timeout, which frees the upstream exchange too.
func TestSlowReaderIsCut(t *testing.T) {
	chunk := strings.Repeat("r", 1<<20)
	upstreamDone := make(chan error, 1)
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		for range 512 { // 512 MiB: more than any socket buffer
			if _, err := io.WriteString(w, chunk); err != nil {
				upstreamDone <- err
				return
			}
		}
		upstreamDone <- nil
	})
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "send_timeout: 300ms"), nil)
	c, err := net.Dial("tcp", n.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /status HTTP/1.1\r\nHost: tollgate.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// ... and read nothing.
	waitMetric(t, n, `tollgate_send_timeouts_total{listener="public"}`, 1)
	select {
	case err := <-upstreamDone:
		if err == nil {
			t.Fatal("the upstream wrote its whole response to a client that read nothing")
		}
	case <-time.After(answerWithin):
		t.Fatal("the upstream exchange is still held")
	}
	waitFor(t, "the connection uncounted", func() bool { return n.srv.publicGuard.Open() == 0 })
}
