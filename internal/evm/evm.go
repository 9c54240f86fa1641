// Package evm implements the Ethereum primitives wallet sign-in needs:
// Keccak-256, EIP-55 checksummed addresses, EIP-191 personal-message hashes,
// and recovery of a signer's address from a 65-byte r‖s‖v secp256k1
// signature. It holds no keys and signs nothing outside tests.
package evm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/sha3"
)

// Errors. Every error of this package wraps one of them.
var (
	// ErrMalformed: an address or signature that is not well formed.
	ErrMalformed = errors.New("evm: malformed")
	// ErrChecksum: a mixed-case address whose case is not its EIP-55
	// checksum.
	ErrChecksum = errors.New("evm: bad EIP-55 checksum")
	// ErrSignatureMismatch: a well-formed signature by another key.
	ErrSignatureMismatch = errors.New("evm: signature does not match the address")
)

// Keccak256 returns the Keccak-256 hash (the original Keccak padding, as
// Ethereum uses; not NIST SHA3-256) of the concatenated parts.
func Keccak256(parts ...[]byte) [32]byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Address is a 20-byte Ethereum account address. The zero value is the zero
// address.
type Address [20]byte

// ParseAddress parses "0x" followed by 40 hex digits. All-lower-case and
// all-upper-case digits are accepted as they are; mixed case must be the
// address's EIP-55 checksum.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) != 42 || s[0] != '0' || s[1] != 'x' {
		return a, fmt.Errorf("%w: address must be 0x and 40 hex digits", ErrMalformed)
	}
	if _, err := hex.Decode(a[:], []byte(s[2:])); err != nil {
		return a, fmt.Errorf("%w: address: %w", ErrMalformed, err)
	}
	lower, upper := false, false
	for _, c := range s[2:] {
		lower = lower || ('a' <= c && c <= 'f')
		upper = upper || ('A' <= c && c <= 'F')
	}
	if lower && upper && a.Hex() != s {
		return a, ErrChecksum
	}
	return a, nil
}

// ParseChecksummed parses an address that must be written in its EIP-55
// form, as EIP-4361 requires of a sign-in message; an address with no
// letters among its digits is its own checksum.
func ParseChecksummed(s string) (Address, error) {
	a, err := ParseAddress(s)
	if err != nil {
		return a, err
	}
	if a.Hex() != s {
		return a, ErrChecksum
	}
	return a, nil
}

// Hex returns the EIP-55 checksummed form: a hex digit that is a letter is
// upper case when the matching nibble of the Keccak-256 of the lower-case
// hex is 8 or more.
func (a Address) Hex() string {
	var buf [42]byte
	buf[0], buf[1] = '0', 'x'
	hex.Encode(buf[2:], a[:])
	hash := Keccak256(buf[2:])
	for i := 2; i < len(buf); i++ {
		c := buf[i]
		if c < 'a' {
			continue
		}
		nibble := hash[(i-2)/2]
		if (i-2)%2 == 0 {
			nibble >>= 4
		}
		if nibble&0xf >= 8 {
			buf[i] = c - 'a' + 'A'
		}
	}
	return string(buf[:])
}

// String is Hex.
func (a Address) String() string { return a.Hex() }

// PersonalMessageHash is the EIP-191 version 0x45 hash that personal_sign
// signs: Keccak-256 of "\x19Ethereum Signed Message:\n", the message's length
// in decimal, and the message.
func PersonalMessageHash(msg []byte) [32]byte {
	return Keccak256([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), msg)
}

// SignatureLen is the length of an r‖s‖v signature.
const SignatureLen = 65

// RecoverAddress returns the address whose key made sig, a 65-byte r‖s‖v
// signature (v 27 or 28, or 0 or 1), over hash. It refuses a high s.
func RecoverAddress(hash [32]byte, sig []byte) (Address, error) {
	if len(sig) != SignatureLen {
		return Address{}, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(sig), SignatureLen)
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	if v > 1 {
		return Address{}, fmt.Errorf("%w: signature v must be 27, 28, 0 or 1", ErrMalformed)
	}
	var s secp256k1.ModNScalar
	// A high s is the malleated twin of the signature with N-s, which
	// Ethereum's signers never produce (EIP-2).
	if overflow := s.SetByteSlice(sig[32:64]); overflow || s.IsZero() || s.IsOverHalfOrder() {
		return Address{}, fmt.Errorf("%w: signature s out of range (EIP-2)", ErrMalformed)
	}
	// decred's compact form: [27 + recovery id] ‖ r ‖ s, for an
	// uncompressed key.
	var compact [SignatureLen]byte
	compact[0] = 27 + v
	copy(compact[1:], sig[:64])
	pub, _, err := ecdsa.RecoverCompact(compact[:], hash[:])
	if err != nil {
		return Address{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return PublicKeyAddress(pub), nil
}

// PublicKeyAddress is the address of a public key: the last 20 bytes of the
// Keccak-256 of its uncompressed X‖Y coordinates.
func PublicKeyAddress(pub *secp256k1.PublicKey) Address {
	unc := pub.SerializeUncompressed() // 0x04 ‖ X ‖ Y
	h := Keccak256(unc[1:])
	var a Address
	copy(a[:], h[12:])
	return a
}

// VerifyPersonalSign checks that sig is want's personal_sign signature of
// msg (EIP-191).
func VerifyPersonalSign(msg, sig []byte, want Address) error {
	got, err := RecoverAddress(PersonalMessageHash(msg), sig)
	if err != nil {
		return err
	}
	if got != want {
		return ErrSignatureMismatch
	}
	return nil
}

// ParseSignature decodes a hex signature, "0x" optional, of 65 bytes.
func ParseSignature(s string) ([]byte, error) {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) != 2*SignatureLen {
		return nil, fmt.Errorf("%w: signature must be %d hex digits", ErrMalformed, 2*SignatureLen)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return b, nil
}
