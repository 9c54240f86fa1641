package sdk_test

import (
	"bytes"
	"context"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/whsig"
	"github.com/tollgate/tollgate/sdk"
)

// Webhook secrets of the tests: the endpoint's new and old secret during a
// rotation, and one that signs nothing.
const (
	whNewSecret   = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	whOldSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	whOtherSecret = "whsec_c2VjcmV0LXRoYXQtc2lnbnMtbm90aGluZy4uLg=="
	whMsgID       = "msg_2k7v0m3x9d4c8h6b1n0p2r5tae"
)

// whTime is when the test deliveries are signed.
var whTime = time.Unix(1795330800, 0)

var whBody = []byte(`{"id":"msg_2k7v0m3x9d4c8h6b1n0p2r5tae","type":"apikey.created","data":{"n":1}}`)

func whKey(t testing.TB, secret string) []byte {
	t.Helper()
	k, err := whsig.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// whSign returns the headers of a delivery of body signed at ts by each of
// secrets, as Tollgate sends them.
func whSign(t testing.TB, ts time.Time, body []byte, secrets ...string) http.Header {
	t.Helper()
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = whKey(t, s)
	}
	h, err := whsig.Sign(whMsgID, ts, body, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyWebhook(t *testing.T) {
	signed := func() http.Header { return whSign(t, whTime, whBody, whNewSecret, whOldSecret) }
	without := func(names ...string) http.Header {
		h := signed()
		for _, n := range names {
			h.Del(n)
		}
		return h
	}
	with := func(name, value string) http.Header {
		h := signed()
		h.Set(name, value)
		return h
	}
	otherDelivery := whSign(t, whTime, []byte(`{"other":true}`), whNewSecret)
	seedOnly := []string{whsig.HeaderStandardSignature, whsig.HeaderID, whsig.HeaderTimestamp}

	tests := []struct {
		name      string
		secret    string
		h         http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil, or the most specific sentinel
	}{
		{name: "both headers, new secret", secret: whNewSecret, h: signed()},
		{name: "both headers, old secret during a rotation", secret: whOldSecret, h: signed()},
		{name: "X-Webhook-Signature only", secret: whNewSecret, h: without(seedOnly...)},
		{name: "X-Webhook-Signature only, old secret", secret: whOldSecret, h: without(seedOnly...)},
		{name: "Standard Webhooks only", secret: whNewSecret, h: without(whsig.HeaderSignature)},
		{name: "Standard Webhooks only, old secret", secret: whOldSecret, h: without(whsig.HeaderSignature)},
		{name: "empty X-Webhook-Signature, Standard Webhooks", secret: whNewSecret, h: with(whsig.HeaderSignature, "")},
		{name: "a secret that did not sign", secret: whOtherSecret, h: signed(), want: sdk.ErrWebhookInvalidSignature},
		{name: "tampered body", secret: whNewSecret, h: signed(), body: []byte(`{"id":"msg_2k7v0m3x9d4c8h6b1n0p2r5tae","type":"apikey.created","data":{"n":2}}`), want: sdk.ErrWebhookInvalidSignature},
		{name: "body with a trailing newline", secret: whNewSecret, h: signed(), body: append(bytes.Clone(whBody), '\n'), want: sdk.ErrWebhookInvalidSignature},
		{name: "tampered body, X-Webhook-Signature only", secret: whNewSecret, h: without(seedOnly...), body: []byte(`{}`), want: sdk.ErrWebhookInvalidSignature},
		{name: "tampered body, Standard Webhooks only", secret: whNewSecret, h: without(whsig.HeaderSignature), body: []byte(`{}`), want: sdk.ErrWebhookInvalidSignature},
		{name: "webhook-id changed", secret: whNewSecret, h: with(whsig.HeaderID, "msg_replayed"), want: sdk.ErrWebhookInvalidSignature},
		{name: "X-Webhook-Signature of another delivery", secret: whNewSecret, h: with(whsig.HeaderSignature, otherDelivery.Get(whsig.HeaderSignature)), want: sdk.ErrWebhookInvalidSignature},
		{name: "webhook-signature of another delivery", secret: whNewSecret, h: with(whsig.HeaderStandardSignature, otherDelivery.Get(whsig.HeaderStandardSignature)), want: sdk.ErrWebhookInvalidSignature},
		{name: "4m59s old", secret: whNewSecret, h: signed(), now: whTime.Add(4*time.Minute + 59*time.Second)},
		{name: "5m old", secret: whNewSecret, h: signed(), now: whTime.Add(5 * time.Minute)},
		{name: "5m1s old", secret: whNewSecret, h: signed(), now: whTime.Add(5*time.Minute + time.Second), want: sdk.ErrWebhookTimestamp},
		{name: "an hour old, X-Webhook-Signature only", secret: whNewSecret, h: without(seedOnly...), now: whTime.Add(time.Hour), want: sdk.ErrWebhookTimestamp},
		{name: "an hour old, Standard Webhooks only", secret: whNewSecret, h: without(whsig.HeaderSignature), now: whTime.Add(time.Hour), want: sdk.ErrWebhookTimestamp},
		{name: "6m in the future", secret: whNewSecret, h: signed(), now: whTime.Add(-6 * time.Minute), want: sdk.ErrWebhookTimestamp},
		{name: "2m old, tolerance 1m", secret: whNewSecret, h: signed(), now: whTime.Add(2 * time.Minute), tolerance: time.Minute, want: sdk.ErrWebhookTimestamp},
		{name: "20m old, tolerance 30m", secret: whNewSecret, h: signed(), now: whTime.Add(20 * time.Minute), tolerance: 30 * time.Minute},
		{name: "no headers", secret: whNewSecret, h: http.Header{}, want: sdk.ErrWebhookMissingSignature},
		{name: "only webhook-id and webhook-timestamp", secret: whNewSecret, h: without(whsig.HeaderSignature, whsig.HeaderStandardSignature), want: sdk.ErrWebhookMissingSignature},
		{name: "empty signature headers", secret: whNewSecret, h: http.Header{whsig.HeaderSignature: {""}, whsig.HeaderStandardSignature: {""}}, want: sdk.ErrWebhookMissingSignature},
		{name: "garbage X-Webhook-Signature", secret: whNewSecret, h: with(whsig.HeaderSignature, "sha256=abc"), want: sdk.ErrWebhookMalformedSignature},
		{name: "garbage webhook-signature", secret: whNewSecret, h: with(whsig.HeaderStandardSignature, "v1,!!"), want: sdk.ErrWebhookMalformedSignature},
		{name: "no webhook-id", secret: whNewSecret, h: without(whsig.HeaderSignature, whsig.HeaderID), want: sdk.ErrWebhookMalformedSignature},
	}
	sentinels := []error{sdk.ErrWebhookMissingSignature, sdk.ErrWebhookInvalidSignature, sdk.ErrWebhookMalformedSignature, sdk.ErrWebhookTimestamp}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, now := tt.body, tt.now
			if body == nil {
				body = whBody
			}
			if now.IsZero() {
				now = whTime
			}
			var err error
			if tt.tolerance == 0 {
				err = sdk.VerifyWebhook(tt.secret, tt.h, body, now)
			} else {
				err = sdk.VerifyWebhookTolerance(tt.secret, tt.h, body, now, tt.tolerance)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// The seed's two codes partition the failures.
			missing, invalid := errors.Is(err, sdk.ErrWebhookMissingSignature), errors.Is(err, sdk.ErrWebhookInvalidSignature)
			if missing == invalid {
				t.Errorf("err = %v: matches MISSING_SIGNATURE %v, INVALID_SIGNATURE %v; want exactly one", err, missing, invalid)
			}
			for _, s := range sentinels {
				if want := errors.Is(tt.want, s); errors.Is(err, s) != want {
					t.Errorf("err = %v: errors.Is(err, %v) = %v, want %v", err, s, !want, want)
				}
			}
		})
	}
}

