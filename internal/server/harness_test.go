package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/store"
)

const adminToken = "test-admin-token-0123456789abcdef"

// testMasterKey is the master key of test nodes (32 bytes, base64).
const testMasterKey = "dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY="

// recorder is a backend that remembers every request it served.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path string
	Header       http.Header
	Body         string
	URI          string // the request target as received
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), string(body), r.RequestURI})
		rec.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"path":%q}`, r.URL.Path)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// node is a running server under test.
type node struct {
	t       *testing.T
	srv     *Server
	base    string // http://host:port of the public listener
	admin   string
	dash    string // http://host:port of the dashboard's listener, if any
	clock   *clock.Fake
	logs    *syncBuffer
	dataDir string
	yaml    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseYAML is a configuration like the one in the README, on free ports.
func baseYAML(dataDir, upstream string) string {
	return fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  insecure_http: true
admin:
  listen: 127.0.0.1:0
  token: %s
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: %s
routes:
  - path: /v1/
    upstream: %s
    units: 1
  - path: /v1/kyt/
    upstream: %s
    scopes: [kyt.read]
  - path: /status
    upstream: %s
    public: true
`, adminToken, filepath.Join(dataDir, "tollgate.db"), testMasterKey, upstream, upstream, upstream)
}

// dashYAML is baseYAML with the dashboard on a listener of its own.
func dashYAML(dataDir, upstream string) string {
	return baseYAML(dataDir, upstream) + "dashboard:\n  listen: 127.0.0.1:0\n"
}

// clusterURL is the server.public_url of the test clusters' nodes: the one
// URL of a cluster behind its load balancer, which every node must share.
const clusterURL = "http://cluster.tollgate.test"

// sharedYAML is a node of a cluster on the PostgreSQL schema and Redis
// prefix given, with free ports; extra (YAML sections other than server,
// admin, storage, counters and secrets) is appended.
func sharedYAML(pgURL, schema, redisURL, prefix, extra string) string {
	return fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  insecure_http: true
  public_url: %s
admin:
  listen: 127.0.0.1:0
  token: %s
storage:
  type: postgres
  postgres: {url: "%s", schema: %s}
counters:
  type: redis
  redis: {url: "%s", prefix: "%s"}
secrets:
  master_key: %s
`, clusterURL, adminToken, pgURL, schema, redisURL, prefix, testMasterKey) + extra
}

// start runs a node on yaml; extra lines are appended to it.
func start(t *testing.T, yaml string, clk *clock.Fake) *node {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if clk == nil {
		clk = clock.NewFake(time.Now())
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(context.Background(), cfg, Options{Logger: log, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, srv: srv, base: "http://" + srv.Addr(), admin: "http://" + srv.AdminAddr(), clock: clk, logs: logs, yaml: yaml,
		dataDir: filepath.Dir(cfg.Storage.SQLite.Path)}
	if a := srv.DashboardAddr(); a != "" {
		n.dash = "http://" + a
	}
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *node) stop() {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		n.t.Errorf("shutdown: %v", err)
	}
	n.srv = nil
}

// restart stops the node and starts a new one on the same configuration and
// data.
func (n *node) restart() *node {
	n.t.Helper()
	n.stop()
	return start(n.t, n.yaml, n.clock)
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return m
}

// errCode returns the error code and reason of an error body.
func (r response) errCode(t *testing.T) (code, reason string) {
	t.Helper()
	var b struct {
		Error struct {
			Code      string `json:"code"`
			Reason    string `json:"reason"`
			RequestID string `json:"request_id"`
			Message   string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	if b.Error.RequestID == "" || b.Error.RequestID != r.Header.Get("X-Request-Id") || b.Error.Message == "" {
		t.Errorf("error body %s lacks message or request_id matching X-Request-Id %q", r.Body, r.Header.Get("X-Request-Id"))
	}
	return b.Error.Code, b.Error.Reason
}

// do sends a request; body, when not nil, is sent as JSON (or as is if it is
// a string).
func do(t *testing.T, method, target string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case url.Values:
		rd = strings.NewReader(b.Encode())
		contentType = "application/x-www-form-urlencoded"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, raw}
}

func (n *node) adminDo(method, path string, body any) response {
	return do(n.t, method, n.admin+path, body, "Authorization", "Bearer "+adminToken)
}

// account registers, activates and logs in a user; it returns the access
// token.
func (n *node) account(email, org string) string {
	n.t.Helper()
	if r := do(n.t, "POST", n.base+"/api/v1/auth/email/register",
		map[string]string{"email": email, "password": "correct horse battery", "organization_name": org}); r.Status != 202 {
		n.t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	if r := n.adminDo("POST", "/admin/v1/users/"+email+"/activate", nil); r.Status != 200 {
		n.t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	return n.login(email, "correct horse battery")
}

func (n *node) login(email, pw string) string {
	n.t.Helper()
	r := do(n.t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": email, "password": pw})
	if r.Status != 200 {
		n.t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	return r.json(n.t)["access_token"].(string)
}

// createKey creates an API key with the given extra fields; it returns the
// key and its ID.
func (n *node) createKey(token string, fields map[string]any) (key, id string) {
	n.t.Helper()
	m := n.create(token, "/api/v1/apikeys", map[string]any{"name": "test key"}, fields)
	return m["key"].(string), m["id"].(string)
}

// create POSTs defaults overridden by fields to a control-plane collection
// as the user of token, and returns the created object.
func (n *node) create(token, path string, defaults, fields map[string]any) map[string]any {
	n.t.Helper()
	maps.Copy(defaults, fields)
	r := do(n.t, "POST", n.base+path, defaults, "Authorization", "Bearer "+token)
	if r.Status != 201 {
		n.t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
	}
	return r.json(n.t)
}

// userByEmail reads a user straight from the store.
func (n *node) userByEmail(email string) store.User {
	n.t.Helper()
	u, err := n.srv.Store().GetUserByEmail(context.Background(), email)
	if err != nil {
		n.t.Fatal(err)
	}
	return u
}

func TestMain(m *testing.M) {
	// The proxy must not pick up a developer's HTTP_PROXY for loopback tests.
	os.Unsetenv("HTTP_PROXY")
	os.Exit(m.Run())
}

func parseYAML(yaml string) (config.Config, error) { return config.Parse([]byte(yaml), nil) }
