package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/tollgate/tollgate/internal/apikey"
)

// chromiumPath is Debian's chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// Bounds of the browser test's waits.
const (
	browserBudget = 2 * time.Minute        // the whole browser session
	stepTimeout   = 15 * time.Second       // one navigation, click or wait
	flushWait     = 15 * time.Second       // the request to reach the metrics page
	reloadEvery   = 300 * time.Millisecond // how often the metrics page is reloaded meanwhile
)

// Viewports of the screenshots.
const (
	desktopWidth, desktopHeight = 1280, 900
	phoneWidth, phoneHeight     = 390, 844
)

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// a `tollgate serve` process, on the dashboard's own listener (its own
// origin, as in production), as a customer would: register, be activated by
// the operator (admin API), log in, create an API key and read its secret
// once, call the gateway with it, find the request on the metrics page and
// in the hourly chart, revoke the key (accepting the confirmation) and see
// the gateway refuse it. On the way it checks that no page breaks its
// Content-Security-Policy or throws, that the session cookie is out of
// reach of scripts, that the login form is reachable with the keyboard, and
// it saves a screenshot of every page (desktop, and a few at a phone's
// width) into TOLLGATE_SCREENSHOTS (default test-artifacts/dashboard/ at the
// repository root) for a person to look at.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process and a browser")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (%v): CI must install Debian's chromium (.ci/run does)", err)
		}
		t.Skipf("chromium is not installed at %s: apt-get install chromium to run the dashboard's browser test", chromiumPath)
	}
	began := time.Now()
	shots := screenshotDir(t)

	// The API behind the gateway.
	var served atomic.Int64
	var servedPath atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		servedPath.Store(r.URL.Path)
		_, _ = w.Write([]byte("ok"))
	}))
	defer backend.Close()

	// Tollgate.
	const adminToken = "dashboard-e2e-admin-token-0123456789abcdef"
	dir := t.TempDir()
	addr, adminAddr, dashAddr := freePort(t), freePort(t), freePort(t)
	cfg := filepath.Join(dir, "tollgate.yaml")
	yaml := fmt.Sprintf(`server:
  listen: %s
  insecure_http: true
admin:
  listen: %s
  token: %s
dashboard:
  listen: %s
storage:
  type: sqlite
  sqlite: {path: %s}
secrets:
  master_key: dGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODlhYmNkZWY=
routes:
  - path: /v1/
    upstream: %s
    units: 1
plans:
  - name: starter
    quota: {units: 1000, period: month}
default_plan: starter
usage:
  flush_interval: 200ms
  quota_flush_interval: 200ms
log:
  access_log: false
`, addr, adminAddr, adminToken, dashAddr, filepath.Join(dir, "tollgate.db"), backend.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	_, serverLog := serveProcessLog(t, cfg, base)
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(serverLog); err == nil {
				t.Logf("server log:\n%s", tail(string(out), 4000))
			}
		}
	})
	client := &http.Client{Timeout: 5 * time.Second}

	// The browser, on the dashboard's origin.
	b := startBrowser(t, "http://"+dashAddr, shots)

	const (
		email    = "ada@example.com"
		org      = "Analytical Engines"
		password = "correct horse battery staple"
	)

	// 1. Register: the page says the account awaits activation.
	b.open("/dashboard/register")
	b.waitVisible("the registration form", `#email`, `#organization`, `#password`, `#password_confirm`, `form:has(#password_confirm) [type="submit"]`)
	b.shot("01-register")
	b.do("fill in the registration form",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#organization`), org),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.SendKeys(chromedp.CSS(`#password_confirm`), password),
	)
	if status := b.clickToPage("register", `form:has(#password_confirm) [type="submit"]`); status/100 != 2 {
		b.fatalf("registering answered %d", status)
	}
	b.waitVisible("the pending-activation notice", `.notice`)
	notice := value(b, "the notice", chromedp.Text(chromedp.CSS(`.notice`)))
	if !strings.Contains(strings.ToLower(notice), "activate") {
		b.fatalf("the registration notice %q does not tell that the account awaits activation", notice)
	}
	t.Logf("register: %q", notice)
	b.shot("02-register-pending")

	// 2. The operator activates the account through the admin API.
	activate(t, client, "http://"+adminAddr, adminToken, email)

	// 3. Log in, with the keyboard reaching the e-mail field first.
	b.open("/dashboard/login")
	b.waitVisible("the login form", `#email`, `#password`, `form:has(#password) [type="submit"]`)
	b.checkTabOrder()
	b.shot("03-login")
	b.do("fill in the login form",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
	)
	if status := b.clickToPage("log in", `form:has(#password) [type="submit"]`); status != http.StatusOK {
		b.fatalf("logging in ended on status %d", status)
	}
	if p := b.path(); p != "/dashboard/overview" {
		b.fatalf("logging in led to %s, want /dashboard/overview", p)
	}
	b.checkCookies()
	b.shot("04-overview")

	// 4. Create an API key: its secret is shown once.
	b.open("/dashboard/keys")
	b.waitVisible("the create-key form", `#create-key`, `#key-name`, `#create-key [type="submit"]`)
	b.do("name the key", chromedp.SendKeys(chromedp.CSS(`#key-name`), "browser e2e"))
	if status := b.clickToPage("create a key", `#create-key [type="submit"]`); status/100 != 2 {
		b.fatalf("creating a key answered %d", status)
	}
	b.waitVisible("the new key's secret", `code#new-key`, `[data-copy="new-key"]`)
	key := strings.TrimSpace(value(b, "the secret", chromedp.TextContent(chromedp.CSS(`code#new-key`))))
	if !apikey.Valid(key) {
		b.fatalf("#new-key holds %q, not an API key", key)
	}
	b.checkCopyButton(key)
	b.shot("05-keys-new-secret")
	keyID := b.keyRow()

	b.open("/dashboard/keys")
	b.waitVisible("the keys table", `#keys-table tr[data-key-id="`+keyID+`"]`)
	if shown := value(b, "the page's HTML", chromedp.Evaluate[bool](
		`document.getElementById("new-key") !== null || document.documentElement.outerHTML.includes(`+jsString(key)+`)`)); shown {
		b.fatalf("/dashboard/keys shows the secret again after a reload")
	}
	b.shot("06-keys")

	// 5. The gateway admits the key.
	status, reqID, body := callGateway(t, client, base, key)
	if status != http.StatusOK || served.Load() != 1 || servedPath.Load() != "/v1/e2e" {
		t.Fatalf("gateway with the new key: %d %s; backend served %d (path %v)", status, body, served.Load(), servedPath.Load())
	}
	if reqID == "" {
		t.Fatal("the gateway's answer has no X-Request-Id")
	}

	// 6. The metrics page lists the request and draws it in the hourly chart.
	b.open("/dashboard/metrics")
	b.waitVisible("the granularity switch", `a[data-granularity="hour"]`, `a[data-granularity="day"]`, `a[data-granularity="month"]`)
	if status := b.clickToPage("switch to hours", `a[data-granularity="hour"]`); status != http.StatusOK {
		b.fatalf("the hourly metrics answered %d", status)
	}
	b.waitVisible("the request filters", `#request-filters`)
	requests := b.waitForRequest(reqID)
	t.Logf("metrics: request %s listed; the hourly series counts %v requests", reqID, requests)
	b.shot("07-metrics")

	// 7. Revoke the key, accepting the confirmation; the gateway refuses it.
	b.open("/dashboard/keys")
	revoke := `#keys-table tr[data-key-id="` + keyID + `"] form.revoke [type="submit"]`
	b.waitVisible("the revoke button", revoke)
	if q := value(b, "the confirmation", chromedp.AttributeValue(chromedp.CSS(`#keys-table tr[data-key-id="`+keyID+`"] form.revoke`), "data-confirm")); !q.Exists || q.Value == "" {
		b.fatalf("the revoke form has no data-confirm question")
	}
	dialogsBefore := len(b.dialogMessages())
	if status := b.clickToPage("revoke the key", revoke); status/100 != 2 {
		b.fatalf("revoking answered %d", status)
	}
	if d := b.dialogMessages(); len(d) != dialogsBefore+1 {
		b.fatalf("revoking asked %d confirmations, want 1: %q", len(d)-dialogsBefore, d[dialogsBefore:])
	} else {
		t.Logf("revoke: confirmed %q", d[len(d)-1])
	}
	if still := value(b, "the key's row", chromedp.Evaluate[int](
		`document.querySelectorAll('#keys-table tr[data-key-id="`+keyID+`"] form.revoke').length`)); still != 0 {
		b.fatalf("the revoked key's row still has a revoke form")
	}
	b.shot("08-keys-revoked")
	status, _, body = callGateway(t, client, base, key)
	var refusal struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &refusal)
	if status != http.StatusUnauthorized || refusal.Error.Code != "INVALID_CREDENTIALS" {
		t.Fatalf("gateway with the revoked key: %d %s, want 401 INVALID_CREDENTIALS", status, body)
	}

	// 8. The other pages, each with a row in its table: an app (its secret
	// shown once), and a webhook endpoint for an event this test never
	// causes, so that nothing is delivered.
	b.open("/dashboard/apps")
	b.waitVisible("the create-app form", `#create-app`, `#app-name`, `#create-app [type="submit"]`)
	b.do("name the app", chromedp.SendKeys(chromedp.CSS(`#app-name`), "browser e2e app"))
	if status := b.clickToPage("create an app", `#create-app [type="submit"]`); status/100 != 2 {
		b.fatalf("creating an app answered %d", status)
	}
	b.waitVisible("the new app", `code#new-client-secret`, `#apps-table tr[data-app-id]`)
	b.shot("09-apps")
	b.open("/dashboard/webhooks")
	b.waitVisible("the add-endpoint form", `#create-webhook`, `#create-url`, `#create-webhook [type="submit"]`)
	b.do("describe the endpoint",
		chromedp.SendKeys(chromedp.CSS(`#create-url`), "https://hooks.example.com/tollgate"),
		chromedp.Click(chromedp.CSS(`#create-webhook input[name="event_types"][value="subscription.created"]`), chromedp.NodeVisible),
		chromedp.SendKeys(chromedp.CSS(`#create-description`), "browser e2e"),
	)
	if status := b.clickToPage("add an endpoint", `#create-webhook [type="submit"]`); status/100 != 2 {
		b.fatalf("adding an endpoint answered %d", status)
	}
	b.waitVisible("the new endpoint", `code#new-webhook-secret`, `#webhooks-table tbody tr`)
	b.shot("10-webhooks")
	b.open("/dashboard/security")
	b.waitVisible("the security page", `main h1`)
	b.shot("11-security")

	// 9. At a phone's width.
	b.do("emulate a phone", chromedp.EmulateViewport(phoneWidth, phoneHeight,
		chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateTouch, chromedp.EmulateScale(2)))
	for _, p := range []string{"overview", "keys", "metrics"} {
		b.open("/dashboard/" + p)
		if p == "metrics" {
			b.waitVisible("the drawn chart", `canvas#usage-chart[data-drawn="true"]`)
		}
		b.checkOverflow()
		b.shot("phone-" + p)
	}

	b.checkConsole()
	t.Logf("the browser test took %v", time.Since(began).Round(100*time.Millisecond))
}

