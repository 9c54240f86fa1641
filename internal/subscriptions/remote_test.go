package subscriptions

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/eip3009"
	"github.com/tollgate/tollgate/internal/store"
)

// fakeFacilitator serves x402's facilitator API: it decodes the payload it
// is sent (as a facilitator would, from the JSON alone), verifies it with
// the local facilitator's checks against the requirements it is sent, and
// settles each authorization once, as the chain's EIP-3009 nonce would.
type fakeFacilitator struct {
	t    *testing.T
	auth string
	mu   sync.Mutex
	seen map[string]bool
	reqs []map[string]json.RawMessage // bodies received
	// override, when set, answers instead.
	override func(w http.ResponseWriter, r *http.Request) bool
}

func newFakeFacilitator(t *testing.T) (*fakeFacilitator, *httptest.Server) {
	f := &fakeFacilitator{t: t, auth: "Bearer fac-secret", seen: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeFacilitator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.override != nil && f.override(w, r) {
		return
	}
	if r.Header.Get("Authorization") != f.auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodGet && r.URL.Path == "/supported" {
		_, _ = io.WriteString(w, `{"kinds":[{"x402Version":2,"scheme":"exact","network":"eip155:84532"},{"x402Version":1,"scheme":"exact","network":"base-sepolia"}],"extensions":[],"signers":{}}`)
		return
	}
	var body map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, body)
	f.mu.Unlock()
	var version int
	_ = json.Unmarshal(body["x402Version"], &version)
	p, err := DecodePayment(base64.StdEncoding.EncodeToString(body["paymentPayload"]), version)
	var wr struct {
		Network, Asset, PayTo, Amount, MaxAmountRequired string
		MaxTimeoutSeconds                                int64
		Extra                                            map[string]string
	}
	if err == nil {
		err = json.Unmarshal(body["paymentRequirements"], &wr)
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"isValid":false,"invalidReason":"invalid_payload"}`)
		return
	}
	req := Requirement{Network: p.Network, Asset: wr.Asset, PayTo: wr.PayTo, Amount: wr.Amount + wr.MaxAmountRequired,
		MaxTimeoutSeconds: wr.MaxTimeoutSeconds, AssetName: wr.Extra["name"], AssetVersion: wr.Extra["version"]}
	verr := Local{Clock: clock.NewFake(testNow)}.Verify(r.Context(), p, req)
	switch r.URL.Path {
	case "/verify":
		if verr != nil {
			_ = json.NewEncoder(w).Encode(map[string]any{"isValid": false, "invalidReason": "invalid_exact_evm_payload_signature", "invalidMessage": verr.Error(), "payer": p.Authorization.From.Hex()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"isValid": true, "payer": p.Authorization.From.Hex()})
	case "/settle":
		f.mu.Lock()
		used := f.seen[p.Key(wr.Asset)]
		f.seen[p.Key(wr.Asset)] = true
		f.mu.Unlock()
		if verr != nil || used {
			_ = json.NewEncoder(w).Encode(map[string]any{"success": false, "errorReason": "invalid_transaction_state", "transaction": "", "network": req.Network})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "transaction": "0xfeed", "network": req.Network, "payer": p.Authorization.From.Hex()})
	default:
		http.NotFound(w, r)
	}
}

func newRemote(t *testing.T, url string) *Remote {
	t.Helper()
	r, err := NewRemote(RemoteOptions{URL: url + "/", AuthHeader: "Authorization: Bearer fac-secret", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRemotePurchase buys through a facilitator over HTTP: the exact
// request shapes of both protocol versions, the auth header, and the
// answers mapped to 200, 402 and 409.
func TestRemotePurchase(t *testing.T) {
	fac, srv := newFakeFacilitator(t)
	c := newCatalog(t)
	purchases := &memPurchases{seen: map[string]store.Payment{}}
	remote := newRemote(t, srv.URL)
	shop := &Shop{Catalog: c, Facilitator: remote, Purchases: purchases, Clock: clock.NewFake(testNow)}
	key := must(secp256k1.GeneratePrivateKey())
	buy := func(header, value string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", PurchasePath+"?plan=pro", nil)
		r.Header.Set(header, value)
		w := httptest.NewRecorder()
		apierror.HandlerFunc(shop.ServePurchase).ServeHTTP(w, r)
		return w
	}

	v2 := paymentFor(t, key, 2, nil)
	w := buy(HeaderPaymentSignature, v2)
	if w.Code != 200 {
		t.Fatalf("v2 purchase: %d %s", w.Code, w.Body)
	}
	var res PurchaseResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Transaction != "0xfeed" || res.Facilitator != srv.URL {
		t.Fatalf("result %+v, %v", res, err)
	}
	// What the facilitator was sent: the payload byte for byte, and the
	// offer's v2 requirements.
	raw, _ := base64.StdEncoding.DecodeString(v2)
	first := fac.reqs[0]
	if !bytes.Equal(first["paymentPayload"], raw) || string(first["x402Version"]) != "2" {
		t.Errorf("paymentPayload %s, x402Version %s", first["paymentPayload"], first["x402Version"])
	}
	var got map[string]any
	_ = json.Unmarshal(first["paymentRequirements"], &got)
	want := map[string]any{
		"scheme": "exact", "network": "eip155:84532", "amount": "1000000",
		"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		"maxTimeoutSeconds": float64(90), "extra": map[string]any{"name": "USDC", "version": "2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("v2 requirements (-want +got):\n%s", d)
	}
	if len(fac.reqs) != 2 || !bytes.Equal(fac.reqs[1]["paymentPayload"], raw) {
		t.Errorf("want /verify then /settle with the same body, got %d calls", len(fac.reqs))
	}

	// The same authorization: verified, but the settlement fails (the
	// nonce is spent), and nothing is recorded.
	if w := buy(HeaderPaymentSignature, v2); w.Code != 402 || !strings.Contains(w.Body.String(), "settlement_failed") {
		t.Errorf("replayed authorization: %d %s", w.Code, w.Body)
	}

	// Version 1: the v1 requirements shape.
	w = buy(HeaderXPayment, paymentFor(t, key, 1, nil))
	if w.Code != 200 || w.Header().Get(HeaderXPaymentResponse) == "" {
		t.Fatalf("v1 purchase: %d %s", w.Code, w.Body)
	}
	v1 := fac.reqs[len(fac.reqs)-1]
	got = nil
	_ = json.Unmarshal(v1["paymentRequirements"], &got)
	want = map[string]any{
		"scheme": "exact", "network": "base-sepolia", "maxAmountRequired": "1000000",
		"resource": "https://api.example.com/x402/purchase?plan=pro", "description": "Pro, 30 days", "mimeType": "application/json",
		"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		"maxTimeoutSeconds": float64(90), "extra": map[string]any{"name": "USDC", "version": "2"},
	}
	if d := cmp.Diff(want, got); d != "" || string(v1["x402Version"]) != "1" {
		t.Errorf("v1 requirements (-want +got):\n%s", d)
	}

	// A payment the facilitator refuses: 402 with its reason.
	underpaid := paymentFor(t, key, 2, func(a *eip3009.Authorization) { a.Nonce[5] = 1 }) // signature no longer matches
	if w := buy(HeaderPaymentSignature, underpaid); w.Code != 402 || !strings.Contains(w.Body.String(), "invalid_exact_evm_payload_signature") {
		t.Errorf("refused payment: %d %s", w.Code, w.Body)
	}
	if n := len(purchases.seen); n != 2 {
		t.Errorf("%d purchases recorded, want 2", n)
	}
}

// TestRemoteAnswers maps each kind of facilitator answer.
func TestRemoteAnswers(t *testing.T) {
	key := must(secp256k1.GeneratePrivateKey())
	p, err := DecodePayment(paymentFor(t, key, 2, nil), 2)
	if err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t)
	req, _ := c.Requirement("pro")
	payer := p.Authorization.From.Hex()
	for _, tc := range []struct {
		name       string
		status     int
		ctype      string
		body       string
		verifyErr  string // "" ok, "invalid" ErrPaymentInvalid, else an error containing it
		settleErr  string
		settleTx   string
		redirectTo bool
	}{
		{name: "valid", status: 200, body: `{"isValid":true,"payer":"` + payer + `"}`},
		{name: "valid without payer", status: 200, body: `{"isValid":true}`},
		{name: "refused with 200", status: 200, body: `{"isValid":false,"invalidReason":"insufficient_funds"}`, verifyErr: "invalid"},
		{name: "refused with 400", status: 400, body: `{"isValid":false,"invalidReason":"invalid_payload","invalidMessage":"bad"}`, verifyErr: "invalid"},
		{name: "other payer", status: 200, body: `{"isValid":true,"payer":"0x0000000000000000000000000000000000000001"}`, verifyErr: "verified payer"},
		{name: "no verdict", status: 500, body: `{"error":"boom"}`, verifyErr: "without a verdict"},
		{name: "html", status: 502, ctype: "text/html", body: `<h1>bad gateway</h1>`, verifyErr: "not JSON"},
		{name: "not json", status: 200, body: `{"isValid":`, verifyErr: "answer"},
		{name: "huge", status: 200, body: `{"isValid":true,"pad":"` + strings.Repeat("x", maxFacilitatorAnswer) + `"}`, verifyErr: "over"},
		{name: "redirect", redirectTo: true, verifyErr: "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.redirectTo {
					http.Redirect(w, r, "https://elsewhere.example/verify", http.StatusTemporaryRedirect)
					return
				}
				ct := tc.ctype
				if ct == "" {
					ct = "application/json; charset=utf-8"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			err := newRemote(t, srv.URL).Verify(t.Context(), p, req)
			switch tc.verifyErr {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "invalid":
				if !errors.Is(err, ErrPaymentInvalid) {
					t.Fatalf("err = %v, want ErrPaymentInvalid", err)
				}
			default:
				if err == nil || errors.Is(err, ErrPaymentInvalid) || !strings.Contains(err.Error(), tc.verifyErr) {
					t.Fatalf("err = %v, want an error about %q (not a refusal)", err, tc.verifyErr)
				}
			}
		})
	}

	for _, tc := range []struct{ name, body, err string }{
		{"settled", `{"success":true,"transaction":"0xabc","network":"eip155:84532","payer":"` + payer + `"}`, ""},
		{"settled v1 network name", `{"success":true,"transaction":"0xabc","network":"base-sepolia"}`, ""},
		{"failed", `{"success":false,"errorReason":"insufficient_funds","transaction":""}`, "invalid"},
		{"no transaction", `{"success":true,"transaction":""}`, "without a transaction"},
		{"other network", `{"success":true,"transaction":"0xabc","network":"eip155:1"}`, "settled on"},
		{"other payer", `{"success":true,"transaction":"0xabc","payer":"0x0000000000000000000000000000000000000001"}`, "settled for payer"},
	} {
		t.Run("settle "+tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			tx, err := newRemote(t, srv.URL).Settle(t.Context(), p, req)
			switch tc.err {
			case "":
				if err != nil || tx != "0xabc" {
					t.Fatalf("Settle = %q, %v", tx, err)
				}
			case "invalid":
				if !errors.Is(err, ErrPaymentInvalid) {
					t.Fatalf("err = %v, want ErrPaymentInvalid", err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			}
		})
	}
}

// TestRemoteSupported reads GET /supported.
func TestRemoteSupported(t *testing.T) {
	_, srv := newFakeFacilitator(t)
	kinds, err := newRemote(t, srv.URL).Supported(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !Supports(kinds, "eip155:84532") || Supports(kinds, "eip155:1") {
		t.Errorf("kinds %+v", kinds)
	}
	if !Supports([]Kind{{X402Version: 1, Scheme: "exact", Network: "base"}}, "eip155:8453") {
		t.Error("a v1 network name is not matched")
	}
	bad, err := NewRemote(RemoteOptions{URL: srv.URL, AuthHeader: "Authorization: Bearer wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Supported(t.Context()); err == nil {
		t.Error("a wrong auth header was accepted")
	}
}

func TestNewRemoteRefuses(t *testing.T) {
	for _, o := range []RemoteOptions{
		{URL: ""}, {URL: "ftp://x"}, {URL: "https://"}, {URL: "https://f.example/?a=1"},
		{URL: "https://f.example", AuthHeader: "no colon"}, {URL: "https://f.example", AuthHeader: "X-Key: "},
	} {
		if _, err := NewRemote(o); err == nil {
			t.Errorf("NewRemote(%+v) accepted", o)
		}
	}
}
