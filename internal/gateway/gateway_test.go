package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// keys authenticates two fixed keys.
type keys map[string]*authn.Principal

func (k keys) Lookup(_ context.Context, presented string) (credentials.Key, error) {
	if p := k[presented]; p != nil {
		return credentials.Key{Principal: p}, nil
	}
	return credentials.Key{}, apierror.ErrInvalidCredentials
}

// backend records what reached it.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, r)
		b.mu.Unlock()
		w.Header().Set("X-Backend-Path", r.URL.Path)
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id")) // an upstream that echoes it
		_, _ = w.Write(body)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func (b *backend) last() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs[len(b.reqs)-1]
}

var (
	orgPrincipal = &authn.Principal{OrgID: "org_a", AppID: "app_a", CredentialID: "key_a", Method: authn.MethodAPIKey, Scopes: []string{"kyt.read"}}
	narrow       = mustAllow("203.0.113.0/24")
	allowlisted  = &authn.Principal{OrgID: "org_b", CredentialID: "key_b", Method: authn.MethodAPIKey, IPAllowlist: narrow}
)

func mustAllow(s string) ipallow.List {
	l, err := ipallow.ParseString(s)
	if err != nil {
		panic(err)
	}
	return l
}

// serve runs the gateway behind a minimal stand-in for the server's
// request-info middleware.
func serve(g *Gateway, r *http.Request, client string) *httptest.ResponseRecorder {
	info := &reqinfo.Info{ID: "req_test-1", ClientIP: netip.MustParseAddr(client)}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r.WithContext(reqinfo.With(r.Context(), info)))
	return w
}

