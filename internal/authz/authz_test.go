package authz

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// keyAuth admits X-API-KEY "good" (org_1) and "limited" (org_2), refuses
// any other key.
type keyAuth struct{ seenBody atomic.Value }

func (a *keyAuth) Authenticate(r *http.Request) (*authn.Principal, error) {
	k := r.Header.Get("X-API-KEY")
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		a.seenBody.Store(string(b))
	}
	switch k {
	case "":
		return nil, authn.ErrAbsent
	case "good":
		return &authn.Principal{OrgID: "org_1", AppID: "app_1", CredentialID: "key_1", Method: authn.MethodAPIKey, Scopes: []string{"a.read"}}, nil
	case "limited":
		return &authn.Principal{OrgID: "org_2", CredentialID: "key_2", Method: authn.MethodAPIKey, Plan: "pro"}, nil
	case "local":
		allow, _ := ipallow.Parse([]string{"10.0.0.0/8"})
		return &authn.Principal{OrgID: "org_3", CredentialID: "key_3", Method: authn.MethodAPIKey, IPAllowlist: allow}, nil
	}
	return nil, apierror.New(http.StatusUnauthorized, apierror.InvalidCredentials, "invalid API key")
}

func (*keyAuth) Challenge() string { return `APIKey realm="tollgate"` }

// limiter limits org_2 to two requests; others are unlimited. It records
// charges.
type limiter struct {
	mu      sync.Mutex
	n       int
	charged int64
}

func (l *limiter) Limit(w http.ResponseWriter, _ *http.Request, p *authn.Principal, _ int64) error {
	if p.OrgID != "org_2" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	w.Header().Set("RateLimit-Policy", `"burst";q=2;w=1`)
	if l.n > 2 {
		return apierror.New(http.StatusTooManyRequests, apierror.RateLimited, "rate limit exceeded").WithHeader("Retry-After", "1")
	}
	return nil
}

func (l *limiter) Charge(_ context.Context, p *authn.Principal, units int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.OrgID == "" {
		return errors.New("no org")
	}
	l.charged += units
	return nil
}

type sink struct {
	mu      sync.Mutex
	batches map[string][]store.UsageEvent
	totals  map[string][]store.UsageTotal
}

func (s *sink) RecordUsageTotals(_ context.Context, id string, totals []store.UsageTotal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.totals == nil {
		s.totals = map[string][]store.UsageTotal{}
	}
	s.totals[id] = append([]store.UsageTotal(nil), totals...)
	return nil
}

func (s *sink) RecordUsage(_ context.Context, id string, events []store.UsageEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batches == nil {
		s.batches = map[string][]store.UsageEvent{}
	}
	s.batches[id] = append([]store.UsageEvent(nil), events...)
	return nil
}

type fixture struct {
	auth    *keyAuth
	limiter *limiter
	sink    *sink
	metered []store.UsageEvent
	mu      sync.Mutex
	srv     *httptest.Server
	token   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{auth: &keyAuth{}, limiter: &limiter{}, sink: &sink{}, token: strings.Repeat("t", 32)}
	gw, err := gateway.New([]config.Route{
		{Path: "/v1/", Upstream: "http://127.0.0.1:1"},
		{Path: "/v1/scoped/", Upstream: "http://127.0.0.1:1", Scopes: []string{"b.write"}},
		{Path: "/public/", Upstream: "http://127.0.0.1:1", Public: true},
	}, gateway.Options{Authenticators: []authn.Authenticator{f.auth}, Limiter: f.limiter})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := clientip.NewResolver([]string{"192.168.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{
		Gateway: gw, TokenSHA256: sha256.Sum256([]byte(f.token)), TokenSet: true,
		ClientIP: resolver.ClientIP,
		Meter: func(e *store.UsageEvent, _ string) {
			f.mu.Lock()
			f.metered = append(f.metered, *e)
			f.mu.Unlock()
		},
		Usage: f.sink, Charger: f.limiter,
	})
	ids := httpx.NewIDGenerator()
	f.srv = httptest.NewServer(httpx.Chain(h,
		httpx.RequestInfo(ids, func(r *http.Request) netip.Addr {
			return netip.MustParseAddrPort(r.RemoteAddr).Addr()
		}, clock.System{}, nil)))
	t.Cleanup(f.srv.Close)
	return f
}

