package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// keyCount returns how many API keys the organization of email has, read
// through the control-plane API.
func keyCount(t *testing.T, n *node, email string) int {
	t.Helper()
	r := do(t, "GET", n.base+"/api/v1/apikeys", nil, "Authorization", "Bearer "+n.login(email, "correct horse battery"))
	if r.Status != 200 {
		t.Fatalf("list keys: %d %s", r.Status, r.Body)
	}
	var list struct {
		Data []any `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("list keys: %v: %s", err, r.Body)
	}
	return len(list.Data)
}

// hostDo sends a request for host (the Host header) to the listener at
// base, without following redirects.
func hostDo(t *testing.T, base, method, host, path string, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
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

// On a listener of its own, the dashboard's origin serves nothing but the
// dashboard, and the API's origin serves no dashboard page: it sends GETs
// to the dashboard's public URL.
func TestDashboardOwnListener(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL)+"dashboard:\n  listen: 127.0.0.1:0\n  public_url: http://dash.example.test\n", nil)
	if !strings.Contains(n.logs.String(), `"dashboard":"http://`+n.srv.DashboardAddr()+`/dashboard/"`) {
		t.Errorf("the start-up log does not give the dashboard's address:\n%s", n.logs)
	}
	if strings.Contains(n.logs.String(), "has the API's host name") {
		t.Errorf("a warning of a shared host name, with a host name of its own:\n%s", n.logs)
	}
	// Without dashboard.public_url, the listener shares the API's host
	// name: cookies are per host, so a warning says so.
	if shared := start(t, dashYAML(t.TempDir(), be.URL), nil); !strings.Contains(shared.logs.String(), "has the API's host name") {
		t.Errorf("no warning of a shared host name:\n%s", shared.logs)
	}
	api := n.srv.Addr()
	for _, tt := range []struct {
		method, path string
		status       int
		location     string
	}{
		{"GET", "/dashboard/login?next=%2Fdashboard%2Fkeys", http.StatusFound, "http://dash.example.test/dashboard/login?next=%2Fdashboard%2Fkeys"},
		{"GET", "/dashboard/", http.StatusFound, "http://dash.example.test/dashboard/"},
		{"POST", "/dashboard/login", http.StatusNotFound, ""},
		{"POST", "/dashboard/keys", http.StatusNotFound, ""},
	} {
		r := hostDo(t, n.base, tt.method, api, tt.path, "a=b")
		if r.Status != tt.status || r.Header.Get("Location") != tt.location || strings.Contains(string(r.Body), "<form") {
			t.Errorf("API origin %s %s: %d %q %s", tt.method, tt.path, r.Status, r.Header.Get("Location"), r.Body)
		}
	}
	// The dashboard's origin: the dashboard, health, and nothing proxied
	// or of the API.
	dash := n.dash
	for path, want := range map[string]int{
		"/dashboard/login": 200, "/healthz": 200, "/v1/x": 404, "/status": 404, "/api/v1/apikeys": 404,
		"/.well-known/jwks.json": 404, "/oauth/token": 404, "/x402/pricing": 404, "/dashboard/../v1/x": 404,
	} {
		r := do(t, "GET", dash+path, nil)
		if r.Status != want {
			t.Errorf("dashboard origin GET %s: %d, want %d", path, r.Status, want)
		}
	}
	r := hostDo(t, dash, "GET", n.srv.DashboardAddr(), "/", "")
	if r.Status != http.StatusFound || r.Header.Get("Location") != "/dashboard/" {
		t.Errorf("GET / on the dashboard's origin: %d %q", r.Status, r.Header.Get("Location"))
	}
	if got := be.all(); len(got) != 0 {
		t.Errorf("the dashboard's origin reached the backend: %+v", got)
	}
	// The whole flow works there, the Origin of the public URL included.
	c := dashLogin(t, n, "listener@example.com", "Listener Co")
	p := c.post("/dashboard/keys", url.Values{"name": {"from the listener"}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create a key: %d %s", p.Status, p.Body)
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/dashboard/keys", strings.NewReader(url.Values{"name": {"x"}, "csrf": {c.csrf()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://dash.example.test")
	if p := c.do(req); p.Status != http.StatusCreated {
		t.Errorf("a form from dashboard.public_url's origin: %d", p.Status)
	}
}

// On a host name of its own, the public listener serves that host nothing
// but the dashboard (whatever the spelling and port), and every other host
// no dashboard.
func TestDashboardOwnHost(t *testing.T) {
	be := newRecorder(t, nil)
	yaml := strings.Replace(baseYAML(t.TempDir(), be.URL), "  insecure_http: true\n",
		"  insecure_http: true\n  public_url: http://api.example.test:8080\n", 1) + "dashboard:\n  host: dash.example.test\n"
	n := start(t, yaml, nil)
	for _, host := range []string{"dash.example.test", "DASH.Example.Test:8080", "dash.example.test.:1", "dash.example.test:8080"} {
		for path, want := range map[string]int{
			"/dashboard/login": 200, "/healthz": 200, "/v1/x": 404, "/status": 404, "/api/v1/apikeys": 404,
			"/.well-known/jwks.json": 404, "/oauth/.well-known/x": 404, "/anything": 404,
		} {
			if r := hostDo(t, n.base, "GET", host, path, ""); r.Status != want {
				t.Errorf("Host %s GET %s: %d, want %d", host, path, r.Status, want)
			}
		}
		if r := hostDo(t, n.base, "POST", host, "/api/v1/auth/email/login", `{"email":"a@b.c","password":"x"}`); r.Status != 404 {
			t.Errorf("Host %s: the API's login answered %d", host, r.Status)
		}
		if r := hostDo(t, n.base, "GET", host, "/", ""); r.Status != http.StatusFound || r.Header.Get("Location") != "/dashboard/" {
			t.Errorf("Host %s GET /: %d %q", host, r.Status, r.Header.Get("Location"))
		}
	}
	if got := be.all(); len(got) != 0 {
		t.Fatalf("the dashboard's host reached the backend: %+v", got)
	}
	// Every other host: the API and the routes, no dashboard.
	for _, host := range []string{n.srv.Addr(), "api.example.test:8080", "dash.example.test.evil", "xdash.example.test"} {
		r := hostDo(t, n.base, "GET", host, "/dashboard/login", "")
		if r.Status != http.StatusFound || r.Header.Get("Location") != "http://dash.example.test:8080/dashboard/login" {
			t.Errorf("Host %s GET /dashboard/login: %d %q", host, r.Status, r.Header.Get("Location"))
		}
		if r := hostDo(t, n.base, "GET", host, "/status", ""); r.Status != 200 {
			t.Errorf("Host %s GET /status (public route): %d", host, r.Status)
		}
	}
	// The whole flow, through the dashboard's host name.
	c := dashLoginWith(t, newDashClientAt(t, n, "http://dash.example.test:8080", n.srv.Addr()), "host@example.com", "Host Co")
	if p := c.post("/dashboard/keys", url.Values{"name": {"from the host"}}); p.Status != http.StatusCreated {
		t.Fatalf("create a key: %d %s", p.Status, p.Body)
	}
	if keyCount(t, n, "host@example.com") != 1 {
		t.Error("the key is not there")
	}
}

// Without dashboard settings the dashboard is off, and the log says how
// to turn it on; with allow_api_origin it is on the API's origin, with a
// warning, and its cookies stay under /dashboard/.
func TestDashboardOffAndOnTheAPIOrigin(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	r := do(t, "GET", n.base+"/dashboard/login", nil)
	if code, _ := r.errCode(t); r.Status != 404 || code != "NOT_FOUND" {
		t.Errorf("dashboard off: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(n.logs.String(), "dashboard off: serve it on an origin of its own with dashboard.listen") {
		t.Errorf("no word of how to turn the dashboard on:\n%s", n.logs)
	}

	n = start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL)+"dashboard:\n  allow_api_origin: true\n", nil)
	if !strings.Contains(n.logs.String(), `"level":"WARN","msg":"INSECURE: the dashboard shares the API's origin`) {
		t.Errorf("no warning:\n%s", n.logs)
	}
	n.dash = n.base
	c := newDashClient(t, n)
	c.get("/dashboard/register")
	p := c.post("/dashboard/register", url.Values{
		"email": {"shared@example.com"}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"},
	})
	if p.Status != http.StatusAccepted {
		t.Fatalf("register: %d %s", p.Status, p.Body)
	}
	n.adminDo("POST", "/admin/v1/users/shared@example.com/activate", nil)
	c.get("/dashboard/login")
	p = c.post("/dashboard/login", url.Values{"email": {"shared@example.com"}, "password": {"correct horse battery"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", p.Status, p.Body)
	}
	for _, ck := range p.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(ck, "tg_") || !strings.Contains(ck, "; Path=/dashboard/;") {
			t.Errorf("cookie on the API's origin %q: want tg_…, Path=/dashboard/", ck)
		}
	}
}

// Over https, on an origin of its own, every cookie has the __Host- prefix
// (Secure, Path=/, no Domain); the dashboard's listener has the public
// listener's TLS settings and HSTS.
func TestDashboardHTTPSCookies(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	yaml := strings.Replace(dashYAML(t.TempDir(), newRecorder(t, nil).URL), "  insecure_http: true",
		fmt.Sprintf("  tls: {cert_file: %s, key_file: %s}", certFile, keyFile), 1)
	n := start(t, yaml, nil)
	n.dash = "https://" + n.srv.DashboardAddr()
	c := newDashClient(t, n)
	c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	p := c.get("/dashboard/register")
	if hsts := p.Header.Get("Strict-Transport-Security"); hsts == "" {
		t.Error("no HSTS on the dashboard's listener")
	}
	if ck := p.Header.Get("Set-Cookie"); !strings.HasPrefix(ck, "__Host-tg_pre=") || !strings.Contains(ck, "; Path=/;") ||
		!strings.Contains(ck, "; Secure") || strings.Contains(ck, "Domain") {
		t.Errorf("pre-session cookie %q", ck)
	}
	dashLoginWith(t, c, "tls@example.com", "TLS Co")
	for _, name := range []string{"__Host-tg_session", "__Host-tg_refresh"} {
		if c.cookie(name) == "" {
			t.Errorf("no cookie %s", name)
		}
	}
	if c.cookie("tg_session") != "" {
		t.Error("a cookie without the __Host- prefix")
	}
	if p := c.post("/dashboard/keys", url.Values{"name": {"over https"}}); p.Status != http.StatusCreated {
		t.Fatalf("create a key over https: %d %s", p.Status, p.Body)
	}
}

// The CSRF token is the HMAC of the session: another session's token (of
// the same user, even), a matching cookie and field of the attacker's
// choosing, a pre-session token, an empty value are all refused; the token
// outlives the access token (same session), not the session; it survives a
// restart, being derived from the master key every node shares.
func TestDashboardCSRFBoundToSession(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	const email = "csrf@example.com"
	a := dashLogin(t, n, email, "CSRF Co")
	b := dashLogIn(t, newDashClient(t, n), email) // a second session of the same user
	if a.csrf() == "" || a.csrf() == b.csrf() {
		t.Fatalf("two sessions' tokens: %q and %q", a.csrf(), b.csrf())
	}
	other := dashLogin(t, n, "csrf-other@example.com", "Other CSRF Co")
	pre := newDashClient(t, n)
	pre.get("/dashboard/login")

	refused := func(who string, c *dashClient, form url.Values) {
		t.Helper()
		form.Set("name", "forged")
		if p := c.post("/dashboard/keys", form); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "did not come from the dashboard") {
			t.Errorf("%s: %d %s", who, p.Status, p.Body)
		}
	}
	refused("A's token in B's session", b, url.Values{"csrf": {a.csrf()}})
	refused("another user's token", b, url.Values{"csrf": {other.csrf()}})
	refused("a pre-session token", b, url.Values{"csrf": {pre.csrf()}})
	refused("an empty token", b, url.Values{"csrf": {""}})
	refused("no token", b, url.Values{"csrf": nil})
	refused("a token of another length", b, url.Values{"csrf": {b.csrf() + "A"}})
	refused("a token in standard base64", b, url.Values{"csrf": {strings.NewReplacer("-", "+", "_", "/").Replace(b.csrf()) + "="}})
	// The double-submit cookie of old, and any cookie the attacker could
	// plant, is no token.
	u, _ := url.Parse(b.base + "/")
	for _, name := range []string{"tg_csrf", "tg_pre", "csrf"} {
		b.http.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: "planted-value-planted-value-planted-value00", Path: "/"}})
	}
	refused("a planted cookie and field pair", b, url.Values{"csrf": {"planted-value-planted-value-planted-value00"}})
	if got := keyCount(t, n, email); got != 0 {
		t.Fatalf("forged forms created %d keys", got)
	}

	// Pre-session: the login form's token is bound to its nonce.
	login := url.Values{"email": {email}, "password": {"correct horse battery"}}
	for who, form := range map[string]url.Values{
		"another browser's login token": {"csrf": {pre.csrf()}},
		"a session token":               {"csrf": {a.csrf()}},
		"a planted nonce as token":      {"csrf": {"planted-value-planted-value-planted-value00"}},
	} {
		c := newDashClient(t, n)
		c.get("/dashboard/login")
		if who == "a planted nonce as token" {
			c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "tg_pre", Value: "planted-value-planted-value-planted-value00", Path: "/"}})
		}
		for k, v := range login {
			form[k] = v
		}
		if p := c.post("/dashboard/login", form); p.Status != http.StatusForbidden {
			t.Errorf("login with %s: %d", who, p.Status)
		}
	}

	// Each session's own token works, and outlives the access token.
	if p := a.post("/dashboard/keys", url.Values{"name": {"by A"}}); p.Status != http.StatusCreated {
		t.Fatalf("A's own token: %d %s", p.Status, p.Body)
	}
	n.clock.Advance(20 * time.Minute) // past the 15-minute access token
	if p := b.post("/dashboard/keys", url.Values{"name": {"by B after a refresh"}}); p.Status != http.StatusCreated {
		t.Fatalf("B's token after its access token was renewed: %d %s", p.Status, p.Body)
	}
	// A node started again (another node of a cluster alike) derives the
	// same key from the master key.
	n = n.restart()
	n.dash = "http://" + n.srv.DashboardAddr()
	a.n, a.base = n, n.dash // the jar's cookies are the host's, whatever the port
	if p := a.post("/dashboard/keys", url.Values{"name": {"by A after a restart"}}); p.Status != http.StatusCreated {
		t.Fatalf("A's token after a restart: %d %s", p.Status, p.Body)
	}
	// A new session, a new token: the old one ends with its session.
	old := a.csrf()
	a.post("/dashboard/logout", nil)
	dashLogIn(t, a, email)
	if a.csrf() == old {
		t.Fatal("a new session has the old token")
	}
	refused("the token of a session logged out", a, url.Values{"csrf": {old}})
	if got := keyCount(t, n, email); got != 3 {
		t.Errorf("%d keys, want the 3 created with the right tokens", got)
	}
}