func newGateway(t *testing.T, routes []config.Route, trusted func(string) bool) *Gateway {
	t.Helper()
	g, err := New(routes, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal, "narrow": allowlisted}}}, TrustedPeer: trusted,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) (code, reason string) {
	t.Helper()
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Reason    string `json:"reason"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body.String(), err)
	}
	if body.Error.RequestID != "req_test-1" {
		t.Errorf("request_id = %q", body.Error.RequestID)
	}
	return body.Error.Code, body.Error.Reason
}

func TestForwardsWithCallerContextAndWithoutSecrets(t *testing.T) {
	b := newBackend(t)
	g := newGateway(t, []config.Route{{Path: "/v1/", Upstream: b.URL}}, nil)
	r := httptest.NewRequest("POST", "/v1/things?x=1", strings.NewReader("payload"))
	r.Header.Set("X-API-KEY", "good")
	r.Header.Set("X-Tollgate-Org", "org_forged")
	r.Header.Set("X-Tollgate-Anything", "forged")
	r.Header.Set("X-Forwarded-For", "198.51.100.1") // from an untrusted peer: dropped
	r.Header.Set("X-Forwarded-Proto", "https")      // likewise
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("Authorization", "Basic backend-own")
	r.Header.Set("SIGN-IN-WITH-X", "eyJwcm9vZiI6MX0=") // a wallet's proof, for Tollgate only
	w := serve(g, r, "192.0.2.10")
	if w.Code != 200 || w.Body.String() != "payload" {
		t.Fatalf("status %d body %q", w.Code, w.Body.String())
	}
	got := b.last()
	checks := map[string]string{
		"X-Api-Key":             "",
		"X-Tollgate-Org":        "org_a",
		"X-Tollgate-App":        "app_a",
		"X-Tollgate-Credential": "key_a",
		"X-Tollgate-Scopes":     "kyt.read",
		"X-Tollgate-Anything":   "",
		"X-Request-Id":          "req_test-1",
		"X-Forwarded-For":       "192.0.2.1", // httptest.NewRequest's peer
		"X-Forwarded-Proto":     "http",
		"X-Forwarded-Host":      "example.com", // httptest.NewRequest's host
		"Authorization":         "Basic backend-own",
		"Sign-In-With-X":        "",
	}
	for h, want := range checks {
		if v := got.Header.Get(h); v != want {
			t.Errorf("backend saw %s = %q, want %q", h, v, want)
		}
	}
	if ids := w.Header().Values("X-Request-Id"); len(ids) != 0 {
		t.Errorf("upstream's X-Request-Id passed through: %v", ids)
	}
	if got.URL.Path != "/v1/things" || got.URL.RawQuery != "x=1" {
		t.Errorf("backend path %q query %q", got.URL.Path, got.URL.RawQuery)
	}
}

func TestXForwardedForExtendedOnlyThroughTrustedPeer(t *testing.T) {
	b := newBackend(t)
	g := newGateway(t, []config.Route{{Path: "/v1/", Upstream: b.URL}}, func(string) bool { return true })
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("X-API-KEY", "good")
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	r.Header.Set("X-Forwarded-Proto", "https") // a TLS-terminating load balancer
	r.Header.Set("X-Forwarded-Host", "api.example.com")
	serve(g, r, "203.0.113.7")
	h := b.last().Header
	if v := h.Get("X-Forwarded-For"); v != "203.0.113.7, 192.0.2.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Host") != "api.example.com" {
		t.Errorf("trusted proxy's forwarding headers not kept: proto %q host %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
}

func TestRefusalsNeverReachTheBackend(t *testing.T) {
	b := newBackend(t)
	g := newGateway(t, []config.Route{
		{Path: "/v1/", Upstream: b.URL},
		{Path: "/v1/kyt/", Upstream: b.URL, Scopes: []string{"kyt.write"}},
		{Path: "/v2/", Upstream: b.URL, Methods: []string{"GET"}},
	}, nil)
	tests := []struct {
		name, method, path, key, client string
		status                          int
		code, reason                    string
	}{
		{"no key", "GET", "/v1/x", "", "192.0.2.10", 401, "UNAUTHORIZED", ""},
		{"unknown key", "GET", "/v1/x", "nope", "192.0.2.10", 401, "INVALID_CREDENTIALS", ""},
		{"ip not allowed", "GET", "/v1/x", "narrow", "192.0.2.10", 403, "FORBIDDEN", "ip_not_allowed"},
		{"missing scope", "GET", "/v1/kyt/risk", "good", "192.0.2.10", 403, "INSUFFICIENT_SCOPE", ""},
		{"no route", "GET", "/nowhere", "good", "192.0.2.10", 404, "NOT_FOUND", ""},
		{"method", "POST", "/v2/x", "good", "192.0.2.10", 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.key != "" {
				r.Header.Set("X-API-KEY", tt.key)
			}
			w := serve(g, r, tt.client)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body.String())
			}
			code, reason := errorCode(t, w)
			if code != tt.code || reason != tt.reason {
				t.Errorf("code %q reason %q, want %q %q", code, reason, tt.code, tt.reason)
			}
		})
	}
	if n := b.count(); n != 0 {
		t.Fatalf("backend received %d refused requests", n)
	}
	// And the allowlisted key works from inside its range.
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("X-API-KEY", "narrow")
	if w := serve(g, r, "203.0.113.99"); w.Code != 200 {
		t.Fatalf("allowlisted address refused: %d", w.Code)
	}
}

func TestTwoAPIKeyHeadersAreRefused(t *testing.T) {
	b := newBackend(t)
	g := newGateway(t, []config.Route{{Path: "/v1/", Upstream: b.URL}}, nil)
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Add("X-API-KEY", "good")
	r.Header.Add("X-API-KEY", "nope")
	if w := serve(g, r, "192.0.2.10"); w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestRouteMatchingLongestPrefixHostAndStrip(t *testing.T) {
	a, b2 := newBackend(t), newBackend(t)
	g := newGateway(t, []config.Route{
		{Path: "/v1/", Upstream: a.URL},
		{Path: "/v1/special/", Upstream: b2.URL + "/base", StripPrefix: true},
		{Path: "/public/", Upstream: a.URL, Public: true},
		{Path: "/hosted/", Upstream: b2.URL, Host: "api.example.com", Public: true},
	}, nil)
	tests := []struct {
		path, host, key string
		wantBackend     *backend
		wantPath        string
		wantStatus      int
	}{
		{"/v1/special/thing", "", "good", b2, "/base/thing", 200},
		{"/v1/other", "", "good", a, "/v1/other", 200},
		{"/public/info", "", "", a, "/public/info", 200},
		{"/hosted/x", "api.example.com:443", "", b2, "/hosted/x", 200},
		{"/hosted/x", "other.example.com", "", nil, "", 404},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.path, nil)
		if tt.host != "" {
			r.Host = tt.host
		}
		if tt.key != "" {
			r.Header.Set("X-API-KEY", tt.key)
		}
		before := 0
		if tt.wantBackend != nil {
			before = tt.wantBackend.count()
		}
		w := serve(g, r, "192.0.2.10")
		if w.Code != tt.wantStatus {
			t.Errorf("%s %s: status %d, want %d", tt.host, tt.path, w.Code, tt.wantStatus)
			continue
		}
		if tt.wantBackend == nil {
			continue
		}
		if tt.wantBackend.count() != before+1 {
			t.Errorf("%s: request went to the wrong backend", tt.path)
		} else if p := tt.wantBackend.last().URL.Path; p != tt.wantPath {
			t.Errorf("%s: backend path %q, want %q", tt.path, p, tt.wantPath)
		}
	}
}

// A route that strips a prefix without a trailing slash matches whole
// segments only: "/s1kyt/score" and "/s1../kyt/score" would reach its
// upstream as "/kyt/score" and "/../kyt/score", the path the scoped route
// forwards, with a key that lacks its scope.
func TestStripPrefixMatchesWholeSegments(t *testing.T) {
	a := newBackend(t)
	unscoped := &authn.Principal{OrgID: "org_c", CredentialID: "key_c", Method: authn.MethodAPIKey}
	g, err := New([]config.Route{
		{Path: "/s1", Upstream: a.URL, StripPrefix: true},
		{Path: "/s1/kyt/", Upstream: a.URL + "/kyt", StripPrefix: true, Scopes: []string{"kyt.read"}},
	}, Options{Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"unscoped": unscoped}}}})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"/s1/kyt/score": http.StatusForbidden, "/s1kyt/score": http.StatusNotFound, "/s1../kyt/score": http.StatusNotFound,
		"/s1./kyt/score": http.StatusNotFound, "/s1": http.StatusOK, "/s1/": http.StatusOK, "/s1/x": http.StatusOK,
	} {
		before := a.count()
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = path
		r.Header.Set("X-API-KEY", "unscoped")
		w := serve(g, r, "192.0.2.10")
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
		if a.count() != before && strings.Contains(a.last().URL.Path, "kyt") {
			t.Errorf("%s: the upstream got %q", path, a.last().URL.Path)
		}
	}
}

// A method a scoped route lists matches it in any case, and a GET route
// matches HEAD: "post" (POST to Django and Werkzeug) and HEAD (GET's handler
// to most routers) must not fall through to the broader route.
func TestRouteMethodsAsUpstreamsReadThem(t *testing.T) {
	a := newBackend(t)
	unscoped := &authn.Principal{OrgID: "org_c", CredentialID: "key_c", Method: authn.MethodAPIKey}
	g, err := New([]config.Route{
		{Path: "/m/", Upstream: a.URL},
		{Path: "/m/kyt/", Upstream: a.URL, Methods: []string{"POST"}, Scopes: []string{"kyt.write"}},
		{Path: "/m/kyt/", Upstream: a.URL, Methods: []string{"GET"}, Scopes: []string{"kyt.read"}},
	}, Options{Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"unscoped": unscoped}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method string
		want   int
	}{
		{"POST", http.StatusForbidden}, {"post", http.StatusForbidden}, {"Post", http.StatusForbidden},
		{"GET", http.StatusForbidden}, {"get", http.StatusForbidden}, {"HEAD", http.StatusForbidden},
		{"head", http.StatusForbidden}, {"DELETE", http.StatusOK}, {"PUT", http.StatusOK},
	} {
		before := a.count()
		r := httptest.NewRequest(http.MethodGet, "/m/kyt/score", nil)
		r.Method = tc.method
		r.Header.Set("X-API-KEY", "unscoped")
		w := serve(g, r, "192.0.2.10")
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.method, w.Code, tc.want)
		}
		if tc.want != http.StatusOK && a.count() != before {
			t.Errorf("%s reached the upstream", tc.method)
		}
	}
}

// An upstream's 101 opens a WebSocket session only with the handshake's
// Sec-WebSocket-Accept: an upstream answering 101 to anything would
// otherwise hand the client a raw connection, whose later requests
// (GET /v1/kyt/score with a key that lacks the scope) nobody checks.
func TestUpgradeNeedsTheWebSocketHandshake(t *testing.T) {
	if got := websocketAccept("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 section 1.3
		t.Fatalf("websocketAccept = %q", got)
	}
	for name, accept := range map[string]string{"none": "", "wrong": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="} {
		t.Run(name, func(t *testing.T) {
			switched := make(chan struct{}, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer c.Close()
				_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
				if accept != "" {
					_, _ = brw.WriteString("Sec-WebSocket-Accept: " + accept + "\r\n")
				}
				_, _ = brw.WriteString("\r\n")
				_ = brw.Flush()
				if _, err := brw.ReadString('\n'); err == nil {
					switched <- struct{}{} // a request came through the tunnel
				}
			}))
			t.Cleanup(up.Close)
			g := newGateway(t, []config.Route{{Path: "/t/", Upstream: up.URL}}, nil)
			r := httptest.NewRequest("GET", "/t/chat", nil)
			r.Header.Set("X-API-KEY", "good")
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
			r.Header.Set("Sec-WebSocket-Version", "13")
			r.Header.Set("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA==") // not the RFC's: its accept is "wrong"
			w := serve(g, r, "192.0.2.10")
			if w.Code != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", w.Code)
			}
			select {
			case <-switched:
				t.Fatal("the upstream's connection carried a request after the refused switch")
			default:
			}
		})
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g := newGateway(t, []config.Route{{Path: "/v1/", Upstream: dead.URL}}, nil)
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("X-API-KEY", "good")
	w := serve(g, r, "192.0.2.10")
	if w.Code != 502 {
		t.Fatalf("status %d", w.Code)
	}
	if code, _ := errorCode(t, w); code != "BAD_GATEWAY" {
		t.Fatalf("code %q", code)
	}
}

func TestBufferPool(t *testing.T) {
	bp := NewBufferPool()
	b := bp.Get()
	if len(b) != proxyBufferSize {
		t.Fatalf("len %d", len(b))
	}
	bp.Put(b[:10])            // a resliced buffer goes back whole
	bp.Put(make([]byte, 100)) // a foreign one is not kept
	if got := bp.Get(); len(got) != proxyBufferSize {
		t.Fatalf("len %d after Put", len(got))
	}
	if raceEnabled {
		return // sync.Pool drops Puts at random under the race detector
	}
	if n := testing.AllocsPerRun(100, func() { bp.Put(bp.Get()) }); n > 0 {
		t.Errorf("%v allocations per Get+Put", n)
	}
}

// TestNoCredentialsAnswer: with NoCredentials set (x402 enabled), a request
// without any credential gets that answer instead of 401; a bad credential is
// still refused by its method, and public routes stay open.
func TestNoCredentialsAnswer(t *testing.T) {
	b := newBackend(t)
	pay := apierror.New(http.StatusPaymentRequired, apierror.PaymentRequired, "payment required").
		WithHeader("Payment-Required", "eyJ4NDAyVmVyc2lvbiI6Mn0=")
	g, err := New([]config.Route{{Path: "/v1/", Upstream: b.URL}, {Path: "/open/", Upstream: b.URL, Public: true}}, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}},
		NoCredentials:  func() *apierror.Error { return pay },
	})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(g, httptest.NewRequest("GET", "/v1/x", nil), "192.0.2.10")
	if code, _ := errorCode(t, w); w.Code != 402 || code != "PAYMENT_REQUIRED" || w.Header().Get("Payment-Required") == "" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("no credentials: %d %s %v", w.Code, code, w.Header())
	}
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("X-API-KEY", "nope")
	if w := serve(g, r, "192.0.2.10"); w.Code != 401 {
		t.Errorf("bad key: %d, want 401", w.Code)
	}
	if w := serve(g, httptest.NewRequest("GET", "/open/x", nil), "192.0.2.10"); w.Code != 200 {
		t.Errorf("public route: %d, want 200", w.Code)
	}
	if n := b.count(); n != 1 {
		t.Errorf("backend received %d requests, want 1 (the public one)", n)
	}
}

// TestSignedRoutes applies Options.Sign to the routes with SignResponse,
// their refusals included, and asks their upstream for no content coding.
func TestSignedRoutes(t *testing.T) {
	b := newBackend(t)
	sign := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Test-Signed", "yes")
			next.ServeHTTP(w, r)
		})
	}
	g, err := New([]config.Route{
		{Path: "/v1/", Upstream: b.URL},
		{Path: "/v1/signed/", Upstream: b.URL, SignResponse: true},
	}, Options{Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}}, Sign: sign})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, key string
		status    int
		signed    bool
	}{
		{"/v1/signed/x", "good", 200, true},
		{"/v1/signed/x", "bad", 401, true},
		{"/v1/x", "good", 200, false},
		{"/v2/x", "good", 404, false},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.Header.Set("X-API-KEY", tc.key)
		r.Header.Set("Accept-Encoding", "gzip")
		w := serve(g, r, "192.0.2.10")
		if w.Code != tc.status || (w.Header().Get("X-Test-Signed") == "yes") != tc.signed {
			t.Errorf("%s with key %s: %d, signed %q", tc.path, tc.key, w.Code, w.Header().Get("X-Test-Signed"))
		}
		// The client's Accept-Encoding reaches the upstream on unsigned
		// routes only; on signed ones the transport asks for gzip itself
		// and decodes the answer, so the client gets the bytes signed.
		if tc.status == 200 && !tc.signed {
			if got := b.last().Header.Get("Accept-Encoding"); got != "gzip" {
				t.Errorf("%s: upstream saw Accept-Encoding %q", tc.path, got)
			}
		}
	}
}
