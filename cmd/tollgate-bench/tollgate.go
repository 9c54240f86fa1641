package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchAdminToken guards the benchmark node's admin API; the node lives in a
// temporary directory for the length of the run.
const benchAdminToken = "tollgate-bench-admin-token-0123456789" //nolint:gosec // G101: a throwaway token of a throwaway node

// tollgateYAML configures a node under test: plain HTTP on loopback, the
// embedded SQLite store, every default left alone (access log, usage
// metering, metrics, in-process counters) except a plan whose rate and quota
// are checked on every request but never refuse one, so that what is
// measured is the cost of the decision, not of refusals. The last argument
// is a counters section, or nothing for the default.
const tollgateYAML = `server:
  listen: %[1]s
  insecure_http: true
admin:
  listen: %[2]s
  token: %[3]s
  pprof: true
storage:
  type: sqlite
  sqlite:
    path: %[4]s
secrets:
  master_key_file: %[5]s
routes:
  - path: /open/
    upstream: %[6]s
    public: true
  - path: /v1/
    upstream: %[6]s
plans:
  - name: bench
    rate: {requests_per_second: 1000000, burst: 1000000}
    quota: {units: 1000000000000, period: month}
default_plan: bench
%[7]s`

// tollgateNode is a running Tollgate and the credentials made for the run.
type tollgateNode struct {
	*process
	admin         string
	apiKey        string // plain API key
	signingKey    string // API key with a signing secret
	signingSecret string
	bearer        string // OAuth access token (client credentials)
}

// startTollgate configures and starts bin in dir, in front of backend,
// with the counters section counters (see tollgateYAML), and creates an
// account, API keys and an OAuth app through the public API. name names the
// process in messages.
func startTollgate(name, bin, dir, backend, counters string) (*tollgateNode, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := exec.Command(bin, "secrets", "generate-key").Output()
	if err != nil {
		return nil, fmt.Errorf("tollgate secrets generate-key: %w", err)
	}
	keyFile := filepath.Join(dir, "master.key")
	if err := os.WriteFile(keyFile, bytes.TrimSpace(key), 0o600); err != nil {
		return nil, err
	}
	listen, admin := freeAddr(), freeAddr()
	cfg := fmt.Sprintf(tollgateYAML, listen, admin, benchAdminToken, filepath.Join(dir, "tollgate.db"), keyFile, "http://"+backend, counters)
	cfgFile := filepath.Join(dir, "tollgate.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "tollgate.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-c", cfgFile) //nolint:gosec // G204: the binary under test, named by the operator
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HTTP_PROXY=", "HTTPS_PROXY=")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &tollgateNode{process: &process{name: name, cmd: cmd, addr: listen, log: logf}, admin: admin}
	if err := waitReady("http://"+listen+"/readyz", 30*time.Second); err != nil {
		n.stop()
		return nil, fmt.Errorf("%s: %w (see %s)", name, err, logPath)
	}
	if err := n.provision(); err != nil {
		n.stop()
		return nil, fmt.Errorf("%s: provision: %w (see %s)", name, err, logPath)
	}
	return n, nil
}

// provision makes the run's credentials the way a customer would: sign up,
// (operator) activate, log in, create keys and an app, get a token.
func (n *tollgateNode) provision() error {
	base := "http://" + n.addr
	const email, password = "bench@tollgate.example", "bench-password-not-secret"
	if _, err := call("POST", base+"/api/v1/auth/email/register", "", map[string]any{
		"email": email, "password": password, "organization_name": "bench",
	}, 202); err != nil {
		return err
	}
	if _, err := call("POST", "http://"+n.admin+"/admin/v1/users/"+email+"/activate", benchAdminToken, nil, 200); err != nil {
		return err
	}
	login, err := call("POST", base+"/api/v1/auth/email/login", "", map[string]any{"email": email, "password": password}, 200)
	if err != nil {
		return err
	}
	session := str(login["access_token"])
	k, err := call("POST", base+"/api/v1/apikeys", session, map[string]any{"name": "bench"}, 201)
	if err != nil {
		return err
	}
	n.apiKey = str(k["key"])
	sk, err := call("POST", base+"/api/v1/apikeys", session, map[string]any{"name": "bench signed", "signing_secret": true}, 201)
	if err != nil {
		return err
	}
	n.signingKey, n.signingSecret = str(sk["key"]), str(sk["signing_secret"])
	app, err := call("POST", base+"/api/v1/apps", session, map[string]any{"name": "bench"}, 201)
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(str(app["client_id"]), str(app["client_secret"]))
	tok, err := exchange(req, 200)
	if err != nil {
		return err
	}
	n.bearer = str(tok["access_token"])
	if n.apiKey == "" || n.signingSecret == "" || n.bearer == "" {
		return fmt.Errorf("a credential is missing from the API's answers")
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// call sends a JSON request (as the bearer of token, if any) and decodes the
// JSON answer, which must have status want.
func call(method, u, token string, body any, want int) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return exchange(req, want)
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}

func exchange(req *http.Request, want int) (map[string]any, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, raw)
	}
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
	}
	return m, nil
}

func waitReady(u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", u, timeout)
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}
