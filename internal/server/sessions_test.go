package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testsvc"
)

// proxiedYAML is baseYAML behind a trusted load balancer on 127.0.0.1: the
// tests pick the client address with X-Forwarded-For.
func proxiedYAML(t *testing.T, extra string) string {
	return strings.Replace(baseYAML(t.TempDir(), newRecorder(t, nil).URL),
		"insecure_http: true", "insecure_http: true\n  trusted_proxies: [127.0.0.1]", 1) + extra
}

func from(ip string, headers ...string) []string {
	return append([]string{"X-Forwarded-For", ip}, headers...)
}

func retryAfter(t *testing.T, r response) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n <= 0 {
		t.Fatalf("Retry-After %q: %d %s", r.Header.Get("Retry-After"), r.Status, r.Body)
	}
	return n
}

// Failed logins from one address, or from many, never stop the owner's
// right password from another; the guessing address gets 429 with a
// Retry-After that grows, right password or not.
func TestLoginFailuresNeverLockTheOwnerOut(t *testing.T) {
	n := start(t, proxiedYAML(t, ""), nil)
	n.account("dave@example.com", "Dave Co")
	login := func(ip, pw string) response {
		return do(t, "POST", n.base+"/api/v1/auth/email/login",
			map[string]string{"email": "dave@example.com", "password": pw}, from(ip)...)
	}
	const a, b = "203.0.113.10", "198.51.100.20"
	for range 6 {
		wantRefusal(t, login(a, "wrong password!"), 401, "INVALID_CREDENTIALS")
	}
	// Many other addresses, five wrong passwords each.
	for i := range 30 {
		for range 5 {
			wantRefusal(t, login(fmt.Sprintf("192.0.2.%d", i), "wrong password!"), 401, "INVALID_CREDENTIALS")
		}
	}
	if r := login(b, "correct horse battery"); r.Status != 200 {
		t.Fatalf("the owner from another address: %d %s", r.Status, r.Body)
	}
	prev := 0
	for i := range 5 {
		r := login(a, "correct horse battery")
		wantRefusal(t, r, 429, "RATE_LIMITED")
		ra := retryAfter(t, r)
		if ra <= prev {
			t.Fatalf("delay %d: Retry-After %d after %d", i+1, ra, prev)
		}
		prev = ra
		n.clock.Advance(time.Duration(ra) * time.Second)
		wantRefusal(t, login(a, "wrong password!"), 401, "INVALID_CREDENTIALS")
	}
	// The IPv6 neighbours of a guessing address share its /64.
	for i := range 6 {
		wantRefusal(t, login(fmt.Sprintf("2001:db8:1:2::%x", i+1), "wrong password!"), 401, "INVALID_CREDENTIALS")
	}
	wantRefusal(t, login("2001:db8:1:2::ffff", "correct horse battery"), 429, "RATE_LIMITED")
	if r := login("2001:db8:1:3::1", "correct horse battery"); r.Status != 200 {
		t.Fatalf("another /64: %d %s", r.Status, r.Body)
	}
}

