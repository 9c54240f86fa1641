package dashboard

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/store"
)

// keyRoutes registers the keys pages.
func (d *Dashboard) keyRoutes() {
	d.mux.Handle("GET /dashboard/keys", d.page(d.keysPage))
	d.mux.Handle("POST /dashboard/keys", d.page(d.createKey))
	d.mux.Handle("GET /dashboard/keys/{id}", d.page(d.keyPage))
	d.mux.Handle("POST /dashboard/keys/{id}", d.page(d.updateKey))
	d.mux.Handle("POST /dashboard/keys/{id}/revoke", d.page(d.revokeKey))
	d.mux.Handle("POST /dashboard/keys/{id}/rotate", d.page(d.rotateKey))
}

// errCredentialRole refuses a change of credentials by a member.
var errCredentialRole = apierror.New(http.StatusForbidden, apierror.Forbidden,
	"only an owner or admin of the organization may change its credentials").WithReason("role")

// keyNotices are the notices the keys pages show after a redirect, by the
// value of their notice parameter: never text from the URL itself.
var keyNotices = map[string]string{
	"revoked":   "The key was revoked. Requests with it are refused from now on.",
	"updated":   "The key was saved.",
	"unchanged": "Nothing was changed.",
}

// keyForm is what the user typed in a key form, kept when it is shown again
// with an error.
type keyForm struct {
	Name, Scopes, IPAllowlist, Expiry, AppID string
	SigningSecret, SignatureRequired         bool
}

// keyRow is a key of the list.
type keyRow struct {
	controlapi.APIKey
	AppName string
}

// shownKey is a key just created, with its secrets: shown once.
type shownKey struct {
	Key           controlapi.APIKey
	Secret        string
	SigningSecret string
}

// keyRotation tells which key replaced which, and when the old one stops.
type keyRotation struct {
	Old controlapi.APIKey
	// Ends is when the old key stops working; Revoked: it was revoked at
	// once; Kept: it already expired sooner than the grace.
	Ends          time.Time
	Revoked, Kept bool
}

// keysData is the keys page's.
type keysData struct {
	Keys      []keyRow
	Apps      []controlapi.App
	CanManage bool
	Form      keyForm
	// Created is the key just created or rotated in, with its secrets;
	// Rotation says what became of the key it replaces.
	Created  *shownKey
	Rotation *keyRotation
	Warning  string
	Graces   []graceOption
}

// graceOption is a choice of when a rotated key stops.
type graceOption struct {
	Value, Label string
	Default      bool
}

// graces are the choices of the rotate form, the default last but one.
var graces = []graceOption{
	{Value: "now", Label: "at once"},
	{Value: "1h", Label: "in 1 hour"},
	{Value: "24h", Label: "in 24 hours", Default: true},
	{Value: "7d", Label: "in 7 days"},
}

// graceDuration returns the grace of a rotate form's value; 0 is at once.
func graceDuration(v string) (time.Duration, error) {
	switch v {
	case "now":
		return 0, nil
	case "1h":
		return time.Hour, nil
	case "24h", "":
		return 24 * time.Hour, nil
	case "7d":
		return 7 * 24 * time.Hour, nil
	}
	return 0, apierror.Invalid("grace", "choose when the old key stops: at once, in 1 hour, in 24 hours or in 7 days")
}

// parseScopeField splits scopes separated by spaces, commas or new lines.
func parseScopeField(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// parseAllowlistField parses an allowlist of one entry a line, or entries
// separated by commas; blank lines are skipped.
func parseAllowlistField(s string) (ipallow.List, error) {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	l, err := ipallow.Parse(lines)
	if err != nil {
		return ipallow.List{}, apierror.Invalid("ip_allowlist", "IP allowlist: %s", err.Error())
	}
	return l, nil
}

// parseExpiryField parses a date field: the key stops working at 00:00 UTC
// that day. Empty is the zero time: never.
func parseExpiryField(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, apierror.Invalid("expires_at", "the expiry must be a date such as 2027-01-31, or empty for a key that never expires")
	}
	return t.UTC(), nil
}

// keyList renders the keys page, with v's messages, data's form and
// secrets, and the given status.
func (d *Dashboard) keyList(w http.ResponseWriter, r *http.Request, s *session, status int, v view, data keysData) error {
	ctx := r.Context()
	keys, err := d.o.Keys.List(ctx, s.Org.ID)
	if err != nil {
		return err
	}
	apps, err := d.o.Apps.ListApps(ctx, s.Org.ID)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(apps))
	for _, a := range apps {
		data.Apps = append(data.Apps, controlapi.AppView(a))
		names[a.ID] = a.Name
	}
	now := d.o.Clock.Now()
	for _, k := range keys {
		data.Keys = append(data.Keys, keyRow{APIKey: controlapi.APIKeyView(k, now), AppName: names[k.AppID]})
	}
	data.CanManage = s.CanManage()
	data.Warning = controlapi.ShownOnce
	data.Graces = graces
	v.Title, v.Nav, v.Session, v.Org, v.CSRF, v.Data = "API keys", "keys", s, s.Org, s.CSRF, data
	d.render(w, r, status, "keys", v)
	return nil
}

