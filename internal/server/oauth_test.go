package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"crypto/rsa"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/sdk"
)

// app is an app created through the control-plane API.
type app struct {
	ID, ClientID, Secret string
}

func (n *node) createApp(token string, fields map[string]any) app {
	n.t.Helper()
	m := n.create(token, "/api/v1/apps", map[string]any{"name": "prod-main"}, fields)
	return app{m["id"].(string), m["client_id"].(string), m["client_secret"].(string)}
}

// form posts an application/x-www-form-urlencoded body; user and pass, when
// user is not empty, go in HTTP Basic (form-encoded first, RFC 6749 §2.3.1).
func form(t *testing.T, u string, v url.Values, user, pass string) response {
	t.Helper()
	var auth []string
	if user != "" {
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
		auth = []string{"Authorization", r.Header.Get("Authorization")}
	}
	return do(t, "POST", u, v, auth...)
}

// accessToken gets a token for a with the given scope, by Basic auth.
func (n *node) accessToken(a app, scope string) string {
	n.t.Helper()
	v := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		v.Set("scope", scope)
	}
	r := form(n.t, n.base+"/oauth/token", v, a.ClientID, a.Secret)
	if r.Status != 200 {
		n.t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	return r.json(n.t)["access_token"].(string)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func wantRefusal(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if got, _ := r.errCode(t); got != code {
		t.Fatalf("code %q, want %q: %s", got, code, r.Body)
	}
}

// The "done when", as a user would try it: create an app, get a token,
// call a route, be refused a scoped one, delete the app, see the token refused.
func TestOAuthClientCredentialsFlow(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	user := n.account("olga@example.com", "Olga Labs")
	a := n.createApp(user, map[string]any{"environment": "production", "allowed_scopes": []string{"kyt.read", "webhook.read"}})
	if len(a.Secret) != 64 {
		t.Fatalf("client secret %d characters, want 64", len(a.Secret))
	}

	// client_secret_basic: RFC 6749 §5.1 response, never cached.
	r := form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Secret)
	if r.Status != 200 || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %v %s", r.Status, r.Header, r.Body)
	}
	tr := r.json(t)
	if tr["token_type"] != "Bearer" || tr["expires_in"] != float64(86400) || tr["scope"] != nil {
		t.Fatalf("token response %s", r.Body)
	}
	plain := tr["access_token"].(string)

	// client_secret_post, with a scope.
	r = form(t, n.base+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {a.ClientID}, "client_secret": {a.Secret}, "scope": {"kyt.read"},
	}, "", "")
	if r.Status != 200 || r.json(t)["scope"] != "kyt.read" {
		t.Fatalf("token (post): %d %s", r.Status, r.Body)
	}
	scoped := r.json(t)["access_token"].(string)

	if r := do(t, "GET", n.base+"/v1/data", nil, bearer(plain)...); r.Status != 200 {
		t.Fatalf("bearer call: %d %s", r.Status, r.Body)
	}
	got := be.all()[0].Header
	if got.Get("Authorization") != "" || got.Get("X-Tollgate-Credential") != a.ClientID || got.Get("X-Tollgate-App") != a.ID || got.Get("X-Tollgate-Org") == "" {
		t.Fatalf("upstream headers: %v", got)
	}
	// A token without scopes may not call a scoped route.
	r = do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(plain)...)
	wantRefusal(t, r, 403, "INSUFFICIENT_SCOPE")
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	if r := do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(scoped)...); r.Status != 200 {
		t.Fatalf("scoped call: %d %s", r.Status, r.Body)
	}

	// Deleting the app refuses its tokens at once.
	if r := do(t, "DELETE", n.base+"/api/v1/apps/"+a.ID, nil, bearer(user)...); r.Status != 200 {
		t.Fatalf("delete app: %d %s", r.Status, r.Body)
	}
	r = do(t, "GET", n.base+"/v1/data", nil, bearer(plain)...)
	wantRefusal(t, r, 401, "INVALID_TOKEN")
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	r = form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Secret)
	if r.Status != 401 || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("token of a deleted app: %d %s", r.Status, r.Body)
	}
	if len(be.all()) != 2 {
		t.Fatalf("backend saw %d requests, want 2", len(be.all()))
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	a := n.createApp(n.account("pia@example.com", "Pia"), map[string]any{"allowed_scopes": []string{"kyt.read"}})
	cc := url.Values{"grant_type": {"client_credentials"}}
	tests := []struct {
		name       string
		body       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"no client authentication", cc, "", "", 401, "invalid_client"},
		{"wrong secret", cc, a.ClientID, strings.Repeat("x", 64), 401, "invalid_client"},
		{"unknown client", cc, "client_00000000000000000000000000", a.Secret, 401, "invalid_client"},
		{"no grant type", url.Values{}, a.ClientID, a.Secret, 400, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}}, a.ClientID, a.Secret, 400, "unsupported_grant_type"},
		{"scope not allowed", url.Values{"grant_type": {"client_credentials"}, "scope": {"kyt.write"}}, a.ClientID, a.Secret, 400, "invalid_scope"},
		{"malformed scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"KYT READ!"}}, a.ClientID, a.Secret, 400, "invalid_scope"},
		{"two auth methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {a.Secret}}, a.ClientID, a.Secret, 400, "invalid_request"},
		{"repeated parameter", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, a.ClientID, a.Secret, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := form(t, n.base+"/oauth/token", tt.body, tt.user, tt.pass)
			if r.Status != tt.status || r.json(t)["error"] != tt.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tt.status, tt.code)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Error("error response may be cached")
			}
			if tt.code == "invalid_client" && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("invalid_client without a Basic challenge: %v", r.Header)
			}
		})
	}
	// A JSON body is not a token request.
	if r := do(t, "POST", n.base+"/oauth/token", map[string]string{"grant_type": "client_credentials"}); r.Status != 400 {
		t.Fatalf("JSON body: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", n.base+"/oauth/token", nil); r.Status != 405 {
		t.Fatalf("GET /oauth/token: %d", r.Status)
	}
	if strings.Contains(n.logs.String(), a.Secret) {
		t.Fatal("a client secret was logged")
	}
}

