package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apikey"
)

// The README walkthrough: register → (refused while pending) → activate →
// log in → create a key → call the gateway → revoke.
func TestWalkthrough(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)

	r := do(t, "POST", n.base+"/api/v1/auth/email/register",
		map[string]string{"email": "Alice@Example.com", "password": "correct horse battery", "organization_name": "Acme Data"})
	if r.Status != 202 || r.json(t)["status"] != "pending" {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "alice@example.com", "password": "correct horse battery"})
	if code, reason := r.errCode(t); r.Status != 403 || code != "FORBIDDEN" || reason != "account_pending" {
		t.Fatalf("login while pending: %d %s", r.Status, r.Body)
	}
	// Pending users are listed for the operator, who activates through the admin API.
	r = n.adminDo("GET", "/admin/v1/users?status=pending", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "alice@example.com") {
		t.Fatalf("pending list: %d %s", r.Status, r.Body)
	}
	if r = n.adminDo("POST", "/admin/v1/users/alice@example.com/activate", nil); r.Status != 200 || r.json(t)["status"] != "active" {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "alice@example.com", "password": "correct horse battery"})
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	login := r.json(t)
	if login["token_type"] != "Bearer" || login["expires_in"].(float64) != 900 || login["refresh_token"] == "" {
		t.Fatalf("login body: %s", r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response Cache-Control = %q", r.Header.Get("Cache-Control"))
	}
	token := login["access_token"].(string)

	r = do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+token)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"slug":"acme-data"`) {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}

	key, keyID := n.createKey(token, map[string]any{"name": "prod server", "scopes": []string{"kyt.read"}})
	if !strings.HasPrefix(key, "tgk_") || len(key) != 42 {
		t.Fatalf("key %q", key)
	}

	r = do(t, "GET", n.base+"/v1/prices?chain=eth", nil, "X-API-KEY", key, "X-Tollgate-Org", "org_forged")
	if r.Status != 200 {
		t.Fatalf("gateway: %d %s", r.Status, r.Body)
	}
	got := be.all()
	if len(got) != 1 {
		t.Fatalf("backend saw %d requests", len(got))
	}
	me := n.userByEmail("alice@example.com")
	h := got[0].Header
	for name, want := range map[string]string{
		"X-Api-Key":             "",
		"X-Tollgate-Org":        me.OrgID,
		"X-Tollgate-Credential": keyID,
		"X-Tollgate-Scopes":     "kyt.read",
		"X-Request-Id":          r.Header.Get("X-Request-Id"),
	} {
		if v := h.Get(name); v != want {
			t.Errorf("backend saw %s = %q, want %q", name, v, want)
		}
	}
	if _, ok := h["X-Tollgate-App"]; ok {
		t.Error("backend saw X-Tollgate-App for a key without an app")
	}

	// The key is listed without its secret, with its last use once flushed.
	if err := n.srv.Keys().FlushLastUsed(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = do(t, "GET", n.base+"/api/v1/apikeys", nil, "Authorization", "Bearer "+token)
	if r.Status != 200 || strings.Contains(string(r.Body), key) || strings.Contains(string(r.Body), key[12:]) {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	listed := r.json(t)["data"].([]any)[0].(map[string]any)
	if listed["prefix"] != key[:12] || listed["status"] != "active" || listed["last_used_at"] == nil || listed["name"] != "prod server" {
		t.Fatalf("listed key: %v", listed)
	}

	// Revocation takes effect at once, and the backend never hears of it.
	if r = do(t, "DELETE", n.base+"/api/v1/apikeys/"+keyID, nil, "Authorization", "Bearer "+token); r.Status != 200 || r.json(t)["status"] != "revoked" {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	r = do(t, "GET", n.base+"/v1/prices", nil, "X-API-KEY", key)
	if code, _ := r.errCode(t); r.Status != 401 || code != "INVALID_CREDENTIALS" {
		t.Fatalf("revoked key: %d %s", r.Status, r.Body)
	}
	if len(be.all()) != 1 {
		t.Fatal("a refused request reached the backend")
	}

	// Every credential change is audited with who, what and from where.
	r = do(t, "GET", n.base+"/api/v1/audit", nil, "Authorization", "Bearer "+token)
	body := string(r.Body)
	for _, action := range []string{"user.register", "user.activate", "apikey.create", "apikey.revoke"} {
		if !strings.Contains(body, `"action":"`+action+`"`) {
			t.Errorf("audit log lacks %s: %s", action, body)
		}
	}
	if !strings.Contains(body, `"ip":"127.0.0.1"`) {
		t.Errorf("audit log lacks the client IP: %s", body)
	}

	// No secret ever reaches the logs.
	logs := n.logs.String()
	for _, secret := range []string{key, "correct horse battery", token, login["refresh_token"].(string), adminToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret was logged: %.12s…", secret)
		}
	}
	if !strings.Contains(logs, `"credential":"`+keyID+`"`) || !strings.Contains(logs, `"request_id":"`) {
		t.Errorf("access log lacks credential or request id:\n%s", logs)
	}
}