// Wrong client secrets, from one address or many, never stop the right
// one, from any address; the guessing address's wrong secrets get 429.
func TestTokenEndpointRightSecretAlwaysWorks(t *testing.T) {
	n := start(t, proxiedYAML(t, ""), nil)
	a := n.createApp(n.account("quinn@example.com", "Quinn"), nil)
	cc := url.Values{"grant_type": {"client_credentials"}}
	token := func(ip, secret string) response {
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(a.ClientID, secret)
		return do(t, "POST", n.base+"/oauth/token", cc, from(ip, "Authorization", r.Header.Get("Authorization"))...)
	}
	wrong := strings.Repeat("y", 64)
	for i := range 6 {
		if r := token("203.0.113.10", wrong); r.Status != 401 {
			t.Fatalf("wrong secret %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	for i := range 20 {
		if r := token(fmt.Sprintf("192.0.2.%d", i), wrong); r.Status != 401 {
			t.Fatalf("wrong secret from 192.0.2.%d: %d", i, r.Status)
		}
	}
	r := token("203.0.113.10", wrong)
	if r.Status != 429 || !strings.Contains(string(r.Body), `"temporarily_unavailable"`) {
		t.Fatalf("wrong secret from the guessing address: %d %s", r.Status, r.Body)
	}
	retryAfter(t, r)
	for _, ip := range []string{"198.51.100.20", "203.0.113.10"} {
		if r := token(ip, a.Secret); r.Status != 200 {
			t.Fatalf("right secret from %s: %d %s", ip, r.Status, r.Body)
		}
	}
}

// Guessing the admin token is throttled per client IP, and never stops the
// right token.
func TestAdminTokenGuessingIsThrottled(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	for i := range 21 {
		if r := do(t, "GET", n.admin+"/admin/v1/users", nil, "Authorization", "Bearer wrong-guess"); r.Status != 401 {
			t.Fatalf("guess %d: %d", i+1, r.Status)
		}
	}
	r := do(t, "GET", n.admin+"/admin/v1/users", nil, "Authorization", "Bearer wrong-guess")
	wantRefusal(t, r, 429, "RATE_LIMITED")
	retryAfter(t, r)
	if r := n.adminDo("GET", "/admin/v1/users", nil); r.Status != 200 {
		t.Fatalf("the right token after 22 wrong ones: %d %s", r.Status, r.Body)
	}
}

// Logging out ends the session's access tokens at once, on every
// control-plane door: the API, the webhooks API, the dashboard.
func TestLogoutEndsAccessTokensAtOnce(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	n.account("lou@example.com", "Lou Co")
	r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "lou@example.com", "password": "correct horse battery"})
	pair := r.json(t)
	access := pair["access_token"].(string)
	for _, path := range []string{"/api/v1/me", "/api/v1/webhooks"} {
		if r := do(t, "GET", n.base+path, nil, bearer(access)...); r.Status != 200 {
			t.Fatalf("%s before logout: %d %s", path, r.Status, r.Body)
		}
	}
	if r := do(t, "POST", n.base+"/api/v1/auth/logout", map[string]string{"refresh_token": pair["refresh_token"].(string)}); r.Status != 204 {
		t.Fatalf("logout: %d", r.Status)
	}
	for _, path := range []string{"/api/v1/me", "/api/v1/webhooks"} {
		wantRefusal(t, do(t, "GET", n.base+path, nil, bearer(access)...), 401, "INVALID_TOKEN")
	}

	// The dashboard: a copy of the session's cookies (a second browser, or
	// a thief) is logged out with it.
	c := dashLogin(t, n, "dash-lou@example.com", "Dash Lou")
	thief := newDashClient(t, n)
	u, _ := url.Parse(n.dash + "/dashboard/")
	thief.http.Jar.SetCookies(u, c.http.Jar.Cookies(u))
	if p := thief.get("/dashboard/overview"); p.Status != 200 {
		t.Fatalf("copied cookies before logout: %d", p.Status)
	}
	if p := c.post("/dashboard/logout", nil); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	if p := thief.get("/dashboard/overview"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/dashboard/login") {
		t.Fatalf("copied cookies after logout: %d %s", p.Status, p.Location)
	}
	// An ended session's refresh token is no reuse: no alert.
	tok := n.login("dash-lou@example.com", "correct horse battery")
	if r := do(t, "GET", n.base+"/api/v1/audit?limit=100", nil, bearer(tok)...); strings.Contains(string(r.Body), "session.refresh_reuse") {
		t.Fatalf("a logout raised a reuse alert: %s", r.Body)
	}
}

// Refresh-token reuse ends the session's access tokens at once.
func TestReuseEndsAccessTokensAtOnce(t *testing.T) {
	n := start(t, proxiedYAML(t, ""), nil)
	n.account("rue@example.com", "Rue Co")
	first := do(t, "POST", n.base+"/api/v1/auth/email/login",
		map[string]string{"email": "rue@example.com", "password": "correct horse battery"}, from("203.0.113.10")...).json(t)
	r := do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)}, from("203.0.113.10")...)
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	second := r.json(t)
	for _, p := range []map[string]any{first, second} {
		if r := do(t, "GET", n.base+"/api/v1/me", nil, bearer(p["access_token"].(string))...); r.Status != 200 {
			t.Fatalf("before reuse: %d", r.Status)
		}
	}
	// The spent token, from elsewhere: reuse.
	wantRefusal(t, do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)},
		from("198.51.100.20")...), 401, "INVALID_TOKEN")
	for _, p := range []map[string]any{first, second} {
		wantRefusal(t, do(t, "GET", n.base+"/api/v1/me", nil, bearer(p["access_token"].(string))...), 401, "INVALID_TOKEN")
	}
	tok := n.login("rue@example.com", "correct horse battery")
	if r := do(t, "GET", n.base+"/api/v1/audit?limit=100", nil, bearer(tok)...); strings.Count(string(r.Body), "session.refresh_reuse") != 1 {
		t.Fatalf("audit after one reuse: %s", r.Body)
	}
}

// Concurrent refreshes of one token by one client (tabs) all succeed, in
// one session, without a reuse alert; the same token from another address
// is reuse.
func TestConcurrentRefreshesRaiseNoAlert(t *testing.T) {
	n := start(t, proxiedYAML(t, ""), nil)
	n.account("tabs@example.com", "Tabs Co")
	first := do(t, "POST", n.base+"/api/v1/auth/email/login",
		map[string]string{"email": "tabs@example.com", "password": "correct horse battery"}, from("203.0.113.10")...).json(t)
	const tabs = 8
	res := make([]response, tabs)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range tabs {
		wg.Go(func() {
			<-gate
			res[i] = do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)},
				from("203.0.113.10", "User-Agent", "Mozilla/5.0 (tab)")...)
		})
	}
	close(gate)
	wg.Wait()
	for i, r := range res {
		if r.Status != 200 {
			t.Fatalf("refresh %d: %d %s", i, r.Status, r.Body)
		}
		if r := do(t, "GET", n.base+"/api/v1/me", nil, bearer(r.json(t)["access_token"].(string))...); r.Status != 200 {
			t.Fatalf("access token of refresh %d: %d", i, r.Status)
		}
	}
	tok := res[0].json(t)["access_token"].(string)
	if r := do(t, "GET", n.base+"/api/v1/audit?limit=100", nil, bearer(tok)...); strings.Contains(string(r.Body), "session.refresh_reuse") {
		t.Fatalf("concurrent refreshes raised a reuse alert: %s", r.Body)
	}
	wantRefusal(t, do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)},
		from("198.51.100.20", "User-Agent", "Mozilla/5.0 (tab)")...), 401, "INVALID_TOKEN")
	wantRefusal(t, do(t, "GET", n.base+"/api/v1/me", nil, bearer(tok)...), 401, "INVALID_TOKEN")
}

