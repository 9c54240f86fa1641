package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// FuzzAuthenticate feeds arbitrary Authorization headers to the Bearer
// method. It must never panic; it must answer ErrAbsent, a 401, or the
// principal of the one genuine token — a mutated token is accepted only if
// it decodes to the very same signed content.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, Options{})
	c := fx.app(f, "kyt.read")
	good := fx.token(f, c.App, "kyt.read")
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		"Bearer " + good, "bearer " + good, "Bearer  " + good, "Bearer", "Bearer ", "Basic eDp5", "",
		"Bearer " + parts[0] + "." + parts[1] + ".", "Bearer " + parts[0] + ".." + parts[2],
		"Bearer eyJhbGciOiJub25lIn0." + parts[1] + ".", "Bearer " + strings.Repeat("a.", 3000),
		"Bearer " + parts[0] + "." + parts[1] + "." + parts[2] + "=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/v1/x", nil)
		r.Header["Authorization"] = []string{header}
		p, err := fx.svc.Authenticate(r)
		switch {
		case errors.Is(err, authn.ErrAbsent):
		case err != nil:
			if e := apierror.From(err); e.Status != http.StatusUnauthorized {
				t.Fatalf("%q: status %d (%v)", header, e.Status, err)
			}
		default:
			if p.AppID != c.App.ID || p.CredentialID != c.App.ClientID {
				t.Fatalf("%q accepted as %+v", header, p)
			}
		}
	})
}

// FuzzTokenEndpoint feeds arbitrary form bodies and Authorization headers to
// the token endpoint: it must answer with an RFC 6749 JSON body, an access
// token only to the genuine client.
func FuzzTokenEndpoint(f *testing.F) {
	fx := newFixture(f, Options{})
	c := fx.app(f, "kyt.read")
	h := fx.svc.Handler("https://api.example.com")
	basic := "Basic " + basicAuth(c.App.ClientID, c.Secret)
	f.Add("grant_type=client_credentials", basic)
	f.Add("grant_type=client_credentials&scope=kyt.read", basic)
	f.Add("grant_type=client_credentials&client_id="+c.App.ClientID+"&client_secret="+c.Secret, "")
	f.Add("grant_type=client_credentials&scope=%20%20", basic)
	f.Add("grant_type=password&username=x", basic)
	f.Add("%zz=1&&;;=", "Basic %%%")
	f.Add("grant_type=client_credentials", "Basic "+basicAuth("a:b", "c"))
	f.Fuzz(func(t *testing.T, body, auth string) {
		r := httptest.NewRequest("POST", TokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var res map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			t.Fatalf("status %d, body %q is not JSON", w.Code, w.Body)
		}
		if w.Code == http.StatusRequestEntityTooLarge {
			// The common error body, as on the JSON API.
			if e, ok := res["error"].(map[string]any); !ok || e["code"] != "PAYLOAD_TOO_LARGE" || len(body) <= 64<<10 {
				t.Fatalf("413 for a body of %d bytes: %s", len(body), w.Body)
			}
			return
		}
		if w.Code == http.StatusOK {
			if res["access_token"] == nil {
				t.Fatalf("200 without a token: %s", w.Body)
			}
			if !strings.Contains(body, c.Secret) && !strings.Contains(auth, basicAuth(c.App.ClientID, c.Secret)[:20]) {
				t.Fatalf("token issued without the secret: body %q auth %q", body, auth)
			}
			return
		}
		if _, ok := res["error"].(string); !ok || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d, body %s", w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), c.Secret) {
			t.Fatal("the secret was echoed")
		}
	})
}

func basicAuth(id, secret string) string {
	r := httptest.NewRequest("GET", "/", nil)
	r.SetBasicAuth(id, secret)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}
