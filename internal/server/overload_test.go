package server

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	_ "modernc.org/sqlite" // the driver of the connection that holds the store's write lock
)

// metricValue reads one sample (name with its labels, as exposed) from the
// admin listener's /metrics; -1 when it is absent.
func (n *node) metricValue(name string) float64 {
	n.t.Helper()
	r := do(n.t, "GET", n.admin+"/metrics", nil)
	if r.Status != 200 {
		n.t.Fatalf("/metrics: %d", r.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				n.t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// Usage events far above what the store takes (here: none, while another
// connection holds the SQLite write lock) sample the request log but keep
// the totals exact: once the store is back, the rollups count every request
// and every unit, and agree with the quota; the request log holds the
// others, and the usage API, the metrics and the dashboard say how many it
// left out. Nothing is dropped.
func TestUsageOverloadSamplesTheRequestLog(t *testing.T) {
	be := newRecorder(t, nil)
	dir := t.TempDir()
	n := start(t, dashYAML(dir, be.URL)+`plans:
  - name: big
    quota: {units: 1000000, period: month}
default_plan: big
usage:
  buffer: 64
  batch_size: 8
  flush_interval: 20ms
  quota_flush_interval: 20ms
`, nil)
	c := dashLogin(t, n, "overload@example.com", "Overload Co")
	token := n.login("overload@example.com", "correct horse battery")
	key, _ := n.createKey(token, map[string]any{"name": "k"})
	call := func(path string, want int) {
		t.Helper()
		if r := do(t, "GET", n.base+path, nil, "X-API-KEY", key); r.Status != want {
			t.Errorf("GET %s: %d, want %d", path, r.Status, want)
		}
	}
	call("/v1/warm", 200) // caches the key and the plan: the request path reads nothing more
	waitFor(t, "the first event written", func() bool { return n.metricValue("tollgate_usage_events_written_total") == 1 })

	// Another connection takes the store's write lock: the recorder's
	// batches wait for it.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tollgate.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := lock.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Error(err)
			}
		}
	}
	defer unlock()

	// Ten times the queue, from 6 clients: admitted requests of 1 unit,
	// and refusals (a missing scope) of none.
	const admitted, refused = 600, 60
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				switch {
				case i <= admitted:
					call("/v1/x", 200)
				case i <= admitted+refused:
					call("/v1/kyt/score", 403)
				default:
					return
				}
			}
		})
	}
	wg.Wait()
	omitted := n.metricValue("tollgate_usage_events_omitted_total")
	if omitted <= 0 {
		t.Fatalf("no event left out of the request log with the store locked: omitted %v", omitted)
	}
	unlock()

	const total = 1 + admitted + refused
	waitFor(t, "every event stored", func() bool {
		return n.metricValue("tollgate_usage_events_queued") == 0 &&
			n.metricValue("tollgate_usage_events_written_total") == total
	})
	if d, f := n.metricValue("tollgate_usage_events_dropped_total"), n.metricValue("tollgate_usage_events_failed_total"); d != 0 || f != 0 {
		t.Errorf("dropped %v, failed %v; want none", d, f)
	}
	if o := n.metricValue("tollgate_usage_events_omitted_total"); o != omitted {
		t.Errorf("omitted %v after the store came back, %v before", o, omitted)
	}

	// The rollups: every request and unit, as the quota counted them.
	u := n.usage(token, "/api/v1/usage", url.Values{"granularity": {"hour"}})
	units, requests, errs := totals(u)
	plan := u["plan"].(map[string]any)
	t.Logf("%d requests (%d admitted): rollups %d requests, %d units, %d errors; quota used %v; %v left out of the request log",
		total, admitted+1, requests, units, errs, plan["quota_used"], omitted)
	if units != admitted+1 || requests != total || errs != refused {
		t.Errorf("rollups: %d units, %d requests, %d errors; want %d, %d, %d", units, requests, errs, admitted+1, total, refused)
	}
	if plan["quota_used"] != float64(units) {
		t.Errorf("quota used %v, rollup units %d", plan["quota_used"], units)
	}
	wantSampling := map[string]any{"sampled": true, "omitted": omitted}
	if got := u["request_log"]; !equalJSON(got, wantSampling) {
		t.Errorf("usage request_log %v, want %v", got, wantSampling)
	}

	// The request log holds the rest, and says what it lacks.
	var logged int
	q := url.Values{"limit": {"1000"}}
	for pages := 0; ; pages++ {
		p := n.usage(token, "/api/v1/usage/requests", q)
		if got := p["request_log"]; !equalJSON(got, wantSampling) {
			t.Errorf("requests request_log %v, want %v", got, wantSampling)
		}
		logged += len(p["data"].([]any))
		cur, _ := p["next_cursor"].(string)
		if cur == "" || pages > 10 {
			break
		}
		q.Set("cursor", cur)
	}
	if logged+int(omitted) != total {
		t.Errorf("%d in the request log + %v left out != %d requests", logged, omitted, total)
	}

	// So does the dashboard.
	p := c.get("/dashboard/metrics")
	if want := `id="requests-sampled"`; p.Status != 200 || !strings.Contains(p.Body, want) || !strings.Contains(p.Body, strconv.Itoa(int(omitted))+" requests of this window") {
		t.Errorf("dashboard metrics: %d, no sampling notice for %v requests", p.Status, omitted)
	}
}

func equalJSON(got any, want map[string]any) bool {
	m, ok := got.(map[string]any)
	if !ok || len(m) != len(want) {
		return false
	}
	for k, v := range want {
		if m[k] != v {
			return false
		}
	}
	return true
}
