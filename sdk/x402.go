package sdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/eip3009"
	"github.com/tollgate/tollgate/internal/evm"
)

// PurchaseOptions tune PayForPlan. The zero value is ready to use.
type PurchaseOptions struct {
	Client *http.Client             // default http.DefaultClient
	Now    func() time.Time         // the time the authorization's window starts; default time.Now
	Nonce  func() ([32]byte, error) // default: 32 random bytes
}

// Purchase is the gateway's answer to a paid purchase.
type Purchase struct {
	Subscription struct {
		Wallet         string    `json:"wallet"`
		OrganizationID string    `json:"organization_id"`
		Plan           string    `json:"plan"`
		StartedAt      time.Time `json:"started_at"`
		ExpiresAt      time.Time `json:"expires_at"`
	} `json:"subscription"`
	Transaction string `json:"transaction"`
	Facilitator string `json:"facilitator"`
	// PaymentResponse is the decoded PAYMENT-RESPONSE header.
	PaymentResponse map[string]any `json:"-"`
}

// PayForPlan buys plan for the wallet of key from the API at baseURL, with
// x402 version 2: it asks POST /x402/purchase?plan=PLAN for the payment
// requirements (a 402 with PAYMENT-REQUIRED), signs an EIP-3009
// TransferWithAuthorization of exactly the amount asked, to the address
// asked, valid for the requirements' maxTimeoutSeconds, and sends it in
// PAYMENT-SIGNATURE. EVM networks ("eip155:…") only.
func PayForPlan(ctx context.Context, baseURL, plan string, key *secp256k1.PrivateKey, o PurchaseOptions) (*Purchase, error) {
	if key == nil {
		return nil, errors.New("sdk: no key")
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nonce == nil {
		o.Nonce = func() (n [32]byte, err error) { _, err = rand.Read(n[:]); return n, err }
	}
	target := strings.TrimSuffix(baseURL, "/") + "/x402/purchase?plan=" + plan
	res, err := post(ctx, o.Client, target, "")
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusPaymentRequired {
		return nil, fmt.Errorf("sdk: purchase without payment: %d, want 402: %s", res.status, res.body)
	}
	var required struct {
		X402Version int              `json:"x402Version"`
		Resource    json.RawMessage  `json:"resource"`
		Accepts     []map[string]any `json:"accepts"`
	}
	raw, err := base64.StdEncoding.DecodeString(res.header.Get("PAYMENT-REQUIRED"))
	if err != nil || json.Unmarshal(raw, &required) != nil || required.X402Version != 2 || len(required.Accepts) == 0 {
		return nil, fmt.Errorf("sdk: no x402 version 2 requirements in the 402")
	}
	accepted := required.Accepts[0]
	str := func(k string) string { s, _ := accepted[k].(string); return s }
	extra, _ := accepted["extra"].(map[string]any)
	name, _ := extra["name"].(string)
	version, _ := extra["version"].(string)
	chain, ok := strings.CutPrefix(str("network"), "eip155:")
	chainID, err := strconv.ParseUint(chain, 10, 64)
	if str("scheme") != "exact" || !ok || err != nil {
		return nil, fmt.Errorf("sdk: requirements for %s on %s: only exact on EVM networks is supported", str("scheme"), str("network"))
	}
	asset, err := evm.ParseAddress(str("asset"))
	if err != nil {
		return nil, fmt.Errorf("sdk: asset: %w", err)
	}
	payTo, err := evm.ParseAddress(str("payTo"))
	if err != nil {
		return nil, fmt.Errorf("sdk: payTo: %w", err)
	}
	value, ok := new(big.Int).SetString(str("amount"), 10)
	if !ok {
		return nil, fmt.Errorf("sdk: amount %q", str("amount"))
	}
	timeout, _ := accepted["maxTimeoutSeconds"].(float64)
	nonce, err := o.Nonce()
	if err != nil {
		return nil, err
	}
	// Valid from a minute ago (the payer's clock may run behind) until
	// maxTimeoutSeconds from now, no longer: servers refuse authorizations
	// that outlive the requirements.
	life := int64(timeout)
	if life <= 0 {
		life = 60
	}
	now := o.Now().Unix()
	auth := eip3009.Authorization{
		From: evm.PublicKeyAddress(key.PubKey()), To: payTo, Value: value,
		ValidAfter: big.NewInt(now - 60), ValidBefore: big.NewInt(now + life), Nonce: nonce,
	}
	sig, err := eip3009.Sign(key, eip3009.TokenDomain(name, version, chainID, asset), auth)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(map[string]any{
		"x402Version": 2,
		"resource":    required.Resource,
		"accepted":    accepted,
		"payload": map[string]any{
			"signature": "0x" + hex.EncodeToString(sig),
			"authorization": map[string]string{
				"from": auth.From.Hex(), "to": auth.To.Hex(), "value": auth.Value.String(),
				"validAfter": auth.ValidAfter.String(), "validBefore": auth.ValidBefore.String(),
				"nonce": "0x" + hex.EncodeToString(nonce[:]),
			},
		},
	})
	if err != nil {
		return nil, err
	}
	res, err = post(ctx, o.Client, target, base64.StdEncoding.EncodeToString(payload))
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("sdk: purchase: %d: %s", res.status, res.body)
	}
	var p Purchase
	if err := json.Unmarshal(res.body, &p); err != nil {
		return nil, fmt.Errorf("sdk: purchase answer: %w", err)
	}
	if raw, err := base64.StdEncoding.DecodeString(res.header.Get("PAYMENT-RESPONSE")); err == nil {
		_ = json.Unmarshal(raw, &p.PaymentResponse)
	}
	return &p, nil
}

// answer is what post read of a response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// post sends an empty POST, with a PAYMENT-SIGNATURE header when payment is
// set, and reads at most 1 MiB of the answer.
func post(ctx context.Context, c *http.Client, target, payment string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(nil))
	if err != nil {
		return answer{}, err
	}
	if payment != "" {
		req.Header.Set("PAYMENT-SIGNATURE", payment)
	}
	res, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if cerr := res.Body.Close(); err == nil {
		err = cerr
	}
	return answer{res.StatusCode, res.Header, body}, err
}
