// Package authn holds what every authentication method produces: the
// Principal a request acts as. Methods (API keys now; JWT Bearer, HMAC and
// wallet signatures later) live in their own packages and return a Principal;
// the gateway authorizes, limits and forwards on the strength of it.
package authn

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ipallow"
)

// Method names an authentication method, as logged and metered.
type Method string

// Methods, in the order the gateway evaluates them (SIWX first).
const (
	MethodSIWX   Method = "siwx"
	MethodAPIKey Method = "apikey"
	MethodBearer Method = "bearer"
)

// ErrAbsent is returned by an Authenticator when the request carries no
// credential of its method, so that the next method may be tried.
var ErrAbsent = errors.New("authn: no credential of this method")

// Authenticator is one authentication method as the gateway runs it.
//
// Authenticate returns ErrAbsent when r carries no credential of the method.
// Otherwise the method owns the request: it returns the principal, or the
// error the client gets (typically an *apierror.Error); the gateway never
// falls back to another method, so a bad credential is never silently
// outranked by a good one of a lower priority.
type Authenticator interface {
	Authenticate(r *http.Request) (*Principal, error)
	// Challenge is the WWW-Authenticate challenge naming the method, sent
	// with a 401 when a request carries no credential at all.
	Challenge() string
}

// Principal is the authenticated caller of one request. It is shared between
// requests (cached) and must be treated as read-only.
type Principal struct {
	OrgID        string
	AppID        string // "" when the credential belongs to no app
	CredentialID string
	Method       Method
	// Scopes granted to the credential. A route that requires scopes admits
	// the principal only if it holds all of them; a route that requires none
	// admits any principal.
	Scopes      []string
	IPAllowlist ipallow.List // empty: any address
	// Plan overrides the organization's plan for this credential, which
	// then has a rate and quota of its own; "" uses the organization's.
	Plan string
	// ExpiresAt is when the credential stops admitting requests: an API
	// key's expiry, an access token's exp (with the leeway), the end of a
	// wallet's subscription or of its sign-in message, whichever is first.
	// Zero: never. A long-lived connection (a WebSocket session) opened
	// with the credential is closed then.
	ExpiresAt time.Time
	// TokenID identifies the presented token among the credential's
	// tokens (an access token's jti); "" when the credential is its own
	// token (an API key, a wallet).
	TokenID string
}

// HasScopes reports whether p holds every scope in required.
func (p *Principal) HasScopes(required []string) bool {
	for _, s := range required {
		if !slices.Contains(p.Scopes, s) {
			return false
		}
	}
	return true
}

// Messages of the invalidation bus (counters.Bus) about organizations and
// credentials, shared by every service that caches credentials and by the
// gateway's register of open sessions. Each is the prefix followed by an ID.
const (
	// MsgOrgDisabled: the organization was disabled; caches drop what
	// they hold of it and its open sessions are closed.
	MsgOrgDisabled = "org-disabled:"
	// MsgOrgEnabled: the organization was enabled; caches drop what they
	// hold of it (its "disabled" verdicts).
	MsgOrgEnabled = "org-enabled:"
	// MsgTokenRevoked: the access token with this jti was revoked (RFC
	// 7009); its open sessions are closed.
	MsgTokenRevoked = "token-revoked:"
	// MsgCredentialEnded: every open session of the credential (a
	// principal's CredentialID, such as an OAuth client ID) is closed: its
	// app was deleted, its tokens revoked or what it may do narrowed.
	MsgCredentialEnded = "credential-ended:"
)

// OrgOfMessage returns the organization a MsgOrgDisabled or MsgOrgEnabled
// message names, and whether msg is one.
func OrgOfMessage(msg string) (orgID string, ok bool) {
	if id, ok := strings.CutPrefix(msg, MsgOrgDisabled); ok {
		return id, true
	}
	return strings.CutPrefix(msg, MsgOrgEnabled)
}
