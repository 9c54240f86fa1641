package respsign

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/tollgate/tollgate/internal/apierror"
)

// Publication constants: where and how the keys are published, and the
// names a Document gives.
const (
	// WellKnownPath is where Keyring, an http.Handler, is meant to be mounted.
	WellKnownPath = "/.well-known/response-signing-key"
	// SignatureAlgorithm names the signature scheme in the Document.
	SignatureAlgorithm = "ecdsa-secp256k1-sha256"
	// PEMContentType asks for, and answers with, the signing key's PEM.
	PEMContentType = "application/x-pem-file"
	// PEMBlockType is the type of the PEM block of a public key.
	PEMBlockType = "PUBLIC KEY"
	// CacheControl is sent with the publication: clients may cache it for 5
	// minutes, which Prune's grace must exceed.
	CacheControl = "public, max-age=300"
)

// Document is the JSON served at WellKnownPath: the signature scheme and
// every published key, the signing key and the retired ones not yet pruned,
// oldest first, each both as PEM and as JWK. For instance:
//
//	{"algorithm":"ecdsa-secp256k1-sha256","header":"X-Signature",
//	 "key_id_header":"X-Signature-Key-Id","current_key_id":"sig_...",
//	 "keys":[{"kid":"sig_...","pem":"-----BEGIN PUBLIC KEY-----\n...",
//	          "jwk":{"kty":"EC","crv":"secp256k1","x":"...","y":"...",
//	                 "kid":"sig_...","alg":"ES256K","use":"sig"},
//	          "created_at":"2026-11-22T12:00:00Z",
//	          "retired_at":"2026-11-23T12:00:00Z"}, ...],
//	 "jwks":{"keys":[{"kty":"EC",...}, ...]}}
//
// retired_at is absent for keys that are not retired. current_key_id is ""
// if no key may sign.
type Document struct {
	Algorithm    string         `json:"algorithm"`      // SignatureAlgorithm
	Header       string         `json:"header"`         // HeaderSignature
	KeyIDHeader  string         `json:"key_id_header"`  // HeaderKeyID
	CurrentKeyID string         `json:"current_key_id"` // the key that signs now
	Keys         []PublishedKey `json:"keys"`
	JWKS         JWKSet         `json:"jwks"` // the same keys as a JWK Set (RFC 7517)
}

// PublishedKey is a key of a Document.
type PublishedKey struct {
	KID       string    `json:"kid"`
	PEM       string    `json:"pem"` // see MarshalPublicKeyPEM
	JWK       JWK       `json:"jwk"`
	CreatedAt time.Time `json:"created_at"`
	RetiredAt time.Time `json:"retired_at,omitzero"` // zero: still signing
}

// JWKSet is a JSON Web Key Set (RFC 7517 section 5).
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// JWK is a secp256k1 public key as a JSON Web Key (RFC 7517 and RFC 8812):
// X and Y are the coordinates as 32 big-endian bytes each, in base64url
// without padding.
type JWK struct {
	Kty string `json:"kty"` // "EC"
	Crv string `json:"crv"` // "secp256k1"
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"` // "ES256K"
	Use string `json:"use,omitempty"` // "sig"
}

// NewJWK returns pub as a JWK with the given key ID, "alg" ES256K and "use"
// sig.
func NewJWK(kid string, pub *secp256k1.PublicKey) JWK {
	p := pub.SerializeUncompressed() // 0x04 ‖ x ‖ y
	return JWK{
		Kty: "EC", Crv: "secp256k1",
		X:   base64.RawURLEncoding.EncodeToString(p[1:33]),
		Y:   base64.RawURLEncoding.EncodeToString(p[33:65]),
		Kid: kid, Alg: Algorithm, Use: "sig",
	}
}

// The DER of a secp256k1 SubjectPublicKeyInfo (RFC 5480) with an
// uncompressed point is this prefix followed by the point's 65 bytes:
//
//	SEQUENCE (86 bytes) {
//	  SEQUENCE (16 bytes) {
//	    OBJECT IDENTIFIER 1.2.840.10045.2.1 (id-ecPublicKey)
//	    OBJECT IDENTIFIER 1.3.132.0.10 (secp256k1)
//	  }
//	  BIT STRING (66 bytes, no unused bits) 0x04 ‖ x ‖ y
//	}
var spkiPrefix = []byte{
	0x30, 0x56,
	0x30, 0x10,
	0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a,
	0x03, 0x42, 0x00,
}

