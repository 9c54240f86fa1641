package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// wsgiName is the name under which a CGI, WSGI or Rack backend sees a
// header (RFC 3875 section 4.1.18): upper case, "-" as "_", and, as
// lighttpd's CGI and FastCGI have it, every other byte that is not a letter
// or digit as "_" too.
func wsgiName(k string) string {
	return "HTTP_" + strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToUpper(k))
}

// identityAttacks are headers a client forges to pass for someone else, or
// to make a framework read another request: every spelling a CGI-style
// backend folds onto an owned name, and the overrides.
var identityAttacks = [][2]string{
	{"X_Tollgate_Scopes", "admin"}, {"x_tollgate_scopes", "admin"}, {"X-Tollgate_Scopes", "admin"},
	{"X_Tollgate-Scopes", "admin"}, {"X-Tollgate-Scopes", "admin"}, {"X_TOLLGATE_ORG", "org_victim"},
	{"X-Tollgate-Org", "org_victim"}, {"X_Tollgate_App", "app_victim"}, {"X_Tollgate_Credential", "key_victim"},
	{"X-Tollgate-Plan", "enterprise"}, {"X-Tollgate-Method", "siwx"}, {"X_Request_Id", "req_forged"},
	{"X-Original-URL", "/v1/kyt/score"}, {"X-Rewrite-URL", "/v1/kyt/score"}, {"X-HTTP-Method-Override", "DELETE"},
	{"X_HTTP_Method_Override", "DELETE"}, {"X-Method-Override", "DELETE"}, {"X-HTTP-Method", "DELETE"},
	{"X_Forwarded_For", "6.6.6.6"}, {"X_Real_IP", "6.6.6.6"}, {"X_API_KEY", "tgk_forged"},
	// lighttpd reads these as HTTP_X_TOLLGATE_SCOPES and so on; "+" and
	// "!" sort before "-", so that a backend keeping the first of two
	// fields would read the forged one before Tollgate's.
	{"X.Tollgate.Scopes", "admin"}, {"X+Tollgate+Org", "org_victim"}, {"X!Tollgate!Credential", "key_victim"},
	{"X~Request~Id", "req_forged"}, {"X.HTTP.Method.Override", "DELETE"}, {"X+Real+IP", "6.6.6.6"},
}

// regressIdentityHeaders: whatever the client sends, a backend reading
// headers the CGI way sees Tollgate's identity headers or none, never the
// client's; and no override reaches it.
func regressIdentityHeaders(t *testing.T, f *fixture) {
	f.forEachTransport(t, func(t *testing.T, name string, send transport) {
		for _, a := range identityAttacks {
			before := len(f.backend.all())
			status := send(t, "GET", "/v1/hello", "X-API-KEY", f.key, a[0], a[1])
			got := f.since(before)
			if status != http.StatusOK && status != http.StatusBadRequest && status != 0 {
				t.Errorf("%s: %d", a[0], status)
			}
			for _, r := range got {
				for k, vs := range r.Header {
					for _, v := range vs {
						if v == a[1] && wsgiName(k) == wsgiName(a[0]) {
							t.Errorf("%s: %s: %s reached the backend (as %s)", a[0], k, v, wsgiName(k))
						}
					}
				}
				if n := len(r.Header["X-Tollgate-Org"]); n > 1 {
					t.Errorf("%s: %d X-Tollgate-Org fields", a[0], n)
				}
				for k, vs := range r.Header {
					if strings.HasPrefix(k, "X-Tollgate-") && slices.ContainsFunc(vs, func(v string) bool { return strings.HasPrefix(v, "{") }) {
						// Caddy's copy_headers, for a header Tollgate's
						// answer lacks: the key has no app and no scope.
						t.Errorf("%s: the backend got %s: %q, a proxy's unresolved placeholder", a[0], k, vs)
					}
				}
			}
		}
	})
}

// forwardingAttacks are what a client says of itself, for an upstream that
// reads its address or its base URL from them; envoyOwn are those Envoy
// replaces itself (use_remote_address), not ext_authz.
var (
	forwardingAttacks = [][2]string{
		{"X-Real-IP", "6.6.6.6"}, {"Forwarded", "for=6.6.6.6;host=evil.example"}, {"X-Forwarded-Prefix", "/evil"},
		{"X-Forwarded-Port", "6666"}, {"X-Forwarded-Server", "evil.example"}, {"X-Forwarded-Ssl", "evil"},
		{"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "evil"},
	}
	envoyOwn = map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true}
)

