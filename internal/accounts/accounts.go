// Package accounts manages the people who log in to Tollgate's control plane:
// sign-up (accounts start pending until an operator activates them), password
// login with brute-force throttling, dashboard sessions as short-lived RS256
// access tokens plus rotating refresh tokens, and the operator's actions on
// accounts.
//
// Login answers a wrong e-mail and a wrong password identically, in the same
// time, and only reveals that an account is pending or disabled to someone
// who knows its password.
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/events"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/password"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/internal/validate"
)

// Audience is the "aud" of dashboard access tokens. It differs from any API
// audience, so a dashboard token is never accepted by the gateway.
const Audience = config.ControlPlaneAudience

// TokenType is the JWT "typ" header of access tokens (RFC 9068).
const TokenType = "at+jwt"

// refreshPrefix starts every refresh token, so scanners can spot leaked ones.
const refreshPrefix = "tgr_"

// Store is the part of the store the service uses.
type Store interface {
	CreateOrganizationWithOwner(ctx context.Context, org store.Organization, owner store.User, a store.AuditEntry) error
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
	GetOrganizationBySlug(ctx context.Context, slug string) (store.Organization, error)
	UpdateOrganization(ctx context.Context, id string, update func(store.Organization) (store.Organization, error), a store.AuditEntry) (store.Organization, error)
	GetUser(ctx context.Context, id string) (store.User, error)
	GetUserByEmail(ctx context.Context, email string) (store.User, error)
	ListUsers(ctx context.Context, f store.UserFilter) ([]store.User, error)
	UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error), a store.AuditEntry) (store.User, error)
	RecordLogin(ctx context.Context, userID string, at time.Time) error
	CreateRefreshToken(ctx context.Context, t store.RefreshToken) error
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, at time.Time) (store.RefreshToken, error)
	RevokeRefreshTokenFamily(ctx context.Context, familyID string, at time.Time) error
	RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error
	AppendAudit(ctx context.Context, a store.AuditEntry) error
}

// Options configure a Service.
type Options struct {
	Clock    clock.Clock      // default clock.System{}
	Hasher   *password.Hasher // required
	Counters counters.Store   // required for Register and Login
	// Keyring signs sessions; nil for a Service that only manages accounts
	// (the CLI), whose Login and Refresh then fail.
	Keyring    *tokens.Keyring
	Issuer     string
	SessionTTL time.Duration
	RefreshTTL time.Duration
	Login      config.Login
	Logger     *slog.Logger
	// Events reports security.alert (a refresh token used twice); nil
	// reports nothing.
	Events events.Func
	// Broadcast, when set, tells every node that an organization was
	// disabled or enabled (authn.MsgOrgDisabled, authn.MsgOrgEnabled), so
	// that their caches and open sessions follow at once. It must not
	// block for long.
	Broadcast func(msg string)
}

// Service is safe for concurrent use.
type Service struct {
	store    Store
	o        Options
	verifier *tokens.Verifier
	log      *slog.Logger
}

// New returns a Service on st.
func New(st Store, o Options) *Service {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: st, o: o, log: o.Logger}
	if o.Keyring != nil {
		s.verifier = tokens.NewVerifier(o.Keyring, o.Clock, TokenType, o.Issuer, Audience, 30*time.Second)
	}
	return s
}

// Errors answered to clients.
var (
	errBadLogin = apierror.New(http.StatusUnauthorized, apierror.InvalidCredentials, "invalid e-mail or password")
	errPending  = apierror.New(http.StatusForbidden, apierror.Forbidden,
		"this account is pending activation by an operator").WithReason(apierror.ReasonAccountPending)
	errDisabled = apierror.New(http.StatusForbidden, apierror.Forbidden,
		"this account is disabled").WithReason(apierror.ReasonAccountDisabled)
	errTooMany = apierror.New(http.StatusTooManyRequests, apierror.RateLimited, "too many attempts; try again later")
	errNoUser  = apierror.New(http.StatusNotFound, apierror.NotFound, "no such user")
	errNoOrg   = apierror.New(http.StatusNotFound, apierror.NotFound, "no such organization")
)

// RegisterInput is a sign-up request.
type RegisterInput struct {
	Email            string
	Password         string
	OrganizationName string
}

