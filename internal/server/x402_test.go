package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/sdk"
)

// x402Lines turn a base configuration into one that sells the plan "pro"
// for x402 payments, with wallet sign-in for api.example.com on Base Sepolia.
const x402Lines = `
plans:
  - {name: pro, rate: {requests_per_second: 100, burst: 100}, quota: {units: 1000, period: month}}
x402:
  enabled: true
  network: eip155:84532
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  asset_name: USDC
  asset_version: "2"
  pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
  facilitator: {url: local}
  offers: [{plan: pro, price: "1000000", duration: 10m}]
  siwx: {domain: api.example.com, uri: "https://api.example.com"}
`

// TestWalletSignIn: with x402 enabled, a request without credentials gets
// 402 with the payment requirements; a wallet's SIWX token gets 402 until the
// wallet has a subscription, 200 while it lasts (as the wallet's own
// organization, the token never forwarded), and 402 again once it expires.
// A bad signature is 401 INVALID_SIGNATURE; API keys still work.
func TestWalletSignIn(t *testing.T) {
	backend := newRecorder(t, nil)
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	n := start(t, baseYAML(t.TempDir(), backend.URL)+x402Lines, clk)

	r := do(t, "GET", n.base+"/v1/data", nil)
	if code, _ := r.errCode(t); r.Status != 402 || code != "PAYMENT_REQUIRED" || r.Header.Get("PAYMENT-REQUIRED") == "" {
		t.Fatalf("no credentials: %d %s", r.Status, r.Body)
	}
	var pr struct {
		X402Version int
		Accepts     []struct{ Amount, Network, PayTo string }
	}
	raw, err := base64.StdEncoding.DecodeString(r.Header.Get("PAYMENT-REQUIRED"))
	if err != nil || json.Unmarshal(raw, &pr) != nil || pr.X402Version != 2 || len(pr.Accepts) != 1 || pr.Accepts[0].Amount != "1000000" {
		t.Fatalf("PAYMENT-REQUIRED %s (%v)", raw, err)
	}
	if r := do(t, "GET", n.base+"/x402/pricing", nil); r.Status != 200 || !json.Valid(r.Body) {
		t.Fatalf("pricing: %d %s", r.Status, r.Body)
	}

	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	token, err := sdk.EthereumSIWXToken(key, sdk.SIWXMessage{
		Domain: "api.example.com", URI: "https://api.example.com", ChainID: "84532", Nonce: "n0nce1234567",
		IssuedAt: clk.Now(), ExpirationTime: clk.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	siwx := "SIWX " + token
	r = do(t, "GET", n.base+"/v1/data", nil, "Authorization", siwx)
	if _, reason := r.errCode(t); r.Status != 402 || reason != "no_active_subscription" {
		t.Fatalf("wallet without subscription: %d %s", r.Status, r.Body)
	}
	// An x402-native agent signs the 402's sign-in-with-x challenge and
	// sends it in SIGN-IN-WITH-X instead.
	challenge, err := sdk.ParseSIWXChallenge(r.Header.Get("PAYMENT-REQUIRED"))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := challenge.EthereumProof(key, "eip155:84532")
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := do(t, "GET", n.base+"/v1/data", nil, "SIGN-IN-WITH-X", proof).errCode(t); reason != "no_active_subscription" {
		t.Fatalf("proof without subscription: %s", reason)
	}
	tampered := siwx[:len(siwx)-4] + "0000"
	if code, _ := do(t, "GET", n.base+"/v1/data", nil, "Authorization", tampered).errCode(t); code != "INVALID_SIGNATURE" && code != "INVALID_TOKEN" {
		t.Errorf("tampered signature: %s", code)
	}

	// Pay through the local facilitator with the SDK: an EIP-3009
	// authorization for exactly the offer's price, signed by the wallet.
	nonce := [32]byte{1, 2, 3}
	opts := sdk.PurchaseOptions{Now: clk.Now, Nonce: func() ([32]byte, error) { return nonce, nil }}
	bought, err := sdk.PayForPlan(t.Context(), n.base, "pro", key, opts)
	if err != nil {
		t.Fatal(err)
	}
	wallet := "eip155:" + addressOf(key)
	if bought.Subscription.Wallet != wallet || bought.Subscription.Plan != "pro" || bought.Facilitator != "local" ||
		!bought.Subscription.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) || bought.PaymentResponse["success"] != true {
		t.Fatalf("purchase: %+v", bought)
	}
	sub := store.Subscription{OrgID: bought.Subscription.OrganizationID}
	// The same authorization again buys nothing.
	if _, err := sdk.PayForPlan(t.Context(), n.base, "pro", key, opts); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("the same authorization again: %v, want 409", err)
	}
	if subs, err := n.srv.store.ListSubscriptions(t.Context()); err != nil || len(subs) != 1 || !subs[0].ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Errorf("subscriptions after a replay: %+v, %v", subs, err)
	}
	r = do(t, "GET", n.base+"/v1/data", nil, "Authorization", siwx)
	if r.Status != 200 {
		t.Fatalf("subscribed wallet: %d %s", r.Status, r.Body)
	}
	seen := backend.all()
	last := seen[len(seen)-1]
	if last.Header.Get("Authorization") != "" || last.Header.Get("X-Tollgate-Org") != sub.OrgID {
		t.Errorf("backend saw Authorization %q, org %q (want none, %s)", last.Header.Get("Authorization"), last.Header.Get("X-Tollgate-Org"), sub.OrgID)
	}
	if r := do(t, "GET", n.base+"/v1/data", nil, "SIGN-IN-WITH-X", proof); r.Status != 200 {
		t.Fatalf("subscribed wallet's proof: %d %s", r.Status, r.Body)
	}
	seen = backend.all()
	if last := seen[len(seen)-1]; last.Header.Get("Sign-In-With-X") != "" || last.Header.Get("X-Tollgate-Org") != sub.OrgID {
		t.Errorf("backend saw SIGN-IN-WITH-X %q, org %q", last.Header.Get("Sign-In-With-X"), last.Header.Get("X-Tollgate-Org"))
	}
	if r.Header.Get("Ratelimit-Policy") == "" {
		t.Errorf("no RateLimit-Policy: the wallet's plan did not apply")
	}

	clk.Advance(5 * time.Minute)
	if code, _ := do(t, "GET", n.base+"/v1/data", nil, "SIGN-IN-WITH-X", proof).errCode(t); code != "EXPIRED_TOKEN" {
		t.Errorf("a proof 5 minutes after its challenge: %s, want EXPIRED_TOKEN", code)
	}
	clk.Advance(5 * time.Minute)
	if r := do(t, "GET", n.base+"/v1/data", nil, "Authorization", siwx); r.Status != 402 {
		t.Errorf("after the subscription expired: %d %s", r.Status, r.Body)
	}
}

