// Package whsig signs the webhooks Tollgate delivers and verifies them on the
// receiving side: HMAC-SHA256 under a webhook secret, bound to a timestamp so
// that a captured delivery cannot be replayed later, in two header formats
// carried side by side on every delivery.
//
// # Secrets
//
// A webhook secret is written as in Standard Webhooks: "whsec_" followed by
// the standard, padded base64 of 24 to 64 random bytes (NewSecret makes 32).
// The HMAC key of both formats is the decoded bytes, not the string: a
// receiver base64-decodes what follows "whsec_". ParseSecret does that, and
// is strict about the format.
//
// # Standard Webhooks headers
//
// Exactly as in the Standard Webhooks specification, so that receivers can
// use that ecosystem's libraries (VerifyStandard is this package's verifier):
//
//	webhook-id: msg_2k7v0m3x9d4c8h6b1n0p2r5tae
//	webhook-timestamp: 1614265330
//	webhook-signature: v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)> [v1,<...> ...]
//
// The timestamp is in Unix seconds; base64 is standard and padded. The
// signature header holds one "v1," entry per signing secret, separated by
// single spaces. (Go writes these names in canonical form, Webhook-Id and so
// on; header names are case-insensitive.)
//
// # X-Webhook-Signature
//
// Tollgate's own header, in the form of Stripe's
// Stripe-Signature:
//
//	X-Webhook-Signature: t=1614265330,v1=<hex>[,v1=<hex> ...]
//
// where t is the same Unix timestamp and each hex is the lowercase
// hexadecimal HMAC-SHA256(key, t + "." + body), one per signing secret, with
// no spaces anywhere. A receiver verifies over the raw body as received,
// before any JSON parsing. In Node.js:
//
//	const crypto = require("node:crypto");
//	const key = Buffer.from(secret.slice("whsec_".length), "base64");
//	const items = req.headers["x-webhook-signature"].split(",").map((p) => p.split("="));
//	const t = items.find(([k]) => k === "t")[1];
//	if (Math.abs(Date.now() / 1000 - Number(t)) > 300) throw new Error("stale");
//	const want = crypto.createHmac("sha256", key).update(t + ".").update(rawBody).digest("hex");
//	const ok = items.some(([k, v]) => k === "v1" && v.length === want.length &&
//	  crypto.timingSafeEqual(Buffer.from(v), Buffer.from(want)));
//
// In Python:
//
//	import base64, hashlib, hmac, time
//	key = base64.b64decode(secret.removeprefix("whsec_"))
//	items = [p.split("=", 1) for p in header.split(",")]
//	t = next(v for k, v in items if k == "t")
//	if abs(time.time() - int(t)) > 300: raise ValueError("stale")
//	want = hmac.new(key, t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
//	ok = any(k == "v1" and hmac.compare_digest(v, want) for k, v in items)
//
// # Rotation
//
// While a secret is being rotated, Sign is given both the new and the old
// secret and puts a signature by each in both headers. A receiver that knows
// either secret verifies every delivery, so receivers can switch at their own
// pace. A receiver needs only one secret at a time.
//
// # Replays
//
// A signature is valid for the tolerance given to the verifiers
// (DefaultTolerance, 5 minutes, if zero) either side of its timestamp, and
// no longer. Within that window a captured delivery verifies again:
// receivers that must not process a message twice remember the webhook-id
// values they have seen for twice the tolerance (Standard Webhooks) or the
// X-Webhook-Signature values (which do not sign the ID).
//
// # Message IDs
//
// A message ID is 1 to MaxIDLength bytes: an ASCII letter, then ASCII
// letters, digits, '_' and '-' (Tollgate's "msg_..." identifiers). Without
// '.', the Standard Webhooks signed string id.timestamp.body splits in one way
// only, so an ID cannot absorb part of the timestamp or body; starting with a
// letter, it can never be read as the timestamp of an X-Webhook-Signature
// string, so a signature of one format is never valid in the other although
// both use the same key. VerifyStandard refuses other IDs for the same
// reasons.
//
// # Errors
//
// The verifiers return nil or an error for which errors.Is reports one of:
//
//   - ErrMissingSignature: the signature header is absent or empty (the seed's
//     MISSING_SIGNATURE);
//   - ErrInvalidSignature: no signature matches (INVALID_SIGNATURE).
//
// ErrMalformedSignature (a header is not of the documented form) and
// ErrTimestamp (the timestamp is outside the tolerance) are kinds of
// ErrInvalidSignature: errors.Is(err, ErrInvalidSignature) is true for them
// too, so an adapter that maps to the seed's two codes tests
// ErrMissingSignature and ErrInvalidSignature, and one that wants the reason
// tests ErrMalformedSignature and ErrTimestamp first. Error messages never
// quote header values. Errors for a bad secret or message ID passed by the
// caller match none of these: they are the caller's bug.
//
// The package keeps no state, reads no clock and does no I/O: the caller
// passes the current time. Its functions are safe for concurrent use.
package whsig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names, in the canonical form http.Header uses.
const (
	// HeaderID is the Standard Webhooks webhook-id: the message ID.
	HeaderID = "Webhook-Id"
	// HeaderTimestamp is the Standard Webhooks webhook-timestamp: Unix
	// seconds.
	HeaderTimestamp = "Webhook-Timestamp"
	// HeaderStandardSignature is the Standard Webhooks webhook-signature.
	HeaderStandardSignature = "Webhook-Signature"
	// HeaderSignature is X-Webhook-Signature, "t=<ts>,v1=<hex>...".
	HeaderSignature = "X-Webhook-Signature"
)

