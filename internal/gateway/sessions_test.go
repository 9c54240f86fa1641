package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// upgrade is a WebSocket handshake request of p from ip.
func upgrade(p *authn.Principal, ip string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/ws", nil)
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "websocket")
	info := &reqinfo.Info{ID: "req_t", ClientIP: netip.MustParseAddr(ip), Principal: p}
	return r.WithContext(reqinfo.With(r.Context(), info))
}

// ended reports whether a session's context has been closed by the
// register, and why.
func ended(r *http.Request) bool {
	return errors.Is(context.Cause(r.Context()), errSessionEnded)
}

// TestSessionsRegister: the cap per credential, the slot freed by done, and
// each way a session is closed — by message, by ban, by expiry — closing
// exactly the sessions concerned.
func TestSessionsRegister(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	ctr := memory.New(clk)
	s := NewSessions(SessionsOptions{Counters: ctr, Max: 2, Clock: clk})

	key := &authn.Principal{OrgID: "org_a", CredentialID: "key_1", Method: authn.MethodAPIKey}
	expiring := &authn.Principal{OrgID: "org_a", CredentialID: "key_2", Method: authn.MethodAPIKey, ExpiresAt: clk.Now().Add(time.Hour)}
	tok := &authn.Principal{OrgID: "org_b", CredentialID: "client_1", Method: authn.MethodBearer, TokenID: "jti_1"}

	open := func(p *authn.Principal, ip string) (*http.Request, func()) {
		t.Helper()
		r, done, err := s.open(upgrade(p, ip))
		if err != nil || done == nil {
			t.Fatalf("open %s: %v", p.CredentialID, err)
		}
		return r, done
	}
	k1, done1 := open(key, "192.0.2.1")
	k2, done2 := open(key, "192.0.2.2")
	_, _, err := s.open(upgrade(key, "192.0.2.3"))
	if e := apierror.From(err); e.Status != 429 || e.Reason != apierror.ReasonTooManySessions {
		t.Fatalf("over the cap: %v", err)
	}
	done1()
	if s.Len() != 1 {
		t.Fatalf("Len after done = %d", s.Len())
	}
	k1, done1 = open(key, "192.0.2.1")
	defer done1()
	defer done2()
	e1, doneE := open(expiring, "192.0.2.9")
	defer doneE()
	t1, doneT := open(tok, "192.0.2.9")
	defer doneT()

	// Not an upgrade, or nobody authenticated: not a session.
	plain := httptest.NewRequest("GET", "/v1/x", nil)
	if r, done, err := s.open(plain); r != plain || done != nil || err != nil {
		t.Error("a plain request was registered")
	}
	if _, done, _ := s.open(upgrade(nil, "192.0.2.1")); done != nil {
		t.Error("an unauthenticated upgrade was registered")
	}

	// Messages of other things close nothing.
	for _, msg := range []string{"apikey-ids:key_9", authn.MsgOrgDisabled + "org_z", authn.MsgOrgEnabled + "org_a",
		authn.MsgTokenRevoked + "jti_9", "*", "oauth-client:client_1", ""} {
		if n := s.End(msg); n != 0 {
			t.Errorf("End(%q) closed %d", msg, n)
		}
	}
	// A ban key that is not banned (expired, or a stray message) closes
	// nothing.
	if n := s.Banned(BanKey(BanIP, "192.0.2.9"), ctr); n != 0 {
		t.Errorf("an address that is not banned: %d closed", n)
	}

	if n := s.End(authn.MsgTokenRevoked + "jti_1"); n != 1 || !ended(t1) || ended(k1) || ended(e1) {
		t.Errorf("token revoked: %d closed", n)
	}
	if err := ctr.Ban(context.Background(), BanKey(BanIP, "192.0.2.2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := s.Banned(BanKey(BanIP, "192.0.2.2"), ctr); n != 1 || !ended(k2) || ended(k1) {
		t.Errorf("address banned: %d closed", n)
	}

	// Expiry: the timer, on the fake clock.
	clk.Advance(59 * time.Minute)
	if ended(e1) {
		t.Fatal("closed before its credential expired")
	}
	clk.Advance(time.Minute)
	waitEnded(t, e1, "the expired credential's session")

	if n := s.End(authn.MsgOrgDisabled + "org_a"); n < 1 || !ended(k1) {
		t.Errorf("organization disabled: %d closed", n)
	}
	var nilSessions *Sessions
	if r, done, err := nilSessions.open(upgrade(key, "192.0.2.1")); r == nil || done != nil || err != nil || nilSessions.End("x") != 0 {
		t.Error("a nil register is not inert")
	}
}

func waitEnded(t *testing.T, r *http.Request, what string) {
	t.Helper()
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s is still open", what)
	}
	if !ended(r) {
		t.Fatalf("%s: context ended by %v", what, context.Cause(r.Context()))
	}
}

