// Package authn holds what every authentication method produces: the
// Principal a request acts as. Methods (API keys now; JWT Bearer, HMAC and
// wallet signatures later) live in their own packages and return a Principal;
// the gateway authorizes, limits and forwards on the strength of it.
package authn

import (
	"errors"
	"net/http"
	"slices"

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
	// admits any principal (seed 004).
	Scopes      []string
	IPAllowlist ipallow.List // empty: any address
	// Plan overrides the organization's plan for this credential, which
	// then has a rate and quota of its own; "" uses the organization's.
	Plan string
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
