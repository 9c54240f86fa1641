package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/testsvc"
	"github.com/tollgate/tollgate/sdk"
)

// echoBackend is a WebSocket upstream that echoes every message until the
// client goes away.
func echoBackend(t *testing.T) *recorder {
	return newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
}

// wsYAML is a node whose /v1/ routes lead to a WebSocket echo, with a cap of
// max sessions per credential, usage flushed at once, and the key and token
// caches long enough that only their invalidations can explain a refusal.
func wsYAML(t *testing.T, upstream string, max int) string {
	return baseYAML(t.TempDir(), upstream) + fmt.Sprintf(`auth:
  apikey_cache_ttl: 1h
  token_cache_ttl: 1h
  websocket: {max_sessions_per_credential: %d}
usage:
  flush_interval: 20ms
`, max)
}

// dialWS opens a WebSocket session through n with the given headers; it
// returns the connection, or the refusal's status and body.
func dialWS(t *testing.T, n *node, headers ...string) (*websocket.Conn, response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	c, resp, err := websocket.Dial(ctx, "ws://"+n.srv.Addr()+"/v1/stream", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		return nil, response{resp.StatusCode, resp.Header, body}
	}
	t.Cleanup(func() { c.CloseNow() })
	echo(t, c)
	return c, response{Status: http.StatusSwitchingProtocols}
}

// echo checks that a session carries a message both ways.
func echo(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo: %q, %v", msg, err)
	}
}

// waitClosed waits, with a generous deadline, for the gateway to close c: a
// read that fails other than by the deadline.
func waitClosed(t *testing.T, c *websocket.Conn, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			t.Fatalf("%s: the session is still open", what)
		}
		return
	}
}

// wsMetered waits for the usage event of a WebSocket session of the
// credential, read from the store (the organization may be disabled).
func wsMetered(t *testing.T, n *node, orgID, credentialID string) store.UsageEvent {
	t.Helper()
	var got store.UsageEvent
	waitFor(t, "the session's usage event", func() bool {
		events, err := n.srv.store.ListRequests(context.Background(), store.RequestFilter{OrgID: orgID, CredentialID: credentialID})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.WebSocket {
				got = e
				return true
			}
		}
		return false
	})
	if got.Status != http.StatusSwitchingProtocols || got.RequestBytes == 0 || got.ResponseBytes == 0 {
		t.Errorf("session event %+v: want 101 and the bytes of the echo", got)
	}
	return got
}

func orgOf(t *testing.T, n *node, email string) string {
	t.Helper()
	return n.userByEmail(email).OrgID
}

// TestWebSocketSessionCap: a credential holds at most
// auth.websocket.max_sessions_per_credential sessions; one more is refused
// with 429 RATE_LIMITED, reason too_many_sessions, before the upstream sees
// it; a session that ends frees its slot; another credential has its own.
func TestWebSocketSessionCap(t *testing.T) {
	be := echoBackend(t)
	n := start(t, wsYAML(t, be.URL, 2)+"plans:\n  - {name: metered, quota: {units: 1000, period: month}}\ndefault_plan: metered\n", nil)
	token := n.account("cap@example.com", "Cap")
	key, _ := n.createKey(token, nil)
	other, _ := n.createKey(token, nil)

	first, _ := dialWS(t, n, "X-API-KEY", key)
	dialWS(t, n, "X-API-KEY", key)
	upgrades := len(be.all())
	quotaUsed := func() float64 {
		return n.usage(token, "/api/v1/usage", url.Values{"granularity": {"hour"}})["plan"].(map[string]any)["quota_used"].(float64)
	}
	used := quotaUsed()
	if used != 2 {
		t.Fatalf("quota used by two sessions: %v, want 2", used)
	}
	_, r := dialWS(t, n, "X-API-KEY", key)
	if code, reason := r.errCode(t); r.Status != 429 || code != "RATE_LIMITED" || reason != "too_many_sessions" {
		t.Fatalf("third session: %d %s", r.Status, r.Body)
	}
	if len(be.all()) != upgrades {
		t.Error("the refused upgrade reached the upstream")
	}
	if got := quotaUsed(); got != used {
		t.Errorf("the refused session was charged: quota used %v, want %v", got, used)
	}
	dialWS(t, n, "X-API-KEY", other) // its own slots

	// Plain requests are not sessions: never capped.
	if r := do(t, "GET", n.base+"/v1/plain", nil, "X-API-KEY", key); r.Status == 429 {
		t.Fatalf("a plain request was refused by the session cap: %s", r.Body)
	}

	if err := first.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the closed session's slot freed", func() bool { return n.srv.sessions.Len() == 2 })
	dialWS(t, n, "X-API-KEY", key)
}

