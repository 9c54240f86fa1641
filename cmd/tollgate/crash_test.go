package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/limits"
)

// TestMain lets a test run this binary as `tollgate`, in a process of its
// own that it can kill: with TOLLGATE_TEST_MAIN=1 the arguments after "--"
// go to the CLI.
func TestMain(m *testing.M) {
	if os.Getenv("TOLLGATE_TEST_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"tollgate"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveProcess starts `tollgate serve -c cfg` in a child process and waits
// until it is ready.
func serveProcess(t *testing.T, cfg, base string) *exec.Cmd {
	t.Helper()
	cmd, _ := serveProcessLog(t, cfg, base)
	return cmd
}

// serveProcessLog is serveProcess that also returns the path of the file
// the process logs to.
func serveProcessLog(t *testing.T, cfg, base string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "serve", "-c", cfg)
	cmd.Env = append(os.Environ(), "TOLLGATE_TEST_MAIN=1")
	logPath := filepath.Join(t.TempDir(), "server.log")
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := http.Get(base + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return cmd, logPath
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logs.Name())
			t.Fatalf("server not ready: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Quota counts survive the process: after kill -9 the stored count lacks at
// most what was admitted within the last flush interval; after a graceful
// stop it is exact; a restarted server goes on from it.
func TestQuotaSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	var served atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()

	const flush = 200 * time.Millisecond
	const quota = 1_000_000
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "tollgate.db")
	addr := freePort(t)
	cfg := filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: %s
plans:
  - name: big
    quota: {units: %d, period: month}
default_plan: big
usage:
  quota_flush_interval: %s
log:
  access_log: false
`, addr, dbPath, backend.URL, quota, flush)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, "user", "create", "crash@example.com", "--org-name", "Crash Co", "-c", cfg)
	var created struct{ Key string }
	if err := json.Unmarshal([]byte(must(t, "apikey", "create", "--org", "crash-co", "--name", "k", "--json", "-c", cfg)), &created); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dbPath)
	ctx := context.Background()
	org, err := st.GetOrganizationBySlug(ctx, "crash-co")
	if err != nil {
		t.Fatal(err)
	}
	_, _, label := limits.Period("month", time.Now())
	key := "quota:{" + org.ID + "}:" + label
	stored := func() int64 {
		t.Helper()
		n, err := st.GetQuotaCount(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}
	call := func() (int, http.Header) {
		req, _ := http.NewRequest("GET", base+"/v1/x", nil)
		req.Header.Set("X-API-KEY", created.Key)
		r, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		r.Body.Close()
		return r.StatusCode, r.Header
	}

	// 1. Under load, then kill -9.
	srv := serveProcess(t, cfg, base)
	var (
		mu    sync.Mutex
		oks   []time.Time // when each 200 arrived
		stop  atomic.Bool
		loads sync.WaitGroup
	)
	for range 4 {
		loads.Go(func() {
			for !stop.Load() {
				if status, _ := call(); status == 200 {
					mu.Lock()
					oks = append(oks, time.Now())
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	killedAt := time.Now()
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = srv.Wait()
	stop.Store(true)
	loads.Wait()
	afterKill := stored()
	// What was answered one flush interval (plus generous scheduling slack
	// on a loaded machine) before the kill must be in the store.
	var before int64
	for _, at := range oks {
		if at.Before(killedAt.Add(-flush - 2*time.Second)) {
			before++
		}
	}
	t.Logf("kill -9: %d answered 200, %d reached the backend, %d stored", len(oks), served.Load(), afterKill)
	if afterKill < before || before == 0 {
		t.Fatalf("after kill -9: %d stored, but %d were answered over %v before the kill", afterKill, before, flush)
	}
	if afterKill > served.Load() {
		t.Fatalf("after kill -9: %d stored, more than the %d the backend served", afterKill, served.Load())
	}

	// 2. Restart: the count goes on from the stored value.
	srv = serveProcess(t, cfg, base)
	status, h := call()
	if status != 200 || !strings.Contains(h.Get("RateLimit"), fmt.Sprintf(`"month";r=%d;`, quota-afterKill-1)) {
		t.Fatalf("after restart: %d, RateLimit %q; want %d remaining", status, h.Get("RateLimit"), quota-afterKill-1)
	}
	for range 99 {
		if status, _ := call(); status != 200 {
			t.Fatalf("status %d", status)
		}
	}

	// 3. A graceful stop stores the exact count.
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if got := stored(); got != afterKill+100 {
		t.Fatalf("after a graceful stop: %d stored, want %d", got, afterKill+100)
	}
}