func TestGatewayRefusals(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	token := n.account("bob@example.com", "Bob Co")
	plain, _ := n.createKey(token, nil)
	scoped, _ := n.createKey(token, map[string]any{"scopes": []string{"kyt.read"}})
	soon, _ := n.createKey(token, map[string]any{"expires_at": n.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	walled, _ := n.createKey(token, map[string]any{"ip_allowlist": "203.0.113.50, 198.51.100.0/24, 2001:db8::/32"})

	unknown, err := apikey.Generate() // well-formed, checksum and all, but never issued
	if err != nil {
		t.Fatal(err)
	}
	n.clock.Advance(2 * time.Hour) // `soon` is now expired
	tests := []struct {
		name         string
		path         string
		headers      []string
		status       int
		code, reason string
	}{
		{"no key", "/v1/x", nil, 401, "UNAUTHORIZED", ""},
		{"malformed key", "/v1/x", []string{"X-API-KEY", "not-a-key"}, 401, "INVALID_CREDENTIALS", ""},
		{"well-formed unknown key", "/v1/x", []string{"X-API-KEY", unknown}, 401, "INVALID_CREDENTIALS", ""},
		{"expired key", "/v1/x", []string{"X-API-KEY", soon}, 401, "EXPIRED_TOKEN", ""},
		{"IP not in allowlist", "/v1/x", []string{"X-API-KEY", walled}, 403, "FORBIDDEN", "ip_not_allowed"},
		{"spoofed X-Forwarded-For is not believed", "/v1/x", []string{"X-API-KEY", walled, "X-Forwarded-For", "203.0.113.50"}, 403, "FORBIDDEN", "ip_not_allowed"},
		{"scope required", "/v1/kyt/score", []string{"X-API-KEY", plain}, 403, "INSUFFICIENT_SCOPE", ""},
		{"unknown route", "/nowhere", []string{"X-API-KEY", plain}, 404, "NOT_FOUND", ""},
		{"dashboard token is no API credential", "/v1/x", []string{"Authorization", "Bearer " + token}, 401, "INVALID_TOKEN", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "GET", n.base+tt.path, nil, tt.headers...)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if code, reason := r.errCode(t); code != tt.code || reason != tt.reason {
				t.Fatalf("code %q reason %q, want %q %q", code, reason, tt.code, tt.reason)
			}
		})
	}
	if got := be.all(); len(got) != 0 {
		t.Fatalf("backend received %d refused requests: %+v", len(got), got)
	}
	for _, ok := range []struct{ path, key string }{{"/v1/kyt/score", scoped}, {"/v1/x", plain}, {"/status", ""}} {
		if r := do(t, "GET", n.base+ok.path, nil, "X-API-KEY", ok.key); r.Status != 200 {
			t.Errorf("%s: %d %s", ok.path, r.Status, r.Body)
		}
	}
}

