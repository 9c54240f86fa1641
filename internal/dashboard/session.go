package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

// Cookies and forms of the dashboard. The cookies are HttpOnly and
// SameSite=Strict; their names and path depend on the dashboard's origin
// (see cookieNames).
const (
	cookieAccess  = "tg_session" // the access token (JWT)
	cookieRefresh = "tg_refresh" // the refresh token
	cookiePre     = "tg_pre"     // the pre-session nonce of the login and registration forms
	// csrfField is the form field carrying the CSRF token.
	csrfField = "csrf"
	// cookieLife bounds the session cookies; the tokens inside expire
	// sooner or later on their own terms (15 minutes, 30 days by default).
	cookieLife = 30 * 24 * time.Hour
	// preLife bounds the pre-session cookie: a login form older than that
	// must be reloaded.
	preLife = 24 * time.Hour
	// csrfKeySize is the least size of Options.CSRFKey in bytes.
	csrfKeySize = 32
)

// Domain separation of the CSRF tokens' HMAC input: a pre-session token is
// never a session token.
const (
	csrfSession    = "tollgate dashboard csrf: session\x00"
	csrfPreSession = "tollgate dashboard csrf: pre-session\x00"
)

// cookies are the names and path of the dashboard's cookies.
type cookies struct {
	access, refresh, pre string
	path                 string
}

// cookieNames returns the cookies of a dashboard on its own origin or on
// the API's (shared), over https (secure) or plain http. On its own https
// origin every cookie has the __Host- prefix, so that a browser accepts it
// only from this very origin, Secure, for Path=/ and without Domain: no
// sibling host can plant or overwrite one (RFC 6265bis section 4.1.3.2).
// On a shared origin the cookies stay under /dashboard/, out of the
// requests proxied to backends, with the __Secure- prefix over https; on
// plain http (development) they have no prefix, which browsers refuse
// without Secure.
func cookieNames(secure, shared bool) cookies {
	prefix, path := "", "/"
	switch {
	case shared:
		path = Prefix
		if secure {
			prefix = "__Secure-"
		}
	case secure:
		prefix = "__Host-"
	}
	return cookies{access: prefix + cookieAccess, refresh: prefix + cookieRefresh, pre: prefix + cookiePre, path: path}
}

// IsCookie reports whether name is one of the dashboard's cookies, under
// any of the names it may have (prefixes are matched in any case, as
// browsers do). The gateway keeps these cookies from backends
// (gateway.Options.PrivateCookie): browsers send a host's cookies to every
// port of it (RFC 6265 section 8.5), a dashboard listener's included.
func IsCookie(name string) bool {
	for _, p := range []string{"__Host-", "__Secure-"} {
		if len(name) > len(p) && strings.EqualFold(name[:len(p)], p) {
			name = name[len(p):]
			break
		}
	}
	return name == cookieAccess || name == cookieRefresh || name == cookiePre
}

// session is the logged-in user of a request.
type session struct {
	accounts.Session
	Org store.Organization
	// CSRF is the session's CSRF token, which its forms carry.
	CSRF string
	// refresh is the session's current refresh token (renewed by this
	// very request, maybe).
	refresh string
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
		Name: name, Value: value, Path: d.cookies.path, MaxAge: int(life.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode,
	})
}

func (d *Dashboard) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{ //nolint:gosec // G124: as setCookie
		Name: name, Value: "", Path: d.cookies.path, MaxAge: -1,
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteStrictMode,
	})
}

// newToken returns 32 random bytes, base64url.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfMAC returns the CSRF token of a session or pre-session id: the
// base64url HMAC-SHA256 of the kind and the id under the dashboard's key.
func (d *Dashboard) csrfMAC(kind, id string) []byte {
	m := hmac.New(sha256.New, d.csrfKey)
	m.Write([]byte(kind))
	m.Write([]byte(id))
	return m.Sum(nil)
}

// csrfToken is csrfMAC in a form field.
func (d *Dashboard) csrfToken(kind, id string) string {
	if id == "" {
		return "" // refused by validCSRF: no session, no token
	}
	return base64.RawURLEncoding.EncodeToString(d.csrfMAC(kind, id))
}

// validCSRF reports, in constant time, whether got is the token of id.
func (d *Dashboard) validCSRF(kind, id, got string) bool {
	if id == "" || got == "" {
		return false
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(got)
	return err == nil && hmac.Equal(mac, d.csrfMAC(kind, id))
}

// preToken returns the CSRF token of the login and registration forms,
// bound to the browser's pre-session nonce, which it sets when the request
// has none.
func (d *Dashboard) preToken(w http.ResponseWriter, r *http.Request) string {
	nonce := ""
	if c, err := r.Cookie(d.cookies.pre); err == nil && len(c.Value) == 43 {
		nonce = c.Value
	} else {
		nonce = newToken()
		d.setCookie(w, d.cookies.pre, nonce, preLife)
	}
	return d.csrfToken(csrfPreSession, nonce)
}

var errCSRF = apierror.New(http.StatusForbidden, apierror.Forbidden,
	"this form has expired or did not come from the dashboard; reload the page and try again").WithReason("csrf")

// checkOrigin refuses a request that a browser says comes from elsewhere:
// an Origin (RFC 6454) other than the dashboard's, or Fetch Metadata
// (Sec-Fetch-Site) other than same-origin — a page of a sibling host or
// port (same-site, so sent the SameSite=Strict cookies) included.
// Browsers that send neither header are left to the CSRF token.
func (d *Dashboard) checkOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && o != d.origin && o != requestOrigin(r) {
		return errCSRF
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errCSRF
	}
	return nil
}

