package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/store/storetest"
	"github.com/tollgate/tollgate/internal/throttle"
	"github.com/tollgate/tollgate/internal/tokens"
)

var ctx = context.Background()

// countingStore counts the reads that token verification makes.
type countingStore struct {
	*sqlite.Store
	reads atomic.Int64
	fail  atomic.Bool
}

func (c *countingStore) GetAppByClientID(ctx context.Context, id string) (store.App, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return store.App{}, errors.New("database is down")
	}
	return c.Store.GetAppByClientID(ctx, id)
}

type fixture struct {
	svc   *Service
	st    *countingStore
	clock *clock.Fake
	org   string
	actor store.Actor
}

func newFixture(t testing.TB, o Options) *fixture {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 300_000_000, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	org := storetest.SeedOrganization(t, st, clk.Now())
	encoded, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secretbox.ParseKey(encoded)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := tokens.LoadKeyring(ctx, st, box, clk)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	o.Clock, o.Keyring, o.Counters = clk, kr, memory.New(clk)
	o.Issuer, o.Audience = "https://auth.example.com", "https://api.example.com"
	if o.Limits.Window == 0 {
		o.Limits = config.Default().Auth.Login
	}
	svc, err := New(cs, o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: cs, clock: clk, org: org.ID, actor: store.Actor{Type: store.ActorCLI}}
}

