package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/testsvc"
)

// cutter is a TCP proxy to a real service whose connection can be cut, to
// see a node through an outage of PostgreSQL or Redis.
type cutter struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			down := c.down
			c.mu.Unlock()
			if down {
				_ = in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
	return c
}

func (c *cutter) addr() string { return c.ln.Addr().String() }

// cut closes every connection and refuses new ones until restore.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = true
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}

func (c *cutter) restore() {
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}

// viaCutter rewrites a service URL to go through a cutter.
func viaCutter(t *testing.T, raw string) (string, *cutter) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := newCutter(t, u.Host)
	u.Host = c.addr()
	return u.String(), c
}

// clusterYAML is a node on PostgreSQL (its own schema) and Redis (its own
// prefix), with a plan of a generous rate and quota as the default.
func clusterYAML(t *testing.T, pgURL, redisURL, failureMode string) string {
	t.Helper()
	// The node's own schema and prefix; the URLs given may go through a
	// cutter.
	_, schema := testsvc.PostgresSchema(t)
	_, prefix := testsvc.RedisPrefix(t)
	return fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  insecure_http: true
  public_url: %s
admin:
  listen: 127.0.0.1:0
  token: %s
storage:
  type: postgres
  postgres: {url: "%s", schema: %s}
counters:
  type: redis
  redis: {url: "%s", prefix: "%s"}
  failure_mode: %s
secrets:
  master_key: %s
routes:
  - path: /v1/
    upstream: %s
plans:
  - name: standard
    rate: {requests_per_second: 1000, burst: 1000}
    quota: {units: 1000000, period: month}
default_plan: standard
usage:
  flush_interval: 50ms
`, clusterURL, adminToken, pgURL, schema, redisURL, prefix, failureMode, testMasterKey, newRecorder(t, nil).URL)
}

// Redis unreachable, fail-closed (the default): limited requests get 503
// SERVICE_UNAVAILABLE, /readyz says so, the metric shows it; when Redis is
// back, so is the node.
func TestRedisOutageFailClosed(t *testing.T) {
	redisURL, redisCut := viaCutter(t, testsvc.RedisURL(t))
	n := start(t, clusterYAML(t, testsvc.PostgresURL(t), redisURL, "closed"), nil)
	token := n.account("closed@example.com", "Closed Co")
	key, _ := n.createKey(token, nil)
	if r := do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}
	redisCut.cut()
	var r response
	waitFor(t, "503 during the Redis outage", func() bool {
		r = do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key)
		return r.Status == 503
	})
	if code, _ := r.errCode(t); code != "SERVICE_UNAVAILABLE" {
		t.Errorf("code %s", code)
	}
	if r := do(t, "GET", n.base+"/readyz", nil); r.Status != 503 || !strings.Contains(string(r.Body), "counter store unreachable") {
		t.Errorf("/readyz during the outage: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.admin+"/metrics", nil); !strings.Contains(string(r.Body), "tollgate_counters_unavailable 1") ||
		!strings.Contains(string(r.Body), "tollgate_counters_outages_total 1") {
		t.Errorf("metrics during the outage lack tollgate_counters_unavailable 1")
	}
	if !strings.Contains(n.logs.String(), "shared counter store unreachable") {
		t.Error("the outage was not logged")
	}
	redisCut.restore()
	waitFor(t, "200 after Redis is back", func() bool {
		return do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key).Status == 200
	})
	if r := do(t, "GET", n.base+"/readyz", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"counters":"ok"`) {
		t.Errorf("/readyz after the outage: %d %s", r.Status, r.Body)
	}
}

// Fail-open: the node decides with its own counters while Redis is down.
func TestRedisOutageFailOpen(t *testing.T) {
	redisURL, redisCut := viaCutter(t, testsvc.RedisURL(t))
	n := start(t, clusterYAML(t, testsvc.PostgresURL(t), redisURL, "open"), nil)
	token := n.account("open@example.com", "Open Co")
	key, _ := n.createKey(token, nil)
	redisCut.cut()
	for i := range 20 {
		if r := do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key); r.Status != 200 || r.Header.Get("RateLimit") == "" {
			t.Fatalf("request %d during the outage, fail-open: %d %s", i, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", n.base+"/readyz", nil); r.Status != 200 || !strings.Contains(string(r.Body), "fail-open") {
		t.Errorf("/readyz during the outage: %d %s", r.Status, r.Body)
	}
	m := string(do(t, "GET", n.admin+"/metrics", nil).Body)
	if !strings.Contains(m, "tollgate_counters_unavailable 1") || strings.Contains(m, "tollgate_counters_fallback_decisions_total 0") {
		t.Errorf("metrics during a fail-open outage:\n%s", grepLines(m, "tollgate_counters"))
	}
	redisCut.restore()
	waitFor(t, "the counters back", func() bool {
		return strings.Contains(string(do(t, "GET", n.base+"/readyz", nil).Body), `"counters":"ok"`)
	})
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// PostgreSQL unreachable: cached keys keep working for the grace, new logins
// fail cleanly with 503, and the usage of the requests served meanwhile is
// stored once PostgreSQL is back.
func TestPostgresOutage(t *testing.T) {
	pgURL, pgCut := viaCutter(t, testsvc.PostgresURL(t))
	n := start(t, clusterYAML(t, pgURL, testsvc.RedisURL(t), "closed"), nil)
	token := n.account("pg@example.com", "PG Co")
	key, id := n.createKey(token, nil)
	if r := do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("before the outage: %d %s", r.Status, r.Body)
	}
	// Past the key cache's TTL: the key is read again, and the read fails.
	n.clock.Advance(time.Minute)
	pgCut.cut()
	const during = 20
	for i := range during {
		if r := do(t, "GET", n.base+"/v1/a", nil, "X-API-KEY", key); r.Status != 200 {
			t.Fatalf("request %d during the outage: %d %s", i, r.Status, r.Body)
		}
	}
	r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "pg@example.com", "password": "correct horse battery"})
	if code, _ := r.errCode(t); r.Status != 503 || code != "SERVICE_UNAVAILABLE" {
		t.Errorf("login during the outage: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/readyz", nil); r.Status != 503 {
		t.Errorf("/readyz during the outage: %d", r.Status)
	}
	pgCut.restore()
	org := n.userByEmail("pg@example.com").OrgID
	waitFor(t, "the outage's usage stored", func() bool {
		page, err := n.srv.Store().ListRequests(context.Background(), store.RequestFilter{OrgID: org, CredentialID: id, Limit: 100})
		return err == nil && len(page) == during+1
	})
}