// MarshalPublicKeyDER returns the DER of pub's SubjectPublicKeyInfo
// (RFC 5480): algorithm id-ecPublicKey, parameters namedCurve secp256k1 and
// the uncompressed point. crypto/x509 cannot marshal secp256k1 keys.
func MarshalPublicKeyDER(pub *secp256k1.PublicKey) []byte {
	return append(append(make([]byte, 0, len(spkiPrefix)+secp256k1.PubKeyBytesLenUncompressed),
		spkiPrefix...), pub.SerializeUncompressed()...)
}

// MarshalPublicKeyPEM returns MarshalPublicKeyDER(pub) as a PEM block of
// type "PUBLIC KEY", as OpenSSL and Node.js read and write public keys.
func MarshalPublicKeyPEM(pub *secp256k1.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: PEMBlockType, Bytes: MarshalPublicKeyDER(pub)})
}

// publish computes the Document and the signing key's PEM of sn.
func (sn *snapshot) publish() error {
	doc := Document{
		Algorithm:   SignatureAlgorithm,
		Header:      HeaderSignature,
		KeyIDHeader: HeaderKeyID,
		Keys:        make([]PublishedKey, 0, len(sn.keys)),
		JWKS:        JWKSet{Keys: make([]JWK, 0, len(sn.keys))},
	}
	for _, sk := range sn.keys {
		pemBytes := MarshalPublicKeyPEM(sk.public)
		jwk := NewJWK(sk.id, sk.public)
		doc.Keys = append(doc.Keys, PublishedKey{
			KID: sk.id, PEM: string(pemBytes), JWK: jwk, CreatedAt: sk.createdAt, RetiredAt: sk.retiredAt,
		})
		doc.JWKS.Keys = append(doc.JWKS.Keys, jwk)
		if sk == sn.active {
			doc.CurrentKeyID = sk.id
			sn.pem = pemBytes
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("respsign: encode publication: %w", err)
	}
	sn.doc = b
	return nil
}

// Document returns the JSON of the Document as of the last reload. The caller
// must not modify it.
func (k *Keyring) Document() []byte { return k.snap.Load().doc }

// PublicKeyPEM returns the PEM of the signing key as of the last reload, or
// nil if no key may sign. The caller must not modify it.
func (k *Keyring) PublicKeyPEM() []byte { return k.snap.Load().pem }

// ServeHTTP publishes the keys, for mounting at WellKnownPath. It answers GET
// and HEAD with the Document as application/json, or, if the request's
// Accept names application/x-pem-file or its query has format=pem, with the
// signing key's PEM alone. Both are computed at reload; the answer may be
// cached for 5 minutes (CacheControl) and varies with Accept.
func (k *Keyring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := k.serve(w, r); err != nil {
		apierror.Write(w, r, err)
	}
}

func (k *Keyring) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return apierror.New(http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "method not allowed").
			WithHeader("Allow", "GET, HEAD")
	}
	sn := k.snap.Load()
	body, ctype := sn.doc, "application/json"
	if wantsPEM(r) {
		if sn.pem == nil {
			return apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "no response signing key")
		}
		body, ctype = sn.pem, PEMContentType
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", CacheControl)
	h.Add("Vary", "Accept")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return nil
	}
	_, _ = w.Write(body)
	return nil
}

// wantsPEM reports whether r asks for the PEM: by ?format=pem, or by an
// Accept member application/x-pem-file whose q is not 0.
func wantsPEM(r *http.Request) bool {
	if r.URL.RawQuery != "" && r.URL.Query().Get("format") == "pem" {
		return true
	}
	for _, accept := range r.Header.Values("Accept") {
		for member := range strings.SplitSeq(accept, ",") {
			mt, params, err := mime.ParseMediaType(member)
			if err != nil || mt != PEMContentType {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}
