package server

// The regression suite of the request path and header attacks: each class
// runs against the real server with a recording backend, through every way
// a request reaches an upstream — Tollgate's own gateway (role all), a
// gateway-role node asking an auth-role node, a proxy asking the decision
// API (/forward-auth, /forward-auth/nginx), Envoy's ext_authz, and real nginx
// and Caddy running the configurations of docs/forward-auth. The classes are
// in regress_paths_test.go, regress_headers_test.go and
// regress_upgrade_test.go; regress_backends_test.go runs real WSGI and Node
// backends.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// rawDo sends one HTTP/1.1 request with the target and headers exactly as
// given (no client library normalizes them) and returns the status and
// body. Headers are name, value pairs; a name may repeat.
func rawDo(t *testing.T, addr, method, target string, headers ...string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// hostOf returns the host:port of a base URL.
func hostOf(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// A transport is one way of sending a client's request through Tollgate to
// the recording backend: it returns the status the client got.
type transport func(t *testing.T, method, target string, headers ...string) int

// fixture is one of each transport, in front of one recording backend, with
// an API key without scopes (key) and one with kyt.read (scoped). The routes
// are baseYAML's: /v1/ for any credential, /v1/kyt/ for kyt.read.
type fixture struct {
	backend    *recorder
	key        string
	scoped     string
	org        string
	transports map[string]transport
	// addrs are the public listeners of the gateway and gateway-role
	// nodes.
	addrs map[string]string
	// authKeys maps the keys of the role-all node to the secrets of the
	// same keys on the auth-role node, which has a store of its own.
	authKeys map[string]string
}

// TestRegressionSuite runs every class of the suite on one fixture: the
// transports are expensive to start (three nodes, nginx, Caddy).
func TestRegressionSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes, nginx and Caddy")
	}
	f := newFixture(t)
	t.Run("paths", func(t *testing.T) { regressPaths(t, f) })
	t.Run("identity-headers", func(t *testing.T) { regressIdentityHeaders(t, f) })
	t.Run("forwarding-headers", func(t *testing.T) { regressForwardingHeaders(t, f) })
	t.Run("authorization", func(t *testing.T) { regressAuthorization(t, f) })
	t.Run("upgrades", func(t *testing.T) { regressUpgrades(t, f) })
}

// newFixture starts the transports.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{transports: map[string]transport{}, authKeys: map[string]string{}, addrs: map[string]string{}}
	f.backend = newRecorder(t, upgradingBackend)
	all := start(t, baseYAML(t.TempDir(), f.backend.URL), nil)
	auth := start(t, authYAML(t, f.backend.URL), nil)
	// In this order: the auth node's keys are mapped from the all-in-one
	// node's, which must exist first.
	for _, nn := range []struct {
		name string
		n    *node
	}{{"all", all}, {"auth", auth}} {
		name, n := nn.name, nn.n
		token := n.account("regress-"+name+"@example.com", "Regress "+name)
		key, _ := n.createKey(token, nil)
		scoped, _ := n.createKey(token, map[string]any{"scopes": []string{"kyt.read"}})
		if name == "all" {
			f.key, f.scoped, f.org = key, scoped, n.userByEmail("regress-all@example.com").OrgID
		} else {
			// Each node has its own store: the same secret names a key
			// on both by a map from one to the other.
			f.authKeys[f.key], f.authKeys[f.scoped] = key, scoped
		}
	}
	allAddr := hostOf(t, all.base)
	f.addrs["gateway"] = allAddr
	f.transports["gateway"] = func(t *testing.T, method, target string, headers ...string) int {
		status, _ := rawDo(t, allAddr, method, target, headers...)
		return status
	}
	gw := start(t, fmt.Sprintf(`
server: {listen: 127.0.0.1:0, insecure_http: true}
role: gateway
auth_service: {url: "http://%s", token: %s, decision_cache_ttl: 0s}
routes:
  - {path: /v1/, upstream: "%s"}
  - {path: /v1/kyt/, upstream: "%s", scopes: [kyt.read]}
`, auth.srv.AuthAddr(), serviceToken, f.backend.URL, f.backend.URL), nil)
	gwAddr := hostOf(t, gw.base)
	f.addrs["gateway-role"] = gwAddr
	f.transports["gateway-role"] = func(t *testing.T, method, target string, headers ...string) int {
		status, _ := rawDo(t, gwAddr, method, target, f.authHeaders(headers)...)
		return status
	}
	backendAddr := hostOf(t, f.backend.URL)
	for _, path := range []string{"/forward-auth", "/forward-auth/nginx"} {
		f.transports["decision-api"+strings.TrimPrefix(path, "/forward-auth")] = func(t *testing.T, method, target string, headers ...string) int {
			// What any proxy does: ask, then forward the request as
			// the client sent it.
			h := append(f.authHeaders(headers), "X-Forwarded-Method", method, "X-Forwarded-Uri", target,
				"X-Forwarded-Host", "api.example.com", "X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.7",
				"X-Tollgate-Service-Token", serviceToken)
			status, _ := rawDo(t, auth.srv.AuthAddr(), "GET", path, h...)
			if status != http.StatusOK {
				if path == "/forward-auth/nginx" && status == http.StatusUnauthorized {
					return 0 // the real status is in a header; refused
				}
				return status
			}
			status, _ = rawDo(t, backendAddr, method, target, headers...)
			return status
		}
	}
	f.transports["ext_authz"] = f.extAuthzTransport(t, auth.srv.GRPCAddr(), backendAddr)

	// Real proxies, with the configurations of docs/forward-auth.
	if addr, ok := startNginxFor(t, auth.srv.AuthAddr(), f.backend.URL); ok {
		f.transports["nginx"] = func(t *testing.T, method, target string, headers ...string) int {
			status, _ := rawDo(t, addr, method, target, f.authHeaders(headers)...)
			return status
		}
	}
	if addr, ok := startCaddyFor(t, auth.srv.AuthAddr(), backendAddr); ok {
		f.transports["caddy"] = func(t *testing.T, method, target string, headers ...string) int {
			status, _ := rawDo(t, addr, method, target, f.authHeaders(headers)...)
			return status
		}
	}
	return f
}

