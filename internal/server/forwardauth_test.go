package server

import (
	"context"
	"fmt"
	"net"
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

	"github.com/tollgate/tollgate/internal/store"
)

// serviceToken is the decision API's token in these tests.
const serviceToken = "decision-api-token-0123456789abcdef"

// authYAML is a node of role auth with the decision API on free ports and a
// tight plan for rate-limit refusals.
func authYAML(t *testing.T, upstream string) string {
	return baseYAML(t.TempDir(), upstream) + fmt.Sprintf(`
role: auth
auth_service:
  listen: 127.0.0.1:0
  grpc_listen: 127.0.0.1:0
  token: %s
plans:
  - name: tight
    rate: {requests_per_second: 1, burst: 2}
`, serviceToken)
}

// nginxConfig is docs/forward-auth/nginx.conf, the README's configuration,
// on the test's addresses, in a main configuration of its own.
func nginxConfig(t *testing.T, prefix, listen, auth, backend, token string) string {
	t.Helper()
	raw, err := os.ReadFile("../../docs/forward-auth/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	site := string(raw)
	for old, repl := range map[string]string{
		"server 127.0.0.1:8091;":     "server " + auth + ";",
		"listen 8080;":               "listen " + listen + ";",
		"http://127.0.0.1:9000":      backend,
		"REPLACE_WITH_SERVICE_TOKEN": token,
	} {
		if !strings.Contains(site, old) {
			t.Fatalf("docs/forward-auth/nginx.conf no longer contains %q", old)
		}
		site = strings.ReplaceAll(site, old, repl)
	}
	if err := os.WriteFile(filepath.Join(prefix, "tollgate.conf"), []byte(site), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/tollgate.conf;
}
`, prefix)
}

// startNginx runs Debian's nginx on conf until the test ends. Outside CI,
// a machine without nginx skips the test; under CI=true it fails.
func startNginx(t *testing.T, conf, listen string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("nginx is not installed; CI=true requires it (.ci/run installs Debian's nginx-light)")
			}
			t.Skip("nginx is not installed (apt-get install nginx-light) : skipping the nginx auth_request test")
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	// A file, not a pipe: nginx's workers would hold a pipe open after
	// the master is gone, and Wait would wait for them.
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGQUIT: the master stops its workers and exits.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			stderr, _ := os.ReadFile(out.Name())
			t.Fatalf("nginx did not start: %v\n%s\n%s", err, stderr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Real nginx with auth_request in front of a backend, Tollgate (role auth)
// deciding: the README's configuration, tried as a client would.
func TestNginxAuthRequest(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, authYAML(t, backend.URL), nil)
	token := n.account("nginx@example.com", "Nginx Co")
	key, id := n.createKey(token, nil)
	listen := freeAddr(t)
	startNginx(t, nginxConfig(t, t.TempDir(), listen, n.srv.AuthAddr(), backend.URL, serviceToken), listen)
	front := "http://" + listen

	// A client's own X-Tollgate-Org is refused: nginx would pass it on.
	r := do(t, "GET", front+"/v1/prices?coin=btc", nil, "X-API-KEY", key, "X-Tollgate-Org", "org_forged")
	if code, reason := r.errCode(t); r.Status != 400 || code != "BAD_REQUEST" || reason != "forged_header" {
		t.Fatalf("forged X-Tollgate-Org: %d %s", r.Status, r.Body)
	}
	// Admitted: the backend gets the caller's context, not the key.
	r = do(t, "GET", front+"/v1/prices?coin=btc", nil, "X-API-KEY", key)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"path":"/v1/prices"`) {
		t.Fatalf("admitted: %d %s", r.Status, r.Body)
	}
	got := backend.all()
	h := got[len(got)-1].Header
	org := n.userByEmail("nginx@example.com").OrgID
	if h.Get("X-Tollgate-Org") != org || h.Get("X-Tollgate-Credential") != id || h.Get("X-Api-Key") != "" || h.Get("X-Request-Id") == "" {
		t.Errorf("backend headers: org %q (want %q) credential %q key %q request id %q",
			h.Get("X-Tollgate-Org"), org, h.Get("X-Tollgate-Credential"), h.Get("X-Api-Key"), h.Get("X-Request-Id"))
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id for the client")
	}

	// Refusals: Tollgate's status and body, through nginx.
	before := len(backend.all())
	for _, c := range []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"no credential", "/v1/prices", "", 401, "UNAUTHORIZED"},
		{"bad key", "/v1/prices", "tg_live_not-a-real-key", 401, "INVALID_CREDENTIALS"},
		{"missing scope", "/v1/kyt/address", key, 403, "INSUFFICIENT_SCOPE"},
		{"no route", "/nowhere", key, 404, "NOT_FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h []string
			if c.key != "" {
				h = []string{"X-API-KEY", c.key}
			}
			r := do(t, "GET", front+c.path, nil, h...)
			if r.Status != c.status || !strings.Contains(string(r.Body), `"code":"`+c.code+`"`) {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, c.status, c.code)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if c.status == 401 && c.key == "" && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if len(backend.all()) != before {
		t.Error("a refused request reached the backend")
	}

	// The rate limit: 429 with Retry-After and the RateLimit headers.
	if r := n.adminDo("GET", "/admin/v1/organizations", nil); r.Status != 200 {
		t.Fatal(r.Status)
	}
	tightKey := keyOnPlan(t, n, token, "tight")
	var last response
	for range 3 {
		last = do(t, "GET", front+"/v1/prices", nil, "X-API-KEY", tightKey)
	}
	if last.Status != 429 || !strings.Contains(string(last.Body), `"code":"RATE_LIMITED"`) ||
		last.Header.Get("Retry-After") == "" || last.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("third request on a burst of 2: %d %s %v", last.Status, last.Body, last.Header)
	}
}

