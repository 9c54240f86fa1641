package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
)

// TokenPair is what a login or refresh returns.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"` // seconds
}

// SessionClaims are the claims of a dashboard access token.
type SessionClaims struct {
	jwt.RegisteredClaims
	OrgID     string `json:"org_id"`
	Role      string `json:"role"`
	SessionID string `json:"sid"` // the refresh-token family
}

// startSession issues an access token and the first refresh token of family.
func (s *Service) startSession(ctx context.Context, u store.User, family string, now time.Time) (TokenPair, error) {
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return TokenPair{}, err
	}
	rt := store.RefreshToken{
		ID: ids.New(ids.RefreshToken), FamilyID: family, UserID: u.ID, Hash: hash,
		CreatedAt: now, ExpiresAt: now.Add(s.o.RefreshTTL),
	}
	if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
		return TokenPair{}, err
	}
	return s.pair(u, family, refresh, now)
}

func (s *Service) pair(u store.User, family, refresh string, now time.Time) (TokenPair, error) {
	claims := SessionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.o.Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.o.SessionTTL)),
			ID:        ids.New("jti"),
		},
		OrgID:     u.OrgID,
		Role:      string(u.Role),
		SessionID: family,
	}
	access, err := s.o.Keyring.Sign(claims, TokenType)
	if err != nil {
		return TokenPair{}, err
	}
	return TokenPair{
		AccessToken:  access,
		RefreshToken: refresh,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.o.SessionTTL / time.Second),
	}, nil
}

func newRefreshToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	token = refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token), nil
}

func hashToken(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// clientDigest describes the client of a refresh: its address and
// User-Agent, hashed (store.RefreshToken.UsedBy).
func clientDigest(ip netip.Addr, userAgent string) []byte {
	h := sha256.Sum256([]byte("tollgate refresh client\x00" + ip.Unmap().String() + "\x00" + userAgent))
	return h[:]
}

var (
	errBadRefresh = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "invalid refresh token")
	errReused     = apierror.New(http.StatusUnauthorized, apierror.InvalidToken,
		"refresh token already used; the session has been revoked, log in again")
	errRefreshExpired = apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, "refresh token expired; log in again")
	// errSessionEnded answers a token of a session that was logged out,
	// revoked for reuse, or ended by the operator (a disabled user, a new
	// password).
	errSessionEnded = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "the session has ended; log in again")
)

// Refresh exchanges a refresh token for a new pair (RFC 9700 §4.14.2: the
// refresh token rotates). A token presented a second time revokes its whole
// family, since one of the two presenters stole it, unless the same client
// (address and User-Agent) presents it again within Options.RefreshReuseGrace
// of its rotation, as two tabs refreshing at once do: that client gets a new
// token of the same family. The client's User-Agent is read from ctx
// (reqinfo). A token of an ended session (logout, a disabled user, a new
// password) is refused without alarm.
func (s *Service) Refresh(ctx context.Context, token string, ip netip.Addr) (TokenPair, error) {
	if s.o.Keyring == nil {
		return TokenPair{}, errors.New("accounts: no keyring to sign sessions")
	}
	if !strings.HasPrefix(token, refreshPrefix) || len(token) != len(refreshPrefix)+43 {
		return TokenPair{}, errBadRefresh
	}
	hash := hashToken(token)
	now := s.o.Clock.Now()
	old, err := s.store.GetRefreshTokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return TokenPair{}, errBadRefresh
	}
	if err != nil {
		return TokenPair{}, err
	}
	by := clientDigest(ip, reqinfo.From(ctx).UserAgent)
	if old.UsedAt.IsZero() {
		if !old.RevokedAt.IsZero() {
			return TokenPair{}, errSessionEnded
		}
		if !now.Before(old.ExpiresAt) {
			return TokenPair{}, errRefreshExpired
		}
		u, err := s.sessionUser(ctx, old, now)
		if err != nil {
			return TokenPair{}, err
		}
		refresh, nextHash, err := newRefreshToken()
		if err != nil {
			return TokenPair{}, err
		}
		next := store.RefreshToken{
			ID: ids.New(ids.RefreshToken), FamilyID: old.FamilyID, UserID: u.ID, Hash: nextHash,
			CreatedAt: now, ExpiresAt: now.Add(s.o.RefreshTTL),
		}
		stored, err := s.store.RotateRefreshToken(ctx, hash, next, now, by)
		if err == nil {
			return s.pair(u, old.FamilyID, refresh, now)
		}
		if !errors.Is(err, store.ErrTokenUsed) {
			return TokenPair{}, err
		}
		// Another refresh of this token won the race, or the session
		// ended meanwhile.
		if old = stored; old.UsedAt.IsZero() {
			return TokenPair{}, errSessionEnded
		}
	}
	if s.inGrace(old, by, now) {
		return s.branch(ctx, old, now)
	}
	return TokenPair{}, s.reuse(ctx, old, ip, now)
}

