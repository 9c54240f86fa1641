package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/internal/config"
)

func TestFoldPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/KYT/score": "/v1/kyt/score", "/v1/kyt./score": "/v1/kyt/score", "/v1/kyt...": "/v1/kyt",
		"/v1/a.b/": "/v1/a.b/", "/v1/.../x": "/v1/.../x", "/": "/", "/V1.": "/v1",
	} {
		if got := foldPath(in); got != want {
			t.Errorf("foldPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzFoldedHasPrefix: the allocation-free comparison agrees with folding
// both sides.
func FuzzFoldedHasPrefix(f *testing.F) {
	f.Add("/v1/KYT./score", "/v1/kyt/")
	f.Add("/v1/kyt", "/v1/kyt/")
	f.Add("/a../b", "/a/b")
	f.Fuzz(func(t *testing.T, path, prefix string) {
		folded := foldPath(prefix)
		if got, want := foldedHasPrefix(path, folded), strings.HasPrefix(foldPath(path), folded); got != want {
			t.Fatalf("foldedHasPrefix(%q, %q) = %v, want %v", path, folded, got, want)
		}
	})
}

// A request that matches a laxer route only by its case or trailing dots,
// while an upstream that folds them would read it under a stricter route,
// is refused; one the folding reading leaves under the same requirements is
// served.
func TestShadowedRoutes(t *testing.T) {
	routes := []config.Route{
		{Path: "/v1/", Upstream: "http://127.0.0.1:1"},
		{Path: "/v1/kyt/", Upstream: "http://127.0.0.1:1", Scopes: []string{"kyt.read"}},
		{Path: "/open/", Upstream: "http://127.0.0.1:1", Public: true},
		{Path: "/open/Docs/", Upstream: "http://127.0.0.1:1", Public: true},
		{Path: "/api2/", Upstream: "http://127.0.0.1:1", Scopes: []string{"a"}},
		{Path: "/api2/pub/", Upstream: "http://127.0.0.1:1", Public: true},
	}
	g, err := New(routes, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/v1/KYT/score":  "refused",
		"/v1/Kyt/score":  "refused",
		"/v1/kyt./score": "refused",
		"/v1/kyt../x":    "refused",
		"/v1/kyt/score":  "/v1/kyt/",
		"/v1/hello":      "/v1/",
		"/v1/HELLO":      "/v1/",
		"/v1/kytx/score": "/v1/",
		"/open/docs/x":   "/open/", // public either way
		"/api2/PUB/x":    "/api2/", // the folded route is laxer: nothing to fear
	} {
		r, _ := http.NewRequest("GET", "http://api.example.com"+path, nil)
		rt, err := g.match(r)
		got := "refused"
		if err == nil {
			got = rt.prefix
		}
		if got != want {
			t.Errorf("%s: %s (%v), want %s", path, got, err, want)
		}
	}
}
