package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/reqsign"
)

// Scheme is a request-signing scheme that the gateway accepts.
type Scheme int

const (
	// SchemeSeed sends X-Timestamp and X-Signature, the lowercase hex
	// HMAC-SHA256 of method, request target (path and query as sent),
	// body and timestamp, concatenated; with [Signer.Nonce], also X-Nonce,
	// appended to the signed string. It does not cover the host, nor the
	// boundaries between its parts: prefer SchemeRFC9421 where both ends
	// allow it.
	SchemeSeed Scheme = iota

	// SchemeRFC9421 sends RFC 9421 HTTP Message Signatures with algorithm
	// hmac-sha256 (Signature-Input and Signature), covering the method,
	// authority, path, query and, for a request with a body, an RFC 9530
	// Content-Digest, with the created, keyid and nonce parameters.
	SchemeRFC9421
)

// String returns "seed" or "rfc9421".
func (s Scheme) String() string {
	switch s {
	case SchemeSeed:
		return "seed"
	case SchemeRFC9421:
		return "rfc9421"
	default:
		return "Scheme(" + strconv.Itoa(int(s)) + ")"
	}
}

// Signer is an [http.RoundTripper] that sends requests with an API key and
// signs them with the key's signing secret (HMAC-SHA256), as a key with
// signature_required needs.
//
// Each request gets a fresh timestamp and, with SchemeRFC9421 or Nonce, a
// fresh random nonce, then is passed to Base. The gateway accepts each
// signature once and refuses replays, so a signature is single-use: a request
// sent again, by the caller or by [http.Client] after a redirect, goes
// through RoundTrip again and is signed again. Without a nonce, the seed
// scheme signs two identical requests in the same second identically and the
// gateway refuses the second one; set Nonce unless that cannot happen.
//
// The body is read into memory, as the signature covers it. The key and the
// signature are sent with every request, to whatever host: use the Signer
// for the gateway only. The gateway verifies the signature within a window
// around its own clock (±5 minutes by default), so the client's clock must be
// about right.
//
// A Signer is safe for concurrent use as long as its fields are not changed.
type Signer struct {
	// APIKey is the API key (tgk_…), sent as X-API-KEY.
	APIKey string

	// KeyID is the API key's ID (key_…), the keyid parameter of RFC 9421
	// signatures. SchemeRFC9421 requires it; the seed scheme does not use it.
	KeyID string

	// SigningSecret is the key's signing secret (tgs_…); the HMAC key is
	// the bytes of the whole string.
	SigningSecret string

	// Scheme is the signing scheme; the zero value is SchemeSeed.
	Scheme Scheme

	// Nonce makes the seed scheme send and sign a random X-Nonce too.
	// RFC 9421 signatures always carry a nonce.
	Nonce bool

	// Base sends the signed requests. Nil means http.DefaultTransport.
	Base http.RoundTripper

	// Now tells the current time, for the timestamp. Nil means time.Now.
	Now func() time.Time
}

var _ http.RoundTripper = (*Signer)(nil)

// Client returns an HTTP client that sends its requests through s. It uses s
// itself, not a copy.
func (s *Signer) Client() *http.Client {
	return &http.Client{Transport: s}
}

// RoundTrip signs a copy of req and sends it with Base; req is not modified.
// It sets X-API-KEY and the headers of s.Scheme, and removes any other
// signature headers of either scheme (X-Timestamp, X-Nonce, X-Signature,
// Signature-Input, Signature) that req carries.
//
// The copy's body is the bytes read from req.GetBody, when set, or else
// from req.Body; either way req.Body is closed, even on error. A request made with
// [http.NewRequest] and an in-memory body, which sets GetBody, can thus be
// sent again. The signed request target is req.URL.RequestURI(), which is
// what the transport sends, and the authority req.Host, or req.URL.Host if
// req.Host is empty.
func (s *Signer) RoundTrip(req *http.Request) (*http.Response, error) {
	r, err := s.sign(req)
	if err != nil {
		return nil, err
	}
	base := s.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

// sign returns a signed copy of req. It closes req.Body.
func (s *Signer) sign(req *http.Request) (*http.Request, error) {
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	switch {
	case s.APIKey == "":
		return nil, errors.New("sdk: Signer.APIKey is empty")
	case s.SigningSecret == "":
		return nil, errors.New("sdk: Signer.SigningSecret is empty")
	case req.URL == nil:
		return nil, errors.New("sdk: request has no URL")
	}

	r := req.Clone(req.Context())
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body, r.GetBody = http.NoBody, nil
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	for _, h := range []string{
		reqsign.HeaderTimestamp, reqsign.HeaderNonce, reqsign.HeaderSignature,
		reqsign.HeaderSignatureInput, reqsign.HeaderHTTPSignature,
	} {
		r.Header.Del(h)
	}
	r.Header.Set(reqsign.HeaderAPIKey, s.APIKey)

	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	target := r.URL.RequestURI()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	t := now()
	secret := []byte(s.SigningSecret)

	switch s.Scheme {
	case SchemeSeed:
		if t.Unix() < 0 {
			return nil, errors.New("sdk: time before 1970")
		}
		ts := strconv.FormatInt(t.Unix(), 10)
		var nonce string
		if s.Nonce {
			nonce = reqsign.NewNonce()
			r.Header.Set(reqsign.HeaderNonce, nonce)
		}
		r.Header.Set(reqsign.HeaderTimestamp, ts)
		r.Header.Set(reqsign.HeaderSignature, reqsign.SeedSign(secret, reqsign.SeedMessage(method, target, body, ts, nonce)))
	case SchemeRFC9421:
		if s.KeyID == "" {
			return nil, errors.New("sdk: SchemeRFC9421 needs Signer.KeyID, the API key's ID (key_…)")
		}
		info := reqsign.RequestInfo{
			Method:        method,
			Scheme:        r.URL.Scheme,
			Authority:     r.Host,
			ContentLength: r.ContentLength,
			Header:        r.Header,
		}
		if info.Authority == "" {
			info.Authority = r.URL.Host
		}
		info.Path, info.RawQuery, _ = strings.Cut(target, "?")
		input, sig, digest, err := reqsign.SignHTTPSig(secret, s.KeyID, info, body, t, reqsign.NewNonce())
		if err != nil {
			return nil, fmt.Errorf("sdk: %w", err)
		}
		if digest != "" {
			r.Header.Set(reqsign.HeaderContentDigest, digest)
		}
		r.Header.Set(reqsign.HeaderSignatureInput, input)
		r.Header.Set(reqsign.HeaderHTTPSignature, sig)
	default:
		return nil, fmt.Errorf("sdk: unknown signing scheme %v", s.Scheme)
	}
	return r, nil
}

// readBody returns the body of req, from req.GetBody if set, and closes
// req.Body.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer func() { _ = req.Body.Close() }()
	src := req.Body
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("sdk: request body: %w", err)
		}
		defer func() { _ = rc.Close() }()
		src = rc
	}
	body, err := io.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("sdk: request body: %w", err)
	}
	if req.ContentLength > 0 && int64(len(body)) != req.ContentLength {
		return nil, fmt.Errorf("sdk: ContentLength=%d with Body length %d", req.ContentLength, len(body))
	}
	return body, nil
}
