package dashboard

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierror"
)

func newTestDashboard(t testing.TB, publicURL string, shared bool, key []byte) *Dashboard {
	t.Helper()
	d, err := New(Options{PublicURL: publicURL, SharedOrigin: shared, CSRFKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var testKey = bytes.Repeat([]byte{7}, 32)

// The cookies' names and path follow the origin: __Host- on an https
// origin of its own, __Secure- under /dashboard/ on the API's https
// origin, no prefix on plain http.
func TestCookieNames(t *testing.T) {
	for _, tt := range []struct {
		url          string
		shared       bool
		access, path string
		secure       bool
		origin       string
	}{
		{"https://dash.example.com", false, "__Host-tg_session", "/", true, "https://dash.example.com"},
		{"https://Dash.Example.com:443/", false, "__Host-tg_session", "/", true, "https://dash.example.com"},
		{"https://api.example.com:8443", true, "__Secure-tg_session", "/dashboard/", true, "https://api.example.com:8443"},
		{"http://127.0.0.1:8082", false, "tg_session", "/", false, "http://127.0.0.1:8082"},
		{"http://127.0.0.1:80", true, "tg_session", "/dashboard/", false, "http://127.0.0.1"},
	} {
		d := newTestDashboard(t, tt.url, tt.shared, testKey)
		if d.cookies.access != tt.access || d.cookies.path != tt.path || d.secure != tt.secure || d.origin != tt.origin {
			t.Errorf("%s shared=%v: %+v secure=%v origin=%q", tt.url, tt.shared, d.cookies, d.secure, d.origin)
		}
		if !strings.HasSuffix(d.cookies.refresh, "tg_refresh") || !strings.HasSuffix(d.cookies.pre, "tg_pre") ||
			strings.TrimSuffix(d.cookies.refresh, "tg_refresh") != strings.TrimSuffix(d.cookies.access, "tg_session") {
			t.Errorf("%s: the cookies' prefixes differ: %+v", tt.url, d.cookies)
		}
	}
	if _, err := New(Options{PublicURL: "https://dash.example.com", CSRFKey: testKey[:16]}); err == nil {
		t.Error("a 16-byte CSRF key accepted")
	}
}

// A token is the session's under the dashboard's key: another session,
// kind or key gives another token; nothing but the exact token passes.
func TestCSRFTokens(t *testing.T) {
	d := newTestDashboard(t, "https://dash.example.com", false, testKey)
	tok := d.csrfToken(csrfSession, "fam_a")
	if !d.validCSRF(csrfSession, "fam_a", tok) {
		t.Fatal("a session's own token refused")
	}
	other := newTestDashboard(t, "https://dash.example.com", false, bytes.Repeat([]byte{8}, 32))
	for name, ok := range map[string]bool{
		"another session": d.validCSRF(csrfSession, "fam_b", tok),
		"a pre-session":   d.validCSRF(csrfPreSession, "fam_a", tok),
		"another key":     other.validCSRF(csrfSession, "fam_a", tok),
		"no session":      d.validCSRF(csrfSession, "", d.csrfToken(csrfSession, "")),
		"empty":           d.validCSRF(csrfSession, "fam_a", ""),
		"padded":          d.validCSRF(csrfSession, "fam_a", tok+"="),
		"truncated":       d.validCSRF(csrfSession, "fam_a", tok[:len(tok)-1]),
		"the session id":  d.validCSRF(csrfSession, "fam_a", "fam_a"),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if d.csrfToken(csrfSession, "") != "" {
		t.Error("a token for no session")
	}
}

// The Origin and Fetch Metadata checks: the dashboard's own origin passes,
// every other is refused.
func TestCheckOrigin(t *testing.T) {
	d := newTestDashboard(t, "https://dash.example.com", false, testKey)
	for _, tt := range []struct {
		origin, site string
		ok           bool
	}{
		{"", "", true},
		{"https://dash.example.com", "same-origin", true},
		{"", "none", true},
		{"https://api.example.com", "", false},
		{"https://dash.example.com:8443", "", false},
		{"http://dash.example.com", "", false},
		{"null", "", false},
		{"", "same-site", false},
		{"", "cross-site", false},
		{"https://dash.example.com", "same-site", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "https://dash.example.com/dashboard/keys", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if tt.site != "" {
			r.Header.Set("Sec-Fetch-Site", tt.site)
		}
		if err := d.checkOrigin(r); (err == nil) != tt.ok {
			t.Errorf("Origin %q Sec-Fetch-Site %q: %v", tt.origin, tt.site, err)
		}
	}
}

// A form body over the limit is refused with 413 before the form is read,
// another type with 415.
func TestReadForm(t *testing.T) {
	d, err := New(Options{PublicURL: "https://dash.example.com", CSRFKey: testKey, MaxBody: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		body, contentType string
		length            int64 // -1: unknown
		status            int
	}{
		{"a=" + strings.Repeat("b", 98), "application/x-www-form-urlencoded", 100, 0},
		{"a=" + strings.Repeat("b", 99), "application/x-www-form-urlencoded", 101, 413},
		{"a=" + strings.Repeat("b", 99), "application/x-www-form-urlencoded", -1, 413},
		{"a=b", "text/plain", 3, 415},
		{"a=b", "multipart/form-data; boundary=x", 3, 415},
		{"a=b", "", 3, 415},
		{"a=%zz", "application/x-www-form-urlencoded", 5, 400},
	} {
		r := httptest.NewRequest(http.MethodPost, "/dashboard/keys", strings.NewReader(tt.body))
		r.ContentLength = tt.length
		if tt.contentType != "" {
			r.Header.Set("Content-Type", tt.contentType)
		}
		w := httptest.NewRecorder()
		err := d.readForm(w, r)
		status := 0
		if err != nil {
			status = apierror.From(err).Status
		}
		if status != tt.status {
			t.Errorf("%d bytes (%d declared) of %q: %d, want %d (%v)", len(tt.body), tt.length, tt.contentType, status, tt.status, err)
		}
		if status == 0 && r.PostForm.Get("a") == "" {
			t.Errorf("the form was not read: %v", r.PostForm)
		}
	}
}

// validCSRF reads a form field of the attacker's choosing: it never
// panics, and accepts nothing but the session's token.
func FuzzValidCSRF(f *testing.F) {
	d := newTestDashboard(f, "https://dash.example.com", false, testKey)
	tok := d.csrfToken(csrfSession, "fam_fuzz")
	for _, s := range []string{tok, "", "=", tok[:10], url.QueryEscape(tok), "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, got string) {
		if d.validCSRF(csrfSession, "fam_fuzz", got) && got != tok {
			t.Fatalf("%q accepted for %q", got, tok)
		}
	})
}

// IsCookie knows every name the dashboard's cookies may have, and nothing
// else.
func TestIsCookie(t *testing.T) {
	for _, shared := range []bool{false, true} {
		for _, secure := range []bool{false, true} {
			c := cookieNames(secure, shared)
			for _, name := range []string{c.access, c.refresh, c.pre} {
				if !IsCookie(name) {
					t.Errorf("IsCookie(%q) = false", name)
				}
			}
		}
	}
	for name, want := range map[string]bool{
		"__HOST-tg_session": true, "__secure-tg_refresh": true, "tg_pre": true,
		"tg_session2": false, "TG_SESSION": false, "__Host-": false, "__Host-__Host-tg_session": false, "session": false, "": false,
	} {
		if got := IsCookie(name); got != want {
			t.Errorf("IsCookie(%q) = %v, want %v", name, got, want)
		}
	}
}
