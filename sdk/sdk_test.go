package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/sdk"
)

const (
	testID     = "cli_test"
	testSecret = "s3cr3t-Xy9+/=" // characters that need form-encoding in Basic
)

// gateway is a fake Tollgate: a token endpoint and a protected resource that
// accepts only the latest token issued.
type gateway struct {
	*httptest.Server
	t *testing.T

	expiresIn   atomic.Int64 // of the tokens issued
	attempts    atomic.Int64 // token requests
	fetches     atomic.Int64 // token requests answered with a token
	calls       atomic.Int64 // requests to the resource
	tokenDelay  time.Duration
	postStyle   bool // expect client_secret_post instead of Basic
	tokenFails  atomic.Bool
	alwaysDeny  atomic.Bool
	mu          sync.Mutex
	latest      string // token the resource accepts
	lastScope   string
	scopeWasSet bool
}

func newGateway(t *testing.T, opts ...func(*gateway)) *gateway {
	t.Helper()
	g := &gateway{t: t}
	g.expiresIn.Store(86400)
	for _, o := range opts {
		o(g)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", g.token)
	mux.HandleFunc("/resource", g.resource)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.attempts.Add(1)
	if g.tokenDelay > 0 {
		time.Sleep(g.tokenDelay)
	}
	if g.tokenFails.Load() {
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	var id, secret string
	user, pass, basic := r.BasicAuth()
	if basic != !g.postStyle || r.PostForm.Has("client_secret") == !g.postStyle {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if basic {
		id, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(pass)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	if id != testID || secret != testSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="tollgate"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	n := g.fetches.Add(1)
	tok := fmt.Sprintf("tok-%d", n)
	g.mu.Lock()
	g.latest = tok
	g.lastScope, g.scopeWasSet = r.PostForm.Get("scope"), r.PostForm.Has("scope")
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   g.expiresIn.Load(),
		"scope":        r.PostForm.Get("scope"),
	})
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// resource answers the method and body of the request, or 401 as the
// gateway does.
func (g *gateway) resource(w http.ResponseWriter, r *http.Request) {
	g.calls.Add(1)
	g.mu.Lock()
	ok := g.latest != "" && r.Header.Get("Authorization") == "Bearer "+g.latest
	g.mu.Unlock()
	if !ok || g.alwaysDeny.Load() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tollgate", error="invalid_token", error_description="access token invalid"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"INVALID_TOKEN","message":"access token invalid"}}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	_, _ = fmt.Fprintf(w, "%s %s", r.Method, body)
}

// revoke makes the resource refuse every token issued so far.
func (g *gateway) revoke() {
	g.mu.Lock()
	g.latest = ""
	g.mu.Unlock()
}

func (g *gateway) config() sdk.ClientCredentials {
	c := sdk.ClientCredentials{
		TokenURL:     g.URL + "/oauth/token",
		ClientID:     testID,
		ClientSecret: testSecret,
		HTTPClient:   g.Client(),
	}
	if g.postStyle {
		c.AuthStyle = oauth2.AuthStyleInParams
	}
	return c
}

// get calls the resource with c and returns the status and body.
func get(t *testing.T, c *http.Client, g *gateway) (int, string) {
	t.Helper()
	return do(t, c, mustRequest(t, http.MethodGet, g.URL+"/resource", nil))
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func wantCount(t *testing.T, what string, got *atomic.Int64, want int64) {
	t.Helper()
	if n := got.Load(); n != want {
		t.Errorf("%s = %d, want %d", what, n, want)
	}
}

func newFakeClock() *clock.Fake {
	return clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestTokenReused(t *testing.T) {
	g := newGateway(t)
	c := g.config().Client(t.Context())
	for range 20 {
		if status, body := get(t, c, g); status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
	}
	wantCount(t, "token fetches", &g.fetches, 1)
	wantCount(t, "resource calls", &g.calls, 20)
}

func TestTokenSourceResult(t *testing.T) {
	g := newGateway(t)
	clock := newFakeClock()
	conf := g.config()
	conf.Now = clock.Now
	start := clock.Now()
	tok, err := conf.TokenSource(t.Context()).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "tok-1" || tok.Type() != "Bearer" {
		t.Errorf("token %q of type %q", tok.AccessToken, tok.Type())
	}
	// Expiry is stated by the injected clock, a little early.
	if d := tok.Expiry.Sub(start); d > 24*time.Hour || d < 24*time.Hour-time.Minute {
		t.Errorf("Expiry = start + %v, want about 24h", d)
	}
}

func TestRefreshEarly(t *testing.T) {
	g := newGateway(t)
	clock := newFakeClock()
	conf := g.config()
	conf.Now = clock.Now
	ts := conf.TokenSource(t.Context())

	token := func() string {
		t.Helper()
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	if got := token(); got != "tok-1" {
		t.Fatalf("first token %q", got)
	}
	clock.Advance(22*time.Hour + 59*time.Minute) // 1 minute before the margin
	if got := token(); got != "tok-1" {
		t.Errorf("at 22h59m: token %q, want tok-1 still", got)
	}
	wantCount(t, "fetches at 22h59m", &g.fetches, 1)

	clock.Advance(2 * time.Minute) // 23h01m: within the last hour
	if got := token(); got != "tok-2" {
		t.Errorf("at 23h01m: token %q, want tok-2", got)
	}
	if got := token(); got != "tok-2" {
		t.Errorf("again at 23h01m: token %q, want tok-2", got)
	}
	wantCount(t, "fetches at 23h01m", &g.fetches, 2)

	// The new token's margin counts from its own fetch.
	clock.Advance(22*time.Hour + 58*time.Minute)
	token()
	wantCount(t, "fetches 22h58m after the refresh", &g.fetches, 2)
	clock.Advance(2 * time.Minute)
	token()
	wantCount(t, "fetches 23h after the refresh", &g.fetches, 3)
}

func TestRefreshMarginCappedAtHalfLifetime(t *testing.T) {
	for _, tc := range []struct {
		name          string
		expiresIn     int64
		refreshBefore time.Duration
		refreshAt     time.Duration // from the fetch
	}{
		{"30m token, default margin", 1800, 0, 15 * time.Minute},
		{"2h token, default margin", 7200, 0, time.Hour},
		{"30m token, 5m margin", 1800, 5 * time.Minute, 25 * time.Minute},
		{"30m token, no margin", 1800, -1, 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t)
			g.expiresIn.Store(tc.expiresIn)
			clock := newFakeClock()
			conf := g.config()
			conf.Now = clock.Now
			conf.RefreshBefore = tc.refreshBefore
			ts := conf.TokenSource(t.Context())
			base := clock.Now()
			for _, step := range []struct {
				at      time.Duration // since the first fetch
				fetches int64
			}{
				{0, 1},
				{tc.refreshAt - time.Second, 1},
				{tc.refreshAt + time.Second, 2},
				{tc.refreshAt + 2*time.Second, 2},
			} {
				clock.Set(base.Add(step.at))
				if _, err := ts.Token(); err != nil {
					t.Fatal(err)
				}
				wantCount(t, fmt.Sprintf("fetches at %v", step.at), &g.fetches, step.fetches)
			}
		})
	}
}

func TestRetryOn401(t *testing.T) {
	g := newGateway(t)
	c := g.config().Client(t.Context())
	get(t, c, g)
	g.revoke()
	if status, body := get(t, c, g); status != http.StatusOK || body != "GET " {
		t.Errorf("after revocation: %d %q, want 200 \"GET \"", status, body)
	}
	wantCount(t, "token fetches", &g.fetches, 2)
	wantCount(t, "resource calls", &g.calls, 3) // 1 + refused + retried
}

func TestSecond401Returned(t *testing.T) {
	g := newGateway(t)
	g.alwaysDeny.Store(true)
	c := g.config().Client(t.Context())
	resp, err := c.Get(g.URL + "/resource")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "INVALID_TOKEN") {
		t.Errorf("got %d %s, want the gateway's 401", resp.StatusCode, body)
	}
	if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", h)
	}
	wantCount(t, "token fetches", &g.fetches, 2)
	wantCount(t, "resource calls", &g.calls, 2)
}

func TestRetryReplaysBody(t *testing.T) {
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			g := newGateway(t)
			c := g.config().Client(t.Context())
			get(t, c, g)
			g.revoke()
			req := mustRequest(t, method, g.URL+"/resource", strings.NewReader(`{"n":1}`))
			if status, body := do(t, c, req); status != http.StatusOK || body != method+` {"n":1}` {
				t.Errorf("got %d %q", status, body)
			}
			wantCount(t, "token fetches", &g.fetches, 2)
			wantCount(t, "resource calls", &g.calls, 3)
		})
	}
}

