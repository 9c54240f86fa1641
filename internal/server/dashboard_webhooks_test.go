package server

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
	"github.com/tollgate/tollgate/internal/whsig"
)

var (
	reNewSecret     = regexp.MustCompile(`<code id="new-webhook-secret">(whsec_[^<]+)</code>`)
	reRotatedSecret = regexp.MustCompile(`<code id="rotated-webhook-secret">(whsec_[^<]+)</code>`)
	reEndpointLink  = regexp.MustCompile(`href="/dashboard/webhooks/(wh_[0-9a-z]+)"`)
	reRedeliver     = regexp.MustCompile(`action="/dashboard/webhooks/wh_[0-9a-z]+/deliveries/(dlv_[0-9a-z]+)/redeliver"`)
)

// waitPage fetches path until its body passes ok, for up to 15 seconds (the
// dispatcher records attempts just after the receiver has them).
func waitPage(t *testing.T, c *dashClient, path string, ok func(string) bool) page {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(25 * time.Millisecond) {
		p := c.get(path)
		if p.Status == http.StatusOK && ok(p.Body) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d, never as expected:\n%s", path, p.Status, p.Body)
		}
	}
}

// shows reports whether a page shows text, escaped or not.
func shows(body, text string) bool {
	return strings.Contains(html.UnescapeString(body), text)
}

// verifies reports whether the delivery is signed with secret.
func verifies(t *testing.T, d delivered, secret string) bool {
	t.Helper()
	k, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return whsig.Verify(d.header, d.body, k, time.Now(), 5*time.Minute) == nil
}