// forward sends a forward-auth request for the original method and URI.
func (f *fixture) forward(t *testing.T, path, method, uri string, h map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set(HeaderServiceToken, f.token)
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("X-Forwarded-Host", "api.example.com")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestForwardAuthAdmits(t *testing.T) {
	f := newFixture(t)
	res, _ := f.forward(t, PathForwardAuth, "GET", "/v1/prices?x=1", map[string]string{
		"X-API-KEY": "good", "X-Forwarded-For": "203.0.113.7",
	})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		gateway.HeaderOrg: "org_1", gateway.HeaderApp: "app_1", gateway.HeaderCredential: "key_1",
		gateway.HeaderScopes: "a.read", HeaderMethod: "apikey", HeaderRoute: "/v1/",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if res.Header.Get(gateway.HeaderRequestID) == "" {
		t.Error("no X-Request-Id to copy upstream")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.metered) != 1 || f.metered[0].ClientIP != "203.0.113.7" || f.metered[0].OrgID != "org_1" ||
		f.metered[0].Path != "/v1/prices" || f.metered[0].Status != 200 {
		t.Errorf("metered %+v", f.metered)
	}
}

func TestForwardAuthRefusals(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, uri, key string
		status         int
		code           apierror.Code
	}{
		{"no credential", "/v1/x", "", 401, apierror.Unauthorized},
		{"bad key", "/v1/x", "bad", 401, apierror.InvalidCredentials},
		{"scope", "/v1/scoped/x", "good", 403, apierror.InsufficientScope},
		{"ip", "/v1/x", "local", 403, apierror.Forbidden},
		{"no route", "/nowhere", "good", 404, apierror.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := f.forward(t, PathForwardAuth, "GET", c.uri, map[string]string{"X-API-KEY": c.key})
			if res.StatusCode != c.status || !strings.Contains(body, `"code":"`+string(c.code)+`"`) {
				t.Fatalf("%d %s, want %d %s", res.StatusCode, body, c.status, c.code)
			}
			if res.Header.Get(gateway.HeaderOrg) != "" {
				t.Error("a refusal carries context headers")
			}
		})
	}
	// The rate limit: two admitted, then 429 with Retry-After.
	for i := range 3 {
		res, body := f.forward(t, PathForwardAuth, "GET", "/v1/x", map[string]string{"X-API-KEY": "limited"})
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if res.StatusCode != want {
			t.Fatalf("request %d: %d %s", i+1, res.StatusCode, body)
		}
		if i == 2 && res.Header.Get("Retry-After") != "1" {
			t.Error("429 without Retry-After")
		}
		if res.Header.Get("RateLimit-Policy") == "" {
			t.Error("no RateLimit-Policy for the client")
		}
	}
	// Public routes are admitted without credentials.
	if res, _ := f.forward(t, PathForwardAuth, "GET", "/public/a", nil); res.StatusCode != 200 || res.Header.Get(gateway.HeaderOrg) != "" {
		t.Errorf("public route: %d org=%q", res.StatusCode, res.Header.Get(gateway.HeaderOrg))
	}
}

func TestForwardAuthNginx(t *testing.T) {
	f := newFixture(t)
	res, body := f.forward(t, PathNginx, "GET", "/v1/scoped/x", map[string]string{"X-API-KEY": "good"})
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401 for nginx", res.StatusCode)
	}
	if res.Header.Get(HeaderStatus) != "403" {
		t.Errorf("X-Tollgate-Status = %q", res.Header.Get(HeaderStatus))
	}
	e := res.Header.Get(HeaderError)
	var parsed map[string]map[string]string
	if err := json.Unmarshal([]byte(e), &parsed); err != nil || parsed["error"]["code"] != "INSUFFICIENT_SCOPE" {
		t.Errorf("X-Tollgate-Error = %q (%v)", e, err)
	}
	if strings.TrimSpace(body) != e {
		t.Errorf("body %q differs from the header", body)
	}
	if res, _ := f.forward(t, PathNginx, "GET", "/v1/x", map[string]string{"X-API-KEY": "good"}); res.StatusCode != 200 {
		t.Errorf("admitted: %d", res.StatusCode)
	}
}

