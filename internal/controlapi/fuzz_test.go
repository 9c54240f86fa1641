package controlapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/ipallow"
)

// FuzzCreateKeyRequest feeds untrusted bodies to the strict decoder of
// POST /api/v1/apikeys: every input is either decoded into a request whose
// allowlist is canonical, or refused with a 4xx error body, never a 500.
func FuzzCreateKeyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"prod","scopes":["kyt.read"],"ip_allowlist":"203.0.113.50, 198.51.100.0/24"}`,
		`{"name":"k","ip_allowlist":["2001:db8::/32","::ffff:10.0.0.1"],"expires_at":"2030-01-01T00:00:00Z"}`,
		`{"name":"k","ip_allowlist":null,"expires_at":null}`,
		`{"name":"k","app_id":"app_x","ip_allowlist":"10.0.0.1/8"}`,
		`{"name":1}`, `[]`, `{"name":"a"}{}`, `{"expires_at":"tomorrow"}`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/v1/apikeys", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req CreateKeyRequest
		err := httpx.DecodeJSON(r, 64<<10, &req)
		if err != nil {
			var e *apierror.Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("body %q: %v is not a client error", body, err)
			}
			return
		}
		in := req.Input()
		again, err := ipallow.Parse(in.IPAllowlist.Strings())
		if err != nil || again.String() != in.IPAllowlist.String() {
			t.Fatalf("allowlist %q does not round-trip: %v", in.IPAllowlist.String(), err)
		}
		if !in.ExpiresAt.IsZero() && in.ExpiresAt.Location().String() != "UTC" {
			t.Fatalf("expiry not normalized to UTC: %v", in.ExpiresAt)
		}
	})
}

// FuzzUpdateKeyRequest does the same for PATCH bodies with nullable fields.
func FuzzUpdateKeyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"n"}`, `{"expires_at":null}`, `{"ip_allowlist":null,"scopes":[]}`, `{"name":null}`, `{"scopes":"a"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPatch, "/api/v1/apikeys/key_x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req updateKeyRequest
		if err := httpx.DecodeJSON(r, 64<<10, &req); err != nil {
			var e *apierror.Error
			if !errors.As(err, &e) || e.Status >= 500 {
				t.Fatalf("body %q: %v is not a client error", body, err)
			}
			return
		}
		if req.Name.Null && req.Name.Value != "" {
			t.Fatal("null name carries a value")
		}
	})
}
