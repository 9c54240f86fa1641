// Package adminapi serves the operator's API on the admin listener, which
// should only be reachable from the operator's network: listing and
// activating accounts, and issuing API keys for an organization. It is
// authenticated by one bearer token from the configuration, compared in
// constant time through its SHA-256. The right token is always admitted;
// wrong ones are counted per client IP and, past the free failures, answered
// 429 with Retry-After (package throttle).
package adminapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/netip"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/throttle"
)

// OrgLister lists organizations.
type OrgLister interface {
	ListOrganizations(ctx context.Context) ([]store.Organization, error)
}

// Options configure the admin API.
type Options struct {
	// TokenSHA256 is the SHA-256 of the admin token. The zero value refuses
	// every request.
	TokenSHA256 [32]byte
	Accounts    *accounts.Service
	Keys        *credentials.Service
	Apps        *oauth.Service
	Orgs        OrgLister
	Counters    counters.Store // throttles failed token checks per client IP
	// Limits throttle failed token checks (see package throttle); zero: the
	// defaults of auth.login.
	Limits  config.Login
	Clock   clock.Clock
	MaxBody int64
	// Pprof serves the runtime profiles of net/http/pprof under
	// /admin/debug/pprof/ (config admin.pprof).
	Pprof bool
}

// API is the admin API.
type API struct {
	o      Options
	mux    *http.ServeMux
	tokens *throttle.Guard
}

// TokenHash returns what Options.TokenSHA256 expects from a configured token
// or its hex hash.
func TokenHash(token, hexHash string) ([32]byte, bool) {
	var h [32]byte
	switch {
	case token != "":
		return sha256.Sum256([]byte(token)), true
	case hexHash != "":
		b, err := hex.DecodeString(hexHash)
		if err != nil || len(b) != len(h) {
			return h, false
		}
		copy(h[:], b)
		return h, true
	}
	return h, false
}