// addressOf returns the EIP-55 address of key.
func addressOf(key *secp256k1.PrivateKey) string { return evm.PublicKeyAddress(key.PubKey()).Hex() }

// TestRemoteFacilitator buys through a facilitator over x402's HTTP API,
// configured by URL and auth header: the gateway sends it the payment and
// records the transaction it settles.
func TestRemoteFacilitator(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	fac := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		if r.Header.Get("X-Facilitator-Key") != "k-123" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/supported" {
			_, _ = io.WriteString(w, `{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"}],"extensions":[],"signers":{}}`)
			return
		}
		var body struct {
			X402Version    int
			PaymentPayload struct {
				Payload struct{ Authorization struct{ From string } }
			}
			PaymentRequirements struct{ Network, Amount string }
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.X402Version != 2 ||
			body.PaymentRequirements.Amount != "1000000" || body.PaymentRequirements.Network != "eip155:84532" {
			http.Error(w, `{"isValid":false,"invalidReason":"invalid_payload"}`, http.StatusBadRequest)
			return
		}
		payer := body.PaymentPayload.Payload.Authorization.From
		if r.URL.Path == "/verify" {
			_, _ = fmt.Fprintf(w, `{"isValid":true,"payer":%q}`, payer)
			return
		}
		_, _ = fmt.Fprintf(w, `{"success":true,"transaction":"0xabc123","network":"eip155:84532","payer":%q}`, payer)
	}))
	defer fac.Close()

	backend := newRecorder(t, nil)
	clk := clock.NewFake(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	yaml := strings.Replace(x402Lines, "facilitator: {url: local}",
		`facilitator: {url: "`+fac.URL+`", auth_header: "X-Facilitator-Key: k-123"}`, 1)
	n := start(t, baseYAML(t.TempDir(), backend.URL)+yaml, clk)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	bought, err := sdk.PayForPlan(t.Context(), n.base, "pro", key, sdk.PurchaseOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if bought.Facilitator != fac.URL || bought.Transaction != "0xabc123" || bought.Subscription.Plan != "pro" {
		t.Fatalf("purchase %+v", bought)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls["GET /supported"] != 1 || calls["POST /verify"] != 1 || calls["POST /settle"] != 1 {
		t.Errorf("facilitator calls %v", calls)
	}
	subs, err := n.srv.store.ListPayments(t.Context(), "eip155:"+addressOf(key))
	if err != nil || len(subs) != 1 || subs[0].Transaction != "0xabc123" || subs[0].Facilitator != fac.URL {
		t.Errorf("payments %+v, %v", subs, err)
	}
}