func TestVerifyWebhookInvalidSecret(t *testing.T) {
	h := whSign(t, whTime, whBody, whNewSecret)
	for _, secret := range []string{"", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "whsec_c2hvcnQ=", "whsec_not base64!!"} {
		err := sdk.VerifyWebhook(secret, h, whBody, whTime)
		if !errors.Is(err, sdk.ErrInvalidWebhookSecret) {
			t.Errorf("secret %q: err = %v, want ErrInvalidWebhookSecret", secret, err)
		}
		if errors.Is(err, sdk.ErrWebhookMissingSignature) || errors.Is(err, sdk.ErrWebhookInvalidSignature) {
			t.Errorf("secret %q: err = %v matches a signature error", secret, err)
		}
		if secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

// errorBody is Tollgate's JSON error body.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

func TestWebhookReceiver(t *testing.T) {
	var (
		mu       sync.Mutex
		got      [][]byte
		replayed [][]byte
	)
	rc := sdk.WebhookReceiver{Secret: whOldSecret, MaxBody: 256, Now: func() time.Time { return whTime.Add(time.Minute) }}
	h := rc.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		again, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		got, replayed = append(got, body), append(replayed, again)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	rc.Secret = whNewSecret // Handler copied rc

	tests := []struct {
		name         string
		h            http.Header
		body         []byte
		status       int
		code, reason string
	}{
		{name: "valid", h: whSign(t, whTime, whBody, whNewSecret, whOldSecret), status: http.StatusNoContent},
		{name: "valid, old secret only", h: whSign(t, whTime, whBody, whOldSecret), status: http.StatusNoContent},
		{name: "missing", h: http.Header{}, status: http.StatusUnauthorized, code: "MISSING_SIGNATURE"},
		{name: "new secret only", h: whSign(t, whTime, whBody, whNewSecret), status: http.StatusUnauthorized, code: "INVALID_SIGNATURE", reason: "mismatch"},
		{name: "tampered", h: whSign(t, whTime, []byte(`{}`), whOldSecret), status: http.StatusUnauthorized, code: "INVALID_SIGNATURE", reason: "mismatch"},
		{name: "old", h: whSign(t, whTime.Add(-10*time.Minute), whBody, whOldSecret), status: http.StatusUnauthorized, code: "INVALID_SIGNATURE", reason: "timestamp_out_of_window"},
		{name: "malformed", h: http.Header{whsig.HeaderSignature: {"t=1,v1=zz"}}, status: http.StatusUnauthorized, code: "INVALID_SIGNATURE", reason: "malformed"},
		{name: "too large", h: whSign(t, whTime, bytes.Repeat([]byte("a"), 257), whOldSecret), body: bytes.Repeat([]byte("a"), 257), status: http.StatusRequestEntityTooLarge, code: "PAYLOAD_TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = whBody
			}
			mu.Lock()
			got, replayed = nil, nil
			mu.Unlock()
			req := httptest.NewRequest(http.MethodPost, "/hooks/tollgate", bytes.NewReader(body))
			maps.Copy(req.Header, tt.h)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.code == "" {
				if len(got) != 1 || !bytes.Equal(got[0], body) || !bytes.Equal(replayed[0], body) {
					t.Fatalf("next got %q, r.Body %q; want the body once", got, replayed)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("next called on %s", tt.code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("error body %s: %v", rec.Body, err)
			}
			if eb.Error.Code != tt.code || eb.Error.Reason != tt.reason || eb.Error.Message == "" {
				t.Errorf("error %+v, want code %s reason %q", eb.Error, tt.code, tt.reason)
			}
		})
	}
}

// TestWebhookHandlerEndToEnd delivers over HTTP, signed now, to the handler
// with its defaults (time.Now, 5 minutes, 1 MiB).
func TestWebhookHandlerEndToEnd(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(sdk.WebhookHandler(whOldSecret, func(w http.ResponseWriter, _ *http.Request, body []byte) {
		calls.Add(1)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	post := func(h http.Header, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(req.Header, h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	big := bytes.Repeat([]byte("x"), sdk.DefaultMaxWebhookBody)
	resp := post(whSign(t, time.Now(), big, whNewSecret, whOldSecret), big)
	echoed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(echoed, big) {
		t.Fatalf("1 MiB delivery: %s, %d bytes echoed", resp.Status, len(echoed))
	}
	big = append(big, 'x')
	resp = post(whSign(t, time.Now(), big, whOldSecret), big)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB + 1 delivery: %s", resp.Status)
	}
	resp = post(whSign(t, time.Now().Add(-6*time.Minute), whBody, whOldSecret), whBody)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("6 minutes old delivery: %s", resp.Status)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestWebhookHandlerPanics(t *testing.T) {
	next := func(http.ResponseWriter, *http.Request, []byte) {}
	for name, f := range map[string]func(){
		"bad secret": func() { sdk.WebhookHandler("whsec_dG9vLXNob3J0", next) },
		"no prefix":  func() { sdk.WebhookHandler("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", next) },
		"nil next":   func() { sdk.WebhookHandler(whNewSecret, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				p := recover()
				if p == nil {
					t.Fatal("no panic")
				}
				if s, _ := p.(string); strings.Contains(s, "dG9vLXNob3J0") || strings.Contains(s, "AAECAwQF") {
					t.Errorf("panic quotes the secret: %v", p)
				}
			}()
			f()
		})
	}
}

// memSigningKeys is an in-memory respsign.KeyStore.
type memSigningKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (m *memSigningKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memSigningKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.SigningKey(nil), m.keys...), nil
}

func (m *memSigningKeys) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			if m.keys[i].RetiredAt.IsZero() {
				m.keys[i].RetiredAt = at
			}
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memSigningKeys) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

// newResponseKeyring returns a Keyring with one signing key, sealed with a
// real secretbox in an in-memory store.
func newResponseKeyring(t testing.TB, clk clock.Clock) *respsign.Keyring {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := respsign.LoadKeyring(context.Background(), &memSigningKeys{}, box, clk)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// signingGateway serves the response signing keys as the gateway does, and
// API routes behind the signing middleware.
type signingGateway struct {
	*httptest.Server
	ring    *respsign.Keyring
	clk     *clock.Fake
	fetches atomic.Int32
	failKey atomic.Bool  // the key publication answers 503
	lastAE  atomic.Value // the Accept-Encoding of the last API request
	prefix  string       // path prefix of every route
}

func newSigningGateway(t testing.TB, prefix string) *signingGateway {
	t.Helper()
	g := &signingGateway{clk: newFakeClock(), prefix: prefix}
	g.ring = newResponseKeyring(t, g.clk)
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/hello", func(w http.ResponseWriter, r *http.Request) {
		g.lastAE.Store(r.Header.Get("Accept-Encoding"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"hello":"world"}`)
	})
	api.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
	})
	api.HandleFunc("GET /v1/big", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("b"), 4096))
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+respsign.WellKnownPath, func(w http.ResponseWriter, r *http.Request) {
		g.fetches.Add(1)
		if g.failKey.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		g.ring.ServeHTTP(w, r)
	})
	mux.Handle(prefix+"/", http.StripPrefix(prefix, (&respsign.Middleware{Keyring: g.ring, MaxBody: 1024}).Wrap(api)))
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// get fetches path from g without verifying it, and returns the response
// with its body read.
func (g *signingGateway) get(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(g.URL + g.prefix + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func (g *signingGateway) verifier(t testing.TB, opts ...sdk.ResponseVerifierOption) *sdk.ResponseVerifier {
	t.Helper()
	v, err := sdk.NewResponseVerifier(context.Background(), g.URL+g.prefix, nil,
		append([]sdk.ResponseVerifierOption{sdk.WithVerifierClock(g.clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (g *signingGateway) wantFetches(t testing.TB, n int32) {
	t.Helper()
	if got := g.fetches.Load(); got != n {
		t.Errorf("keys fetched %d times, want %d", got, n)
	}
}

// secp256k1N is the order of the secp256k1 group.
var secp256k1N, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)

// highS returns the other valid signature of the same body and key: s
// replaced with n - s, which respsign never makes but OpenSSL accepts.
func highS(t testing.TB, sigB64 string) string {
	t.Helper()
	return derSignature(t, sigB64, func(r, s *big.Int) (*big.Int, *big.Int) { return r, new(big.Int).Sub(secp256k1N, s) })
}

// derSignature decodes sigB64, changes r and s with f and encodes them
// again.
func derSignature(t testing.TB, sigB64 string, f func(r, s *big.Int) (*big.Int, *big.Int)) string {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		t.Fatalf("signature DER: %v", err)
	}
	sig.R, sig.S = f(sig.R, sig.S)
	out, err := asn1.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

func TestVerifyResponseSignature(t *testing.T) {
	ring := newResponseKeyring(t, newFakeClock())
	other := newResponseKeyring(t, newFakeClock())
	body := []byte(`{"data":"Example payload"}`)
	_, sig := ring.Sign(body)
	pemKey := ring.PublicKeyPEM()

	tests := []struct {
		name string
		pem  []byte
		body []byte
		sig  string
		want error
	}{
		{name: "valid", pem: pemKey, body: body, sig: sig},
		{name: "valid, high S", pem: pemKey, body: body, sig: highS(t, sig)},
		{name: "empty body", pem: pemKey, body: nil, sig: func() string { _, s := ring.Sign(nil); return s }()},
		{name: "tampered body", pem: pemKey, body: []byte(`{"data":"Example payload!"}`), sig: sig, want: sdk.ErrInvalidResponseSignature},
		{name: "another key", pem: other.PublicKeyPEM(), body: body, sig: sig, want: sdk.ErrInvalidResponseSignature},
		{name: "empty signature", pem: pemKey, body: body, sig: "", want: sdk.ErrInvalidResponseSignature},
		{name: "not base64", pem: pemKey, body: body, sig: "MEQC!!", want: sdk.ErrInvalidResponseSignature},
		{name: "base64 without padding", pem: pemKey, body: body, sig: strings.TrimRight(sig, "="), want: sdk.ErrInvalidResponseSignature},
		{name: "s = 0", pem: pemKey, body: body, sig: derSignature(t, sig, func(r, _ *big.Int) (*big.Int, *big.Int) { return r, big.NewInt(0) }), want: sdk.ErrInvalidResponseSignature},
		{name: "r + n", pem: pemKey, body: body, sig: derSignature(t, sig, func(r, s *big.Int) (*big.Int, *big.Int) { return new(big.Int).Add(r, secp256k1N), s }), want: sdk.ErrInvalidResponseSignature},
		{name: "not a PEM", pem: []byte("MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE"), body: body, sig: sig, want: sdk.ErrInvalidResponseKey},
		{name: "RSA key of the seed", pem: []byte(seedRSAKey), body: body, sig: sig, want: sdk.ErrInvalidResponseKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdk.VerifyResponseSignature(tt.pem, tt.body, tt.sig)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// seedRSAKey is an RSA public key (published by API platforms that sign
// their responses with RSA), which is not a secp256k1 key.
const seedRSAKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2TpKOJfmku7aEIrKaCMM
xjA10UCixAryVsB+PIoLKTEsUiNfctwbeXcpQuPOit9H7by+ezgg/A4SCog/Dtc7
fTp4Gnnq/adLNDllMeKoQCeIz/3N7TqItr+74NTAm6TkwR4lriIy/XiDpIak530f
8ZXFnmQTz3Cffbio3A9DhgwC5OWjSgkYdU35Rti36OGM6pnPlipxm7KD/9ddjc+H
vRY8o6kbp8Cy9QsXZqivHVvcFQ61gl8TMpgcziNgI+tDiof/SM6x6KGxuGT3s40J
TZ0g98GKgynkRW22OPfK3vP1FZ0UmIRJ6tAWYTNntGjLM+vM1OOsGk+5BmEkxy/B
HwIDAQAB
-----END PUBLIC KEY-----
`

func TestResponseVerifier(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	g.wantFetches(t, 1)
	if v.KeysURL() != g.URL+respsign.WellKnownPath {
		t.Errorf("KeysURL %s", v.KeysURL())
	}
	ids, current := v.KeyIDs()
	if len(ids) != 1 || current != g.ring.ActiveKeyID() || ids[0] != current {
		t.Errorf("KeyIDs %v, %q; want the keyring's %s", ids, current, g.ring.ActiveKeyID())
	}

	resp, body := g.get(t, "/v1/hello")
	if err := v.Verify(resp, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := v.Verify(resp, append(body, ' ')); !errors.Is(err, sdk.ErrInvalidResponseSignature) || errors.Is(err, sdk.ErrUnknownResponseKey) {
		t.Errorf("tampered body: %v", err)
	}
	// Error responses are signed too.
	notFound, nfBody := g.get(t, "/v1/nothing")
	if notFound.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", notFound.StatusCode)
	}
	if err := v.Verify(notFound, nfBody); err != nil {
		t.Errorf("404: %v", err)
	}
	g.wantFetches(t, 1)

	// A rotation: the new key is unknown, and fetched once.
	g.clk.Advance(time.Hour)
	oldKey := g.ring.ActiveKeyID()
	newKey, retired, err := g.ring.Rotate(context.Background())
	if err != nil || len(retired) != 1 || retired[0] != oldKey {
		t.Fatalf("Rotate: %v, retired %v", err, retired)
	}
	resp2, body2 := g.get(t, "/v1/hello")
	if kid := resp2.Header.Get(sdk.HeaderResponseKeyID); kid != newKey {
		t.Fatalf("signed by %s, want %s", kid, newKey)
	}
	for range 3 {
		if err := v.Verify(resp2, body2); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
	}
	g.wantFetches(t, 2)
	if err := v.Verify(resp, body); err != nil { // by the retired key, still published
		t.Errorf("Verify, retired key: %v", err)
	}
	if _, current := v.KeyIDs(); current != newKey {
		t.Errorf("current key %s, want %s", current, newKey)
	}

	// An unknown key ID: no fetch within the interval, one after.
	bogus := resp2.Header.Clone()
	bogus.Set(sdk.HeaderResponseKeyID, "sig_unknown")
	bogusResp := &http.Response{StatusCode: http.StatusOK, Header: bogus}
	for range 3 {
		err := v.Verify(bogusResp, body2)
		if !errors.Is(err, sdk.ErrUnknownResponseKey) || !errors.Is(err, sdk.ErrInvalidResponseSignature) {
			t.Fatalf("unknown key: %v", err)
		}
	}
	g.wantFetches(t, 2)
	g.clk.Advance(sdk.DefaultKeyRefetchInterval)
	if err := v.Verify(bogusResp, body2); !errors.Is(err, sdk.ErrUnknownResponseKey) {
		t.Fatalf("unknown key: %v", err)
	}
	g.wantFetches(t, 3)

	// A rotation within the interval is seen once the interval has passed.
	newer, _, err := g.ring.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp3, body3 := g.get(t, "/v1/hello")
	if err := v.Verify(resp3, body3); !errors.Is(err, sdk.ErrUnknownResponseKey) {
		t.Fatalf("key %s within the refetch interval: %v", newer, err)
	}
	g.wantFetches(t, 3)
	g.clk.Advance(sdk.DefaultKeyRefetchInterval)
	if err := v.Verify(resp3, body3); err != nil {
		t.Fatalf("key %s after the refetch interval: %v", newer, err)
	}
	g.wantFetches(t, 4)

	// Without X-Signature-Key-Id, the current key.
	noKid := resp3.Header.Clone()
	noKid.Del(sdk.HeaderResponseKeyID)
	if err := v.Verify(&http.Response{Header: noKid}, body3); err != nil {
		t.Errorf("no key ID, current key: %v", err)
	}
	noKid.Set(sdk.HeaderResponseSignature, resp.Header.Get(sdk.HeaderResponseSignature))
	if err := v.Verify(&http.Response{Header: noKid}, body); !errors.Is(err, sdk.ErrInvalidResponseSignature) {
		t.Errorf("no key ID, signed by an older key: %v", err)
	}
	g.wantFetches(t, 4)
}

// TestResponseVerifierConcurrentRotation: many requests meeting a new key at
// once fetch the keys once.
func TestResponseVerifierConcurrentRotation(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	g.clk.Advance(time.Hour)
	if _, _, err := g.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body := g.get(t, "/v1/hello")
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := v.Verify(resp, body); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	g.wantFetches(t, 2)
}

func TestResponseVerifierRefetchInterval(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t, sdk.WithKeyRefetchInterval(0))
	resp, body := g.get(t, "/v1/hello")
	resp.Header.Set(sdk.HeaderResponseKeyID, "sig_unknown")
	for i := range 3 {
		if err := v.Verify(resp, body); !errors.Is(err, sdk.ErrUnknownResponseKey) {
			t.Fatalf("unknown key: %v", err)
		}
		g.wantFetches(t, int32(i+2))
	}
}

func TestResponseVerifierFetchFailure(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	resp, body := g.get(t, "/v1/hello")

	g.failKey.Store(true)
	if err := v.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Refresh of a failing publication: %v", err)
	}
	if err := v.Verify(resp, body); err != nil {
		t.Errorf("Verify after a failed Refresh: %v", err)
	}
	g.clk.Advance(time.Hour)
	if _, _, err := g.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp2, body2 := g.get(t, "/v1/hello")
	err := v.Verify(resp2, body2)
	if !errors.Is(err, sdk.ErrUnknownResponseKey) || !strings.Contains(err.Error(), "503") {
		t.Errorf("unknown key, failing publication: %v", err)
	}
	g.failKey.Store(false)
	if err := v.Verify(resp2, body2); !errors.Is(err, sdk.ErrUnknownResponseKey) {
		t.Errorf("failed fetches count against the interval: %v", err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(resp2, body2); err != nil {
		t.Errorf("after Refresh: %v", err)
	}
}

func TestResponseVerifierUnsigned(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	for _, tt := range []struct{ path, reason string }{{"/v1/stream", "streamed"}, {"/v1/big", "too-large"}} {
		resp, body := g.get(t, tt.path)
		err := v.Verify(resp, body)
		var ue *sdk.UnsignedResponseError
		if !errors.Is(err, sdk.ErrResponseUnsigned) || !errors.As(err, &ue) || ue.Reason != tt.reason {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if want := `X-Signature-Status: unsigned; reason="` + tt.reason + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not say %s", tt.path, err, want)
		}
		if errors.Is(err, sdk.ErrInvalidResponseSignature) {
			t.Errorf("%s: unsigned is not invalid: %v", tt.path, err)
		}
	}

	for _, tt := range []struct {
		status, reason, says string
	}{
		{"", "", "no X-Signature header"},
		{`unsigned; reason="no-key"`, "no-key", `reason="no-key"`},
		{`unsigned;reason=trailers`, "trailers", `reason="trailers"`},
		{"unsigned; reason=\"Evil\r\nX: y\"", "", `X-Signature-Status: "unsigned; reason=\"Evil\r\nX: y\""`},
		{`unsigned`, "", `"unsigned"`},
		{strings.Repeat("x", 1000), "", strings.Repeat("x", 200) + `"`},
	} {
		h := http.Header{}
		if tt.status != "" {
			h.Set(sdk.HeaderResponseStatus, tt.status)
		}
		err := v.Verify(&http.Response{Header: h}, nil)
		var ue *sdk.UnsignedResponseError
		if !errors.As(err, &ue) || ue.Status != tt.status || ue.Reason != tt.reason ||
			!strings.Contains(err.Error(), tt.says) || strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("X-Signature-Status %q: %v (%+v), want reason %q, saying %s", tt.status, err, ue, tt.reason, tt.says)
		}
	}
}

func TestResponseVerifierMalformedHeaders(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	resp, body := g.get(t, "/v1/hello")
	sig, kid := resp.Header.Get(sdk.HeaderResponseSignature), resp.Header.Get(sdk.HeaderResponseKeyID)
	for name, h := range map[string]http.Header{
		"repeated signature":       {sdk.HeaderResponseSignature: {sig, sig}, sdk.HeaderResponseKeyID: {kid}},
		"repeated key ID":          {sdk.HeaderResponseSignature: {sig}, sdk.HeaderResponseKeyID: {kid, kid}},
		"signature with a newline": {sdk.HeaderResponseSignature: {sig + "\n"}, sdk.HeaderResponseKeyID: {kid}},
		"signature too long":       {sdk.HeaderResponseSignature: {strings.Repeat("A", 200)}, sdk.HeaderResponseKeyID: {kid}},
	} {
		if err := v.Verify(&http.Response{Header: h}, body); !errors.Is(err, sdk.ErrInvalidResponseSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := v.Verify(nil, body); err == nil {
		t.Error("nil response verified")
	}
	// A body the transport decompressed: the error says so.
	err := v.Verify(&http.Response{Header: resp.Header, Uncompressed: true}, []byte("decompressed"))
	if !errors.Is(err, sdk.ErrInvalidResponseSignature) || !strings.Contains(err.Error(), "decompressed") {
		t.Errorf("uncompressed: %v", err)
	}
}

func TestNewResponseVerifierErrors(t *testing.T) {
	serve := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	ring := newResponseKeyring(t, newFakeClock())
	var doc respsign.Document
	if err := json.Unmarshal(ring.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	badPEM := doc
	badPEM.Keys = append([]respsign.PublishedKey(nil), doc.Keys...)
	badPEM.Keys[0].PEM = seedRSAKey
	badPEMJSON, _ := json.Marshal(badPEM)
	wrongAlg := doc
	wrongAlg.Algorithm = "rsa-sha256"
	wrongAlgJSON, _ := json.Marshal(wrongAlg)

	for name, tt := range map[string]struct{ url, says string }{
		"relative URL":    {"api.example.com", "absolute"},
		"ftp URL":         {"ftp://api.example.com", "absolute"},
		"404":             {serve(http.StatusNotFound, "no"), "404"},
		"not JSON":        {serve(http.StatusOK, "<html>"), "invalid character"},
		"wrong scheme":    {serve(http.StatusOK, string(wrongAlgJSON)), "rsa-sha256"},
		"RSA key":         {serve(http.StatusOK, string(badPEMJSON)), "invalid public key"},
		"too large":       {serve(http.StatusOK, strings.Repeat(" ", 1<<20+1)), "more than"},
		"nothing listens": {"http://127.0.0.1:1", "fetch"},
	} {
		t.Run(name, func(t *testing.T) {
			v, err := sdk.NewResponseVerifier(context.Background(), tt.url, nil)
			if err == nil || v != nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("NewResponseVerifier(%s) = %v, %v; want an error saying %q", tt.url, v, err, tt.says)
			}
		})
	}
}

func TestResponseVerifierPathPrefix(t *testing.T) {
	g := newSigningGateway(t, "/gw")
	for _, base := range []string{g.URL + "/gw", g.URL + "/gw/", g.URL + "/gw?x=1#f"} {
		v, err := sdk.NewResponseVerifier(context.Background(), base, g.Client())
		if err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if v.KeysURL() != g.URL+"/gw"+respsign.WellKnownPath {
			t.Errorf("%s: KeysURL %s", base, v.KeysURL())
		}
		resp, body := g.get(t, "/v1/hello")
		if err := v.Verify(resp, body); err != nil {
			t.Errorf("%s: %v", base, err)
		}
	}
}

func TestSignedTransport(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)
	client := &http.Client{Transport: &sdk.SignedTransport{Verifier: v}}

	resp, err := client.Get(g.URL + "/v1/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != `{"hello":"world"}` || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %q %v", resp.Status, body, err)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("ContentLength %d", resp.ContentLength)
	}
	if ae := g.lastAE.Load(); ae != "identity" {
		t.Errorf("Accept-Encoding sent %q, want identity", ae)
	}

	// A request that names its encoding keeps it.
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/hello", nil)
	req.Header.Set("Accept-Encoding", "br")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ae := g.lastAE.Load(); ae != "br" || req.Header.Get("Accept-Encoding") != "br" {
		t.Errorf("Accept-Encoding sent %q", ae)
	}

	// After a rotation, through one fetch of the keys.
	g.clk.Advance(time.Hour)
	if _, _, err := g.ring.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, err = client.Get(g.URL + "/v1/hello")
		if err != nil {
			t.Fatalf("after rotation: %v", err)
		}
		resp.Body.Close()
	}
	g.wantFetches(t, 2)

	// Error responses are signed and let through.
	resp, err = client.Get(g.URL + "/v1/nothing")
	if err != nil {
		t.Fatalf("404: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d", resp.StatusCode)
	}

	// Unsigned responses are not.
	_, err = client.Get(g.URL + "/v1/stream")
	var ue *sdk.UnsignedResponseError
	if !errors.Is(err, sdk.ErrResponseUnsigned) || !errors.As(err, &ue) || ue.Reason != "streamed" {
		t.Errorf("streamed: %v", err)
	}
	_, err = client.Get(g.URL + "/v1/big")
	if !errors.Is(err, sdk.ErrResponseUnsigned) {
		t.Errorf("too large: %v", err)
	}
}

// tamperingTransport changes one byte of every response body.
type tamperingTransport struct{}

func (tamperingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > 0 {
		b[len(b)-1] ^= 1
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func TestSignedTransportRefuses(t *testing.T) {
	g := newSigningGateway(t, "")
	v := g.verifier(t)

	tampered := &http.Client{Transport: &sdk.SignedTransport{Verifier: v, Base: tamperingTransport{}}}
	if _, err := tampered.Get(g.URL + "/v1/hello"); !errors.Is(err, sdk.ErrInvalidResponseSignature) {
		t.Errorf("tampered: %v", err)
	}

	small := &http.Client{Transport: &sdk.SignedTransport{Verifier: v, MaxBody: 8}}
	if _, err := small.Get(g.URL + "/v1/hello"); err == nil || !strings.Contains(err.Error(), "larger than 8 bytes") {
		t.Errorf("MaxBody: %v", err)
	}

	reqBody := &closeRecorder{Reader: strings.NewReader("x")}
	noVerifier := &sdk.SignedTransport{}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/hello", reqBody)
	if resp, err := noVerifier.RoundTrip(req); err == nil || resp != nil {
		t.Errorf("no Verifier: %v", err)
	}
	if !reqBody.closed.Load() {
		t.Error("request body not closed")
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }))
	defer plain.Close()
	client := &http.Client{Transport: &sdk.SignedTransport{Verifier: v}}
	_, err := client.Get(plain.URL)
	var ue *sdk.UnsignedResponseError
	if !errors.As(err, &ue) || ue.Status != "" {
		t.Errorf("a server that does not sign: %v", err)
	}
}

func FuzzResponseVerify(f *testing.F) {
	g := newSigningGateway(f, "")
	v := g.verifier(f, sdk.WithKeyRefetchInterval(time.Hour))
	resp, body := g.get(f, "/v1/hello")
	f.Add(resp.Header.Get(sdk.HeaderResponseSignature), resp.Header.Get(sdk.HeaderResponseKeyID), "", body)
	f.Add("", "", `unsigned; reason="too-large"`, body)
	f.Add("MEQCIA==", "sig_x", "", []byte{})
	f.Fuzz(func(t *testing.T, sig, kid, status string, b []byte) {
		h := http.Header{}
		if sig != "" {
			h.Set(sdk.HeaderResponseSignature, sig)
		}
		if kid != "" {
			h.Set(sdk.HeaderResponseKeyID, kid)
		}
		if status != "" {
			h.Set(sdk.HeaderResponseStatus, status)
		}
		err := v.Verify(&http.Response{Header: h}, b)
		if err == nil && !bytes.Equal(b, body) {
			t.Fatalf("verified %q with X-Signature %q", b, sig)
		}
		if err != nil && !errors.Is(err, sdk.ErrResponseUnsigned) && !errors.Is(err, sdk.ErrInvalidResponseSignature) {
			t.Fatalf("error of no kind: %v", err)
		}
	})
}
