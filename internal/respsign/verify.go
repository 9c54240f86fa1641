package respsign

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Sizes of a signature: a DER SEQUENCE of two INTEGERs of at most 33 bytes
// each, and its base64.
const (
	maxSignatureDER = 72
	maxSignatureB64 = (maxSignatureDER + 2) / 3 * 4
)

var (
	// ErrInvalidKey is wrapped by the errors of ParsePublicKeyPEM,
	// ParsePublicKeyDER and ParseJWK for input that is not a secp256k1
	// public key in the expected encoding.
	ErrInvalidKey = errors.New("respsign: invalid public key")
	// ErrInvalidSignature is wrapped by the errors of Verify: the signature
	// is malformed or does not match the body and key.
	ErrInvalidSignature = errors.New("respsign: invalid signature")
)

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// ParsePublicKeyPEM parses a single PEM block of type "PUBLIC KEY" holding a
// secp256k1 SubjectPublicKeyInfo, as MarshalPublicKeyPEM writes and the
// Document publishes. Only white space may surround the block; the block
// must have no headers. See ParsePublicKeyDER for what the block may hold.
func ParsePublicKeyPEM(data []byte) (*secp256k1.PublicKey, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("%w: not a PEM block", ErrInvalidKey)
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%w: not a PEM block", ErrInvalidKey)
	case block.Type != PEMBlockType:
		return nil, fmt.Errorf("%w: PEM block of type %q, want %q", ErrInvalidKey, block.Type, PEMBlockType)
	case len(block.Headers) != 0:
		return nil, fmt.Errorf("%w: PEM block has headers", ErrInvalidKey)
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, fmt.Errorf("%w: data after the PEM block", ErrInvalidKey)
	}
	return ParsePublicKeyDER(block.Bytes)
}

// ParsePublicKeyDER parses the DER of a SubjectPublicKeyInfo (RFC 5480)
// whose algorithm is id-ecPublicKey (1.2.840.10045.2.1) with the parameters
// namedCurve secp256k1 (1.3.132.0.10). Any other algorithm, curve or form of
// parameters, a non-DER encoding and trailing data are rejected.
//
// The point may be uncompressed (0x04 ‖ x ‖ y), as Tollgate publishes it, or
// compressed (0x02 or 0x03 ‖ x), which RFC 5480 allows and OpenSSL can
// write; either way it must lie on the curve. The hybrid form (0x06, 0x07)
// is rejected.
func ParsePublicKeyDER(der []byte) (*secp256k1.PublicKey, error) {
	input := cryptobyte.String(der)
	var spki, algo cryptobyte.String
	if !input.ReadASN1(&spki, cbasn1.SEQUENCE) || !input.Empty() {
		return nil, fmt.Errorf("%w: not a DER SubjectPublicKeyInfo", ErrInvalidKey)
	}
	if !spki.ReadASN1(&algo, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: malformed algorithm identifier", ErrInvalidKey)
	}
	var alg, curve asn1.ObjectIdentifier
	if !algo.ReadASN1ObjectIdentifier(&alg) || !alg.Equal(oidECPublicKey) {
		return nil, fmt.Errorf("%w: not an elliptic curve key", ErrInvalidKey)
	}
	if !algo.ReadASN1ObjectIdentifier(&curve) || !algo.Empty() || !curve.Equal(oidSecp256k1) {
		return nil, fmt.Errorf("%w: not a key on the named curve secp256k1", ErrInvalidKey)
	}
	var point asn1.BitString
	if !spki.ReadASN1BitString(&point) || !spki.Empty() || point.BitLength != 8*len(point.Bytes) {
		return nil, fmt.Errorf("%w: malformed public key bits", ErrInvalidKey)
	}
	return parsePoint(point.Bytes)
}