func (d *Dashboard) keysPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return d.keyList(w, r, s, http.StatusOK, view{Notice: keyNotices[r.URL.Query().Get("notice")]}, keysData{})
}

// keyFailed shows the keys page again with err about the user's form.
func (d *Dashboard) keyFailed(w http.ResponseWriter, r *http.Request, s *session, form keyForm, err error) error {
	var v view
	v.Error, v.Field = errorOf(err)
	return d.keyList(w, r, s, apierror.From(err).Status, v, keysData{Form: form})
}

func (d *Dashboard) createKey(w http.ResponseWriter, r *http.Request, s *session) error {
	form := keyForm{
		Name: r.PostFormValue("name"), Scopes: r.PostFormValue("scopes"), IPAllowlist: r.PostFormValue("ip_allowlist"),
		Expiry: r.PostFormValue("expires_at"), AppID: r.PostFormValue("app_id"),
		SigningSecret: r.PostFormValue("signing_secret") != "", SignatureRequired: r.PostFormValue("signature_required") != "",
	}
	if !s.CanManage() {
		return errCredentialRole
	}
	req := controlapi.CreateKeyRequest{
		Name: form.Name, AppID: form.AppID, Scopes: parseScopeField(form.Scopes),
		SigningSecret: form.SigningSecret, SignatureRequired: form.SignatureRequired,
	}
	var err error
	if req.IPAllowlist.List, err = parseAllowlistField(form.IPAllowlist); err != nil {
		return d.keyFailed(w, r, s, form, err)
	}
	expiry, err := parseExpiryField(form.Expiry)
	if err != nil {
		return d.keyFailed(w, r, s, form, err)
	}
	if !expiry.IsZero() {
		req.ExpiresAt = &controlapi.Timestamp{Time: expiry}
	}
	created, err := d.o.Keys.Create(r.Context(), s.Org.ID, req.Input(), s.actor(r))
	if err != nil {
		return d.keyFailed(w, r, s, form, err)
	}
	shown := &shownKey{Key: controlapi.APIKeyView(created.Key, d.o.Clock.Now()), Secret: created.Secret, SigningSecret: created.SigningSecret}
	return d.keyList(w, r, s, http.StatusCreated, view{Notice: "Key " + created.Key.Name + " created."}, keysData{Created: shown})
}

func (d *Dashboard) revokeKey(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	if _, err := d.o.Keys.Revoke(r.Context(), s.Org.ID, r.PathValue("id"), s.actor(r)); err != nil {
		return d.keyFailed(w, r, s, keyForm{}, err)
	}
	redirect(w, r, Prefix+"keys?notice=revoked")
	return nil
}

// rotateKey creates a key like an active one, shows its secret once and
// schedules the end of the old key.
func (d *Dashboard) rotateKey(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	ctx := r.Context()
	grace, err := graceDuration(r.PostFormValue("grace"))
	if err != nil {
		return d.keyFailed(w, r, s, keyForm{}, err)
	}
	old, err := d.o.Keys.Get(ctx, s.Org.ID, r.PathValue("id"))
	if err != nil {
		return d.keyFailed(w, r, s, keyForm{}, err)
	}
	now := d.o.Clock.Now()
	if st := old.Status(now); st != store.KeyActive {
		return d.keyFailed(w, r, s, keyForm{}, apierror.New(http.StatusConflict, apierror.Conflict,
			"only an active key can be rotated; this one is "+st))
	}
	allow, err := ipallow.Parse(old.IPAllowlist)
	if err != nil {
		return err
	}
	// The new key has everything of the old one, its expiry included:
	// rotating a key must not lengthen its life.
	created, err := d.o.Keys.Create(ctx, s.Org.ID, credentials.CreateInput{
		Name: old.Name, AppID: old.AppID, ExpiresAt: old.ExpiresAt, Scopes: old.Scopes, IPAllowlist: allow,
		SigningSecret: len(old.SigningSecret) > 0, SignatureRequired: old.SignatureRequired,
	}, s.actor(r))
	if err != nil {
		return d.keyFailed(w, r, s, keyForm{}, err)
	}
	rot := &keyRotation{}
	var v view
	switch end := now.Add(grace); {
	case grace == 0:
		old, err = d.o.Keys.Revoke(ctx, s.Org.ID, old.ID, s.actor(r))
		rot.Revoked, rot.Ends = true, now
	case !old.ExpiresAt.IsZero() && !old.ExpiresAt.After(end):
		rot.Kept, rot.Ends = true, old.ExpiresAt
	default:
		old, err = d.o.Keys.Update(ctx, s.Org.ID, old.ID, credentials.Patch{ExpiresAt: &end}, s.actor(r))
		rot.Ends = end
	}
	status := http.StatusOK
	if err != nil {
		// The new key exists: show its secret all the same.
		msg, _ := errorOf(err)
		v.Error = "The new key was created, but the end of the old key could not be scheduled: " + msg +
			" Revoke the old key by hand or set its expiry."
		status = apierror.From(err).Status
		rot = nil
	} else {
		rot.Old = controlapi.APIKeyView(old, now)
	}
	shown := &shownKey{Key: controlapi.APIKeyView(created.Key, now), Secret: created.Secret, SigningSecret: created.SigningSecret}
	return d.keyList(w, r, s, status, v, keysData{Created: shown, Rotation: rot})
}