// With the load balancer in front configured as trusted, the client address
// comes from X-Forwarded-For, walked from the right.
func TestAllowlistBehindTrustedProxy(t *testing.T) {
	be := newRecorder(t, nil)
	dir := t.TempDir()
	n := start(t, baseYAML(dir, be.URL)+"\n", nil)
	token := n.account("carol@example.com", "Carol Co")
	walled, _ := n.createKey(token, map[string]any{"ip_allowlist": []string{"203.0.113.0/24"}})
	n.stop()
	n = start(t, strings.Replace(baseYAML(dir, be.URL), "insecure_http: true", "insecure_http: true\n  trusted_proxies: [127.0.0.1]", 1), nil)
	for _, tt := range []struct {
		xff    string
		status int
	}{
		{"203.0.113.9", 200},
		{"203.0.113.9, 127.0.0.1", 200},    // a second trusted hop
		{"198.51.100.1, 203.0.113.9", 200}, // the left-most entry is client-written and ignored
		{"203.0.113.9, 198.51.100.1", 403}, // the first untrusted hop from the right decides
		{"", 403},
	} {
		r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", walled, "X-Forwarded-For", tt.xff)
		if r.Status != tt.status {
			t.Errorf("X-Forwarded-For %q: %d, want %d", tt.xff, r.Status, tt.status)
		}
	}
}

func TestLoginAnswersAreIdenticalAndThrottled(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	n.account("dave@example.com", "Dave Co")

	strip := func(r response) string {
		return strings.Replace(string(r.Body), r.Header.Get("X-Request-Id"), "", 1)
	}
	wrongPw := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "wrong password!"})
	noUser := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "nobody@example.com", "password": "wrong password!"})
	if wrongPw.Status != 401 || noUser.Status != 401 || strip(wrongPw) != strip(noUser) {
		t.Fatalf("answers differ:\n%d %s\n%d %s", wrongPw.Status, wrongPw.Body, noUser.Status, noUser.Body)
	}
	if code, _ := wrongPw.errCode(t); code != "INVALID_CREDENTIALS" {
		t.Fatalf("code %q", code)
	}
	// Failed logins are throttled per address and per address and account
	// (see TestLoginFailuresNeverLockTheOwnerOut): past them, the right
	// password gets the same 429 as a wrong one.
	for range 5 {
		do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "wrong password!"})
	}
	r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "correct horse battery"})
	if code, _ := r.errCode(t); r.Status != 429 || code != "RATE_LIMITED" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled login: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	wrong := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "wrong password!"})
	if wrong.Status != 429 || strip(wrong) != strip(r) || wrong.Header.Get("Retry-After") != r.Header.Get("Retry-After") {
		t.Fatalf("a throttled right password is an oracle:\n%d %s\n%d %s", r.Status, r.Body, wrong.Status, wrong.Body)
	}
	n.clock.Advance(16 * time.Minute)
	if r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "correct horse battery"}); r.Status != 200 {
		t.Fatalf("after the delay: %d %s", r.Status, r.Body)
	}
	// Per IP: many accounts from one address.
	for i := range 25 {
		do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": fmt.Sprintf("u%d@example.com", i), "password": "wrong password!"})
	}
	if r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dave@example.com", "password": "correct horse battery"}); r.Status != 429 {
		t.Fatalf("IP not throttled: %d", r.Status)
	}
}

func TestRegistrationDoesNotRevealAccounts(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	body := map[string]string{"email": "erin@example.com", "password": "correct horse battery", "organization_name": "Erin"}
	first := do(t, "POST", n.base+"/api/v1/auth/email/register", body)
	again := do(t, "POST", n.base+"/api/v1/auth/email/register", body)
	if first.Status != 202 || again.Status != 202 || string(first.Body) != string(again.Body) {
		t.Fatalf("answers differ: %d %s / %d %s", first.Status, first.Body, again.Status, again.Body)
	}
	users, _ := n.srv.Accounts().ListUsers(context.Background(), "")
	if len(users) != 1 {
		t.Fatalf("%d users after a duplicate registration", len(users))
	}
	for _, tt := range []struct {
		body  map[string]string
		field string
	}{
		{map[string]string{"email": "not-an-email", "password": "correct horse battery"}, "email"},
		{map[string]string{"email": "f@example.com", "password": "short"}, "password"},
	} {
		r := do(t, "POST", n.base+"/api/v1/auth/email/register", tt.body)
		if code, _ := r.errCode(t); r.Status != 400 || code != "BAD_REQUEST" || r.json(t)["error"].(map[string]any)["field"] != tt.field {
			t.Errorf("%v: %d %s", tt.body, r.Status, r.Body)
		}
	}
}

