package server

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/store"
)

// keysPageFind returns the first group of re in body, failing the test when
// it is absent.
func keysPageFind(t *testing.T, body, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, body)
	}
	return m[1]
}

const (
	reNewKey           = `<code id="new-key"[^>]*>([^<]+)</code>`
	reNewKeyID         = `data-new-key-id="([^"]+)"`
	reNewSigningSecret = `<code id="new-signing-secret"[^>]*>([^<]+)</code>`
	reNewClientID      = `<code id="new-client-id"[^>]*>([^<]+)</code>`
	reNewClientSecret  = `<code id="new-client-secret"[^>]*>([^<]+)</code>`
	reNewAppID         = `data-new-app-id="([^"]+)"`
)

// gatewayStatus calls the gateway at path with an API key.
func gatewayStatus(t *testing.T, n *node, path, key string) int {
	t.Helper()
	return do(t, "GET", n.base+path, nil, "X-API-KEY", key).Status
}

// The keys pages: create (the secret shown once), use, edit, rotate with a
// grace, revoke; escaping; CSRF.
func TestDashboardKeys(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "keys@example.com", "Keys Co")

	p := c.get("/dashboard/keys")
	if p.Status != 200 || !strings.Contains(p.Body, `id="create-key"`) || !strings.Contains(p.Body, `<label for="key-name">`) {
		t.Fatalf("keys page: %d\n%s", p.Status, p.Body)
	}

	// Create, with a name that must be escaped.
	p = c.post("/dashboard/keys", url.Values{"name": {`<script>alert(1)</script>`}, "scopes": {""}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", p.Status, p.Body)
	}
	secret := keysPageFind(t, p.Body, reNewKey)
	id := keysPageFind(t, p.Body, reNewKeyID)
	if strings.Count(p.Body, secret) != 1 || !strings.Contains(p.Body, controlapi.ShownOnce) || !strings.Contains(p.Body, `data-copy="new-key"`) {
		t.Errorf("creation page: the secret should be there once, with the warning and a copy button:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "<script>alert") || !strings.Contains(p.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("key name not escaped:\n%s", p.Body)
	}
	if strings.Contains(p.Body, `id="new-signing-secret"`) {
		t.Error("a signing secret shown that was not asked for")
	}
	p = c.get("/dashboard/keys")
	if strings.Contains(p.Body, secret) || strings.Contains(p.Body, `id="new-key"`) {
		t.Fatalf("the list shows the secret again:\n%s", p.Body)
	}
	if !strings.Contains(p.Body, `id="keys-table"`) || !strings.Contains(p.Body, `data-key-id="`+id+`"`) ||
		!strings.Contains(p.Body, `<th scope="col">`) || !strings.Contains(p.Body, `class="badge active"`) ||
		!strings.Contains(p.Body, `action="/dashboard/keys/`+id+`/revoke"`) || strings.Contains(p.Body, "<script>alert") {
		t.Fatalf("list:\n%s", p.Body)
	}
	if got := gatewayStatus(t, n, "/v1/prices", secret); got != 200 {
		t.Fatalf("gateway with the new key: %d", got)
	}
	if got := gatewayStatus(t, n, "/v1/kyt/check", secret); got != 403 {
		t.Fatalf("kyt without the scope: %d", got)
	}

	// A form without the CSRF token creates nothing.
	if p := c.post("/dashboard/keys", url.Values{"name": {"forged"}, "csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("create with a forged CSRF token: %d", p.Status)
	}
	if p := c.post("/dashboard/keys/"+id+"/revoke", url.Values{"csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("revoke with a forged CSRF token: %d", p.Status)
	}
	if p := c.get("/dashboard/keys"); strings.Contains(p.Body, "forged") || strings.Count(p.Body, "data-key-id=") != 1 {
		t.Fatalf("a forged form had an effect:\n%s", p.Body)
	}

	// A bad field is marked, the input kept.
	p = c.post("/dashboard/keys", url.Values{"name": {"kept name"}, "ip_allowlist": {"203.0.113.0/24\nnot-an-address"}})
	if p.Status != http.StatusBadRequest || !regexp.MustCompile(`id="key-allowlist"[^>]*aria-invalid="true"`).MatchString(p.Body) ||
		!strings.Contains(p.Body, `role="alert"`) || !strings.Contains(p.Body, `value="kept name"`) || !strings.Contains(p.Body, "not-an-address") {
		t.Fatalf("bad allowlist: %d\n%s", p.Status, p.Body)
	}

	// Edit: name and scopes.
	p = c.get("/dashboard/keys/" + id)
	if p.Status != 200 || !strings.Contains(p.Body, `id="edit-key"`) || strings.Contains(p.Body, "<script>alert") {
		t.Fatalf("edit page: %d\n%s", p.Status, p.Body)
	}
	p = c.post("/dashboard/keys/"+id, url.Values{"name": {"renamed"}, "scopes": {"Not A Scope"}})
	if p.Status != http.StatusBadRequest || !regexp.MustCompile(`id="key-scopes"[^>]*aria-invalid="true"`).MatchString(p.Body) {
		t.Fatalf("bad scope: %d\n%s", p.Status, p.Body)
	}
	p = c.post("/dashboard/keys/"+id, url.Values{"name": {"renamed"}, "scopes": {"kyt.read, prices.read"}})
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/keys?notice=updated" {
		t.Fatalf("edit: %d %s\n%s", p.Status, p.Location, p.Body)
	}
	p = c.get(p.Location)
	if !strings.Contains(p.Body, "renamed") || !strings.Contains(p.Body, "kyt.read prices.read") || !strings.Contains(p.Body, "The key was saved.") {
		t.Fatalf("after the edit:\n%s", p.Body)
	}
	if got := gatewayStatus(t, n, "/v1/kyt/check", secret); got != 200 {
		t.Fatalf("kyt with kyt.read: %d", got)
	}
	// A notice is chosen by the URL, never written from it.
	if p := c.get("/dashboard/keys?notice=" + url.QueryEscape("Your account is closed")); strings.Contains(p.Body, "Your account is closed") {
		t.Fatal("free text from the URL shown as a notice")
	}

	// Rotate with a 1-hour grace.
	p = c.post("/dashboard/keys/"+id+"/rotate", url.Values{"grace": {"1h"}})
	if p.Status != 200 {
		t.Fatalf("rotate: %d\n%s", p.Status, p.Body)
	}
	newSecret, newID := keysPageFind(t, p.Body, reNewKey), keysPageFind(t, p.Body, reNewKeyID)
	if newID == id || newSecret == secret || !strings.Contains(p.Body, `id="rotation"`) || !strings.Contains(p.Body, "replaces key renamed") ||
		!strings.Contains(p.Body, "keeps working until") || !strings.Contains(p.Body, controlapi.ShownOnce) {
		t.Fatalf("rotation page:\n%s", p.Body)
	}
	for _, k := range []string{secret, newSecret} {
		if got := gatewayStatus(t, n, "/v1/kyt/check", k); got != 200 {
			t.Fatalf("during the grace: %d", got)
		}
	}
	if p := c.get("/dashboard/keys"); strings.Contains(p.Body, newSecret) || strings.Count(p.Body, "data-key-id=") != 2 {
		t.Fatalf("list after the rotation:\n%s", p.Body)
	}
	// Editing the old key's name keeps its exact end, which the date
	// field cannot show; a form with no change changes nothing.
	old := c.get("/dashboard/keys/" + id)
	date := keysPageFind(t, old.Body, `id="key-expiry"[^>]*value="([^"]+)"`)
	p = c.post("/dashboard/keys/"+id, url.Values{"name": {"renamed old"}, "scopes": {"kyt.read prices.read"}, "expires_at": {date}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("edit the old key's name: %d\n%s", p.Status, p.Body)
	}
	p = c.post("/dashboard/keys/"+id, url.Values{"name": {"renamed old"}, "scopes": {"prices.read kyt.read"}, "expires_at": {date}})
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/keys/"+id+"?notice=unchanged" {
		t.Fatalf("edit without a change: %d %s", p.Status, p.Location)
	}
	if p := c.get(p.Location); !strings.Contains(p.Body, "Nothing was changed.") {
		t.Fatalf("no notice of no change:\n%s", p.Body)
	}
	n.clock.Advance(61 * time.Minute)
	if got := gatewayStatus(t, n, "/v1/prices", secret); got != 401 {
		t.Fatalf("old key after the grace: %d", got)
	}
	if got := gatewayStatus(t, n, "/v1/kyt/check", newSecret); got != 200 {
		t.Fatalf("new key after the grace: %d", got)
	}
	if p := c.get("/dashboard/keys"); !strings.Contains(p.Body, `class="badge expired"`) {
		t.Fatalf("old key not shown expired:\n%s", p.Body)
	}

	// Revoke: refused at once.
	p = c.post("/dashboard/keys/"+newID+"/revoke", nil)
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/keys?notice=revoked" {
		t.Fatalf("revoke: %d %s", p.Status, p.Location)
	}
	if got := gatewayStatus(t, n, "/v1/prices", newSecret); got != 401 {
		t.Fatalf("revoked key: %d", got)
	}
	p = c.get(p.Location)
	if !strings.Contains(p.Body, "The key was revoked.") || !strings.Contains(p.Body, `class="badge revoked"`) ||
		strings.Contains(p.Body, `action="/dashboard/keys/`+newID+`/revoke"`) {
		t.Fatalf("list after the revocation:\n%s", p.Body)
	}

	// A signing secret, an expiry, rotation at once.
	tomorrow := n.clock.Now().UTC().AddDate(0, 0, 2).Format("2006-01-02")
	p = c.post("/dashboard/keys", url.Values{"name": {"signer"}, "signing_secret": {"1"}, "signature_required": {"1"}, "expires_at": {tomorrow}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create with a signing secret: %d\n%s", p.Status, p.Body)
	}
	signing := keysPageFind(t, p.Body, reNewSigningSecret)
	signerID := keysPageFind(t, p.Body, reNewKeyID)
	if !strings.HasPrefix(signing, "tgs_") || !strings.Contains(p.Body, `data-copy="new-signing-secret"`) || !strings.Contains(p.Body, tomorrow+" 00:00 UTC") {
		t.Fatalf("signing secret page:\n%s", p.Body)
	}
	if p := c.get("/dashboard/keys"); strings.Contains(p.Body, signing) {
		t.Fatal("the list shows the signing secret")
	}
	p = c.post("/dashboard/keys/"+signerID+"/rotate", url.Values{"grace": {"now"}})
	if p.Status != 200 || !strings.Contains(p.Body, "revoked at once") || !strings.Contains(p.Body, `id="new-signing-secret"`) ||
		!strings.Contains(p.Body, tomorrow+" 00:00 UTC") {
		t.Fatalf("rotate at once: %d\n%s", p.Status, p.Body)
	}
	if p := c.post("/dashboard/keys/"+signerID+"/rotate", url.Values{"grace": {"1h"}}); p.Status != http.StatusConflict || !strings.Contains(p.Body, `role="alert"`) {
		t.Fatalf("rotate a revoked key: %d\n%s", p.Status, p.Body)
	}
	if p := c.get("/dashboard/keys/key_nope"); p.Status != http.StatusNotFound {
		t.Fatalf("unknown key: %d", p.Status)
	}
}

// The apps page: create (the secret shown once), rotate the secret, delete.
func TestDashboardApps(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "apps@example.com", "Apps Co")
	if p := c.get("/dashboard/apps"); p.Status != 200 || !strings.Contains(p.Body, `id="create-app"`) {
		t.Fatalf("apps page: %d\n%s", p.Status, p.Body)
	}
	p := c.post("/dashboard/apps", url.Values{"name": {"  "}, "allowed_scopes": {"kyt.read"}})
	if p.Status != http.StatusBadRequest || !regexp.MustCompile(`id="app-name"[^>]*aria-invalid="true"`).MatchString(p.Body) {
		t.Fatalf("bad app name: %d\n%s", p.Status, p.Body)
	}
	p = c.post("/dashboard/apps", url.Values{"name": {"prod-main"}, "allowed_scopes": {"kyt.read"}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create app: %d\n%s", p.Status, p.Body)
	}
	a := app{ID: keysPageFind(t, p.Body, reNewAppID), ClientID: keysPageFind(t, p.Body, reNewClientID), Secret: keysPageFind(t, p.Body, reNewClientSecret)}
	if strings.Count(p.Body, a.Secret) != 1 || !strings.Contains(p.Body, controlapi.ShownOnce) || !strings.Contains(p.Body, `data-copy="new-client-secret"`) {
		t.Fatalf("app creation page:\n%s", p.Body)
	}
	p = c.get("/dashboard/apps")
	if strings.Contains(p.Body, a.Secret) || !strings.Contains(p.Body, `id="apps-table"`) || !strings.Contains(p.Body, a.ClientID) {
		t.Fatalf("apps list:\n%s", p.Body)
	}
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"kyt.read"}}
	r := form(t, n.base+"/oauth/token", cc, a.ClientID, a.Secret)
	if r.Status != 200 {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	oldToken := r.json(t)["access_token"].(string)
	if r := do(t, "GET", n.base+"/v1/kyt/check", nil, bearer(oldToken)...); r.Status != 200 {
		t.Fatalf("token before the rotation: %d %s", r.Status, r.Body)
	}

	// A key tied to the app, created through the form's app select.
	if p := c.get("/dashboard/keys"); !strings.Contains(p.Body, `<option value="`+a.ID+`"`) {
		t.Fatalf("the app is not offered:\n%s", p.Body)
	}
	p = c.post("/dashboard/keys", url.Values{"name": {"app key"}, "app_id": {a.ID}})
	if p.Status != http.StatusCreated {
		t.Fatalf("key of the app: %d\n%s", p.Status, p.Body)
	}
	appKey := keysPageFind(t, p.Body, reNewKey)

	// Rotate the secret, refusing the tokens issued so far.
	p = c.post("/dashboard/apps/"+a.ID+"/rotate-secret", url.Values{"revoke_tokens": {"1"}})
	if p.Status != 200 {
		t.Fatalf("rotate secret: %d\n%s", p.Status, p.Body)
	}
	newSecret := keysPageFind(t, p.Body, reNewClientSecret)
	if newSecret == a.Secret || !strings.Contains(p.Body, controlapi.ShownOnce) || !strings.Contains(p.Body, "refused too") {
		t.Fatalf("rotation page:\n%s", p.Body)
	}
	if r := form(t, n.base+"/oauth/token", cc, a.ClientID, a.Secret); r.Status != 401 {
		t.Fatalf("token with the old secret: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/v1/kyt/check", nil, bearer(oldToken)...); r.Status != 401 {
		t.Fatalf("token issued before the rotation: %d %s", r.Status, r.Body)
	}
	if r := form(t, n.base+"/oauth/token", cc, a.ClientID, newSecret); r.Status != 200 {
		t.Fatalf("token with the new secret: %d %s", r.Status, r.Body)
	}
	if p := c.get("/dashboard/apps"); strings.Contains(p.Body, newSecret) {
		t.Fatal("the list shows the new secret")
	}

	// Delete: the secret, tokens and keys stop.
	p = c.post("/dashboard/apps/"+a.ID+"/delete", nil)
	if p.Status != http.StatusSeeOther || p.Location != "/dashboard/apps?notice=deleted" {
		t.Fatalf("delete: %d %s\n%s", p.Status, p.Location, p.Body)
	}
	if p := c.get(p.Location); strings.Contains(p.Body, a.ClientID) || !strings.Contains(p.Body, "The app was deleted.") {
		t.Fatalf("list after the deletion:\n%s", p.Body)
	}
	if r := form(t, n.base+"/oauth/token", cc, a.ClientID, newSecret); r.Status != 401 {
		t.Fatalf("token after the deletion: %d", r.Status)
	}
	if got := gatewayStatus(t, n, "/v1/prices", appKey); got != 401 {
		t.Fatalf("the app's key after the deletion: %d", got)
	}
	if p := c.post("/dashboard/apps/"+a.ID+"/delete", nil); p.Status != http.StatusNotFound {
		t.Fatalf("delete again: %d", p.Status)
	}
}

// A member sees the keys and apps, without forms, and cannot post them.
func TestDashboardKeysMember(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	c := dashLogin(t, n, "member@example.com", "Member Co")
	p := c.post("/dashboard/keys", url.Values{"name": {"made by the owner"}})
	if p.Status != http.StatusCreated {
		t.Fatalf("create: %d", p.Status)
	}
	id := keysPageFind(t, p.Body, reNewKeyID)
	if p := c.post("/dashboard/apps", url.Values{"name": {"ci-pipeline"}}); p.Status != http.StatusCreated {
		t.Fatalf("create app: %d", p.Status)
	}
	u := n.userByEmail("member@example.com")
	_, err := n.srv.Store().UpdateUser(context.Background(), u.ID, func(u store.User) (store.User, error) {
		u.Role = store.RoleMember
		return u, nil
	}, store.Actor{Type: store.ActorAdmin}.Entry(u.OrgID, "user.update", "user", u.ID, map[string]string{"role": "member"}))
	if err != nil {
		t.Fatal(err)
	}
	p = c.get("/dashboard/keys")
	if p.Status != 200 || !strings.Contains(p.Body, `data-key-id="`+id+`"`) {
		t.Fatalf("member's keys page: %d\n%s", p.Status, p.Body)
	}
	for _, s := range []string{`id="create-key"`, `class="revoke"`, `class="rotate"`, `method="post" action="/dashboard/keys`} {
		if strings.Contains(p.Body, s) {
			t.Errorf("member's keys page has %s", s)
		}
	}
	if p := c.get("/dashboard/keys/" + id); p.Status != 200 || strings.Contains(p.Body, `id="edit-key"`) {
		t.Errorf("member's key page: %d", p.Status)
	}
	if p := c.get("/dashboard/apps"); p.Status != 200 || strings.Contains(p.Body, `id="create-app"`) ||
		strings.Contains(p.Body, "rotate-secret") || !strings.Contains(p.Body, "ci-pipeline") {
		t.Errorf("member's apps page: %d\n%s", p.Status, p.Body)
	}
	for _, path := range []string{"/dashboard/keys", "/dashboard/keys/" + id, "/dashboard/keys/" + id + "/revoke", "/dashboard/keys/" + id + "/rotate", "/dashboard/apps"} {
		if p := c.post(path, url.Values{"name": {"x"}}); p.Status != http.StatusForbidden {
			t.Errorf("member POST %s: %d", path, p.Status)
		}
	}
}
