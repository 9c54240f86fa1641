package sdk

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/mr-tron/base58"

	"github.com/tollgate/tollgate/internal/evm"
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
	h := evm.PersonalMessageHash([]byte(text))
	compact := ecdsa.SignCompact(key, h[:], false) // [27+recid] ‖ r ‖ s
	sig := append(compact[1:65:65], compact[0])    // r ‖ s ‖ v
	return base64.StdEncoding.EncodeToString([]byte(text)) + ".0x" + hex.EncodeToString(sig), nil
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
