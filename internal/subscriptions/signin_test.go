package subscriptions

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

const wallet = "eip155:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

var errBadToken = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "malformed SIWX token")

// fakeSubs is a subscription store that counts its reads.
type fakeSubs struct {
	mu    sync.Mutex
	subs  map[string]store.Subscription
	reads int
	err   error
	// disabled holds the DisabledAt of disabled organizations.
	disabled map[string]time.Time
}

func (f *fakeSubs) GetSubscription(_ context.Context, w string) (store.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return store.Subscription{}, f.err
	}
	s, ok := f.subs[w]
	if !ok {
		return store.Subscription{}, store.ErrNotFound
	}
	return s, nil
}

func (f *fakeSubs) GetOrganization(_ context.Context, id string) (store.Organization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return store.Organization{ID: id, DisabledAt: f.disabled[id]}, nil
}

func (f *fakeSubs) set(s store.Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[s.Wallet] = s
}

var payRequired = apierror.New(http.StatusPaymentRequired, apierror.PaymentRequired, "payment required").WithHeader("Payment-Required", "e30=")

func newSignIn(t *testing.T, subs *fakeSubs, clk clock.Clock) *SignIn {
	t.Helper()
	s, err := NewSignIn(SignInOptions{
		Verify: func(token string) (string, error) {
			if token == "good" {
				return wallet, nil
			}
			return "", errBadToken
		},
		// Proofs "proof…" are valid, their text their nonce.
		VerifyHeader: func(h string) (Proof, error) {
			if strings.HasPrefix(h, "proof") {
				return Proof{Wallet: wallet, Nonce: h, Until: clk.Now().Add(5 * time.Minute)}, nil
			}
			return Proof{}, errBadToken
		},
		Replay: memory.New(clk), ReplayMaxPerWallet: 3,
		Subscriptions: subs, PaymentRequired: func() *apierror.Error { return payRequired }, Clock: clk, CacheTTL: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authenticate(s *SignIn, headers ...string) (*authn.Principal, error) {
	r := httptest.NewRequest("GET", "/v1/x", nil)
	for _, h := range headers {
		r.Header.Add("Authorization", h)
	}
	return s.Authenticate(r)
}

func TestSignIn(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	subs := &fakeSubs{subs: map[string]store.Subscription{}}
	s := newSignIn(t, subs, clk)

	for _, h := range [][]string{nil, {"Bearer abc"}, {"Basic YTpi"}, {"SIWXtoken"}} {
		if _, err := authenticate(s, h...); !errors.Is(err, authn.ErrAbsent) {
			t.Errorf("Authorization %q: %v, want ErrAbsent", h, err)
		}
	}
	if _, err := authenticate(s, "SIWX bad"); apierror.From(err).Code != apierror.InvalidToken {
		t.Errorf("bad token: %v", err)
	}
	if _, err := authenticate(s, "SIWX good", "Bearer x"); apierror.From(err).Code != apierror.InvalidToken {
		t.Errorf("two Authorization headers: %v", err)
	}
	// A valid wallet without a subscription: 402 with the requirements.
	_, err := authenticate(s, "siwx good")
	if e := apierror.From(err); e.Status != 402 || e.Reason != "no_active_subscription" || e.Header.Get("Payment-Required") == "" {
		t.Fatalf("no subscription: %v", err)
	}

	// Bought on another node: seen once the cached answer is older than the TTL.
	subs.set(store.Subscription{Wallet: wallet, OrgID: "org_w", Plan: "pro", ExpiresAt: clk.Now().Add(time.Hour)})
	if _, err := authenticate(s, "SIWX good"); apierror.From(err).Status != 402 {
		t.Errorf("within the cache TTL: %v, want the cached 402", err)
	}
	clk.Advance(5 * time.Second)
	p, err := authenticate(s, "SIWX good")
	if err != nil {
		t.Fatal(err)
	}
	if p.OrgID != "org_w" || p.CredentialID != wallet || p.Method != authn.MethodSIWX || p.Plan != "pro" || len(p.Scopes) != 0 {
		t.Errorf("principal %+v", *p)
	}
	reads := subs.reads
	if _, err := authenticate(s, "SIWX good"); err != nil || subs.reads != reads {
		t.Errorf("a cached answer read the store again (%d reads, %v)", subs.reads-reads, err)
	}

	// Expiry is checked on every request, cached or not.
	clk.Advance(time.Hour - 5*time.Second)
	if _, err := authenticate(s, "SIWX good"); apierror.From(err).Status != 402 {
		t.Errorf("at expiry: %v, want 402", err)
	}

	// Forget: a purchase through this node is seen at once.
	subs.set(store.Subscription{Wallet: wallet, OrgID: "org_w", Plan: "max", ExpiresAt: clk.Now().Add(time.Hour)})
	s.Forget(wallet)
	if p, err := authenticate(s, "SIWX good"); err != nil || p.Plan != "max" {
		t.Errorf("after Forget: %+v, %v", p, err)
	}

	// A store failure is an internal error, not a 402.
	subs.err = errors.New("disk on fire")
	s.Forget(wallet)
	if _, err := authenticate(s, "SIWX good"); apierror.From(err).Status != 500 {
		t.Errorf("store failure: %v, want 500", err)
	}
}

func TestSignInConcurrent(t *testing.T) {
	clk := clock.NewFake(time.Now())
	subs := &fakeSubs{subs: map[string]store.Subscription{wallet: {Wallet: wallet, OrgID: "org_w", ExpiresAt: clk.Now().Add(time.Hour)}}}
	s := newSignIn(t, subs, clk)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := authenticate(s, "SIWX good"); err != nil {
					t.Error(err)
					return
				}
				s.Forget("eip155:0xother")
			}
		})
	}
	wg.Wait()
}

