package controlapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/store"
)

// App is the public view of an app: never its secret or hash.
type App struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	Environment     string     `json:"environment"`
	ClientID        string     `json:"client_id"`
	AllowedScopes   []string   `json:"allowed_scopes"`
	IPAllowlist     []string   `json:"ip_allowlist"`
	TokensNotBefore *time.Time `json:"tokens_not_before"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// AppView renders a.
func AppView(a store.App) App {
	return App{
		ID: a.ID, Name: a.Name, Environment: a.Environment, ClientID: a.ClientID,
		AllowedScopes: nonNil(a.AllowedScopes), IPAllowlist: nonNil(a.IPAllowlist),
		TokensNotBefore: optTime(a.TokensNotBefore), CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt),
	}
}

// AppWithSecret is the answer to an app creation or secret rotation: the
// only time the client secret is ever shown.
type AppWithSecret struct {
	App
	ClientSecret string `json:"client_secret"`
	Warning      string `json:"warning"`
}

// CreateAppRequest is the body of POST /api/v1/apps.
type CreateAppRequest struct {
	Name          string    `json:"name"`
	Environment   string    `json:"environment"`
	AllowedScopes []string  `json:"allowed_scopes"`
	IPAllowlist   Allowlist `json:"ip_allowlist"`
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	var req CreateAppRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	created, err := a.apps.CreateApp(r.Context(), s.User.OrgID, oauth.AppInput{
		Name: req.Name, Environment: req.Environment, AllowedScopes: req.AllowedScopes, IPAllowlist: req.IPAllowlist.List,
	}, actor(r, s))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/apps/"+created.App.ID)
	return httpx.WriteJSON(w, http.StatusCreated, withSecret(created))
}

func withSecret(c oauth.CreatedApp) AppWithSecret {
	return AppWithSecret{App: AppView(c.App), ClientSecret: c.Secret, Warning: ShownOnce}
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	apps, err := a.apps.ListApps(r.Context(), s.User.OrgID)
	if err != nil {
		return err
	}
	out := List[App]{Data: make([]App, 0, len(apps))}
	for _, app := range apps {
		out.Data = append(out.Data, AppView(app))
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	app, err := a.apps.GetApp(r.Context(), s.User.OrgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, AppView(app))
}

type updateAppRequest struct {
	Name          Optional[string]    `json:"name"`
	Environment   Optional[string]    `json:"environment"`
	AllowedScopes Optional[[]string]  `json:"allowed_scopes"`
	IPAllowlist   Optional[Allowlist] `json:"ip_allowlist"`
}

func (a *API) updateApp(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	acceptMergePatch(r)
	var req updateAppRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	var p oauth.AppPatch
	if req.Name.Set {
		p.Name = &req.Name.Value // null: "" fails validation
	}
	if req.Environment.Set {
		p.Environment = &req.Environment.Value // null: the default
	}
	if req.AllowedScopes.Set {
		scopes := req.AllowedScopes.Value
		p.AllowedScopes = &scopes
	}
	if req.IPAllowlist.Set {
		l := req.IPAllowlist.Value.List
		p.IPAllowlist = &l
	}
	app, err := a.apps.UpdateApp(r.Context(), s.User.OrgID, r.PathValue("id"), p, actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, AppView(app))
}

// acceptMergePatch lets RFC 7396 bodies through the JSON decoder: they read
// the same here.
func acceptMergePatch(r *http.Request) {
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/merge-patch+json") {
		r.Header.Set("Content-Type", "application/json")
	}
}

// DeletedApp is the answer to an app deletion: with the app go its client
// secret, its access tokens and its API keys, listed here.
type DeletedApp struct {
	ID             string   `json:"id"`
	Deleted        bool     `json:"deleted"`
	RevokedAPIKeys []string `json:"revoked_api_keys"`
}

// MarshalJSON renders no revoked keys as [], not null.
func (d DeletedApp) MarshalJSON() ([]byte, error) {
	type plain DeletedApp
	d.RevokedAPIKeys = nonNil(d.RevokedAPIKeys)
	return json.Marshal(plain(d))
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	id := r.PathValue("id")
	revoked, err := a.apps.DeleteApp(r.Context(), s.User.OrgID, id, actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, DeletedApp{ID: id, Deleted: true, RevokedAPIKeys: revoked})
}

type rotateSecretRequest struct {
	// RevokeTokens refuses the tokens issued before the rotation; default
	// true, the safe answer to a leaked secret.
	RevokeTokens *bool `json:"revoke_tokens"`
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	var req rotateSecretRequest
	if r.ContentLength != 0 {
		if err := a.decode(r, &req); err != nil {
			return err
		}
	}
	revoke := req.RevokeTokens == nil || *req.RevokeTokens
	created, err := a.apps.RotateSecret(r.Context(), s.User.OrgID, r.PathValue("id"), revoke, actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, withSecret(created))
}

func (a *API) revokeAppTokens(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	if err := canManage(s); err != nil {
		return err
	}
	app, err := a.apps.RevokeTokens(r.Context(), s.User.OrgID, r.PathValue("id"), actor(r, s))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, AppView(app))
}