func TestNoRetryUnreplayableBody(t *testing.T) {
	g := newGateway(t)
	c := g.config().Client(t.Context())
	get(t, c, g)
	g.revoke()
	// A body http.NewRequest cannot rewind: no GetBody.
	req := mustRequest(t, http.MethodPost, g.URL+"/resource", io.MultiReader(strings.NewReader("once")))
	if req.GetBody != nil {
		t.Fatal("test request has GetBody")
	}
	if status, _ := do(t, c, req); status != http.StatusUnauthorized {
		t.Errorf("status %d, want 401 returned as is", status)
	}
	wantCount(t, "resource calls", &g.calls, 2)
	wantCount(t, "token fetches", &g.fetches, 1)

	// The refused token was dropped: the next request gets a new one.
	if status, _ := get(t, c, g); status != http.StatusOK {
		t.Errorf("next request: status %d, want 200", status)
	}
	wantCount(t, "token fetches", &g.fetches, 2)
}

func TestRequestNotModified(t *testing.T) {
	g := newGateway(t)
	c := g.config().Client(t.Context())
	get(t, c, g)
	g.revoke()
	req := mustRequest(t, http.MethodPost, g.URL+"/resource", strings.NewReader("x"))
	req.Header.Set("X-Custom", "1")
	if status, _ := do(t, c, req); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if len(req.Header) != 1 || req.Header.Get("X-Custom") != "1" {
		t.Errorf("caller's header changed: %v", req.Header)
	}

	// An Authorization header of the caller's is replaced.
	req = mustRequest(t, http.MethodGet, g.URL+"/resource", nil)
	req.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
	if status, _ := do(t, c, req); status != http.StatusOK {
		t.Errorf("with an Authorization header of the caller's: status %d", status)
	}
	if got := req.Header.Get("Authorization"); got != "Basic Zm9vOmJhcg==" {
		t.Errorf("caller's Authorization changed to %q", got)
	}
}

