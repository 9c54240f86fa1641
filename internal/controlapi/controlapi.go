// Package controlapi serves Tollgate's control-plane HTTP API under /api/v1:
// sign-up and login for users, the management of an organization's API keys
// and apps, and its usage reports (series and request log), with a dashboard
// access token. Handlers return errors; apierror turns them into the common
// error body.
package controlapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// AuditLister reads the audit log.
type AuditLister interface {
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
}

// OrgGetter reads organizations.
type OrgGetter interface {
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
}

// Options are the services the API serves.
type Options struct {
	Accounts *accounts.Service
	Keys     *credentials.Service
	Apps     *oauth.Service
	Audit    AuditLister
	Orgs     OrgGetter
	// Usage serves /api/v1/usage; nil: those paths are not served.
	Usage UsageReader
	// Allowance reports the plan in usage reports; nil: every organization
	// is reported unlimited.
	Allowance AllowanceReader
	Clock     clock.Clock
	MaxBody   int64 // bound of JSON request bodies
}

// API is the control-plane API. Build it with New.
type API struct {
	accounts  *accounts.Service
	keys      *credentials.Service
	apps      *oauth.Service
	audit     AuditLister
	orgs      OrgGetter
	usage     UsageReader
	allowance AllowanceReader
	clock     clock.Clock
	maxBody   int64
	mux       *http.ServeMux
}

// New returns the API.
func New(o Options) *API {
	a := &API{
		accounts: o.Accounts, keys: o.Keys, apps: o.Apps, audit: o.Audit, orgs: o.Orgs,
		usage: o.Usage, allowance: o.Allowance,
		clock: o.Clock, maxBody: o.MaxBody, mux: http.NewServeMux(),
	}
	handle := func(pattern string, h apierror.HandlerFunc) { a.mux.Handle(pattern, h) }
	handle("POST /api/v1/auth/email/register", a.register)
	handle("POST /api/v1/auth/email/login", a.login)
	handle("POST /api/v1/auth/refresh", a.refresh)
	handle("POST /api/v1/auth/logout", a.logout)
	handle("GET /api/v1/me", a.authed(a.me))
	handle("POST /api/v1/apikeys", a.authed(a.createKey))
	handle("GET /api/v1/apikeys", a.authed(a.listKeys))
	handle("GET /api/v1/apikeys/{id}", a.authed(a.getKey))
	handle("PATCH /api/v1/apikeys/{id}", a.authed(a.updateKey))
	handle("DELETE /api/v1/apikeys/{id}", a.authed(a.revokeKey))
	handle("POST /api/v1/apps", a.authed(a.createApp))
	handle("GET /api/v1/apps", a.authed(a.listApps))
	handle("GET /api/v1/apps/{id}", a.authed(a.getApp))
	handle("PATCH /api/v1/apps/{id}", a.authed(a.updateApp))
	handle("DELETE /api/v1/apps/{id}", a.authed(a.deleteApp))
	handle("POST /api/v1/apps/{id}/rotate-secret", a.authed(a.rotateSecret))
	handle("POST /api/v1/apps/{id}/revoke-tokens", a.authed(a.revokeAppTokens))
	handle("GET /api/v1/audit", a.authed(a.listAudit))
	if a.usage != nil {
		handle("GET /api/v1/usage", a.authed(a.getUsage))
		handle("GET /api/v1/usage/requests", a.authed(a.listRequests))
	}
	return a
}

// ServeHTTP routes the request; unknown paths and methods get the common
// error body rather than net/http's plain text.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		httpx.NotFoundOrMethod(a.mux, w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) decode(r *http.Request, v any) error {
	return httpx.DecodeJSON(r, a.maxBody, v)
}

func clientIP(r *http.Request) string { return reqinfo.From(r.Context()).ClientIP.String() }

// --- sign-up and sessions ---

type registerRequest struct {
	Email            string `json:"email"`
	Password         string `json:"password"`
	OrganizationName string `json:"organization_name"`
}

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	var req registerRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.OrganizationName) == "" {
		req.OrganizationName = req.Email
	}
	err := a.accounts.Register(r.Context(), accounts.RegisterInput{
		Email: req.Email, Password: req.Password, OrganizationName: req.OrganizationName,
	}, reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, map[string]string{
		"status":  string(store.UserPending),
		"message": "Registration received. An operator must activate the account before you can log in.",
	})
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	pair, err := a.accounts.Login(r.Context(), req.Email, req.Password, reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, pair)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	pair, err := a.accounts.Refresh(r.Context(), req.RefreshToken, reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, pair)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	var req refreshRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	if err := a.accounts.Logout(r.Context(), req.RefreshToken); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authed wraps a handler that needs a logged-in user.
func (a *API) authed(h func(http.ResponseWriter, *http.Request, accounts.Session) error) apierror.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token, ok := httpx.BearerToken(r)
		if !ok {
			return apierror.ErrUnauthorized.WithHeader("WWW-Authenticate", `Bearer realm="tollgate"`)
		}
		sess, err := a.accounts.Authenticate(r.Context(), token)
		if err != nil {
			if e := apierror.From(err); e.Status == http.StatusUnauthorized {
				return e.WithHeader("WWW-Authenticate", `Bearer realm="tollgate", error="invalid_token"`)
			}
			return err
		}
		return h(w, r, sess)
	}
}

