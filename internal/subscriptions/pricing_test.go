package subscriptions

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/siwx"
)

const catalogYAML = `server: {listen: 127.0.0.1:8080, insecure_http: true, public_url: "https://api.example.com"}
plans:
  - {name: pro, rate: {requests_per_second: 10, burst: 20}, quota: {units: 100000, period: month}}
  - {name: max}
x402:
  enabled: true
  network: eip155:84532
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  asset_name: USDC
  asset_version: "2"
  pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
  max_timeout: 90s
  facilitator: {url: local}
  offers:
    - {plan: pro, price: "1000000", duration: 720h, description: "Pro, 30 days"}
    - {plan: max, price: "25000000", duration: 24h}
`

var catalogTime = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func newCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, _ := newCatalogClock(t)
	return c
}

func newCatalogClock(t *testing.T) (*Catalog, *clock.Fake) {
	t.Helper()
	cfg, err := config.Parse([]byte(catalogYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(catalogTime)
	nonces, err := siwx.NewNonces(0, 0, bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(cfg, clk, nonces)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func TestPaymentRequired(t *testing.T) {
	c := newCatalog(t)
	rec := httptest.NewRecorder()
	apierror.Write(rec, httptest.NewRequest("GET", "/v1/data", nil), c.PaymentRequired())
	if rec.Code != 402 {
		t.Fatalf("status %d", rec.Code)
	}
	raw, err := base64.StdEncoding.DecodeString(rec.Header().Get("PAYMENT-REQUIRED"))
	if err != nil {
		t.Fatalf("PAYMENT-REQUIRED is not base64: %v", err)
	}
	var pr map[string]any
	if err := json.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	accepts := pr["accepts"].([]any)
	first := accepts[0].(map[string]any)
	want := map[string]any{
		"scheme": "exact", "network": "eip155:84532", "amount": "1000000",
		"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		"maxTimeoutSeconds": float64(90),
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("accepts[0].%s = %v, want %v", k, first[k], v)
		}
	}
	if extra := first["extra"].(map[string]any); extra["name"] != "USDC" || extra["version"] != "2" {
		t.Errorf("extra %v", extra)
	}
	if pr["x402Version"] != float64(2) || len(accepts) != 2 || pr["resource"].(map[string]any)["url"] != "https://api.example.com/x402/purchase" {
		t.Errorf("PaymentRequired %s", raw)
	}

	var body struct {
		Error       struct{ Code string }
		X402Version int
		Accepts     []map[string]any
		Purchase    string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != "PAYMENT_REQUIRED" || body.X402Version != 1 || body.Purchase != "https://api.example.com/x402/purchase" || len(body.Accepts) != 2 {
		t.Fatalf("body %s", rec.Body)
	}
	v1 := body.Accepts[1]
	if v1["network"] != "base-sepolia" || v1["maxAmountRequired"] != "25000000" || v1["resource"] != "https://api.example.com/x402/purchase?plan=max" || v1["description"] != "plan max" {
		t.Errorf("v1 accepts[1] %v", v1)
	}
}

func TestPricing(t *testing.T) {
	c := newCatalog(t)
	rec := httptest.NewRecorder()
	if err := c.ServePricing(rec, httptest.NewRequest("GET", PricingPath, nil)); err != nil {
		t.Fatal(err)
	}
	var p Pricing
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Network != "eip155:84532" || len(p.Offers) != 2 {
		t.Fatalf("pricing %s", rec.Body)
	}
	pro := p.Offers[0]
	if pro != (Offer{Plan: "pro", Description: "Pro, 30 days", Price: "1000000", DurationSeconds: 720 * 3600,
		RequestsPerSecond: 10, Burst: 20, QuotaUnits: 100000, QuotaPeriod: "month",
		PurchaseURL: "https://api.example.com/x402/purchase?plan=pro"}) {
		t.Errorf("pro offer %+v", pro)
	}
	if o, ok := c.Offer("max"); !ok || o.Price != "25000000" {
		t.Errorf("Offer(max) = %+v, %v", o, ok)
	}
	if _, ok := c.Offer("gold"); ok {
		t.Error("Offer(gold) found")
	}
}

// signInExtension returns the sign-in-with-x extension of a 402's
// PAYMENT-REQUIRED header and of its body.
func signInExtension(t *testing.T, e *apierror.Error) (header, body map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	apierror.Write(rec, httptest.NewRequest("GET", "/v1/data", nil), e)
	raw, err := base64.StdEncoding.DecodeString(rec.Header().Get("PAYMENT-REQUIRED"))
	if err != nil {
		t.Fatal(err)
	}
	var pr, b struct {
		Extensions map[string]map[string]any `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	return pr.Extensions["sign-in-with-x"], b.Extensions["sign-in-with-x"]
}

// TestPaymentRequiredSignInWithX advertises x402's sign-in-with-x
// extension, in the header and the body, with a nonce of its own in every
// answer.
func TestPaymentRequiredSignInWithX(t *testing.T) {
	c, clk := newCatalogClock(t)
	h, b := signInExtension(t, c.PaymentRequired())
	if h == nil || !cmp.Equal(h, b) {
		t.Fatalf("header extension %v, body %v", h, b)
	}
	info := h["info"].(map[string]any)
	nonce := info["nonce"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(nonce) {
		t.Errorf("nonce %q", nonce)
	}
	want := map[string]any{
		"domain": "api.example.com", "uri": "https://api.example.com", "version": "1",
		"issuedAt": "2026-12-05T12:00:00.000Z", "expirationTime": "2026-12-05T12:05:00.000Z",
		"statement": "Sign in to api.example.com", "resources": []any{"https://api.example.com"}, "nonce": nonce,
	}
	if d := cmp.Diff(want, info); d != "" {
		t.Errorf("info (-want +got):\n%s", d)
	}
	chains := []any{map[string]any{"chainId": "eip155:84532", "type": "eip191", "signatureScheme": "eip191"}}
	if d := cmp.Diff(chains, h["supportedChains"]); d != "" {
		t.Errorf("supportedChains (-want +got):\n%s", d)
	}
	if h["schema"].(map[string]any)["type"] != "object" {
		t.Errorf("schema %v", h["schema"])
	}
	if _, err := c.nonces.Check(nonce, clk.Now()); err != nil {
		t.Errorf("the challenge's nonce: %v", err)
	}
	// Every answer has a challenge of its own: proofs are used once.
	seen := map[any]bool{nonce: true}
	for range 100 {
		h2, _ := signInExtension(t, c.PaymentRequired())
		if n2 := h2["info"].(map[string]any)["nonce"]; seen[n2] {
			t.Fatalf("nonce %v given twice", n2)
		} else {
			seen[n2] = true
		}
	}
	clk.Advance(61 * time.Second)
	h3, _ := signInExtension(t, c.PaymentRequired())
	if i3 := h3["info"].(map[string]any); i3["issuedAt"] != "2026-12-05T12:01:01.000Z" || i3["expirationTime"] != "2026-12-05T12:06:01.000Z" {
		t.Errorf("times of a later challenge: %v", i3)
	}
	// The purchase 402 asks for a payment, not a sign-in.
	if h, _ := signInExtension(t, c.PaymentRequiredFor("pro")); h != nil {
		t.Errorf("purchase 402 advertises sign-in: %v", h)
	}
}

// BenchmarkPaymentRequired builds the 402 of a request without credentials:
// a challenge of its own each time.
func BenchmarkPaymentRequired(b *testing.B) {
	cfg, err := config.Parse([]byte(catalogYAML), nil)
	if err != nil {
		b.Fatal(err)
	}
	nonces, _ := siwx.NewNonces(0, 0, bytes.Repeat([]byte{1}, 32))
	c, err := NewCatalog(cfg, clock.NewFake(catalogTime), nonces)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.PaymentRequired()
	}
}
