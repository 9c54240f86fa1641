package httpx

import (
	"strings"
	"testing"
)

// FuzzParseBearer: the Bearer scheme is recognised case-insensitively,
// whatever whitespace surrounds it, and the token is what follows, trimmed,
// never containing the scheme.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "BEARER  a.b.c ", "Bearer", "Bearerx abc", "Basic abc", "", " Bearer x", "Bearer\tx", "\tbearer \t x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		token, bearer := ParseBearer(h)
		fields := strings.FieldsFunc(h, func(r rune) bool { return r == ' ' || r == '\t' })
		scheme := ""
		if len(fields) > 0 && strings.TrimLeft(h, " \t")[:len(fields[0])] == fields[0] {
			scheme = fields[0]
		}
		if bearer != strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("%q: bearer=%v", h, bearer)
		}
		if !bearer && token != "" {
			t.Fatalf("%q: token %q without the scheme", h, token)
		}
		if token != strings.Trim(token, " \t") || len(token) > len(h) {
			t.Fatalf("%q: token %q", h, token)
		}
	})
}