// TestWebSocketClosedWhenCredentialEnds: an open session is closed, both
// ways, when its key is revoked through the API, its credential, address or
// organization is banned through the admin API, its organization is
// disabled, its OAuth token or its app's tokens are revoked, its app is
// deleted, or its key expires; and it is metered all the same.
func TestWebSocketClosedWhenCredentialEnds(t *testing.T) {
	type env struct {
		n                *node
		token, key, id   string
		org              string
		app              app
		bearer           string
		clk              *clock.Fake
		conn             *websocket.Conn
		credentialOfConn string
	}
	keySession := func(e *env) { e.conn, _ = dialWS(t, e.n, "X-API-KEY", e.key); e.credentialOfConn = e.id }
	bearerSession := func(e *env) {
		e.conn, _ = dialWS(t, e.n, bearer(e.bearer)...)
		e.credentialOfConn = e.app.ClientID
	}
	ban := func(e *env, kind, id string) {
		r := e.n.adminDo("POST", "/admin/v1/bans", map[string]any{"kind": kind, "id": id, "duration": "10m"})
		if r.Status != 201 {
			t.Fatalf("ban: %d %s", r.Status, r.Body)
		}
	}
	cases := []struct {
		name string
		open func(*env)
		end  func(*env)
	}{
		{"key revoked through the API", keySession, func(e *env) {
			if r := do(t, "DELETE", e.n.base+"/api/v1/apikeys/"+e.id, nil, "Authorization", "Bearer "+e.token); r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
		}},
		{"key narrowed", keySession, func(e *env) {
			if r := do(t, "PATCH", e.n.base+"/api/v1/apikeys/"+e.id, map[string]any{"scopes": []string{"kyt.read"}},
				"Authorization", "Bearer "+e.token); r.Status != 200 {
				t.Fatalf("patch: %d %s", r.Status, r.Body)
			}
		}},
		{"credential banned", keySession, func(e *env) { ban(e, "credential", e.id) }},
		{"organization banned", keySession, func(e *env) { ban(e, "org", e.org) }},
		{"address banned", keySession, func(e *env) { ban(e, "ip", "127.0.0.1") }},
		{"organization disabled", keySession, func(e *env) {
			if r := e.n.adminDo("POST", "/admin/v1/organizations/"+e.org+"/disable", map[string]string{"reason": "test"}); r.Status != 200 {
				t.Fatalf("disable: %d %s", r.Status, r.Body)
			}
		}},
		{"key expired", func(e *env) {
			k, id := e.n.createKey(e.token, map[string]any{"expires_at": e.clk.Now().Add(time.Hour).Format(time.RFC3339)})
			e.conn, _ = dialWS(t, e.n, "X-API-KEY", k)
			e.credentialOfConn = id
		}, func(e *env) {
			waitFor(t, "the expiry timer", func() bool { return e.clk.Timers() > 0 })
			e.clk.Advance(time.Hour + time.Second)
		}},
		{"token revoked", bearerSession, func(e *env) {
			r := form(t, e.n.base+"/oauth/revoke", url.Values{"token": {e.bearer}}, e.app.ClientID, e.app.Secret)
			if r.Status != 200 {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
		}},
		{"app tokens revoked", bearerSession, func(e *env) {
			if r := e.n.adminDo("POST", "/admin/v1/organizations/"+e.org+"/apps/"+e.app.ID+"/revoke-tokens", nil); r.Status != 200 {
				t.Fatalf("revoke-tokens: %d %s", r.Status, r.Body)
			}
		}},
		{"app deleted", bearerSession, func(e *env) {
			if r := e.n.adminDo("DELETE", "/admin/v1/organizations/"+e.org+"/apps/"+e.app.ID, nil); r.Status != 200 {
				t.Fatalf("delete app: %d %s", r.Status, r.Body)
			}
		}},
		{"token expired", bearerSession, func(e *env) {
			waitFor(t, "the expiry timer", func() bool { return e.clk.Timers() > 0 })
			e.clk.Advance(25 * time.Hour) // the token's lifetime (24 h) and leeway
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := echoBackend(t)
			clk := clock.NewFake(time.Now())
			e := &env{n: start(t, wsYAML(t, be.URL, 0), clk), clk: clk}
			e.token = e.n.account("end@example.com", "End")
			e.key, e.id = e.n.createKey(e.token, nil)
			e.org = orgOf(t, e.n, "end@example.com")
			e.app = e.n.createApp(e.token, nil)
			e.bearer = e.n.accessToken(e.app, "")
			c.open(e)
			// A bystander of another organization stays connected.
			token2 := e.n.account("by@example.com", "Bystander")
			key2, _ := e.n.createKey(token2, nil)
			bystander, _ := dialWS(t, e.n, "X-API-KEY", key2)

			c.end(e)
			waitClosed(t, e.conn, c.name)
			if c.name != "address banned" { // the bystander shares the address
				echo(t, bystander)
			}
			wsMetered(t, e.n, e.org, e.credentialOfConn)
		})
	}
}

// TestOrgDisable: disabling an organization refuses at once its API key,
// its app's Bearer token and new tokens, its users' logins, refreshes and
// control-plane sessions, and a disabled wallet organization's SIWX
// sign-in, with 403 FORBIDDEN, reason organization_disabled (the token
// endpoint: RFC 6749's unauthorized_client); other organizations are
// untouched; it is audited with its reason; enabling restores everything.
func TestOrgDisable(t *testing.T) {
	backend := newRecorder(t, nil)
	clk := clock.NewFake(time.Now())
	n := start(t, baseYAML(t.TempDir(), backend.URL)+x402Lines, clk)
	token := n.account("dis@example.com", "Dis")
	org := orgOf(t, n, "dis@example.com")
	key, _ := n.createKey(token, nil)
	a := n.createApp(token, nil)
	tok := n.accessToken(a, "")
	login := do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dis@example.com", "password": "correct horse battery"}).json(t)
	refresh := login["refresh_token"].(string)
	otherKey, _ := n.createKey(n.account("ok@example.com", "Fine"), nil)

	// A wallet with a subscription: its own organization.
	wkey, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	siwxToken, err := sdk.EthereumSIWXToken(wkey, sdk.SIWXMessage{
		Domain: "api.example.com", URI: "https://api.example.com", ChainID: "84532", Nonce: "n0nce1234567",
		IssuedAt: clk.Now(), ExpirationTime: clk.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	bought, err := sdk.PayForPlan(t.Context(), n.base, "pro", wkey, sdk.PurchaseOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	walletOrg := bought.Subscription.OrganizationID
	siwx := []string{"Authorization", "SIWX " + siwxToken}

	type check struct {
		name string
		do   func() response
	}
	checks := []check{
		{"API key", func() response { return do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key) }},
		{"Bearer token", func() response { return do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...) }},
		{"wallet", func() response { return do(t, "GET", n.base+"/v1/x", nil, siwx...) }},
		{"control-plane session", func() response {
			return do(t, "GET", n.base+"/api/v1/apikeys", nil, "Authorization", "Bearer "+token)
		}},
		{"login", func() response {
			return do(t, "POST", n.base+"/api/v1/auth/email/login", map[string]string{"email": "dis@example.com", "password": "correct horse battery"})
		}},
		{"refresh", func() response {
			return do(t, "POST", n.base+"/api/v1/auth/refresh", map[string]string{"refresh_token": refresh})
		}},
	}
	for _, c := range checks {
		r := c.do()
		if r.Status != 200 {
			t.Fatalf("%s before: %d %s", c.name, r.Status, r.Body)
		}
		if c.name == "refresh" { // rotated: the new one from now on
			refresh = r.json(t)["refresh_token"].(string)
		}
	}

	// Bad requests change nothing.
	for _, bad := range []struct {
		path string
		body any
		want int
	}{
		{"/admin/v1/organizations/" + org + "/disable", map[string]string{}, 400},
		{"/admin/v1/organizations/" + org + "/disable", map[string]string{"reason": "  "}, 400},
		{"/admin/v1/organizations/" + org + "/disable", map[string]string{"reason": "x\x00y"}, 400},
		{"/admin/v1/organizations/" + org + "/disable", map[string]string{"reason": strings.Repeat("x", 201)}, 400},
		{"/admin/v1/organizations/" + org + "/disable", map[string]any{"reason": "x", "extra": 1}, 400},
		{"/admin/v1/organizations/org_nosuch/disable", map[string]string{"reason": "x"}, 404},
		{"/admin/v1/organizations/" + org + "/enable", map[string]string{"reason": "x"}, 400},
	} {
		if r := n.adminDo("POST", bad.path, bad.body); r.Status != bad.want {
			t.Errorf("POST %s %v: %d %s, want %d", bad.path, bad.body, r.Status, r.Body, bad.want)
		}
	}
	if r := do(t, "POST", n.admin+"/admin/v1/organizations/"+org+"/disable", map[string]string{"reason": "x"}); r.Status != 401 {
		t.Errorf("disable without the admin token: %d", r.Status)
	}

	for _, id := range []string{org, walletOrg} {
		r := n.adminDo("POST", "/admin/v1/organizations/"+id+"/disable", map[string]string{"reason": "chargeback fraud"})
		if m := r.json(t); r.Status != 200 || m["status"] != "disabled" || m["disabled_reason"] != "chargeback fraud" {
			t.Fatalf("disable %s: %d %s", id, r.Status, r.Body)
		}
	}
	for _, c := range checks {
		r := c.do()
		if code, reason := r.errCode(t); r.Status != 403 || code != "FORBIDDEN" || reason != "organization_disabled" {
			t.Errorf("%s after disable: %d %s, want 403 FORBIDDEN organization_disabled", c.name, r.Status, r.Body)
		}
	}
	r := form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Secret)
	if r.Status != 400 || r.json(t)["error"] != "unauthorized_client" {
		t.Errorf("token for a disabled organization's app: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", otherKey); r.Status != 200 {
		t.Errorf("another organization's key: %d %s", r.Status, r.Body)
	}
	// The disabled wallet cannot buy more: refused before settlement.
	if _, err := sdk.PayForPlan(t.Context(), n.base, "pro", wkey, sdk.PurchaseOptions{Now: clk.Now}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a purchase by a disabled organization's wallet: %v, want 403", err)
	}
	if subs, err := n.srv.store.ListPayments(t.Context(), bought.Subscription.Wallet); err != nil || len(subs) != 1 {
		t.Errorf("payments after a refused purchase: %d, %v", len(subs), err)
	}
	entries, err := n.srv.store.ListAudit(t.Context(), store.AuditFilter{OrgID: org, Actions: []string{"org.disable"}})
	if err != nil || len(entries) != 1 || entries[0].Details["reason"] != "chargeback fraud" || entries[0].ActorType != store.ActorAdmin {
		t.Errorf("audit of the disable: %+v, %v", entries, err)
	}
	// Disabling again changes nothing, and is no new audit entry.
	if r := n.adminDo("POST", "/admin/v1/organizations/"+org+"/disable", map[string]string{"reason": "again"}); r.Status != 200 || r.json(t)["disabled_reason"] != "chargeback fraud" {
		t.Errorf("disable twice: %d %s", r.Status, r.Body)
	}

	for _, id := range []string{org, walletOrg} {
		if r := n.adminDo("POST", "/admin/v1/organizations/"+id+"/enable", nil); r.Status != 200 || r.json(t)["status"] != "active" {
			t.Fatalf("enable %s: %d %s", id, r.Status, r.Body)
		}
	}
	for _, c := range checks {
		if r := c.do(); r.Status != 200 {
			t.Errorf("%s after enable: %d %s", c.name, r.Status, r.Body)
		}
	}
	if r := form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Secret); r.Status != 200 {
		t.Errorf("token after enable: %d %s", r.Status, r.Body)
	}
}

// TestOrgDisableAndSessionsAcrossNodes: two nodes on one PostgreSQL schema
// and one Redis prefix, with caches that would trust a key for an hour: the
// session cap holds across them; an organization disabled through one node
// is refused by the other at once, and its session there is closed; a key
// revoked through one closes its session on the other; enabled again, the
// organization works on both.
func TestOrgDisableAndSessionsAcrossNodes(t *testing.T) {
	pgURL, schema := testsvc.PostgresSchema(t)
	redisURL, prefix := testsvc.RedisPrefix(t)
	be := echoBackend(t)
	yaml := sharedYAML(pgURL, schema, redisURL, prefix, fmt.Sprintf(`
auth:
  apikey_cache_ttl: 1h
  token_cache_ttl: 1h
  websocket: {max_sessions_per_credential: 1}
routes:
  - path: /v1/
    upstream: %s
usage:
  flush_interval: 20ms
`, be.URL))
	a := start(t, yaml, nil)
	b := start(t, yaml, nil)
	token := a.account("node@example.com", "Nodes")
	org := orgOf(t, a, "node@example.com")
	key, id := a.createKey(token, nil)
	key2, id2 := a.createKey(token, nil)

	if r := do(t, "GET", b.base+"/v1/x", nil, "X-API-KEY", key); r.Status != http.StatusUpgradeRequired {
		t.Fatalf("before: %d %s", r.Status, r.Body)
	} // now cached on b for an hour
	sess, _ := dialWS(t, a, "X-API-KEY", key)
	_, r := dialWS(t, b, "X-API-KEY", key)
	if _, reason := r.errCode(t); r.Status != 429 || reason != "too_many_sessions" {
		t.Fatalf("a second session on the other node: %d %s", r.Status, r.Body)
	}
	other, _ := dialWS(t, b, "X-API-KEY", key2)

	// Revoked through a: b closes its session.
	if r := do(t, "DELETE", a.base+"/api/v1/apikeys/"+id2, nil, "Authorization", "Bearer "+token); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	waitClosed(t, other, "a session on b of a key revoked through a")
	wsMetered(t, b, org, id2)

	// Disabled through b: a closes its session, b refuses the cached key.
	if r := b.adminDo("POST", "/admin/v1/organizations/"+org+"/disable", map[string]string{"reason": "abuse"}); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	waitClosed(t, sess, "a session on a of an organization disabled through b")
	wsMetered(t, a, org, id)
	waitFor(t, "the disabled organization refused on both nodes", func() bool {
		for _, n := range []*node{a, b} {
			if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 403 {
				return false
			}
		}
		return true
	})
	if r := a.adminDo("POST", "/admin/v1/organizations/"+org+"/enable", nil); r.Status != 200 {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	waitFor(t, "the enabled organization admitted on both nodes", func() bool {
		for _, n := range []*node{a, b} {
			// The echo upstream answers a plain GET with 426.
			if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != http.StatusUpgradeRequired {
				return false
			}
		}
		return true
	})
	// The slot of the closed session is free: a new one opens on b.
	waitFor(t, "the closed session's slot freed", func() bool { return a.srv.sessions.Len() == 0 })
	dialWS(t, b, "X-API-KEY", key)
}

// TestWebSocketRecheckedAfterResync: a revocation whose message was lost
// (made straight in the store here) closes the session when the bus says
// messages may have been lost (counters.Resync): every open session is read
// again from the store. A session whose credential is fine stays open.
func TestWebSocketRecheckedAfterResync(t *testing.T) {
	be := echoBackend(t)
	n := start(t, wsYAML(t, be.URL, 0), nil)
	token := n.account("resync@example.com", "Resync")
	key, id := n.createKey(token, nil)
	fine, _ := n.createKey(token, nil)
	revoked, _ := dialWS(t, n, "X-API-KEY", key)
	kept, _ := dialWS(t, n, "X-API-KEY", fine)

	at := n.clock.Now()
	_, err := n.srv.store.UpdateAPIKey(t.Context(), id, func(k store.APIKey) (store.APIKey, error) {
		k.RevokedAt, k.UpdatedAt = at, at
		return k, nil
	}, store.AuditEntry{Action: "apikey.revoke", ActorType: store.ActorSystem, OrgID: orgOf(t, n, "resync@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.srv.bus.Publish(t.Context(), counters.Resync); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, revoked, "a session whose key was revoked while the bus was deaf")
	echo(t, kept)
}

// TestSplitRolesWebSocket: a gateway-role node that shares the cluster's
// Redis closes the sessions it proxies when the key is revoked through the
// auth service, and at the credential's expiry, which the decision carries.
func TestSplitRolesWebSocket(t *testing.T) {
	redisURL, prefix := testsvc.RedisPrefix(t)
	countersYAML := fmt.Sprintf("counters:\n  type: redis\n  redis: {url: %q, prefix: %q}\n", redisURL, prefix)
	be := echoBackend(t)
	clk := clock.NewFake(time.Now())
	auth := start(t, authYAML(t, be.URL)+countersYAML, clk)
	token := auth.account("splitws@example.com", "Split WS")
	org := orgOf(t, auth, "splitws@example.com")
	key, id := auth.createKey(token, nil)
	expiring, expiringID := auth.createKey(token, map[string]any{"expires_at": clk.Now().Add(time.Hour).Format(time.RFC3339)})
	gw := start(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  insecure_http: true
role: gateway
auth_service:
  url: http://%s
  token: %s
routes:
  - path: /v1/
    upstream: %s
usage:
  flush_interval: 20ms
`, auth.srv.AuthAddr(), serviceToken, be.URL)+countersYAML, clk)

	revoked, _ := dialWS(t, gw, "X-API-KEY", key)
	if r := do(t, "DELETE", auth.base+"/api/v1/apikeys/"+id, nil, "Authorization", "Bearer "+token); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	waitClosed(t, revoked, "a gateway node's session of a key revoked through the auth service")
	wsMetered(t, auth, org, id)

	expires, _ := dialWS(t, gw, "X-API-KEY", expiring)
	waitFor(t, "the expiry timer", func() bool { return clk.Timers() > 0 })
	clk.Advance(time.Hour + time.Second)
	waitClosed(t, expires, "a gateway node's session at its key's expiry")
	wsMetered(t, auth, org, expiringID)
}
