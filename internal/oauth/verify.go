package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
)

// MaxTokenLength bounds a presented access token; issued ones are about a
// kilobyte.
const MaxTokenLength = 4096

// entry is what the cache knows of one token. It is immutable.
type entry struct {
	principal *authn.Principal // nil: refused with err
	err       *apierror.Error
	claims    *Claims
	orgID     string
	expiresAt time.Time // the token's exp plus the leeway
	until     time.Time // read the app and revocation again after this
}

// Authenticate implements authn.Authenticator: the JWT Bearer method. A
// request without "Authorization: Bearer" is not its business (authn.ErrAbsent).
func (s *Service) Authenticate(r *http.Request) (*authn.Principal, error) {
	vs := r.Header.Values("Authorization")
	// A Bearer credential in any of several fields is this method's; more
	// than one field is ambiguous, and refused.
	if !slices.ContainsFunc(vs, isBearer) {
		return nil, authn.ErrAbsent
	}
	if len(vs) > 1 {
		return nil, errTokenInvalid
	}
	token, _ := httpx.ParseBearer(vs[0])
	e, err := s.lookup(r.Context(), token)
	if err != nil {
		return nil, err
	}
	return e.principal, nil
}

func isBearer(v string) bool {
	_, bearer := httpx.ParseBearer(v)
	return bearer
}

// Challenge implements authn.Authenticator.
func (s *Service) Challenge() string { return `Bearer realm="tollgate"` }