// New returns the admin API.
func New(o Options) *API {
	if o.Limits == (config.Login{}) {
		o.Limits = config.Default().Auth.Login
	}
	a := &API{o: o, mux: http.NewServeMux(), tokens: throttle.New(o.Counters, "admin", throttle.FromConfig(o.Limits))}
	handle := func(pattern string, h apierror.HandlerFunc) { a.mux.Handle(pattern, a.authed(h)) }
	handle("GET /admin/v1/users", a.listUsers)
	handle("POST /admin/v1/users/{user}/activate", a.setStatus(store.UserActive))
	handle("POST /admin/v1/users/{user}/disable", a.setStatus(store.UserDisabled))
	handle("GET /admin/v1/organizations", a.listOrgs)
	handle("POST /admin/v1/organizations/{org}/disable", a.setOrgDisabled(true))
	handle("POST /admin/v1/organizations/{org}/enable", a.setOrgDisabled(false))
	handle("GET /admin/v1/organizations/{org}/apikeys", a.listKeys)
	handle("POST /admin/v1/organizations/{org}/apikeys", a.createKey)
	handle("DELETE /admin/v1/organizations/{org}/apikeys/{id}", a.revokeKey)
	handle("GET /admin/v1/organizations/{org}/apps", a.listApps)
	handle("DELETE /admin/v1/organizations/{org}/apps/{id}", a.deleteApp)
	handle("POST /admin/v1/organizations/{org}/apps/{id}/revoke-tokens", a.revokeAppTokens)
	handle("POST /admin/v1/bans", a.ban)
	handle("GET /admin/v1/bans/{kind}/{id}", a.getBan)
	if o.Pprof {
		a.servePprof(handle)
	}
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		httpx.NotFoundOrMethod(a.mux, w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

var (
	errAdminAuth = apierror.New(http.StatusUnauthorized, apierror.InvalidCredentials, "invalid admin token").
			WithHeader("WWW-Authenticate", `Bearer realm="tollgate-admin"`)
	errAdminThrottled = apierror.New(http.StatusTooManyRequests, apierror.RateLimited, "too many failed attempts")
)

// authed checks the admin token first: the right one is always admitted,
// whoever failed before (it is a high-entropy secret). A wrong or missing
// one counts against the client IP, which past its free failures gets 429
// with Retry-After instead of 401.
func (a *API) authed(h apierror.HandlerFunc) apierror.HandlerFunc {
	var zero [32]byte
	return func(w http.ResponseWriter, r *http.Request) error {
		token, ok := httpx.BearerToken(r)
		got := sha256.Sum256([]byte(token))
		if ok && a.o.TokenSHA256 != zero && subtle.ConstantTimeCompare(got[:], a.o.TokenSHA256[:]) == 1 {
			return h(w, r)
		}
		wait, err := a.tokens.Failed(r.Context(), reqinfo.From(r.Context()).ClientIP, "")
		if err != nil {
			return err
		}
		if wait > 0 {
			return errAdminThrottled.WithRetryAfter(wait)
		}
		return errAdminAuth
	}
}

func actor(r *http.Request) store.Actor {
	return store.Actor{Type: store.ActorAdmin, IP: reqinfo.From(r.Context()).ClientIP.String()}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	status := store.UserStatus(r.URL.Query().Get("status"))
	switch status {
	case "", store.UserPending, store.UserActive, store.UserDisabled:
	default:
		return apierror.Invalid("status", "status must be pending, active or disabled")
	}
	users, err := a.o.Accounts.ListUsers(r.Context(), status)
	if err != nil {
		return err
	}
	out := controlapi.List[controlapi.User]{Data: make([]controlapi.User, 0, len(users))}
	for _, u := range users {
		out.Data = append(out.Data, controlapi.UserView(u))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) setStatus(status store.UserStatus) apierror.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := a.o.Accounts.SetStatus(r.Context(), r.PathValue("user"), status, actor(r))
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, controlapi.UserView(u))
	}
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request) error {
	orgs, err := a.o.Orgs.ListOrganizations(r.Context())
	if err != nil {
		return err
	}
	out := controlapi.List[controlapi.Organization]{Data: make([]controlapi.Organization, 0, len(orgs))}
	for _, o := range orgs {
		out.Data = append(out.Data, controlapi.OrganizationView(o))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// orgStatusRequest is the body of POST /admin/v1/organizations/{org}/disable
// (reason required) and /enable (no body, or an empty object).
type orgStatusRequest struct {
	Reason string `json:"reason"`
}

// setOrgDisabled disables or enables an organization: while it is disabled,
// its keys, tokens, wallets and logins are refused with 403 FORBIDDEN,
// reason organization_disabled, on every node, and its open WebSocket
// sessions are closed.
func (a *API) setOrgDisabled(disable bool) apierror.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req orgStatusRequest
		if r.ContentLength != 0 || disable {
			if err := httpx.DecodeJSON(r, a.o.MaxBody, &req); err != nil {
				return err
			}
		}
		if !disable && req.Reason != "" {
			return apierror.Invalid("reason", "enabling takes no reason")
		}
		org, err := a.o.Accounts.SetOrgDisabled(r.Context(), r.PathValue("org"), disable, req.Reason, actor(r))
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, controlapi.OrganizationView(org))
	}
}