func (f *fixture) app(t testing.TB, scopes ...string) CreatedApp {
	t.Helper()
	c, err := f.svc.CreateApp(ctx, f.org, AppInput{Name: "prod-main", AllowedScopes: scopes}, f.actor)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) token(t testing.TB, app store.App, scopes ...string) string {
	t.Helper()
	tok, err := f.svc.Issue(app, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func wantCode(t *testing.T, err error, code apierror.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want %s", code)
	}
	if got := apierror.From(err).Code; got != code {
		t.Fatalf("code %s (%v), want %s", got, err, code)
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.app(t, "kyt.read")
	tok := f.token(t, c.App, "kyt.read")
	p, err := f.svc.Authenticate(bearerRequest(tok))
	if err != nil {
		t.Fatal(err)
	}
	want := authn.Principal{OrgID: f.org, AppID: c.App.ID, CredentialID: c.App.ClientID, Method: authn.MethodBearer, Scopes: []string{"kyt.read"}}
	if p.OrgID != want.OrgID || p.AppID != want.AppID || p.CredentialID != want.CredentialID || p.Method != want.Method ||
		strings.Join(p.Scopes, " ") != "kyt.read" {
		t.Fatalf("principal %+v, want %+v", p, want)
	}
	if _, err := f.svc.Authenticate(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, authn.ErrAbsent) {
		t.Fatalf("no header: %v", err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Basic eDp5")
	if _, err := f.svc.Authenticate(r); !errors.Is(err, authn.ErrAbsent) {
		t.Fatalf("Basic: %v", err)
	}
	r = bearerRequest(tok)
	r.Header.Add("Authorization", "Bearer "+tok)
	_, err = f.svc.Authenticate(r)
	wantCode(t, err, apierror.InvalidToken)
}

// A verified token is served from memory until the cache TTL; then its app
// and revocation are read again, so a change by another process shows.
func TestAuthenticateCache(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: 30 * time.Second})
	c := f.app(t)
	tok := f.token(t, c.App)
	for range 100 {
		if _, err := f.svc.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.st.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 100 requests, want 1", n)
	}
	// Another process deletes the app behind this node's back.
	if _, err := f.st.DeleteApp(ctx, c.App.ID, f.clock.Now(), store.AuditEntry{Action: "app.delete"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(bearerRequest(tok)); err != nil {
		t.Fatalf("within the cache TTL: %v", err)
	}
	f.clock.Advance(31 * time.Second)
	_, err := f.svc.Authenticate(bearerRequest(tok))
	wantCode(t, err, apierror.InvalidToken)

	// A store failure is a 503, not a refusal of the credential, and is not
	// cached.
	c2 := f.app(t)
	tok2 := f.token(t, c2.App)
	f.st.fail.Store(true)
	_, err = f.svc.Authenticate(bearerRequest(tok2))
	wantCode(t, err, apierror.ServiceUnavailable)
	f.st.fail.Store(false)
	if _, err := f.svc.Authenticate(bearerRequest(tok2)); err != nil {
		t.Fatalf("after the store is back: %v", err)
	}
}

// Tokens issued in the same second as a revocation of all the app's tokens,
// before it, are refused; tokens issued after it are not.
func TestRevokeTokensSameSecond(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.app(t)
	before := f.token(t, c.App)
	f.clock.Advance(100 * time.Millisecond)
	app, err := f.svc.RevokeTokens(ctx, f.org, c.App.ID, f.actor)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(100 * time.Millisecond) // still the same second
	after := f.token(t, app)
	_, err = f.svc.Authenticate(bearerRequest(before))
	wantCode(t, err, apierror.InvalidToken)
	if _, err := f.svc.Authenticate(bearerRequest(after)); err != nil {
		t.Fatalf("token issued after the revocation: %v", err)
	}
}

func TestIssueScopes(t *testing.T) {
	f := newFixture(t, Options{TokenTTL: time.Hour})
	c := f.app(t, "kyt.read", "webhook.read")
	tok, err := f.svc.Issue(c.App, []string{"kyt.read", "webhook.read"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != "kyt.read webhook.read" || tok.ExpiresIn != 3600 || tok.TokenType != "Bearer" {
		t.Fatalf("token %+v", tok)
	}
	var oe *Error
	if _, err := f.svc.Issue(c.App, []string{"kyt.write"}); !errors.As(err, &oe) || oe.Code != "invalid_scope" {
		t.Fatalf("scope beyond the app's: %v", err)
	}
	for param, want := range map[string]string{"": "", " kyt.read  kyt.read ": "kyt.read", "b.x a.y": "a.y b.x"} {
		got, err := ParseScope(param)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseScope(%q) = %v, %v; want %q", param, got, err, want)
		}
	}
	if _, err := ParseScope("kyt.read\tx"); err == nil {
		t.Error("ParseScope accepted a tab")
	}
}

func TestAuthenticateClient(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.app(t)
	ip := netip.MustParseAddr("203.0.113.9")
	if _, err := f.svc.AuthenticateClient(ctx, Client{c.App.ClientID, c.Secret}, ip); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Client{
		{c.App.ClientID, c.Secret[:63]},
		{c.App.ClientID, strings.ToUpper(c.Secret)},
		{"client_unknown", c.Secret},
		{"", ""},
	} {
		var oe *Error
		if _, err := f.svc.AuthenticateClient(ctx, bad, ip); !errors.As(err, &oe) || oe.Code != "invalid_client" {
			t.Errorf("%q: %v", bad.ID, err)
		}
	}
}

// Client secrets are beyond guessing: the right one is admitted whoever
// failed before, from whatever address. Wrong ones are counted per address
// and per address and client ID; past the free failures an address gets
// 429 with a growing Retry-After, another address does not.
func TestAuthenticateClientRightSecretAlwaysAdmitted(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.app(t)
	ipA, ipB := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("198.51.100.7")
	wrong := Client{c.App.ClientID, strings.Repeat("y", SecretLength)}
	right := Client{c.App.ClientID, c.Secret}
	attempt := func(cl Client, ip netip.Addr) *Error {
		t.Helper()
		var oe *Error
		if _, err := f.svc.AuthenticateClient(ctx, cl, ip); !errors.As(err, &oe) {
			t.Fatalf("wrong secret from %v: %v", ip, err)
		}
		return oe
	}
	rightWorks := func(after string) {
		t.Helper()
		for _, ip := range []netip.Addr{ipA, ipB} {
			if app, err := f.svc.AuthenticateClient(ctx, right, ip); err != nil || app.ID != c.App.ID {
				t.Fatalf("right secret from %v %s: %v", ip, after, err)
			}
		}
	}
	// The free failures, and the one that starts the delay.
	for i := range config.Default().Auth.Login.MaxFailuresPerIPAccount + 1 {
		if oe := attempt(wrong, ipA); oe.Code != "invalid_client" {
			t.Fatalf("wrong secret %d: %+v", i+1, oe)
		}
		rightWorks(fmt.Sprintf("after %d wrong ones", i+1))
	}
	var prev time.Duration
	for i := range 6 {
		oe := attempt(wrong, ipA)
		if oe.Code != "temporarily_unavailable" || oe.Status != http.StatusTooManyRequests || oe.RetryAfter <= prev {
			t.Fatalf("wrong secret during delay %d: %+v (previous delay %v)", i+1, oe, prev)
		}
		prev = oe.RetryAfter
		rightWorks(fmt.Sprintf("during delay %d", i+1))
		f.clock.Advance(oe.RetryAfter)
		if oe := attempt(wrong, ipA); oe.Code != "invalid_client" {
			t.Fatalf("wrong secret after delay %d: %+v", i+1, oe)
		}
	}
	// Many addresses, each within its free failures, delay nobody.
	for i := range 40 {
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		for range 5 {
			var oe *Error
			if _, err := f.svc.AuthenticateClient(ctx, wrong, ip); !errors.As(err, &oe) || oe.Code != "invalid_client" {
				t.Fatalf("wrong secret from %v: %v", ip, err)
			}
		}
	}
	var oe *Error
	if _, err := f.svc.AuthenticateClient(ctx, wrong, ipB); !errors.As(err, &oe) || oe.Code != "invalid_client" {
		t.Fatalf("address B: %v", err)
	}
	if _, err := f.svc.AuthenticateClient(ctx, right, ipB); err != nil {
		t.Fatal(err)
	}
}

// downCounters is a counter store that cannot be reached.
type downCounters struct{ *memory.Store }

func (downCounters) Fail(context.Context, string, counters.Backoff) (counters.Decision, error) {
	return counters.Decision{}, errors.New("redis: connection refused")
}

// A right secret touches no counter: it is admitted while the counter
// store is down; a wrong one cannot be counted and fails.
func TestAuthenticateClientCountersDown(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.app(t)
	f.svc.clients = throttle.New(downCounters{memory.New(f.clock)}, "oauth", throttle.FromConfig(f.svc.o.Limits))
	ip := netip.MustParseAddr("203.0.113.9")
	if _, err := f.svc.AuthenticateClient(ctx, Client{c.App.ClientID, c.Secret}, ip); err != nil {
		t.Fatalf("right secret while the counters are down: %v", err)
	}
	var oe *Error
	if _, err := f.svc.AuthenticateClient(ctx, Client{c.App.ClientID, strings.Repeat("y", SecretLength)}, ip); err == nil || errors.As(err, &oe) {
		t.Fatalf("wrong secret while the counters are down: %v, want the counters' error", err)
	}
}

// Form bodies are bounded by MaxBody before they are parsed, on every
// endpoint: 413 PAYLOAD_TOO_LARGE in the common error body.
func TestFormBodyLimit(t *testing.T) {
	const limit = 1024
	f := newFixture(t, Options{MaxBody: limit})
	c := f.app(t)
	h := f.svc.Handler("https://api.example.com")
	send := func(path, body string, declared bool) *httptest.ResponseRecorder {
		var r *http.Request
		if declared {
			r = httptest.NewRequest("POST", path, strings.NewReader(body))
		} else {
			// No Content-Length: the body is cut while it is read.
			r = httptest.NewRequest("POST", path, io.MultiReader(strings.NewReader(body)))
			r.ContentLength = -1
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(c.App.ClientID, c.Secret)
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{ID: "req_1"}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	form := func(n int) string {
		base := "grant_type=client_credentials&token=x&pad="
		return base + strings.Repeat("a", n-len(base))
	}
	for _, path := range []string{TokenPath, RevokePath, IntrospectPath} {
		for _, declared := range []bool{true, false} {
			name := fmt.Sprintf("%s declared=%v", path, declared)
			if w := send(path, form(limit), declared); w.Code != http.StatusOK {
				t.Errorf("%s: a body of exactly the limit: %d %s", name, w.Code, w.Body)
			}
			w := send(path, form(limit+1), declared)
			var body struct {
				Error struct{ Code, Message, RequestID string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusRequestEntityTooLarge ||
				body.Error.Code != "PAYLOAD_TOO_LARGE" || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s: a body over the limit: %d %s", name, w.Code, w.Body)
			}
		}
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	f := newFixture(b, Options{CacheTTL: time.Hour})
	c := f.app(b, "kyt.read")
	tok := f.token(b, c.App, "kyt.read")
	r := bearerRequest(tok)
	if _, err := f.svc.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.svc.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateUncached is the cost of a token seen for the first
// time: RS256 verification and two store reads.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newFixture(b, Options{CacheTTL: time.Nanosecond})
	c := f.app(b)
	r := bearerRequest(f.token(b, c.App))
	b.ReportAllocs()
	for b.Loop() {
		f.clock.Advance(time.Microsecond)
		if _, err := f.svc.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// Another node's cache hears of a revoked token and a deleted app through
// Apply at once, not after its cache TTL.
func TestApplyInvalidations(t *testing.T) {
	var msgs []string
	f := newFixture(t, Options{CacheTTL: time.Hour, Broadcast: func(m string) { msgs = append(msgs, m) }})
	o := f.svc.o
	o.Broadcast = nil
	other, err := New(f.st, o) // a second node on the same store
	if err != nil {
		t.Fatal(err)
	}
	c := f.app(t)
	tok1, tok2 := f.token(t, c.App), f.token(t, c.App)
	for _, tok := range []string{tok1, tok2} {
		if _, err := other.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := f.svc.Revoke(ctx, c.App, tok1, f.actor); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	if len(msgs) != 2 || !strings.HasPrefix(msgs[0], "oauth-token:") || !strings.HasPrefix(msgs[1], authn.MsgTokenRevoked) {
		t.Fatalf("broadcast %q, want the cache's message and the sessions' one", msgs)
	}
	if other.Apply(msgs[1]) {
		t.Error("Apply took the sessions' message as its own")
	}
	if _, err := other.Authenticate(bearerRequest(tok1)); err != nil {
		t.Fatalf("before the message, the other node's cache still holds the token: %v", err)
	}
	if !other.Apply(msgs[0]) {
		t.Fatal("message not taken")
	}
	_, err = other.Authenticate(bearerRequest(tok1))
	wantCode(t, err, apierror.InvalidToken)

	if _, err := f.svc.DeleteApp(ctx, f.org, c.App.ID, f.actor); err != nil {
		t.Fatal(err)
	}
	last := msgs[len(msgs)-2]
	if last != "oauth-client:"+c.App.ClientID || !other.Apply(last) || msgs[len(msgs)-1] != authn.MsgCredentialEnded+c.App.ClientID {
		t.Fatalf("app deletion broadcast %q", msgs)
	}
	_, err = other.Authenticate(bearerRequest(tok2))
	wantCode(t, err, apierror.InvalidToken)
	if other.Apply("apikey:00") || !other.Apply("*") {
		t.Error("Apply took another service's message, or refused Resync")
	}
}
