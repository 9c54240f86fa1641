package reqsign

import (
	"crypto/hmac"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// Header fields of RFC 9421 and RFC 9530.
const (
	HeaderSignatureInput = "Signature-Input"
	HeaderHTTPSignature  = "Signature"
	HeaderContentDigest  = "Content-Digest"
)

// Algorithm is the only RFC 9421 algorithm Tollgate accepts.
const Algorithm = "hmac-sha256"

// Label is the label SignHTTPSig gives its signature.
const Label = "tollgate"

// Limits on the parameters of RFC 9421 signatures.
const (
	maxKeyIDLen   = 256
	maxComponents = 64 // bounds the work of parsing and building the base
	httpSigLen    = 32 // HMAC-SHA256
)

// maxSFInteger is the largest structured-field integer (RFC 8941).
const maxSFInteger = 999_999_999_999_999

// requiredComponents must be covered by every signature Verify accepts;
// content-digest too when the request has a body.
var requiredComponents = [...]string{"@method", "@authority", "@path", "@query"}

// HTTPSig is one RFC 9421 signature of a request: the parameters and covered
// components of one Signature-Input member and the matching Signature bytes.
// It is immutable.
type HTTPSig struct {
	label      string
	components []string // covered component identifiers, in order
	params     string   // serialized inner list: the @signature-params value
	keyID      string
	nonce      string
	created    int64
	hasCreated bool
	expires    int64
	hasExpires bool
	sig        []byte
}

// ParseHTTPSig returns the signature Tollgate verifies among those of h.
//
// It is the first member of Signature-Input, in order, whose value is an
// inner list with a keyid parameter and either no alg parameter or alg
// "hmac-sha256"; other members, such as signatures added by intermediaries
// with other algorithms, are ignored. If there is none, the error wraps
// ErrNoSignature. Otherwise the member must have:
//
//   - created: an integer, Unix seconds;
//   - keyid: a non-empty string of at most 256 characters, opaque here (see
//     KeyID);
//   - nonce: a string of 8 to 128 characters (Tollgate requires it);
//   - expires, optionally: an integer, Unix seconds, not before created;
//
// and its covered components, at most 64, must be unique, be among @method,
// @authority, @path, @query, @target-uri, @scheme, @request-target and
// lowercase header field names, and have no parameters. Other signature
// parameters, such as tag, are allowed and signed. The Signature member with the same label must
// be a 32-byte byte sequence. Any problem gives ErrMalformed.
//
// Multiple Signature-Input or Signature field lines are combined as one
// dictionary, as RFC 9421 requires.
func ParseHTTPSig(h http.Header) (*HTTPSig, error) {
	s, err := parseHTTPSig(h)
	if err != nil {
		return nil, err
	}
	switch {
	case !s.hasCreated:
		return nil, fmt.Errorf("%w: no created parameter", ErrMalformed)
	case len(s.nonce) < minNonceLen || len(s.nonce) > maxNonceLen:
		return nil, fmt.Errorf("%w: nonce parameter missing or not 8 to 128 characters", ErrMalformed)
	}
	return s, nil
}

// parseHTTPSig is ParseHTTPSig without Tollgate's requirement of the created
// and nonce parameters, which RFC 9421 makes optional.
func parseHTTPSig(h http.Header) (*HTTPSig, error) {
	inputs := h.Values(HeaderSignatureInput)
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no %s header", ErrNoSignature, HeaderSignatureInput)
	}
	in, err := httpsfv.UnmarshalDictionary(inputs)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a dictionary", ErrMalformed, HeaderSignatureInput)
	}
	var (
		label string
		il    httpsfv.InnerList
	)
	for _, name := range in.Names() {
		m, _ := in.Get(name)
		if l, ok := m.(httpsfv.InnerList); ok && isTollgates(l.Params) {
			label, il = name, l
			break
		}
	}
	if label == "" {
		return nil, fmt.Errorf("%w: no %s member with keyid and alg %s", ErrNoSignature, HeaderSignatureInput, Algorithm)
	}

	sigs, err := httpsfv.UnmarshalDictionary(h.Values(HeaderHTTPSignature))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not a dictionary", ErrMalformed, HeaderHTTPSignature)
	}
	m, ok := sigs.Get(label)
	if !ok {
		return nil, fmt.Errorf("%w: no %s member for the label", ErrMalformed, HeaderHTTPSignature)
	}
	item, ok := m.(httpsfv.Item)
	if !ok {
		return nil, fmt.Errorf("%w: %s member is not a byte sequence", ErrMalformed, HeaderHTTPSignature)
	}
	sig, ok := item.Value.([]byte)
	if !ok || len(sig) != httpSigLen {
		return nil, fmt.Errorf("%w: %s member is not 32 bytes", ErrMalformed, HeaderHTTPSignature)
	}

	s, err := newHTTPSig(il)
	if err != nil {
		return nil, err
	}
	s.label = label
	s.sig = sig
	return s, nil
}

