package siwx

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/siwx/message"
	"github.com/tollgate/tollgate/internal/solana"
)

// Header is the HTTP header of x402's sign-in-with-x extension: the
// base64 of a JSON [Proof]. x402-native agents send it instead of an
// "Authorization: SIWX" token.
const Header = "SIGN-IN-WITH-X"

// Signature types and schemes of a [Proof], per chain family.
const (
	TypeEIP191  = "eip191"  // EVM: EIP-191 personal_sign of the EIP-4361 message
	TypeEd25519 = "ed25519" // Solana: Ed25519 signature of the SIWS message
	SchemeSIWS  = "siws"
)

// Proof is the JSON payload of a SIGN-IN-WITH-X header (x402 extension
// "sign-in-with-x", CAIP-122): the fields of an EIP-4361 or SIWS message,
// the signature type and the signature. The server advertises the fields it
// wants signed in its 402 answer; the client echoes them and adds its
// address and signature.
type Proof struct {
	Domain          string   `json:"domain"`
	Address         string   `json:"address"`
	Statement       string   `json:"statement,omitempty"`
	URI             string   `json:"uri"`
	Version         string   `json:"version"`
	ChainID         string   `json:"chainId"` // CAIP-2, e.g. "eip155:8453"
	Type            string   `json:"type"`    // TypeEIP191 or TypeEd25519
	Nonce           string   `json:"nonce"`
	IssuedAt        string   `json:"issuedAt"`
	ExpirationTime  string   `json:"expirationTime,omitempty"`
	NotBefore       string   `json:"notBefore,omitempty"`
	RequestID       string   `json:"requestId,omitempty"`
	Resources       []string `json:"resources,omitempty"`
	SignatureScheme string   `json:"signatureScheme,omitempty"`
	// Signature is "0x" and 130 hex digits (EVM), or base58 (Solana).
	Signature string `json:"signature"`
}