// shapeOK is a cheap filter run before any hashing or parsing: a compact JWS
// of base64url characters with exactly two dots, of bounded length.
func shapeOK(token string) bool {
	if len(token) == 0 || len(token) > MaxTokenLength {
		return false
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// lookup returns the cache entry of a valid token, or the error the client
// gets.
func (s *Service) lookup(ctx context.Context, token string) (*entry, error) {
	if !shapeOK(token) {
		return nil, errTokenInvalid
	}
	h := sha256.Sum256([]byte(token))
	now := s.o.Clock.Now()
	e, ok := s.cache.Get(h)
	if !ok || !now.Before(e.until) {
		v, err, _ := s.flight.Do(string(h[:]), func() (any, error) {
			return s.load(ctx, token, h, now)
		})
		if err != nil {
			return nil, err
		}
		e = v.(*entry)
	}
	switch {
	case e.principal == nil:
		return nil, e.err
	case !now.Before(e.expiresAt):
		return nil, errTokenExpired
	}
	return e, nil
}

// load verifies a token and reads its app and revocation. Tokens that fail
// verification are not cached: anybody can make endless such strings.
func (s *Service) load(ctx context.Context, token string, h [32]byte, now time.Time) (*entry, error) {
	drops := s.drops.Load()
	var c Claims
	if err := s.verifier.Verify(token, &c); err != nil {
		if errors.Is(err, tokens.ErrExpired) {
			return nil, errTokenExpired.Wrap(err)
		}
		return nil, errTokenInvalid.Wrap(err)
	}
	if c.ClientID == "" || c.Subject != c.ClientID || c.ID == "" || c.IssuedAt == nil {
		return nil, errTokenInvalid.Wrap(errors.New("oauth: token lacks client_id, sub, jti or iat"))
	}
	e := &entry{
		claims:    &c,
		expiresAt: c.ExpiresAt.Add(s.o.Leeway),
		until:     minTime(now.Add(s.o.CacheTTL), c.ExpiresAt.Add(s.o.Leeway)),
	}
	app, err := s.store.GetAppByClientID(ctx, c.ClientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e.err = errAppGone
	case err != nil:
		return nil, errStoreDown.Wrap(err)
	case c.IssuedAt.Before(app.TokensNotBefore):
		e.err = errTokenRevoked
	}
	if e.err == nil {
		e.orgID = app.OrgID
		org, err := s.store.GetOrganization(ctx, app.OrgID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e.err = errAppGone
		case err != nil:
			return nil, errStoreDown.Wrap(err)
		case org.Disabled():
			e.err = apierror.ErrOrgDisabled
		}
	}
	if e.err == nil {
		revoked, err := s.store.AccessTokenRevoked(ctx, c.ID)
		if err != nil {
			return nil, errStoreDown.Wrap(err)
		}
		if revoked {
			e.err = errTokenRevoked
		}
	}
	if e.err == nil {
		allow, err := ipallow.Parse(app.IPAllowlist)
		if err != nil {
			return nil, fmt.Errorf("oauth: app %s has a corrupt allowlist: %w", app.ID, err)
		}
		e.principal = &authn.Principal{
			OrgID:        app.OrgID,
			AppID:        app.ID,
			CredentialID: app.ClientID,
			Method:       authn.MethodBearer,
			Scopes:       grantedScopes(c.Scope, app.AllowedScopes),
			IPAllowlist:  allow,
			ExpiresAt:    e.expiresAt,
			TokenID:      c.ID,
		}
	}
	if s.drops.Load() == drops { // else an invalidation raced with the reads: serve, do not cache
		s.cache.Add(h, e)
	}
	return e, nil
}

// grantedScopes are the token's scopes that the app is still allowed: an
// app's scopes narrowed after issuance narrow its tokens too.
func grantedScopes(scope string, allowed []string) []string {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if slices.Contains(allowed, sc) {
			out = append(out, sc)
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Messages of Broadcast and Apply.
const (
	msgClient = "oauth-client:" // + client ID
	msgToken  = "oauth-token:"  //nolint:gosec // G101: a message prefix; + hex SHA-256 of the token
)

// Apply carries out a message another node broadcast, or the counters.Resync
// message "*", which drops every cached token. An organization's message
// (authn.OrgOfMessage) drops the tokens of its apps, and Apply reports false
// for it: it is every cache's business. It reports whether the message was
// this service's.
func (s *Service) Apply(msg string) bool {
	if org, ok := authn.OrgOfMessage(msg); ok {
		s.drops.Add(1)
		for _, h := range s.cache.Keys() {
			if e, ok := s.cache.Peek(h); ok && e.orgID == org {
				s.cache.Remove(h)
			}
		}
		return false
	}
	switch {
	case msg == "*":
		s.drops.Add(1)
		s.cache.Purge()
		return true
	case strings.HasPrefix(msg, msgClient):
		s.dropClient(msg[len(msgClient):])
		return true
	case strings.HasPrefix(msg, msgToken):
		var h [32]byte
		if b, err := hex.DecodeString(msg[len(msgToken):]); err == nil && copy(h[:], b) == len(h) {
			s.drops.Add(1)
			s.cache.Remove(h)
		}
		return true
	}
	return false
}

func (s *Service) broadcast(msg string) {
	if s.o.Broadcast != nil {
		s.o.Broadcast(msg)
	}
}

// endSessions ends, on every node, the open sessions of a client's tokens:
// its app was deleted, its tokens revoked or its allowance narrowed.
func (s *Service) endSessions(clientID string) {
	s.broadcast(authn.MsgCredentialEnded + clientID)
}

// forgetClient drops every cached token of a client, here and on the other
// nodes, so that a change to its app applies to the next request.
func (s *Service) forgetClient(clientID string) {
	s.dropClient(clientID)
	s.broadcast(msgClient + clientID)
}

func (s *Service) dropClient(clientID string) {
	s.drops.Add(1)
	for _, h := range s.cache.Keys() {
		if e, ok := s.cache.Peek(h); ok && e.claims.ClientID == clientID {
			s.cache.Remove(h)
		}
	}
}

// Revoke revokes an access token issued to the app (RFC 7009). An invalid
// or expired token, or one issued to another client, is left alone: the
// revocation endpoint answers 200 either way (§2.2), and reports false.
func (s *Service) Revoke(ctx context.Context, app store.App, token string, actor store.Actor) (bool, error) {
	if !shapeOK(token) {
		return false, nil
	}
	var c Claims
	if err := s.verifier.Verify(token, &c); err != nil || c.ClientID != app.ClientID || c.ID == "" {
		return false, nil //nolint:nilerr // an unusable token is not the caller's error (RFC 7009 §2.2)
	}
	now := s.o.Clock.Now()
	rt := store.RevokedToken{JTI: c.ID, ClientID: c.ClientID, ExpiresAt: c.ExpiresAt.Add(s.o.Leeway), RevokedAt: now}
	details := map[string]string{"jti": c.ID, "client_id": c.ClientID}
	if err := s.store.RevokeAccessToken(ctx, rt, actor.Entry(app.OrgID, "token.revoke", "app", app.ID, details)); err != nil {
		return false, err
	}
	h := sha256.Sum256([]byte(token))
	s.drops.Add(1)
	s.cache.Remove(h)
	s.broadcast(msgToken + hex.EncodeToString(h[:]))
	s.broadcast(authn.MsgTokenRevoked + c.ID) // its open sessions end
	return true, nil
}

// Introspection is an introspection response (RFC 7662 §2.2).
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Jti       string `json:"jti,omitempty"`
}

// Introspect tells the app whether a token is active: one the gateway would
// accept right now. Tokens of other organizations are reported inactive, so
// that a client learns nothing about them.
func (s *Service) Introspect(ctx context.Context, app store.App, token string) (Introspection, error) {
	e, err := s.lookup(ctx, token)
	if err != nil {
		if ae := apierror.From(err); ae.Status == http.StatusServiceUnavailable {
			return Introspection{}, err
		}
		return Introspection{}, nil
	}
	if e.orgID != app.OrgID {
		return Introspection{}, nil
	}
	c := e.claims
	return Introspection{
		Active:    true,
		Scope:     strings.Join(e.principal.Scopes, " "),
		ClientID:  c.ClientID,
		TokenType: "Bearer",
		Exp:       c.ExpiresAt.Unix(),
		Iat:       c.IssuedAt.Unix(),
		Sub:       c.Subject,
		Aud:       s.o.Audience,
		Iss:       c.Issuer,
		Jti:       c.ID,
	}, nil
}

// PurgeRevoked forgets revoked tokens that have expired anyway.
func (s *Service) PurgeRevoked(ctx context.Context) (int64, error) {
	return s.store.PurgeRevokedTokens(ctx, s.o.Clock.Now())
}