// isTollgates reports whether signature parameters p select a signature
// Tollgate verifies: keyid present, alg absent or hmac-sha256.
func isTollgates(p *httpsfv.Params) bool {
	if p == nil {
		return false
	}
	if _, ok := p.Get("keyid"); !ok {
		return false
	}
	alg, ok := p.Get("alg")
	return !ok || alg == Algorithm
}

// newHTTPSig checks the covered components and parameters in il and returns
// an HTTPSig without label and signature bytes.
func newHTTPSig(il httpsfv.InnerList) (*HTTPSig, error) {
	if len(il.Items) > maxComponents {
		return nil, fmt.Errorf("%w: more than %d covered components", ErrMalformed, maxComponents)
	}
	s := &HTTPSig{components: make([]string, 0, len(il.Items))}
	for _, it := range il.Items {
		c, ok := it.Value.(string)
		if !ok {
			return nil, fmt.Errorf("%w: covered component is not a string", ErrMalformed)
		}
		if it.Params != nil && len(it.Params.Names()) > 0 {
			return nil, fmt.Errorf("%w: component parameters are not supported", ErrMalformed)
		}
		if !validComponent(c) {
			return nil, fmt.Errorf("%w: unsupported covered component", ErrMalformed)
		}
		if s.covers(c) {
			return nil, fmt.Errorf("%w: component covered twice", ErrMalformed)
		}
		s.components = append(s.components, c)
	}

	p := il.Params
	if p == nil {
		p = httpsfv.NewParams()
	}
	var err error
	if s.created, s.hasCreated, err = intParam(p, "created"); err != nil {
		return nil, err
	}
	if s.expires, s.hasExpires, err = intParam(p, "expires"); err != nil {
		return nil, err
	}
	if s.hasCreated && s.hasExpires && s.expires < s.created {
		return nil, fmt.Errorf("%w: expires before created", ErrMalformed)
	}
	if s.keyID, err = stringParam(p, "keyid"); err != nil {
		return nil, err
	}
	if s.keyID == "" || len(s.keyID) > maxKeyIDLen {
		return nil, fmt.Errorf("%w: keyid missing or longer than 256", ErrMalformed)
	}
	if s.nonce, err = stringParam(p, "nonce"); err != nil {
		return nil, err
	}
	if alg, err := stringParam(p, "alg"); err != nil {
		return nil, err
	} else if alg != "" && alg != Algorithm {
		return nil, fmt.Errorf("%w: alg is not %s", ErrMalformed, Algorithm)
	}

	// The @signature-params value is the inner list re-serialized
	// (RFC 9421 Section 2.3), which a List of one member produces.
	il.Params = p
	if s.params, err = httpsfv.Marshal(httpsfv.List{il}); err != nil {
		return nil, fmt.Errorf("%w: signature parameters do not serialize", ErrMalformed)
	}
	return s, nil
}