// inGrace reports whether the used token old, presented again by the client
// by at now, is a concurrent refresh of the client that used it rather than
// reuse.
func (s *Service) inGrace(old store.RefreshToken, by []byte, now time.Time) bool {
	g := s.o.RefreshReuseGrace
	if g <= 0 || len(old.UsedBy) == 0 || subtle.ConstantTimeCompare(old.UsedBy, by) != 1 {
		return false
	}
	since := now.Sub(old.UsedAt)
	return since <= g && since >= -g
}

// branch answers a concurrent refresh within the grace: a new token of the
// same family, beside the one the first refresh got.
func (s *Service) branch(ctx context.Context, old store.RefreshToken, now time.Time) (TokenPair, error) {
	if !old.RevokedAt.IsZero() {
		return TokenPair{}, errSessionEnded
	}
	u, err := s.sessionUser(ctx, old, now)
	if err != nil {
		return TokenPair{}, err
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return TokenPair{}, err
	}
	err = s.store.CreateRefreshToken(ctx, store.RefreshToken{
		ID: ids.New(ids.RefreshToken), FamilyID: old.FamilyID, UserID: u.ID, Hash: hash,
		CreatedAt: now, ExpiresAt: now.Add(s.o.RefreshTTL),
	})
	if err != nil {
		return TokenPair{}, err
	}
	// A revocation racing with the branch may have missed the new token;
	// the family is revoked all the same (store.RefreshFamily), and the new
	// token with it.
	f, err := s.store.GetRefreshFamily(ctx, old.FamilyID)
	if err != nil {
		return TokenPair{}, err
	}
	if !f.RevokedAt.IsZero() {
		return TokenPair{}, errSessionEnded
	}
	s.log.InfoContext(ctx, "refresh token presented again by the same client within the grace: same session",
		"user_id", u.ID, "session", old.FamilyID)
	return s.pair(u, old.FamilyID, refresh, now)
}

// sessionUser returns the active user of a refresh token; a user no longer
// active ends the session.
func (s *Service) sessionUser(ctx context.Context, t store.RefreshToken, now time.Time) (store.User, error) {
	u, err := s.store.GetUser(ctx, t.UserID)
	if err != nil {
		return store.User{}, err
	}
	if u.Status != store.UserActive {
		if err := s.endSession(ctx, t.FamilyID, now); err != nil {
			s.log.WarnContext(ctx, "end the session of an inactive user", "user_id", u.ID, "error", err)
		}
		return store.User{}, errDisabled
	}
	// A disabled organization's sessions are refused, not ended: enabling
	// it restores them.
	if err := s.checkOrg(ctx, u.OrgID); err != nil {
		return store.User{}, err
	}
	return u, nil
}

func (s *Service) reuse(ctx context.Context, old store.RefreshToken, ip netip.Addr, now time.Time) error {
	if err := s.endSession(ctx, old.FamilyID, now); err != nil {
		return err
	}
	u, err := s.store.GetUser(ctx, old.UserID)
	if err == nil {
		actor := store.Actor{Type: store.ActorAnon, IP: ip.String()}
		_ = s.store.AppendAudit(ctx, actor.Entry(u.OrgID, "session.refresh_reuse", "user", u.ID,
			map[string]string{"session": old.FamilyID}))
		if s.o.Events != nil {
			s.o.Events(ctx, u.OrgID, events.SecurityAlert, map[string]any{
				"kind":        "refresh_token_reuse",
				"severity":    "high",
				"description": "a dashboard refresh token was used twice; the session was revoked",
				"user_id":     u.ID,
				"session_id":  old.FamilyID,
				"client_ip":   ip.String(),
			})
		}
	}
	s.log.WarnContext(ctx, "refresh token reuse: session revoked", "user_id", old.UserID, "session", old.FamilyID, "client_ip", ip.String())
	return errReused
}

