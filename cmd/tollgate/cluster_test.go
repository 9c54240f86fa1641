package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/testsvc"
)

// clusterNode is one `tollgate serve` process of the cluster test.
type clusterNode struct {
	name, base, admin string
	cmd               interface{ Signal(os.Signal) error }
}

// TestCluster runs three nodes, as separate processes of this binary, on one
// PostgreSQL schema and one Redis prefix, and checks what cluster mode
// promises: a quota hammered through all three admits exactly its units; a
// rate limit admits within 1% of its theoretical count; a key created on one
// node works on another at once; a key revoked on one is refused by the
// others within a second, although their caches would keep it for an hour;
// so is a credential banned on one; a decision costs one Redis command;
// killing a node leaves the others serving.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)

	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()

	const quota = 300
	const rate, burst = 200, 20
	adminToken := strings.Repeat("a", 40)
	dir := t.TempDir()
	writeNode := func(name string) (cfgPath string, n clusterNode) {
		listen, admin := freePort(t), freePort(t)
		cfgPath = filepath.Join(dir, name+".yaml")
		yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true
  public_url: http://cluster.tollgate.test
admin:
  listen: %s
  token: %s
storage:
  type: postgres
  postgres: {url: "%s", schema: %s}
counters:
  type: redis
  redis: {url: "%s", prefix: "%s"}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
auth:
  apikey_cache_ttl: 1h
routes:
  - path: /v1/
    upstream: %s
plans:
  - name: metered
    quota: {units: %d, period: month}
  - name: rated
    rate: {requests_per_second: %d, burst: %d}
log:
  access_log: false
`, listen, admin, adminToken, pgURL, schema, redisURL, prefix, backend.URL, quota, rate, burst)
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfgPath, clusterNode{name: name, base: "http://" + listen, admin: "http://" + admin}
	}
	var nodes []clusterNode
	var cfgs []string
	for _, name := range []string{"A", "B", "C"} {
		cfg, n := writeNode(name)
		cfgs = append(cfgs, cfg)
		nodes = append(nodes, n)
	}
	// Organizations and plans, through the CLI on the shared database.
	passwords := map[string]string{}
	for _, org := range []string{"quota-co", "rate-co", "free-co"} {
		out := must(t, "user", "create", org+"@example.com", "--org-name", org, "-c", cfgs[0])
		_, pw, _ := strings.Cut(out, "password (shown once): ")
		passwords[org] = strings.TrimSpace(pw)
	}
	must(t, "org", "set-plan", "quota-co", "metered", "-c", cfgs[0])
	must(t, "org", "set-plan", "rate-co", "rated", "-c", cfgs[0])
	for i := range nodes {
		cmd := serveProcess(t, cfgs[i], nodes[i].base)
		nodes[i].cmd = cmd.Process
	}
	a, b, c := nodes[0], nodes[1], nodes[2]

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(n clusterNode, key string) int {
		req, _ := http.NewRequest("GET", n.base+"/v1/x", nil)
		req.Header.Set("X-API-KEY", key)
		r, err := client.Do(req)
		if err != nil {
			return 0
		}
		_ = r.Body.Close()
		return r.StatusCode
	}
	admin := func(n clusterNode, method, path string, body any) map[string]any {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, n.admin+path, rd)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Body.Close() }()
		var v map[string]any
		_ = json.NewDecoder(r.Body).Decode(&v)
		if r.StatusCode/100 != 2 {
			t.Fatalf("%s %s on %s: %d %v", method, path, n.name, r.StatusCode, v)
		}
		return v
	}
	createKey := func(n clusterNode, org string) (key, id string) {
		v := admin(n, "POST", "/admin/v1/organizations/"+org+"/apikeys", map[string]any{"name": "k"})
		return v["key"].(string), v["id"].(string)
	}

	t.Run("KeyCreatedOnAWorksOnC", func(t *testing.T) {
		key, _ := createKey(a, "free-co")
		if s := call(c, key); s != 200 {
			t.Fatalf("key created on A: %d on C", s)
		}
	})

	// Every node listens on its own address, and all share one
	// server.public_url: a dashboard session and an OAuth access token
	// issued by one node pass on the others.
	t.Run("TokensFromAWorkOnBAndC", func(t *testing.T) {
		post := func(url string, body any, hdr ...string) map[string]any {
			t.Helper()
			b, _ := json.Marshal(body)
			req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			if len(hdr) == 2 {
				req.Header.Set(hdr[0], hdr[1])
			}
			r, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = r.Body.Close() }()
			var v map[string]any
			_ = json.NewDecoder(r.Body).Decode(&v)
			if r.StatusCode/100 != 2 {
				t.Fatalf("POST %s: %d %v", url, r.StatusCode, v)
			}
			return v
		}
		session := post(a.base+"/api/v1/auth/email/login",
			map[string]string{"email": "free-co@example.com", "password": passwords["free-co"]})["access_token"].(string)
		app := post(a.base+"/api/v1/apps", map[string]any{"name": "cluster-app"}, "Authorization", "Bearer "+session)
		form := strings.NewReader("grant_type=client_credentials")
		req, _ := http.NewRequest("POST", a.base+"/oauth/token", form)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(app["client_id"].(string), app["client_secret"].(string))
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok map[string]any
		_ = json.NewDecoder(r.Body).Decode(&tok)
		_ = r.Body.Close()
		if r.StatusCode != 200 {
			t.Fatalf("token from node A: %d %v", r.StatusCode, tok)
		}
		for _, n := range []clusterNode{b, c} {
			for _, cred := range []struct{ path, token string }{
				{"/v1/x", tok["access_token"].(string)}, {"/api/v1/me", session},
			} {
				req, _ := http.NewRequest("GET", n.base+cred.path, nil)
				req.Header.Set("Authorization", "Bearer "+cred.token)
				r, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = r.Body.Close()
				if r.StatusCode != 200 {
					t.Errorf("node %s, GET %s with a token of node A: %d", n.name, cred.path, r.StatusCode)
				}
			}
		}
	})

	t.Run("QuotaExactAcrossNodes", func(t *testing.T) {
		key, _ := createKey(a, "quota-co")
		var ok, refused atomic.Int64
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 4 {
				wg.Go(func() {
					for range 60 { // 3 nodes × 4 workers × 60 = 720 requests for 300 units
						switch call(n, key) {
						case 200:
							ok.Add(1)
						case 403:
							refused.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		t.Logf("quota %d hammered through 3 nodes: %d admitted, %d refused (quota_exhausted)", quota, ok.Load(), refused.Load())
		if ok.Load() != quota || ok.Load()+refused.Load() != 720 {
			t.Fatalf("admitted %d, refused %d; want exactly %d admitted of 720", ok.Load(), refused.Load(), quota)
		}
	})

	t.Run("RateWithinOnePercent", func(t *testing.T) {
		key, _ := createKey(b, "rate-co")
		var mu sync.Mutex
		var first, last time.Time
		var ok int64
		stop := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		for _, n := range nodes {
			for range 4 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						if call(n, key) == 200 {
							at := time.Now()
							mu.Lock()
							if first.IsZero() || at.Before(first) {
								first = at
							}
							if at.After(last) {
								last = at
							}
							ok++
							mu.Unlock()
						}
					}
				})
			}
		}
		wg.Wait()
		// GCRA admits the burst at once, then one request per 1/rate.
		want := burst + rate*last.Sub(first).Seconds()
		t.Logf("rate %d/s burst %d over %v through 3 nodes: %d admitted, theoretical %.1f (%.2f%%)",
			rate, burst, last.Sub(first).Round(time.Millisecond), ok, want, 100*(float64(ok)-want)/want)
		if d := float64(ok) - want; d > want/100 || d < -want/100 {
			t.Fatalf("admitted %d, theoretical %.1f: off by more than 1%%", ok, want)
		}
	})

	t.Run("OneRedisCommandPerRequest", func(t *testing.T) {
		key, _ := createKey(c, "rate-co")
		mon := monitor(t, redisURL, prefix)
		// Warm the key into every node's cache, then count.
		for _, n := range nodes {
			call(n, key)
		}
		time.Sleep(200 * time.Millisecond)
		mon.reset()
		const requests = 30
		for i := range requests {
			call(nodes[i%3], key)
			time.Sleep(10 * time.Millisecond) // within the rate: all admitted
		}
		time.Sleep(300 * time.Millisecond)
		commands := mon.count()
		t.Logf("%d requests, %d Redis commands with the cluster's prefix: %.2f per request", requests, commands, float64(commands)/requests)
		if commands != requests {
			t.Fatalf("%d Redis commands for %d requests, want one each", commands, requests)
		}
	})

	t.Run("RevokedOnARefusedByBAndC", func(t *testing.T) {
		key, id := createKey(a, "free-co")
		for _, n := range nodes {
			if s := call(n, key); s != 200 {
				t.Fatalf("node %s: %d before revocation", n.name, s)
			}
		}
		admin(a, "DELETE", "/admin/v1/organizations/free-co/apikeys/"+id, nil)
		revoked := time.Now()
		for _, n := range []clusterNode{b, c} {
			for {
				if s := call(n, key); s == 401 {
					t.Logf("node %s refuses the key revoked on A after %v", n.name, time.Since(revoked).Round(time.Millisecond))
					break
				}
				if time.Since(revoked) > time.Second {
					t.Fatalf("node %s still admits the key 1s after its revocation on A", n.name)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	})

	t.Run("BanOnASeenByC", func(t *testing.T) {
		key, id := createKey(a, "free-co")
		if s := call(c, key); s != 200 {
			t.Fatalf("before the ban: %d", s)
		}
		admin(a, "POST", "/admin/v1/bans", map[string]any{"kind": "credential", "id": id, "duration": "1m"})
		banned := time.Now()
		for call(c, key) != 403 {
			if time.Since(banned) > time.Second {
				t.Fatal("node C still admits a credential banned on A 1s later")
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("node C refuses the credential banned on A after %v", time.Since(banned).Round(time.Millisecond))
		if v := admin(c, "GET", "/admin/v1/bans/credential/"+id, nil); v["banned"] != true {
			t.Errorf("node C's admin API: %v", v)
		}
	})

	t.Run("KillOneNode", func(t *testing.T) {
		key, _ := createKey(a, "free-co")
		if err := b.cmd.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if s := call(b, key); s != 0 {
			t.Fatalf("killed node B answered %d", s)
		}
		for range 20 {
			for _, n := range []clusterNode{a, c} {
				if s := call(n, key); s != 200 {
					t.Fatalf("node %s: %d after B was killed", n.name, s)
				}
			}
		}
	})
}

// redisMonitor counts the commands clients send Redis on keys under a
// prefix (round trips; not the commands scripts run), through MONITOR on a
// connection of its own.
type redisMonitor struct {
	mu sync.Mutex
	n  int
}

func (m *redisMonitor) reset() { m.mu.Lock(); m.n = 0; m.mu.Unlock() }

func (m *redisMonitor) count() int { m.mu.Lock(); defer m.mu.Unlock(); return m.n }

func monitor(t *testing.T, url, prefix string) *redisMonitor {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", opt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		t.Fatalf("MONITOR: %q %v", line, err)
	}
	m := &redisMonitor{}
	go func() {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			// Commands a script runs show as "[0 lua]": they are part of
			// the one EVALSHA round trip.
			if strings.Contains(line, prefix) && !strings.Contains(line, " lua]") {
				m.mu.Lock()
				m.n++
				m.mu.Unlock()
			}
		}
	}()
	return m
}