func TestNewSignInRequires(t *testing.T) {
	if _, err := NewSignIn(SignInOptions{}); err == nil {
		t.Error("NewSignIn without options: no error")
	}
}

// TestSignInHeader admits x402's SIGN-IN-WITH-X header like an
// Authorization SIWX token, which wins when both are sent.
func TestSignInHeader(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	subs := &fakeSubs{subs: map[string]store.Subscription{}}
	s := newSignIn(t, subs, clk)
	req := func(auth string, proofs ...string) (*authn.Principal, error) {
		r := httptest.NewRequest("GET", "/v1/x", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		for _, p := range proofs {
			r.Header.Add("SIGN-IN-WITH-X", p)
		}
		return s.Authenticate(r)
	}
	var e *apierror.Error
	if _, err := req("", "proof"); !errors.As(err, &e) || e.Status != 402 || e.Reason != "no_active_subscription" {
		t.Fatalf("no subscription: %v", err)
	}
	subs.set(store.Subscription{Wallet: wallet, OrgID: "org_1", Plan: "pro", ExpiresAt: clk.Now().Add(time.Hour)})
	s.Forget(wallet)
	if p, err := req("", "proof"); err != nil || p.OrgID != "org_1" || p.Method != authn.MethodSIWX {
		t.Fatalf("header: %+v, %v", p, err)
	}
	// A proof is used once.
	if _, err := req("", "proof"); !errors.As(err, &e) || e.Status != 401 || e.Code != apierror.InvalidSignature || e.Reason != "replayed" {
		t.Fatalf("the same proof again: %v", err)
	}
	if _, err := req("", "forged"); !errors.Is(err, errBadToken) {
		t.Fatalf("bad header: %v", err)
	}
	if _, err := req("", "proof2", "proof3"); !errors.As(err, &e) || e.Code != apierror.InvalidToken {
		t.Fatalf("two headers: %v", err)
	}
	if _, err := req("SIWX bad", "proof4"); !errors.Is(err, errBadToken) {
		t.Fatalf("the Authorization token must win: %v", err)
	}
	if _, err := req("Bearer x", "proof5"); err != nil {
		t.Fatalf("a Bearer token beside a proof: %v", err)
	}
	if _, err := req("Bearer x"); !errors.Is(err, authn.ErrAbsent) {
		t.Fatalf("no SIWX credential: %v", err)
	}
}

// TestSignInProofOnce: a SIGN-IN-WITH-X proof's nonce is claimed only once
// the wallet is known to be subscribed, is given back when the gateway
// refuses the request after all (reqinfo.Info.Undo), and each wallet holds
// at most ReplayMaxPerWallet nonces.
func TestSignInProofOnce(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	subs := &fakeSubs{subs: map[string]store.Subscription{}}
	s := newSignIn(t, subs, clk)
	send := func(proof string) (*reqinfo.Info, error) {
		info := &reqinfo.Info{}
		r := httptest.NewRequest("GET", "/v1/x", nil)
		r = r.WithContext(reqinfo.With(r.Context(), info))
		r.Header.Set("SIGN-IN-WITH-X", proof)
		_, err := s.Authenticate(r)
		return info, err
	}
	// Refused for want of a subscription: the nonce is not spent.
	if _, err := send("proof-a"); apierror.From(err).Status != 402 {
		t.Fatalf("without a subscription: %v", err)
	}
	subs.set(store.Subscription{Wallet: wallet, OrgID: "org_1", ExpiresAt: clk.Now().Add(time.Hour)})
	s.Forget(wallet)
	info, err := send("proof-a")
	if err != nil || info.Undo == nil {
		t.Fatalf("subscribed: %v (undo set: %v)", err, info.Undo != nil)
	}
	if _, err := send("proof-a"); apierror.From(err).Reason != "replayed" {
		t.Fatalf("again: %v", err)
	}
	// The gateway refused it after all (a rate limit): it may come again.
	info.Undo(context.Background())
	if _, err := send("proof-a"); err != nil {
		t.Fatalf("after Undo: %v", err)
	}
	// A bound of 3 nonces per wallet: 429 beyond, until they expire.
	for _, p := range []string{"proof-b", "proof-c"} {
		if _, err := send(p); err != nil {
			t.Fatal(err)
		}
	}
	e := apierror.From(func() error { _, err := send("proof-d"); return err }())
	if e.Status != 429 || e.Code != apierror.RateLimited || e.Reason != "replay_cache_full" || e.Header.Get("Retry-After") == "" {
		t.Fatalf("beyond the wallet's share: %v", e)
	}
	clk.Advance(5*time.Minute + time.Second)
	if _, err := send("proof-d"); err != nil {
		t.Fatalf("once the nonces expired: %v", err)
	}
}

// TestSignInOrgDisabled: a wallet of a disabled organization is refused with
// 403 organization_disabled as soon as the organization's message is
// applied, its cached answer notwithstanding; enabling restores it, and the
// principal carries the subscription's end for the sessions opened with it.
func TestSignInOrgDisabled(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	subs := &fakeSubs{subs: map[string]store.Subscription{}, disabled: map[string]time.Time{}}
	s := newSignIn(t, subs, clk)
	end := clk.Now().Add(time.Hour)
	subs.set(store.Subscription{Wallet: wallet, OrgID: "org_w", Plan: "pro", ExpiresAt: end})
	p, err := authenticate(s, "SIWX good")
	if err != nil {
		t.Fatal(err)
	}
	if !p.ExpiresAt.Equal(end) {
		t.Errorf("principal ExpiresAt = %v, want the subscription's end %v", p.ExpiresAt, end)
	}

	subs.mu.Lock()
	subs.disabled["org_w"] = clk.Now()
	subs.mu.Unlock()
	if s.Apply(authn.MsgOrgDisabled + "org_other") {
		t.Error("Apply reported an organization's message as its own")
	}
	if _, err := authenticate(s, "SIWX good"); err != nil {
		t.Errorf("another organization's message dropped this wallet: %v", err)
	}
	s.Apply(authn.MsgOrgDisabled + "org_w")
	_, err = authenticate(s, "SIWX good")
	if e := apierror.From(err); e.Status != http.StatusForbidden || e.Reason != apierror.ReasonOrgDisabled {
		t.Fatalf("disabled organization: %v, want 403 %s", err, apierror.ReasonOrgDisabled)
	}

	subs.mu.Lock()
	delete(subs.disabled, "org_w")
	subs.mu.Unlock()
	s.Apply(authn.MsgOrgEnabled + "org_w")
	if _, err := authenticate(s, "SIWX good"); err != nil {
		t.Errorf("enabled again: %v", err)
	}
	if !s.Apply("*") {
		t.Error("Apply(Resync) = false")
	}
}