// closeRecorder records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTokenErrorClosesBody(t *testing.T) {
	g := newGateway(t)
	g.tokenFails.Store(true)
	c := g.config().Client(t.Context())
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req := mustRequest(t, http.MethodPost, g.URL+"/resource", body)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error, want the token endpoint's")
	}
	if !body.closed.Load() {
		t.Error("request body not closed")
	}
	wantCount(t, "resource calls", &g.calls, 0)
}

func TestConcurrentTokenOneFetch(t *testing.T) {
	g := newGateway(t, func(g *gateway) { g.tokenDelay = 50 * time.Millisecond })
	ts := g.config().TokenSource(t.Context())
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := ts.Token()
			if err != nil {
				t.Error(err)
				return
			}
			toks[i] = tok.AccessToken
		})
	}
	wg.Wait()
	wantCount(t, "token fetches", &g.fetches, 1)
	for i, tok := range toks {
		if tok != "tok-1" {
			t.Errorf("caller %d got %q", i, tok)
		}
	}
}

func TestConcurrentRefreshServesCachedToken(t *testing.T) {
	g := newGateway(t, func(g *gateway) { g.tokenDelay = 50 * time.Millisecond })
	clock := newFakeClock()
	conf := g.config()
	conf.Now = clock.Now
	ts := conf.TokenSource(t.Context())
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(23*time.Hour + time.Minute)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			tok, err := ts.Token()
			if err != nil {
				t.Error(err)
			} else if tok.AccessToken != "tok-1" && tok.AccessToken != "tok-2" {
				t.Errorf("got %q", tok.AccessToken)
			}
		})
	}
	wg.Wait()
	wantCount(t, "token fetches", &g.fetches, 2)
}