func TestForwardAuthRejectsBadInput(t *testing.T) {
	f := newFixture(t)
	if res, _ := f.forward(t, PathForwardAuth, "GET", "http://evil/x", nil); res.StatusCode != 400 {
		t.Errorf("absolute URI: %d", res.StatusCode)
	}
	if res, _ := f.forward(t, PathForwardAuth, "get me", "/v1/x", nil); res.StatusCode != 400 {
		t.Errorf("bad method: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+PathForwardAuth, nil)
	req.Header.Set("X-Forwarded-Uri", "/v1/x")
	req.Header.Set("X-API-KEY", "good")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("without the service token: %d", res.StatusCode)
	}
}

// A proxy describing the request with X-Original-URI and X-Original-Method
// passes the client's headers on: a client's X-Forwarded-Method beside them
// is refused, not taken for the method (it would turn a POST that a scoped
// route lists into a GET of the broader route).
func TestForwardAuthMethodFromTheProxy(t *testing.T) {
	f := newFixture(t)
	send := func(h map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.srv.URL+PathNginx, nil)
		req.Header.Set(HeaderServiceToken, f.token)
		req.Header.Set("X-Original-Uri", "/v1/x")
		req.Header.Set("X-API-KEY", "good")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if s := res.Header.Get(HeaderStatus); s != "" {
			n, _ := strconv.Atoi(s)
			return n
		}
		return res.StatusCode
	}
	if s := send(map[string]string{"X-Original-Method": "POST"}); s != 200 {
		t.Errorf("X-Original-Method alone: %d", s)
	}
	if s := send(map[string]string{"X-Original-Method": "POST", "X-Forwarded-Method": "POST"}); s != 200 {
		t.Errorf("both, equal: %d", s)
	}
	if s := send(map[string]string{"X-Original-Method": "POST", "X-Forwarded-Method": "GET"}); s != 400 {
		t.Errorf("a client's X-Forwarded-Method beside X-Original-Method: %d, want 400", s)
	}
}

// Only trusted proxies' X-Forwarded-For entries are believed: the caller
// appended the peer it saw (right-most).
func TestForwardAuthClientIP(t *testing.T) {
	f := newFixture(t)
	f.forward(t, PathForwardAuth, "GET", "/v1/x", map[string]string{
		"X-API-KEY": "good", "X-Forwarded-For": "1.1.1.1, 198.51.100.9, 192.168.1.1",
	})
	f.forward(t, PathForwardAuth, "GET", "/v1/x", map[string]string{
		"X-API-KEY": "good", "X-Forwarded-For": "1.1.1.1, 198.51.100.9",
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.metered[0].ClientIP != "198.51.100.9" || f.metered[1].ClientIP != "198.51.100.9" {
		t.Errorf("client IPs %q, %q; want 198.51.100.9 both times", f.metered[0].ClientIP, f.metered[1].ClientIP)
	}
}

func newClient(t *testing.T, f *fixture, ttl bool) (*Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	inner := http.DefaultTransport
	o := ClientOptions{Token: f.token, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == PathDecide {
			calls.Add(1)
		}
		return inner.RoundTrip(r)
	})}
	if ttl {
		o.CacheTTL = 1 << 40
	}
	c, err := NewClient(f.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// gatewayRequest is a request as a gateway-role node received it.
func gatewayRequest(key, uri string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, uri, nil)
	r.Header.Set("X-API-KEY", key)
	info := &reqinfo.Info{ID: "req_1", ClientIP: netip.MustParseAddr("203.0.113.5")}
	return r.WithContext(reqinfo.With(r.Context(), info))
}

// Routes of different hosts may share a path prefix: a decision cached for
// one is not the other's. An admission of the open route for any host
// was reused for the scoped route of admin.example.com.
func TestClientCacheKeysTheHost(t *testing.T) {
	f := newFixture(t)
	gw, err := gateway.New([]config.Route{
		{Path: "/h/", Upstream: "http://127.0.0.1:1", Host: "admin.example.com", Scopes: []string{"admin"}},
		{Path: "/h/", Upstream: "http://127.0.0.1:1"},
	}, gateway.Options{Authenticators: []authn.Authenticator{f.auth}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpx.Chain(New(Options{Gateway: gw, TokenSHA256: sha256.Sum256([]byte(f.token)), TokenSet: true}),
		httpx.RequestInfo(httpx.NewIDGenerator(), func(*http.Request) netip.Addr { return netip.MustParseAddr("127.0.0.1") }, clock.System{}, nil)))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, ClientOptions{Token: f.token, CacheTTL: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"api.example.com", true}, {"admin.example.com", false}, {"ADMIN.example.com.:443", false}, {"api.example.com", true}} {
		r := gatewayRequest("good", "/h/x")
		r.Host = tc.host
		_, err := c.Decide(httptest.NewRecorder(), r, "/h/")
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want admitted %v", tc.host, err, tc.ok)
		}
	}
}

