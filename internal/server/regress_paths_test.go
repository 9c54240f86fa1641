package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/reqtarget/reqtargettest"
)

// pathAttacks are request targets that reach /v1/kyt/score, which needs the
// kyt.read scope, through a parser that reads paths differently from the one
// that matched a route: dot segments in every spelling, repeated slashes,
// double and overlong encodings (the escaped "%" spelled with escaped hex
// digits too), path parameters, backslashes, encoded slashes, full-width
// dots and letters, control characters, and the absolute form.
var pathAttacks = []string{
	"/v1/%2e%2e/v1/kyt/score", "/v1/%2E%2E/v1/kyt/score", "/v1/%2e%2E/v1/kyt/score", "/v1/.%2e/v1/kyt/score",
	"/v1/%2e./v1/kyt/score", "/v1/../v1/kyt/score", "/v1/./kyt/score", "/v1/%2e/kyt/score", "/v1//kyt/score",
	"/v1///kyt//score", "/v1/x/../kyt/score", "/v1/kyt/../kyt/score", "/v1/.%2E/v1/kyt/score?next=../../",
	"/v1/%252e%252e/v1/kyt/score", "/v1/%25252e%25252e/v1/kyt/score", "/v1/%252fkyt/score",
	"/v1/%25%36%42yt/score", "/v1/%25%32%65%25%32%65/v1/kyt/score", "/v1/%25%32e%25%32e/v1/kyt/score",
	"/v1/%EF%BD%8Byt/score", "/v1/\uff4byt/score", "/v1/%E2%84%AAyt/score", "/v1/kyt/%C5%BFcore",
	"/v1/%C0%AE%C0%AE/v1/kyt/score", "/v1/%E0%80%AE%E0%80%AE/v1/kyt/score", "/v1/%c0%ae/kyt/score",
	"/v1/..;/v1/kyt/score", "/v1/kyt;x=1/score", "/v1/kyt;/score", "/v1/%3B/../kyt/score", "/v1/kyt%3bx/score",
	`/v1/..\v1\kyt\score`, "/v1/..%5Cv1%5Ckyt%5Cscore", "/v1/..%5cv1/kyt/score", `/v1\kyt\score`,
	"/v1%2Fkyt%2Fscore", "/v1/kyt%2fscore", "/v1/x%2F..%2Fkyt/score", "/v1/%2e%2e%2fv1%2fkyt%2fscore",
	"/v1/%6Byt/score", "/v1/%6byt/%73core", "/v1/%EF%BC%8E%EF%BC%8E/v1/kyt/score", "/v1/%E2%80%A5/v1/kyt/score",
	"/v1/kyt%00/score", "/v1/kyt%0d%0a/score", "/v1/kyt%09/score",
	"/v1/kyt./score", "/v1/KYT/score", "/v1/Kyt/score", "/v1/kyt%2e/score",
	"http://api.example.com/v1/../v1/kyt/score",
}

// regressPaths: a key without kyt.read never reaches a path that any way of
// reading paths (reqtargettest.Resolvers) takes for /v1/kyt/, whatever the
// spelling and the transport; every other answer is a refusal (400 or 403)
// or the unscoped route's 200 for a path no resolver reads as /v1/kyt/.
func regressPaths(t *testing.T, f *fixture) {
	f.forEachTransport(t, func(t *testing.T, name string, send transport) {
		// The controls: the transport works, and scopes are enforced.
		if s := send(t, "GET", "/v1/kyt/score", "X-API-KEY", f.scoped); s != http.StatusOK {
			t.Fatalf("kyt.read key on /v1/kyt/score: %d", s)
		}
		if s := send(t, "GET", "/v1/kyt/score", "X-API-KEY", f.key); s != http.StatusForbidden && s != 0 {
			t.Fatalf("unscoped key on /v1/kyt/score: %d, want 403", s)
		}
		if s := send(t, "GET", "/v1/hello", "X-API-KEY", f.key); s != http.StatusOK {
			t.Fatalf("unscoped key on /v1/hello: %d", s)
		}
		if strings.HasPrefix(name, "gateway") {
			// A server must accept the absolute form (RFC 9112 section 3.2.2).
			if s := send(t, "GET", "http://api.example.com/v1/hello", "X-API-KEY", f.key); s != http.StatusOK {
				t.Fatalf("absolute form: %d", s)
			}
		}
		outcomes := map[int][]string{}
		for _, target := range pathAttacks {
			if name != "gateway" && name != "gateway-role" && strings.HasPrefix(target, "http") {
				continue // the absolute form is for a server, not a proxy's description
			}
			before := len(f.backend.all())
			status := send(t, "GET", target, "X-API-KEY", f.key)
			outcomes[status] = append(outcomes[status], target)
			for _, r := range f.since(before) {
				if under := reqtargettest.Under(r.URI, "/v1/kyt/"); len(under) > 0 {
					t.Errorf("%s: the backend got %q, which %v read as /v1/kyt/…, with a key without kyt.read", target, r.URI, under)
				}
			}
			if status >= 500 {
				t.Errorf("%s: %d", target, status)
			}
		}
		for status, targets := range outcomes {
			t.Logf("%d: %d targets, e.g. %q", status, len(targets), targets[:min(3, len(targets))])
		}
	})
}

// The canonical form of a normalized target is what the built-in gateway
// forwards, and what it decided on.
func TestGatewayForwardsTheMatchedPath(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), backend.URL), nil)
	token := n.account("canon@example.com", "Canon Co")
	scoped, _ := n.createKey(token, map[string]any{"scopes": []string{"kyt.read"}})
	addr := hostOf(t, n.base)
	for target, want := range map[string]string{
		"/v1/%2e%2e/v1/kyt/score?a=1": "/v1/kyt/score?a=1",
		"/v1//kyt/./score":            "/v1/kyt/score",
		"/v1/kyt/%73core":             "/v1/kyt/score",
		"/v1/kyt/caf%c3%a9":           "/v1/kyt/caf%C3%A9",
		"/v1/kyt/a%3fb/..":            "/v1/kyt/",
		"/v1/kyt/100%25":              "/v1/kyt/100%25",
	} {
		before := len(backend.all())
		if s, body := rawDo(t, addr, "GET", target, "X-API-KEY", scoped); s != http.StatusOK {
			t.Fatalf("%s: %d %s", target, s, body)
		}
		got := backend.all()[before:]
		if len(got) != 1 || got[0].URI != want {
			t.Errorf("%s: the backend got %v, want %q", target, got, want)
		}
	}
	// An ambiguous target is refused with the reason, and logged as sent.
	s, body := rawDo(t, addr, "GET", "/v1/..;/v1/kyt/score", "X-API-KEY", scoped)
	if s != http.StatusBadRequest || !strings.Contains(body, `"reason":"ambiguous_path"`) || !strings.Contains(body, "semicolon") {
		t.Errorf("path parameter: %d %s", s, body)
	}
}
