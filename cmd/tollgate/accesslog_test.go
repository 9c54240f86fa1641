package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The binary, configured from a file (log.format json by default), writes
// one JSON access-log line per request through its dedicated encoder: the
// path without the query, the status, and an escaped user agent.
func TestServeWritesJSONAccessLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	defer backend.Close()
	dir := t.TempDir()
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
  - path: /open/
    upstream: %s
    public: true
`, addr, filepath.Join(dir, "tollgate.db"), backend.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, logPath := serveProcessLog(t, cfg, "http://"+addr)

	const ua = `agent "quoted" \ back`
	req, _ := http.NewRequest("GET", "http://"+addr+"/open/thing?secret=hunter2", nil)
	req.Header.Set("User-Agent", ua)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_ = srv.Process.Signal(syscall.SIGTERM) // the final flush of the log buffer
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no graceful stop")
	}

	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "hunter2") {
			t.Errorf("the query was logged: %s", sc.Text())
		}
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "request" && m["path"] == "/open/thing" {
			found = m
		}
	}
	if found == nil {
		t.Fatal("no JSON access-log line for the request")
	}
	if found["status"] != float64(http.StatusTeapot) || found["user_agent"] != ua || found["level"] != "INFO" ||
		found["route"] != "/open/" || found["request_id"] == nil || found["time"] == nil {
		t.Errorf("access-log line %v", found)
	}
}