// intParam returns the non-negative integer parameter name of p, if present.
func intParam(p *httpsfv.Params, name string) (int64, bool, error) {
	v, ok := p.Get(name)
	if !ok {
		return 0, false, nil
	}
	n, ok := v.(int64)
	if !ok || n < 0 {
		return 0, false, fmt.Errorf("%w: %s is not a non-negative integer", ErrMalformed, name)
	}
	return n, true, nil
}

// stringParam returns the string parameter name of p, "" if absent.
func stringParam(p *httpsfv.Params, name string) (string, error) {
	v, ok := p.Get(name)
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	return s, nil
}

// validComponent reports whether c is a derived component this package
// supports or a lowercase field name (an HTTP token).
func validComponent(c string) bool {
	switch c {
	case "@method", "@authority", "@path", "@query", "@target-uri", "@scheme", "@request-target":
		return true
	case "":
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isLowerTchar(c[i]) {
			return false
		}
	}
	return true
}

// isLowerTchar reports whether b is an RFC 9110 tchar other than an
// uppercase letter.
func isLowerTchar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// Label returns the signature's label, its key in Signature-Input and
// Signature. The label is not signed.
func (s *HTTPSig) Label() string { return s.label }

// KeyID returns the keyid parameter. Tollgate clients put there the ID or
// display prefix of their API key; the caller resolves it to a secret.
func (s *HTTPSig) KeyID() string { return s.keyID }

// Nonce returns the nonce parameter.
func (s *HTTPSig) Nonce() string { return s.nonce }

// Created returns the created parameter.
func (s *HTTPSig) Created() time.Time { return time.Unix(s.created, 0) }

// Expires returns the expires parameter, or the zero Time if there is none.
func (s *HTTPSig) Expires() time.Time {
	if !s.hasExpires {
		return time.Time{}
	}
	return time.Unix(s.expires, 0)
}

// Components returns the covered component identifiers, in order.
func (s *HTTPSig) Components() []string {
	return append([]string(nil), s.components...)
}

// ReplayKey returns the key under which the caller records s as seen:
// "rfc9421:" and the hex SHA-256 of the signature bytes. It is meaningful only
// after Verify has accepted s.
func (s *HTTPSig) ReplayKey() string { return replayKey("rfc9421:", s.sig) }

// covers reports whether c is a covered component of s.
func (s *HTTPSig) covers(c string) bool {
	for _, x := range s.components {
		if x == c {
			return true
		}
	}
	return false
}

// Verify checks s against the request described by req and body, under
// secret, at time now, and applies Tollgate's policy. It returns an error
// wrapping:
//
//   - ErrOutOfWindow if created is more than window away from now in either
//     direction, or expires is before now;
//   - ErrMissingComponent if s does not cover @method, @authority, @path and
//     @query, or the request has a body (see RequestInfo.ContentLength) and s
//     does not cover content-digest;
//   - ErrMalformed if the request lacks a covered component (a header field,
//     the authority, the scheme) or a component value holds control
//     characters;
//   - ErrSignatureMismatch if the signature is not the HMAC-SHA256 of the
//     signature base under secret, compared in constant time;
//   - ErrDigestMismatch if content-digest is covered and does not match body
//     (see VerifyContentDigest; a Content-Digest without sha-256 or sha-512
//     is ErrMalformed);
//
// checking in that order. An empty secret is an error. Verify does not detect
// replays: see ReplayKey.
func (s *HTTPSig) Verify(secret []byte, req RequestInfo, body []byte, now time.Time, window time.Duration) error {
	if len(secret) == 0 {
		return errEmptySecret
	}
	if !s.hasCreated {
		return fmt.Errorf("%w: no created parameter", ErrMalformed)
	}
	if !inWindow(s.Created(), now, window) {
		return fmt.Errorf("%w: created", ErrOutOfWindow)
	}
	if s.hasExpires && now.After(s.Expires()) {
		return fmt.Errorf("%w: expired", ErrOutOfWindow)
	}
	for _, c := range requiredComponents {
		if !s.covers(c) {
			return fmt.Errorf("%w: %s", ErrMissingComponent, c)
		}
	}
	if req.hasBody(body) && !s.covers("content-digest") {
		return fmt.Errorf("%w: content-digest", ErrMissingComponent)
	}
	if err := s.verifyMAC(secret, &req); err != nil {
		return err
	}
	if s.covers("content-digest") {
		return VerifyContentDigest(req.Header, body)
	}
	return nil
}

