// Package authn holds what every authentication method produces: the
// Principal a request acts as. Methods (API keys now; JWT Bearer, HMAC and
// wallet signatures later) live in their own packages and return a Principal;
// the gateway authorizes, limits and forwards on the strength of it.
package authn

import (
	"slices"

	"github.com/tollgate/tollgate/internal/ipallow"
)

// Method names an authentication method, as logged and metered.
type Method string

// Methods, in the order the gateway evaluates them (SIWX first).
const (
	MethodAPIKey Method = "apikey"
)

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