// Logout ends the session of a refresh token: its refresh tokens and, at
// once on every node, its access tokens. Unknown tokens are ignored.
func (s *Service) Logout(ctx context.Context, token string) error {
	old, err := s.store.GetRefreshTokenByHash(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.endSession(ctx, old.FamilyID, s.o.Clock.Now())
}

// endSession revokes a family and forgets it here and on the other nodes,
// so that its access tokens are refused from the next request on.
func (s *Service) endSession(ctx context.Context, family string, now time.Time) error {
	if err := s.store.RevokeRefreshTokenFamily(ctx, family, now); err != nil {
		return err
	}
	s.sessions.drop(family)
	s.broadcast(msgSession + family)
	return nil
}

// endUserSessions does what endSession does for every session of a user.
func (s *Service) endUserSessions(ctx context.Context, userID string, now time.Time) error {
	if err := s.store.RevokeUserRefreshTokens(ctx, userID, now); err != nil {
		return err
	}
	s.sessions.dropUser(userID)
	s.broadcast(msgSessionUser + userID)
	return nil
}

// Session is an authenticated dashboard user.
type Session struct {
	User      store.User
	SessionID string
}

var (
	errSessionInvalid = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "invalid access token")
	errSessionExpired = apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, "access token expired")
)

// Authenticate verifies a dashboard access token and loads its user, who
// must still be active, and checks that its session has not ended: a
// logout, refresh-token reuse, a disabled user or a new password refuses
// the session's access tokens at once (401 INVALID_TOKEN, 403 for a
// disabled user). Whether a session is live is read from the store and
// kept in memory for at most Options.SessionCacheTTL, or until the user
// changes; the services of every node drop it at once when it ends (Apply).
func (s *Service) Authenticate(ctx context.Context, token string) (Session, error) {
	if s.verifier == nil {
		return Session{}, errors.New("accounts: no keyring to verify sessions")
	}
	var c SessionClaims
	if err := s.verifier.Verify(token, &c); err != nil {
		if errors.Is(err, tokens.ErrExpired) {
			return Session{}, errSessionExpired.Wrap(err)
		}
		return Session{}, errSessionInvalid.Wrap(err)
	}
	u, err := s.store.GetUser(ctx, c.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, errSessionInvalid
	}
	if err != nil {
		return Session{}, err
	}
	if u.OrgID != c.OrgID {
		return Session{}, errSessionInvalid
	}
	if u.Status != store.UserActive {
		return Session{}, errDisabled
	}
	if err := s.checkOrg(ctx, u.OrgID); err != nil {
		return Session{}, err
	}
	if err := s.checkSession(ctx, c.SessionID, u); err != nil {
		return Session{}, err
	}
	return Session{User: u, SessionID: c.SessionID}, nil
}

// checkSession refuses a session (refresh-token family) that has ended or
// is not u's.
func (s *Service) checkSession(ctx context.Context, family string, u store.User) error {
	if family == "" {
		return errSessionInvalid
	}
	now := s.o.Clock.Now()
	if e, ok := s.sessions.get(family); ok && e.userID == u.ID && e.userVersion.Equal(u.UpdatedAt) &&
		(e.ended || now.Before(e.expires)) {
		if e.ended {
			return errSessionEnded
		}
		return nil
	}
	gen := s.sessions.generation()
	f, err := s.store.GetRefreshFamily(ctx, family)
	if errors.Is(err, store.ErrNotFound) {
		return errSessionInvalid
	}
	if err != nil {
		return err
	}
	ended := !f.RevokedAt.IsZero() || f.UserID != u.ID
	s.sessions.put(family, sessionEntry{
		userID: u.ID, userVersion: u.UpdatedAt, ended: ended, expires: now.Add(s.o.SessionCacheTTL),
	}, gen)
	if ended {
		return errSessionEnded
	}
	return nil
}

// Messages of Broadcast and Apply.
const (
	msgSession     = "session:"      // + family ID: the session ended
	msgSessionUser = "session-user:" // + user ID: every session of the user ended
)

// Apply carries out a message another node broadcast, or the
// counters.Resync message "*", which forgets every session. It reports
// whether the message was this service's.
func (s *Service) Apply(msg string) bool {
	switch {
	case msg == "*":
		s.sessions.purge()
		return true
	case strings.HasPrefix(msg, msgSession):
		s.sessions.drop(msg[len(msgSession):])
		return true
	case strings.HasPrefix(msg, msgSessionUser):
		s.sessions.dropUser(msg[len(msgSessionUser):])
		return true
	}
	return false
}

func (s *Service) broadcast(msg string) {
	if s.o.Broadcast != nil {
		s.o.Broadcast(msg)
	}
}