// keyData is the edit page's.
type keyData struct {
	Key       keyRow
	CanManage bool
	Editable  bool // active or expired: not revoked
	Form      keyForm
	// Expiry is the exact expiry, which the date field rounds to a day;
	// "" when the key never expires.
	Expiry string
}

// keyEdit renders the edit page of k with the form's values.
func (d *Dashboard) keyEdit(w http.ResponseWriter, r *http.Request, s *session, status int, v view, k store.APIKey, form keyForm) error {
	row := keyRow{APIKey: controlapi.APIKeyView(k, d.o.Clock.Now())}
	if k.AppID != "" {
		if app, err := d.o.Apps.GetApp(r.Context(), s.Org.ID, k.AppID); err == nil {
			row.AppName = app.Name
		}
	}
	data := keyData{Key: row, CanManage: s.CanManage(), Editable: k.RevokedAt.IsZero(), Form: form}
	if !k.ExpiresAt.IsZero() {
		data.Expiry = k.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	}
	v.Title, v.Nav, v.Session, v.Org, v.CSRF, v.Data = "API key "+k.Name, "keys", s, s.Org, s.CSRF, data
	d.render(w, r, status, "key", v)
	return nil
}

// formOfKey is the edit form of k as stored.
func formOfKey(k store.APIKey) keyForm {
	f := keyForm{Name: k.Name, Scopes: strings.Join(k.Scopes, " "), IPAllowlist: strings.Join(k.IPAllowlist, "\n")}
	if !k.ExpiresAt.IsZero() {
		f.Expiry = k.ExpiresAt.UTC().Format("2006-01-02")
	}
	return f
}

func (d *Dashboard) keyPage(w http.ResponseWriter, r *http.Request, s *session) error {
	k, err := d.o.Keys.Get(r.Context(), s.Org.ID, r.PathValue("id"))
	if err != nil {
		if apierror.From(err).Status == http.StatusNotFound {
			return d.keyList(w, r, s, http.StatusNotFound, view{Error: "No such API key."}, keysData{})
		}
		return err
	}
	return d.keyEdit(w, r, s, http.StatusOK, view{Notice: keyNotices[r.URL.Query().Get("notice")]}, k, formOfKey(k))
}

// updateKey saves the fields of the edit form that changed.
func (d *Dashboard) updateKey(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errCredentialRole
	}
	ctx := r.Context()
	k, err := d.o.Keys.Get(ctx, s.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	form := keyForm{
		Name: r.PostFormValue("name"), Scopes: r.PostFormValue("scopes"),
		IPAllowlist: r.PostFormValue("ip_allowlist"), Expiry: r.PostFormValue("expires_at"),
	}
	failed := func(err error) error {
		var v view
		v.Error, v.Field = errorOf(err)
		return d.keyEdit(w, r, s, apierror.From(err).Status, v, k, form)
	}
	was := formOfKey(k)
	var p credentials.Patch
	changed := false
	if form.Name != k.Name {
		p.Name, changed = &form.Name, true
	}
	scopes := parseScopeField(form.Scopes)
	if !sameSet(scopes, k.Scopes) {
		p.Scopes, changed = &scopes, true
	}
	allow, err := parseAllowlistField(form.IPAllowlist)
	if err != nil {
		return failed(err)
	}
	if !slices.Equal(allow.Strings(), k.IPAllowlist) {
		p.IPAllowlist, changed = &allow, true
	}
	// The date field rounds the expiry to a day: an unchanged date keeps
	// the exact expiry.
	if strings.TrimSpace(form.Expiry) != was.Expiry {
		exp, err := parseExpiryField(form.Expiry)
		if err != nil {
			return failed(err)
		}
		p.ExpiresAt, changed = &exp, true
	}
	if !changed {
		redirect(w, r, Prefix+"keys/"+k.ID+"?notice=unchanged")
		return nil
	}
	if _, err := d.o.Keys.Update(ctx, s.Org.ID, k.ID, p, s.actor(r)); err != nil {
		return failed(err)
	}
	redirect(w, r, Prefix+"keys?notice=updated")
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order and
// with any repetition.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