const (
	// SecretPrefix starts every webhook secret in its written form.
	SecretPrefix = "whsec_"
	// MinSecretLength and MaxSecretLength bound the length of a secret's
	// key in bytes, after base64 decoding (Standard Webhooks: 24 to 64).
	MinSecretLength = 24
	MaxSecretLength = 64
	// NewSecretLength is the length in bytes of the keys NewSecret makes.
	NewSecretLength = 32

	// DefaultTolerance is how far a timestamp may be from now, either
	// way, when the verifiers are given a tolerance of zero or less.
	DefaultTolerance = 5 * time.Minute

	// MaxHeaderLength is the longest signature header the verifiers parse,
	// in bytes.
	MaxHeaderLength = 8 << 10
	// MaxSignatures is the most signature entries a header may hold (v1
	// and other schemes together, not counting t=), and so the most
	// secrets Sign accepts.
	MaxSignatures = 10
	// MaxIDLength is the longest message ID, in bytes.
	MaxIDLength = 128

	// maxTimestampDigits is the length of the largest int64,
	// 9223372036854775807.
	maxTimestampDigits = 19
)

var (
	// ErrMissingSignature means the request has no signature header of the
	// format verified (X-Webhook-Signature, or webhook-signature), or
	// only an empty one.
	ErrMissingSignature = errors.New("whsig: missing signature")

	// ErrInvalidSignature means that no signature in the header is the
	// HMAC of the request under the secret. ErrMalformedSignature and
	// ErrTimestamp match it too.
	ErrInvalidSignature = errors.New("whsig: invalid signature")

	// ErrMalformedSignature means a header the format needs is not of the
	// documented form: a repeated header, an unknown layout, a bad
	// timestamp or message ID, a v1 signature that does not decode to 32
	// bytes, too long, too many entries. It matches ErrInvalidSignature.
	ErrMalformedSignature error = &kindError{"whsig: malformed signature", ErrInvalidSignature}

	// ErrTimestamp means the signature's timestamp is more than the
	// tolerance away from now. It matches ErrInvalidSignature.
	ErrTimestamp error = &kindError{"whsig: signature timestamp out of tolerance", ErrInvalidSignature}

	// ErrInvalidSecret means ParseSecret was given something that is not a
	// webhook secret. The message says what is wrong, never the secret.
	ErrInvalidSecret = errors.New("whsig: invalid webhook secret")
)

// kindError is a sentinel error that is a kind of another one.
type kindError struct {
	msg    string
	parent error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.parent }

// errorf returns an error that matches kind and says more.
func errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
}

