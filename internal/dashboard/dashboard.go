// Package dashboard is Tollgate's web dashboard, served by Tollgate itself
// under /dashboard/ on an origin of its own (a listener or a host name of
// its own; see config.Dashboard): sign-up and login, the organization's
// overview, API keys, apps, webhooks, metrics and security alerts.
//
// The pages are rendered on the server with html/template from templates
// embedded in the binary, and work as plain HTML forms; a little JavaScript
// (static/app.js) adds the copy buttons, confirmations and the charts, drawn
// by the vendored Chart.js (static/vendor, with its licence). Nothing is
// fetched from elsewhere: the pages work offline. The handlers call the same
// services as the control-plane API, so that a page shows the API's own
// error messages.
//
// Security:
//
//   - The dashboard's origin is its own: no proxied backend shares it, so
//     no backend page can read a dashboard page with the user's cookies
//     (the same-origin policy, RFC 6454). Serving it on the API's origin
//     (Options.SharedOrigin) gives that up.
//   - The session is the control plane's: a 15-minute access token and a
//     refresh token, kept in HttpOnly, SameSite=Strict cookies, never
//     readable by script and never in localStorage; on an https origin of
//     its own they have the __Host- prefix (Secure, Path=/, no Domain). An
//     expired access token is renewed with the refresh token (rotated each
//     time) on the next request.
//   - Every state-changing request is a POST whose body is at most
//     Options.MaxBody bytes of application/x-www-form-urlencoded, and
//     that must carry the session's CSRF token: the HMAC-SHA256 of the
//     session's ID (its refresh-token family) under Options.CSRFKey,
//     compared in constant time, so that a token of another session or a
//     value planted in a cookie is refused. The login and registration
//     forms, before any session, carry the HMAC of a random pre-session
//     nonce kept in an HttpOnly cookie. A POST whose Origin is another
//     origin, or whose Sec-Fetch-Site is not same-origin, is refused too.
//   - Every response has a strict Content-Security-Policy (no inline script
//     or style, nothing from other origins, no framing), X-Frame-Options
//     DENY, Cross-Origin-Resource-Policy and Cross-Origin-Opener-Policy
//     same-origin, Referrer-Policy same-origin (no referrer to other sites;
//     under no-referrer browsers send "Origin: null" with forms, which the
//     Origin check would refuse) and Cache-Control no-store; html/template
//     escapes everything it writes.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// Prefix is where the dashboard is served.
const Prefix = "/dashboard/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// AuditLister reads the audit log (security alerts).
type AuditLister interface {
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
}

// Options are the services the dashboard shows.
type Options struct {
	Accounts  *accounts.Service
	Keys      *credentials.Service
	Apps      *oauth.Service
	Webhooks  *webhooks.Service // nil: no webhooks page
	Orgs      controlapi.OrgGetter
	Usage     controlapi.UsageReader
	Allowance controlapi.AllowanceReader // nil: every organization unlimited
	Audit     AuditLister
	// PublicURL is the dashboard's external base URL: its scheme decides
	// the cookies' Secure flag and prefix, its origin the accepted Origin
	// header.
	PublicURL string
	// SharedOrigin says the dashboard shares its origin with the API and
	// the proxied routes (dashboard.allow_api_origin): its cookies are then
	// scoped to /dashboard/, out of the proxied requests, and cannot have
	// the __Host- prefix.
	SharedOrigin bool
	// CSRFKey is the HMAC-SHA256 key of the CSRF tokens, at least 32
	// bytes. Every node of a cluster needs the same one: the server
	// derives it from the master key.
	CSRFKey []byte
	// MaxBody bounds a form's body in bytes (server.max_api_body_bytes);
	// a larger one is refused with 413 before it is parsed. Default 64 KiB.
	MaxBody int64
	Clock   clock.Clock  // default clock.System{}
	Logger  *slog.Logger // default: discard
}

// Dashboard is the dashboard's http.Handler.
type Dashboard struct {
	o       Options
	mux     *http.ServeMux
	pages   map[string]*template.Template
	secure  bool    // Secure cookies
	origin  string  // scheme://host of PublicURL, as browsers send it in Origin
	cookies cookies // the cookies' names and path
	csrfKey []byte
}

