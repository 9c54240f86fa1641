package subscriptions

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/eip3009"
	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/store"
)

// memPurchases records purchases in memory, refusing a reused authorization
// as the store does.
type memPurchases struct {
	mu   sync.Mutex
	seen map[string]store.Payment
}

func (m *memPurchases) Purchase(_ context.Context, p store.Payment, d time.Duration, _ store.AuditEntry) (store.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[p.Authorization]; ok {
		return store.Subscription{}, store.ErrAlreadyExists
	}
	m.seen[p.Authorization] = p
	return store.Subscription{Wallet: p.Wallet, OrgID: "org_w", Plan: p.Plan, ExpiresAt: time.Unix(0, 0).Add(d)}, nil
}

var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// paymentFor builds a v2 or v1 payment header for the offer "pro" of
// catalogYAML, signed by key, after which mod changes the authorization
// (the signature no longer matches).
func paymentFor(t testing.TB, key *secp256k1.PrivateKey, version int, mod func(*eip3009.Authorization)) string {
	t.Helper()
	return buildPayment(t, key, version, nil, mod)
}

// signedPayment is paymentFor with mod applied before signing: the
// signature matches the changed authorization.
func signedPayment(t testing.TB, key *secp256k1.PrivateKey, version int, mod func(*eip3009.Authorization)) string {
	t.Helper()
	return buildPayment(t, key, version, mod, nil)
}