func TestBearerTokenChecks(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	user := n.account("rita@example.com", "Rita")
	a := n.createApp(user, nil)
	tok := n.accessToken(a, "")
	key, _ := n.createKey(user, nil)

	parts := strings.Split(tok, ".")
	tests := []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"tampered signature", bearer(parts[0] + "." + parts[1] + "." + parts[2][:10] + "A" + parts[2][11:]), 401, "INVALID_TOKEN"},
		{"alg none", bearer("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + "."), 401, "INVALID_TOKEN"},
		{"not a JWT", bearer("hello"), 401, "INVALID_TOKEN"},
		{"empty bearer", []string{"Authorization", "Bearer"}, 401, "INVALID_TOKEN"},
		{"other scheme is no credential", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "UNAUTHORIZED"},
		// Priority: the API key is evaluated, never the token.
		{"bad API key and good token", append([]string{"X-API-KEY", "tgk_bad"}, bearer(tok)...), 401, "INVALID_CREDENTIALS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, tt.headers...), tt.status, tt.code)
		})
	}
	// A good key with a bad token: the key decides; the token never reaches
	// the upstream.
	if r := do(t, "GET", n.base+"/v1/x", nil, append([]string{"X-API-KEY", key}, bearer("garbage")...)...); r.Status != 200 {
		t.Fatalf("good key, bad token: %d %s", r.Status, r.Body)
	}
	if h := be.all()[0].Header; h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" {
		t.Fatalf("credentials forwarded: %v", h)
	}
	if len(be.all()) != 1 {
		t.Fatalf("backend saw %d requests", len(be.all()))
	}

	// Expiry, with the configured leeway (30s).
	n.clock.Advance(24*time.Hour + 10*time.Second)
	if r := do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...); r.Status != 200 {
		t.Fatalf("within leeway: %d %s", r.Status, r.Body)
	}
	n.clock.Advance(time.Minute)
	wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...), 401, "EXPIRED_TOKEN")
}