// dashBrowser is a headless Chromium tab on the dashboard of one test.
type dashBrowser struct {
	t     *testing.T
	ctx   context.Context // the tab
	base  string          // http://host:port of the dashboard
	shots string          // the screenshot directory

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	dialogs []string
	posts   []string // the forms sent: method, URL and Origin
}

// startBrowser starts Chromium with a temporary profile and opens a tab on
// the dashboard at base; the test's cleanup closes both. flags are added
// to the browser's command line.
func startBrowser(t *testing.T, base, shots string, flags ...chromedp.ExecAllocatorOption) *dashBrowser {
	t.Helper()
	parent, cancelAll := context.WithTimeout(context.Background(), browserBudget)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(desktopWidth, desktopHeight),
		// No user-data-dir: the allocator makes a temporary profile and
		// removes it when the browser ends.
	}, flags...)...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &dashBrowser{t: t, ctx: ctx, base: base, shots: shots}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills Chromium and waits for it
		cancelAll()
		wg.Wait()
	})
	// The first action starts the browser, bound to the context it gets:
	// the tab's own, which the browser budget bounds.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopWidth, desktopHeight)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	// Subscribe to the console and the dialogs before the first page.
	messages := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	wg.Go(func() {
		for ev, err := range requests {
			if err != nil {
				return
			}
			if r := ev.Request; r != nil && r.Method == http.MethodPost {
				b.mu.Lock()
				b.posts = append(b.posts, fmt.Sprintf("POST %s (Origin: %v)", r.URL, r.Headers["Origin"]))
				b.mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	})
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			b.mu.Unlock()
			// Accept it: the page waits for the answer.
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	return b
}

// fatalf ends the test with a message that tells where the browser was.
func (b *dashBrowser) fatalf(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		msg += "\n  at " + loc
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		msg += "\n  the page says:\n" + indent(tail(text, 1500))
	}
	b.mu.Lock()
	for _, m := range b.console {
		if m.IsException() || m.Type == chromedp.ConsoleError || cspViolation.MatchString(m.Text) {
			msg += fmt.Sprintf("\n  console: %s (%s:%d)", m, m.URL, m.Line+1)
		}
	}
	if n := len(b.posts); n > 0 {
		msg += "\n  the last form sent: " + b.posts[n-1]
	}
	b.mu.Unlock()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(b.shots, "failure.png")
		if os.WriteFile(p, png, 0o644) == nil {
			msg += "\n  screenshot: " + p
		}
	}
	b.t.Fatal(msg)
}