// NewSecret returns a new webhook secret: SecretPrefix followed by the
// standard base64 of NewSecretLength bytes from crypto/rand. The error is
// that of crypto/rand.Read, which does not fail on the platforms Go supports.
func NewSecret() (string, error) {
	var b [NewSecretLength]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("whsig: new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// ParseSecret returns the HMAC key of the webhook secret s. It refuses, with
// an error wrapping ErrInvalidSecret, anything but SecretPrefix followed by
// the canonical standard padded base64 (no line breaks, no spaces, zero
// padding bits) of MinSecretLength to MaxSecretLength bytes.
func ParseSecret(s string) ([]byte, error) {
	enc, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errorf(ErrInvalidSecret, "does not start with %q", SecretPrefix)
	}
	if len(enc) > base64.StdEncoding.EncodedLen(MaxSecretLength) {
		return nil, errorf(ErrInvalidSecret, "more than %d bytes", MaxSecretLength)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || base64.StdEncoding.EncodeToString(key) != enc {
		return nil, errorf(ErrInvalidSecret, "not standard padded base64 after %q", SecretPrefix)
	}
	if len(key) < MinSecretLength || len(key) > MaxSecretLength {
		return nil, errorf(ErrInvalidSecret, "%d bytes, not %d to %d", len(key), MinSecretLength, MaxSecretLength)
	}
	return key, nil
}

// checkKey returns an error if key cannot be a webhook secret's key.
func checkKey(key []byte) error {
	if len(key) < MinSecretLength || len(key) > MaxSecretLength {
		return fmt.Errorf("whsig: secret key of %d bytes, want %d to %d", len(key), MinSecretLength, MaxSecretLength)
	}
	return nil
}

// ValidID reports whether id is a valid message ID: 1 to MaxIDLength bytes,
// an ASCII letter, then ASCII letters, digits, '_' and '-'. The package doc
// says why.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLength || !isLetter(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !isLetter(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// Sign returns the headers that sign a delivery of body as message msgID at
// time ts (truncated to the second) under each of secrets (decoded keys, as
// ParseSecret returns them): HeaderID, HeaderTimestamp,
// HeaderStandardSignature and HeaderSignature, in the formats of the package
// doc, with one signature per secret in secrets' order. Copy them into the
// request with maps.Copy(req.Header, h).
//
// It fails if msgID is not ValidID, ts is before 1970, secrets is empty or
// holds more than MaxSignatures keys, or a key is not MinSecretLength to
// MaxSecretLength bytes long.
func Sign(msgID string, ts time.Time, body []byte, secrets ...[]byte) (http.Header, error) {
	if !ValidID(msgID) {
		return nil, errors.New("whsig: invalid message ID")
	}
	unix := ts.Unix()
	if unix < 0 {
		return nil, errors.New("whsig: timestamp before 1970")
	}
	if len(secrets) == 0 || len(secrets) > MaxSignatures {
		return nil, fmt.Errorf("whsig: %d secrets, want 1 to %d", len(secrets), MaxSignatures)
	}
	for _, key := range secrets {
		if err := checkKey(key); err != nil {
			return nil, err
		}
	}
	t := strconv.FormatInt(unix, 10)
	stdPrefix := signedPrefix(msgID, t)
	seedPrefix := stdPrefix[len(msgID)+1:]

	const (
		stdEntry = len("v1,") + 44 // 44: base64 of 32 bytes
		hexEntry = len(",v1=") + 2*sha256.Size
	)
	std := make([]byte, 0, len(secrets)*(stdEntry+1))
	sig := make([]byte, 0, len("t=")+len(t)+len(secrets)*hexEntry)
	sig = append(append(sig, "t="...), t...)
	var sum [sha256.Size]byte
	for i, key := range secrets {
		m := hmac.New(sha256.New, key)
		m.Write(stdPrefix)
		m.Write(body)
		if i > 0 {
			std = append(std, ' ')
		}
		std = base64.StdEncoding.AppendEncode(append(std, "v1,"...), m.Sum(sum[:0]))

		m.Reset()
		m.Write(seedPrefix)
		m.Write(body)
		sig = hex.AppendEncode(append(sig, ",v1="...), m.Sum(sum[:0]))
	}
	return http.Header{
		HeaderID:                {msgID},
		HeaderTimestamp:         {t},
		HeaderStandardSignature: {string(std)},
		HeaderSignature:         {string(sig)},
	}, nil
}

// signedPrefix returns id + "." + t + ".": what the Standard Webhooks signed
// string has before the body, or with id "" and from index 1 on, what the
// X-Webhook-Signature one has.
func signedPrefix(id, t string) []byte {
	b := make([]byte, 0, len(id)+len(t)+2)
	b = append(append(b, id...), '.')
	return append(append(b, t...), '.')
}

// mac returns HMAC-SHA256(key, prefix + body).
func mac(key, prefix, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(prefix)
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the X-Webhook-Signature header of h against body (the raw
// body as received) under secret (a decoded key) at time now.
//
// It returns nil if the header's timestamp is at most tolerance away from now
// (DefaultTolerance if tolerance ≤ 0) and one of its v1 signatures is the
// HMAC of the timestamp and body; every v1 signature is compared, each in
// constant time. Otherwise the error matches ErrMissingSignature or
// ErrInvalidSignature (and, if that is the cause, ErrMalformedSignature or
// ErrTimestamp), as the package doc says, except for a secret of the wrong
// length, which is the caller's bug.
//
// The header must be present exactly once, at most MaxHeaderLength bytes,
// and be "t=<ts>" and "<scheme>=<value>" entries separated by commas, without
// spaces: t exactly once, a decimal without sign or leading zeros that fits
// an int64; 1 to MaxSignatures signature entries, each v1 with 64 lowercase
// hex digits, or another scheme of 1 to 16 lowercase letters and digits with
// a non-empty value of visible ASCII, which is ignored. A header with no v1
// entry matches no signature.
func Verify(h http.Header, body, secret []byte, now time.Time, tolerance time.Duration) error {
	if err := checkKey(secret); err != nil {
		return err
	}
	v, err := single(h, HeaderSignature)
	if err != nil {
		return err
	}
	t, macs, err := parseSignature(v)
	if err != nil {
		return err
	}
	if err := checkTime(t, now, tolerance); err != nil {
		return err
	}
	return match(mac(secret, signedPrefix("", t)[1:], body), macs)
}

// VerifyStandard checks the Standard Webhooks headers of h against body (the
// raw body as received) under secret (a decoded key) at time now, as Verify
// does X-Webhook-Signature.
//
// HeaderStandardSignature must be present; if it is, HeaderID and
// HeaderTimestamp must be too, each exactly once: the ID ValidID, the
// timestamp as in Verify. The signature header, at most MaxHeaderLength bytes,
// is 1 to MaxSignatures entries separated by single spaces, each
// "<scheme>,<value>" of visible ASCII: v1 with the padded standard base64 of
// 32 bytes, or another scheme of 1 to 16 lowercase letters and digits (such
// as v1a, for Ed25519), which is ignored. A header with no v1 entry matches
// no signature.
func VerifyStandard(h http.Header, body, secret []byte, now time.Time, tolerance time.Duration) error {
	if err := checkKey(secret); err != nil {
		return err
	}
	v, err := single(h, HeaderStandardSignature)
	if err != nil {
		return err
	}
	macs, err := parseStandardSignature(v)
	if err != nil {
		return err
	}
	id, err := single(h, HeaderID)
	if err != nil || !ValidID(id) {
		return errorf(ErrMalformedSignature, "%s absent or not a valid message ID", HeaderID)
	}
	t, err := single(h, HeaderTimestamp)
	if err != nil || !validTimestamp(t) {
		return errorf(ErrMalformedSignature, "%s absent or not a timestamp", HeaderTimestamp)
	}
	if err := checkTime(t, now, tolerance); err != nil {
		return err
	}
	return match(mac(secret, signedPrefix(id, t), body), macs)
}

// single returns the one value of h's field name: ErrMissingSignature if
// there is none or only an empty one, ErrMalformedSignature if there are
// several.
func single(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return "", errorf(ErrMissingSignature, "no %s header", name)
	case len(vs) > 1:
		return "", errorf(ErrMalformedSignature, "%s header repeated", name)
	}
	return vs[0], nil
}

// checkTime returns nil if the timestamp t (already valid) is at most
// tolerance from now, and an error matching ErrTimestamp otherwise.
func checkTime(t string, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	unix, err := strconv.ParseInt(t, 10, 64)
	if err != nil { // cannot happen after validTimestamp
		return errorf(ErrMalformedSignature, "timestamp out of range")
	}
	d := now.Sub(time.Unix(unix, 0)) // saturates instead of overflowing
	if d < -tolerance || d > tolerance {
		return errorf(ErrTimestamp, "more than %s from now", tolerance)
	}
	return nil
}

// match compares want with every one of macs, each in constant time, and
// returns nil if one is equal and an error matching ErrInvalidSignature if
// none is.
func match(want []byte, macs [][sha256.Size]byte) error {
	ok := false
	for i := range macs {
		if hmac.Equal(macs[i][:], want) {
			ok = true
		}
	}
	if !ok {
		return errorf(ErrInvalidSignature, "no signature matches")
	}
	return nil
}

// validTimestamp reports whether s is a decimal without sign or leading
// zeros that fits an int64.
func validTimestamp(s string) bool {
	if s == "" || len(s) > maxTimestampDigits || s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// validScheme reports whether s is a signature scheme name: 1 to 16
// lowercase ASCII letters and digits.
func validScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; ('a' > c || c > 'z') && !isDigit(c) {
			return false
		}
	}
	return true
}

// parseSignature parses an X-Webhook-Signature value into its timestamp and
// its v1 MACs. Errors match ErrMalformedSignature.
func parseSignature(v string) (t string, macs [][sha256.Size]byte, err error) {
	if len(v) > MaxHeaderLength {
		return "", nil, errorf(ErrMalformedSignature, "%s longer than %d bytes", HeaderSignature, MaxHeaderLength)
	}
	if n := strings.Count(v, ","); n > MaxSignatures {
		return "", nil, errorf(ErrMalformedSignature, "%s has more than %d signatures", HeaderSignature, MaxSignatures)
	}
	seenT, sigs := false, 0
	for entry := range strings.SplitSeq(v, ",") {
		key, val, ok := strings.Cut(entry, "=")
		switch {
		case !ok:
			return "", nil, errorf(ErrMalformedSignature, "%s entry without '='", HeaderSignature)
		case key == "t":
			if seenT {
				return "", nil, errorf(ErrMalformedSignature, "%s has t more than once", HeaderSignature)
			}
			if !validTimestamp(val) {
				return "", nil, errorf(ErrMalformedSignature, "%s t is not a timestamp", HeaderSignature)
			}
			seenT, t = true, val
		case key == "v1":
			sigs++
			var mac [sha256.Size]byte
			if len(val) != hex.EncodedLen(sha256.Size) || !isLowerHex(val) {
				return "", nil, errorf(ErrMalformedSignature, "%s v1 is not 64 lowercase hex digits", HeaderSignature)
			}
			_, _ = hex.Decode(mac[:], []byte(val)) // checked by isLowerHex
			macs = append(macs, mac)
		case validScheme(key):
			sigs++
			if val == "" || !printableNoSpace(val) {
				return "", nil, errorf(ErrMalformedSignature, "%s entry with a bad value", HeaderSignature)
			}
		default:
			return "", nil, errorf(ErrMalformedSignature, "%s entry with a bad key", HeaderSignature)
		}
	}
	if !seenT {
		return "", nil, errorf(ErrMalformedSignature, "%s has no t", HeaderSignature)
	}
	if sigs == 0 {
		return "", nil, errorf(ErrMalformedSignature, "%s has no signature", HeaderSignature)
	}
	return t, macs, nil
}

// parseStandardSignature parses a webhook-signature value into its v1 MACs.
// Errors match ErrMalformedSignature.
func parseStandardSignature(v string) ([][sha256.Size]byte, error) {
	if len(v) > MaxHeaderLength {
		return nil, errorf(ErrMalformedSignature, "%s longer than %d bytes", HeaderStandardSignature, MaxHeaderLength)
	}
	if n := strings.Count(v, " "); n >= MaxSignatures {
		return nil, errorf(ErrMalformedSignature, "%s has more than %d signatures", HeaderStandardSignature, MaxSignatures)
	}
	var macs [][sha256.Size]byte
	for entry := range strings.SplitSeq(v, " ") {
		scheme, val, ok := strings.Cut(entry, ",")
		switch {
		case !ok || !validScheme(scheme):
			return nil, errorf(ErrMalformedSignature, "%s entry is not scheme,signature", HeaderStandardSignature)
		case val == "" || !printableNoSpace(val):
			return nil, errorf(ErrMalformedSignature, "%s entry with a bad signature", HeaderStandardSignature)
		case scheme == "v1":
			var buf [sha256.Size + 1]byte // DecodedLen of 44 characters
			n, err := 0, error(nil)
			if len(val) == base64.StdEncoding.EncodedLen(sha256.Size) {
				n, err = base64.StdEncoding.Strict().Decode(buf[:], []byte(val))
			}
			if err != nil || n != sha256.Size {
				return nil, errorf(ErrMalformedSignature, "%s v1 is not base64 of 32 bytes", HeaderStandardSignature)
			}
			macs = append(macs, [sha256.Size]byte(buf[:sha256.Size]))
		}
	}
	return macs, nil
}

// isLowerHex reports whether s is lowercase hexadecimal digits.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && ('a' > c || c > 'f') {
			return false
		}
	}
	return true
}

// printableNoSpace reports whether s is visible ASCII, '!' to '~'.
func printableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}