// Register creates a pending user and its organization. To resist account
// enumeration, an e-mail address that is already registered gets the same
// answer (nil) and nothing is created.
func (s *Service) Register(ctx context.Context, in RegisterInput, ip netip.Addr) error {
	email, err := validate.Email("email", in.Email)
	if err != nil {
		return err
	}
	if err := password.CheckPolicy(in.Password); err != nil {
		return apierror.Invalid("password", "%s", err.Error())
	}
	orgName, err := validate.Name("organization_name", in.OrganizationName, 100)
	if err != nil {
		return err
	}
	l := counters.Limit{Max: s.o.Login.MaxRegistrationsPerIP, Window: s.o.Login.Window}
	d, err := s.o.Counters.RecordAttempt(ctx, "register:ip:"+ip.String(), l)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return errTooMany.WithRetryAfter(d.RetryAfter)
	}
	// Hash before looking the address up, so both answers take as long.
	hash, err := s.o.Hasher.Hash(in.Password)
	if err != nil {
		return err
	}
	if _, err := s.store.GetUserByEmail(ctx, email); err == nil {
		s.log.InfoContext(ctx, "registration for an address already registered", "client_ip", ip.String())
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := s.o.Clock.Now()
	org := store.Organization{ID: ids.New(ids.Organization), Name: orgName, CreatedAt: now, UpdatedAt: now}
	user := store.User{
		ID: ids.New(ids.User), OrgID: org.ID, Email: email, PasswordHash: hash,
		Role: store.RoleOwner, Status: store.UserPending, CreatedAt: now, UpdatedAt: now,
	}
	actor := store.Actor{Type: store.ActorAnon, IP: ip.String()}
	return s.createOrg(ctx, org, user, actor.Entry(org.ID, "user.register", "user", user.ID, map[string]string{"organization": orgName}))
}

// createOrg stores org and its owner, picking a free slug.
func (s *Service) createOrg(ctx context.Context, org store.Organization, owner store.User, a store.AuditEntry) error {
	base := Slug(org.Name)
	for attempt := 0; attempt < 8; attempt++ {
		org.Slug = base
		if attempt > 0 {
			org.Slug = fmt.Sprintf("%s-%s", base, ids.New("x")[2:8])
		}
		if _, err := s.store.GetOrganizationBySlug(ctx, org.Slug); err == nil {
			continue
		}
		err := s.store.CreateOrganizationWithOwner(ctx, org, owner, a)
		if !errors.Is(err, store.ErrAlreadyExists) {
			return err
		}
		// A concurrent sign-up took the slug or the address.
		if _, err := s.store.GetUserByEmail(ctx, owner.Email); err == nil {
			return nil
		}
	}
	return errors.New("accounts: no free slug for organization")
}

var slugJunk = regexp.MustCompile(`[^a-z0-9]+`)

// Slug derives an organization's handle from its name: lower case ASCII
// letters and digits separated by single dashes, at most 40 characters.
func Slug(name string) string {
	s := strings.Trim(slugJunk.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "org"
	}
	return s
}

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

