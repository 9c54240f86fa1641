package httpx

import (
	"strings"
	"testing"
)

// FuzzParseBearer: the Bearer scheme is recognised case-insensitively, and
// the token is what follows, trimmed, never containing the scheme.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "BEARER  a.b.c ", "Bearer", "Bearerx abc", "Basic abc", "", " Bearer x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, bearer := ParseBearer(h)
		scheme, _, _ := strings.Cut(h, " ")
		if bearer != strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("%q: bearer=%v", h, bearer)
		}
		if !bearer && token != "" {
			t.Fatalf("%q: token %q without the scheme", h, token)
		}
		if token != strings.TrimSpace(token) || len(token) > len(h) {
			t.Fatalf("%q: token %q", h, token)
		}
	})
}
