package tokens

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/clock"
)

// Errors returned by Verifier.Verify. Expired tokens are told apart because
// the API answers them with their own error code.
var (
	ErrExpired = errors.New("tokens: token expired")
	ErrInvalid = errors.New("tokens: token invalid")
)

// Verifier checks tokens signed by a Keyring: algorithm pinned to RS256,
// signature, typ header, issuer, audience, expiry (required) and not-before,
// with a small leeway for clock skew.
type Verifier struct {
	keyring  *Keyring
	clock    clock.Clock
	typ      string
	issuer   string
	audience string
	leeway   time.Duration
}

// NewVerifier returns a Verifier for tokens of the given typ header, issuer
// and audience.
func NewVerifier(k *Keyring, clk clock.Clock, typ, issuer, audience string, leeway time.Duration) *Verifier {
	return &Verifier{keyring: k, clock: clk, typ: typ, issuer: issuer, audience: audience, leeway: leeway}
}

// Verify parses and checks token into claims. It returns an error wrapping
// ErrExpired or ErrInvalid.
func (v *Verifier) Verify(token string, claims jwt.Claims) error {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.clock.Now),
	)
	t, err := p.ParseWithClaims(token, claims, v.keyring.Keyfunc)
	if err != nil {
		if onlyExpired(err) {
			return fmt.Errorf("%w: %w", ErrExpired, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// RFC 9068 §4: typ is compared case-insensitively and may carry the
	// "application/" prefix.
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), v.typ) {
		return fmt.Errorf("%w: typ %q", ErrInvalid, typ)
	}
	return nil
}

// onlyExpired reports whether expiry is the token's only defect: a token of
// the wrong issuer or audience is invalid, whether or not it also expired.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenSignatureInvalid, jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenNotValidYet, jwt.ErrTokenRequiredClaimMissing,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}