func TestStrictInput(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	token := n.account("frank@example.com", "Frank")
	auth := []string{"Authorization", "Bearer " + token}
	tests := []struct {
		name, method, path, body, contentType string
		status                                int
		code                                  string
	}{
		{"unknown field", "POST", "/api/v1/apikeys", `{"name":"k","label":"typo"}`, "application/json", 400, "BAD_REQUEST"},
		{"wrong type", "POST", "/api/v1/apikeys", `{"name":5}`, "application/json", 400, "BAD_REQUEST"},
		{"two objects", "POST", "/api/v1/apikeys", `{"name":"a"}{"name":"b"}`, "application/json", 400, "BAD_REQUEST"},
		{"not JSON", "POST", "/api/v1/apikeys", `name=k`, "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"bad allowlist", "POST", "/api/v1/apikeys", `{"name":"k","ip_allowlist":"10.0.0.1/8"}`, "application/json", 400, "BAD_REQUEST"},
		{"bad scope", "POST", "/api/v1/apikeys", `{"name":"k","scopes":["DROP TABLE"]}`, "application/json", 400, "BAD_REQUEST"},
		{"past expiry", "POST", "/api/v1/apikeys", `{"name":"k","expires_at":"2001-01-01T00:00:00Z"}`, "application/json", 400, "BAD_REQUEST"},
		{"bad timestamp", "POST", "/api/v1/apikeys", `{"name":"k","expires_at":"tomorrow"}`, "application/json", 400, "BAD_REQUEST"},
		{"empty name", "POST", "/api/v1/apikeys", `{"name":"  "}`, "application/json", 400, "BAD_REQUEST"},
		{"too large", "POST", "/api/v1/apikeys", `{"name":"` + strings.Repeat("a", 70_000) + `"}`, "application/json", 413, "PAYLOAD_TOO_LARGE"},
		{"unknown path", "GET", "/api/v1/nothing", "", "", 404, "NOT_FOUND"},
		{"wrong method", "PUT", "/api/v1/apikeys", `{}`, "application/json", 405, "METHOD_NOT_ALLOWED"},
		{"patch nothing", "PATCH", "/api/v1/apikeys/key_x", `{}`, "application/json", 400, "BAD_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, n.base+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			req.Header.Set(auth[0], auth[1])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r := readResponse(t, resp)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if code, _ := r.errCode(t); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
		})
	}
	// A gateway body over server.max_body_bytes is refused before the backend.
}