// Login checks an e-mail and password and starts a session.
func (s *Service) Login(ctx context.Context, email, pw string, ip netip.Addr) (TokenPair, error) {
	if s.o.Keyring == nil {
		return TokenPair{}, errors.New("accounts: no keyring to sign sessions")
	}
	email = strings.ToLower(strings.TrimSpace(email))
	acctKey := "login:acct:" + email
	throttles := []struct {
		key string
		l   counters.Limit
	}{
		{"login:ip:" + ip.String(), counters.Limit{Max: s.o.Login.MaxFailuresPerIP, Window: s.o.Login.Window}},
		{acctKey, counters.Limit{Max: s.o.Login.MaxFailuresPerAccount, Window: s.o.Login.Window}},
	}
	for _, c := range throttles {
		d, err := s.o.Counters.CheckAttempt(ctx, c.key, c.l)
		if err != nil {
			return TokenPair{}, err
		}
		if !d.Allowed {
			return TokenPair{}, errTooMany.WithRetryAfter(d.RetryAfter)
		}
	}
	fail := func(userID string) error {
		for _, c := range throttles {
			if _, err := s.o.Counters.RecordAttempt(ctx, c.key, c.l); err != nil {
				return err
			}
		}
		s.log.WarnContext(ctx, "failed login", "user_id", userID, "client_ip", ip.String())
		return errBadLogin
	}
	if len(pw) > password.MaxLength || email == "" {
		s.o.Hasher.VerifyDummy(pw)
		return TokenPair{}, fail("")
	}
	u, err := s.store.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		s.o.Hasher.VerifyDummy(pw)
		return TokenPair{}, fail("")
	}
	if err != nil {
		return TokenPair{}, err
	}
	ok, rehash, err := s.o.Hasher.Verify(pw, u.PasswordHash)
	if err != nil {
		return TokenPair{}, fmt.Errorf("accounts: stored hash of %s: %w", u.ID, err)
	}
	if !ok {
		return TokenPair{}, fail(u.ID)
	}
	if err := s.o.Counters.ResetAttempts(ctx, acctKey); err != nil {
		return TokenPair{}, err
	}
	switch u.Status {
	case store.UserActive:
	case store.UserPending:
		return TokenPair{}, errPending
	case store.UserDisabled:
		return TokenPair{}, errDisabled
	default:
		return TokenPair{}, fmt.Errorf("accounts: user %s has unknown status %q", u.ID, u.Status)
	}
	if err := s.checkOrg(ctx, u.OrgID); err != nil {
		return TokenPair{}, err
	}
	now := s.o.Clock.Now()
	if rehash {
		if h, err := s.o.Hasher.Hash(pw); err == nil {
			system := store.Actor{Type: store.ActorSystem}
			_, _ = s.store.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
				u.PasswordHash, u.UpdatedAt = h, now
				return u, nil
			}, system.Entry(u.OrgID, "user.password_rehash", "user", u.ID, nil))
		}
	}
	pair, err := s.startSession(ctx, u, ids.New(ids.Family), now)
	if err != nil {
		return TokenPair{}, err
	}
	if err := s.store.RecordLogin(ctx, u.ID, now); err != nil {
		s.log.WarnContext(ctx, "record login time", "error", err)
	}
	actor := store.Actor{Type: store.ActorUser, ID: u.ID, IP: ip.String()}
	if err := s.store.AppendAudit(ctx, actor.Entry(u.OrgID, "user.login", "user", u.ID, nil)); err != nil {
		s.log.WarnContext(ctx, "audit login", "error", err)
	}
	return pair, nil
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

var (
	errBadRefresh = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "invalid refresh token")
	errReused     = apierror.New(http.StatusUnauthorized, apierror.InvalidToken,
		"refresh token already used; the session has been revoked, log in again")
	errRefreshExpired = apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, "refresh token expired; log in again")
)

// Refresh exchanges a refresh token for a new pair. A token presented a second
// time revokes its whole family: one of the two presenters stole it.
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
	if !old.UsedAt.IsZero() || !old.RevokedAt.IsZero() {
		return TokenPair{}, s.reuse(ctx, old, ip, now)
	}
	if !now.Before(old.ExpiresAt) {
		return TokenPair{}, errRefreshExpired
	}
	u, err := s.store.GetUser(ctx, old.UserID)
	if err != nil {
		return TokenPair{}, err
	}
	if u.Status != store.UserActive {
		_ = s.store.RevokeRefreshTokenFamily(ctx, old.FamilyID, now)
		return TokenPair{}, errDisabled
	}
	// A disabled organization's sessions are refused, not revoked:
	// enabling it restores them.
	if err := s.checkOrg(ctx, u.OrgID); err != nil {
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
	if _, err := s.store.RotateRefreshToken(ctx, hash, next, now); errors.Is(err, store.ErrTokenUsed) {
		return TokenPair{}, s.reuse(ctx, old, ip, now)
	} else if err != nil {
		return TokenPair{}, err
	}
	return s.pair(u, old.FamilyID, refresh, now)
}