// Message returns the message p's fields describe: the text a wallet signs
// for them. Times are written exactly as p gives them. It checks the
// message's syntax (see package message) and that the type fits the chain,
// not the signature.
func (p Proof) Message() (*message.Message, error) {
	for _, f := range []struct{ name, v string }{
		{"domain", p.Domain}, {"address", p.Address}, {"uri", p.URI}, {"version", p.Version},
		{"chainId", p.ChainID}, {"type", p.Type}, {"nonce", p.Nonce}, {"issuedAt", p.IssuedAt},
	} {
		if f.v == "" {
			return nil, fmt.Errorf("%w: %s is required", ErrMalformed, f.name)
		}
	}
	ns, ref, _ := strings.Cut(p.ChainID, ":")
	m := &message.Message{
		Domain: p.Domain, Address: p.Address, Statement: p.Statement, URI: p.URI, Version: p.Version,
		ChainID: ref, Nonce: p.Nonce, RequestID: p.RequestID, HasRequestID: p.RequestID != "",
	}
	if len(p.Resources) > 0 {
		m.Resources = p.Resources
	}
	switch ns {
	case "eip155":
		m.Chain = message.ChainEthereum
		if p.Type != TypeEIP191 {
			return nil, fmt.Errorf("%w: type %q on %s, want %q", ErrMalformed, p.Type, p.ChainID, TypeEIP191)
		}
		switch p.SignatureScheme {
		case "", TypeEIP191:
		case "eip1271", "eip6492":
			return nil, fmt.Errorf("%w: signature scheme %q (smart-contract wallets) is not accepted: sign with the wallet's own key (eip191)", ErrMalformed, p.SignatureScheme)
		default:
			return nil, fmt.Errorf("%w: unknown signature scheme %q", ErrMalformed, p.SignatureScheme)
		}
	case "solana":
		m.Chain = message.ChainSolana
		if p.Type != TypeEd25519 {
			return nil, fmt.Errorf("%w: type %q on %s, want %q", ErrMalformed, p.Type, p.ChainID, TypeEd25519)
		}
		if p.SignatureScheme != "" && p.SignatureScheme != SchemeSIWS {
			return nil, fmt.Errorf("%w: unknown signature scheme %q", ErrMalformed, p.SignatureScheme)
		}
	default:
		return nil, fmt.Errorf("%w: chainId %q: want eip155:<id> or solana:<reference>", ErrMalformed, p.ChainID)
	}
	if err := m.SetTimes(p.IssuedAt, p.ExpirationTime, p.NotBefore); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// Parse the text back: the full grammar checks every field, and the
	// result is what the signature must cover.
	parsed, err := message.Parse(m.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if parsed.CAIP2() != p.ChainID {
		return nil, fmt.Errorf("%w: chainId %q is not a CAIP-2 chain ID", ErrMalformed, p.ChainID)
	}
	return parsed, nil
}

// Encode returns p as a SIGN-IN-WITH-X header value: standard base64 of
// its JSON.
func (p Proof) Encode() string {
	b, _ := json.Marshal(p) // strings and a slice of strings: cannot fail
	return base64.StdEncoding.EncodeToString(b)
}

// ParseHeader parses a SIGN-IN-WITH-X header value: base64 (padded
// standard, or unpadded base64url) of one JSON object with exactly the
// members of [Proof] (unknown members are refused), whose message is well
// formed and whose signature has the chain's form. It checks nothing about
// the message's binding, times or signer. Every error wraps [ErrMalformed].
func ParseHeader(h string) (Token, error) {
	if len(h) > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: header is %d bytes, more than the limit of %d", ErrMalformed, len(h), MaxTokenLength)
	}
	raw, err := decodeBase64(h)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %s: %w", ErrMalformed, Header, err)
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var p Proof
	if err := dec.Decode(&p); err != nil {
		return Token{}, fmt.Errorf("%w: %s JSON: %w", ErrMalformed, Header, err)
	}
	if rest := raw[dec.InputOffset():]; strings.TrimLeft(rest, " \t\r\n") != "" {
		return Token{}, fmt.Errorf("%w: %s: data after the JSON object", ErrMalformed, Header)
	}
	m, err := p.Message()
	if err != nil {
		return Token{}, err
	}
	t := Token{Text: m.String(), Message: m}
	switch m.Chain {
	case message.ChainEthereum:
		if !strings.HasPrefix(p.Signature, "0x") {
			return Token{}, fmt.Errorf(`%w: an Ethereum signature must be "0x" and %d hex digits`, ErrMalformed, 2*evm.SignatureLen)
		}
		t.Signature, err = evm.ParseSignature(p.Signature)
	default:
		t.Signature, err = solana.ParseSignature(p.Signature)
	}
	if err != nil {
		return Token{}, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return t, nil
}

// headerCachePrefix keeps cached headers apart from cached tokens.
const headerCachePrefix = Header + ":"

// Verified is what a verified SIGN-IN-WITH-X proof establishes.
type Verified struct {
	// Wallet is the account the proof signs in as.
	Wallet Wallet
	// Expires is when the proof stops being accepted: HeaderMaxAge after
	// its issuedAt, or its expirationTime, or its nonce's end, whichever
	// comes first.
	Expires time.Time
	// Nonce is the proof's nonce, as signed.
	Nonce string
	// NonceExpires is when the nonce stops being accepted (Nonces.Check);
	// zero when the Verifier checks no nonces. A replay cache remembers
	// the nonce until then.
	NonceExpires time.Time
}

// VerifyHeader verifies a SIGN-IN-WITH-X header value as VerifyProof does,
// and returns the wallet it signs in as and when the proof expires.
func (v *Verifier) VerifyHeader(h string) (Wallet, time.Time, error) {
	r, err := v.VerifyProof(h)
	return r.Wallet, r.Expires, err
}

// VerifyProof verifies a SIGN-IN-WITH-X header value (see [ParseHeader])
// at the Verifier's clock's time. A proof is valid as a token is (see
// [Verifier.Verify]: domain, URI, chain, version, EIP-55 address and
// signature), except for its times, which follow x402's extension: its
// expirationTime is optional, and it expires HeaderMaxAge after its
// issuedAt at the latest. With Config.Nonces, its nonce must be one they
// issued and still accept (a nonce made up by the client wraps
// ErrMalformed, an old one ErrExpired); the check comes before the
// signature's. That a nonce is used once is the caller's business (package
// replay): a Verifier is stateless but for its cache. Verified proofs are
// cached like tokens. Every error wraps [ErrMalformed], [ErrSignature] or
// [ErrExpired].
func (v *Verifier) VerifyProof(h string) (Verified, error) {
	if len(h) > MaxTokenLength {
		return Verified{}, fmt.Errorf("%w: header is %d bytes, more than the limit of %d", ErrMalformed, len(h), MaxTokenLength)
	}
	now := v.clock.Now()
	key := keyOf(headerCachePrefix + h)
	if e, found, expired := v.cache.get(key, now); expired {
		return Verified{}, expiredError(e.expires)
	} else if found {
		return Verified{Wallet: e.wallet, Expires: e.expires, Nonce: e.nonce, NonceExpires: e.nonceExpires}, nil
	}
	t, err := ParseHeader(h)
	if err != nil {
		return Verified{}, err
	}
	m := t.Message
	if err := v.checkBinding(m); err != nil {
		return Verified{}, err
	}
	expires := m.IssuedAt.Add(v.headerAge)
	if !m.ExpirationTime.IsZero() {
		if !m.ExpirationTime.After(m.IssuedAt) {
			return Verified{}, fmt.Errorf("%w: expirationTime is not after issuedAt", ErrMalformed)
		}
		if m.ExpirationTime.Before(expires) {
			expires = m.ExpirationTime
		}
	}
	if err := v.checkTimes(m, expires, now); err != nil {
		return Verified{}, err
	}
	var nonceExpires time.Time
	if v.nonces != nil {
		if nonceExpires, err = v.nonces.Check(m.Nonce, now); err != nil {
			return Verified{}, err
		}
		if nonceExpires.Before(expires) {
			expires = nonceExpires
		}
	}
	w, err := verifySignature(t)
	if err != nil {
		return Verified{}, err
	}
	v.cache.add(key, cached{wallet: w, expires: expires, nonce: m.Nonce, nonceExpires: nonceExpires})
	return Verified{Wallet: w, Expires: expires, Nonce: m.Nonce, NonceExpires: nonceExpires}, nil
}
