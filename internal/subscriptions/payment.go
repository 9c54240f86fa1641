package subscriptions

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/tollgate/tollgate/internal/eip3009"
	"github.com/tollgate/tollgate/internal/evm"
)

// Payment headers of x402: version 2's, and version 1's.
const (
	HeaderPaymentSignature = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse  = "PAYMENT-RESPONSE"
	HeaderXPayment         = "X-PAYMENT"
	HeaderXPaymentResponse = "X-PAYMENT-RESPONSE"
)

// MaxPaymentHeader bounds a payment header, in bytes, before it is decoded.
// An "exact" EVM payment is under 2 KiB.
const MaxPaymentHeader = 16 << 10

// ErrMalformedPayment is wrapped by every error DecodePayment returns.
var ErrMalformedPayment = errors.New("malformed x402 payment")

// Payment is a decoded x402 payment of the "exact" scheme on an EVM network:
// an EIP-3009 transfer authorization and its signature.
type Payment struct {
	Version int // 1 or 2
	// Network is the CAIP-2 network (v1 names are translated).
	Network string
	// Accepted is what a v2 payment says it pays for; nil for v1.
	Accepted      *requirements
	Authorization eip3009.Authorization
	Signature     []byte
	// Raw is the PaymentPayload JSON as the payer sent it, which a remote
	// facilitator is given unchanged.
	Raw json.RawMessage
}

// wirePayment is PaymentPayload, both versions: v2 carries "accepted", v1
// "scheme" and "network".
type wirePayment struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Resource    json.RawMessage `json:"resource"`
	Accepted    *requirements   `json:"accepted"`
	Payload     *struct {
		Signature     string `json:"signature"`
		Authorization *struct {
			From        string `json:"from"`
			To          string `json:"to"`
			Value       string `json:"value"`
			ValidAfter  string `json:"validAfter"`
			ValidBefore string `json:"validBefore"`
			Nonce       string `json:"nonce"`
		} `json:"authorization"`
	} `json:"payload"`
	Extensions json.RawMessage `json:"extensions"`
}

// DecodePayment decodes the value of a PAYMENT-SIGNATURE (version 2) or
// X-PAYMENT (version 1) header: standard base64 of a JSON PaymentPayload,
// whose x402Version must be the header's. It checks the form of every
// field (addresses, decimal uint256 amounts and times, a 32-byte nonce, a
// 65-byte signature), not the signature itself. Unknown JSON members are
// refused outside "extensions", "resource" and the requirements' "extra".
func DecodePayment(header string, version int) (Payment, error) {
	bad := func(format string, args ...any) (Payment, error) {
		return Payment{}, fmt.Errorf("%w: %s", ErrMalformedPayment, fmt.Sprintf(format, args...))
	}
	if len(header) > MaxPaymentHeader {
		return bad("header of %d bytes, more than %d", len(header), MaxPaymentHeader)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(header)
	if err != nil {
		return bad("not standard base64")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wirePayment
	if err := dec.Decode(&w); err != nil {
		return bad("JSON: %v", err)
	}
	if strings.TrimLeft(string(raw[dec.InputOffset():]), " \t\r\n") != "" {
		return bad("data after the JSON object")
	}
	if w.X402Version != version {
		return bad("x402Version %d in a version %d header", w.X402Version, version)
	}
	p := Payment{Version: version, Raw: json.RawMessage(raw)}
	switch version {
	case 2:
		if w.Accepted == nil {
			return bad("no accepted requirements")
		}
		if w.Scheme != "" || w.Network != "" {
			return bad("scheme and network belong in accepted")
		}
		p.Accepted, p.Network = w.Accepted, w.Accepted.Network
		if w.Accepted.Scheme != "exact" {
			return bad("scheme %q: only exact is accepted", w.Accepted.Scheme)
		}
	case 1:
		if w.Accepted != nil {
			return bad("accepted in a version 1 payment")
		}
		if w.Scheme != "exact" {
			return bad("scheme %q: only exact is accepted", w.Scheme)
		}
		p.Network = caip2Of(w.Network)
		if p.Network == "" {
			return bad("unknown network %q", w.Network)
		}
	}
	if w.Payload == nil || w.Payload.Authorization == nil {
		return bad("no payload authorization")
	}
	a := w.Payload.Authorization
	if p.Authorization.From, err = evm.ParseAddress(a.From); err != nil {
		return bad("from: not an address")
	}
	if p.Authorization.To, err = evm.ParseAddress(a.To); err != nil {
		return bad("to: not an address")
	}
	for _, f := range []struct {
		name, s string
		dst     **big.Int
	}{
		{"value", a.Value, &p.Authorization.Value},
		{"validAfter", a.ValidAfter, &p.Authorization.ValidAfter},
		{"validBefore", a.ValidBefore, &p.Authorization.ValidBefore},
	} {
		if *f.dst = parseUint256(f.s); *f.dst == nil {
			return bad("%s: not a decimal integer below 2^256", f.name)
		}
	}
	nonce, ok := strings.CutPrefix(a.Nonce, "0x")
	if n, err := hex.DecodeString(nonce); !ok || err != nil || len(n) != 32 {
		return bad("nonce: not 0x and 64 hex digits")
	} else {
		copy(p.Authorization.Nonce[:], n)
	}
	if p.Signature, err = evm.ParseSignature(w.Payload.Signature); err != nil {
		return bad("signature: not 0x and 130 hex digits")
	}
	return p, nil
}

// parseUint256 parses a decimal integer in [0, 2^256) without sign or
// leading zeros; nil if s is not one.
func parseUint256(s string) *big.Int {
	if s == "" || len(s) > 78 || (len(s) > 1 && s[0] == '0') {
		return nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.BitLen() > 256 {
		return nil
	}
	return n
}

// caip2Of returns the CAIP-2 ID of a version 1 network name, or "".
func caip2Of(name string) string {
	for id, n := range v1Networks {
		if n == name {
			return id
		}
	}
	return ""
}

// Key identifies what the payer signed, for store.Payment.Authorization:
// the same authorization never buys twice.
func (p Payment) Key(asset string) string {
	return p.Network + ":" + strings.ToLower(asset) + ":" + p.Authorization.From.Hex() + ":0x" + hex.EncodeToString(p.Authorization.Nonce[:])
}
