package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/testsvc"
)

// Two nodes on one PostgreSQL schema and one Redis prefix, under load; one
// is killed (kill -9), the other goes on, then stops gracefully. The quota
// counts exactly what the limiter admitted on both: every request the
// backend served, and at most the killed node's requests in flight besides.
// The usage lost is the killed node's unwritten events only: every request
// it answered more than one flush interval (plus slack for a loaded
// machine) before the kill has its usage event, and so has every request of
// the node that stopped gracefully. The test logs the loss it measured.
func TestClusterKillNodeUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)

	var mu sync.Mutex
	served := map[string]bool{} // X-Request-Id of every request the backend served
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served[r.Header.Get("X-Request-Id")] = true
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()

	const flush = 200 * time.Millisecond
	const slack = 2 * time.Second // scheduling on a loaded machine
	const workers = 4             // per node
	dir := t.TempDir()
	writeNode := func(name string) (cfg, base string) {
		listen := freePort(t)
		cfg = filepath.Join(dir, name+".yaml")
		yaml := fmt.Sprintf(`server:
  listen: %s
  public_url: http://cluster.tollgate.test
  insecure_http: true
storage:
  type: postgres
  postgres: {url: "%s", schema: %s}
counters:
  type: redis
  redis: {url: "%s", prefix: "%s"}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: %s
    units: 2
plans:
  - name: big
    quota: {units: 100000000, period: month}
default_plan: big
usage:
  flush_interval: %s
  quota_flush_interval: %s
log:
  access_log: false
`, listen, pgURL, schema, redisURL, prefix, backend.URL, flush, flush)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg, "http://" + listen
	}
	cfgA, baseA := writeNode("A")
	cfgB, baseB := writeNode("B")
	must(t, "user", "create", "kill@example.com", "--org-name", "Kill Co", "-c", cfgA)
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(must(t, "apikey", "create", "--org", "kill-co", "--name", "k", "--json", "-c", cfgA)), &created); err != nil {
		t.Fatal(err)
	}
	nodeA := serveProcess(t, cfgA, baseA)
	nodeB := serveProcess(t, cfgB, baseB)

	// answer is a request answered 200: its ID and when the answer came.
	type answer struct {
		id string
		at time.Time
	}
	var (
		answersMu sync.Mutex
		answers   = map[string][]answer{}
		stop      atomic.Bool
		load      sync.WaitGroup
		countA    atomic.Int64
		countB    atomic.Int64
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for _, n := range []struct {
		name, base string
		count      *atomic.Int64
	}{{"A", baseA, &countA}, {"B", baseB, &countB}} {
		for range workers {
			load.Go(func() {
				for !stop.Load() {
					req, _ := http.NewRequest("GET", n.base+"/v1/x", nil)
					req.Header.Set("X-API-KEY", created.Key)
					res, err := client.Do(req)
					if err != nil {
						if n.name == "B" {
							return // killed
						}
						continue
					}
					_ = res.Body.Close()
					if res.StatusCode == http.StatusOK {
						answersMu.Lock()
						answers[n.name] = append(answers[n.name], answer{res.Header.Get("X-Request-Id"), time.Now()})
						answersMu.Unlock()
						n.count.Add(1)
					}
				}
			})
		}
	}
	waitCount := func(what string, c *atomic.Int64, n int64) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for c.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%d)", what, c.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// B long enough under load to have written batches, then kill -9;
	// A goes on a while after.
	waitCount("node B under load", &countB, 800)
	// …and long enough that some of its answers are older than the flush
	// interval and the slack: those must all be stored.
	for {
		answersMu.Lock()
		first := answers["B"][0].at
		answersMu.Unlock()
		if time.Since(first) > 2*(flush+slack) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	killedAt := time.Now()
	if err := nodeB.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = nodeB.Wait()
	afterKill := countA.Load()
	waitCount("node A after the kill", &countA, afterKill+200)
	stop.Store(true)
	load.Wait()
	if err := nodeA.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Wait(); err != nil {
		t.Fatalf("node A's graceful stop: %v", err)
	}

	ctx := context.Background()
	st, err := postgres.Open(ctx, pgURL, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org, err := st.GetOrganizationBySlug(ctx, "kill-co")
	if err != nil {
		t.Fatal(err)
	}
	start, end, label := limits.Period("month", time.Now())
	quota, err := st.GetQuotaCount(ctx, "quota:{"+org.ID+"}:"+label)
	if err != nil {
		t.Fatal(err)
	}
	series, err := st.UsageSeries(ctx, store.UsageQuery{OrgID: org.ID, Granularity: "month", From: start, To: end})
	if err != nil {
		t.Fatal(err)
	}
	var rolled store.UsagePoint
	for _, p := range series {
		rolled.Units += p.Units
		rolled.Requests += p.Requests
	}
	logged := map[string]bool{}
	for f := (store.RequestFilter{OrgID: org.ID, Limit: 10000}); ; {
		page, err := st.ListRequests(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			logged[e.ID] = true
		}
		last := page[len(page)-1]
		f.AfterTime, f.AfterID = last.Time, last.ID
	}

	// The quota: exactly what the limiter admitted. Every request served
	// was admitted; B's requests admitted and not yet forwarded at the
	// kill are the only others.
	mu.Lock()
	nServed := int64(len(served))
	mu.Unlock()
	if quota < 2*nServed || quota > 2*(nServed+workers) {
		t.Errorf("quota count %d units for %d requests served (2 units each, up to %d more in flight on B)", quota, nServed, workers)
	}
	// The usage: the rollups lack at most B's unwritten events.
	var lateB, earlyB int64 // B's answers within a flush interval (and the slack) of the kill, and before
	for _, a := range answers["B"] {
		if !a.at.Before(killedAt.Add(-flush - slack)) {
			lateB++
			continue
		}
		earlyB++
		if !logged[a.id] {
			t.Errorf("request %s, answered by B %v before the kill, has no usage event", a.id, killedAt.Sub(a.at).Round(time.Millisecond))
		}
	}
	for _, a := range answers["A"] {
		if !logged[a.id] {
			t.Errorf("request %s, answered by A (stopped gracefully), has no usage event", a.id)
		}
	}
	lostUnits := quota - rolled.Units
	t.Logf("answered 200: A %d, B %d; served %d; quota count %d units; rollups %d units, %d requests; request log %d entries",
		len(answers["A"]), len(answers["B"]), nServed, quota, rolled.Units, rolled.Requests, len(logged))
	bRate := float64(len(answers["B"])) / killedAt.Sub(answers["B"][0].at).Seconds()
	t.Logf("usage lost by the kill -9 of B: %d units (%d requests, %.0f ms of B's %.0f requests/s; flush interval %v); "+
		"B answered %d requests more than %v before the kill, all stored, and %d within it; %d workers in flight",
		lostUnits, lostUnits/2, 1000*float64(lostUnits/2)/bRate, bRate, flush, earlyB, flush+slack, lateB, workers)
	if earlyB == 0 {
		t.Error("no answer of B older than the flush interval and the slack: the check is empty")
	}
	if lostUnits < 0 || lostUnits > 2*(lateB+workers) {
		t.Errorf("usage lost: %d units; want between 0 and %d (B's last flush interval and its requests in flight)", lostUnits, 2*(lateB+workers))
	}
	if rolled.Requests != int64(len(logged)) {
		t.Errorf("%d requests in the rollups, %d in the request log: nothing was sampled at this rate", rolled.Requests, len(logged))
	}
}
