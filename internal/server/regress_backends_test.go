package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The backends that read requests their own way, as real ones: a WSGI
// application on Python's wsgiref (headers as CGI variables, "-" and "_"
// alike) and a Node server that resolves the path with the WHATWG URL
// parser (percent-encoded dot segments included).
const (
	wsgiApp = `
import json, sys
from wsgiref.simple_server import make_server, WSGIRequestHandler
def app(environ, start_response):
    body = json.dumps({"path": environ.get("PATH_INFO", ""),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")}}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass
srv = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(srv.server_port, flush=True)
srv.serve_forever()
`
	nodeApp = `
const http = require('http');
const srv = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://backend');
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({path: u.pathname, raw: req.url, headers: req.headers}));
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
`
)

// startBackend runs a backend program and returns its base URL; false when
// the interpreter is missing (outside CI).
func startBackend(t *testing.T, interpreter string, args ...string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath(interpreter)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI=true requires it", interpreter)
		}
		t.Logf("%s is not installed: skipping its backend", interpreter)
		return "", false
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if p == "" {
			t.Fatalf("%s backend printed no port", interpreter)
		}
		return "http://127.0.0.1:" + p, true
	case <-time.After(30 * time.Second):
		t.Fatalf("%s backend did not start", interpreter)
	}
	return "", false
}

// seen is what a backend says it received.
type seen struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
}

// TestRealBackends: the path and header attacks against real WSGI and Node
// backends behind Tollgate's gateway, and the Node backend behind nginx with
// the shipped forward-auth configuration. A key without kyt.read never gets
// a scoped resource, and a backend never reads a forged identity header.
func TestRealBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python and Node backends")
	}
	backends := map[string]string{}
	if u, ok := startBackend(t, "python3", "-c", wsgiApp); ok {
		backends["wsgi"] = u
	}
	if u, ok := startBackend(t, "node", "-e", nodeApp); ok {
		backends["node"] = u
	}
	if len(backends) == 0 {
		t.Skip("neither python3 nor node")
	}
	var routes strings.Builder
	for name, u := range backends {
		fmt.Fprintf(&routes, "  - {path: /%s/, upstream: %q}\n  - {path: /%s/kyt/, upstream: %q, scopes: [kyt.read]}\n", name, u, name, u)
	}
	yaml := strings.Replace(baseYAML(t.TempDir(), "http://127.0.0.1:1"), "routes:\n", "routes:\n"+routes.String(), 1)
	n := start(t, yaml, nil)
	token := n.account("backends@example.com", "Backends Co")
	key, _ := n.createKey(token, nil)
	scoped, _ := n.createKey(token, map[string]any{"scopes": []string{"kyt.read"}})
	addr := hostOf(t, n.base)

	get := func(t *testing.T, addr, target string, headers ...string) (int, seen) {
		t.Helper()
		status, body := rawDo(t, addr, "GET", target, headers...)
		var s seen
		if status == 200 {
			if err := json.Unmarshal([]byte(body), &s); err != nil {
				t.Fatalf("%s: %d %s", target, status, body)
			}
		}
		return status, s
	}
	for name := range backends {
		t.Run(name, func(t *testing.T) {
			prefix := "/" + name + "/"
			if s, got := get(t, addr, prefix+"kyt/score", "X-API-KEY", scoped); s != 200 || got.Path != prefix+"kyt/score" {
				t.Fatalf("control: %d %+v", s, got)
			}
			for _, a := range pathAttacks {
				if strings.HasPrefix(a, "http") {
					continue
				}
				target := strings.Replace(a, "/v1/", prefix, 1)
				target = strings.Replace(target, "/v1\\", "/"+name+"\\", 1)
				target = strings.Replace(target, "/v1%2F", "/"+name+"%2F", 1)
				target = strings.Replace(target, "/v1/", prefix, 1) // the second /v1/ of "/v1/../v1/kyt"
				status, got := get(t, addr, target, "X-API-KEY", key)
				// Lower case: Express routes case-insensitively by default.
				if status == 200 && strings.HasPrefix(strings.ToLower(got.Path), prefix+"kyt/") {
					t.Errorf("%s: the %s backend served %s to a key without kyt.read", target, name, got.Path)
				}
			}
			for _, a := range identityAttacks {
				status, got := get(t, addr, prefix+"hello", "X-API-KEY", key, a[0], a[1])
				for k, v := range got.Headers {
					if strings.Contains(v, a[1]) && wsgiName(strings.TrimPrefix(k, "HTTP_")) == wsgiName(a[0]) {
						t.Errorf("%s: %s: the %s backend read %s = %q", a[0], a[1], name, k, v)
					}
				}
				if status != 200 && status != 400 {
					t.Errorf("%s: %d", a[0], status)
				}
			}
		})
	}

	// nginx with the shipped configuration in front of the Node backend.
	u, ok := backends["node"]
	if !ok {
		return
	}
	auth := start(t, authYAML(t, u), nil)
	atoken := auth.account("backends@example.com", "Backends Co")
	akey, _ := auth.createKey(atoken, nil)
	front, ok := startNginxFor(t, auth.srv.AuthAddr(), u)
	if !ok {
		return
	}
	t.Run("nginx+node", func(t *testing.T) {
		for _, a := range pathAttacks {
			if strings.HasPrefix(a, "http") {
				continue
			}
			status, got := get(t, front, a, "X-API-KEY", akey)
			if status == 200 && strings.HasPrefix(strings.ToLower(got.Path), "/v1/kyt/") {
				t.Errorf("%s: the Node backend behind nginx served %s to a key without kyt.read", a, got.Path)
			}
		}
	})
}