// verifyMAC checks the signature over the signature base of req, without
// any policy.
func (s *HTTPSig) verifyMAC(secret []byte, req *RequestInfo) error {
	base, err := s.signatureBase(req)
	if err != nil {
		return err
	}
	if !hmac.Equal(s.sig, mac(secret, base)) {
		return ErrSignatureMismatch
	}
	return nil
}

// SignatureBase returns the RFC 9421 signature base (Section 2.5) of s for
// req: a line `"<component>": <value>` for each covered component, in
// order, then `"@signature-params": <parameters>`, joined by "\n", without a
// final newline. The error wraps ErrMalformed if req lacks a covered
// component.
//
// Derived components take these values: @method Method; @scheme Scheme,
// lowercased; @authority Authority, lowercased, without a port that is the
// default for the scheme; @path Path, "/" if empty; @query '?' and RawQuery
// (just "?" without a query); @request-target Path and, if RawQuery is not
// empty, '?' and RawQuery; @target-uri Scheme, "://", @authority and
// @request-target. A header field's value is its field lines' values with
// surrounding spaces and tabs removed, joined by ", ".
func (s *HTTPSig) SignatureBase(req RequestInfo) ([]byte, error) {
	return s.signatureBase(&req)
}

func (s *HTTPSig) signatureBase(req *RequestInfo) ([]byte, error) {
	var b []byte
	for _, c := range s.components {
		v, err := componentValue(c, req)
		if err != nil {
			return nil, err
		}
		if hasCTL(v) {
			return nil, fmt.Errorf("%w: component value holds control characters", ErrMalformed)
		}
		b = append(b, '"')
		b = append(b, c...)
		b = append(b, `": `...)
		b = append(b, v...)
		b = append(b, '\n')
	}
	b = append(b, `"@signature-params": `...)
	b = append(b, s.params...)
	return b, nil
}

// componentValue returns the value of covered component c in req.
func componentValue(c string, req *RequestInfo) (string, error) {
	switch c {
	case "@method":
		if req.Method == "" {
			return "", fmt.Errorf("%w: request has no method", ErrMalformed)
		}
		return req.Method, nil
	case "@scheme":
		return scheme(req)
	case "@authority":
		return authority(req)
	case "@path":
		return path(req), nil
	case "@query":
		return "?" + req.RawQuery, nil
	case "@request-target":
		return requestTarget(req), nil
	case "@target-uri":
		sch, err := scheme(req)
		if err != nil {
			return "", err
		}
		auth, err := authority(req)
		if err != nil {
			return "", err
		}
		return sch + "://" + auth + requestTarget(req), nil
	}
	vals := req.Header.Values(c)
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: covered header field absent", ErrMalformed)
	}
	if len(vals) == 1 {
		return strings.Trim(vals[0], " \t"), nil
	}
	trimmed := make([]string, len(vals))
	for i, v := range vals {
		trimmed[i] = strings.Trim(v, " \t")
	}
	return strings.Join(trimmed, ", "), nil
}

func scheme(req *RequestInfo) (string, error) {
	if req.Scheme == "" {
		return "", fmt.Errorf("%w: request has no scheme", ErrMalformed)
	}
	return strings.ToLower(req.Scheme), nil
}

