package server

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// A signed request refused after its signature was verified (scope, IP
// allowlist, ban, rate limit, quota) never reached the upstream: its place in the replay
// cache is given back and the very same request may be sent again. An
// admitted one keeps its place: its replay is refused.
func TestRefusedSignedRequestMaySendAgain(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL)+`
plans:
  - name: tight
    rate: {requests_per_second: 0.1, burst: 1}
    quota: {units: 3, period: month}
default_plan: tight
`, nil)
	user := n.account("fay@example.com", "Fay")
	key, id, secret := n.signedKey(user, true)
	send := func(h []string, path string) response {
		t.Helper()
		return do(t, "GET", n.base+path, nil, h...)
	}
	want := func(r response, status int, code, reason string) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
		}
		if code != "" {
			if c, re := r.errCode(t); c != code || re != reason {
				t.Fatalf("%s (%s), want %s (%s)", c, re, code, reason)
			}
		}
	}

	// Scope: refused, then refused again for its scope, not as a replay.
	kyt := seedHeaders(key, secret, "GET", "/v1/kyt/a", "", n.clock.Now())
	want(send(kyt, "/v1/kyt/a"), 403, "INSUFFICIENT_SCOPE", "")
	want(send(kyt, "/v1/kyt/a"), 403, "INSUFFICIENT_SCOPE", "")

	// Rate limit: the second request is refused; once the rate allows it,
	// the same signed request goes through, once.
	first := seedHeaders(key, secret, "GET", "/v1/one", "", n.clock.Now())
	want(send(first, "/v1/one"), 200, "", "")
	limited := seedHeaders(key, secret, "GET", "/v1/two", "", n.clock.Now())
	want(send(limited, "/v1/two"), 429, "RATE_LIMITED", "")
	n.clock.Advance(11 * time.Second)
	want(send(limited, "/v1/two"), 200, "", "")
	want(send(limited, "/v1/two"), 401, "INVALID_SIGNATURE", "replayed")

	// Ban: refused while the credential is banned, admitted after.
	if r := n.adminDo("POST", "/admin/v1/bans", map[string]any{"kind": "credential", "id": id, "duration": "1m"}); r.Status != 201 {
		t.Fatalf("ban: %d %s", r.Status, r.Body)
	}
	n.clock.Advance(11 * time.Second)
	banned := seedHeaders(key, secret, "GET", "/v1/three", "", n.clock.Now())
	want(send(banned, "/v1/three"), 403, "FORBIDDEN", "banned")
	n.clock.Advance(61 * time.Second)
	want(send(banned, "/v1/three"), 200, "", "")

	// IP allowlist: a key usable from 10.0.0.0/8 only; refused, and
	// refused again for the address, not as a replay.
	r := do(t, "POST", n.base+"/api/v1/apikeys", map[string]any{
		"name": "office", "signing_secret": true, "signature_required": true, "ip_allowlist": []string{"10.0.0.0/8"},
	}, "Authorization", "Bearer "+user)
	if r.Status != 201 {
		t.Fatalf("create key: %d %s", r.Status, r.Body)
	}
	office := r.json(t)
	far := seedHeaders(office["key"].(string), office["signing_secret"].(string), "GET", "/v1/office", "", n.clock.Now())
	want(send(far, "/v1/office"), 403, "FORBIDDEN", "ip_not_allowed")
	want(send(far, "/v1/office"), 403, "FORBIDDEN", "ip_not_allowed")

	// Quota (3 units, 3 used): refused, and still refused for its quota,
	// not as a replay.
	n.clock.Advance(11 * time.Second)
	over := seedHeaders(key, secret, "GET", "/v1/four", "", n.clock.Now())
	want(send(over, "/v1/four"), 403, "FORBIDDEN", "quota_exhausted")
	n.clock.Advance(11 * time.Second)
	want(send(over, "/v1/four"), 403, "FORBIDDEN", "quota_exhausted")

	if got := len(be.all()); got != 3 {
		t.Fatalf("the upstream saw %d requests, want 3", got)
	}
}

// One key that floods signed requests exhausts its own share of the replay
// cache, and gets 429 until its oldest signature expires; another tenant's
// signed requests go on passing. Nothing answers 503.
func TestReplayShareIsPerCredential(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL)+"auth: {replay_max_per_credential: 20}\n", nil)
	flooder, _, floodSecret := n.signedKey(n.account("gus@example.com", "Gus"), true)
	tenant, _, tenantSecret := n.signedKey(n.account("hal@example.com", "Hal"), true)
	signed := func(key, secret, path string) response {
		t.Helper()
		return do(t, "GET", n.base+path, nil, seedHeaders(key, secret, "GET", path, "", n.clock.Now())...)
	}
	for i := range 20 {
		if r := signed(flooder, floodSecret, fmt.Sprint("/v1/f", i)); r.Status != 200 {
			t.Fatalf("flood request %d: %d %s", i, r.Status, r.Body)
		}
	}
	for i := range 5 {
		r := signed(flooder, floodSecret, fmt.Sprint("/v1/over", i))
		code, reason := r.errCode(t)
		if r.Status != 429 || code != "RATE_LIMITED" || reason != "replay_cache_full" {
			t.Fatalf("beyond its share: %d %s (%s), want 429 RATE_LIMITED (replay_cache_full)", r.Status, code, reason)
		}
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 600 {
			t.Fatalf("Retry-After %q, want 1 to 600 seconds", r.Header.Get("Retry-After"))
		}
	}
	for i := range 20 {
		if r := signed(tenant, tenantSecret, fmt.Sprint("/v1/t", i)); r.Status != 200 {
			t.Fatalf("another tenant beside the flooder, request %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The flooder's signatures are remembered 2×window (10 minutes): then
	// its share is free again.
	n.clock.Advance(10*time.Minute + time.Second)
	if r := signed(flooder, floodSecret, "/v1/later"); r.Status != 200 {
		t.Fatalf("flooder once its signatures expired: %d %s", r.Status, r.Body)
	}
	if got := len(be.all()); got != 41 {
		t.Fatalf("the upstream saw %d requests, want 41", got)
	}
}
