// Package headerpolicy is the one list of the HTTP header names Tollgate
// owns, and the one policy of what becomes of them between a client and an
// upstream. The built-in gateway, the forward-auth decision API and the Envoy
// ext_authz service all apply it.
//
// A name is owned in any spelling: compared case-insensitively, with every
// byte that is not an ASCII letter or digit read as "-". RFC 3875's CGI
// variables, and so WSGI, Rack and PHP, turn "-" into "_", so that a backend
// reading HTTP_X_TOLLGATE_SCOPES cannot tell "X_Tollgate_Scopes" from
// "X-Tollgate-Scopes"; some servers (lighttpd's CGI and FastCGI) turn every
// byte that is not a letter or digit into "_", so that "X.Tollgate.Scopes"
// and "X+Tollgate+Scopes" are HTTP_X_TOLLGATE_SCOPES too. Owned names fall
// in these classes:
//
//   - Credential: what a client presents to Tollgate (X-API-KEY, the request
//     signature headers, SIGN-IN-WITH-X, x402 payments). Never forwarded.
//   - Identity: what Tollgate tells the upstream (X-Tollgate-*, X-Request-Id).
//     A client's are removed; Tollgate sets its own.
//   - Forwarding: what proxies say about the client (X-Forwarded-*,
//     Forwarded, X-Real-IP). Kept only from a trusted proxy, spelled as
//     proxies spell them; Tollgate sets X-Forwarded-For, -Host and -Proto.
//   - Override: what makes some frameworks read another request than the
//     one Tollgate decided on: a method override (X-HTTP-Method-Override,
//     X-HTTP-Method, X-Method-Override) or a path override (X-Original-URL,
//     X-Rewrite-URL, every X-Original-*). Never forwarded: Tollgate routes
//     on the method and path it sees.
//
// Authorization is owned only when it carries one of Tollgate's schemes
// (Bearer, SIWX); see StripAuthorization.
package headerpolicy

import (
	"net/http"
	"slices"
	"strings"
)

// Names of the headers of Tollgate's contract, in Go's canonical form.
const (
	APIKey           = "X-Api-Key" //nolint:gosec // G101: a header name
	Timestamp        = "X-Timestamp"
	Nonce            = "X-Nonce"
	Signature        = "X-Signature"
	HTTPSignature    = "Signature" // RFC 9421
	SignatureInput   = "Signature-Input"
	SignInWithX      = "Sign-In-With-X"
	PaymentSignature = "Payment-Signature" // x402 version 2
	Payment          = "X-Payment"         // x402 version 1
	Authorization    = "Authorization"

	RequestID  = "X-Request-Id"
	Org        = "X-Tollgate-Org"
	App        = "X-Tollgate-App"
	Credential = "X-Tollgate-Credential" //nolint:gosec // G101: a header name
	Scopes     = "X-Tollgate-Scopes"
	// ServiceToken is the decision API's shared secret, sent by the proxy
	// that asks for a decision, never by a client.
	ServiceToken = "X-Tollgate-Service-Token" //nolint:gosec // G101: a header name

	// TollgatePrefix starts every Identity header but X-Request-Id.
	TollgatePrefix = "X-Tollgate-"
)

// Class says what Tollgate does with a header.
type Class uint8

// Classes of header names.
const (
	Other Class = iota
	ClassCredential
	ClassIdentity
	ClassForwarding
	ClassOverride
)