func TestConcurrent401OneRefetch(t *testing.T) {
	g := newGateway(t)
	c := g.config().Client(t.Context())
	get(t, c, g)
	g.revoke()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := c.Get(g.URL + "/resource")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	wantCount(t, "token fetches", &g.fetches, 2)
}

func TestRefreshFailureKeepsValidToken(t *testing.T) {
	g := newGateway(t)
	clock := newFakeClock()
	conf := g.config()
	conf.Now = clock.Now
	ts := conf.TokenSource(t.Context())
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	g.tokenFails.Store(true)
	clock.Advance(23*time.Hour + time.Minute)
	for range 3 {
		tok, err := ts.Token()
		if err != nil || tok.AccessToken != "tok-1" {
			t.Fatalf("in the margin, endpoint down: %v, %v; want tok-1", tok, err)
		}
	}
	wantCount(t, "token requests", &g.attempts, 2) // no new attempt within a minute
	clock.Advance(time.Minute)
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	wantCount(t, "token requests a minute later", &g.attempts, 3)

	clock.Advance(time.Hour) // expired
	if tok, err := ts.Token(); err == nil {
		t.Fatalf("expired, endpoint down: got %q, want an error", tok.AccessToken)
	}
	g.tokenFails.Store(false)
	if tok, err := ts.Token(); err != nil || tok.AccessToken != "tok-2" {
		t.Errorf("endpoint up again: %v, %v; want tok-2", tok, err)
	}
}

func TestInvalidate(t *testing.T) {
	g := newGateway(t)
	ts := g.config().TokenSource(t.Context())
	t1, _ := ts.Token()
	ts.Invalidate(t1)
	t2, err := ts.Token()
	if err != nil || t2.AccessToken != "tok-2" {
		t.Fatalf("after Invalidate: %v, %v; want tok-2", t2, err)
	}
	ts.Invalidate(t1) // already replaced: ignored
	ts.Invalidate(nil)
	if t3, _ := ts.Token(); t3.AccessToken != "tok-2" {
		t.Errorf("Invalidate of a replaced token dropped %q", t3.AccessToken)
	}
	wantCount(t, "token fetches", &g.fetches, 2)
}

func TestClientSecretPost(t *testing.T) {
	g := newGateway(t, func(g *gateway) { g.postStyle = true })
	c := g.config().Client(t.Context())
	if status, body := get(t, c, g); status != http.StatusOK {
		t.Errorf("status %d: %s", status, body)
	}
	wantCount(t, "token fetches", &g.fetches, 1)
}

func TestWrongSecret(t *testing.T) {
	for _, post := range []bool{false, true} {
		t.Run(fmt.Sprintf("post=%v", post), func(t *testing.T) {
			g := newGateway(t, func(g *gateway) { g.postStyle = post })
			conf := g.config()
			conf.ClientSecret = "wrong-secret-value"
			_, err := conf.TokenSource(t.Context()).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
				t.Fatalf("error %v, want an oauth2.RetrieveError with invalid_client", err)
			}
			if strings.Contains(err.Error(), conf.ClientSecret) {
				t.Errorf("error contains the secret: %v", err)
			}

			_, err = conf.Client(t.Context()).Get(g.URL + "/resource")
			if err == nil {
				t.Fatal("client: no error")
			}
			if strings.Contains(err.Error(), conf.ClientSecret) {
				t.Errorf("client error contains the secret: %v", err)
			}
			wantCount(t, "resource calls", &g.calls, 0)
		})
	}
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		scopes []string
		want   string
		sent   bool
	}{
		{[]string{"read:items", "write"}, "read:items write", true},
		{[]string{"read"}, "read", true},
		{nil, "", false},
	} {
		g := newGateway(t)
		conf := g.config()
		conf.Scopes = tc.scopes
		if _, err := conf.TokenSource(context.Background()).Token(); err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		scope, sent := g.lastScope, g.scopeWasSet
		g.mu.Unlock()
		if scope != tc.want || sent != tc.sent {
			t.Errorf("Scopes %q: scope sent %v as %q, want %v %q", tc.scopes, sent, scope, tc.sent, tc.want)
		}
	}
}