// Revocation (RFC 7009) and introspection (RFC 7662).
func TestRevokeAndIntrospect(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	user := n.account("sam@example.com", "Sam")
	a := n.createApp(user, map[string]any{"allowed_scopes": []string{"kyt.read"}})
	b := n.createApp(user, map[string]any{"name": "test-dev"})
	stranger := n.createApp(n.account("tom@example.com", "Tom"), nil)
	tok := n.accessToken(a, "kyt.read")

	introspect := func(c app, token string) map[string]any {
		t.Helper()
		r := form(t, n.base+"/oauth/introspect", url.Values{"token": {token}}, c.ClientID, c.Secret)
		if r.Status != 200 {
			t.Fatalf("introspect: %d %s", r.Status, r.Body)
		}
		return r.json(t)
	}
	got := introspect(a, tok)
	if got["active"] != true || got["client_id"] != a.ClientID || got["scope"] != "kyt.read" || got["token_type"] != "Bearer" || got["jti"] == nil {
		t.Fatalf("introspection: %v", got)
	}
	if got := introspect(b, tok); got["active"] != true {
		t.Fatalf("introspection by another app of the organization: %v", got)
	}
	if got := introspect(stranger, tok); got["active"] != false || len(got) != 1 {
		t.Fatalf("introspection by another organization: %v", got)
	}
	if got := introspect(a, "garbage"); got["active"] != false {
		t.Fatalf("introspection of garbage: %v", got)
	}
	if r := form(t, n.base+"/oauth/introspect", url.Values{"token": {tok}}, "", ""); r.Status != 401 {
		t.Fatalf("unauthenticated introspection: %d", r.Status)
	}

	// Only the client the token was issued to revokes it; others get 200
	// and change nothing (RFC 7009 §2.2).
	if r := form(t, n.base+"/oauth/revoke", url.Values{"token": {tok}}, stranger.ClientID, stranger.Secret); r.Status != 200 {
		t.Fatalf("revoke by a stranger: %d", r.Status)
	}
	if r := do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(tok)...); r.Status != 200 {
		t.Fatalf("token revoked by a stranger: %d", r.Status)
	}
	if r := form(t, n.base+"/oauth/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, a.ClientID, a.Secret); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(tok)...), 401, "INVALID_TOKEN")
	if got := introspect(a, tok); got["active"] != false {
		t.Fatalf("introspection of a revoked token: %v", got)
	}
	if r := form(t, n.base+"/oauth/revoke", url.Values{"token": {"garbage"}}, a.ClientID, a.Secret); r.Status != 200 {
		t.Fatalf("revoke garbage: %d", r.Status)
	}
	// The revocation survives a restart and is audited.
	n = n.restart()
	wantRefusal(t, do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(tok)...), 401, "INVALID_TOKEN")
	r := do(t, "GET", n.base+"/api/v1/audit?target_id="+a.ID, nil, bearer(n.login("sam@example.com", "correct horse battery"))...)
	if !strings.Contains(string(r.Body), `"token.revoke"`) || !strings.Contains(string(r.Body), `"actor_type":"app"`) {
		t.Fatalf("audit: %s", r.Body)
	}
}