func (a *API) org(r *http.Request) (store.Organization, error) {
	return a.o.Accounts.FindOrganization(r.Context(), r.PathValue("org"))
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	keys, err := a.o.Keys.List(r.Context(), org.ID)
	if err != nil {
		return err
	}
	now := a.o.Clock.Now()
	out := controlapi.List[controlapi.APIKey]{Data: make([]controlapi.APIKey, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, controlapi.APIKeyView(k, now))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	var req controlapi.CreateKeyRequest
	if err := httpx.DecodeJSON(r, a.o.MaxBody, &req); err != nil {
		return err
	}
	created, err := a.o.Keys.Create(r.Context(), org.ID, req.Input(), actor(r))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusCreated, controlapi.CreatedAPIKey{
		APIKey: controlapi.APIKeyView(created.Key, a.o.Clock.Now()), Key: created.Secret, Warning: controlapi.ShownOnce,
	})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	k, err := a.o.Keys.Revoke(r.Context(), org.ID, r.PathValue("id"), actor(r))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, controlapi.APIKeyView(k, a.o.Clock.Now()))
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	apps, err := a.o.Apps.ListApps(r.Context(), org.ID)
	if err != nil {
		return err
	}
	out := controlapi.List[controlapi.App]{Data: make([]controlapi.App, 0, len(apps))}
	for _, app := range apps {
		out.Data = append(out.Data, controlapi.AppView(app))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// deleteApp is the operator's answer to a leaked client secret: the app's
// secret, tokens and API keys stop working at once.
func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	revoked, err := a.o.Apps.DeleteApp(r.Context(), org.ID, id, actor(r))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, controlapi.DeletedApp{ID: id, Deleted: true, RevokedAPIKeys: revoked})
}

func (a *API) revokeAppTokens(w http.ResponseWriter, r *http.Request) error {
	org, err := a.org(r)
	if err != nil {
		return err
	}
	app, err := a.o.Apps.RevokeTokens(r.Context(), org.ID, r.PathValue("id"), actor(r))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, controlapi.AppView(app))
}

// banRequest is the body of POST /admin/v1/bans.
type banRequest struct {
	// Kind is ip, credential or org.
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Duration is a Go duration ("15m", "24h"), at most 30 days.
	Duration string `json:"duration"`
}

// banView describes a ban.
type banView struct {
	Kind             string `json:"kind"`
	ID               string `json:"id"`
	Banned           bool   `json:"banned"`
	RemainingSeconds int64  `json:"remaining_seconds"`
}

// maxBan bounds a ban set by hand.
const maxBan = 30 * 24 * time.Hour

func banTarget(kind, id string) (string, error) {
	switch kind {
	case gateway.BanIP:
		ip, err := netip.ParseAddr(id)
		if err != nil {
			return "", apierror.Invalid("id", "not an IP address")
		}
		return gateway.BanKey(kind, ip.Unmap().String()), nil
	case gateway.BanCredential, gateway.BanOrganization:
		if id == "" || len(id) > 64 {
			return "", apierror.Invalid("id", "a credential or organization ID is required")
		}
		return gateway.BanKey(kind, id), nil
	}
	return "", apierror.Invalid("kind", "kind must be ip, credential or org")
}

// ban bans an address, a credential or an organization for a while: the
// gateway refuses it with 403 FORBIDDEN, reason banned, on every node that
// shares the counter store.
func (a *API) ban(w http.ResponseWriter, r *http.Request) error {
	var req banRequest
	if err := httpx.DecodeJSON(r, a.o.MaxBody, &req); err != nil {
		return err
	}
	key, err := banTarget(req.Kind, req.ID)
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d < time.Second || d > maxBan {
		return apierror.Invalid("duration", "a duration between 1s and 720h, such as 15m")
	}
	if err := a.o.Counters.Ban(r.Context(), key, d); err != nil {
		return err
	}
	return a.writeBan(w, r, http.StatusCreated, req.Kind, req.ID, key)
}

func (a *API) getBan(w http.ResponseWriter, r *http.Request) error {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	key, err := banTarget(kind, id)
	if err != nil {
		return err
	}
	return a.writeBan(w, r, http.StatusOK, kind, id, key)
}

func (a *API) writeBan(w http.ResponseWriter, r *http.Request, status int, kind, id, key string) error {
	d, err := a.o.Counters.Banned(r.Context(), key)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, status, banView{Kind: kind, ID: id, Banned: d > 0, RemainingSeconds: apierror.Seconds(d)})
}
