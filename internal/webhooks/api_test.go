package webhooks_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
	"github.com/tollgate/tollgate/internal/whsig"
)

// fakeAuth authorizes requests by their X-Test-Org header; X-Test-Scope
// "read" refuses writes with INSUFFICIENT_SCOPE. It records the write flag
// of each call.
type fakeAuth struct {
	mu     sync.Mutex
	writes []bool
}

func (f *fakeAuth) authorize(r *http.Request, write bool) (webhooks.Caller, error) {
	f.mu.Lock()
	f.writes = append(f.writes, write)
	f.mu.Unlock()
	org := r.Header.Get("X-Test-Org")
	if org == "" {
		return webhooks.Caller{}, apierror.ErrUnauthorized
	}
	if write && r.Header.Get("X-Test-Scope") == "read" {
		return webhooks.Caller{}, apierror.New(http.StatusForbidden, apierror.InsufficientScope, "this token lacks the webhook.write scope")
	}
	return webhooks.Caller{OrgID: org, Actor: actor}, nil
}

func (f *fakeAuth) last() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[len(f.writes)-1]
}

// client calls the API as an organization.
type client struct {
	t   *testing.T
	api http.Handler
	org string
	hdr map[string]string
}

// response is an API answer.
type response struct {
	status int
	header http.Header
	body   string
}

func (c client) do(method, path, body string) response {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.org != "" {
		req.Header.Set("X-Test-Org", c.org)
	}
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.api.ServeHTTP(w, req)
	return response{status: w.Code, header: w.Result().Header, body: w.Body.String()}
}

// decode decodes a JSON answer of the wanted status.
func (r response) decode(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.body), v); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
	}
}

// wantError checks an error answer.
func (r response) wantError(t *testing.T, status int, code apierror.Code, field string) {
	t.Helper()
	var body struct {
		Error struct {
			Code  apierror.Code `json:"code"`
			Field string        `json:"field"`
		} `json:"error"`
	}
	r.decode(t, status, &body)
	if body.Error.Code != code || body.Error.Field != field {
		t.Fatalf("error %s on %q, want %s on %q: %s", body.Error.Code, body.Error.Field, code, field, r.body)
	}
}

