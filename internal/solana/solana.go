// Package solana implements the Solana primitives wallet sign-in needs:
// base58 account addresses (32-byte Ed25519 public keys) and verification of
// Ed25519 signatures over sign-in messages. It holds no keys and signs
// nothing outside tests.
//
// Encodings. Addresses and signatures are written in base58 with the Bitcoin
// alphabet, as Solana itself, its wallets and the tweetnacl-based SDKs write
// them; x402's sign-in-with-x extension (signSolanaMessage) and CACAO's SIWS
// verifier encode a message signature in base58 too. No published SIWX
// convention carries Solana signatures in hex or base64, so [ParseSignature]
// accepts base58 alone. Both parsers are strict: the text must be the
// canonical base58 of exactly 32 (address) or 64 (signature) bytes, so that
// one value has one spelling.
//
// Messages. A signature is verified over the message's bytes exactly as
// given, as a wallet's signMessage signs them (Phantom, Solflare, the Wallet
// Standard's solana:signMessage and solana:signIn); the Solana off-chain
// message envelope ("\xffsolana offchain" …) is not used.
package solana

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/mr-tron/base58"
)

// Errors. Every error of this package wraps one of them.
var (
	// ErrMalformed: an address or signature that is not well formed.
	ErrMalformed = errors.New("solana: malformed")
	// ErrSignatureMismatch: a well-formed signature that is not the key's
	// signature of the message.
	ErrSignatureMismatch = errors.New("solana: signature does not match the address")
)

// Sizes, in bytes, and the lengths of their base58 texts, in characters.
const (
	// PublicKeySize is the size of an address: an Ed25519 public key.
	PublicKeySize = ed25519.PublicKeySize
	// SignatureSize is the size of an Ed25519 signature.
	SignatureSize = ed25519.SignatureSize

	// MinAddressLen and MaxAddressLen bound the base58 text of a 32-byte
	// address: 32 "1"s for the all-zero key, at most 44 characters.
	MinAddressLen = 32
	MaxAddressLen = 44
	// MinSignatureLen and MaxSignatureLen bound the base58 text of a
	// 64-byte signature.
	MinSignatureLen = 64
	MaxSignatureLen = 88
)

// PublicKey is a Solana account address: a 32-byte Ed25519 public key (or,
// for a program-derived address, 32 bytes that are no point of the curve and
// so can sign nothing). The zero value is the System Program's address,
// 11111111111111111111111111111111.
type PublicKey [PublicKeySize]byte

// ParseAddress parses the base58 text of an address. The text must be 32 to
// 44 characters of the base58 alphabet that decode to exactly 32 bytes, and
// be their canonical encoding. It does not check that the key is a point of
// the curve: program-derived addresses, which are not, are addresses too.
func ParseAddress(s string) (PublicKey, error) {
	var pub PublicKey
	if len(s) < MinAddressLen || len(s) > MaxAddressLen {
		return pub, fmt.Errorf("%w: address must be %d to %d base58 characters", ErrMalformed, MinAddressLen, MaxAddressLen)
	}
	b, err := decodeCanonical(s, PublicKeySize)
	if err != nil {
		return pub, fmt.Errorf("%w: address: %w", ErrMalformed, err)
	}
	copy(pub[:], b)
	return pub, nil
}

// String returns the address in base58.
func (pub PublicKey) String() string { return base58.Encode(pub[:]) }

// ParseSignature parses the base58 text of a 64-byte Ed25519 signature: 64 to
// 88 characters of the base58 alphabet, the canonical encoding of exactly 64
// bytes.
func ParseSignature(s string) ([]byte, error) {
	if len(s) < MinSignatureLen || len(s) > MaxSignatureLen {
		return nil, fmt.Errorf("%w: signature must be %d to %d base58 characters", ErrMalformed, MinSignatureLen, MaxSignatureLen)
	}
	b, err := decodeCanonical(s, SignatureSize)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return b, nil
}

// decodeCanonical decodes base58 text that must encode exactly size bytes
// and be their only (canonical) spelling.
func decodeCanonical(s string, size int) ([]byte, error) {
	b, err := base58.Decode(s)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(b), size)
	}
	// Base58 is a bijection in principle; checking the round trip keeps it
	// so whatever the decoder tolerates.
	if base58.Encode(b) != s {
		return nil, errors.New("not in canonical base58")
	}
	return b, nil
}

// Verify checks that sig, a 64-byte Ed25519 signature, is pub's signature of
// msg (RFC 8032 Ed25519, as crypto/ed25519 verifies it: S must be reduced,
// no cofactor). It returns an error wrapping [ErrMalformed] when sig is not
// 64 bytes, and [ErrSignatureMismatch] when it is not pub's signature of msg,
// including when pub is not a point of the curve.
func Verify(pub PublicKey, msg, sig []byte) error {
	if len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(sig), SignatureSize)
	}
	if !ed25519.Verify(pub[:], msg, sig) {
		return ErrSignatureMismatch
	}
	return nil
}