// Rotating a secret voids the old secret and, by default, the tokens issued
// with it; revoke_tokens=false keeps tokens in flight. Narrowing an app's
// scopes narrows its tokens.
func TestAppSecretRotationAndScopes(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	user := n.account("uma@example.com", "Uma")
	a := n.createApp(user, map[string]any{"allowed_scopes": []string{"kyt.read"}})
	old := n.accessToken(a, "kyt.read")

	r := do(t, "POST", n.base+"/api/v1/apps/"+a.ID+"/rotate-secret", map[string]bool{"revoke_tokens": false}, bearer(user)...)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	a2 := a
	a2.Secret = r.json(t)["client_secret"].(string)
	if r := form(t, n.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.ClientID, a.Secret); r.Status != 401 {
		t.Fatalf("old secret after rotation: %d", r.Status)
	}
	if r := do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(old)...); r.Status != 200 {
		t.Fatalf("token kept in flight: %d %s", r.Status, r.Body)
	}

	// Narrowing the app's scopes narrows the tokens it holds.
	if r := do(t, "PATCH", n.base+"/api/v1/apps/"+a.ID, map[string]any{"allowed_scopes": []string{}}, bearer(user)...); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "GET", n.base+"/v1/kyt/score", nil, bearer(old)...), 403, "INSUFFICIENT_SCOPE")
	if r := do(t, "GET", n.base+"/v1/x", nil, bearer(old)...); r.Status != 200 {
		t.Fatalf("unscoped route after narrowing: %d", r.Status)
	}

	// The default rotation revokes every token issued before it, while the
	// new secret's tokens (even within the same second) work.
	fresh := n.accessToken(a2, "")
	r = do(t, "POST", n.base+"/api/v1/apps/"+a.ID+"/rotate-secret", nil, bearer(user)...)
	if r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	a3 := a
	a3.Secret = r.json(t)["client_secret"].(string)
	for _, tok := range []string{old, fresh} {
		wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...), 401, "INVALID_TOKEN")
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, bearer(n.accessToken(a3, ""))...); r.Status != 200 {
		t.Fatalf("token after rotation: %d %s", r.Status, r.Body)
	}

	// A member may read apps but not change them.
	if r := do(t, "GET", n.base+"/api/v1/apps", nil, bearer(user)...); r.Status != 200 || strings.Contains(string(r.Body), "secret") {
		t.Fatalf("list apps: %d %s", r.Status, r.Body)
	}
}

func TestAppValidation(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	user := n.account("vic@example.com", "Vic")
	other := n.account("wes@example.com", "Wes")
	a := n.createApp(user, nil)
	for _, body := range []map[string]any{
		{"name": ""},
		{"name": "x", "environment": "Prod Env"},
		{"name": "x", "allowed_scopes": []string{"BAD SCOPE"}},
		{"name": "x", "ip_allowlist": "not-an-ip"},
		{"name": "x", "client_secret": "chosen"},
	} {
		if r := do(t, "POST", n.base+"/api/v1/apps", body, bearer(user)...); r.Status != 400 {
			t.Errorf("%v: %d %s", body, r.Status, r.Body)
		}
	}
	// Another organization's app does not exist for this user.
	for _, m := range []string{"GET", "DELETE"} {
		if r := do(t, m, n.base+"/api/v1/apps/"+a.ID, nil, bearer(other)...); r.Status != 404 {
			t.Errorf("%s another org's app: %d", m, r.Status)
		}
	}
	if r := do(t, "POST", n.base+"/api/v1/apps/"+a.ID+"/rotate-secret", nil, bearer(other)...); r.Status != 404 {
		t.Errorf("rotate another org's app: %d", r.Status)
	}
}

// Deleting an app revokes its API keys at once, too.
func TestDeleteAppRevokesKeys(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	user := n.account("xia@example.com", "Xia")
	a := n.createApp(user, nil)
	key, keyID := n.createKey(user, map[string]any{"app_id": a.ID})
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("key: %d", r.Status) // now cached
	}
	r := do(t, "DELETE", n.base+"/api/v1/apps/"+a.ID, nil, bearer(user)...)
	if r.Status != 200 || !strings.Contains(string(r.Body), keyID) {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key), 401, "INVALID_CREDENTIALS")
}