func authority(req *RequestInfo) (string, error) {
	a := strings.ToLower(req.Authority)
	switch strings.ToLower(req.Scheme) {
	case "https":
		a = strings.TrimSuffix(a, ":443")
	case "http":
		a = strings.TrimSuffix(a, ":80")
	}
	a = strings.TrimSuffix(a, ":") // empty port
	if a == "" {
		return "", fmt.Errorf("%w: request has no authority", ErrMalformed)
	}
	return a, nil
}

func path(req *RequestInfo) string {
	if req.Path == "" {
		return "/"
	}
	return req.Path
}

func requestTarget(req *RequestInfo) string {
	if req.RawQuery == "" {
		return path(req)
	}
	return path(req) + "?" + req.RawQuery
}

// hasCTL reports whether s holds an ASCII control character other than tab,
// which could forge lines of the signature base.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < ' ' && s[i] != '\t') || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// SignHTTPSig signs the request described by req and body for Tollgate, at
// time created, with label Label. It returns the values of the
// Signature-Input, Signature and Content-Digest header fields to add to the
// request; contentDigest is "" if the request has no body (see
// RequestInfo.ContentLength) and must not then be set.
//
// The signature covers @method, @authority, @path, @query and, with a body,
// content-digest, computed here with ContentDigest. Its parameters are
// created, keyid, nonce and alg="hmac-sha256". keyID must be 1 to 256
// printable ASCII characters, nonce 8 to 128 (NewNonce makes one), created
// not before 1970, and secret not empty. A server accepts each signature
// once, so every request needs a new nonce.
//
// If the request carries other signatures, append these members to their
// fields; ParseHTTPSig verifies the first member with a keyid.
func SignHTTPSig(secret []byte, keyID string, req RequestInfo, body []byte, created time.Time, nonce string) (signatureInput, signature, contentDigest string, err error) {
	if len(secret) == 0 {
		return "", "", "", errEmptySecret
	}
	if keyID == "" || len(keyID) > maxKeyIDLen {
		return "", "", "", fmt.Errorf("reqsign: keyID must be 1 to %d characters", maxKeyIDLen)
	}
	if len(nonce) < minNonceLen || len(nonce) > maxNonceLen {
		return "", "", "", fmt.Errorf("reqsign: nonce must be %d to %d characters", minNonceLen, maxNonceLen)
	}
	if c := created.Unix(); c < 0 || c > maxSFInteger {
		return "", "", "", fmt.Errorf("reqsign: created out of range")
	}

	il := httpsfv.InnerList{Params: httpsfv.NewParams()}
	for _, c := range requiredComponents {
		il.Items = append(il.Items, httpsfv.NewItem(c))
	}
	if req.hasBody(body) {
		contentDigest = ContentDigest(body)
		il.Items = append(il.Items, httpsfv.NewItem("content-digest"))
		h := req.Header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set(HeaderContentDigest, contentDigest)
		req.Header = h
	}
	il.Params.Add("created", created.Unix())
	il.Params.Add("keyid", keyID)
	il.Params.Add("nonce", nonce)
	il.Params.Add("alg", Algorithm)

	s, err := newHTTPSig(il)
	if err != nil {
		return "", "", "", fmt.Errorf("reqsign: keyID and nonce must be printable ASCII: %w", err)
	}
	base, err := s.signatureBase(&req)
	if err != nil {
		return "", "", "", err
	}

	in := httpsfv.NewDictionary()
	in.Add(Label, il)
	sigs := httpsfv.NewDictionary()
	sigs.Add(Label, httpsfv.NewItem(mac(secret, base)))
	if signatureInput, err = httpsfv.Marshal(in); err != nil {
		return "", "", "", err
	}
	if signature, err = httpsfv.Marshal(sigs); err != nil {
		return "", "", "", err
	}
	return signatureInput, signature, contentDigest, nil
}
