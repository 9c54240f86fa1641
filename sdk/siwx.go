package sdk

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/mr-tron/base58"

	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/siwx"
	"github.com/tollgate/tollgate/internal/siwx/message"
	"github.com/tollgate/tollgate/internal/solana"
)

// SIWXMessage is a sign-in message: EIP-4361 (Sign-In with Ethereum) or
// its Solana counterpart. Set Domain, URI, ChainID (the chain reference:
// "8453" for Base, a genesis-hash prefix for Solana), Nonce, IssuedAt and
// ExpirationTime; the signing functions set Chain, Address and Version.
type SIWXMessage = message.Message

// EthereumSIWXToken signs m with key, as an Ethereum wallet's personal_sign
// would, and returns the token for "Authorization: SIWX <token>":
// base64(message) "." 0x-hex signature (r‖s‖v, v 27 or 28).
func EthereumSIWXToken(key *secp256k1.PrivateKey, m SIWXMessage) (string, error) {
	if key == nil {
		return "", errors.New("sdk: no key")
	}
	m.Chain, m.Version = message.ChainEthereum, "1"
	m.Address = evm.PublicKeyAddress(key.PubKey()).Hex()
	text := m.String()
	if _, err := message.Parse(text); err != nil {
		return "", fmt.Errorf("sdk: SIWX message: %w", err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text)) + "." + personalSign(key, text), nil
}

// personalSign signs text as an Ethereum wallet's personal_sign does: "0x"
// and the hex of r ‖ s ‖ v, v 27 or 28.
func personalSign(key *secp256k1.PrivateKey, text string) string {
	h := evm.PersonalMessageHash([]byte(text))
	compact := ecdsa.SignCompact(key, h[:], false) // [27+recid] ‖ r ‖ s
	sig := append(compact[1:65:65], compact[0])    // r ‖ s ‖ v
	return "0x" + hex.EncodeToString(sig)
}

// SolanaSIWXToken signs m with key, as a Solana wallet's signMessage would,
// and returns the token for "Authorization: SIWX <token>":
// base64(message) "." base58 Ed25519 signature.
func SolanaSIWXToken(key ed25519.PrivateKey, m SIWXMessage) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("sdk: not an Ed25519 private key")
	}
	var pub solana.PublicKey
	copy(pub[:], key.Public().(ed25519.PublicKey))
	m.Chain, m.Version, m.Address = message.ChainSolana, "1", pub.String()
	text := m.String()
	if _, err := message.Parse(text); err != nil {
		return "", fmt.Errorf("sdk: SIWX message: %w", err)
	}
	return base64.StdEncoding.EncodeToString([]byte(text)) + "." + base58.Encode(ed25519.Sign(key, []byte(text))), nil
}

// SIWXChallenge is the sign-in-with-x extension of an x402 402 answer: the
// message fields the server wants signed and the chains it accepts.
type SIWXChallenge struct {
	Info struct {
		Domain         string   `json:"domain"`
		URI            string   `json:"uri"`
		Version        string   `json:"version"`
		Nonce          string   `json:"nonce"`
		IssuedAt       string   `json:"issuedAt"`
		ExpirationTime string   `json:"expirationTime"`
		NotBefore      string   `json:"notBefore"`
		RequestID      string   `json:"requestId"`
		Statement      string   `json:"statement"`
		Resources      []string `json:"resources"`
	} `json:"info"`
	SupportedChains []struct {
		ChainID         string `json:"chainId"`
		Type            string `json:"type"`
		SignatureScheme string `json:"signatureScheme"`
	} `json:"supportedChains"`
}

// ParseSIWXChallenge reads the sign-in-with-x extension from the value of
// a 402 answer's PAYMENT-REQUIRED header.
func ParseSIWXChallenge(paymentRequired string) (*SIWXChallenge, error) {
	raw, err := base64.StdEncoding.DecodeString(paymentRequired)
	if err != nil {
		return nil, fmt.Errorf("sdk: PAYMENT-REQUIRED: %w", err)
	}
	var pr struct {
		Extensions struct {
			SignInWithX *SIWXChallenge `json:"sign-in-with-x"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		return nil, fmt.Errorf("sdk: PAYMENT-REQUIRED: %w", err)
	}
	if pr.Extensions.SignInWithX == nil {
		return nil, errors.New("sdk: the 402 answer does not offer sign-in-with-x")
	}
	return pr.Extensions.SignInWithX, nil
}

// proof returns the unsigned proof of c for chain and address, and the
// text to sign.
func (c *SIWXChallenge) proof(chain, wantType, address string) (siwx.Proof, string, error) {
	for _, sc := range c.SupportedChains {
		if sc.ChainID != chain {
			continue
		}
		if sc.Type != wantType {
			return siwx.Proof{}, "", fmt.Errorf("sdk: chain %s signs with %q, not %q", chain, sc.Type, wantType)
		}
		i := c.Info
		p := siwx.Proof{
			Domain: i.Domain, Address: address, Statement: i.Statement, URI: i.URI, Version: i.Version,
			ChainID: chain, Type: sc.Type, Nonce: i.Nonce, IssuedAt: i.IssuedAt, ExpirationTime: i.ExpirationTime,
			NotBefore: i.NotBefore, RequestID: i.RequestID, Resources: i.Resources, SignatureScheme: sc.SignatureScheme,
		}
		m, err := p.Message()
		if err != nil {
			return siwx.Proof{}, "", fmt.Errorf("sdk: sign-in-with-x challenge: %w", err)
		}
		return p, m.String(), nil
	}
	return siwx.Proof{}, "", fmt.Errorf("sdk: the server does not accept sign-in on %s", chain)
}

// EthereumProof signs c for chain (CAIP-2, e.g. "eip155:8453") with key, as
// an Ethereum wallet's personal_sign would, and returns the value of the
// SIGN-IN-WITH-X header. A proof is accepted once, within a few minutes of
// its challenge (5 on Tollgate): sign the challenge of a new 402 for each
// request, or use a SIWX token (EthereumSIWXToken) as a session.
func (c *SIWXChallenge) EthereumProof(key *secp256k1.PrivateKey, chain string) (string, error) {
	if key == nil {
		return "", errors.New("sdk: no key")
	}
	p, text, err := c.proof(chain, siwx.TypeEIP191, evm.PublicKeyAddress(key.PubKey()).Hex())
	if err != nil {
		return "", err
	}
	p.Signature = personalSign(key, text)
	return p.Encode(), nil
}

// SolanaProof signs c for chain (e.g.
// "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp") with key, as a Solana wallet's
// signMessage would, and returns the value of the SIGN-IN-WITH-X header.
func (c *SIWXChallenge) SolanaProof(key ed25519.PrivateKey, chain string) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("sdk: not an Ed25519 private key")
	}
	var pub solana.PublicKey
	copy(pub[:], key.Public().(ed25519.PublicKey))
	p, text, err := c.proof(chain, siwx.TypeEd25519, pub.String())
	if err != nil {
		return "", err
	}
	p.Signature = base58.Encode(ed25519.Sign(key, []byte(text)))
	return p.Encode(), nil
}
