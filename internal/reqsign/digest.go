package reqsign

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/dunglas/httpsfv"
)

// ContentDigest returns the Content-Digest field value (RFC 9530) of body
// with algorithm sha-256: "sha-256=:" + base64(SHA-256(body)) + ":".
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// VerifyContentDigest checks the Content-Digest fields of h against body.
//
// The fields' dictionary must hold a sha-256 or a sha-512 member, or both;
// members with other algorithms are ignored. Every sha-256 and sha-512 member
// must be a byte sequence of the digest's length and equal the digest of
// body. The error wraps ErrMissingComponent if h has no Content-Digest,
// ErrMalformed if it is not such a dictionary, and ErrDigestMismatch if a
// digest differs.
func VerifyContentDigest(h http.Header, body []byte) error {
	vals := h.Values(HeaderContentDigest)
	if len(vals) == 0 {
		return fmt.Errorf("%w: no %s header", ErrMissingComponent, HeaderContentDigest)
	}
	d, err := httpsfv.UnmarshalDictionary(vals)
	if err != nil {
		return fmt.Errorf("%w: %s is not a dictionary", ErrMalformed, HeaderContentDigest)
	}
	checked := false
	for _, alg := range d.Names() {
		var sum []byte
		switch alg {
		case "sha-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		m, _ := d.Get(alg)
		item, ok := m.(httpsfv.Item)
		if !ok {
			return fmt.Errorf("%w: %s member is not a byte sequence", ErrMalformed, HeaderContentDigest)
		}
		got, ok := item.Value.([]byte)
		if !ok || len(got) != len(sum) {
			return fmt.Errorf("%w: %s %s is not a digest", ErrMalformed, HeaderContentDigest, alg)
		}
		if !bytes.Equal(got, sum) {
			return fmt.Errorf("%w: %s", ErrDigestMismatch, alg)
		}
		checked = true
	}
	if !checked {
		return fmt.Errorf("%w: %s has no sha-256 or sha-512 member", ErrMalformed, HeaderContentDigest)
	}
	return nil
}
