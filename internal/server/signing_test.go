package server

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/reqsign"
	"github.com/tollgate/tollgate/sdk"
)

// signedKey creates a key with a signing secret; it returns the key, its ID
// and the secret.
func (n *node) signedKey(token string, required bool) (key, id, secret string) {
	n.t.Helper()
	r := do(n.t, "POST", n.base+"/api/v1/apikeys", map[string]any{"name": "signer", "signing_secret": true, "signature_required": required},
		"Authorization", "Bearer "+token)
	if r.Status != 201 {
		n.t.Fatalf("create key: %d %s", r.Status, r.Body)
	}
	m := r.json(n.t)
	if m["has_signing_secret"] != true || m["signature_required"] != required {
		n.t.Fatalf("key view: %s", r.Body)
	}
	return m["key"].(string), m["id"].(string), m["signing_secret"].(string)
}

// seedHeaders signs method, target and body at time ts the seed's way.
func seedHeaders(key, secret, method, target, body string, ts time.Time) []string {
	t := strconv.FormatInt(ts.Unix(), 10)
	sig := reqsign.SeedSign([]byte(secret), reqsign.SeedMessage(method, target, []byte(body), t, ""))
	return []string{"X-API-KEY", key, "X-Timestamp", t, "X-Signature", sig}
}

func TestSignedRequestsSeedScheme(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	user := n.account("cal@example.com", "Cal")
	key, _, secret := n.signedKey(user, true)

	// A GET with a query and a POST with a body are accepted once.
	get := seedHeaders(key, secret, "GET", "/v1/prices?symbol=BTC&limit=5", "", n.clock.Now())
	if r := do(t, "GET", n.base+"/v1/prices?symbol=BTC&limit=5", nil, get...); r.Status != 200 {
		t.Fatalf("signed GET: %d %s", r.Status, r.Body)
	}
	body := `{"address":"0xabc","chain":"eth"}`
	post := seedHeaders(key, secret, "POST", "/v1/orders", body, n.clock.Now())
	if r := do(t, "POST", n.base+"/v1/orders", body, post...); r.Status != 200 {
		t.Fatalf("signed POST: %d %s", r.Status, r.Body)
	}
	got := be.all()[1]
	if got.Body != body {
		t.Fatalf("upstream body %q, want %q", got.Body, body)
	}
	for _, h := range []string{"X-Signature", "X-Timestamp", "X-Api-Key"} {
		if got.Header.Get(h) != "" {
			t.Errorf("%s forwarded", h)
		}
	}

	wantReason := func(r response, code, reason string) {
		t.Helper()
		if r.Status != 401 {
			t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
		}
		if c, re := r.errCode(t); c != code || re != reason {
			t.Fatalf("code %s reason %s, want %s %s", c, re, code, reason)
		}
	}
	// Replayed, tampered, out of window, unsigned.
	wantReason(do(t, "POST", n.base+"/v1/orders", body, post...), "INVALID_SIGNATURE", "replayed")
	tampered := seedHeaders(key, secret, "POST", "/v1/orders", body, n.clock.Now().Add(time.Second))
	wantReason(do(t, "POST", n.base+"/v1/orders", strings.Replace(body, "abc", "abd", 1), tampered...), "INVALID_SIGNATURE", "mismatch")
	old := seedHeaders(key, secret, "GET", "/v1/x", "", n.clock.Now().Add(-6*time.Minute))
	wantReason(do(t, "GET", n.base+"/v1/x", nil, old...), "INVALID_SIGNATURE", "timestamp_out_of_window")
	wantReason(do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key), "MISSING_SIGNATURE", "")
	wrongKey := seedHeaders(key, "tgs_"+strings.Repeat("x", 43), "GET", "/v1/x", "", n.clock.Now())
	wantReason(do(t, "GET", n.base+"/v1/x", nil, wrongKey...), "INVALID_SIGNATURE", "mismatch")
	bad := seedHeaders(key, secret, "GET", "/v1/x", "", n.clock.Now())
	bad[5] = "NOT-HEX"
	wantReason(do(t, "GET", n.base+"/v1/x", nil, bad...), "INVALID_SIGNATURE", "malformed")
	if len(be.all()) != 2 {
		t.Fatalf("backend saw %d requests, want 2", len(be.all()))
	}

	// The server's clock moves on: a signature made six minutes earlier is
	// refused.
	fresh := seedHeaders(key, secret, "GET", "/v1/x", "", n.clock.Now())
	n.clock.Advance(6 * time.Minute)
	wantReason(do(t, "GET", n.base+"/v1/x", nil, fresh...), "INVALID_SIGNATURE", "timestamp_out_of_window")

	// A key that does not require signatures still checks one it is given.
	opt, _, optSecret := n.signedKey(user, false)
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", opt); r.Status != 200 {
		t.Fatalf("unsigned, not required: %d", r.Status)
	}
	sig := seedHeaders(opt, optSecret, "GET", "/v1/x", "", n.clock.Now())
	sig[5] = strings.Repeat("0", 64)
	wantReason(do(t, "GET", n.base+"/v1/x", nil, sig...), "INVALID_SIGNATURE", "mismatch")
}