// regressForwardingHeaders: a client's forwarding headers never reach the
// backend through the gateway, nor through the shipped proxy
// configurations and ext_authz.
func regressForwardingHeaders(t *testing.T, f *fixture) {
	f.forEachTransport(t, func(t *testing.T, name string, send transport) {
		if strings.HasPrefix(name, "decision-api") {
			t.Skip("a bare decision API removes no header: the proxy's configuration does")
		}
		for _, a := range forwardingAttacks {
			if name == "ext_authz" && envoyOwn[a[0]] {
				continue
			}
			before := len(f.backend.all())
			if status := send(t, "GET", "/v1/hello", "X-API-KEY", f.key, a[0], a[1]); status != http.StatusOK {
				t.Errorf("%s: %d", a[0], status)
			}
			for _, r := range f.since(before) {
				for k, vs := range r.Header {
					for _, v := range vs {
						if strings.Contains(v, a[1]) && wsgiName(k) == wsgiName(a[0]) {
							t.Errorf("%s: %s: %s reached the backend", a[0], k, v)
						}
					}
				}
			}
		}
	})
}

// regressAuthorization: a credential of Tollgate's schemes never reaches the
// backend on an authenticated route, whatever its spelling, and an
// Authorization of another scheme does through Tollgate's own gateway.
func regressAuthorization(t *testing.T, f *fixture) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" // shaped like one
	attacks := [][]string{
		{"Authorization", "Bearer\t" + jwt},
		{"Authorization", "bearer " + jwt},
		{"Authorization", "Basic dXNlcjpwdw==", "Authorization", "Bearer " + jwt},
		{"Authorization", "Basic dXNlcjpwdw==, Bearer " + jwt},
		{"Authorization", "SIWX\t" + jwt},
		{"Authorization", "Bearer " + jwt, "Authorization", "Bearer " + jwt},
	}
	f.forEachTransport(t, func(t *testing.T, name string, send transport) {
		if strings.HasPrefix(name, "decision-api") {
			// A bare decision API removes no header: the proxy's
			// configuration does (the nginx, Caddy and ext_authz
			// transports run the shipped ones).
			t.Skip("the proxy's configuration removes credentials")
		}
		for _, a := range attacks {
			before := len(f.backend.all())
			status := send(t, "GET", "/v1/hello", append([]string{"X-API-KEY", f.key}, a...)...)
			if status != http.StatusOK && status != http.StatusUnauthorized && status != http.StatusBadRequest && status != 0 {
				t.Errorf("%q: %d", a, status)
			}
			for _, r := range f.since(before) {
				for _, v := range r.Header.Values("Authorization") {
					if strings.Contains(v, jwt) {
						t.Errorf("%q: Authorization %q reached the backend", a, v)
					}
				}
			}
		}
	})
	// The built-in gateway keeps the upstream's own scheme.
	before := len(f.backend.all())
	if s := f.transports["gateway"](t, "GET", "/v1/hello", "X-API-KEY", f.key, "Authorization", "Basic dXNlcjpwdw=="); s != http.StatusOK {
		t.Fatalf("Basic beside a key: %d", s)
	}
	if got := f.since(before); len(got) != 1 || got[0].Header.Get("Authorization") != "Basic dXNlcjpwdw==" {
		t.Errorf("Basic beside a key: the backend got %v", got)
	}
}

// Every spelling of a Bearer credential that the header policy removes is
// the Bearer method's to verify; two Authorization fields are ambiguous.
func TestBearerSpellings(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), backend.URL), nil)
	a := n.createApp(n.account("spell@example.com", "Spell Co"), nil)
	tok := n.accessToken(a, "")
	for _, v := range []string{"Bearer\t" + tok, " bearer  " + tok, "BEARER " + tok + " "} {
		if r := do(t, "GET", n.base+"/v1/hello", nil, "Authorization", v); r.Status != 200 {
			t.Errorf("%q: %d %s", v, r.Status, r.Body)
		}
	}
	addr := hostOf(t, n.base)
	status, body := rawDo(t, addr, "GET", "/v1/hello", "Authorization", "Basic dXNlcjpwdw==", "Authorization", "Bearer "+tok)
	if status != 401 || !strings.Contains(body, `"code":"INVALID_TOKEN"`) {
		t.Errorf("Basic then Bearer: %d %s", status, body)
	}
}