func TestKeyManagement(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	alice := n.account("alice@example.com", "Alice")
	mallory := n.account("mallory@example.com", "Mallory")
	key, id := n.createKey(alice, nil)

	// Another organization neither sees nor touches the key.
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		var body any
		if m == "PATCH" {
			body = map[string]any{"name": "mine now"}
		}
		r := do(t, m, n.base+"/api/v1/apikeys/"+id, body, "Authorization", "Bearer "+mallory)
		if r.Status != 404 {
			t.Errorf("%s by another org: %d %s", m, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", n.base+"/api/v1/apikeys", nil, "Authorization", "Bearer "+mallory); strings.Contains(string(r.Body), id) {
		t.Fatal("another organization lists the key")
	}

	// Edit: name, expiry, scopes and allowlist; the gateway applies the new allowlist at once.
	r := do(t, "PATCH", n.base+"/api/v1/apikeys/"+id, map[string]any{
		"name": "renamed", "ip_allowlist": []string{"192.0.2.1"}, "scopes": []string{"kyt.read"},
		"expires_at": n.clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	}, "Authorization", "Bearer "+alice)
	if r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if m := r.json(t); m["name"] != "renamed" || m["expires_at"] == nil || len(m["ip_allowlist"].([]any)) != 1 {
		t.Fatalf("patched: %s", r.Body)
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 403 {
		t.Fatalf("new allowlist not applied at once: %d", r.Status)
	}
	r = do(t, "PATCH", n.base+"/api/v1/apikeys/"+id, map[string]any{"ip_allowlist": nil, "expires_at": nil}, "Authorization", "Bearer "+alice)
	if m := r.json(t); r.Status != 200 || m["expires_at"] != nil || len(m["ip_allowlist"].([]any)) != 0 {
		t.Fatalf("clearing: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("cleared allowlist: %d", r.Status)
	}

	// Rotation without downtime: a second key works alongside the first.
	key2, _ := n.createKey(alice, map[string]any{"name": "next"})
	for _, k := range []string{key, key2} {
		if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", k); r.Status != 200 {
			t.Fatalf("during rotation: %d", r.Status)
		}
	}
	do(t, "DELETE", n.base+"/api/v1/apikeys/"+id, nil, "Authorization", "Bearer "+alice)
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key2); r.Status != 200 {
		t.Fatalf("new key after old one revoked: %d", r.Status)
	}
	// A revoked key cannot be edited; revoking again is harmless.
	if r := do(t, "PATCH", n.base+"/api/v1/apikeys/"+id, map[string]any{"name": "x"}, "Authorization", "Bearer "+alice); r.Status != 409 {
		t.Fatalf("edit revoked: %d %s", r.Status, r.Body)
	}
	if r := do(t, "DELETE", n.base+"/api/v1/apikeys/"+id, nil, "Authorization", "Bearer "+alice); r.Status != 200 {
		t.Fatalf("second revoke: %d", r.Status)
	}
	// Without a session, nothing.
	if r := do(t, "GET", n.base+"/api/v1/apikeys", nil); r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("anonymous list: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
}

func TestSessions(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	n.account("gina@example.com", "Gina")
	r := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "gina@example.com", "password": "correct horse battery"})
	first := r.json(t)

	// The access token expires; the refresh token yields a new pair.
	n.clock.Advance(16 * time.Minute)
	r = do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+first["access_token"].(string))
	if code, _ := r.errCode(t); r.Status != 401 || code != "EXPIRED_TOKEN" {
		t.Fatalf("expired access token: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)})
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	second := r.json(t)
	if second["refresh_token"] == first["refresh_token"] {
		t.Fatal("refresh token not rotated")
	}
	if r := do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+second["access_token"].(string)); r.Status != 200 {
		t.Fatalf("new access token: %d", r.Status)
	}
	// Replaying the old refresh token, past the grace of concurrent
	// refreshes, revokes the whole family.
	n.clock.Advance(6 * time.Second)
	r = do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": first["refresh_token"].(string)})
	if code, _ := r.errCode(t); r.Status != 401 || code != "INVALID_TOKEN" {
		t.Fatalf("reuse: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": second["refresh_token"].(string)}); r.Status != 401 {
		t.Fatalf("family not revoked after reuse: %d", r.Status)
	}
	// Tampered and foreign tokens.
	tok := second["access_token"].(string)
	if r := do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+tok[:len(tok)-4]+"AAAA"); r.Status != 401 {
		t.Fatalf("tampered: %d", r.Status)
	}
	// Disabling a user ends their access at once.
	tok = n.login("gina@example.com", "correct horse battery")
	n.adminDo("POST", "/admin/v1/users/gina@example.com/disable", nil)
	r = do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+tok)
	if code, reason := r.errCode(t); r.Status != 403 || code != "FORBIDDEN" || reason != "account_disabled" {
		t.Fatalf("disabled user: %d %s", r.Status, r.Body)
	}
	// Logout revokes the refresh token.
	n.adminDo("POST", "/admin/v1/users/gina@example.com/activate", nil)
	r = do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "gina@example.com", "password": "correct horse battery"})
	rt := r.json(t)["refresh_token"].(string)
	if r := do(t, "POST", n.base+"/api/v1/auth/logout", map[string]string{"refresh_token": rt}); r.Status != 204 {
		t.Fatalf("logout: %d", r.Status)
	}
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": rt}); r.Status != 401 {
		t.Fatalf("refresh after logout: %d", r.Status)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	token := n.account("hal@example.com", "Hal")
	key, _ := n.createKey(token, nil)
	jwks := do(t, "GET", n.base+"/.well-known/jwks.json", nil)

	n = n.restart()
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("key after restart: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/api/v1/me", nil, "Authorization", "Bearer "+token); r.Status != 200 {
		t.Fatalf("session after restart (signing key not persisted?): %d %s", r.Status, r.Body)
	}
	if again := do(t, "GET", n.base+"/.well-known/jwks.json", nil); string(again.Body) != string(jwks.Body) {
		t.Fatal("JWKS changed across a restart")
	}
	n.login("hal@example.com", "correct horse battery")
}