// The same signed request sent concurrently succeeds exactly once.
func TestSignedRequestReplayRace(t *testing.T) {
	n := start(t, baseYAML(t.TempDir(), newRecorder(t, nil).URL), nil)
	key, _, secret := n.signedKey(n.account("dee@example.com", "Dee"), true)
	h := seedHeaders(key, secret, "POST", "/v1/orders", `{"n":1}`, n.clock.Now())
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			r := do(t, "POST", n.base+"/v1/orders", `{"n":1}`, h...)
			switch r.Status {
			case 200:
				ok.Add(1)
			case 401:
				replayed.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 31 {
		t.Fatalf("%d accepted, %d refused; want exactly one accepted", ok.Load(), replayed.Load())
	}
}

// RFC 9421 hmac-sha256, covering the method, authority, path, query and the
// body's Content-Digest.
func TestSignedRequestsRFC9421(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	key, id, secret := n.signedKey(n.account("eve@example.com", "Eve"), true)
	send := func(method, target, body, signedBody, keyID string) response {
		t.Helper()
		req, err := http.NewRequest(method, n.base+target, strings.NewReader(signedBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		info := reqsign.NewRequestInfo(req, "http")
		info.Authority = req.URL.Host
		input, sig, digest, err := reqsign.SignHTTPSig([]byte(secret), keyID, info, []byte(signedBody), n.clock.Now(), reqsign.NewNonce())
		if err != nil {
			t.Fatal(err)
		}
		h := []string{"X-API-KEY", key, "Signature-Input", input, "Signature", sig}
		if digest != "" {
			h = append(h, "Content-Digest", digest)
		}
		return do(t, method, n.base+target, body, h...)
	}
	if r := send("POST", "/v1/orders?dry=1", `{"n":1}`, `{"n":1}`, id); r.Status != 200 {
		t.Fatalf("RFC 9421 POST: %d %s", r.Status, r.Body)
	}
	if got := be.all()[0]; got.Body != `{"n":1}` || got.Header.Get("Signature") != "" || got.Header.Get("Signature-Input") != "" {
		t.Fatalf("upstream got %q %v", got.Body, got.Header)
	}
	if r := send("POST", "/v1/orders", `{"n":2}`, `{"n":1}`, id); r.Status != 401 {
		t.Fatalf("tampered body: %d %s", r.Status, r.Body)
	}
	if r := send("GET", "/v1/x", "", "", "key_someoneelse0000000000000"); r.Status != 401 {
		t.Fatalf("foreign keyid: %d %s", r.Status, r.Body)
	}
}

// The SDK's Signer against a real node, in both schemes.
func TestSDKSignerAgainstGateway(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), be.URL), nil)
	key, id, secret := n.signedKey(n.account("fay@example.com", "Fay"), true)
	for _, scheme := range []sdk.Scheme{sdk.SchemeSeed, sdk.SchemeRFC9421} {
		c := (&sdk.Signer{APIKey: key, KeyID: id, SigningSecret: secret, Scheme: scheme, Nonce: true, Now: n.clock.Now}).Client()
		for _, body := range []string{"", `{"n":1}`} {
			resp, err := c.Post(n.base+"/v1/orders?dry=1", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%v, body %q: status %d", scheme, body, resp.StatusCode)
			}
		}
	}
	if len(be.all()) != 4 {
		t.Fatalf("backend saw %d requests", len(be.all()))
	}
}
