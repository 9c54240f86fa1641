package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/events"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/apikey"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/validate"
)

// Limits on apps.
const (
	// SecretLength is the length of a client secret: base62 characters from
	// crypto/rand, about 381 bits (64 random characters).
	SecretLength  = 64
	MaxNameLength = 64
	// MaxAppsPerOrg bounds the apps of one organization.
	MaxAppsPerOrg = 100
	// DefaultEnvironment is the environment of an app created without one.
	DefaultEnvironment = "production"
)

var environmentRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// AppInput describes a new app.
type AppInput struct {
	Name          string // e.g. prod-main, test-dev, ci-pipeline, monitoring
	Environment   string // e.g. production, test; default production
	AllowedScopes []string
	IPAllowlist   ipallow.List
}

// AppPatch changes some fields of an app; nil fields are left alone.
type AppPatch struct {
	Name          *string
	Environment   *string
	AllowedScopes *[]string
	IPAllowlist   *ipallow.List
}

// CreatedApp is an app together with its client secret, which exists nowhere
// else: show it once and forget it.
type CreatedApp struct {
	App    store.App
	Secret string
}

var (
	errNoApp      = apierror.New(http.StatusNotFound, apierror.NotFound, "no such app")
	errTooManyApp = apierror.New(http.StatusConflict, apierror.Conflict,
		fmt.Sprintf("an organization may have at most %d apps; delete one first", MaxAppsPerOrg))
)

func newSecret() (secret string, hash []byte, err error) {
	var b [SecretLength]byte
	if err := apikey.RandomBase62(b[:]); err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(b[:])
	return string(b[:]), h[:], nil
}

func checkEnvironment(env string) (string, error) {
	env = strings.TrimSpace(env)
	if env == "" {
		return DefaultEnvironment, nil
	}
	if !environmentRE.MatchString(env) {
		return "", apierror.Invalid("environment", "environment must be 1-32 lowercase letters, digits and dashes, starting with a letter (such as production or test)")
	}
	return env, nil
}