// authHeaders returns headers with the role-all node's keys replaced by the
// auth node's.
func (f *fixture) authHeaders(headers []string) []string {
	out := append([]string(nil), headers...)
	for i := 1; i < len(out); i += 2 {
		if k, ok := f.authKeys[out[i]]; ok {
			out[i] = k
		}
	}
	return out
}

// extAuthzTransport is Envoy: a Check, then, when allowed, the request
// forwarded as the client sent it, with the response's header mutations.
func (f *fixture) extAuthzTransport(t *testing.T, grpcAddr, backendAddr string) transport {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	return func(t *testing.T, method, target string, headers ...string) int {
		headers = f.authHeaders(headers)
		hm := &corev3.HeaderMap{}
		for i := 0; i+1 < len(headers); i += 2 {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: strings.ToLower(headers[i]), Value: headers[i+1]})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-tollgate-service-token", serviceToken)
		res, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "203.0.113.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
			}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: method, Path: target, Host: "api.example.com", Scheme: "https", HeaderMap: hm,
			}},
		}})
		if err != nil {
			t.Fatalf("Check %s: %v", target, err)
		}
		if d := res.GetDeniedResponse(); d != nil || codes.Code(res.GetStatus().GetCode()) != codes.OK {
			return int(d.GetStatus().GetCode())
		}
		// Envoy applies the mutations, then forwards.
		ok := res.GetOkResponse()
		removed := map[string]bool{}
		for _, k := range ok.GetHeadersToRemove() {
			removed[k] = true
		}
		var out []string
		for i := 0; i+1 < len(headers); i += 2 {
			if !removed[strings.ToLower(headers[i])] {
				out = append(out, headers[i], headers[i+1])
			}
		}
		for _, h := range ok.GetHeaders() {
			out = append(out, h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
		status, _ := rawDo(t, backendAddr, method, target, out...)
		return status
	}
}

// startNginxFor runs Debian's nginx on docs/forward-auth/nginx.conf in front
// of backend, asking auth; false when nginx is missing (outside CI).
func startNginxFor(t *testing.T, auth, backend string) (string, bool) {
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nginx is not installed; CI=true requires it (.ci/run installs Debian's nginx-light)")
			}
			t.Log("nginx is not installed (apt-get install nginx-light): the suite runs without it")
			return "", false
		}
	}
	listen := freeAddr(t)
	startNginx(t, nginxConfig(t, t.TempDir(), listen, auth, backend, serviceToken), listen)
	return listen, true
}

// startCaddyFor runs Debian's caddy on docs/forward-auth/Caddyfile in front
// of backend, asking auth; false when caddy is missing (outside CI).
func startCaddyFor(t *testing.T, auth, backend string) (string, bool) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("caddy is not installed; CI=true requires it (.ci/run installs Debian's caddy)")
		}
		t.Log("caddy is not installed (apt-get install caddy): the suite runs without it")
		return "", false
	}
	raw, err := os.ReadFile("../../docs/forward-auth/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	_, port, _ := net.SplitHostPort(listen)
	conf := string(raw)
	for old, repl := range map[string]string{
		"http://:8080":   "http://127.0.0.1:" + port,
		"127.0.0.1:8091": auth,
		"127.0.0.1:9000": backend,
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("docs/forward-auth/Caddyfile no longer contains %q", old)
		}
		conf = strings.ReplaceAll(conf, old, repl)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"TOLLGATE_AUTH_SERVICE_TOKEN="+serviceToken)
	out, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = out.Close()
	})
	waitListening(t, listen, func() string { b, _ := os.ReadFile(out.Name()); return string(b) })
	return listen, true
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string, log func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen: %v\n%s", addr, err, log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forEachTransport runs f for every transport, as a subtest.
func (f *fixture) forEachTransport(t *testing.T, run func(t *testing.T, name string, send transport)) {
	for _, name := range []string{"gateway", "gateway-role", "decision-api", "decision-api/nginx", "ext_authz", "nginx", "caddy"} {
		send, ok := f.transports[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) { run(t, name, send) })
	}
}

// since returns what the backend received after the first n requests.
func (f *fixture) since(n int) []recorded { return f.backend.all()[n:] }
