package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// Cookies of the dashboard, all HttpOnly, SameSite=Strict, Path=/dashboard/.
const (
	cookieAccess  = "tg_session" // the access token (JWT)
	cookieRefresh = "tg_refresh" // the refresh token
	cookieCSRF    = "tg_csrf"    // the CSRF token the forms repeat
	// csrfField is the form field carrying the CSRF token.
	csrfField = "csrf"
	// cookieLife bounds the cookies; the tokens inside expire sooner or
	// later on their own terms (15 minutes, 30 days by default).
	cookieLife = 30 * 24 * time.Hour
)

// session is the logged-in user of a request.
type session struct {
	accounts.Session
	Org  store.Organization
	CSRF string
}

// CanManage reports whether the user may change the organization's
// credentials (owner or admin), as the control-plane API requires.
func (s *session) CanManage() bool {
	return s.User.Role == store.RoleOwner || s.User.Role == store.RoleAdmin
}

// actor is who the audit log says made a change.
func (s *session) actor(r *http.Request) store.Actor {
	return store.Actor{Type: store.ActorUser, ID: s.User.ID, IP: reqinfo.From(r.Context()).ClientIP.String()}
}

func (d *Dashboard) setCookie(w http.ResponseWriter, name, value string, life time.Duration) {
	// Secure whenever the site is https; plain-http development needs it
	// off. HttpOnly and SameSite=Strict always.
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: see above
		Name: name, Value: value, Path: Prefix, MaxAge: int(life.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode,
	})
}

func (d *Dashboard) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: as setCookie
		Name: name, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode,
	})
}

// newToken returns 32 random bytes, base64url.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfToken returns the request's CSRF token, setting a new one when it has
// none.
func (d *Dashboard) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(cookieCSRF); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	t := newToken()
	d.setCookie(w, cookieCSRF, t, cookieLife)
	return t
}

var errCSRF = apierror.New(http.StatusForbidden, apierror.Forbidden,
	"this form has expired or did not come from the dashboard; reload the page and try again").WithReason("csrf")

// checkPost refuses a POST without the session's CSRF token, or from
// another origin.
func (d *Dashboard) checkPost(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != d.origin && o != requestOrigin(r) {
		return errCSRF
	}
	c, err := r.Cookie(cookieCSRF)
	if err != nil || c.Value == "" {
		return errCSRF
	}
	if subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		return errCSRF
	}
	return nil
}

// requestOrigin is the origin the request was sent to, as the browser
// names it in Origin.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authenticate returns the request's session, renewing an expired access
// token with the refresh token; nil when nobody is logged in.
func (d *Dashboard) authenticate(w http.ResponseWriter, r *http.Request) (*session, error) {
	ctx := r.Context()
	var sess accounts.Session
	var err error = apierror.ErrUnauthorized
	if c, cerr := r.Cookie(cookieAccess); cerr == nil && c.Value != "" {
		sess, err = d.o.Accounts.Authenticate(ctx, c.Value)
	}
	if err != nil {
		if apierror.From(err).Status != http.StatusUnauthorized {
			return nil, err // the store is down: not a logout
		}
		c, cerr := r.Cookie(cookieRefresh)
		if cerr != nil || c.Value == "" {
			return nil, nil
		}
		pair, rerr := d.o.Accounts.Refresh(ctx, c.Value, reqinfo.From(ctx).ClientIP)
		if rerr != nil {
			if apierror.From(rerr).Status >= 500 {
				return nil, rerr
			}
			d.clearSession(w)
			return nil, nil
		}
		d.setSession(w, pair)
		if sess, err = d.o.Accounts.Authenticate(ctx, pair.AccessToken); err != nil {
			return nil, err
		}
	}
	org, err := d.o.Orgs.GetOrganization(ctx, sess.User.OrgID)
	if err != nil {
		return nil, err
	}
	return &session{Session: sess, Org: org, CSRF: d.csrfToken(w, r)}, nil
}

