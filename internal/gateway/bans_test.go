package gateway

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters/memory"
)

func bannedGateway(t *testing.T, clk *clock.Fake) (*Gateway, *memory.Store) {
	t.Helper()
	mem := memory.New(clk)
	g, err := New([]config.Route{{Path: "/v1/", Upstream: newBackend(t).URL}}, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}},
		Bans:           &Bans{Counters: mem, MaxFailures: 3, Window: time.Minute, Duration: 10 * time.Minute},
		Clock:          clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, mem
}

func get(g *Gateway, key, client string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/v1/x", nil)
	if key != "" {
		r.Header.Set(HeaderAPIKey, key)
	}
	return serve(g, r, client)
}

// An address that keeps presenting bad keys is banned, good key or not,
// for the ban's duration; other addresses are not.
func TestAutoBan(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g, _ := bannedGateway(t, clk)
	const attacker, other = "198.51.100.1", "198.51.100.2"
	for range 10 { // no credential at all is no failed attempt
		if w := get(g, "", attacker); w.Code != 401 {
			t.Fatalf("no key: %d", w.Code)
		}
	}
	for i := range 3 {
		if w := get(g, "bad", attacker); w.Code != 401 {
			t.Fatalf("bad key %d: %d", i, w.Code)
		}
	}
	if w := get(g, "good", attacker); w.Code != 200 {
		t.Fatalf("after 3 failures (the threshold): %d", w.Code)
	}
	get(g, "bad", attacker) // the 4th failure within the window bans
	w := get(g, "good", attacker)
	if code, reason := errorCode(t, w); w.Code != 403 || code != "FORBIDDEN" || reason != ReasonBanned || w.Header().Get("Retry-After") != "600" {
		t.Fatalf("banned address: %d %s %s Retry-After %q", w.Code, code, reason, w.Header().Get("Retry-After"))
	}
	if w := get(g, "good", other); w.Code != 200 {
		t.Fatalf("another address: %d", w.Code)
	}
	clk.Advance(10*time.Minute + time.Second)
	if w := get(g, "good", attacker); w.Code != 200 {
		t.Fatalf("after the ban: %d", w.Code)
	}
}

// Credentials and organizations banned by an operator are refused.
func TestBannedCredentialAndOrganization(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g, mem := bannedGateway(t, clk)
	ctx := context.Background()
	if err := mem.Ban(ctx, BanKey(BanCredential, orgPrincipal.CredentialID), time.Minute); err != nil {
		t.Fatal(err)
	}
	if w := get(g, "good", "203.0.113.1"); w.Code != 403 {
		t.Fatalf("banned credential: %d", w.Code)
	}
	clk.Advance(2 * time.Minute)
	if w := get(g, "good", "203.0.113.1"); w.Code != 200 {
		t.Fatalf("after the credential's ban: %d", w.Code)
	}
	if err := mem.Ban(ctx, BanKey(BanOrganization, orgPrincipal.OrgID), time.Minute); err != nil {
		t.Fatal(err)
	}
	if w := get(g, "good", "203.0.113.1"); w.Code != 403 {
		t.Fatalf("banned organization: %d", w.Code)
	}
}
