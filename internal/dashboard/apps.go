package dashboard

import (
	"net/http"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/oauth"
)

// appRoutes registers the apps pages.
func (d *Dashboard) appRoutes() {
	d.mux.Handle("GET /dashboard/apps", d.page(d.appsPage))
	d.mux.Handle("POST /dashboard/apps", d.page(d.createApp))
	d.mux.Handle("POST /dashboard/apps/{id}/rotate-secret", d.page(d.rotateAppSecret))
	d.mux.Handle("POST /dashboard/apps/{id}/delete", d.page(d.deleteApp))
}

// appNotices are the notices of the apps page after a redirect, by the
// value of its notice parameter.
var appNotices = map[string]string{
	"deleted": "The app was deleted. Its client secret, its access tokens and its API keys no longer work.",
}

// appForm is what the user typed in the create form.
type appForm struct {
	Name, Scopes string
}

// shownApp is an app just created or given a new secret: its secret is
// shown once.
type shownApp struct {
	App     controlapi.App
	Secret  string
	Rotated bool
	// TokensRevoked: the rotation also refused the tokens issued before it.
	TokensRevoked bool
}

// appsData is the apps page's.
type appsData struct {
	Apps      []controlapi.App
	CanManage bool
	Form      appForm
	Created   *shownApp
	Warning   string
}

// appList renders the apps page, with v's messages and data's form and
// secret, and the given status.
func (d *Dashboard) appList(w http.ResponseWriter, r *http.Request, s *session, status int, v view, data appsData) error {
	apps, err := d.o.Apps.ListApps(r.Context(), s.Org.ID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		data.Apps = append(data.Apps, controlapi.AppView(a))
	}
	data.CanManage = s.CanManage()
	data.Warning = controlapi.ShownOnce
	v.Title, v.Nav, v.Session, v.Org, v.CSRF, v.Data = "Apps", "apps", s, s.Org, s.CSRF, data
	d.render(w, r, status, "apps", v)
	return nil
}

func (d *Dashboard) appsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return d.appList(w, r, s, http.StatusOK, view{Notice: appNotices[r.URL.Query().Get("notice")]}, appsData{})
}

// appFailed shows the apps page again with err, keeping the form.
func (d *Dashboard) appFailed(w http.ResponseWriter, r *http.Request, s *session, form appForm, err error) error {
	var v view
	v.Error, v.Field = errorOf(err)
	return d.appList(w, r, s, apierror.From(err).Status, v, appsData{Form: form})
}

func (d *Dashboard) createApp(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	form := appForm{Name: r.PostFormValue("name"), Scopes: r.PostFormValue("allowed_scopes")}
	created, err := d.o.Apps.CreateApp(r.Context(), s.Org.ID, oauth.AppInput{
		Name: form.Name, AllowedScopes: parseScopeField(form.Scopes),
	}, s.actor(r))
	if err != nil {
		return d.appFailed(w, r, s, form, err)
	}
	return d.appList(w, r, s, http.StatusCreated, view{Notice: "App " + created.App.Name + " created."},
		appsData{Created: &shownApp{App: controlapi.AppView(created.App), Secret: created.Secret}})
}

func (d *Dashboard) rotateAppSecret(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	revoke := r.PostFormValue("revoke_tokens") != ""
	created, err := d.o.Apps.RotateSecret(r.Context(), s.Org.ID, r.PathValue("id"), revoke, s.actor(r))
	if err != nil {
		return d.appFailed(w, r, s, appForm{}, err)
	}
	return d.appList(w, r, s, http.StatusOK, view{},
		appsData{Created: &shownApp{App: controlapi.AppView(created.App), Secret: created.Secret, Rotated: true, TokensRevoked: revoke}})
}

func (d *Dashboard) deleteApp(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	if _, err := d.o.Apps.DeleteApp(r.Context(), s.Org.ID, r.PathValue("id"), s.actor(r)); err != nil {
		return d.appFailed(w, r, s, appForm{}, err)
	}
	redirect(w, r, Prefix+"apps?notice=deleted")
	return nil
}