// CreateApp creates an app for the organization, with a new client ID and
// secret.
func (s *Service) CreateApp(ctx context.Context, orgID string, in AppInput, actor store.Actor) (CreatedApp, error) {
	name, err := validate.Name("name", in.Name, MaxNameLength)
	if err != nil {
		return CreatedApp{}, err
	}
	env, err := checkEnvironment(in.Environment)
	if err != nil {
		return CreatedApp{}, err
	}
	scopes, err := validate.Scopes("allowed_scopes", in.AllowedScopes)
	if err != nil {
		return CreatedApp{}, err
	}
	existing, err := s.store.ListApps(ctx, orgID)
	if err != nil {
		return CreatedApp{}, err
	}
	if len(existing) >= MaxAppsPerOrg {
		return CreatedApp{}, errTooManyApp
	}
	secret, hash, err := newSecret()
	if err != nil {
		return CreatedApp{}, err
	}
	now := s.o.Clock.Now()
	app := store.App{
		ID:            ids.New(ids.App),
		OrgID:         orgID,
		Name:          name,
		Environment:   env,
		ClientID:      ids.New(ids.Client),
		SecretHash:    hash,
		AllowedScopes: scopes,
		IPAllowlist:   in.IPAllowlist.Strings(),
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	details := map[string]string{"name": name, "environment": env, "client_id": app.ClientID}
	if err := s.store.CreateApp(ctx, app, actor.Entry(orgID, "app.create", "app", app.ID, details)); err != nil {
		return CreatedApp{}, fmt.Errorf("oauth: create app: %w", err)
	}
	return CreatedApp{App: app, Secret: secret}, nil
}

// GetApp returns one of the organization's apps.
func (s *Service) GetApp(ctx context.Context, orgID, id string) (store.App, error) {
	app, err := s.store.GetApp(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && app.OrgID != orgID) {
		return store.App{}, errNoApp
	}
	return app, err
}

// ListApps returns the organization's apps, oldest first.
func (s *Service) ListApps(ctx context.Context, orgID string) ([]store.App, error) {
	return s.store.ListApps(ctx, orgID)
}

// UpdateApp edits an app. Narrowing its allowed scopes or IP allowlist
// applies to the tokens it already holds as soon as they are read again.
func (s *Service) UpdateApp(ctx context.Context, orgID, id string, p AppPatch, actor store.Actor) (store.App, error) {
	details := map[string]string{}
	var name, env string
	var scopes []string
	var err error
	if p.Name != nil {
		if name, err = validate.Name("name", *p.Name, MaxNameLength); err != nil {
			return store.App{}, err
		}
		details["name"] = name
	}
	if p.Environment != nil {
		if env, err = checkEnvironment(*p.Environment); err != nil {
			return store.App{}, err
		}
		details["environment"] = env
	}
	if p.AllowedScopes != nil {
		if scopes, err = validate.Scopes("allowed_scopes", *p.AllowedScopes); err != nil {
			return store.App{}, err
		}
		details["allowed_scopes"] = strings.Join(scopes, " ")
	}
	if p.IPAllowlist != nil {
		details["ip_allowlist"] = p.IPAllowlist.String()
	}
	if len(details) == 0 {
		return store.App{}, apierror.Invalid("", "nothing to change: give name, environment, allowed_scopes or ip_allowlist")
	}
	now := s.o.Clock.Now()
	app, err := s.updateApp(ctx, orgID, id, func(app store.App) store.App {
		if p.Name != nil {
			app.Name = name
		}
		if p.Environment != nil {
			app.Environment = env
		}
		if p.AllowedScopes != nil {
			app.AllowedScopes = scopes
		}
		if p.IPAllowlist != nil {
			app.IPAllowlist = p.IPAllowlist.Strings()
		}
		app.UpdatedAt = now
		return app
	}, actor.Entry(orgID, "app.update", "app", id, details))
	if err == nil && (p.AllowedScopes != nil || p.IPAllowlist != nil) {
		s.endSessions(app.ClientID) // they reconnect under the new terms
	}
	return app, err
}

// updateApp applies change to one of the organization's apps and forgets
// the tokens cached for it.
func (s *Service) updateApp(ctx context.Context, orgID, id string, change func(store.App) store.App, a store.AuditEntry) (store.App, error) {
	app, err := s.store.UpdateApp(ctx, id, func(app store.App) (store.App, error) {
		if app.OrgID != orgID {
			return app, errNoApp
		}
		return change(app), nil
	}, a)
	if errors.Is(err, store.ErrNotFound) {
		return store.App{}, errNoApp
	}
	if err != nil {
		return store.App{}, err
	}
	s.forgetClient(app.ClientID)
	return app, nil
}

// notBefore returns the TokensNotBefore that revokes every token issued up
// to now. Tokens carry iat in whole seconds, so it is rounded up to the next
// second; Issue never stamps a token earlier than it.
func notBefore(now time.Time) time.Time {
	return now.Truncate(time.Second).Add(time.Second)
}

// RotateSecret gives an app a new client secret; the old one stops working
// at once. With revokeTokens, every token issued before the rotation is
// refused too (the response to a leaked secret); without, tokens in flight
// stay valid until they expire.
func (s *Service) RotateSecret(ctx context.Context, orgID, id string, revokeTokens bool, actor store.Actor) (CreatedApp, error) {
	secret, hash, err := newSecret()
	if err != nil {
		return CreatedApp{}, err
	}
	now := s.o.Clock.Now()
	details := map[string]string{"revoke_tokens": fmt.Sprint(revokeTokens)}
	app, err := s.updateApp(ctx, orgID, id, func(app store.App) store.App {
		app.SecretHash = hash
		if revokeTokens {
			app.TokensNotBefore = notBefore(now)
		}
		app.UpdatedAt = now
		return app
	}, actor.Entry(orgID, "app.rotate_secret", "app", id, details))
	if err != nil {
		return CreatedApp{}, err
	}
	if revokeTokens {
		s.endSessions(app.ClientID)
	}
	return CreatedApp{App: app, Secret: secret}, nil
}

// RevokeTokens refuses every access token issued to the app so far; the app
// keeps its secret and may ask for new tokens.
func (s *Service) RevokeTokens(ctx context.Context, orgID, id string, actor store.Actor) (store.App, error) {
	now := s.o.Clock.Now()
	app, err := s.updateApp(ctx, orgID, id, func(app store.App) store.App {
		app.TokensNotBefore = notBefore(now)
		app.UpdatedAt = now
		return app
	}, actor.Entry(orgID, "app.revoke_tokens", "app", id, nil))
	if err == nil {
		s.endSessions(app.ClientID)
	}
	return app, err
}

// DeleteApp deletes an app and invalidates at once everything issued to it:
// its API keys are revoked and its access tokens refused. It returns the IDs
// of the keys it revoked.
func (s *Service) DeleteApp(ctx context.Context, orgID, id string, actor store.Actor) ([]string, error) {
	app, err := s.GetApp(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	details := map[string]string{"name": app.Name, "client_id": app.ClientID}
	revoked, err := s.store.DeleteApp(ctx, id, s.o.Clock.Now(), actor.Entry(orgID, "app.delete", "app", id, details))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoApp
	}
	if err != nil {
		return nil, err
	}
	if s.o.Keys != nil {
		s.o.Keys.InvalidateKeys(revoked)
	}
	s.forgetClient(app.ClientID)
	s.endSessions(app.ClientID)
	if s.o.Events != nil {
		keys := revoked
		if keys == nil {
			keys = []string{}
		}
		s.o.Events(ctx, orgID, events.AppDeleted, map[string]any{
			"app":              map[string]string{"id": app.ID, "name": app.Name, "client_id": app.ClientID},
			"revoked_api_keys": keys,
		})
	}
	return revoked, nil
}
