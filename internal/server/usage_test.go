package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// usageYAML: a free plan of 5/s, burst 10, 50 units a month; events and
// quota counts flushed quickly so that tests need not wait.
func usageYAML(t *testing.T, upstream, routeExtra string) string {
	return baseYAML(t.TempDir(), upstream) + routeExtra + `plans:
  - name: free
    rate: {requests_per_second: 5, burst: 10}
    quota: {units: 50, period: month}
default_plan: free
usage:
  flush_interval: 20ms
  quota_flush_interval: 20ms
`
}

// waitFor polls cond until it holds or 10 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usage GETs a usage endpoint as the user of token.
func (n *node) usage(token, path string, q url.Values) map[string]any {
	n.t.Helper()
	r := do(n.t, "GET", n.base+path+"?"+q.Encode(), nil, "Authorization", "Bearer "+token)
	if r.Status != 200 {
		n.t.Fatalf("GET %s?%s: %d %s", path, q.Encode(), r.Status, r.Body)
	}
	return r.json(n.t)
}

func totals(m map[string]any) (units, requests, errs int64) {
	tot := m["totals"].(map[string]any)
	return int64(tot["units"].(float64)), int64(tot["requests"].(float64)), int64(tot["errors"].(float64))
}

// The "done when": a burst of 30 against 5/s gets 429s that cost
// nothing; the usage API shows exactly the admitted units per hour and per
// day; the 51st unit is refused; a restart keeps the count.
func TestUsageAndQuotaAcrossRestart(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, usageYAML(t, be.URL, ""), nil)
	token := n.account("ivy@example.com", "Ivy")
	key, keyID := n.createKey(token, nil)

	admitted, limited := 0, 0
	for range 30 {
		r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key, "User-Agent", "usage-test/1")
		switch r.Status {
		case 200:
			admitted++
		case 429:
			limited++
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
	}
	if admitted != 10 || limited != 20 {
		t.Fatalf("%d admitted, %d limited; want 10 and 20", admitted, limited)
	}
	for _, g := range []string{"hour", "day", "month"} {
		var m map[string]any
		waitFor(t, g+" rollup", func() bool {
			m = n.usage(token, "/api/v1/usage", url.Values{"granularity": {g}})
			_, requests, _ := totals(m)
			return requests == 30
		})
		if units, requests, errs := totals(m); units != 10 || requests != 30 || errs != 20 {
			t.Fatalf("%s: units %d, requests %d, errors %d; want 10, 30, 20", g, units, requests, errs)
		}
		plan := m["plan"].(map[string]any)
		if plan["name"] != "free" || plan["quota_used"].(float64) != 10 || plan["quota_remaining"].(float64) != 40 {
			t.Fatalf("%s: plan %v", g, plan)
		}
	}
	// The request log: newest first, with who, what and the refusals.
	reqs := n.usage(token, "/api/v1/usage/requests", url.Values{"status": {"429"}, "limit": {"5"}})
	data := reqs["data"].([]any)
	if len(data) != 5 || reqs["next_cursor"] == nil {
		t.Fatalf("page of 429s: %v", reqs)
	}
	first := data[0].(map[string]any)
	if first["status"].(float64) != 429 || first["credential_id"] != keyID || first["units"].(float64) != 0 ||
		first["user_agent"] != "usage-test/1" || first["client_ip"] != "127.0.0.1" || first["path"] != "/v1/x" {
		t.Fatalf("request-log entry %v", first)
	}

	// Up to the quota: 40 more units over 8 s of rate.
	for i := range 40 {
		if i%5 == 0 {
			n.clock.Advance(time.Second)
		}
		if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
			t.Fatalf("unit %d: %d %s", 11+i, r.Status, r.Body)
		}
	}
	n.clock.Advance(time.Second)
	r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
	if code, reason := r.errCode(t); r.Status != 403 || code != "FORBIDDEN" || reason != "quota_exhausted" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("51st unit: %d %s %v", r.Status, r.Body, r.Header)
	}

	// A graceful restart keeps the count exactly: still exhausted.
	n = n.restart()
	r = do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
	if _, reason := r.errCode(t); r.Status != 403 || reason != "quota_exhausted" {
		t.Fatalf("after restart: %d %s", r.Status, r.Body)
	}
	token = n.login("ivy@example.com", "correct horse battery")
	m := n.usage(token, "/api/v1/usage", url.Values{"granularity": {"day"}})
	if units, requests, _ := totals(m); units != 50 || requests != 30+40+1+1 {
		t.Fatalf("after restart: units %d, requests %d; want 50 and 72", units, requests)
	}
	if used := m["plan"].(map[string]any)["quota_used"].(float64); used != 50 {
		t.Fatalf("quota used after restart: %v", used)
	}
	if len(be.all()) != 50 {
		t.Fatalf("%d requests reached the backend, want 50", len(be.all()))
	}
}

