package reqtarget

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/tollgate/tollgate/internal/reqtarget/reqtargettest"
)

func TestParseCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, path, raw, query string
		normalized           bool
	}{
		{in: "/", path: "/", raw: "/"},
		{in: "/v1/hello", path: "/v1/hello", raw: "/v1/hello"},
		{in: "/v1/hello/", path: "/v1/hello/", raw: "/v1/hello/"},
		{in: "/v1/hello?a=1&b=%2F", path: "/v1/hello", raw: "/v1/hello", query: "a=1&b=%2F"},
		{in: "/v1/a:b@c!$&'()*+,=~-._", path: "/v1/a:b@c!$&'()*+,=~-._", raw: "/v1/a:b@c!$&'()*+,=~-._"},
		// Dot segments (RFC 3986 section 5.2.4), every spelling of them.
		{in: "/v1/../v1/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/%2e%2e/v1/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/%2E%2E/v1/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/.%2e/v1/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/%2e./v1/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/%2e/kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/./kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "/v1/kyt/score/.", path: "/v1/kyt/score/", raw: "/v1/kyt/score/", normalized: true},
		{in: "/v1/kyt/score/..", path: "/v1/kyt/", raw: "/v1/kyt/", normalized: true},
		{in: "/../../etc/passwd", path: "/etc/passwd", raw: "/etc/passwd", normalized: true},
		{in: "/..", path: "/", raw: "/", normalized: true},
		{in: "/.", path: "/", raw: "/", normalized: true},
		// Repeated slashes.
		{in: "/v1//kyt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score", normalized: true},
		{in: "//v1/kyt///score//", path: "/v1/kyt/score/", raw: "/v1/kyt/score/", normalized: true},
		{in: "//", path: "/", raw: "/", normalized: true},
		// Unreserved characters decoded, other escapes kept, upper-cased.
		{in: "/v1/%6Byt/score", path: "/v1/kyt/score", raw: "/v1/kyt/score"},
		{in: "/v1/%7euser", path: "/v1/~user", raw: "/v1/~user"},
		{in: "/v1/a%3fb", path: "/v1/a?b", raw: "/v1/a%3Fb"},
		{in: "/v1/caf%c3%a9", path: "/v1/café", raw: "/v1/caf%C3%A9"},
		{in: "/v1/café", path: "/v1/café", raw: "/v1/caf%C3%A9"},
		{in: "/v1/100%25", path: "/v1/100%", raw: "/v1/100%25"},
		{in: "/v1/100%25off", path: "/v1/100%off", raw: "/v1/100%25off"},
		{in: "/v1/a%20b", path: "/v1/a b", raw: "/v1/a%20b"},
		{in: "/v1/a+b", path: "/v1/a+b", raw: "/v1/a+b"},
		// Trailing dots and case are part of a name.
		{in: "/v1/kyt./score", path: "/v1/kyt./score", raw: "/v1/kyt./score"},
		{in: "/v1/KYT/score", path: "/v1/KYT/score", raw: "/v1/KYT/score"},
		{in: "/v1/.../x", path: "/v1/.../x", raw: "/v1/.../x"},
		// Absolute form.
		{in: "http://api.example.com/v1/../v1/kyt?x", path: "/v1/kyt", raw: "/v1/kyt", query: "x", normalized: true},
		{in: "HTTPS://api.example.com", path: "/", raw: "/"},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		want := Target{Path: tc.path, RawPath: tc.raw, RawQuery: tc.query, Normalized: tc.normalized}
		if got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, want)
		}
	}
}

func TestParseRefused(t *testing.T) {
	for in, want := range map[string]*Error{
		"":                                   errForm,
		"*":                                  errForm,
		"api.example.com:443":                errForm,
		"v1/hello":                           errForm,
		"/v1/kyt%2Fscore":                    errSlash,
		"/v1/kyt%2fscore":                    errSlash,
		"/v1%2f..%2fv1/kyt":                  errSlash,
		`/v1\kyt`:                            errBackslash,
		"/v1/%5Ckyt":                         errBackslash,
		"/v1/%5ckyt":                         errBackslash,
		"/v1/..;/v1/kyt/score":               errSemicolon,
		"/v1/kyt;x=1/score":                  errSemicolon,
		"/v1/kyt%3b/score":                   errSemicolon,
		"/v1/%252e%252e/v1/kyt":              errDouble,
		"/v1/%252F":                          errDouble,
		"/v1/%25%36%42yt/score":              errDouble, // forwarded as %256Byt: kyt, decoded twice
		"/v1/%25%32%65%25%32%65/kyt":         errDouble,
		"/v1/%25%32e":                        errDouble,
		"/v1/%00":                            errControl,
		"/v1/%0a":                            errControl,
		"/v1/%7F":                            errControl,
		"/v1/\x00":                           errControl,
		"/v1/\t":                             errControl,
		"/v1/%":                              errEscape,
		"/v1/%4":                             errEscape,
		"/v1/%zz":                            errEscape,
		"/v1/%u002e%u002e/kyt":               errEscape,
		"/v1/%C0%AE%C0%AE/v1/kyt":            errUTF8,
		"/v1/%E0%80%AE":                      errUTF8,
		"/v1/%ff":                            errUTF8,
		"/v1/\xc0\xae":                       errUTF8,
		"/v1/%EF%BC%8E%EF%BC%8E/kyt":         errLookalike, // full-width full stops
		"/v1/%EF%BC%8F":                      errLookalike, // full-width solidus
		"/v1/%E2%80%A5/kyt":                  errLookalike, // two dot leader
		"/v1/%EF%BC%9B":                      errLookalike, // full-width semicolon
		"/v1/%EF%BD%8Byt/score":              errLookalike, // full-width small k: kyt to an NFKC server
		"/v1/\uff4byt/score":                 errLookalike,
		"/v1/%E2%84%AAYT/score":              errLookalike, // Kelvin sign: K
		"/v1/%C5%BFcore":                     errLookalike, // long s: s
		"/v1/kyt%C2%A0/score":                errLookalike, // no-break space: a space
		"/v1/a#b":                            errFragment,
		"/v1/a?b#c":                          errFragment,
		"/v1/a b":                            errCharInvalid,
		"/v1/{x}":                            errCharInvalid,
		"/" + strings.Repeat("a", MaxLength): errLength,
	} {
		_, err := Parse(in)
		if err != want {
			t.Errorf("Parse(%q) = %v, want %v", in, err, want)
		}
		if !IsRefused(err) {
			t.Errorf("IsRefused(Parse(%q)) = false", in)
		}
	}
}

