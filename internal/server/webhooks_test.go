package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tollgate/tollgate/internal/whsig"
)

// receiver records the webhook deliveries it gets.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []delivered
	fresh chan struct{}
}

type delivered struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{fresh: make(chan struct{}, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		rc.mu.Lock()
		rc.got = append(rc.got, delivered{r.Header.Clone(), []byte(b.String())})
		rc.mu.Unlock()
		rc.fresh <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits for the delivery of an event of type typ.
func (rc *receiver) next(t *testing.T, typ string) delivered {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		rc.mu.Lock()
		for i, d := range rc.got {
			var ev struct{ Type string }
			if json.Unmarshal(d.body, &ev) == nil && ev.Type == typ {
				rc.got = append(rc.got[:i], rc.got[i+1:]...)
				rc.mu.Unlock()
				return d
			}
		}
		rc.mu.Unlock()
		select {
		case <-rc.fresh:
		case <-deadline:
			t.Fatalf("no %s delivery within 15s", typ)
		}
	}
}

// TestWebhooks: a dashboard user registers an endpoint (the secret shown
// once) and receives apikey.created and apikey.revoked, signed in both
// formats; an OAuth token needs webhook.read / webhook.write.
func TestWebhooks(t *testing.T) {
	backend := newRecorder(t, nil)
	rc := newReceiver(t)
	n := start(t, baseYAML(t.TempDir(), backend.URL)+"webhooks: {allow_private_networks: true, allow_http: true}\n", nil)
	token := n.account("hooks@example.com", "Hooks Co")

	r := do(t, "POST", n.base+"/api/v1/webhooks", map[string]any{
		"url": rc.URL + "/hooks", "event_types": []string{"apikey.created", "apikey.revoked"}, "description": "ops",
	}, bearer(token)...)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	created := r.json(t)
	secret, _ := created["secret"].(string)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || id == "" {
		t.Fatalf("create: %s", r.Body)
	}
	if r := do(t, "GET", n.base+"/api/v1/webhooks/"+id, nil, bearer(token)...); r.Status != 200 || strings.Contains(string(r.Body), secret) {
		t.Fatalf("get shows the secret or fails: %d %s", r.Status, r.Body)
	}

	_, keyID := n.createKey(token, nil)
	d := rc.next(t, "apikey.created")
	key, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := whsig.Verify(d.header, d.body, key, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("X-Webhook-Signature: %v", err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(d.body, d.header); err != nil {
		t.Errorf("the Standard Webhooks library refuses the delivery: %v", err)
	}
	var ev struct {
		ID, Type       string
		OrganizationID string `json:"organization_id"`
		Data           struct {
			APIKey struct{ ID, Prefix string } `json:"api_key"`
		}
	}
	if err := json.Unmarshal(d.body, &ev); err != nil || ev.Data.APIKey.ID != keyID || d.header.Get("Webhook-Id") == "" {
		t.Errorf("apikey.created: %s (%v)", d.body, err)
	}
	if strings.Contains(string(d.body), "tg_") && !strings.Contains(string(d.body), ev.Data.APIKey.Prefix) {
		t.Errorf("the event carries more than the key's prefix: %s", d.body)
	}

	if r := do(t, "DELETE", n.base+"/api/v1/apikeys/"+keyID, nil, bearer(token)...); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if d := rc.next(t, "apikey.revoked"); !strings.Contains(string(d.body), keyID) {
		t.Errorf("apikey.revoked: %s", d.body)
	}
	// The receiver has both; the dispatcher records the second attempt
	// just after.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r = do(t, "GET", n.base+"/api/v1/webhooks/"+id+"/deliveries", nil, bearer(token)...)
		if r.Status == 200 && strings.Count(string(r.Body), `"status":"succeeded"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: %d %s", r.Status, r.Body)
		}
	}

	// OAuth tokens: webhook.read reads, webhook.write writes.
	a := n.createApp(token, map[string]any{"allowed_scopes": []string{"webhook.read", "webhook.write", "kyt.read"}})
	readTok, writeTok, otherTok := n.accessToken(a, "webhook.read"), n.accessToken(a, "webhook.write"), n.accessToken(a, "kyt.read")
	if r := do(t, "GET", n.base+"/api/v1/webhooks", nil, bearer(readTok)...); r.Status != 200 || !strings.Contains(string(r.Body), id) {
		t.Errorf("webhook.read lists: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "POST", n.base+"/api/v1/webhooks/"+id+"/rotate-secret", nil, bearer(readTok)...), 403, "INSUFFICIENT_SCOPE")
	wantRefusal(t, do(t, "GET", n.base+"/api/v1/webhooks", nil, bearer(otherTok)...), 403, "INSUFFICIENT_SCOPE")
	r = do(t, "POST", n.base+"/api/v1/webhooks/"+id+"/rotate-secret", nil, bearer(writeTok)...)
	if r.Status != 200 || !strings.HasPrefix(r.json(t)["secret"].(string), "whsec_") {
		t.Fatalf("webhook.write rotates: %d %s", r.Status, r.Body)
	}
	newSecret := r.json(t)["secret"].(string)
	if r := do(t, "POST", n.base+"/api/v1/webhooks/"+id+"/test", nil, bearer(writeTok)...); r.Status != 202 {
		t.Fatalf("test: %d %s", r.Status, r.Body)
	}
	d = rc.next(t, "webhook.test")
	if sigs := strings.Fields(d.header.Get("Webhook-Signature")); len(sigs) != 2 {
		t.Errorf("during the rotation's grace, %d signatures: %v", len(sigs), sigs)
	}
	for _, s := range []string{secret, newSecret} {
		k, _ := whsig.ParseSecret(s)
		if err := whsig.Verify(d.header, d.body, k, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("secret %s…: %v", s[:10], err)
		}
	}
	wantRefusal(t, do(t, "GET", n.base+"/api/v1/webhooks", nil), 401, "UNAUTHORIZED")
}

// TestWebhookSSRF refuses endpoints on private addresses under the default
// policy.
func TestWebhookSSRF(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), backend.URL), nil)
	token := n.account("ssrf@example.com", "SSRF Co")
	for _, u := range []string{"http://example.com/hook", "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://[::1]/x"} {
		r := do(t, "POST", n.base+"/api/v1/webhooks", map[string]any{"url": u, "event_types": []string{"*"}}, bearer(token)...)
		wantRefusal(t, r, 400, "BAD_REQUEST")
	}
}

// TestWebhookEvents: the other events reach an endpoint subscribed to all:
// quota.threshold at 80% and quota.exhausted at 100% of the plan's quota,
// app.deleted, and security.alert when a refresh token is used twice.
func TestWebhookEvents(t *testing.T) {
	backend := newRecorder(t, nil)
	rc := newReceiver(t)
	yaml := baseYAML(t.TempDir(), backend.URL) + `webhooks: {allow_private_networks: true, allow_http: true}
plans: [{name: tiny, quota: {units: 5, period: day}}]
default_plan: tiny
`
	n := start(t, yaml, nil)
	token := n.account("events@example.com", "Events Co")
	if r := do(t, "POST", n.base+"/api/v1/webhooks", map[string]any{"url": rc.URL, "event_types": []string{"*"}}, bearer(token)...); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	key, _ := n.createKey(token, nil)
	for i := 1; i <= 6; i++ {
		r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
		if (i <= 5) != (r.Status == 200) {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	var q struct {
		Data struct {
			Plan      string
			UnitsUsed int64 `json:"units_used"`
			Percent   int64
		}
	}
	if err := json.Unmarshal(rc.next(t, "quota.threshold").body, &q); err != nil || q.Data.Plan != "tiny" || q.Data.UnitsUsed != 4 || q.Data.Percent != 80 {
		t.Errorf("quota.threshold: %+v %v", q, err)
	}
	if err := json.Unmarshal(rc.next(t, "quota.exhausted").body, &q); err != nil || q.Data.UnitsUsed != 5 || q.Data.Percent != 100 {
		t.Errorf("quota.exhausted: %+v %v", q, err)
	}

	a := n.createApp(token, nil)
	if r := do(t, "DELETE", n.base+"/api/v1/apps/"+a.ID, nil, bearer(token)...); r.Status != 200 {
		t.Fatalf("delete app: %d %s", r.Status, r.Body)
	}
	if d := rc.next(t, "app.deleted"); !strings.Contains(string(d.body), a.ClientID) {
		t.Errorf("app.deleted: %s", d.body)
	}

	login := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "events@example.com", "password": "correct horse battery"}).json(t)
	refresh := map[string]string{"refresh_token": login["refresh_token"].(string)}
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", refresh); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	// Again, by another client (the same one may repeat it within
	// auth.refresh_reuse_grace, as concurrent tabs do).
	if r := do(t, "POST", n.base+"/api/v1/auth/refresh", refresh, "User-Agent", "another client"); r.Status != 401 {
		t.Fatalf("refresh again: %d %s", r.Status, r.Body)
	}
	if d := rc.next(t, "security.alert"); !strings.Contains(string(d.body), "refresh_token_reuse") {
		t.Errorf("security.alert: %s", d.body)
	}
}
