package server

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// The session pages: register (pending), log in, the overview, log out; the
// security headers; the cookies of a plain-http origin of its own; CSRF.
func TestDashboardSession(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := newDashClient(t, n)
	if p := c.get("/dashboard/overview"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/dashboard/login?next=") {
		t.Fatalf("overview without a session: %d %s", p.Status, p.Location)
	}
	p := c.get("/dashboard/register")
	for h, want := range map[string]string{
		"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Cross-Origin-Resource-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin",
	} {
		if got := p.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	p = c.post("/dashboard/register", url.Values{
		"email": {"dash@example.com"}, "organization": {"Dash <Co>"}, "password": {"correct horse battery"}, "password_confirm": {"correct horse battery"},
	})
	if p.Status != http.StatusAccepted || !strings.Contains(p.Body, "An operator must activate the account") {
		t.Fatalf("register: %d %s", p.Status, p.Body)
	}
	p = c.post("/dashboard/login", url.Values{"email": {"dash@example.com"}, "password": {"correct horse battery"}})
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "pending activation") {
		t.Fatalf("login while pending: %d %s", p.Status, p.Body)
	}
	if r := n.adminDo("POST", "/admin/v1/users/dash@example.com/activate", nil); r.Status != 200 {
		t.Fatal(r.Status)
	}
	if p := c.get("/dashboard/login"); p.Status != 200 || c.csrf() == "" {
		t.Fatalf("login page: %d, CSRF token %q", p.Status, c.csrf())
	}
	p = c.post("/dashboard/login", url.Values{"email": {"dash@example.com"}, "password": {"wrong password!"}})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `role="alert"`) {
		t.Fatalf("wrong password: %d %s", p.Status, p.Body)
	}
	p = c.post("/dashboard/login", url.Values{"email": {"dash@example.com"}, "password": {"correct horse battery"}})
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/overview" {
		t.Fatalf("login: %d %s", p.Status, p.Location)
	}
	// On a plain-http origin of its own: no prefix (browsers refuse one
	// without Secure), Path=/, never a Domain; the pre-session nonce ends.
	names := map[string]bool{}
	for _, ck := range p.Header.Values("Set-Cookie") {
		names[ck[:strings.IndexByte(ck, '=')]] = true
		if !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || !strings.Contains(ck, "; Path=/;") ||
			strings.Contains(ck, "Domain") || strings.Contains(ck, "Secure") {
			t.Errorf("cookie %q", ck)
		}
	}
	if !names["tg_session"] || !names["tg_refresh"] || !names["tg_pre"] || len(names) != 3 {
		t.Errorf("login set cookies %v, want tg_session, tg_refresh and the end of tg_pre", names)
	}
	p = c.get("/dashboard/overview")
	if p.Status != 200 || !strings.Contains(p.Body, "Dash &lt;Co&gt;") || strings.Contains(p.Body, "Dash <Co>") {
		t.Fatalf("overview: %d, organization name not escaped or absent:\n%s", p.Status, p.Body)
	}
	// A form without the CSRF token, or from another origin, is refused.
	if p := c.post("/dashboard/logout", url.Values{"csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Errorf("logout with a forged CSRF token: %d", p.Status)
	}
	// From another origin — the API's, a sibling port's, any — whether
	// the browser says so in Origin or in Fetch Metadata.
	for _, h := range [][2]string{
		{"Origin", "https://evil.example"}, {"Origin", n.base}, {"Origin", "null"},
		{"Sec-Fetch-Site", "same-site"}, {"Sec-Fetch-Site", "cross-site"},
	} {
		req, _ := http.NewRequest(http.MethodPost, c.base+"/dashboard/logout", strings.NewReader("csrf="+url.QueryEscape(c.csrf())))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(h[0], h[1])
		if p := c.do(req); p.Status != http.StatusForbidden {
			t.Errorf("logout with %s: %s: %d", h[0], h[1], p.Status)
		}
	}
	if p := c.post("/dashboard/logout", nil); p.Status != http.StatusSeeOther || p.Location != "/dashboard/login" {
		t.Fatalf("logout: %d %s", p.Status, p.Location)
	}
	if p := c.get("/dashboard/overview"); p.Status != http.StatusSeeOther {
		t.Errorf("overview after logout: %d", p.Status)
	}
	// The assets are embedded.
	for _, a := range []string{"/dashboard/static/app.css", "/dashboard/static/app.js", "/dashboard/static/vendor/chart.umd.min.js"} {
		if p := c.get(a); p.Status != 200 || len(p.Body) < 100 {
			t.Errorf("%s: %d, %d bytes", a, p.Status, len(p.Body))
		}
	}
}