// TestParsePlainAllocations: the common case, a canonical path, is free.
func TestParsePlainAllocations(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if _, err := Parse("/v1/kyt/score?address=0xabc"); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("Parse of a canonical target allocates %v times", n)
	}
}

// checkAgreement is the property of Parse: an accepted target's RawPath is
// read as its Path by every resolver, and is itself canonical.
func checkAgreement(t *testing.T, in string) {
	got, err := Parse(in)
	if err != nil {
		if !IsRefused(err) {
			t.Fatalf("Parse(%q): an error that is not a refusal: %v", in, err)
		}
		return
	}
	if !utf8.ValidString(got.Path) || !strings.HasPrefix(got.Path, "/") || !strings.HasPrefix(got.RawPath, "/") {
		t.Fatalf("Parse(%q) = %+v: not a rooted UTF-8 path", in, got)
	}
	for name, resolve := range reqtargettest.Resolvers {
		seen, ok := resolve(got.RawPath)
		if !ok {
			t.Fatalf("Parse(%q).RawPath = %q, which the %s resolver cannot read", in, got.RawPath, name)
		}
		want := got.Path
		if name == "nfkc" {
			// Names may change under NFKC, but never into ASCII:
			// route paths are ASCII, so the compatibility form may
			// start with a route's path only if Path does.
			want = norm.NFKC.String(got.Path)
			if a := asciiPrefix(seen); !strings.HasPrefix(got.Path, a) {
				t.Fatalf("Parse(%q): Tollgate matches %q, the nfkc resolver reads the forwarded %q as %q", in, got.Path, got.RawPath, seen)
			}
		}
		if seen != want {
			t.Fatalf("Parse(%q): Tollgate matches %q, the %s resolver reads the forwarded %q as %q", in, got.Path, name, got.RawPath, seen)
		}
	}
	again, err := Parse(got.RawPath)
	if err != nil || again.Path != got.Path || again.RawPath != got.RawPath || again.Normalized {
		t.Fatalf("Parse(%q) = %+v, but Parse of its RawPath = %+v, %v", in, got, again, err)
	}
	// An RFC 3986 server given the original target reads the same path,
	// up to merged slashes.
	if dec, ok := unescape(reqtargettest.WHATWG(strings.SplitN(rawPathOf(in), "?", 2)[0])); ok && !strings.Contains(dec, "//") && dec != got.Path {
		t.Fatalf("Parse(%q).Path = %q, an RFC 3986 resolver of the original reads %q", in, got.Path, dec)
	}
}

// asciiPrefix is the longest prefix of s that is ASCII.
func asciiPrefix(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return s[:i]
		}
	}
	return s
}

// rawPathOf is the path part of an origin- or absolute-form target, and
// what follows it: the query starts at the first "?", even within an
// absolute form's authority ("http://?/0" has the path "/").
func rawPathOf(in string) string {
	if p, q, ok := strings.Cut(in, "?"); ok && !strings.HasPrefix(in, "/") {
		return rawPathOf(p) + "?" + q
	}
	if strings.HasPrefix(in, "/") {
		return in
	}
	rest, _ := cutScheme(in)
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

func TestAgreement(t *testing.T) {
	for _, in := range []string{
		"/v1/hello", "/v1/../v1/kyt/score", "/v1/%2e%2e/v1/kyt/score", "/v1//kyt", "/v1/caf%C3%A9/",
		"/v1/a%3Fb/..", "/v1/100%25", "/v1/%41%42%43", "/a/b/c/./../../g", "/v1/%7e",
		"/v1/%25%36%42yt/score", "/v1/%EF%BD%8Byt/score", "/v1/caf%C3%A9/%E2%84%AA", "/v1/%25zz", "/v1/%25%7A1",
		"/v1/%E3%82%AB%E3%82%99", // katakana ka and a combining voiced mark: NFKC composes them
	} {
		checkAgreement(t, in)
	}
}

// FuzzParse checks that every accepted target is read the same way by
// Tollgate and by every resolver an upstream may use, and that no input
// makes Parse panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/", "/v1/hello", "/v1/../v1/kyt/score", "/v1/%2e%2e/v1/kyt/score", "/v1/.%2E/x", "/v1//x//",
		"/v1/..;/x", "/v1/%252e", "/v1/%C0%AE", "/v1/\\x", "/v1/%5c", "/v1/%2f", "/v1/caf%c3%a9",
		"http://h/v1/../x", "/v1/%EF%BC%8E", "/v1/a?b/../c", "/%", "/a/./b/../../c/",
		"/v1/%25%36%42yt", "/v1/%EF%BD%8Byt",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkAgreement(t, in)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, in := range []string{"/v1/kyt/score?address=0xabc", "/v1/../v1/kyt/%73core"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(in)
			}
		})
	}
}

func unescape(s string) (string, bool) {
	d, err := url.PathUnescape(s)
	return d, err == nil
}