// parsePoint parses an uncompressed or compressed SEC 1 point.
func parsePoint(p []byte) (*secp256k1.PublicKey, error) {
	switch {
	case len(p) == secp256k1.PubKeyBytesLenUncompressed && p[0] == secp256k1.PubKeyFormatUncompressed:
	case len(p) == secp256k1.PubKeyBytesLenCompressed &&
		(p[0] == secp256k1.PubKeyFormatCompressedEven || p[0] == secp256k1.PubKeyFormatCompressedOdd):
	default:
		return nil, fmt.Errorf("%w: not an uncompressed or compressed point", ErrInvalidKey)
	}
	pub, err := secp256k1.ParsePubKey(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return pub, nil
}

// ParseJWK parses a public JSON Web Key: "kty" EC, "crv" secp256k1, "x" and
// "y" of 32 bytes each in base64url without padding, forming a point on the
// curve. "alg", if present, must be ES256K and "use", if present, sig; other
// members are ignored, except that a key with the private member "d" is
// rejected.
func ParseJWK(data []byte) (*secp256k1.PublicKey, error) {
	var j struct {
		JWK
		D *json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if j.D != nil {
		return nil, fmt.Errorf("%w: JWK holds a private key", ErrInvalidKey)
	}
	return j.PublicKey()
}

// PublicKey returns the key j describes, checked as ParseJWK does.
func (j JWK) PublicKey() (*secp256k1.PublicKey, error) {
	switch {
	case j.Kty != "EC":
		return nil, fmt.Errorf("%w: JWK kty %q, want \"EC\"", ErrInvalidKey, j.Kty)
	case j.Crv != "secp256k1":
		return nil, fmt.Errorf("%w: JWK crv %q, want \"secp256k1\"", ErrInvalidKey, j.Crv)
	case j.Alg != "" && j.Alg != Algorithm:
		return nil, fmt.Errorf("%w: JWK alg %q, want %q", ErrInvalidKey, j.Alg, Algorithm)
	case j.Use != "" && j.Use != "sig":
		return nil, fmt.Errorf("%w: JWK use %q, want \"sig\"", ErrInvalidKey, j.Use)
	}
	var p [secp256k1.PubKeyBytesLenUncompressed]byte
	p[0] = secp256k1.PubKeyFormatUncompressed
	if !decodeCoordinate(p[1:33], j.X) || !decodeCoordinate(p[33:65], j.Y) {
		return nil, fmt.Errorf("%w: JWK x and y must be 32 bytes in base64url without padding", ErrInvalidKey)
	}
	return parsePoint(p[:])
}

// decodeCoordinate decodes s, strict unpadded base64url of exactly
// len(dst) == 32 bytes, into dst.
func decodeCoordinate(dst []byte, s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(len(dst)) || strings.ContainsAny(s, "\r\n") {
		return false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// PublicKey returns the published key with the given ID, as sent in
// X-Signature-Key-Id, parsed from its PEM. It wraps ErrInvalidKey if d has
// no such key or its PEM does not parse.
func (d *Document) PublicKey(kid string) (*secp256k1.PublicKey, error) {
	for _, k := range d.Keys {
		if k.KID == kid {
			return ParsePublicKeyPEM([]byte(k.PEM))
		}
	}
	return nil, fmt.Errorf("%w: no published key %q", ErrInvalidKey, kid)
}

// Verify checks that signatureB64, the value of an X-Signature header, is a
// signature of body by pub: standard base64 with padding (RFC 4648 section
// 4, no white space) of a DER ECDSA signature of SHA-256(body). It returns
// nil or an error wrapping ErrInvalidSignature.
//
// Like OpenSSL, Verify accepts a valid signature whose s is above half the
// group order, although Sign never makes one.
func Verify(pub *secp256k1.PublicKey, body []byte, signatureB64 string) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrInvalidSignature)
	}
	if len(signatureB64) > maxSignatureB64 || strings.ContainsAny(signatureB64, "\r\n") {
		return fmt.Errorf("%w: not the base64 of a DER signature", ErrInvalidSignature)
	}
	var der [maxSignatureDER]byte
	n, err := base64.StdEncoding.Strict().Decode(der[:], []byte(signatureB64))
	if err != nil {
		return fmt.Errorf("%w: not standard base64: %w", ErrInvalidSignature, err)
	}
	sig, err := ecdsa.ParseDERSignature(der[:n])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	sum := sha256.Sum256(body)
	if !sig.Verify(sum[:], pub) {
		return fmt.Errorf("%w: signature does not match the body and key", ErrInvalidSignature)
	}
	return nil
}