func (d *Dashboard) setSession(w http.ResponseWriter, p accounts.TokenPair) {
	d.setCookie(w, cookieAccess, p.AccessToken, cookieLife)
	d.setCookie(w, cookieRefresh, p.RefreshToken, cookieLife)
}

func (d *Dashboard) clearSession(w http.ResponseWriter) {
	d.clearCookie(w, cookieAccess)
	d.clearCookie(w, cookieRefresh)
}

// pageFunc is a page of a logged-in user.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session) error

// page wraps a page of a logged-in user: without a session it sends the
// browser to the login page; a POST must pass checkPost.
func (d *Dashboard) page(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := d.authenticate(w, r)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		if s == nil {
			next := ""
			if r.Method == http.MethodGet {
				next = "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			redirect(w, r, Prefix+"login"+next)
			return
		}
		if r.Method == http.MethodPost {
			if err := d.checkPost(r); err != nil {
				d.fail(w, r, err)
				return
			}
		}
		if err := h(w, r, s); err != nil {
			d.fail(w, r, err)
		}
	})
}

// loginData is the login page's.
type loginData struct {
	Email, Next string
}

// safeNext returns next if it is a dashboard path, else the overview.
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return Prefix + "overview"
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Log in", CSRF: d.csrfToken(w, r)}
	data := loginData{Next: r.URL.Query().Get("next")}
	if r.Method == http.MethodGet {
		if r.URL.Query().Get("registered") != "" {
			v.Notice = "Registration received. An operator must activate the account before you can log in."
		}
		v.Data = data
		d.render(w, r, http.StatusOK, "login", v)
		return
	}
	if err := d.checkPost(r); err != nil {
		d.fail(w, r, err)
		return
	}
	data.Email, data.Next = r.PostFormValue("email"), r.PostFormValue("next")
	pair, err := d.o.Accounts.Login(r.Context(), data.Email, r.PostFormValue("password"), reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		v.Error, v.Field = errorOf(err)
		v.Data = data
		d.render(w, r, apierror.From(err).Status, "login", v)
		return
	}
	d.setSession(w, pair)
	d.setCookie(w, cookieCSRF, newToken(), cookieLife) // a new session, a new token
	redirect(w, r, safeNext(data.Next))
}

// registerData is the registration page's.
type registerData struct {
	Email, Organization string
	Done                bool
}

func (d *Dashboard) register(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Create an account", CSRF: d.csrfToken(w, r)}
	if r.Method == http.MethodGet {
		v.Data = registerData{}
		d.render(w, r, http.StatusOK, "register", v)
		return
	}
	if err := d.checkPost(r); err != nil {
		d.fail(w, r, err)
		return
	}
	data := registerData{Email: r.PostFormValue("email"), Organization: r.PostFormValue("organization")}
	if r.PostFormValue("password") != r.PostFormValue("password_confirm") {
		v.Error, v.Field, v.Data = "The two passwords differ.", "password_confirm", data
		d.render(w, r, http.StatusBadRequest, "register", v)
		return
	}
	org := strings.TrimSpace(data.Organization)
	if org == "" {
		org = data.Email
	}
	err := d.o.Accounts.Register(r.Context(), accounts.RegisterInput{
		Email: data.Email, Password: r.PostFormValue("password"), OrganizationName: org,
	}, reqinfo.From(r.Context()).ClientIP)
	if err != nil {
		v.Error, v.Field = errorOf(err)
		v.Data = data
		d.render(w, r, apierror.From(err).Status, "register", v)
		return
	}
	data.Done = true
	v.Data = data
	v.Notice = "Registration received. An operator must activate the account before you can log in."
	d.render(w, r, http.StatusAccepted, "register", v)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.checkPost(r); err != nil {
		d.fail(w, r, err)
		return
	}
	if c, err := r.Cookie(cookieRefresh); err == nil && c.Value != "" {
		if err := d.o.Accounts.Logout(r.Context(), c.Value); err != nil {
			d.o.Logger.Warn("dashboard logout", "error", err)
		}
	}
	d.clearSession(w)
	d.clearCookie(w, cookieCSRF)
	redirect(w, r, Prefix+"login")
}
