// Package respsign signs HTTP response bodies, so that a client can check
// that a response comes from Tollgate and was not altered on the way.
//
// # Signature
//
// A response's signature is an ECDSA signature, on the curve secp256k1, of
// the SHA-256 digest of its body: exactly the bytes of the message body as
// sent, after any Content-Encoding and without the chunked framing; the
// bytes a client reads before decoding anything. No header, status code,
// method or URL is covered, so a signature shows where a body comes from,
// not what request it answers. The body of a response to HEAD, and of a 204
// or 304 response, is empty, and so is the body its signature covers. Error
// responses are signed like any other.
//
// The signature is DER encoded (SEQUENCE { r INTEGER, s INTEGER }, as in
// RFC 3279 and OpenSSL), with s at most half the group order ("low-S") and
// the nonce derived from the key and digest per RFC 6979, so that one key
// signs one body always the same way. It is sent in standard base64 with
// padding (RFC 4648 section 4), along with the ID of the key that made it:
//
//	X-Signature: MEQCIHm6...Zw==
//	X-Signature-Key-Id: sig_...
//
// Node.js checks it with crypto.createVerify("SHA256") (or "RSA-SHA256",
// which names only the digest to OpenSSL 3), the key's PEM and the header
// value as 'base64'; see Verify for Go.
//
// # Unsigned responses
//
// The Middleware never holds more than MaxBody bytes of a response. A
// response it does not sign goes through as the handler writes it, without
// X-Signature, and with a Structured Field (RFC 8941) saying why:
//
//	X-Signature-Status: unsigned; reason="too-large"
//
// where reason is one of
//
//   - "too-large": the handler declared a Content-Length above MaxBody, or
//     wrote more than MaxBody bytes;
//   - "streamed": the handler flushed a streaming response: Content-Type
//     text/event-stream (Server-Sent Events), application/x-ndjson,
//     application/jsonl, application/stream+json or application/json-seq.
//     A flush of any other response is deferred until the handler returns,
//     so that an upstream body relayed by httputil.ReverseProxy without a
//     Content-Length (chunked), which it flushes write by write, is still
//     signed whole;
//   - "trailers": the response declares trailers, which are sent after the
//     body and could not be covered anyway;
//   - "upgrade": a 101 Switching Protocols response or a hijacked
//     connection (WebSocket);
//   - "length-mismatch": the handler declared a Content-Length and wrote
//     fewer bytes; the response goes out as declared, so the client sees it
//     cut short, as it would without the middleware;
//   - "no-key": the keyring holds no key that may sign.
//
// A handler that panics has its buffered response discarded unsent, so that
// a body cut short (httputil.ReverseProxy panics with http.ErrAbortHandler
// when the upstream fails mid-body) is never signed as if complete. Headers
// named X-Signature, X-Signature-Key-Id or X-Signature-Status that the
// handler set (an upstream's, say) are removed from every final response.
//
// # Keys
//
// A Keyring keeps the keys in the store's signing key table, next to the
// token keys of package tokens, under the algorithm name ES256K, their
// private scalars sealed with the master key like the token keys (so that
// tokens.ResealKeys reseals them too). The newest key that is not retired
// signs. The keys are published at WellKnownPath
// (/.well-known/response-signing-key) as a JSON Document giving each key as
// a PEM SubjectPublicKeyInfo and as a JWK (RFC 8812), and the signing key's
// PEM alone on request (Accept: application/x-pem-file, or ?format=pem).
// Clients may cache the publication for 5 minutes; on an unknown
// X-Signature-Key-Id, they should fetch it again.
//
// # Rotation
//
// Rotate makes a new key the signing key and retires the previous one, which
// stays published, so that responses it signed can still be checked, until
// Prune deletes it once it has been retired longer than the grace period
// given. Other processes sharing the store see a rotation when they Reload;
// until then they keep signing with the previous key, which is published.
package respsign

// Header names. The values of HeaderSignature and HeaderKeyID are those Sign
// returns; that of HeaderStatus is `unsigned; reason="..."`.
const (
	HeaderSignature = "X-Signature"
	HeaderKeyID     = "X-Signature-Key-Id"
	HeaderStatus    = "X-Signature-Status"
)