// New returns the dashboard.
func New(o Options) (*Dashboard, error) {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	u, err := url.Parse(o.PublicURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("dashboard: public URL %q is not absolute", o.PublicURL)
	}
	if len(o.CSRFKey) < csrfKeySize {
		return nil, fmt.Errorf("dashboard: the CSRF key must have at least %d bytes", csrfKeySize)
	}
	secure := u.Scheme == "https"
	d := &Dashboard{
		o: o, mux: http.NewServeMux(), secure: secure, origin: originOf(u),
		cookies: cookieNames(secure, o.SharedOrigin), csrfKey: bytes.Clone(o.CSRFKey),
	}
	if d.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	d.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", staticHandler(static)))
	d.routes()
	return d, nil
}

// ServeHTTP serves a dashboard page with the security headers of every
// response.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// No other origin may even embed a response (a <script> or <img> of
	// a page, read into its process): Fetch's CORP check.
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	if r.Method == http.MethodPost {
		if err := d.readForm(w, r); err != nil {
			d.fail(w, r, err)
			return
		}
	}
	d.mux.ServeHTTP(w, r)
}

var errFormType = apierror.New(http.StatusUnsupportedMediaType, apierror.UnsupportedMediaType,
	"a dashboard form must be sent as application/x-www-form-urlencoded")

// readForm reads a POST's form, of at most MaxBody bytes (413 beyond,
// before anything is read when the length is declared) and of the one type
// the dashboard's forms send (415 otherwise). The handlers then find it
// in r.PostForm.
func (d *Dashboard) readForm(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > d.o.MaxBody {
		return apierror.New(http.StatusRequestEntityTooLarge, apierror.PayloadTooLarge,
			fmt.Sprintf("request body exceeds %d bytes", d.o.MaxBody))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return errFormType
	}
	r.Body = http.MaxBytesReader(w, r.Body, d.o.MaxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apierror.From(tooLarge)
		}
		return apierror.Invalid("", "the form could not be read: %v", err)
	}
	return nil
}

// originOf returns the origin of an absolute URL as browsers serialize it
// in the Origin header (RFC 6454 section 6.1): scheme and host in lower
// case, the scheme's default port left out.
func originOf(u *url.URL) string {
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.TrimSuffix(host, ":"+p)
	}
	return scheme + "://" + host
}

// staticHandler serves the embedded assets, cacheable for an hour.
func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// funcs are the templates' helper functions.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"whenPtr": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02")
	},
	"join": strings.Join,
	// count writes n and the noun, plural unless n is 1: "1 request",
	// "3 requests".
	"count": func(n any, noun string) string {
		s := fmt.Sprint(n)
		if s == "1" {
			return s + " " + noun
		}
		return s + " " + noun + "s"
	},
	"path": func(parts ...string) string { return Prefix + strings.Join(parts, "/") },
	"pct": func(used, total int64) int64 {
		if total <= 0 {
			return 0
		}
		return min(100, used*100/total)
	},
}

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the active menu entry
	// Session is nil on the pages before login.
	Session *session
	Org     store.Organization
	CSRF    string
	// Notice and Error are messages at the top of the page; Field names
	// the form field an error is about.
	Notice, Error, Field string
	Data                 any
}

// render writes a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t := d.pages[name]
	if t == nil {
		d.fail(w, r, fmt.Errorf("dashboard: no template %s", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		d.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail answers an unexpected error with a plain page and logs it.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	info := reqinfo.From(r.Context())
	info.Err = err
	e := apierror.From(err)
	d.o.Logger.Error("dashboard page failed", "path", r.URL.Path, "request_id", info.ID, "error", err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(e.Status)
	_, _ = fmt.Fprintf(w, "%s (request %s)\n", e.Message, info.ID) //nolint:gosec // G705: text/plain with nosniff, a fixed message

}

// errorOf returns the message and field of err for the page: the API's own
// error message, or, for an unexpected error, a generic one.
func errorOf(err error) (msg, field string) {
	e := apierror.From(err)
	if e.Status >= 500 {
		return "Something went wrong on our side (" + e.Message + "). Please try again.", ""
	}
	return e.Message, e.Field
}

// redirect answers a POST with a redirect to a page (303 See Other).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther) //nolint:gosec // G710: dashboard paths only (safeNext checks the one from input)
}