func buildPayment(t testing.TB, key *secp256k1.PrivateKey, version int, before, after func(*eip3009.Authorization)) string {
	t.Helper()
	asset := must(evm.ParseAddress("0x036CbD53842c5426634e7929541eC2318f3dCF7e"))
	a := eip3009.Authorization{
		From: evm.PublicKeyAddress(key.PubKey()), To: must(evm.ParseAddress("0x209693Bc6afc0C5328bA36FaF03C514EF312287C")),
		Value: big.NewInt(1000000), ValidAfter: big.NewInt(testNow.Unix() - 10), ValidBefore: big.NewInt(testNow.Unix() + 60),
		Nonce: [32]byte{9, 9, byte(version)},
	}
	if before != nil {
		before(&a)
	}
	sig, err := eip3009.Sign(key, eip3009.TokenDomain("USDC", "2", 84532, asset), a)
	if err != nil {
		t.Fatal(err)
	}
	if after != nil {
		after(&a)
	}
	payload := map[string]any{
		"signature": "0x" + hex.EncodeToString(sig),
		"authorization": map[string]string{
			"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value.String(),
			"validAfter": a.ValidAfter.String(), "validBefore": a.ValidBefore.String(), "nonce": "0x" + hex.EncodeToString(a.Nonce[:]),
		},
	}
	msg := map[string]any{"x402Version": version, "payload": payload}
	if version == 2 {
		msg["accepted"] = map[string]any{"scheme": "exact", "network": "eip155:84532", "amount": "1000000",
			"asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
			"maxTimeoutSeconds": 90, "extra": map[string]string{"name": "USDC", "version": "2"}}
	} else {
		msg["scheme"], msg["network"] = "exact", "base-sepolia"
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPurchase(t *testing.T) {
	c := newCatalog(t)
	purchases := &memPurchases{seen: map[string]store.Payment{}}
	shop := &Shop{Catalog: c, Facilitator: Local{Clock: clock.NewFake(testNow)}, Purchases: purchases, Clock: clock.NewFake(testNow)}
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	buy := func(plan string, headers ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", PurchasePath+"?plan="+plan, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		apierror.HandlerFunc(shop.ServePurchase).ServeHTTP(w, r)
		return w
	}

	if w := buy("gold"); w.Code != 400 {
		t.Errorf("unknown plan: %d", w.Code)
	}
	w := buy("pro")
	raw, _ := base64.StdEncoding.DecodeString(w.Header().Get(HeaderPaymentRequired))
	if w.Code != 402 || strings.Count(string(raw), `"scheme"`) != 1 || !strings.Contains(string(raw), "?plan=pro") {
		t.Errorf("no payment: %d, requirements %s", w.Code, raw)
	}

	for _, c := range []struct {
		name string
		mod  func(*eip3009.Authorization)
		want string
	}{
		{"underpaid", func(a *eip3009.Authorization) { a.Value = big.NewInt(999999) }, "costs 1000000"},
		{"another recipient", func(a *eip3009.Authorization) { a.To[0] ^= 1 }, "the authorization pays"},
		{"expired", func(a *eip3009.Authorization) { a.ValidBefore = big.NewInt(testNow.Unix() - 1) }, ReasonValidBefore},
		{"tampered", func(a *eip3009.Authorization) { a.Nonce[31] ^= 1 }, "signature"},
	} {
		w := buy("pro", HeaderPaymentSignature, paymentFor(t, key, 2, c.mod))
		if w.Code != 402 || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	if w := buy("pro", HeaderPaymentSignature, "not base64!"); w.Code != 402 || !strings.Contains(w.Body.String(), "invalid_payment") {
		t.Errorf("garbage: %d %s", w.Code, w.Body)
	}
	if len(purchases.seen) != 0 {
		t.Fatalf("refused payments were recorded: %v", purchases.seen)
	}

	for _, v := range []struct {
		version        int
		header, answer string
	}{{2, HeaderPaymentSignature, HeaderPaymentResponse}, {1, HeaderXPayment, HeaderXPaymentResponse}} {
		payment := paymentFor(t, key, v.version, nil)
		w := buy("pro", v.header, payment)
		if w.Code != 200 {
			t.Fatalf("v%d: %d %s", v.version, w.Code, w.Body)
		}
		raw, err := base64.StdEncoding.DecodeString(w.Header().Get(v.answer))
		var s settlement
		if err != nil || json.Unmarshal(raw, &s) != nil || !s.Success || s.Payer != evm.PublicKeyAddress(key.PubKey()).Hex() || !strings.HasPrefix(s.Transaction, "local-unsettled:") {
			t.Errorf("v%d %s: %s", v.version, v.answer, raw)
		}
		if w := buy("pro", v.header, payment); w.Code != http.StatusConflict {
			t.Errorf("v%d replayed: %d %s", v.version, w.Code, w.Body)
		}
	}
	if len(purchases.seen) != 2 {
		t.Errorf("%d purchases recorded, want 2", len(purchases.seen))
	}
	for k, p := range purchases.seen {
		if p.Wallet != "eip155:"+evm.PublicKeyAddress(key.PubKey()).Hex() || p.Amount != "1000000" || p.Facilitator != "local" || !strings.HasPrefix(k, "eip155:84532:0x036cbd") {
			t.Errorf("recorded %s: %+v", k, p)
		}
	}
}

func TestDecodePaymentRefuses(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := `{"x402Version":1,"scheme":"exact","network":"base-sepolia","payload":{"signature":"0x` + strings.Repeat("ab", 65) +
		`","authorization":{"from":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"1","validAfter":"0","validBefore":"9","nonce":"0x` + strings.Repeat("00", 32) + `"}}}`
	if _, err := DecodePayment(enc(good), 1); err != nil {
		t.Fatalf("good v1 payment: %v", err)
	}
	for name, c := range map[string]struct {
		header  string
		version int
	}{
		"version mismatch": {enc(good), 2},
		"unknown member":   {enc(strings.Replace(good, `"scheme"`, `"extra":1,"scheme"`, 1)), 1},
		"other scheme":     {enc(strings.Replace(good, `"exact"`, `"upto"`, 1)), 1},
		"unknown network":  {enc(strings.Replace(good, "base-sepolia", "moon", 1)), 1},
		"leading zero":     {enc(strings.Replace(good, `"value":"1"`, `"value":"01"`, 1)), 1},
		"negative":         {enc(strings.Replace(good, `"value":"1"`, `"value":"-1"`, 1)), 1},
		"2^256":            {enc(strings.Replace(good, `"value":"1"`, `"value":"115792089237316195423570985008687907853269984665640564039457584007913129639936"`, 1)), 1},
		"short nonce":      {enc(strings.Replace(good, strings.Repeat("00", 32), "00", 1)), 1},
		"short signature":  {enc(strings.Replace(good, strings.Repeat("ab", 65), "ab", 1)), 1},
		"trailing data":    {enc(good + "{}"), 1},
		"trailing brace":   {enc(good + "}"), 1},
		"too long":         {strings.Repeat("A", MaxPaymentHeader+4), 1},
		"url base64":       {base64.URLEncoding.EncodeToString([]byte(good + "\xff\xfe")), 1},
	} {
		if _, err := DecodePayment(c.header, c.version); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzDecodePayment(f *testing.F) {
	key, _ := secp256k1.GeneratePrivateKey()
	f.Add(paymentFor(f, key, 2, nil), 2)
	f.Add(paymentFor(f, key, 1, nil), 1)
	f.Add("", 2)
	f.Fuzz(func(t *testing.T, header string, version int) {
		p, err := DecodePayment(header, version)
		if err != nil {
			return
		}
		if p.Version != version || p.Network == "" || p.Authorization.Value == nil || len(p.Signature) != 65 {
			t.Fatalf("accepted an incomplete payment: %+v", p)
		}
		_ = Local{Clock: clock.NewFake(testNow)}.Verify(context.Background(), p, Requirement{Network: p.Network,
			Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", Amount: "1"})
	})
}

// flakyPurchases fails its first failures calls with a store error.
type flakyPurchases struct {
	memPurchases
	failures int
	calls    int
}

func (f *flakyPurchases) Purchase(ctx context.Context, p store.Payment, d time.Duration, a store.AuditEntry) (store.Subscription, error) {
	f.calls++
	if f.calls <= f.failures {
		return store.Subscription{}, errors.New("database is locked")
	}
	return f.memPurchases.Purchase(ctx, p, d, a)
}

// TestPurchaseRecording: a settled payment is recorded even if the store
// fails a few times, reported as subscription.created; if recording keeps
// failing, the answer is 500 and an error log names the settled payment for
// reconciliation.
func TestPurchaseRecording(t *testing.T) {
	key := must(secp256k1.GeneratePrivateKey())
	type event struct {
		org, typ string
		data     map[string]any
	}
	for _, tc := range []struct {
		name     string
		failures int
		status   int
	}{{"two failures", 2, 200}, {"always failing", 100, 500}} {
		t.Run(tc.name, func(t *testing.T) {
			purchases := &flakyPurchases{memPurchases: memPurchases{seen: map[string]store.Payment{}}, failures: tc.failures}
			var logs bytes.Buffer
			var events []event
			shop := &Shop{
				Catalog: newCatalog(t), Facilitator: Local{Clock: clock.NewFake(testNow)}, Purchases: purchases, Clock: clock.NewFake(testNow),
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Events: func(_ context.Context, org, typ string, data any) {
					events = append(events, event{org, typ, data.(map[string]any)})
				},
			}
			r := httptest.NewRequest("POST", PurchasePath+"?plan=pro", nil)
			r.Header.Set(HeaderPaymentSignature, paymentFor(t, key, 2, nil))
			w := httptest.NewRecorder()
			apierror.HandlerFunc(shop.ServePurchase).ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if tc.status == 200 {
				if purchases.calls != 3 || len(events) != 1 || events[0].typ != "subscription.created" || events[0].org != "org_w" ||
					events[0].data["plan"] != "pro" || events[0].data["amount"] != "1000000" || !strings.HasPrefix(events[0].data["transaction"].(string), "local-unsettled:") {
					t.Errorf("calls %d, events %+v", purchases.calls, events)
				}
				return
			}
			if purchases.calls != recordAttempts || len(events) != 0 || !strings.Contains(logs.String(), "SETTLED payment could not be recorded") ||
				!strings.Contains(logs.String(), "local-unsettled:") {
				t.Errorf("calls %d, events %v, log %s", purchases.calls, events, logs.String())
			}
		})
	}
}

// countingFacilitator accepts every payment, and counts the calls: what
// Tollgate refuses on its own never reaches it.
type countingFacilitator struct{ calls int }

func (f *countingFacilitator) Verify(context.Context, Payment, Requirement) error {
	f.calls++
	return nil
}
func (f *countingFacilitator) Settle(context.Context, Payment, Requirement) (string, error) {
	f.calls++
	return "0xfeed", nil
}
func (f *countingFacilitator) Name() string { return "counting" }

// TestPaymentValidityWindow: an authorization whose validBefore is later
// than now + maxTimeoutSeconds (90 s) + ClockSkew (30 s), or whose
// validAfter is not in the past, or that has expired, is refused with x402's
// reason, by the local facilitator and by Tollgate before it calls any
// facilitator. The authorizations are correctly signed: only the window is
// wrong.
func TestPaymentValidityWindow(t *testing.T) {
	key := must(secp256k1.GeneratePrivateKey())
	now := testNow.Unix()
	maxUint256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, c := range []struct {
		name          string
		after, before *big.Int
		reason        string // "" accepted
	}{
		{"usual", big.NewInt(now - 600), big.NewInt(now + 90), ""},
		{"validAfter 0", big.NewInt(0), big.NewInt(now + 60), ""},
		{"at the skew's end", big.NewInt(now - 1), big.NewInt(now + 120), ""},
		{"a second past it", big.NewInt(now - 1), big.NewInt(now + 121), ReasonValidBefore},
		{"a day", big.NewInt(now - 1), big.NewInt(now + 86400), ReasonValidBefore},
		{"never expires", big.NewInt(0), maxUint256, ReasonValidBefore},
		{"expired", big.NewInt(now - 600), big.NewInt(now), ReasonValidBefore},
		{"long expired", big.NewInt(0), big.NewInt(1), ReasonValidBefore},
		{"valid from now", big.NewInt(now), big.NewInt(now + 60), ReasonValidAfter},
		{"valid later", big.NewInt(now + 10), big.NewInt(now + 60), ReasonValidAfter},
		{"far future", maxUint256, maxUint256, ReasonValidAfter},
	} {
		t.Run(c.name, func(t *testing.T) {
			header := signedPayment(t, key, 2, func(a *eip3009.Authorization) {
				a.ValidAfter, a.ValidBefore = c.after, c.before
				a.Nonce[31] = byte(len(c.name)) // a new authorization for each case
			})
			p, err := DecodePayment(header, 2)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := newCatalog(t).Requirement("pro")
			err = Local{Clock: clock.NewFake(testNow)}.Verify(context.Background(), p, req)
			if got := reasonOf(err); got != c.reason || (c.reason == "") != (err == nil) {
				t.Fatalf("local facilitator: %v (reason %q), want reason %q", err, got, c.reason)
			}
			if err != nil && !errors.Is(err, ErrPaymentInvalid) {
				t.Fatalf("local facilitator: %v is not ErrPaymentInvalid", err)
			}

			fac := &countingFacilitator{}
			shop := &Shop{Catalog: newCatalog(t), Facilitator: fac, Purchases: &memPurchases{seen: map[string]store.Payment{}}, Clock: clock.NewFake(testNow)}
			r := httptest.NewRequest("POST", PurchasePath+"?plan=pro", nil)
			r.Header.Set(HeaderPaymentSignature, header)
			w := httptest.NewRecorder()
			apierror.HandlerFunc(shop.ServePurchase).ServeHTTP(w, r)
			if c.reason == "" {
				if w.Code != 200 || fac.calls != 2 {
					t.Fatalf("shop: %d %s, %d facilitator calls", w.Code, w.Body, fac.calls)
				}
				return
			}
			var body struct {
				Error struct{ Code, Reason string } `json:"error"`
			}
			if w.Code != 402 || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Reason != c.reason || body.Error.Code != "PAYMENT_REQUIRED" {
				t.Fatalf("shop: %d %s, want 402 with reason %s", w.Code, w.Body, c.reason)
			}
			if w.Header().Get(HeaderPaymentRequired) == "" || fac.calls != 0 {
				t.Fatalf("shop: PAYMENT-REQUIRED %q, %d facilitator calls (want the requirements, no call)", w.Header().Get(HeaderPaymentRequired), fac.calls)
			}
		})
	}
}