// Two dashboard tabs renewing an expired access token at once both stay
// logged in.
func TestDashboardTabsRefreshAtOnce(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "tabs@example.com", "Tabs Co")
	other := newDashClient(t, n)
	u, _ := url.Parse(n.dash + "/dashboard/")
	other.http.Jar.SetCookies(u, c.http.Jar.Cookies(u))
	n.clock.Advance(20 * time.Minute) // past the access token
	var wg sync.WaitGroup
	pages := make([]page, 2)
	gate := make(chan struct{})
	for i, tab := range []*dashClient{c, other} {
		wg.Go(func() {
			<-gate
			pages[i] = tab.get("/dashboard/overview")
		})
	}
	close(gate)
	wg.Wait()
	for i, p := range pages {
		if p.Status != 200 {
			t.Fatalf("tab %d: %d %s", i, p.Status, p.Location)
		}
	}
	for i, tab := range []*dashClient{c, other} {
		if p := tab.get("/dashboard/overview"); p.Status != 200 {
			t.Fatalf("tab %d, next page: %d %s", i, p.Status, p.Location)
		}
	}
}

// Form bodies of the OAuth endpoints are bounded by
// server.max_api_body_bytes: 413 PAYLOAD_TOO_LARGE, the common error body.
func TestOAuthFormBodiesAreBounded(t *testing.T) {
	n := start(t, strings.Replace(baseYAML(t.TempDir(), newRecorder(t, nil).URL),
		"insecure_http: true", "insecure_http: true\n  max_api_body_bytes: 2048", 1), nil)
	a := n.createApp(n.account("big@example.com", "Big Co"), nil)
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		v := url.Values{"grant_type": {"client_credentials"}, "token": {"x"}, "pad": {strings.Repeat("a", 4096)}}
		r := form(t, n.base+path, v, a.ClientID, a.Secret)
		wantRefusal(t, r, 413, "PAYLOAD_TOO_LARGE")
	}
	if r := form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("a", 1500)}},
		a.ClientID, a.Secret); r.Status != 200 {
		t.Fatalf("a body under the limit: %d %s", r.Status, r.Body)
	}
}

// Two nodes on one PostgreSQL schema and one Redis prefix: a logout on one
// ends the session's access tokens on the other at once, although the
// other would trust its cache for 5 minutes.
func TestLogoutEndsSessionOnEveryNode(t *testing.T) {
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)
	yaml := func() string {
		return sharedYAML(pgURL, schema, redisURL, prefix, fmt.Sprintf(`
auth:
  session_cache_ttl: 5m
routes:
  - path: /v1/
    upstream: %s
`, newRecorder(t, nil).URL))
	}
	a := start(t, yaml(), nil)
	b := start(t, yaml(), nil)
	a.account("two@example.com", "Two Co")
	login := func() map[string]any {
		r := do(t, "POST", a.base+"/api/v1/auth/email/login", map[string]string{"email": "two@example.com", "password": "correct horse battery"})
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		return r.json(t)
	}
	for _, end := range []string{"logout", "reuse"} {
		p := login()
		access := p["access_token"].(string)
		if r := do(t, "GET", b.base+"/api/v1/me", nil, bearer(access)...); r.Status != 200 {
			t.Fatalf("%s: node B before: %d %s", end, r.Status, r.Body)
		}
		switch end {
		case "logout":
			if r := do(t, "POST", a.base+"/api/v1/auth/logout", map[string]string{"refresh_token": p["refresh_token"].(string)}); r.Status != 204 {
				t.Fatalf("logout: %d", r.Status)
			}
		case "reuse":
			rt := p["refresh_token"].(string)
			if r := do(t, "POST", a.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": rt}); r.Status != 200 {
				t.Fatalf("refresh: %d %s", r.Status, r.Body)
			}
			wantRefusal(t, do(t, "POST", a.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": rt}, "User-Agent", "thief"), 401, "INVALID_TOKEN")
		}
		waitFor(t, "node B to refuse the access token after the "+end, func() bool {
			return do(t, "GET", b.base+"/api/v1/me", nil, bearer(access)...).Status == 401
		})
	}
}