func TestAdminAPIRequiresItsToken(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "Basic " + adminToken}} {
		r := do(t, "GET", n.admin+"/admin/v1/users", nil, h...)
		if r.Status != 401 {
			t.Errorf("%v: %d", h, r.Status)
		}
	}
	// The admin API is not on the public listener.
	if r := do(t, "GET", n.base+"/admin/v1/users", nil, "Authorization", "Bearer "+adminToken); r.Status != 404 {
		t.Errorf("admin API on the public listener: %d", r.Status)
	}
	// Keys can be issued by the operator for an organization.
	n.account("ivy@example.com", "Ivy Labs")
	r := n.adminDo("POST", "/admin/v1/organizations/ivy-labs/apikeys", map[string]any{"name": "from ops"})
	if r.Status != 201 {
		t.Fatalf("admin create key: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", r.json(t)["key"].(string)); r.Status != 200 {
		t.Fatalf("admin-issued key: %d", r.Status)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := do(t, "GET", n.base+p, nil); r.Status != 200 {
			t.Errorf("%s: %d", p, r.Status)
		}
	}
	r := do(t, "GET", n.base+"/.well-known/jwks.json", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"alg":"RS256"`) || strings.Contains(string(r.Body), `"d":`) {
		t.Fatalf("jwks: %d %s", r.Status, r.Body)
	}
}

// Graceful shutdown lets in-flight requests finish.
func TestGracefulShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/slow" {
			started <- struct{}{}
			<-release
		}
		w.Write([]byte("done"))
	})
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	token := n.account("jo@example.com", "Jo")
	key, _ := n.createKey(token, nil)

	var wg sync.WaitGroup
	var slow response
	wg.Add(1)
	go func() {
		defer wg.Done()
		slow = do(t, "GET", n.base+"/v1/slow", nil, "X-API-KEY", key)
	}()
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- n.srv.Shutdown(ctx)
	}()
	time.Sleep(50 * time.Millisecond) // let Shutdown close the listener
	close(release)
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	n.srv = nil
	if slow.Status != 200 || string(slow.Body) != "done" {
		t.Fatalf("in-flight request: %d %q", slow.Status, slow.Body)
	}
}

func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return response{resp.StatusCode, resp.Header, []byte(b.String())}
}

// Sign-ups are limited per client IP (auth.login.max_registrations_per_ip).
func TestRegistrationsPerIPAreLimited(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL)+"auth: {login: {max_registrations_per_ip: 3}}\n", nil)
	for i := range 3 {
		body := map[string]string{"email": fmt.Sprintf("s%d@example.com", i), "password": "correct horse battery"}
		if r := do(t, "POST", n.base+"/api/v1/auth/email/register", body); r.Status != 202 {
			t.Fatalf("sign-up %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := do(t, "POST", n.base+"/api/v1/auth/email/register",
		map[string]string{"email": "s9@example.com", "password": "correct horse battery"})
	if code, _ := r.errCode(t); r.Status != 429 || code != "RATE_LIMITED" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth sign-up: %d %s", r.Status, r.Body)
	}
	if users, _ := n.srv.Accounts().ListUsers(context.Background(), ""); len(users) != 3 {
		t.Fatalf("%d users created", len(users))
	}
}

// Outside development mode a server without a master key refuses to start,
// rather than seal secrets under a key nobody chose to keep.
func TestNoMasterKeyRefused(t *testing.T) {
	yaml := strings.Replace(baseYAML(t.TempDir(), "http://127.0.0.1:9"), "  master_key: "+testMasterKey+"\n", "", 1)
	cfg, err := parseYAML(yaml)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, Options{})
	if !errors.Is(err, ErrNoMasterKey) {
		t.Fatalf("New without a master key: %v", err)
	}
}
