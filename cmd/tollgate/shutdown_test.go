package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/store"
)

// A SIGTERM whose requests outlive server.shutdown_timeout (a backend that
// never answers, or stops halfway through a body) loses no usage: every
// request charged has its usage event, with the status the client was sent,
// and the stored quota count equals the units in the usage rollups and in
// the request log.
func TestShutdownRecordsCutRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	// arrived receives the X-Request-Id of every request the backend sees.
	arrived := make(chan string, 100)
	release := make(chan struct{}) // closed at the end: the backend's stuck handlers return
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- r.Header.Get("X-Request-Id")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/stuck"): // no answer at all
		case strings.HasPrefix(r.URL.Path, "/v1/halfway"): // headers and part of the body
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
			w.(http.Flusher).Flush()
		default:
			_, _ = w.Write([]byte("ok"))
			return
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer backend.Close()
	defer close(release)

	const units = 3
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollgate.db")
	addr := freePort(t)
	cfg := filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true
  shutdown_timeout: 1s
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: %s
    units: %d
plans:
  - name: big
    quota: {units: 1000000, period: month}
default_plan: big
usage:
  flush_interval: 100ms
  quota_flush_interval: 100ms
log:
  access_log: false
`, addr, dbPath, backend.URL, units)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, "user", "create", "stop@example.com", "--org-name", "Stop Co", "-c", cfg)
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(must(t, "apikey", "create", "--org", "stop-co", "--name", "k", "--json", "-c", cfg)), &created); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	srv, logPath := serveProcessLog(t, cfg, base)

	type result struct {
		id, status string
		err        error
	}
	call := func(path string) result {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("X-API-KEY", created.Key)
		res, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			return result{err: err}
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return result{id: res.Header.Get("X-Request-Id"), status: res.Status, err: err}
	}
	const quick = 10
	for range quick {
		if r := call("/v1/quick"); r.err != nil || r.status != "200 OK" {
			t.Fatalf("quick request: %s %v", r.status, r.err)
		}
		<-arrived
	}

	// Requests that outlive the shutdown's grace, then SIGTERM.
	const slow = 8
	results := make(chan result, slow)
	var wg sync.WaitGroup
	for i := range slow {
		path := "/v1/stuck"
		if i%2 == 1 {
			path = "/v1/halfway"
		}
		wg.Go(func() { results <- call(path) })
	}
	seen := map[string]bool{}
	for range slow {
		select {
		case id := <-arrived:
			seen[id] = true
		case <-time.After(time.Minute):
			t.Fatal("the slow requests did not reach the backend")
		}
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	select {
	case err := <-exited:
		t.Logf("server exited: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the server did not exit after SIGTERM")
	}
	wg.Wait()
	close(results)
	for r := range results {
		t.Logf("cut request: id %q, status %q, error %v", r.id, r.status, r.err)
	}
	logs, _ := os.ReadFile(logPath)

	st := openStore(t, dbPath)
	ctx := context.Background()
	org, err := st.GetOrganizationBySlug(ctx, "stop-co")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	start, end, label := limits.Period("month", now)
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
	entries, err := st.ListRequests(ctx, store.RequestFilter{OrgID: org.ID, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var logged int64
	for _, e := range entries {
		logged += e.Units
		if seen[e.ID] {
			t.Logf("usage event of a cut request: %s status %d units %d", e.ID, e.Status, e.Units)
			delete(seen, e.ID)
		}
	}
	t.Logf("quota count %d; rollups: %d units, %d requests; request log: %d entries, %d units",
		quota, rolled.Units, rolled.Requests, len(entries), logged)
	if len(seen) > 0 {
		t.Errorf("%d requests charged and forwarded have no usage event: %v", len(seen), seen)
	}
	if want := int64((quick + slow) * units); quota != want || rolled.Units != want || logged != want {
		t.Errorf("quota count %d, rollup units %d, request-log units %d; want %d each", quota, rolled.Units, logged, want)
	}
	if rolled.Requests != quick+slow || len(entries) != quick+slow {
		t.Errorf("%d requests in the rollups, %d in the request log; want %d", rolled.Requests, len(entries), quick+slow)
	}
	if strings.Contains(string(logs), "recorder stopped") {
		t.Errorf("usage events dropped at shutdown:\n%s", logs)
	}
}