// An expired access token is renewed with the refresh token.
func TestDashboardRefresh(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "refresh@example.com", "Refresh Co")
	n.clock.Advance(20 * time.Minute) // past the 15-minute access token
	if p := c.get("/dashboard/overview"); p.Status != 200 {
		t.Fatalf("after the access token expired: %d %s", p.Status, p.Location)
	}
}

// A page of security alerts never ends between alerts of the same instant:
// the next page's cursor is strict, so they would be lost.
func TestDashboardAlertsTieAtPageEnd(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "ties@example.com", "Ties Co")
	u := n.userByEmail("ties@example.com")
	base := n.clock.Now().Add(-time.Hour)
	for k := range 53 { // the 50th to 52nd newest share an instant
		at := base.Add(time.Duration(60-k) * time.Second)
		if k >= 49 && k <= 51 {
			at = base.Add(10 * time.Second)
		}
		e := store.AuditEntry{Time: at, OrgID: u.OrgID, ActorType: store.ActorAnon, Action: "session.refresh_reuse",
			TargetType: "user", TargetID: u.ID, Details: map[string]string{"session": fmt.Sprintf("fam_tie%02d", k)}}
		if err := n.srv.Store().AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	p := c.get("/dashboard/security")
	for k := range 52 {
		if !strings.Contains(p.Body, fmt.Sprintf("fam_tie%02d<", k)) {
			t.Errorf("alert %d missing from the first page", k)
		}
	}
	next := regexp.MustCompile(`href="/dashboard/security\?before=([^"]+)" rel="next"`).FindStringSubmatch(p.Body)
	if next == nil {
		t.Fatal("no link to older alerts")
	}
	p2 := c.get("/dashboard/security?before=" + html.UnescapeString(next[1]))
	if !strings.Contains(p2.Body, "fam_tie52<") || strings.Contains(p2.Body, "fam_tie51<") {
		t.Errorf("second page:\n%s", p2.Body)
	}
}

// Operators ban by hand through the admin API; the gateway refuses the
// banned credential with reason banned; bad input is a 400.
func TestAdminBans(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	token := n.account("ban@example.com", "Ban Co")
	key, id := n.createKey(token, nil)
	for _, body := range []map[string]any{
		{"kind": "user", "id": "x", "duration": "1m"},
		{"kind": "ip", "id": "not-an-ip", "duration": "1m"},
		{"kind": "credential", "id": id, "duration": "forever"},
		{"kind": "credential", "id": id, "duration": "9000h"},
	} {
		if r := n.adminDo("POST", "/admin/v1/bans", body); r.Status != 400 {
			t.Errorf("ban %v: %d %s", body, r.Status, r.Body)
		}
	}
	if r := n.adminDo("POST", "/admin/v1/bans", map[string]any{"kind": "credential", "id": id, "duration": "10m"}); r.Status != 201 {
		t.Fatalf("ban: %d %s", r.Status, r.Body)
	}
	r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
	if code, reason := r.errCode(t); r.Status != 403 || code != "FORBIDDEN" || reason != "banned" || r.Header.Get("Retry-After") != "600" {
		t.Fatalf("banned credential at the gateway: %d %s %s %v", r.Status, code, reason, r.Header)
	}
	if v := n.adminDo("GET", "/admin/v1/bans/credential/"+id, nil).json(t); v["banned"] != true || v["remaining_seconds"].(float64) != 600 {
		t.Errorf("GET ban: %v", v)
	}
	n.clock.Advance(11 * time.Minute)
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
		t.Errorf("after the ban: %d", r.Status)
	}
}