// credentials, identities and forwarding are the owned names, lower case
// with "-"; prefixes end with "-".
var (
	credentials = []string{
		"x-api-key", "x-timestamp", "x-nonce", "x-signature", "signature", "signature-input",
		"sign-in-with-x", "payment-signature", "x-payment",
	}
	identities = []string{"x-tollgate-", "x-request-id"}
	forwarding = []string{"x-forwarded-", "forwarded", "x-real-ip"}
	overrides  = []string{"x-original-", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override"}
)

// CredentialNames returns the Credential names, lower case: what a proxy
// that cannot see every header (Envoy's ext_authz with allowed_headers)
// removes whether or not it was sent.
func CredentialNames() []string { return slices.Clone(credentials) }

// Classify returns the class of the header named name, in any spelling.
func Classify(name string) Class {
	if name == "" {
		return Other
	}
	switch lower(name[0]) {
	case 'x', 's', 'p', 'f':
	default:
		return Other // most headers, at the cost of one comparison
	}
	switch {
	case matchAny(name, credentials):
		return ClassCredential
	case matchAny(name, identities):
		return ClassIdentity
	case matchAny(name, forwarding):
		return ClassForwarding
	case matchAny(name, overrides):
		return ClassOverride
	}
	return Other
}

// matchAny reports whether name matches one of pats: equal, or starting with
// a pattern that ends with "-", case-insensitively, every byte that is not a
// letter or digit read as "-".
func matchAny(name string, pats []string) bool {
	if name == "" {
		return false
	}
	first := lower(name[0])
	for _, p := range pats {
		if p[0] != first {
			continue
		}
		prefix := p[len(p)-1] == '-'
		if len(name) < len(p) || (!prefix && len(name) != len(p)) {
			continue
		}
		if foldEqual(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// foldEqual reports whether s equals the lower-case, dashed p once
// lower-cased with every byte that is not a letter or digit read as "-".
func foldEqual(s, p string) bool {
	for i := 0; i < len(p); i++ {
		c := lower(s[i])
		if !isAlnum(c) {
			c = '-'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Canonical reports whether name is spelled as HTTP spells header names:
// ASCII letters and digits between dashes. An owned name spelled with "_",
// ".", "+" or any other byte a server may read as "-" comes from nobody
// Tollgate trusts.
func Canonical(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '-' && !isAlnum(c) {
			return false
		}
	}
	return true
}

// StripInbound removes from h, the headers of a request about to be
// forwarded upstream, every Credential, Identity and Override header in any
// spelling, and every Forwarding header unless trustedPeer (the request came
// from a trusted proxy) and it is spelled canonically. Authorization is left
// to StripAuthorization.
func StripInbound(h http.Header, trustedPeer bool) {
	for k := range h {
		switch Classify(k) {
		case ClassCredential, ClassIdentity, ClassOverride:
			delete(h, k)
		case ClassForwarding:
			if !trustedPeer || !Canonical(k) {
				delete(h, k)
			}
		}
	}
}

// Forged returns the name of a header of h that no client may send to the
// decision API, and true. The proxy asking passes the client's headers on to
// the upstream as they are, so Tollgate refuses the request rather than let
// them through:
//
//   - an owned name spelled with "_" (or another byte that is not a
//     letter, digit or "-"): the upstream may read it as the owned one;
//   - an Identity header but X-Request-Id and ServiceToken (which the proxy
//     adds): the proxy's configuration would have to remove each one;
//   - an Override header, except X-Original-URI and X-Original-Method when
//     there is no X-Forwarded-Uri (then they are how the proxy describes the
//     original request, as nginx configurations often do).
func Forged(h http.Header) (string, bool) {
	for k := range h {
		c := Classify(k)
		switch {
		case c == Other:
		case !Canonical(k):
			return k, true
		case c == ClassIdentity && !strings.EqualFold(k, RequestID) && !strings.EqualFold(k, ServiceToken):
			return k, true
		case c == ClassOverride:
			described := strings.EqualFold(k, "X-Original-Uri") || strings.EqualFold(k, "X-Original-Method")
			if !described || len(h["X-Forwarded-Uri"]) > 0 {
				return k, true
			}
		}
	}
	return "", false
}

// Scheme returns the authentication scheme of an Authorization field value
// (RFC 9110 section 11.4) and what follows it: the scheme ends at the first
// space or tab, and leading and trailing whitespace is ignored, so that
// every spelling a lenient upstream accepts is recognized.
func Scheme(v string) (scheme, rest string) {
	v = strings.Trim(v, " \t")
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return v, ""
	}
	return v[:i], strings.Trim(v[i:], " \t")
}

// IsTollgateScheme reports whether scheme is one of Tollgate's: Bearer or
// SIWX, in any case.
func IsTollgateScheme(scheme string) bool {
	return strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "SIWX")
}

// CarriesTollgateScheme reports whether an Authorization field of h carries
// a credential of one of Tollgate's schemes anywhere: in any of several
// fields, or after a comma in one (a lenient upstream may split a field on
// commas and find it there).
func CarriesTollgateScheme(h http.Header) bool {
	for _, v := range h[Authorization] {
		for part := range strings.SplitSeq(v, ",") {
			if s, _ := Scheme(part); IsTollgateScheme(s) {
				return true
			}
		}
	}
	return false
}

// StripAuthorization removes the Authorization fields of h on a route
// where Tollgate consumes credentials, when they carry one of Tollgate's
// schemes (see CarriesTollgateScheme) or when there is more than one of them
// (which one an upstream reads is anybody's guess). A single field of
// another scheme (Basic, say) is the upstream's business and is kept.
func StripAuthorization(h http.Header) {
	if vs := h[Authorization]; len(vs) > 1 || CarriesTollgateScheme(h) {
		delete(h, Authorization)
	}
}