// The webhooks pages: create an endpoint (its secret shown once), send a
// test event to a real receiver and see it in the delivery log, redeliver
// it, rotate the secret, edit the endpoint, delete it; CSRF; escaping.
func TestDashboardWebhooks(t *testing.T) {
	rc := newReceiver(t)
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL)+"webhooks: {allow_private_networks: true, allow_http: true}\n", nil)
	c := dashLogin(t, n, "dash-hooks@example.com", "Hooks Co")

	p := c.get("/dashboard/webhooks")
	if p.Status != 200 || !strings.Contains(p.Body, "No webhook endpoints yet") || !strings.Contains(p.Body, `id="create-webhook"`) {
		t.Fatalf("webhooks page: %d\n%s", p.Status, p.Body)
	}
	for _, typ := range append(webhooks.EventTypes(), "*") {
		if !strings.Contains(p.Body, `name="event_types" value="`+typ+`"`) {
			t.Errorf("no checkbox for event type %s", typ)
		}
	}
	if !strings.Contains(p.Body, "<legend>Event types</legend>") || !strings.Contains(p.Body, `<label for="create-url">`) {
		t.Errorf("create form lacks its labels or legend")
	}

	// CSRF: a forged token creates nothing.
	hookURL := rc.URL + "/hooks?tag=<b>&x='y'"
	form := url.Values{"url": {hookURL}, "event_types": {"apikey.created", "security.alert"}, "description": {"ops <team>"}}
	forged := url.Values{"csrf": {"forged"}}
	for k, v := range form {
		forged[k] = v
	}
	if p := c.post("/dashboard/webhooks", forged); p.Status != http.StatusForbidden {
		t.Fatalf("create with a forged CSRF token: %d", p.Status)
	}
	if p := c.get("/dashboard/webhooks"); !strings.Contains(p.Body, "No webhook endpoints yet") {
		t.Fatal("an endpoint was created without the CSRF token")
	}

	// The service's validation messages, the input kept.
	p = c.post("/dashboard/webhooks", url.Values{"url": {rc.URL + "/kept"}, "description": {"kept"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "must list at least one event type") ||
		!strings.Contains(p.Body, `value="`+rc.URL+`/kept"`) || !strings.Contains(p.Body, `aria-invalid="true"`) {
		t.Fatalf("create without event types: %d\n%s", p.Status, p.Body)
	}
	p = c.post("/dashboard/webhooks", url.Values{"url": {"ftp://example.com/x"}, "event_types": {"apikey.created"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `role="alert"`) ||
		!strings.Contains(p.Body, `value="apikey.created" checked`) {
		t.Fatalf("create with an ftp URL: %d\n%s", p.Status, p.Body)
	}

	// Created: the secret shown once.
	p = c.post("/dashboard/webhooks", form)
	if p.Status != http.StatusCreated {
		t.Fatalf("create: %d\n%s", p.Status, p.Body)
	}
	m := reNewSecret.FindStringSubmatch(p.Body)
	if m == nil || !strings.Contains(p.Body, webhooks.ShownOnce) || !strings.Contains(p.Body, `data-copy="new-webhook-secret"`) {
		t.Fatalf("create shows no secret, warning or copy button:\n%s", p.Body)
	}
	secret := html.UnescapeString(m[1]) // html/template writes + as &#43;
	if strings.Contains(p.Body, "<b>") || strings.Contains(p.Body, "<team>") || !strings.Contains(p.Body, "ops &lt;team&gt;") {
		t.Errorf("URL or description not escaped:\n%s", p.Body)
	}
	m = reEndpointLink.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no link to the endpoint:\n%s", p.Body)
	}
	id := m[1]
	ep := "/dashboard/webhooks/" + id
	e, err := n.srv.Store().GetWebhookEndpoint(context.Background(), id)
	if err != nil || !strings.Contains(e.URL, "tag=") {
		t.Fatalf("stored endpoint: %+v %v", e, err)
	}

	p = c.get("/dashboard/webhooks")
	if p.Status != 200 || !strings.Contains(p.Body, `id="webhooks-table"`) || !strings.Contains(p.Body, id) || shows(p.Body, secret) {
		t.Fatalf("list: %d, table, endpoint or no secret:\n%s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, `<span class="badge active">healthy</span>`) {
		t.Errorf("a new endpoint is not healthy in the list:\n%s", p.Body)
	}
	if strings.Contains(p.Body, "<b>") || strings.Contains(p.Body, "x='y'") || !strings.Contains(p.Body, "&lt;b&gt;") {
		t.Errorf("URL not escaped in the list:\n%s", p.Body)
	}
	p = c.get(ep)
	if p.Status != 200 || shows(p.Body, secret) || !strings.Contains(p.Body, "No deliveries yet") ||
		!strings.Contains(p.Body, `id="edit-webhook"`) || strings.Contains(p.Body, "<b>") {
		t.Fatalf("endpoint page: %d\n%s", p.Status, p.Body)
	}
	if strings.Contains(c.get("/dashboard/webhooks?done=%3Cscript%3E").Body, "<script>alert") {
		t.Error("a notice echoes the URL")
	}

	// A test event reaches the receiver, signed, and shows in the log.
	if p := c.post(ep+"/test", nil); p.Status != http.StatusSeeOther || p.Location != ep+"?done=test" {
		t.Fatalf("test: %d %s %s", p.Status, p.Location, p.Body)
	}
	d := rc.next(t, "webhook.test")
	if !verifies(t, d, secret) {
		t.Error("the test delivery is not signed with the secret shown")
	}
	p = waitPage(t, c, ep+"?done=test", func(b string) bool { return strings.Contains(b, `<span class="badge ok">succeeded</span>`) })
	if !strings.Contains(p.Body, `id="deliveries-table"`) || !strings.Contains(p.Body, "webhook.test") ||
		!strings.Contains(p.Body, "HTTP 204") || !strings.Contains(p.Body, "A test event was queued") {
		t.Fatalf("delivery log:\n%s", p.Body)
	}

	// Redeliver it: the same event again, a new delivery in the log.
	m = reRedeliver.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no redeliver form:\n%s", p.Body)
	}
	if p := c.post(ep+"/deliveries/"+m[1]+"/redeliver", nil); p.Status != http.StatusSeeOther || p.Location != ep+"?done=redelivered" {
		t.Fatalf("redeliver: %d %s %s", p.Status, p.Location, p.Body)
	}
	if d2 := rc.next(t, "webhook.test"); d2.header.Get("Webhook-Id") != d.header.Get("Webhook-Id") {
		t.Errorf("redelivery webhook-id %q, want %q", d2.header.Get("Webhook-Id"), d.header.Get("Webhook-Id"))
	}
	waitPage(t, c, ep, func(b string) bool { return strings.Count(b, `<span class="badge ok">succeeded</span>`) == 2 })
	if p := c.post(ep+"/deliveries/dlv_00000000000000000000000000/redeliver", nil); p.Status != http.StatusNotFound {
		t.Errorf("redeliver an unknown delivery: %d", p.Status)
	}
	if p := c.post(ep+"/deliveries/"+m[1]+"/redeliver", url.Values{"csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Errorf("redeliver with a forged CSRF token: %d", p.Status)
	}

	// Rotate: the new secret once; the old one keeps signing for a while.
	p = c.post(ep+"/rotate-secret", nil)
	m = reRotatedSecret.FindStringSubmatch(p.Body)
	if p.Status != 200 || m == nil || html.UnescapeString(m[1]) == secret || !strings.Contains(p.Body, "keeps signing deliveries") ||
		!strings.Contains(p.Body, webhooks.ShownOnce) {
		t.Fatalf("rotate: %d\n%s", p.Status, p.Body)
	}
	newSecret := html.UnescapeString(m[1])
	if p := c.get(ep); shows(p.Body, newSecret) || !strings.Contains(p.Body, "still signs until") {
		t.Errorf("the endpoint page after the rotation shows the secret, or not the grace:\n%s", p.Body)
	}
	if p := c.post(ep+"/test", nil); p.Status != http.StatusSeeOther {
		t.Fatalf("test: %d", p.Status)
	}
	d = rc.next(t, "webhook.test")
	if !verifies(t, d, secret) || !verifies(t, d, newSecret) {
		t.Error("during the grace, a delivery is not signed with both secrets")
	}

	// Edit: the service's messages; then all event types, disabled.
	p = c.post(ep+"/edit", url.Values{"url": {"not a url"}, "event_types": {"apikey.created"}, "enabled": {"true"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `value="not a url"`) || !strings.Contains(p.Body, `role="alert"`) {
		t.Fatalf("edit with a bad URL: %d\n%s", p.Status, p.Body)
	}
	p = c.post(ep+"/edit", url.Values{"url": {e.URL}, "event_types": {"*"}, "description": {"edited"}})
	if p.Status != http.StatusSeeOther || p.Location != ep+"?done=updated" {
		t.Fatalf("edit: %d %s %s", p.Status, p.Location, p.Body)
	}
	e, err = n.srv.Store().GetWebhookEndpoint(context.Background(), id)
	if err != nil || !slices.Equal(e.EventTypes, []string{"*"}) || e.Description != "edited" || !e.Disabled || e.DisabledReason != webhooks.ReasonOperator {
		t.Fatalf("after the edit: %+v %v", e, err)
	}
	p = c.get(ep + "?done=updated")
	if !strings.Contains(p.Body, "The endpoint was updated.") || !strings.Contains(p.Body, `<span class="badge disabled">disabled</span>`) ||
		!strings.Contains(p.Body, "by a user") {
		t.Errorf("endpoint page after the edit:\n%s", p.Body)
	}
	p = c.post(ep+"/edit", url.Values{"url": {e.URL}, "event_types": {"apikey.revoked", "apikey.created"}, "description": {"edited"}, "enabled": {"true"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("edit again: %d %s", p.Status, p.Body)
	}
	if e, _ = n.srv.Store().GetWebhookEndpoint(context.Background(), id); !slices.Equal(e.EventTypes, []string{"apikey.created", "apikey.revoked"}) || e.Disabled {
		t.Errorf("after the second edit: %+v", e)
	}

	// Delete.
	if p := c.post(ep+"/delete", url.Values{"csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Errorf("delete with a forged CSRF token: %d", p.Status)
	}
	if p := c.post(ep+"/delete", nil); p.Status != http.StatusSeeOther || p.Location != "/dashboard/webhooks?done=deleted" {
		t.Fatalf("delete: %d %s %s", p.Status, p.Location, p.Body)
	}
	if p := c.get("/dashboard/webhooks?done=deleted"); !strings.Contains(p.Body, "No webhook endpoints yet") || !strings.Contains(p.Body, "The endpoint was deleted.") {
		t.Errorf("list after the deletion:\n%s", p.Body)
	}
	if p := c.get(ep); p.Status != http.StatusNotFound {
		t.Errorf("the deleted endpoint's page: %d", p.Status)
	}

	// Another organization's endpoint is not found.
	other := dashLogin(t, n, "other-hooks@example.com", "Other Co")
	p = other.post("/dashboard/webhooks", url.Values{"url": {rc.URL}, "event_types": {"*"}})
	id2 := reEndpointLink.FindStringSubmatch(p.Body)
	if p.Status != http.StatusCreated || id2 == nil {
		t.Fatalf("create in another organization: %d", p.Status)
	}
	if p := c.get("/dashboard/webhooks/" + id2[1]); p.Status != http.StatusNotFound {
		t.Errorf("another organization's endpoint: %d", p.Status)
	}
	if p := c.post("/dashboard/webhooks/"+id2[1]+"/delete", nil); p.Status != http.StatusNotFound {
		t.Errorf("delete another organization's endpoint: %d", p.Status)
	}

	// A member sees the endpoints but changes nothing.
	member := demote(t, n, "other-hooks@example.com")
	p = member.get("/dashboard/webhooks")
	if p.Status != 200 || !strings.Contains(p.Body, id2[1]) || strings.Contains(p.Body, `id="create-webhook"`) {
		t.Fatalf("a member's webhooks page: %d\n%s", p.Status, p.Body)
	}
	p = member.get("/dashboard/webhooks/" + id2[1])
	if p.Status != 200 || strings.Contains(p.Body, `id="edit-webhook"`) || strings.Contains(p.Body, `id="delete-webhook"`) {
		t.Fatalf("a member's endpoint page: %d\n%s", p.Status, p.Body)
	}
	for _, path := range []string{"/dashboard/webhooks", "/dashboard/webhooks/" + id2[1] + "/delete", "/dashboard/webhooks/" + id2[1] + "/rotate-secret"} {
		if p := member.post(path, url.Values{"url": {rc.URL}, "event_types": {"*"}}); p.Status != http.StatusForbidden {
			t.Errorf("a member's POST %s: %d", path, p.Status)
		}
	}
	if _, err := n.srv.Store().GetWebhookEndpoint(context.Background(), id2[1]); err != nil {
		t.Errorf("the member deleted the endpoint: %v", err)
	}
	if p := member.get("/dashboard/security"); p.Status != 200 || !strings.Contains(p.Body, "Only the organization's owners and admins") {
		t.Errorf("a member's security page: %d\n%s", p.Status, p.Body)
	}
}

// demote makes the user of email a member of its organization and logs
// it in again.
func demote(t *testing.T, n *node, email string) *dashClient {
	t.Helper()
	u := n.userByEmail(email)
	_, err := n.srv.Store().UpdateUser(context.Background(), u.ID, func(u store.User) (store.User, error) {
		u.Role = store.RoleMember
		return u, nil
	}, store.Actor{Type: store.ActorSystem}.Entry(u.OrgID, "user.update", "user", u.ID, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := newDashClient(t, n)
	c.get("/dashboard/login")
	if p := c.post("/dashboard/login", url.Values{"email": {email}, "password": {"correct horse battery"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", p.Status, p.Body)
	}
	return c
}

// The security page: no alerts, then a refresh-token reuse and a user
// disabled by the operator.
func TestDashboardSecurity(t *testing.T) {
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	const email = "dash-sec@example.com"
	c := dashLogin(t, n, email, "Sec Co")
	p := c.get("/dashboard/security")
	if p.Status != 200 || !strings.Contains(p.Body, "No security alerts.") || strings.Contains(p.Body, `id="alerts-table"`) {
		t.Fatalf("security page: %d\n%s", p.Status, p.Body)
	}

	// A refresh token used twice through the control API.
	login := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": email, "password": "correct horse battery"}).json(t)
	refresh := map[string]string{"refresh_token": login["refresh_token"].(string)}
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", refresh); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	// Again, by another client (the same one may repeat it within
	// auth.refresh_reuse_grace, as concurrent tabs do).
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", refresh, "User-Agent", "another client"); r.Status != 401 {
		t.Fatalf("refresh again: %d %s", r.Status, r.Body)
	}
	p = c.get("/dashboard/security")
	if p.Status != 200 || !strings.Contains(p.Body, `id="alerts-table"`) || !strings.Contains(p.Body, "Session token reused") ||
		!strings.Contains(p.Body, email) || !strings.Contains(p.Body, "<code>127.0.0.1</code>") || strings.Contains(p.Body, "No security alerts.") ||
		!strings.Contains(p.Body, `<th scope="col">Client IP</th>`) || !strings.Contains(p.Body, `<span class="stat">1</span> <span class="muted">alert in the last 7 days`) {
		t.Fatalf("security page after a token reuse: %d\n%s", p.Status, p.Body)
	}
	if p := c.get("/dashboard/overview"); !strings.Contains(p.Body, "1 security alert in the last 7 days") {
		t.Errorf("the overview does not point to the alert:\n%s", p.Body)
	}

	// The operator disables the user, then activates it again.
	n.clock.Advance(time.Minute)
	if r := n.adminDo("POST", "/admin/v1/users/"+email+"/disable", nil); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if r := n.adminDo("POST", "/admin/v1/users/"+email+"/activate", nil); r.Status != 200 {
		t.Fatalf("activate: %d %s", r.Status, r.Body)
	}
	c = newDashClient(t, n)
	c.get("/dashboard/login")
	if p := c.post("/dashboard/login", url.Values{"email": {email}, "password": {"correct horse battery"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("login again: %d %s", p.Status, p.Body)
	}
	p = c.get("/dashboard/security")
	reuse, disabled := strings.Index(p.Body, "Session token reused"), strings.Index(p.Body, "User disabled")
	if p.Status != 200 || disabled < 0 || reuse < disabled || !strings.Contains(p.Body, "the operator, through the admin API") ||
		!strings.Contains(p.Body, `<span class="stat">2</span>`) {
		t.Fatalf("security page after the user was disabled (newest first): %d\n%s", p.Status, p.Body)
	}
	if p := c.get("/dashboard/security?before=yesterday"); p.Status != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d", p.Status)
	}
	if p := c.get("/dashboard/security?before=" + url.QueryEscape(n.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano))); p.Status != 200 ||
		!strings.Contains(p.Body, "No older security alerts.") {
		t.Errorf("alerts before an hour ago: %d\n%s", p.Status, p.Body)
	}
	// Many entries: the scan crosses pages of the audit log, one of them
	// between entries of the same instant, and the alerts come in pages.
	u := n.userByEmail(email)
	base := n.clock.Now().Add(time.Minute)
	want := map[string]bool{}
	const entries = 650
	for k := range entries {
		at := base.Add(time.Duration(entries-k) * time.Millisecond)
		if k >= 498 && k <= 502 {
			at = base.Add(time.Duration(entries-500) * time.Millisecond)
		}
		e := store.AuditEntry{Time: at, OrgID: u.OrgID, ActorType: store.ActorUser, ActorID: u.ID, Action: "user.login", TargetType: "user", TargetID: u.ID}
		if k%12 == 0 || k >= 499 && k <= 501 {
			sess := fmt.Sprintf("fam_test%03d", k)
			e.ActorType, e.ActorID, e.Action, e.Details = store.ActorAnon, "", "session.refresh_reuse", map[string]string{"session": sess}
			want[sess] = true
		}
		if err := n.srv.Store().AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	p = c.get("/dashboard/security")
	next := regexp.MustCompile(`href="/dashboard/security\?before=([^"]+)" rel="next"`).FindStringSubmatch(p.Body)
	if p.Status != 200 || next == nil || strings.Count(p.Body, "<tr>")-1 != 50 || !strings.Contains(p.Body, fmt.Sprintf(`<span class="stat">%d</span>`, len(want)+2)) {
		t.Fatalf("security page of many alerts: %d, %d rows\n%s", p.Status, strings.Count(p.Body, "<tr>")-1, p.Body)
	}
	p2 := c.get("/dashboard/security?before=" + html.UnescapeString(next[1]))
	if p2.Status != 200 || !strings.Contains(p2.Body, "Newest alerts") || strings.Contains(p2.Body, `rel="next"`) || strings.Contains(p2.Body, `id="recent-alerts"`) {
		t.Fatalf("older alerts: %d\n%s", p2.Status, p2.Body)
	}
	for sess := range want {
		if n := strings.Count(p.Body+p2.Body, sess+"<"); n != 1 {
			t.Errorf("alert of session %s shown %d times", sess, n)
		}
	}
	if !strings.Contains(p2.Body, "User disabled") {
		t.Error("the oldest alerts are not on the second page")
	}

	// Another organization has none.
	other := dashLogin(t, n, "other-sec@example.com", "Other Sec Co")
	if p := other.get("/dashboard/security"); !strings.Contains(p.Body, "No security alerts.") {
		t.Errorf("another organization sees alerts:\n%s", p.Body)
	}
}

// An endpoint whose deliveries fail is shown failing, list and page alike
// (never as a green "enabled"), since when, with its last error and when
// it will be disabled if it keeps failing.
func TestDashboardWebhookFailing(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "receiver down for maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(rcv.Close)
	n := start(t, dashYAML(t.TempDir(), newRecorder(t, nil).URL)+"webhooks: {allow_private_networks: true, allow_http: true}\n", nil)
	c := dashLogin(t, n, "failing-hooks@example.com", "Failing Co")
	p := c.post("/dashboard/webhooks", url.Values{"url": {rcv.URL + "/hook"}, "event_types": {"*"}})
	m := reEndpointLink.FindStringSubmatch(p.Body)
	if p.Status != http.StatusCreated || m == nil {
		t.Fatalf("create: %d\n%s", p.Status, p.Body)
	}
	ep := "/dashboard/webhooks/" + m[1]
	if p := c.post(ep+"/test", nil); p.Status != http.StatusSeeOther {
		t.Fatalf("test: %d %s", p.Status, p.Body)
	}
	p = waitPage(t, c, ep, func(b string) bool { return strings.Contains(b, `<span class="badge failing">failing</span>`) })
	for _, want := range []string{"HTTP 503: receiver down for maintenance", `<th scope="row">Failing since</th>`,
		"(1 failed attempt)", `<th scope="row">Disabled at</th>`, "or later, if it keeps failing", "the next attempt at",
		`id="webhook-health-summary">Failing since `} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("endpoint page lacks %q:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, `badge active`) {
		t.Errorf("a failing endpoint is shown green:\n%s", p.Body)
	}
	p = c.get("/dashboard/webhooks")
	if !strings.Contains(p.Body, `<span class="badge failing">failing</span>`) || strings.Contains(p.Body, `badge active`) ||
		!strings.Contains(p.Body, "HTTP 503") {
		t.Errorf("list of a failing endpoint:\n%s", p.Body)
	}
}