func TestClientDecide(t *testing.T) {
	f := newFixture(t)
	c, calls := newClient(t, f, true)
	w := httptest.NewRecorder()
	p, err := c.Decide(w, gatewayRequest("good", "/v1/a"), "/v1/")
	if err != nil || p == nil || p.OrgID != "org_1" || p.AppID != "app_1" || p.CredentialID != "key_1" ||
		p.Method != authn.MethodAPIKey || len(p.Scopes) != 1 {
		t.Fatalf("Decide = %+v, %v", p, err)
	}
	// An unlimited decision is cached: no second call.
	if _, err := c.Decide(httptest.NewRecorder(), gatewayRequest("good", "/v1/b"), "/v1/"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls for two cacheable decisions, want 1", calls.Load())
	}
	// A limited one never is: the third is refused by the auth service.
	for i := range 3 {
		w := httptest.NewRecorder()
		p, err := c.Decide(w, gatewayRequest("limited", "/v1/a"), "/v1/")
		if i < 2 && (err != nil || p.Plan != "pro" || w.Header().Get("RateLimit-Policy") == "") {
			t.Fatalf("limited %d: %+v, %v, headers %v", i, p, err, w.Header())
		}
		if i == 2 {
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Status != 429 || ae.Code != apierror.RateLimited || ae.Header.Get("Retry-After") != "1" {
				t.Fatalf("third limited: %v", err)
			}
		}
	}
	if calls.Load() != 4 {
		t.Errorf("%d calls, want 4 (1 cached + 3 limited)", calls.Load())
	}
	// Refusals keep their code and message; the invalid key is not cached.
	for range 2 {
		_, err := c.Decide(httptest.NewRecorder(), gatewayRequest("bad", "/v1/a"), "/v1/")
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != apierror.InvalidCredentials || ae.Message != "invalid API key" {
			t.Fatalf("bad key: %v", err)
		}
	}
	if calls.Load() != 6 {
		t.Errorf("%d calls, want 6: an invalid key is asked again (it may be created meanwhile)", calls.Load())
	}
}

func TestClientSignedRequestCarriesBody(t *testing.T) {
	f := newFixture(t)
	c, calls := newClient(t, f, true)
	for range 2 {
		r := httptest.NewRequest(http.MethodPost, "/v1/a", strings.NewReader(`{"a":1}`))
		r.Header.Set("X-API-KEY", "good")
		r.Header.Set("X-Signature", "sig")
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{ClientIP: netip.MustParseAddr("203.0.113.5")}))
		if _, err := c.Decide(httptest.NewRecorder(), r, "/v1/"); err != nil {
			t.Fatal(err)
		}
		if got := f.auth.seenBody.Load(); got != `{"a":1}` {
			t.Errorf("the auth service saw body %q", got)
		}
		if b, _ := io.ReadAll(r.Body); string(b) != `{"a":1}` {
			t.Errorf("the body left for the upstream is %q", b)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2: signed requests are never cached", calls.Load())
	}
}

func TestClientUsageAndCharge(t *testing.T) {
	f := newFixture(t)
	c, _ := newClient(t, f, false)
	ev := []store.UsageEvent{{ID: "req_1", OrgID: "org_1", Status: 200, Units: 3, Path: "/v1/a"}}
	if err := c.RecordUsage(t.Context(), "batch_1", ev); err != nil {
		t.Fatal(err)
	}
	f.sink.mu.Lock()
	got := f.sink.batches["batch_1"]
	f.sink.mu.Unlock()
	if len(got) != 1 || got[0].Units != 3 || got[0].OrgID != "org_1" {
		t.Errorf("stored %+v", got)
	}
	// The totals of events left out of the request log go the same way.
	hour := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	tot := []store.UsageTotal{{Hour: hour, OrgID: "org_1", CredentialID: "key_1", Requests: 40, Errors: 2, Units: 120}}
	if err := c.RecordUsageTotals(t.Context(), "batch_2", tot); err != nil {
		t.Fatal(err)
	}
	f.sink.mu.Lock()
	gotTotals := f.sink.totals["batch_2"]
	f.sink.mu.Unlock()
	if len(gotTotals) != 1 || gotTotals[0] != tot[0] {
		t.Errorf("stored totals %+v, want %+v", gotTotals, tot)
	}
	// A batch is of events or of totals: both at once is refused, and
	// stores neither.
	if err := c.post(t.Context(), PathUsage, usageBatch{BatchID: "batch_3", Events: ev, Totals: tot}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a batch of events and totals: %v, want a 400", err)
	}
	f.sink.mu.Lock()
	_, stored := f.sink.batches["batch_3"]
	_, storedTotals := f.sink.totals["batch_3"]
	f.sink.mu.Unlock()
	if stored || storedTotals {
		t.Error("a refused batch was stored")
	}
	if err := c.Charge(t.Context(), &authn.Principal{OrgID: "org_1"}, 5); err != nil {
		t.Fatal(err)
	}
	if f.limiter.charged != 5 {
		t.Errorf("charged %d", f.limiter.charged)
	}
	if err := c.Ping(t.Context()); err == nil {
		t.Log("ping answered") // the fixture serves no /healthz: 401 or 404
	}
}