func (a *API) me(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	org, err := a.orgs.GetOrganization(r.Context(), s.User.OrgID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"user":         UserView(s.User),
		"organization": OrganizationView(org),
	})
}

func actor(r *http.Request, s accounts.Session) store.Actor {
	return store.Actor{Type: store.ActorUser, ID: s.User.ID, IP: clientIP(r)}
}

var errRole = apierror.New(http.StatusForbidden, apierror.Forbidden, "only an owner or admin of the organization may change its credentials").
	WithReason("role")

func canManage(s accounts.Session) error {
	if s.User.Role == store.RoleOwner || s.User.Role == store.RoleAdmin {
		return nil
	}
	return errRole
}

// --- API keys ---

// CreateKeyRequest is the body of POST /api/v1/apikeys.
type CreateKeyRequest struct {
	Name        string     `json:"name"`
	AppID       string     `json:"app_id"`
	ExpiresAt   *Timestamp `json:"expires_at"`
	Scopes      []string   `json:"scopes"`
	IPAllowlist Allowlist  `json:"ip_allowlist"`
	// SigningSecret asks for an HMAC secret to sign requests with.
	SigningSecret     bool `json:"signing_secret"`
	SignatureRequired bool `json:"signature_required"`
}

// Input converts the request for the credentials service.
func (c CreateKeyRequest) Input() credentials.CreateInput {
	in := credentials.CreateInput{
		Name: c.Name, AppID: c.AppID, Scopes: c.Scopes, IPAllowlist: c.IPAllowlist.List,
		SigningSecret: c.SigningSecret, SignatureRequired: c.SignatureRequired,
	}
	if c.ExpiresAt != nil {
		in.ExpiresAt = c.ExpiresAt.Time
	}
	return in
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	var req CreateKeyRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	created, err := a.keys.Create(r.Context(), s.User.OrgID, req.Input(), actor(r, s))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/apikeys/"+created.Key.ID)
	return httpx.WriteJSON(w, http.StatusCreated, CreatedAPIKey{
		APIKey: APIKeyView(created.Key, a.clock.Now()), Key: created.Secret, SigningSecret: created.SigningSecret, Warning: ShownOnce,
	})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	keys, err := a.keys.List(r.Context(), s.User.OrgID)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	out := List[APIKey]{Data: make([]APIKey, 0, len(keys))}
	for _, k := range keys {
		out.Data = append(out.Data, APIKeyView(k, now))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	k, err := a.keys.Get(r.Context(), s.User.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, APIKeyView(k, a.clock.Now()))
}

type updateKeyRequest struct {
	Name        Optional[string]    `json:"name"`
	ExpiresAt   Optional[Timestamp] `json:"expires_at"`
	Scopes      Optional[[]string]  `json:"scopes"`
	IPAllowlist Optional[Allowlist] `json:"ip_allowlist"`
	// SignatureRequired: null means false.
	SignatureRequired Optional[bool] `json:"signature_required"`
}

func (a *API) updateKey(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	acceptMergePatch(r)
	var req updateKeyRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	var p credentials.Patch
	if req.Name.Set {
		if req.Name.Null {
			return apierror.Invalid("name", "name cannot be null")
		}
		p.Name = &req.Name.Value
	}
	if req.ExpiresAt.Set {
		t := req.ExpiresAt.Value.Time // null: zero time, never expires
		p.ExpiresAt = &t
	}
	if req.Scopes.Set {
		scopes := req.Scopes.Value
		p.Scopes = &scopes
	}
	if req.IPAllowlist.Set {
		l := req.IPAllowlist.Value.List
		p.IPAllowlist = &l
	}
	if req.SignatureRequired.Set {
		p.SignatureRequired = &req.SignatureRequired.Value
	}
	k, err := a.keys.Update(r.Context(), s.User.OrgID, r.PathValue("id"), p, actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, APIKeyView(k, a.clock.Now()))
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	k, err := a.keys.Revoke(r.Context(), s.User.OrgID, r.PathValue("id"), actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, APIKeyView(k, a.clock.Now()))
}

// --- audit log ---

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	f := store.AuditFilter{OrgID: s.User.OrgID, Limit: 100}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apierror.Invalid("limit", "limit must be between 1 and 1000")
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return apierror.Invalid("before", "before must be an RFC 3339 timestamp")
		}
		f.Before = t
	}
	f.TargetID = q.Get("target_id")
	entries, err := a.audit.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := List[AuditEntry]{Data: make([]AuditEntry, 0, len(entries))}
	for _, e := range entries {
		out.Data = append(out.Data, auditView(e))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}