// checkPost refuses a POST of a session without the session's CSRF token,
// or from another origin.
func (d *Dashboard) checkPost(r *http.Request, s *session) error {
	if err := d.checkOrigin(r); err != nil {
		return err
	}
	if !d.validCSRF(csrfSession, s.SessionID, r.PostFormValue(csrfField)) {
		return errCSRF
	}
	return nil
}

// checkPrePost refuses a POST of the login or registration form without
// the token of the browser's pre-session nonce, or from another origin.
func (d *Dashboard) checkPrePost(r *http.Request) error {
	if err := d.checkOrigin(r); err != nil {
		return err
	}
	c, err := r.Cookie(d.cookies.pre)
	if err != nil || !d.validCSRF(csrfPreSession, c.Value, r.PostFormValue(csrfField)) {
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
	if c, cerr := r.Cookie(d.cookies.access); cerr == nil && c.Value != "" {
		sess, err = d.o.Accounts.Authenticate(ctx, c.Value)
	}
	refresh := ""
	if c, cerr := r.Cookie(d.cookies.refresh); cerr == nil {
		refresh = c.Value
	}
	if err != nil {
		if apierror.From(err).Status != http.StatusUnauthorized {
			return nil, err // the store is down: not a logout
		}
		if refresh == "" {
			return nil, nil
		}
		pair, rerr := d.o.Accounts.Refresh(ctx, refresh, reqinfo.From(ctx).ClientIP)
		if rerr != nil {
			if apierror.From(rerr).Status >= 500 {
				return nil, rerr
			}
			d.clearSession(w)
			return nil, nil
		}
		d.setSession(w, pair)
		refresh = pair.RefreshToken
		if sess, err = d.o.Accounts.Authenticate(ctx, pair.AccessToken); err != nil {
			return nil, err
		}
	}
	org, err := d.o.Orgs.GetOrganization(ctx, sess.User.OrgID)
	if err != nil {
		return nil, err
	}
	// The token is bound to the session (the refresh-token family, which
	// outlives each access token), so that no other session's token, and
	// no value an attacker could plant in a cookie, passes checkPost.
	return &session{Session: sess, Org: org, CSRF: d.csrfToken(csrfSession, sess.SessionID), refresh: refresh}, nil
}

func (d *Dashboard) setSession(w http.ResponseWriter, p accounts.TokenPair) {
	d.setCookie(w, d.cookies.access, p.AccessToken, cookieLife)
	d.setCookie(w, d.cookies.refresh, p.RefreshToken, cookieLife)
}

func (d *Dashboard) clearSession(w http.ResponseWriter) {
	d.clearCookie(w, d.cookies.access)
	d.clearCookie(w, d.cookies.refresh)
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
			if err := d.checkPost(r, s); err != nil {
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
	v := view{Title: "Log in", CSRF: d.preToken(w, r)}
	data := loginData{Next: r.URL.Query().Get("next")}
	if r.Method == http.MethodGet {
		if r.URL.Query().Get("registered") != "" {
			v.Notice = "Registration received. An operator must activate the account before you can log in."
		}
		v.Data = data
		d.render(w, r, http.StatusOK, "login", v)
		return
	}
	if err := d.checkPrePost(r); err != nil {
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
	d.clearCookie(w, d.cookies.pre) // the session's pages carry its own token
	redirect(w, r, safeNext(data.Next))
}

// registerData is the registration page's.
type registerData struct {
	Email, Organization string
	Done                bool
}

func (d *Dashboard) register(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Create an account", CSRF: d.preToken(w, r)}
	if r.Method == http.MethodGet {
		v.Data = registerData{}
		d.render(w, r, http.StatusOK, "register", v)
		return
	}
	if err := d.checkPrePost(r); err != nil {
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

// logout ends the session, whose CSRF token the form must carry; without
// a session it only clears the cookies.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	s, err := d.authenticate(w, r)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if s != nil {
		if err := d.checkPost(r, s); err != nil {
			d.fail(w, r, err)
			return
		}
		if s.refresh != "" {
			if err := d.o.Accounts.Logout(r.Context(), s.refresh); err != nil {
				d.o.Logger.Warn("dashboard logout", "error", err)
			}
		}
	}
	d.clearSession(w)
	redirect(w, r, Prefix+"login")
}