func TestClientAuthServiceDown(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:1", ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decide(httptest.NewRecorder(), gatewayRequest("good", "/v1/a"), "/v1/")
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want 503", err)
	}
	if _, err := NewClient("ftp://x", ClientOptions{}); err == nil {
		t.Error("an ftp URL accepted")
	}
}

// FuzzRebuild: whatever a caller puts in the forwarded headers, the rebuilt
// request is well-formed or refused with 400, never a panic.
func FuzzRebuild(f *testing.F) {
	f.Add("GET", "/v1/a?b=c", "api.example.com", "1.2.3.4, 5.6.7.8", "https")
	f.Add("", "", "", "", "")
	f.Add("POST", "//x/../y", "h:1", "::1", "http")
	f.Add("GET", "/%zz", "h", "garbage, , ,", "HTTPS")
	resolver, _ := clientip.NewResolver([]string{"10.0.0.0/8"})
	h := New(Options{ClientIP: resolver.ClientIP})
	f.Fuzz(func(t *testing.T, method, uri, host, xff, proto string) {
		r := httptest.NewRequest(http.MethodGet, "/forward-auth", nil)
		r.Header = http.Header{
			"X-Forwarded-Method": {method}, "X-Forwarded-Uri": {uri}, "X-Forwarded-Host": {host},
			"X-Forwarded-For": {xff}, "X-Forwarded-Proto": {proto},
		}
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{}))
		orig, err := h.rebuild(r, modeForward)
		if err != nil {
			if apierror.From(err).Status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if orig.URL == nil || !strings.HasPrefix(orig.RequestURI, "/") || !validMethod(orig.Method) {
			t.Fatalf("rebuilt %q %q", orig.Method, orig.RequestURI)
		}
		// A proxy forwards the target as it is: Tollgate decided on
		// exactly that path.
		if got, err := url.PathUnescape(strings.SplitN(uri, "?", 2)[0]); err != nil || got != orig.URL.Path {
			t.Fatalf("decided on %q, the proxy forwards %q", orig.URL.Path, uri)
		}
		for k := range orig.Header {
			if strings.HasPrefix(k, "X-Forwarded-") {
				t.Fatalf("forwarded header %s left in the rebuilt request", k)
			}
		}
	})
}

// TestClientSignInProofNotCached: a SIGN-IN-WITH-X proof is accepted once,
// so a gateway node never answers one from its decision cache: each is
// decided by the auth service, which sees the replay.
func TestClientSignInProofNotCached(t *testing.T) {
	f := newFixture(t)
	c, calls := newClient(t, f, true)
	for range 2 {
		r := httptest.NewRequest(http.MethodGet, "/v1/a", nil)
		r.Header.Set("X-API-KEY", "good")
		r.Header.Set("Sign-In-With-X", "proof")
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{ClientIP: netip.MustParseAddr("203.0.113.5")}))
		_, _ = c.Decide(httptest.NewRecorder(), r, "/v1/")
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2: requests with a SIGN-IN-WITH-X proof are never cached", calls.Load())
	}
}

func TestOriginForm(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/a?b": "/v1/a?b", "http://api.example.com/v1/a?b": "/v1/a?b", "https://h": "/", "http://h?x=1": "/?x=1",
		"HTTP://h:8080/v1/%2e%2e/x": "/v1/%2e%2e/x",
	} {
		if got := originForm(in); got != want {
			t.Errorf("originForm(%q) = %q, want %q", in, got, want)
		}
	}
}