// do runs actions within one step's time.
func (b *dashBrowser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

// value runs one action that returns a value, within one step's time.
func value[T any](b *dashBrowser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fatalf("%s: %v", what, err)
	}
	return v
}

// open loads a dashboard page, which must answer 200.
func (b *dashBrowser) open(path string) {
	b.t.Helper()
	resp := value(b, "open "+path, chromedp.NavigateResponse(b.base+path))
	if resp == nil || resp.Status != http.StatusOK {
		status := int64(0)
		if resp != nil {
			status = resp.Status
		}
		b.fatalf("GET %s answered %d", path, status)
	}
}

// clickToPage clicks what sel finds (a submit button, a link) and waits
// for the page it leads to; it returns that page's status.
func (b *dashBrowser) clickToPage(what, sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fatalf("%s (click %s): %v", what, sel, err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// waitVisible waits for elements of the page contract; a missing one is
// named in the failure.
func (b *dashBrowser) waitVisible(what string, sels ...string) {
	b.t.Helper()
	for _, sel := range sels {
		ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
		err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
		cancel()
		if err != nil {
			b.fatalf("%s: the page has no visible %s (%v)", what, sel, err)
		}
	}
}

// path is the path of the page the tab shows.
func (b *dashBrowser) path() string {
	b.t.Helper()
	loc := value(b, "the location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		b.fatalf("location %q: %v", loc, err)
	}
	return u.Path
}

// shot saves a full-page PNG of the page.
func (b *dashBrowser) shot(name string) {
	b.t.Helper()
	png := value(b, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

// dialogMessages are the JavaScript dialogs accepted so far.
func (b *dashBrowser) dialogMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// checkTabOrder presses Tab from the top of the page and checks that the
// keyboard reaches the e-mail field before the submit button.
func (b *dashBrowser) checkTabOrder() {
	b.t.Helper()
	const focused = `(() => {
	const e = document.activeElement;
	if (!e || e === document.body) return "body";
	let s = e.tagName.toLowerCase();
	if (e.id) s += "#" + e.id;
	if (e.getAttribute("type")) s += "[type=" + e.getAttribute("type") + "]";
	if (e.tagName === "A") s += "(" + e.textContent.trim() + ")";
	return s;
})()`
	b.do("start from the top", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`))
	var order []string
	for range 12 {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		f := value(b, "the focused element", chromedp.Evaluate[string](focused))
		order = append(order, f)
		if f == "input#email[type=email]" || strings.HasPrefix(f, "input#email") {
			b.t.Logf("keyboard: Tab reaches the e-mail field after %s", strings.Join(order, " → "))
			return
		}
		if strings.HasPrefix(f, "button") && strings.Contains(f, "[type=submit]") {
			b.fatalf("Tab reaches the submit button before the e-mail field: %s", strings.Join(order, " → "))
		}
	}
	b.fatalf("12 presses of Tab never reach the e-mail field: %s", strings.Join(order, " → "))
}

// checkCookies checks that the session's cookies exist but that no script
// can read them.
func (b *dashBrowser) checkCookies() {
	b.t.Helper()
	if jar := value(b, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(jar, "tg_") {
		b.fatalf("document.cookie shows the dashboard's cookies: %q", jar)
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/dashboard/overview"}})
	if err != nil {
		b.fatalf("reading the cookies: %v", err)
	}
	session := false
	for _, c := range res.Cookies {
		if !c.HTTPOnly {
			b.fatalf("cookie %s is not HttpOnly", c.Name)
		}
		session = session || c.Name == "tg_session"
	}
	if !session {
		b.fatalf("no session cookie after logging in (cookies: %d)", len(res.Cookies))
	}
}

// checkCopyButton clicks the secret's copy button: it copies the secret
// (headless Chromium may refuse the clipboard, then the page selects the
// secret for the user to copy).
func (b *dashBrowser) checkCopyButton(key string) {
	b.t.Helper()
	b.do("click the copy button", chromedp.Click(chromedp.CSS(`[data-copy="new-key"]`), chromedp.NodeVisible))
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Poll[string](`(() => {
	const b = document.querySelector('[data-copy="new-key"]');
	if (b && b.textContent.trim() === "Copied") return "copied";
	const s = window.getSelection().toString().trim();
	return s === `+jsString(key)+` ? "selected" : null;
})()`, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		b.fatalf("the copy button neither copied nor selected the secret: %v", err)
	}
	b.t.Logf("copy button: %s the secret", got)
}

// keyRow returns the id of the one key in #keys-table.
func (b *dashBrowser) keyRow() string {
	b.t.Helper()
	b.waitVisible("the keys table", `#keys-table tr[data-key-id]`)
	ids := value(b, "the keys' rows", chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#keys-table tr[data-key-id]'), r => r.getAttribute("data-key-id"))`))
	if len(ids) != 1 || ids[0] == "" {
		b.fatalf("#keys-table lists %q, want the one new key", ids)
	}
	return ids[0]
}

// usageSeries is the JSON of script#usage-series, as app.js gives it to
// Chart.js.
type usageSeries struct {
	Labels   []string `json:"labels"`
	Datasets []struct {
		Label string    `json:"label"`
		Data  []float64 `json:"data"`
	} `json:"datasets"`
}

// requests sums the series' requests: the dataset labelled "requests".
func (s usageSeries) requests() (float64, bool) {
	for _, d := range s.Datasets {
		if strings.Contains(strings.ToLower(d.Label), "request") {
			var n float64
			for _, v := range d.Data {
				n += v
			}
			return n, true
		}
	}
	return 0, false
}

// waitForRequest reloads the metrics page until the request is in its
// table and its chart counts it, and returns the chart's count.
func (b *dashBrowser) waitForRequest(reqID string) float64 {
	b.t.Helper()
	row := `#requests-table tr[data-request-id="` + reqID + `"]`
	deadline := time.Now().Add(flushWait)
	for {
		b.waitVisible("the usage chart", `canvas#usage-chart[data-drawn="true"]`)
		listed := value(b, "the requests table", chromedp.Evaluate[bool](`document.querySelector(`+jsString(row)+`) !== null`))
		raw := value(b, "the usage series", chromedp.Evaluate[string](
			`(document.querySelector("script#usage-series") || {textContent: ""}).textContent`))
		var s usageSeries
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			b.fatalf("script#usage-series is not the chart's JSON: %v: %s", err, tail(raw, 300))
		}
		n, ok := s.requests()
		if !ok {
			b.fatalf("script#usage-series has no dataset of requests: %s", tail(raw, 300))
		}
		if listed && n >= 1 {
			return n
		}
		if time.Now().After(deadline) {
			b.fatalf("after %v the metrics page lists request %s: %v; its hourly series counts %v requests", flushWait, reqID, listed, n)
		}
		time.Sleep(reloadEvery)
		b.do("reload the metrics", chromedp.Reload())
	}
}

// checkOverflow logs a page wider than the viewport (for the screenshot
// review; a table may scroll inside its own box).
func (b *dashBrowser) checkOverflow() {
	b.t.Helper()
	w := value(b, "the page's width", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if len(w) == 2 && w[0] > w[1] {
		b.t.Logf("%s is %dpx wide in a %dpx viewport: it scrolls sideways", b.path(), w[0], w[1])
	}
}

var cspViolation = regexp.MustCompile(`(?i)content[ -]security[ -]policy`)

// checkConsole fails on a CSP violation or an uncaught exception in any
// page, and logs the other errors and warnings.
func (b *dashBrowser) checkConsole() {
	b.t.Helper()
	time.Sleep(100 * time.Millisecond) // the last page's messages are in flight
	b.mu.Lock()
	msgs := append([]chromedp.ConsoleMessage(nil), b.console...)
	b.mu.Unlock()
	var bad []string
	for _, m := range msgs {
		line := fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1)
		switch {
		case m.IsException() || cspViolation.MatchString(m.Text):
			bad = append(bad, line)
		case m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning:
			b.t.Logf("console: %s", line)
		}
	}
	if len(bad) > 0 {
		b.t.Fatalf("the pages broke their Content-Security-Policy or threw:\n  %s", strings.Join(bad, "\n  "))
	}
}

// activate activates a registered user through the admin API, as an
// operator does.
func activate(t *testing.T, client *http.Client, admin, token, email string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, admin+"/admin/v1/users/"+url.PathEscape(email)+"/activate", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var u struct{ Email, Status string }
	if err := json.Unmarshal(body, &u); err != nil || resp.StatusCode != http.StatusOK || u.Status != "active" {
		t.Fatalf("activating %s: %d %s", email, resp.StatusCode, body)
	}
}

// callGateway calls the route /v1/ with an API key and returns the status,
// the request ID and the body.
func callGateway(t *testing.T, client *http.Client, base, key string) (status int, requestID, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/e2e", nil)
	req.Header.Set("X-API-KEY", key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), string(b)
}

// screenshotDir is TOLLGATE_SCREENSHOTS, or test-artifacts/dashboard/ at
// the repository root; it creates it.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOLLGATE_SCREENSHOTS")
	if dir == "" {
		root, err := filepath.Abs(".")
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			up := filepath.Dir(root)
			if up == root {
				t.Fatal("no go.mod above the test's directory")
			}
			root = up
		}
		dir = filepath.Join(root, "test-artifacts", "dashboard")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, "failure.png")) // from an earlier run
	return dir
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}
