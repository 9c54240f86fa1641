// Package reqsign signs and verifies HMAC-SHA256 request signatures in the two
// schemes Tollgate accepts:
//
//   - the seed scheme, X-Timestamp and X-Signature headers over
//     METHOD+PATH+BODY+TIMESTAMP (SeedMessage, SeedSign, ParseSeedHeaders,
//     VerifySeed);
//   - RFC 9421 HTTP Message Signatures with algorithm hmac-sha256, and
//     RFC 9530 Content-Digest for the body (SignHTTPSig, ParseHTTPSig,
//     HTTPSig.Verify, ContentDigest, VerifyContentDigest).
//
// The package is pure: it reads no clock, keeps no state and does no I/O. The
// caller passes the current time, resolves key IDs to secrets, and prevents
// replays. A valid signature proves that the holder of the secret made the
// request recently, not that this is the first time it arrives: after a
// verification succeeds, and only then, the caller must look the signature's
// ReplayKey up in a store of keys seen in the last 2·window, reject the
// request if it is there and record it otherwise. Keys are derived from the
// signature bytes, so changing what a signature does not cover (a header, the
// label of an RFC 9421 signature) does not change the key.
//
// Errors of parsing and verification wrap one of the Err variables below
// (test them with errors.Is), except the error for an empty secret, which is
// the caller's bug. Error messages never quote header values.
package reqsign

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"
)

var (
	// ErrNoSignature means the request carries no signature of the scheme:
	// for the seed scheme no X-Signature header, for RFC 9421 no
	// Signature-Input member that Tollgate verifies.
	ErrNoSignature = errors.New("reqsign: no signature")

	// ErrMalformed means a signature header, or the request as a signature
	// covers it, is not well-formed.
	ErrMalformed = errors.New("reqsign: malformed signature")

	// ErrOutOfWindow means the signature's timestamp (X-Timestamp, or the
	// created parameter) is more than the window away from now, or that
	// its expires parameter has passed.
	ErrOutOfWindow = errors.New("reqsign: signature time out of window")

	// ErrMissingComponent means an RFC 9421 signature does not cover a
	// component Tollgate requires, or a request with a body has no
	// Content-Digest.
	ErrMissingComponent = errors.New("reqsign: required component not signed")

	// ErrDigestMismatch means Content-Digest does not match the body.
	ErrDigestMismatch = errors.New("reqsign: content digest mismatch")

	// ErrSignatureMismatch means the signature is well-formed and in time
	// but is not the HMAC of the request under the secret.
	ErrSignatureMismatch = errors.New("reqsign: signature mismatch")
)

// errEmptySecret is returned by the verifiers for an empty secret, which
// would make every signature forgeable; it is a bug in the caller.
var errEmptySecret = errors.New("reqsign: empty secret")

// NonceLength is the length of NewNonce's result.
const NonceLength = 22

// NewNonce returns a fresh nonce for X-Nonce or the nonce parameter: 16 bytes
// from crypto/rand (128 bits) in unpadded base64url, NonceLength characters
// of [A-Za-z0-9_-]. Like rand.Read, it does not fail on the platforms Go
// supports.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never returns an error (crypto/rand docs)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RequestInfo is what an RFC 9421 signature can cover of a request besides
// its body: the inputs of the derived components and the header fields.
type RequestInfo struct {
	// Method is the request method, case-sensitive ("GET").
	Method string
	// Scheme is "https" or "http". A server takes it from its own
	// listener (r.TLS != nil) or from a proxy it trusts, never from
	// headers a client could set.
	Scheme string
	// Authority is the host and optional port the request was sent to: the
	// Host header, or :authority in HTTP/2 and HTTP/3 (r.Host on a server).
	Authority string
	// Path is the path as sent, still percent-encoded ("/a%2Fb"); "" means
	// "/".
	Path string
	// RawQuery is the query as sent, without '?'; "" means none.
	RawQuery string
	// ContentLength is as in http.Request: the length of the body, 0 for
	// no body, -1 for unknown (chunked). A request has a body, and must
	// then carry a signed Content-Digest, if ContentLength is non-zero or
	// the body passed along with it is not empty.
	ContentLength int64
	// Header holds the header fields; keys in canonical form, as
	// http.Header keeps them. It may be nil.
	Header http.Header
}

// NewRequestInfo returns the RequestInfo of r, with scheme as Scheme.
//
// On a server (r.RequestURI set, in origin form) Path and RawQuery come from
// r.RequestURI, exactly as the client sent them; otherwise, as on a client,
// from r.URL.EscapedPath() and r.URL.RawQuery, which is what Go's client
// sends. Authority is r.Host, or r.URL.Host if r.Host is empty.
func NewRequestInfo(r *http.Request, scheme string) RequestInfo {
	ri := RequestInfo{
		Method:        r.Method,
		Scheme:        scheme,
		Authority:     r.Host,
		ContentLength: r.ContentLength,
		Header:        r.Header,
	}
	if ri.Method == "" {
		ri.Method = http.MethodGet
	}
	if ri.Authority == "" && r.URL != nil {
		ri.Authority = r.URL.Host
	}
	if strings.HasPrefix(r.RequestURI, "/") {
		ri.Path, ri.RawQuery, _ = strings.Cut(r.RequestURI, "?")
	} else if r.URL != nil {
		ri.Path, ri.RawQuery = r.URL.EscapedPath(), r.URL.RawQuery
	}
	return ri
}

// hasBody reports whether a request described by req and body has a body.
func (req *RequestInfo) hasBody(body []byte) bool {
	return req.ContentLength != 0 || len(body) > 0
}

// inWindow reports whether t is at most window away from now, either way.
// A negative window contains nothing.
func inWindow(t, now time.Time, window time.Duration) bool {
	if window < 0 {
		return false
	}
	d := now.Sub(t) // saturates instead of overflowing
	return -window <= d && d <= window
}

// mac returns HMAC-SHA256(secret, msg).
func mac(secret, msg []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(msg)
	return m.Sum(nil)
}

// replayKey returns prefix followed by the hex SHA-256 of sig.
func replayKey(prefix string, sig []byte) string {
	sum := sha256.Sum256(sig)
	return prefix + hex.EncodeToString(sum[:])
}