// golang.org/x/oauth2 is the client; tokens are verified independently of
// golang-jwt: keyfunc fetches the live JWKS and go-jose checks the signature
// and the RFC 9068 claims.
func TestOAuthInterop(t *testing.T) {
	// The issuer and the metadata's URLs derive from the listen address: give
	// it a real port.
	yaml := strings.Replace(baseYAML(t.TempDir(), newRecorder(t, nil).URL), "listen: 127.0.0.1:0\n  insecure_http", "listen: "+freeAddr(t)+"\n  insecure_http", 1)
	n := start(t, yaml, clock.NewFake(time.Now()))
	a := n.createApp(n.account("yan@example.com", "Yan"), map[string]any{"allowed_scopes": []string{"kyt.read", "webhook.read"}})

	// Discovery (RFC 8414).
	mr := do(t, "GET", n.base+"/.well-known/oauth-authorization-server", nil)
	if mr.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("metadata Cache-Control = %q", mr.Header.Get("Cache-Control"))
	}
	meta := mr.json(t)
	if meta["token_endpoint"] != n.base+"/oauth/token" || meta["issuer"] != n.base {
		t.Fatalf("metadata: %v", meta)
	}
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.Secret, TokenURL: meta["token_endpoint"].(string),
			Scopes: []string{"kyt.read", "webhook.read"}, AuthStyle: style,
		}
		tok, err := cfg.Token(context.Background())
		if err != nil {
			t.Fatalf("auth style %v: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Fatalf("token: %+v", tok)
		}
		resp, err := cfg.Client(context.Background()).Get(n.base + "/v1/kyt/score")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("x/oauth2 client call: %d", resp.StatusCode)
		}

		claims := verifyIndependently(t, meta["jwks_uri"].(string), tok.AccessToken)
		if claims["iss"] != n.base || claims["aud"] != n.base || claims["sub"] != a.ClientID || claims["client_id"] != a.ClientID ||
			claims["scope"] != "kyt.read webhook.read" || claims["jti"] == "" {
			t.Fatalf("claims: %v", claims)
		}
		if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 86400 {
			t.Fatalf("lifetime %v s, want 86400", exp-iat)
		}
	}
}

// verifyIndependently checks an access token without golang-jwt or Tollgate's
// code: keyfunc's jwkset reads the live JWKS, go-jose verifies the RS256
// signature, and the RFC 9068 header and claims are checked here. It
// returns the claims.
func verifyIndependently(t *testing.T, jwksURL, token string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURL})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" {
		t.Fatalf("header: %+v", h)
	}
	jwk, err := kf.Storage().KeyRead(ctx, h.KeyID)
	if err != nil {
		t.Fatalf("kid %s not in the JWKS: %v", h.KeyID, err)
	}
	pub, ok := jwk.Key().(*rsa.PublicKey)
	if !ok {
		t.Fatalf("JWK %s is a %T", h.KeyID, jwk.Key())
	}
	var claims map[string]any
	if err := parsed.Claims(pub, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var std josejwt.Claims
	if err := parsed.Claims(pub, &std); err != nil {
		t.Fatal(err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Time: time.Now()}, time.Minute); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if aud, ok := claims["aud"].([]any); ok && len(aud) == 1 {
		claims["aud"] = aud[0]
	}
	return claims
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// `tollgate keys rotate` in another process: tokens of the old and the new
// key are in flight together and both are accepted; the JWKS publishes both,
// and an independent verifier checks both against it.
func TestKeyRotationTokensInFlight(t *testing.T) {
	yaml := strings.Replace(baseYAML(t.TempDir(), newRecorder(t, nil).URL), "listen: 127.0.0.1:0\n  insecure_http", "listen: "+freeAddr(t)+"\n  insecure_http", 1)
	n := start(t, yaml, clock.NewFake(time.Now()))
	a := n.createApp(n.account("zed@example.com", "Zed"), nil)
	before := n.accessToken(a, "")

	// The CLI's keyring: same database, same master key, another process.
	cfg, err := parseYAML(yaml)
	if err != nil {
		t.Fatal(err)
	}
	box, err := LoadMasterKey(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tokens.LoadKeyring(context.Background(), n.srv.Store(), box, n.clock)
	if err != nil {
		t.Fatal(err)
	}
	oldKID := cli.ActiveKeyID()
	newKID, retired, err := cli.Rotate(context.Background())
	if err != nil || len(retired) != 1 || retired[0] != oldKID {
		t.Fatalf("rotate: %v %v", retired, err)
	}
	// Until its periodic reload the node still signs with the old key;
	// a token signed by the new key elsewhere is accepted meanwhile.
	tok, err := cli.Sign(oauth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: n.base, Subject: a.ClientID, Audience: jwt.ClaimStrings{n.base}, ID: "jti-from-another-node",
			IssuedAt: jwt.NewNumericDate(n.clock.Now()), ExpiresAt: jwt.NewNumericDate(n.clock.Now().Add(time.Hour)),
		},
		ClientID: a.ClientID,
	}, oauth.TokenType)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...); r.Status != 200 {
		t.Fatalf("token of the new key before the node reloaded: %d %s", r.Status, r.Body)
	}
	if err := n.srv.keyring.Reload(context.Background()); err != nil { // the periodic reload
		t.Fatal(err)
	}
	after := n.accessToken(a, "")
	if kid := headerKID(t, after); kid != newKID {
		t.Fatalf("new token signed by %s, want %s", kid, newKID)
	}
	if kid := headerKID(t, before); kid != oldKID {
		t.Fatalf("old token signed by %s", kid)
	}
	jwks := do(t, "GET", n.base+"/.well-known/jwks.json", nil)
	for _, kid := range []string{oldKID, newKID} {
		if !strings.Contains(string(jwks.Body), kid) {
			t.Fatalf("JWKS lacks %s: %s", kid, jwks.Body)
		}
	}
	for _, tok := range []string{before, after} {
		if r := do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...); r.Status != 200 {
			t.Fatalf("token in flight: %d %s", r.Status, r.Body)
		}
		verifyIndependently(t, n.base+"/.well-known/jwks.json", tok)
	}
	// Once every token of the old key has expired, the key is pruned and
	// leaves the JWKS.
	n.clock.Advance(26 * time.Hour)
	n.srv.purge(context.Background())
	if jwks := do(t, "GET", n.base+"/.well-known/jwks.json", nil); strings.Contains(string(jwks.Body), oldKID) || !strings.Contains(string(jwks.Body), newKID) {
		t.Fatalf("JWKS after pruning: %s", jwks.Body)
	}
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Headers[0].KeyID
}