// TestIsUpgrade: the spellings of an upgrade that ReverseProxy honours, and
// what is not one.
func TestIsUpgrade(t *testing.T) {
	for _, c := range []struct {
		conn, upgrade string
		want          bool
	}{
		{"Upgrade", "websocket", true},
		{"keep-alive, UPGRADE", "websocket", true},
		{"upgrade", "h2c", true},
		{"Upgrade", "", false},
		{"keep-alive", "websocket", false},
		{"", "websocket", false},
		{"Upgraded", "websocket", false},
	} {
		r := httptest.NewRequest("GET", "/v1/ws", nil)
		if c.conn != "" {
			r.Header.Set("Connection", c.conn)
		}
		if c.upgrade != "" {
			r.Header.Set("Upgrade", c.upgrade)
		}
		if got := IsUpgrade(r); got != c.want {
			t.Errorf("Connection %q, Upgrade %q: %v, want %v", c.conn, c.upgrade, got, c.want)
		}
	}
	r := httptest.NewRequest("CONNECT", "/v1/ws", nil)
	if IsUpgrade(r) {
		t.Error("a plain CONNECT is a session")
	}
	r.Header.Set(":protocol", "websocket")
	if !IsUpgrade(r) {
		t.Error("an extended CONNECT (RFC 8441) is not a session")
	}
}

// refusing is a Limiter that refuses every request.
type refusing struct{}

func (refusing) Limit(http.ResponseWriter, *http.Request, *authn.Principal, int64) error {
	return apierror.New(http.StatusTooManyRequests, apierror.RateLimited, "rate")
}
func (refusing) Charge(context.Context, *authn.Principal, int64) error { return nil }

// TestSlotBeforeCharge: a marked upgrade takes its slot before the limiter
// is asked, so that one refused for the cap is never charged; one the
// limiter refuses gives its slot back; requests that are not marked (the
// decision API's) take none.
func TestSlotBeforeCharge(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	ctr := memory.New(clk)
	s := NewSessions(SessionsOptions{Counters: ctr, Max: 1, Clock: clk})
	p := &authn.Principal{OrgID: "org_a", CredentialID: "key_1", Method: authn.MethodAPIKey}
	l := s.limiter(refusing{})
	for range 3 {
		r := s.mark(upgrade(p, "192.0.2.1"))
		if err := l.Limit(httptest.NewRecorder(), r, p, 1); apierror.From(err).Reason == apierror.ReasonTooManySessions {
			t.Fatal("the slot of an upgrade the limiter refused was kept")
		}
	}
	if ok, err := ctr.AcquireSlot(context.Background(), slotKey(p), "probe", 1, time.Minute); err != nil || !ok {
		t.Fatalf("the slot is not free: %v, %v", ok, err)
	}
	_ = ctr.ReleaseSlot(context.Background(), slotKey(p), "probe")

	var charged int
	counting := s.limiter(limiterFunc(func() { charged++ }))
	r := s.mark(upgrade(p, "192.0.2.1"))
	if err := counting.Limit(httptest.NewRecorder(), r, p, 1); err != nil {
		t.Fatal(err)
	}
	r2 := s.mark(upgrade(p, "192.0.2.1"))
	err := counting.Limit(httptest.NewRecorder(), r2, p, 1)
	if e := apierror.From(err); e.Reason != apierror.ReasonTooManySessions || charged != 1 {
		t.Fatalf("over the cap: %v, charged %d times, want refused and charged once", err, charged)
	}
	// The reserved slot is the session's: open registers it, done frees it.
	r, done, err := s.open(r)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if ok, _ := ctr.AcquireSlot(context.Background(), slotKey(p), "probe", 1, time.Minute); !ok {
		t.Fatal("the session's slot was not freed when it ended")
	}
	// Not marked: no slot.
	plain := upgrade(p, "192.0.2.1")
	if err := counting.Limit(httptest.NewRecorder(), plain, p, 1); err != nil {
		t.Fatalf("an unmarked upgrade: %v", err)
	}
}

// limiterFunc admits every request, calling f for each.
type limiterFunc func()

func (f limiterFunc) Limit(http.ResponseWriter, *http.Request, *authn.Principal, int64) error {
	f()
	return nil
}
func (limiterFunc) Charge(context.Context, *authn.Principal, int64) error { return nil }