func TestAPI(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	auth := &fakeAuth{}
	api := webhooks.NewAPI(e.svc, auth.authorize, 64<<10)
	c := client{t: t, api: api, org: e.org}
	other := client{t: t, api: api, org: e.newOrg()}

	// Create: the secret, once.
	res := c.do("POST", "/api/v1/webhooks", `{"url":"`+rcv.url("/hook")+`","event_types":["apikey.created","*"],"description":"main"}`)
	var created webhooks.CreatedEndpoint
	res.decode(t, http.StatusCreated, &created)
	if !auth.last() {
		t.Error("create authorized as a read")
	}
	if res.header.Get("Location") != "/api/v1/webhooks/"+created.ID || created.Warning == "" ||
		strings.Join(created.EventTypes, ",") != "*" || created.Description != "main" || created.Disabled {
		t.Errorf("create: %s", res.body)
	}
	secret := created.Secret
	if _, err := whsig.ParseSecret(secret); err != nil {
		t.Fatalf("secret: %v", err)
	}
	if res.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q on an answer with a secret", res.header.Get("Cache-Control"))
	}
	path := "/api/v1/webhooks/" + created.ID

	// List and Get never show it.
	res = c.do("GET", "/api/v1/webhooks", "")
	var list webhooks.List[webhooks.Endpoint]
	res.decode(t, http.StatusOK, &list)
	if auth.last() {
		t.Error("list authorized as a write")
	}
	if len(list.Data) != 1 || list.Data[0].ID != created.ID || strings.Contains(res.body, secret) || strings.Contains(res.body, `"secret"`) {
		t.Errorf("list: %s", res.body)
	}
	res = c.do("GET", path, "")
	res.decode(t, http.StatusOK, nil)
	if strings.Contains(res.body, secret) || strings.Contains(res.body, `"secret"`) {
		t.Errorf("get shows the secret: %s", res.body)
	}
	for _, k := range []string{`"id"`, `"url"`, `"description"`, `"event_types"`, `"disabled"`, `"disabled_at":null`,
		`"consecutive_failures":0`, `"secret_rotating_until":null`, `"created_at":"2026-03-01T12:00:00Z"`, `"updated_at"`} {
		if !strings.Contains(res.body, k) {
			t.Errorf("get: no %s in %s", k, res.body)
		}
	}

	// Another organization sees nothing.
	for _, r := range []struct{ method, path, body string }{
		{"GET", path, ""}, {"PATCH", path, `{"description":"x"}`}, {"DELETE", path, ""},
		{"POST", path + "/rotate-secret", ""}, {"POST", path + "/test", ""},
	} {
		other.do(r.method, r.path, r.body).wantError(t, http.StatusNotFound, apierror.NotFound, "")
	}
	var otherList webhooks.List[webhooks.Endpoint]
	other.do("GET", "/api/v1/webhooks", "").decode(t, http.StatusOK, &otherList)
	if len(otherList.Data) != 0 {
		t.Errorf("another organization lists %d endpoints", len(otherList.Data))
	}
	c.do("GET", "/api/v1/webhooks/wh_nope", "").wantError(t, http.StatusNotFound, apierror.NotFound, "")

	// PATCH validation.
	for _, p := range []struct{ body, field string }{
		{`{"url":"http://hooks.example.com/"}`, "url"},
		{`{"url":"ftp://hooks.example.com/"}`, "url"},
		{`{"url":null}`, "url"},
		{`{"event_types":[]}`, "event_types"},
		{`{"event_types":["apikey.made"]}`, "event_types"},
		{`{"event_types":"apikey.created"}`, "event_types"},
		{`{"enabled":null}`, "enabled"},
		{`{"enabled":"yes"}`, "enabled"},
		{`{"description":"` + strings.Repeat("d", 257) + `"}`, "description"},
		{`{"secret":"whsec_x"}`, "secret"},
		{`{}`, ""},
		{`{"description":"a"} {}`, ""},
	} {
		c.do("PATCH", path, p.body).wantError(t, http.StatusBadRequest, apierror.BadRequest, p.field)
	}
	var updated webhooks.Endpoint
	c.do("PATCH", path, `{"description":null,"enabled":false}`).decode(t, http.StatusOK, &updated)
	if !updated.Disabled || updated.DisabledReason != webhooks.ReasonOperator || updated.Description != "" {
		t.Errorf("patch: %+v", updated)
	}
	c.do("PATCH", path, `{"enabled":true,"event_types":["webhook.endpoint.disabled","apikey.created"]}`).decode(t, http.StatusOK, &updated)
	if updated.Disabled || strings.Join(updated.EventTypes, ",") != "apikey.created,webhook.endpoint.disabled" {
		t.Errorf("patch: %+v", updated)
	}

	// Rotate.
	res = c.do("POST", path+"/rotate-secret", "")
	var rotated webhooks.RotatedSecret
	res.decode(t, http.StatusOK, &rotated)
	wantExpiry := t0.Add(webhooks.DefaultSecretGrace)
	if rotated.Secret == secret || rotated.PreviousSecretExpiresAt == nil || !rotated.PreviousSecretExpiresAt.Equal(wantExpiry) ||
		rotated.SecretRotatingUntil == nil || rotated.Warning == "" {
		t.Errorf("rotate: %s", res.body)
	}
	c.do("POST", path+"/rotate-secret", `{"revoke":true}`).wantError(t, http.StatusBadRequest, apierror.BadRequest, "revoke")
	var got webhooks.Endpoint
	c.do("GET", path, "").decode(t, http.StatusOK, &got)
	if got.SecretRotatingUntil == nil || !got.SecretRotatingUntil.Equal(wantExpiry) {
		t.Errorf("secret_rotating_until: %v", got.SecretRotatingUntil)
	}

	// Test → delivered.
	var test webhooks.Delivery
	c.do("POST", path+"/test", "{}").decode(t, http.StatusAccepted, &test)
	if test.EventType != webhooks.EventTest || test.Status != "pending" || test.EndpointID != created.ID || test.AttemptCount != 0 {
		t.Errorf("test: %+v", test)
	}
	e.deliverDue(1)
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].header.Get(whsig.HeaderID) != test.EventID {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	for _, s := range []string{secret, rotated.Secret} {
		if err := whsig.Verify(reqs[0].header, reqs[0].body, key(t, s), e.clock.Now(), 0); err != nil {
			t.Errorf("test delivery: %v", err)
		}
	}

	// Deliveries: two more events, then pages of one.
	for range 2 {
		e.clock.Advance(time.Second)
		e.emit(webhooks.EventAPIKeyCreated, map[string]int{"n": 1})
	}
	e.deliverDue(2)
	var page webhooks.DeliveryPage
	c.do("GET", path+"/deliveries", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 3 || page.NextBefore != nil || page.Data[2].ID != test.ID {
		t.Fatalf("deliveries: %+v", page)
	}
	var ids []string
	before := ""
	for range 4 {
		q := path + "/deliveries?limit=1"
		if before != "" {
			q += "&before=" + before
		}
		var p webhooks.DeliveryPage
		c.do("GET", q, "").decode(t, http.StatusOK, &p)
		for _, d := range p.Data {
			ids = append(ids, d.ID)
		}
		if p.NextBefore == nil {
			break
		}
		before = *p.NextBefore
	}
	if len(ids) != 3 || ids[0] != page.Data[0].ID || ids[2] != test.ID {
		t.Errorf("pages of one: %v", ids)
	}
	c.do("GET", path+"/deliveries?status=pending", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 0 {
		t.Errorf("pending deliveries: %+v", page.Data)
	}
	for _, q := range []struct{ query, field string }{
		{"status=done", "status"}, {"limit=0", "limit"}, {"limit=101", "limit"}, {"limit=x", "limit"},
		{"before=dlv_nope", "before"}, {"before=" + test.EventID, "before"}, {"limit=1&limit=2", "limit"}, {"page=2", "page"},
	} {
		c.do("GET", path+"/deliveries?"+q.query, "").wantError(t, http.StatusBadRequest, apierror.BadRequest, q.field)
	}
	// Another organization's endpoint is not found, cursor or not (see
	// TestAnotherOrganizationsIDs).
	other.do("GET", path+"/deliveries?before="+test.ID, "").wantError(t, http.StatusNotFound, apierror.NotFound, "")

	// One delivery, with its attempts and payload.
	dpath := path + "/deliveries/" + test.ID
	var detail webhooks.DeliveryDetail
	res = c.do("GET", dpath, "")
	res.decode(t, http.StatusOK, &detail)
	if detail.Status != "succeeded" || len(detail.Attempts) != 1 || !detail.Attempts[0].Succeeded ||
		detail.Attempts[0].StatusCode == nil || *detail.Attempts[0].StatusCode != 200 || string(detail.Payload) != string(reqs[0].body) ||
		detail.LastStatusCode == nil || *detail.LastStatusCode != 200 || detail.FinishedAt == nil {
		t.Errorf("delivery: %s", res.body)
	}
	other.do("GET", dpath, "").wantError(t, http.StatusNotFound, apierror.NotFound, "")
	c.do("GET", path+"/deliveries/dlv_nope", "").wantError(t, http.StatusNotFound, apierror.NotFound, "")

	// Redeliver.
	var again webhooks.Delivery
	c.do("POST", dpath+"/redeliver", "").decode(t, http.StatusAccepted, &again)
	if again.RedeliveryOf != test.ID || again.EventID != test.EventID || again.Status != "pending" {
		t.Errorf("redeliver: %+v", again)
	}
	c.do("POST", path+"/deliveries/"+again.ID+"/redeliver", "").wantError(t, http.StatusConflict, apierror.Conflict, "")
	other.do("POST", dpath+"/redeliver", "").wantError(t, http.StatusNotFound, apierror.NotFound, "")
	e.deliverDue(1)
	if reqs := rcv.requests(); len(reqs) != 4 || reqs[3].header.Get(whsig.HeaderID) != test.EventID {
		t.Errorf("redelivery: receiver got %d requests", len(reqs))
	}

	// The authorize function's refusals pass through.
	ro := client{t: t, api: api, org: e.org, hdr: map[string]string{"X-Test-Scope": "read"}}
	ro.do("GET", path, "").decode(t, http.StatusOK, nil)
	ro.do("DELETE", path, "").wantError(t, http.StatusForbidden, apierror.InsufficientScope, "")
	ro.do("POST", "/api/v1/webhooks", `{"url":"https://a.example.com/","event_types":["*"]}`).
		wantError(t, http.StatusForbidden, apierror.InsufficientScope, "")
	client{t: t, api: api}.do("GET", "/api/v1/webhooks", "").wantError(t, http.StatusUnauthorized, apierror.Unauthorized, "")

	// Routing errors.
	c.do("GET", "/api/v1/webhooks/"+created.ID+"/nope", "").wantError(t, http.StatusNotFound, apierror.NotFound, "")
	res = c.do("PUT", path, `{}`)
	res.wantError(t, http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "")
	if allow := res.header.Get("Allow"); allow != "GET, PATCH, DELETE" {
		t.Errorf("Allow: %q", allow)
	}

	// Create errors.
	for _, p := range []struct{ body, field string }{
		{`{"url":"http://a.example.com/","event_types":["*"]}`, "url"},
		{`{"url":"https://a.example.com/"}`, "event_types"},
		{`{"url":"https://a.example.com/","event_types":["*"],"secret":"whsec_mine"}`, "secret"},
		{`not json`, ""},
	} {
		c.do("POST", "/api/v1/webhooks", p.body).wantError(t, http.StatusBadRequest, apierror.BadRequest, p.field)
	}
	req := httptest.NewRequest("POST", "/api/v1/webhooks", strings.NewReader(`{}`))
	req.Header.Set("X-Test-Org", e.org)
	w := httptest.NewRecorder()
	api.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("create without a JSON content type: %d", w.Code)
	}

	// Delete.
	var deleted webhooks.Deleted
	c.do("DELETE", path, "").decode(t, http.StatusOK, &deleted)
	if !deleted.Deleted || deleted.ID != created.ID {
		t.Errorf("delete: %+v", deleted)
	}
	c.do("GET", path, "").wantError(t, http.StatusNotFound, apierror.NotFound, "")
	// Its delivery log stays.
	c.do("GET", path+"/deliveries", "").decode(t, http.StatusOK, &page)
	if len(page.Data) != 4 {
		t.Errorf("delivery log of a deleted endpoint: %d deliveries", len(page.Data))
	}
}

// The audit log records who changed endpoints, never their secrets.
func TestAudit(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, secret := e.create("https://hooks.example.com/", webhooks.AllEvents)
	e.clock.Advance(time.Second) // the audit log is newest first
	s2, _, err := e.svc.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := e.svc.Delete(ctx, e.org, ep.ID, actor); err != nil {
		t.Fatal(err)
	}
	entries, err := e.store.ListAudit(ctx, store.AuditFilter{OrgID: e.org})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range entries {
		if a.TargetID != ep.ID {
			continue
		}
		actions = append(actions, a.Action)
		if a.ActorID != actor.ID || a.IP != actor.IP {
			t.Errorf("audit entry %+v", a)
		}
		if s := fmt.Sprint(a.Details); strings.Contains(s, secret) || strings.Contains(s, s2) || strings.Contains(s, "whsec_") {
			t.Errorf("audit entry %s holds a secret", a.Action)
		}
	}
	if strings.Join(actions, ",") != "webhook.delete,webhook.rotate_secret,webhook.create" {
		t.Errorf("audit actions %v", actions)
	}
}

// GET /api/v1/webhooks/{id} and the list show each endpoint's health: a
// failing one is "failing" (not merely enabled), since when, with its last
// error, its backlog and when it will be disabled; a disabled one says why.
func TestAPIHealth(t *testing.T) {
	rcv := newReceiver(t, failing)
	e := newEnv(t, func(o *webhooks.Options) { o.Jitter = -1 })
	api := webhooks.NewAPI(e.svc, (&fakeAuth{}).authorize, 64<<10)
	c := client{t: t, api: api, org: e.org}
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	path := "/api/v1/webhooks/" + ep.ID

	res := c.do("GET", path, "")
	res.decode(t, http.StatusOK, nil)
	for _, k := range []string{`"status":"healthy"`, `"health":{"status":"healthy","summary":"Healthy: nothing delivered yet.",` +
		`"failing_since":null,"consecutive_failures":0,"disable_at":null,"disabled_at":null,"last_success_at":null,` +
		`"last_failure":null,"pending_deliveries":0,"next_attempt_at":null}`} {
		if !strings.Contains(res.body, k) {
			t.Errorf("healthy: no %s in %s", k, res.body)
		}
	}

	e.emit(webhooks.EventAPIKeyCreated, nil)
	e.deliverDue(1)
	res = c.do("GET", path, "")
	res.decode(t, http.StatusOK, nil)
	want := `"status":"failing","disabled":false,"disabled_at":null,"consecutive_failures":1,` +
		`"health":{"status":"failing","summary":"Failing since 2026-03-01T12:00:00Z (1 failed attempt; last error: HTTP 500); ` +
		`disabled at 2026-03-04T12:00:00Z or later if it keeps failing.","failing_since":"2026-03-01T12:00:00Z",` +
		`"consecutive_failures":1,"disable_at":"2026-03-04T12:00:00Z","disabled_at":null,"last_success_at":null,` +
		`"last_failure":{"at":"2026-03-01T12:00:00Z","status_code":500,"error":"HTTP 500"},"pending_deliveries":1,` +
		`"next_attempt_at":"2026-03-01T12:00:05Z"}`
	if !strings.Contains(res.body, want) {
		t.Errorf("failing:\n got %s\nwant …%s…", res.body, want)
	}
	var list webhooks.List[webhooks.Endpoint]
	c.do("GET", "/api/v1/webhooks", "").decode(t, http.StatusOK, &list)
	if len(list.Data) != 1 || list.Data[0].Status != webhooks.StatusFailing || list.Data[0].Health.PendingDeliveries != 1 {
		t.Errorf("list: %+v", list.Data)
	}

	c.do("PATCH", path, `{"enabled":false}`).decode(t, http.StatusOK, nil)
	res = c.do("GET", path, "")
	res.decode(t, http.StatusOK, nil)
	for _, k := range []string{`"status":"disabled"`, `"disabled_reason":"operator"`,
		`"summary":"Disabled by a user at 2026-03-01T12:00:00Z; 1 delivery waits for it to be enabled."`,
		`"pending_deliveries":1,"next_attempt_at":null`} {
		if !strings.Contains(res.body, k) {
			t.Errorf("disabled: no %s in %s", k, res.body)
		}
	}
	// Enabling an endpoint enabled already keeps its failing run.
	c.do("PATCH", path, `{"enabled":true}`).decode(t, http.StatusOK, nil)
	e.clock.Advance(5 * time.Second)
	e.deliverDue(1)
	var got webhooks.Endpoint
	c.do("PATCH", path, `{"enabled":true}`).decode(t, http.StatusOK, &got)
	if got.Status != webhooks.StatusFailing || got.ConsecutiveFailures != 1 || !got.Health.FailingSince.Equal(e.clock.Now()) {
		t.Errorf("failing endpoint after enabled:true: %+v", got.Health)
	}
}
