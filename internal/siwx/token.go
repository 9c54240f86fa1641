package siwx

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/siwx/message"
	"github.com/tollgate/tollgate/internal/solana"
)

// Scheme is the HTTP authentication scheme of a SIWX token:
// "Authorization: SIWX <token>".
const Scheme = "SIWX"

// MaxTokenLength is the longest token, in bytes, that [ParseToken] and
// [Verifier.Verify] accept (16 KiB): the base64 of a message of
// [message.MaxLength] bytes, a dot and the longest signature fit.
const MaxTokenLength = 16 << 10

// Token is a parsed SIWX token.
type Token struct {
	// Text is the signed message exactly as decoded: the bytes that
	// Signature signs.
	Text string
	// Message is Text parsed.
	Message *message.Message
	// Signature is the decoded signature: 65 bytes r‖s‖v for an Ethereum
	// message, 64 bytes of Ed25519 for a Solana one.
	Signature []byte
}

// ParseToken parses a SIWX token, the text that follows "SIWX " in the
// Authorization header:
//
//	token     = message-b64 "." signature
//
// message-b64 is the message (an EIP-4361 or SIWS message, see package
// message) in base64: either standard base64 with its "=" padding (RFC 4648
// section 4, as btoa and Buffer write it) or base64url without padding (RFC
// 4648 section 5, as JWTs write it). One alphabet throughout, padding
// exactly as that form requires, and the unused bits of the last character
// zero; no whitespace or line breaks.
//
// signature depends on the message's header line:
//   - Ethereum: "0x" and 130 hex digits (either case), the 65-byte r‖s‖v
//     signature that personal_sign, ethers' signMessage and viem's
//     signMessage return;
//   - Solana: the base58 of the 64-byte Ed25519 signature, as x402's
//     sign-in-with-x extension and CACAO write it; see package solana.
//
// ParseToken checks the token's form only: nothing about the message's
// fields, times or signer. Every error wraps [ErrMalformed].
func ParseToken(s string) (Token, error) {
	if len(s) > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: token is %d bytes, more than the limit of %d", ErrMalformed, len(s), MaxTokenLength)
	}
	b64, sig, ok := strings.Cut(s, ".")
	if !ok {
		return Token{}, fmt.Errorf(`%w: expected base64(message) "." signature`, ErrMalformed)
	}
	text, err := decodeBase64(b64)
	if err != nil {
		return Token{}, fmt.Errorf("%w: message: %w", ErrMalformed, err)
	}
	m, err := message.Parse(text)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	t := Token{Text: text, Message: m}
	switch m.Chain {
	case message.ChainEthereum:
		if !strings.HasPrefix(sig, "0x") {
			return Token{}, fmt.Errorf(`%w: an Ethereum signature must be "0x" and %d hex digits`, ErrMalformed, 2*evm.SignatureLen)
		}
		t.Signature, err = evm.ParseSignature(sig)
	case message.ChainSolana:
		t.Signature, err = solana.ParseSignature(sig)
	default:
		err = fmt.Errorf("unknown chain %q", m.Chain)
	}
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return t, nil
}

// decodeBase64 decodes padded standard base64 or unpadded base64url,
// strictly, as ParseToken describes.
func decodeBase64(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	// The decoders skip "\r" and "\n"; allow only the two alphabets.
	for i := 0; i < len(s); i++ {
		if !isBase64(s[i]) {
			return "", fmt.Errorf("byte 0x%02x at %d is not base64", s[i], i)
		}
	}
	// A text of letters and digits alone, a multiple of 4 long, is both
	// forms at once, and decodes the same either way.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		var err2 error
		if b, err2 = base64.RawURLEncoding.Strict().DecodeString(s); err2 != nil {
			return "", errors.New("neither padded standard base64 nor unpadded base64url")
		}
	}
	return string(b), nil
}

// isBase64 reports whether c is in the standard or the URL-safe base64
// alphabet, or is the padding "=".
func isBase64(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '+' || c == '/' || c == '=' || c == '-' || c == '_'
}
