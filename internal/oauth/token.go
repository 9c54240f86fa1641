package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Error is an OAuth 2.0 error response (RFC 6749 §5.2), as the token,
// revocation and introspection endpoints answer.
type Error struct {
	Status      int
	Code        string // invalid_request, invalid_client, invalid_scope, ...
	Description string
	RetryAfter  time.Duration // for 429
	Err         error         // cause, logged, never shown
}

func (e *Error) Error() string {
	s := "oauth: " + e.Code + ": " + e.Description
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func oauthError(status int, code, desc string) *Error {
	return &Error{Status: status, Code: code, Description: desc}
}

var (
	errInvalidClient = oauthError(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	errThrottled     = oauthError(http.StatusTooManyRequests, "temporarily_unavailable",
		"too many failed client authentications; retry later")
)

// Client is what a request presented as client authentication.
type Client struct {
	ID     string
	Secret string
}

// AuthenticateClient checks a client ID and secret and returns the app. The
// secret is checked first, and a right one is always admitted, whoever
// failed before: client secrets are 381-bit random strings, beyond any
// guessing. Wrong ones are counted per client IP and per client IP and
// client ID (package throttle); while either is delayed, they get 429 with
// Retry-After instead of invalid_client.
func (s *Service) AuthenticateClient(ctx context.Context, c Client, ip netip.Addr) (store.App, error) {
	app, ok, err := s.checkSecret(ctx, c)
	if err != nil {
		return store.App{}, err
	}
	if ok {
		return app, nil
	}
	wait, err := s.clients.Failed(ctx, ip, c.ID)
	if err != nil {
		return store.App{}, err
	}
	s.log.WarnContext(ctx, "failed client authentication", "client_id", c.ID, "client_ip", ip.String())
	if wait > 0 {
		e := *errThrottled
		e.RetryAfter = wait
		return store.App{}, &e
	}
	return store.App{}, errInvalidClient
}

// dummyHash is compared against when the client ID is unknown, so that an
// unknown client costs what a known one does.
var dummyHash = sha256.Sum256([]byte("tollgate: no such client"))

func (s *Service) checkSecret(ctx context.Context, c Client) (store.App, bool, error) {
	presented := sha256.Sum256([]byte(c.Secret))
	if !ids.Valid(ids.Client, c.ID) || len(c.Secret) != SecretLength {
		subtle.ConstantTimeCompare(presented[:], dummyHash[:])
		return store.App{}, false, nil
	}
	app, err := s.store.GetAppByClientID(ctx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		subtle.ConstantTimeCompare(presented[:], dummyHash[:])
		return store.App{}, false, nil
	}
	if err != nil {
		return store.App{}, false, err
	}
	return app, subtle.ConstantTimeCompare(presented[:], app.SecretHash) == 1, nil
}

// Token is a successful token response (RFC 6749 §5.1).
type Token struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// ParseScope splits a scope parameter (RFC 6749 §3.3: space-delimited) and
// checks each scope's syntax. It returns the scopes sorted, without
// duplicates.
func ParseScope(param string) ([]string, error) {
	var scopes []string
	for _, sc := range strings.Split(param, " ") {
		if sc == "" {
			continue
		}
		if !config.ValidScope(sc) {
			return nil, oauthError(http.StatusBadRequest, "invalid_scope", "malformed scope")
		}
		scopes = append(scopes, sc)
	}
	slices.Sort(scopes)
	return slices.Compact(scopes), nil
}

// Issue signs an access token for app with the requested scopes, which must
// be among the app's allowed scopes. A token requested without scopes
// carries none: it may call every route that requires none.
func (s *Service) Issue(app store.App, scopes []string) (Token, error) {
	for _, sc := range scopes {
		if !slices.Contains(app.AllowedScopes, sc) {
			return Token{}, oauthError(http.StatusBadRequest, "invalid_scope",
				"scope "+sc+" is not allowed for this client")
		}
	}
	iat := s.o.Clock.Now().Truncate(time.Second)
	if iat.Before(app.TokensNotBefore) {
		iat = app.TokensNotBefore // see notBefore
	}
	exp := iat.Add(s.o.TokenTTL)
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.o.Issuer,
			Subject:   app.ClientID,
			Audience:  jwt.ClaimStrings{s.o.Audience},
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        ids.New("jti"),
		},
		ClientID: app.ClientID,
		Scope:    strings.Join(scopes, " "),
	}
	signed, err := s.o.Keyring.Sign(claims, TokenType)
	if err != nil {
		return Token{}, err
	}
	return Token{
		AccessToken: signed,
		TokenType:   "Bearer",
		ExpiresIn:   int64(s.o.TokenTTL / time.Second),
		Scope:       claims.Scope,
	}, nil
}
