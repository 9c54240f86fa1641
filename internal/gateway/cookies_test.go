package gateway

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/config"
)

// private is a stand-in for dashboard.IsCookie.
func private(name string) bool { return name == "tg_session" || name == "__Host-tg_session" }

// Private cookies never reach the upstream, whatever the spacing and the
// number of Cookie fields, and an upstream cannot set one; every other
// cookie passes both ways.
func TestPrivateCookies(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Cookies", strings.Join(r.Header.Values("Cookie"), " | "))
		w.Header().Add("Set-Cookie", "theirs=1; Path=/")
		w.Header().Add("Set-Cookie", "__Host-tg_session=planted; Path=/; Secure")
		w.Header().Add("Set-Cookie", " tg_session=planted")
	}))
	t.Cleanup(b.Close)
	g, err := New([]config.Route{{Path: "/v1/", Upstream: b.URL, Public: true}}, Options{PrivateCookie: private})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cookies []string
		want    string
	}{
		{[]string{"a=1; tg_session=secret; b=2"}, "a=1; b=2"},
		{[]string{"tg_session=secret"}, ""},
		{[]string{"a=1", "__Host-tg_session=secret;b=2"}, "a=1; b=2"},
		{[]string{" tg_session = secret ;a=1"}, "a=1"},
		{[]string{"a=1; b=2"}, "a=1; b=2"},
		{[]string{"a=1", "b=2"}, "a=1 | b=2"}, // untouched when nothing is private
		{nil, ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
		for _, c := range tt.cookies {
			r.Header.Add("Cookie", c)
		}
		w := serve(g, r, "192.0.2.1")
		if got := w.Header().Get("X-Cookies"); got != tt.want {
			t.Errorf("Cookie %q reached the upstream as %q, want %q", tt.cookies, got, tt.want)
		}
		if got := w.Header().Values("Set-Cookie"); !slices.Equal(got, []string{"theirs=1; Path=/"}) {
			t.Errorf("Set-Cookie to the client: %q", got)
		}
	}
	if got, ok := dropCookies([]string{"a=1"}, private); !ok || len(got) != 1 || got[0] != "a=1" {
		t.Errorf("dropCookies without a private cookie: %q %v", got, ok)
	}
	vals := []string{"a=1; b=2"}
	if n := testing.AllocsPerRun(100, func() { dropCookies(vals, private) }); n > 0 {
		t.Errorf("%v allocations without a private cookie", n)
	}
}

// dropCookies reads a header any client writes: whatever it is, no private
// cookie is left, and every other pair is kept.
func FuzzDropCookies(f *testing.F) {
	for _, s := range []string{"a=1; tg_session=x", "tg_session", ";;", "=;=", " tg_session =x; __Host-tg_session=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got, ok := dropCookies([]string{header}, private)
		if ok != (len(got) > 0) {
			t.Fatalf("%q: ok %v with %q", header, ok, got)
		}
		for _, v := range got {
			for pair := range strings.SplitSeq(v, ";") {
				if name, _, _ := strings.Cut(pair, "="); private(strings.TrimSpace(name)) {
					t.Fatalf("%q: %q left in %q", header, name, v)
				}
			}
		}
	})
}