// countingDialer counts the bytes a WebSocket client sends and receives.
type countingDialer struct{ in, out atomic.Int64 }

type countedConn struct {
	net.Conn
	d *countingDialer
}

func (c countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.d.in.Add(int64(n))
	return n, err
}

// Write counts the bytes before it sends them: http.Transport writes the
// handshake from a goroutine of its own, which may count after the response
// to it has been read (the session's count would then include it). Counted
// first, the bytes are in the count before the server can answer them.
func (c countedConn) Write(b []byte) (int, error) {
	c.d.out.Add(int64(len(b)))
	n, err := c.Conn.Write(b)
	c.d.out.Add(int64(n - len(b)))
	return n, err
}

func (d *countingDialer) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countedConn{Conn: c, d: d}, nil
	}}}
}

// A WebSocket session is one usage event on disconnect, with the bytes each
// way as the client counted them after the handshake, its duration, and its
// units: the route's per connection plus its per started megabyte.
func TestWebSocketMetering(t *testing.T) {
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(4 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			_ = c.Write(r.Context(), typ, msg)
		}
	})
	route := fmt.Sprintf("  - path: /ws/\n    upstream: %s\n    units: 2\n    websocket_units_per_mb: 3\n", be.URL)
	n := start(t, usageYAML(t, be.URL, route), nil)
	token := n.account("wes@example.com", "Wes")
	key, keyID := n.createKey(token, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var d countingDialer
	c, _, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/ws/echo", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-API-KEY": {key}}, HTTPClient: d.client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(4 << 20)
	in0, out0 := d.in.Load(), d.out.Load() // the handshake is not the session's
	msgs := [][]byte{[]byte("hello"), []byte(strings.Repeat("x", 300)), make([]byte, 700_000)}
	for _, msg := range msgs {
		if err := c.Write(ctx, websocket.MessageBinary, msg); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || len(got) != len(msg) {
			t.Fatalf("echo of %d bytes: %d, %v", len(msg), len(got), err)
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	sent, received := d.out.Load()-out0, d.in.Load()-in0
	if sent < 700_000 || received < 700_000 {
		t.Fatalf("client counted %d sent, %d received", sent, received)
	}

	var e map[string]any
	waitFor(t, "the session's usage event", func() bool {
		data := n.usage(token, "/api/v1/usage/requests", url.Values{"credential": {keyID}})["data"].([]any)
		if len(data) == 0 {
			return false
		}
		e = data[0].(map[string]any)
		return true
	})
	if e["websocket"] != true || e["status"].(float64) != 101 || e["route"] != "/ws/" {
		t.Fatalf("session event %v", e)
	}
	if got := int64(e["request_bytes"].(float64)); got != sent {
		t.Errorf("bytes from the client: gateway %d, client %d", got, sent)
	}
	if got := int64(e["response_bytes"].(float64)); got != received {
		t.Errorf("bytes to the client: gateway %d, client %d", got, received)
	}
	// 2 for the connection, 3 × 2 started megabytes (1.4 MB both ways).
	if got := e["units"].(float64); got != 2+3*2 {
		t.Errorf("units %v, want 8", got)
	}
	waitFor(t, "the session's units in the quota", func() bool {
		m := n.usage(token, "/api/v1/usage", url.Values{"granularity": {"hour"}})
		return m["plan"].(map[string]any)["quota_used"].(float64) == 8
	})
}

// The admin listener serves Prometheus metrics: requests by route, status
// and method, auth failures, limiter decisions and the usage queue.
func TestMetrics(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, usageYAML(t, be.URL, ""), nil)
	key, _ := n.createKey(n.account("max@example.com", "Max"), nil)
	do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
	do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", "tgk_"+strings.Repeat("A", 38))
	r := do(t, "GET", n.admin+"/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	body := string(r.Body)
	for _, want := range []string{
		`tollgate_requests_total{auth_method="apikey",route="/v1/",status="200"} 1`,
		`tollgate_auth_failures_total{code="INVALID_CREDENTIALS"`,
		`tollgate_limiter_decisions_total{outcome="admitted"} 1`,
		`tollgate_limiter_decisions_total{outcome="rate_limited"} 0`,
		`tollgate_request_duration_seconds_bucket{route="/v1/"`,
		`tollgate_usage_events_dropped_total 0`,
		`tollgate_usage_events_queued`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Not on the public listener.
	if r := do(t, "GET", n.base+"/metrics", nil); r.Status == 200 {
		t.Error("/metrics served on the public listener")
	}
}

// A session still open at shutdown is closed by it, and metered before the
// final flush: after a restart it is in the request log.
func TestWebSocketOpenAtShutdownIsMetered(t *testing.T) {
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
	n := start(t, usageYAML(t, be.URL, ""), nil)
	token := n.account("sam@example.com", "Sam")
	key, keyID := n.createKey(token, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/v1/ws", &websocket.DialOptions{HTTPHeader: http.Header{"X-API-KEY": {key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}

	n = n.restart() // the session is open while the node shuts down
	token = n.login("sam@example.com", "correct horse battery")
	data := n.usage(token, "/api/v1/usage/requests", url.Values{"credential": {keyID}})["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("request log after restart: %v", data)
	}
	if e := data[0].(map[string]any); e["websocket"] != true || e["request_bytes"].(float64) < float64(len("still here")) {
		t.Fatalf("session event %v", e)
	}
}

// admin.pprof serves Go's profiles on the admin listener, behind the admin
// token; without the setting they are not there at all.
func TestPprofBehindAdminToken(t *testing.T) {
	be := newRecorder(t, nil)
	yaml := strings.Replace(baseYAML(t.TempDir(), be.URL), "admin:\n", "admin:\n  pprof: true\n", 1)
	n := start(t, yaml, nil)
	if r := do(t, "GET", n.admin+"/admin/debug/pprof/heap", nil); r.Status != 401 {
		t.Errorf("without the token: %d", r.Status)
	}
	r := n.adminDo("GET", "/admin/debug/pprof/heap?debug=1", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "heap profile") {
		t.Errorf("heap profile: %d %.200s", r.Status, r.Body)
	}
	if r := n.adminDo("GET", "/admin/debug/pprof/profile?seconds=1", nil); r.Status != 200 || len(r.Body) == 0 {
		t.Errorf("CPU profile: %d, %d bytes", r.Status, len(r.Body))
	}
	if r := do(t, "GET", n.base+"/admin/debug/pprof/heap", nil); r.Status == 200 {
		t.Error("profiles served on the public listener")
	}

	off := start(t, baseYAML(t.TempDir(), be.URL), nil)
	if r := off.adminDo("GET", "/admin/debug/pprof/heap", nil); r.Status != 404 {
		t.Errorf("admin.pprof off: %d", r.Status)
	}
}