func (s *Service) reuse(ctx context.Context, old store.RefreshToken, ip netip.Addr, now time.Time) error {
	if err := s.store.RevokeRefreshTokenFamily(ctx, old.FamilyID, now); err != nil {
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

// Logout revokes the session of a refresh token. Unknown tokens are ignored.
func (s *Service) Logout(ctx context.Context, token string) error {
	old, err := s.store.GetRefreshTokenByHash(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.store.RevokeRefreshTokenFamily(ctx, old.FamilyID, s.o.Clock.Now())
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
// must still be active, and its organization, which must not be disabled.
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
	return Session{User: u, SessionID: c.SessionID}, nil
}

// FindUser resolves a user by ID or e-mail address.
func (s *Service) FindUser(ctx context.Context, ref string) (store.User, error) {
	var u store.User
	var err error
	if ids.Valid(ids.User, ref) {
		u, err = s.store.GetUser(ctx, ref)
	} else {
		u, err = s.store.GetUserByEmail(ctx, strings.ToLower(strings.TrimSpace(ref)))
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, errNoUser
	}
	return u, err
}

// FindOrganization resolves an organization by ID or slug.
func (s *Service) FindOrganization(ctx context.Context, ref string) (store.Organization, error) {
	var o store.Organization
	var err error
	if ids.Valid(ids.Organization, ref) {
		o, err = s.store.GetOrganization(ctx, ref)
	} else {
		o, err = s.store.GetOrganizationBySlug(ctx, strings.ToLower(ref))
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Organization{}, errNoOrg
	}
	return o, err
}

// ListUsers lists users, optionally only those of one status.
func (s *Service) ListUsers(ctx context.Context, status store.UserStatus) ([]store.User, error) {
	return s.store.ListUsers(ctx, store.UserFilter{Status: status})
}

// SetStatus activates or disables a user (by ID or e-mail). Disabling also
// ends every session of the user.
func (s *Service) SetStatus(ctx context.Context, ref string, status store.UserStatus, actor store.Actor) (store.User, error) {
	if status != store.UserActive && status != store.UserDisabled {
		return store.User{}, apierror.Invalid("status", "status must be active or disabled")
	}
	u, err := s.FindUser(ctx, ref)
	if err != nil {
		return store.User{}, err
	}
	action := map[store.UserStatus]string{store.UserActive: "user.activate", store.UserDisabled: "user.disable"}[status]
	now := s.o.Clock.Now()
	u, err = s.store.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.Status, u.UpdatedAt = status, now
		return u, nil
	}, actor.Entry(u.OrgID, action, "user", u.ID, nil))
	if err != nil {
		return store.User{}, err
	}
	if status == store.UserDisabled {
		if err := s.store.RevokeUserRefreshTokens(ctx, u.ID, now); err != nil {
			return u, err
		}
	}
	return u, nil
}

// SetPassword replaces a user's password and revokes the user's refresh
// tokens; access tokens already issued lapse within the session TTL.
func (s *Service) SetPassword(ctx context.Context, ref, pw string, actor store.Actor) (store.User, error) {
	if err := password.CheckPolicy(pw); err != nil {
		return store.User{}, apierror.Invalid("password", "%s", err.Error())
	}
	u, err := s.FindUser(ctx, ref)
	if err != nil {
		return store.User{}, err
	}
	hash, err := s.o.Hasher.Hash(pw)
	if err != nil {
		return store.User{}, err
	}
	now := s.o.Clock.Now()
	u, err = s.store.UpdateUser(ctx, u.ID, func(u store.User) (store.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, now
		return u, nil
	}, actor.Entry(u.OrgID, "user.password_set", "user", u.ID, nil))
	if err != nil {
		return store.User{}, err
	}
	return u, s.store.RevokeUserRefreshTokens(ctx, u.ID, now)
}

// CreateActiveAccount creates an organization with an active owner at once,
// for operators and the development bootstrap.
func (s *Service) CreateActiveAccount(ctx context.Context, orgName, email, pw string, actor store.Actor) (store.Organization, store.User, error) {
	email, err := validate.Email("email", email)
	if err != nil {
		return store.Organization{}, store.User{}, err
	}
	if err := password.CheckPolicy(pw); err != nil {
		return store.Organization{}, store.User{}, apierror.Invalid("password", "%s", err.Error())
	}
	if orgName, err = validate.Name("organization_name", orgName, 100); err != nil {
		return store.Organization{}, store.User{}, err
	}
	hash, err := s.o.Hasher.Hash(pw)
	if err != nil {
		return store.Organization{}, store.User{}, err
	}
	now := s.o.Clock.Now()
	org := store.Organization{ID: ids.New(ids.Organization), Name: orgName, CreatedAt: now, UpdatedAt: now}
	u := store.User{
		ID: ids.New(ids.User), OrgID: org.ID, Email: email, PasswordHash: hash,
		Role: store.RoleOwner, Status: store.UserActive, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := s.store.GetUserByEmail(ctx, email); err == nil {
		return store.Organization{}, store.User{}, apierror.New(http.StatusConflict, apierror.Conflict, "e-mail address already registered")
	}
	if err := s.createOrg(ctx, org, u, actor.Entry(org.ID, "user.create", "user", u.ID, map[string]string{"organization": orgName})); err != nil {
		return store.Organization{}, store.User{}, err
	}
	org, err = s.store.GetOrganization(ctx, org.ID)
	return org, u, err
}
