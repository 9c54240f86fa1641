package reqsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Header fields of the seed scheme, in the canonical form http.Header uses
// (the seed spells the first one X-API-KEY; field names are case-insensitive).
const (
	HeaderAPIKey    = "X-Api-Key" //nolint:gosec // G101: a header name, not a credential
	HeaderTimestamp = "X-Timestamp"
	HeaderNonce     = "X-Nonce"
	HeaderSignature = "X-Signature"
)

// Syntax limits of the seed headers.
const (
	maxAPIKeyLen    = 256
	maxTimestampLen = 10 // Unix seconds up to 9999999999, in 2286
	minNonceLen     = 8
	maxNonceLen     = 128
	seedSigLen      = 2 * 32 // hex HMAC-SHA256
)

// SeedHeaders are the header values of a seed-scheme signature, as sent.
type SeedHeaders struct {
	// APIKey is X-API-KEY: 1 to 256 visible ASCII characters, opaque here.
	// It selects the secret and is not part of the signed message.
	APIKey string
	// Timestamp is X-Timestamp: Unix seconds in decimal, without sign or
	// leading zeros ("0" aside), at most 10 digits.
	Timestamp string
	// Nonce is X-Nonce, "" when absent: 8 to 128 characters of
	// [A-Za-z0-9._~-].
	Nonce string
	// Signature is X-Signature: the HMAC-SHA256 of SeedMessage in 64
	// lowercase hex digits.
	Signature string
}

// ParseSeedHeaders returns the seed-scheme headers of h and checks their
// syntax. X-API-KEY, X-Timestamp and X-Signature must each appear exactly
// once, X-Nonce at most once. If X-Signature is absent the error wraps
// ErrNoSignature; any other problem gives ErrMalformed.
func ParseSeedHeaders(h http.Header) (SeedHeaders, error) {
	sig := h.Values(HeaderSignature)
	if len(sig) == 0 {
		return SeedHeaders{}, fmt.Errorf("%w: no %s header", ErrNoSignature, HeaderSignature)
	}
	var s SeedHeaders
	for _, f := range []struct {
		name     string
		dst      *string
		optional bool
	}{
		{HeaderAPIKey, &s.APIKey, false},
		{HeaderTimestamp, &s.Timestamp, false},
		{HeaderNonce, &s.Nonce, true},
		{HeaderSignature, &s.Signature, false},
	} {
		v := h.Values(f.name)
		switch {
		case len(v) == 1:
			*f.dst = v[0]
		case len(v) > 1:
			return SeedHeaders{}, fmt.Errorf("%w: %d %s headers", ErrMalformed, len(v), f.name)
		case !f.optional:
			return SeedHeaders{}, fmt.Errorf("%w: no %s header", ErrMalformed, f.name)
		}
	}
	if s.Nonce == "" && len(h.Values(HeaderNonce)) > 0 {
		return SeedHeaders{}, fmt.Errorf("%w: empty %s", ErrMalformed, HeaderNonce)
	}
	if err := s.check(); err != nil {
		return SeedHeaders{}, err
	}
	return s, nil
}

// check returns an ErrMalformed error if a field of s has the wrong syntax.
func (s *SeedHeaders) check() error {
	if !validAPIKey(s.APIKey) {
		return fmt.Errorf("%w: bad %s", ErrMalformed, HeaderAPIKey)
	}
	if _, ok := parseTimestamp(s.Timestamp); !ok {
		return fmt.Errorf("%w: %s is not Unix seconds", ErrMalformed, HeaderTimestamp)
	}
	if s.Nonce != "" && !validNonce(s.Nonce) {
		return fmt.Errorf("%w: bad %s", ErrMalformed, HeaderNonce)
	}
	if !validSeedSig(s.Signature) {
		return fmt.Errorf("%w: %s is not 64 lowercase hex digits", ErrMalformed, HeaderSignature)
	}
	return nil
}

// ReplayKey returns the key under which the caller records s as seen:
// "seed:" and the hex SHA-256 of the signature's 32 bytes. It is meaningful
// only after VerifySeed has accepted s.
//
// The key comes from the signature, not the nonce: the nonce is optional,
// and two requests with different nonces have different signatures anyway.
// A client that sends the same request twice in one second without a nonce
// produces the same signature twice, and the second is a replay.
func (s SeedHeaders) ReplayKey() string {
	b, err := hex.DecodeString(s.Signature)
	if err != nil {
		b = []byte(s.Signature)
	}
	return replayKey("seed:", b)
}