// keyOnPlan creates a key of its own plan.
func keyOnPlan(t *testing.T, n *node, token, plan string) string {
	t.Helper()
	key, id := n.createKey(token, nil)
	k, err := n.srv.Store().UpdateAPIKey(context.Background(), id, func(k store.APIKey) (store.APIKey, error) {
		k.Plan = plan
		return k, nil
	}, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.set_plan"})
	if err != nil || k.Plan != plan {
		t.Fatal(err)
	}
	n.srv.Keys().InvalidateKeys([]string{id})
	return key
}

// Envoy's ext_authz v3 over gRPC, with a Go client on the Envoy protos.
func TestExtAuthzGRPC(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, authYAML(t, backend.URL), nil)
	token := n.account("envoy@example.com", "Envoy Co")
	key, id := n.createKey(token, nil)
	conn, err := grpc.NewClient(n.srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(tok string, headers map[string]string) (*authv3.CheckResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if tok != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-tollgate-service-token", tok)
		}
		return client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: "203.0.113.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
			}}},
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/prices?coin=eth", Host: "api.example.com", Scheme: "https", Headers: headers,
			}},
		}})
	}
	if _, err := check("", map[string]string{"x-api-key": key}); err == nil {
		t.Fatal("a call without the service token was answered")
	}
	res, err := check(serviceToken, map[string]string{"x-api-key": key})
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(res.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("status %v, denied %v", res.GetStatus(), res.GetDeniedResponse())
	}
	set := map[string]string{}
	for _, h := range res.GetOkResponse().GetHeaders() {
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if set["x-tollgate-credential"] != id || set["x-tollgate-org"] == "" {
		t.Errorf("upstream headers %v", set)
	}
	res, err = check(serviceToken, map[string]string{"x-api-key": "tg_live_nope"})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.GetDeniedResponse(); d == nil || d.GetStatus().GetCode() != 401 || !strings.Contains(d.GetBody(), "INVALID_CREDENTIALS") {
		t.Fatalf("bad key: %v", res)
	}
	// The decision is metered on the auth service, with Envoy's client IP.
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, err := n.srv.Store().ListRequests(context.Background(), store.RequestFilter{OrgID: n.userByEmail("envoy@example.com").OrgID, Limit: 10})
		if err == nil && len(page) >= 1 {
			if page[0].ClientIP != "203.0.113.9" {
				t.Errorf("metered client IP %q", page[0].ClientIP)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("decisions not metered: %v %v", page, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The split roles: a gateway-role node asks an auth-role node for each
// decision and sends it its usage.
func TestSplitRoles(t *testing.T) {
	backend := newRecorder(t, nil)
	auth := start(t, authYAML(t, backend.URL), nil)
	token := auth.account("split@example.com", "Split Co")
	key, id := auth.createKey(token, nil)
	gwYAML := fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  insecure_http: true
role: gateway
auth_service:
  url: http://%s
  token: %s
  decision_cache_ttl: 0s
routes:
  - path: /v1/
    upstream: %s
    units: 1
  - path: /v1/kyt/
    upstream: %s
    scopes: [kyt.read]
usage:
  flush_interval: 50ms
`, auth.srv.AuthAddr(), serviceToken, backend.URL, backend.URL)
	gw := start(t, gwYAML, nil)

	r := do(t, "GET", gw.base+"/v1/prices", nil, "X-API-KEY", key)
	if r.Status != 200 {
		t.Fatalf("through the gateway node: %d %s", r.Status, r.Body)
	}
	all := backend.all()
	if h := all[len(all)-1].Header; h.Get("X-Tollgate-Credential") != id || h.Get("X-Api-Key") != "" {
		t.Errorf("backend headers %v", h)
	}
	r = do(t, "GET", gw.base+"/v1/kyt/x", nil, "X-API-KEY", key)
	if code, _ := r.errCode(t); r.Status != 403 || code != "INSUFFICIENT_SCOPE" {
		t.Fatalf("scope refusal: %d %s", r.Status, r.Body)
	}
	r = do(t, "GET", gw.base+"/v1/prices", nil)
	if code, _ := r.errCode(t); r.Status != 401 || code != "UNAUTHORIZED" || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credential: %d %s %v", r.Status, r.Body, r.Header)
	}
	// The gateway's usage reaches the auth service's store, with the
	// backend's status.
	org := auth.userByEmail("split@example.com").OrgID
	deadline := time.Now().Add(5 * time.Second)
	for {
		page, err := auth.srv.Store().ListRequests(context.Background(), store.RequestFilter{OrgID: org, Limit: 10})
		if err == nil && len(page) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway usage not stored on the auth service: %v %v", page, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := do(t, "GET", gw.base+"/readyz", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"auth_service":"ok"`) {
		t.Errorf("gateway /readyz: %d %s", r.Status, r.Body)
	}
}