// The Go SDK against a real node: one token for many calls, and a revoked
// token replaced after the gateway's 401, with the request retried once.
func TestSDKAgainstGateway(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), clock.NewFake(time.Now()))
	a := n.createApp(n.account("abe@example.com", "Abe"), map[string]any{"allowed_scopes": []string{"kyt.read"}})
	cc := sdk.ClientCredentials{TokenURL: n.base + "/oauth/token", ClientID: a.ClientID, ClientSecret: a.Secret, Scopes: []string{"kyt.read"}}
	client := cc.Client(context.Background())
	get := func() int {
		t.Helper()
		resp, err := client.Post(n.base+"/v1/kyt/score", "application/json", strings.NewReader(`{"address":"0xabc"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if s := get(); s != 200 {
			t.Fatalf("status %d", s)
		}
	}
	// Revoke every token of the app, the client's included.
	if _, err := n.srv.oauth.RevokeTokens(context.Background(), n.userByEmail("abe@example.com").OrgID, a.ID, store.Actor{Type: store.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	n.clock.Advance(2 * time.Second) // past the second of the revocation
	if s := get(); s != 200 {
		t.Fatalf("after revocation: status %d, want the SDK to refetch and retry", s)
	}
	reqs := be.all()
	if len(reqs) != 4 || reqs[3].Body != `{"address":"0xabc"}` {
		t.Fatalf("backend saw %d requests; last body %q", len(reqs), reqs[len(reqs)-1].Body)
	}
}

// The operator answers a leaked secret through the admin API.
func TestAdminApps(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	user := n.account("bea@example.com", "Bea Corp")
	a := n.createApp(user, nil)
	tok := n.accessToken(a, "")
	org := n.userByEmail("bea@example.com").OrgID
	r := n.adminDo("GET", "/admin/v1/organizations/"+org+"/apps", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), a.ClientID) || strings.Contains(string(r.Body), a.Secret) {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	if r := n.adminDo("POST", "/admin/v1/organizations/"+org+"/apps/"+a.ID+"/revoke-tokens", nil); r.Status != 200 {
		t.Fatalf("revoke tokens: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...), 401, "INVALID_TOKEN")
	n.clock.Advance(time.Second)
	tok = n.accessToken(a, "")
	if r := n.adminDo("DELETE", "/admin/v1/organizations/"+org+"/apps/"+a.ID, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"revoked_api_keys":[]`) {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	wantRefusal(t, do(t, "GET", n.base+"/v1/x", nil, bearer(tok)...), 401, "INVALID_TOKEN")
	if r := n.adminDo("DELETE", "/admin/v1/organizations/"+org+"/apps/"+a.ID, nil); r.Status != 404 {
		t.Fatalf("delete twice: %d", r.Status)
	}
}
