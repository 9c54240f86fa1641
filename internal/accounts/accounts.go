// Package accounts manages the people who log in to Tollgate's control plane:
// sign-up (accounts start pending until an operator activates them), password
// login with brute-force throttling, dashboard sessions as short-lived RS256
// access tokens plus rotating refresh tokens, and the operator's actions on
// accounts.
//
// Login answers a wrong e-mail and a wrong password identically, in the same
// time, and only reveals that an account is pending or disabled to someone
// who knows its password. Failed logins are throttled per client address
// and per address and account (package throttle), never per account alone.
//
// A session is a refresh-token family; its access tokens carry it as "sid".
// Ending a session (logout, refresh-token reuse, a disabled user, a new
// password) refuses its access tokens from the next request on, on every
// node: Authenticate checks the session, through a cache that every node
// drops when the session ends (Options.Broadcast, Apply).
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/password"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/throttle"
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
	RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, at time.Time, by []byte) (store.RefreshToken, error)
	GetRefreshFamily(ctx context.Context, familyID string) (store.RefreshFamily, error)
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
	// SessionCacheTTL bounds how long a session is known live from memory
	// (config auth.session_cache_ttl); 0: the store is read on every
	// Authenticate.
	SessionCacheTTL time.Duration
	// RefreshReuseGrace is how long after its rotation the same client may
	// present a refresh token again (config auth.refresh_reuse_grace); 0:
	// never.
	RefreshReuseGrace time.Duration
	// Login throttles failed logins (and bounds sign-ups); see package
	// throttle. Zero: the defaults of auth.login.
	Login  config.Login
	Logger *slog.Logger
	// Events reports security.alert (a refresh token used twice); nil
	// reports nothing.
	Events events.Func
	// Broadcast, when set, tells every node that sessions ended, or that
	// an organization was disabled or enabled (authn.MsgOrgDisabled,
	// authn.MsgOrgEnabled), so that their caches and open sessions follow
	// at once (a message for their Apply). It must not block for long.
	Broadcast func(msg string)
}

// Service is safe for concurrent use.
type Service struct {
	store    Store
	o        Options
	verifier *tokens.Verifier
	log      *slog.Logger
	logins   *throttle.Guard
	sessions *sessionCache
}

// New returns a Service on st.
func New(st Store, o Options) *Service {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Login == (config.Login{}) {
		o.Login = config.Default().Auth.Login
	}
	s := &Service{
		store: st, o: o, log: o.Logger, sessions: newSessionCache(o.SessionCacheTTL),
		logins: throttle.New(o.Counters, "login", throttle.FromConfig(o.Login)),
	}
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
	d, err := s.o.Counters.RecordAttempt(ctx, "register:ip:"+throttle.Address(ip), l)
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

// Login checks an e-mail and password and starts a session. The attempt
// counts as a failure of ip, and of ip for that e-mail address, before the
// password is verified (package throttle): while either is delayed the
// attempt gets 429 with Retry-After, unverified, whether the password is
// right or not. A right password gives its count back.
func (s *Service) Login(ctx context.Context, email, pw string, ip netip.Addr) (TokenPair, error) {
	if s.o.Keyring == nil {
		return TokenPair{}, errors.New("accounts: no keyring to sign sessions")
	}
	email = strings.ToLower(strings.TrimSpace(email))
	if wait, err := s.logins.Begin(ctx, ip, email); err != nil {
		return TokenPair{}, err
	} else if wait > 0 {
		return TokenPair{}, errTooMany.WithRetryAfter(wait)
	}
	fail := func(userID string) error {
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
	if err := s.logins.Succeeded(ctx, ip, email); err != nil {
		s.log.WarnContext(ctx, "give back a right login's count", "error", err)
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
		if err := s.endUserSessions(ctx, u.ID, now); err != nil {
			return u, err
		}
	}
	return u, nil
}

// SetPassword replaces a user's password and ends every session of the
// user: their refresh tokens are revoked and their access tokens refused
// from the next request on.
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
	return u, s.endUserSessions(ctx, u.ID, now)
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