// Every dashboard form is bounded by server.max_api_body_bytes (413, before
// it is parsed, whether its length is declared or not) and must be
// application/x-www-form-urlencoded (415).
func TestDashboardFormLimits(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	const email = "limits@example.com"
	c := dashLogin(t, n, email, "Limits Co")
	big := url.Values{"csrf": {c.csrf()}, "name": {strings.Repeat("a", 64<<10)}}.Encode()
	send := func(path, contentType string, body io.Reader) page {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, c.base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Origin", c.base)
		return c.do(req)
	}
	const form = "application/x-www-form-urlencoded"
	for _, path := range []string{"/dashboard/keys", "/dashboard/login", "/dashboard/register", "/dashboard/logout", "/dashboard/webhooks", "/dashboard/nowhere"} {
		if p := send(path, form, strings.NewReader(big)); p.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s, %d bytes declared: %d", path, len(big), p.Status)
		}
		// Chunked: no declared length; the reading stops at the limit.
		if p := send(path, form, io.MultiReader(strings.NewReader(big))); p.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s, %d bytes chunked: %d", path, len(big), p.Status)
		}
	}
	small := url.Values{"csrf": {c.csrf()}, "name": {"typed"}}.Encode()
	for _, ct := range []string{"multipart/form-data; boundary=x", "text/plain", "application/json", ""} {
		if p := send("/dashboard/keys", ct, strings.NewReader(small)); p.Status != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d", ct, p.Status)
		}
	}
	if got := keyCount(t, n, email); got != 0 {
		t.Fatalf("refused forms created %d keys", got)
	}
	// Just under the limit, and with a charset parameter: accepted.
	fits := url.Values{"csrf": {c.csrf()}, "name": {"fits"}, "pad": {strings.Repeat("a", 60<<10)}}.Encode()
	if p := send("/dashboard/keys", form+"; charset=utf-8", strings.NewReader(fits)); p.Status != http.StatusCreated {
		t.Errorf("a form under the limit: %d %s", p.Status, p.Body)
	}
}