// SeedMessage returns the message the seed scheme signs: the concatenation,
// without delimiters, of method, target, body, timestamp and nonce.
//
// target is the request target exactly as it appears on the request line:
// the percent-encoded path, then '?' and the query if the request has one.
// A server passes r.RequestURI, a Go client r.URL.RequestURI(). timestamp is
// the X-Timestamp value as sent and nonce the X-Nonce value, "" when absent.
//
// The seed defines METHOD+PATH+BODY+TIMESTAMP and says signatures must never
// be reused; it does not say how the nonce is signed. Tollgate appends it, so
// that a nonce cannot be replaced without the secret, and a request without
// a nonce signs exactly the seed's message.
//
// Without delimiters, different requests can share a message. Bytes can move
// between target and body: POST /a with body "?x=1" and POST /a?x=1 with an
// empty body sign the same bytes. Bytes can move between nonce, timestamp
// and body when the nonce holds 10 consecutive digits that make an
// in-window timestamp, or, at rare instants whose digits repeat (such as
// 1717171717), when the timestamp itself does. Because ReplayKey comes from
// the signature, each message is accepted at most once, so such a variant
// can only replace the request it was made from, by an attacker able to
// intercept it. RFC 9421 signatures have no such ambiguity.
func SeedMessage(method, target string, body []byte, timestamp, nonce string) []byte {
	n := len(method) + len(target) + len(body) + len(timestamp) + len(nonce)
	msg := make([]byte, 0, n)
	msg = append(msg, method...)
	msg = append(msg, target...)
	msg = append(msg, body...)
	msg = append(msg, timestamp...)
	msg = append(msg, nonce...)
	return msg
}

// SeedSign returns the X-Signature value for msg: HMAC-SHA256(secret, msg)
// in lowercase hex.
func SeedSign(secret, msg []byte) string {
	return hex.EncodeToString(mac(secret, msg))
}

// VerifySeed checks a seed-scheme signature of the request with the given
// method, target (see SeedMessage) and body, under secret, at time now.
//
// It returns an error wrapping ErrMalformed if h does not have the syntax
// ParseSeedHeaders enforces, ErrOutOfWindow if the timestamp is more than
// window away from now in either direction, and ErrSignatureMismatch if the
// signature is wrong, in that order of checks. The signature comparison takes
// time independent of the signature. An empty secret is an error.
//
// VerifySeed does not detect replays: see ReplayKey.
func VerifySeed(secret []byte, h SeedHeaders, method, target string, body []byte, now time.Time, window time.Duration) error {
	if len(secret) == 0 {
		return errEmptySecret
	}
	if err := h.check(); err != nil {
		return err
	}
	ts, _ := parseTimestamp(h.Timestamp)
	if !inWindow(time.Unix(ts, 0), now, window) {
		return fmt.Errorf("%w: %s", ErrOutOfWindow, HeaderTimestamp)
	}
	var got [32]byte
	if _, err := hex.Decode(got[:], []byte(h.Signature)); err != nil { // checked above
		return fmt.Errorf("%w: %s", ErrMalformed, HeaderSignature)
	}
	// The MAC of SeedMessage, fed piece by piece: no copy of the body.
	m := hmac.New(sha256.New, secret)
	var small [256]byte
	m.Write(append(append(small[:0], method...), target...))
	m.Write(body)
	m.Write(append(append(small[:0], h.Timestamp...), h.Nonce...))
	var want [sha256.Size]byte
	if !hmac.Equal(got[:], m.Sum(want[:0])) {
		return ErrSignatureMismatch
	}
	return nil
}

// parseTimestamp parses an X-Timestamp value.
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > maxTimestampLen || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	return ts, err == nil
}

// validAPIKey reports whether s is 1 to maxAPIKeyLen visible ASCII
// characters.
func validAPIKey(s string) bool {
	if s == "" || len(s) > maxAPIKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// validNonce reports whether s is a valid X-Nonce: minNonceLen to
// maxNonceLen characters of [A-Za-z0-9._~-].
func validNonce(s string) bool {
	if len(s) < minNonceLen || len(s) > maxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}

// validSeedSig reports whether s is 64 lowercase hex digits.
func validSeedSig(s string) bool {
	if len(s) != seedSigLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
