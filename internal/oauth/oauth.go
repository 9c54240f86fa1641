// Package oauth is Tollgate's OAuth 2.0 authorization server for the client
// credentials grant (RFC 6749 §4.4), and the gateway's JWT Bearer method.
//
// An organization's apps are its OAuth clients: each has a client ID and a
// 64-character client secret, shown once and stored as a SHA-256 hash. An app
// exchanges them at the token endpoint for an access token: an RS256 JWT in
// the RFC 9068 profile (header typ "at+jwt" and kid; claims iss, aud, sub,
// client_id, scope, iat, exp, jti), signed by the token keyring.
//
// The gateway accepts such a token in "Authorization: Bearer". A verified
// token is cached by its hash, so a repeat costs a map lookup; the app behind
// it and its revocation are read again after the cache TTL. Deleting an app,
// rotating its secret or revoking a token through this package takes effect
// on this node at once; other processes see it within the cache TTL.
//
// A token is revoked either one at a time (RFC 7009: its jti is recorded
// until it would have expired) or for a whole app: the app's TokensNotBefore
// refuses every token issued before it.
package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/throttle"
	"github.com/tollgate/tollgate/internal/tokens"
)

// TokenType is the typ header of access tokens (RFC 9068 §2.1).
const TokenType = "at+jwt"

// Store is the part of the store the service uses.
type Store interface {
	CreateApp(ctx context.Context, app store.App, a store.AuditEntry) error
	GetApp(ctx context.Context, id string) (store.App, error)
	GetAppByClientID(ctx context.Context, clientID string) (store.App, error)
	ListApps(ctx context.Context, orgID string) ([]store.App, error)
	UpdateApp(ctx context.Context, id string, update func(store.App) (store.App, error), a store.AuditEntry) (store.App, error)
	DeleteApp(ctx context.Context, id string, at time.Time, a store.AuditEntry) ([]string, error)
	RevokeAccessToken(ctx context.Context, t store.RevokedToken, a store.AuditEntry) error
	AccessTokenRevoked(ctx context.Context, jti string) (bool, error)
	PurgeRevokedTokens(ctx context.Context, expiredBefore time.Time) (int64, error)
	// GetOrganization reads an app's organization, whose status is cached
	// with its tokens.
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
}

// KeyInvalidator drops API keys from the API key cache; deleting an app
// revokes its keys. *credentials.Service implements it.
type KeyInvalidator interface {
	InvalidateKeys(ids []string)
}

// Options configure a Service. Zero values take the defaults noted.
type Options struct {
	// Events reports app.deleted; nil reports nothing.
	Events   events.Func
	Clock    clock.Clock     // default clock.System{}
	Keyring  *tokens.Keyring // required
	Counters counters.Store  // required: failed client authentications
	Issuer   string          // required: "iss" of issued tokens
	Audience string          // required: "aud" of issued tokens
	TokenTTL time.Duration   // default 24h
	// Leeway is the clock skew tolerated on exp, nbf and iat; at least 1s,
	// since iat is stamped in whole seconds (see RotateSecret).
	Leeway time.Duration
	// CacheTTL bounds how long a verified token is trusted without reading
	// its app and revocation again. Default 30s.
	CacheTTL  time.Duration
	CacheSize int // default 100000
	// Limits throttle failed client authentications, per client IP and per
	// client IP and client ID (see package throttle). Zero: the defaults
	// of auth.login.
	Limits config.Login
	// MaxBody bounds the form bodies of the endpoints, in bytes (config
	// server.max_api_body_bytes). Default 64 KiB.
	MaxBody int64
	Keys    KeyInvalidator // optional
	Logger  *slog.Logger   // default: discard
	// Broadcast, when set, tells the other nodes of a cluster that an
	// app changed or a token was revoked (a message for their Apply).
	Broadcast func(msg string)
}

// Service manages apps and issues, verifies, revokes and introspects their
// access tokens. It is safe for concurrent use.
type Service struct {
	store    Store
	o        Options
	log      *slog.Logger
	verifier *tokens.Verifier
	cache    *lru.Cache[[32]byte, *entry]
	flight   singleflight.Group
	clients  *throttle.Guard
	// drops counts invalidations, so that a load that raced with one
	// does not cache what it read (see load).
	drops atomic.Uint64
}

// New returns a Service on st.
func New(st Store, o Options) (*Service, error) {
	if o.Keyring == nil || o.Counters == nil || o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("oauth: Keyring, Counters, Issuer and Audience are required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 24 * time.Hour
	}
	o.Leeway = max(o.Leeway, time.Second)
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	if o.Limits == (config.Login{}) {
		o.Limits = config.Default().Auth.Login
	}
	cache, err := lru.New[[32]byte, *entry](o.CacheSize)
	if err != nil {
		return nil, err
	}
	return &Service{
		store:    st,
		o:        o,
		log:      o.Logger,
		verifier: tokens.NewVerifier(o.Keyring, o.Clock, TokenType, o.Issuer, o.Audience, o.Leeway),
		cache:    cache,
		clients:  throttle.New(o.Counters, "oauth", throttle.FromConfig(o.Limits)),
	}, nil
}

// TokenTTL is the lifetime of the access tokens the service issues.
func (s *Service) TokenTTL() time.Duration { return s.o.TokenTTL }

// Claims are the claims of an access token (RFC 9068 §2.2). Subject is the
// client ID: no resource owner takes part in the client credentials grant.
type Claims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

// Errors of the gateway's Bearer method, with their RFC 6750 challenges.
var (
	errTokenExpired = bearerError(apierror.ExpiredToken, "access token expired")
	errTokenInvalid = bearerError(apierror.InvalidToken, "access token invalid")
	errTokenRevoked = bearerError(apierror.InvalidToken, "access token revoked")
	errAppGone      = bearerError(apierror.InvalidToken, "the app this token was issued to no longer exists")
	errStoreDown    = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "credential store unavailable")
)

func bearerError(code apierror.Code, msg string) *apierror.Error {
	return apierror.New(http.StatusUnauthorized, code, msg).
		WithHeader("WWW-Authenticate", `Bearer realm="tollgate", error="invalid_token", error_description="`+msg+`"`)
}
