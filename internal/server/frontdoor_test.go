package server

import (
	"net/http"
	"testing"
)

func TestIsCleanPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/v1/data": true, "/v1/data/": true, "/status": true,
		"": false, "v1": false, "/v1//data": false, "/v1/./data": false, "/v1/../api/keys": false,
		"/v1/..": false, "/v1/.": false, "//": false, "/v1/data//": false,
	} {
		if got := isCleanPath(p); got != want {
			t.Errorf("isCleanPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestFrontDoor: proxied paths go to the gateway without the mux, and the
// mux still serves Tollgate's own paths and cleans up the others (a path with
// ".." or "//" is redirected, never forwarded as it is).
func TestFrontDoor(t *testing.T) {
	backend := newRecorder(t, nil)
	n := start(t, baseYAML(t.TempDir(), backend.URL), nil)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		path     string
		status   int
		location string // of a redirect
	}{
		{"/status", 200, ""},
		{"/status/../status", http.StatusTemporaryRedirect, "/status"},
		{"/v1/../api/v1/keys", http.StatusTemporaryRedirect, "/api/v1/keys"},
		{"/v1//data", http.StatusTemporaryRedirect, "/v1/data"},
		{"/healthz", 200, ""},
		{"/v1/data", 401, ""},
	} {
		res, err := client.Get(n.base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != c.status || res.Header.Get("Location") != c.location {
			t.Errorf("GET %s: %d, Location %q; want %d, %q", c.path, res.StatusCode, res.Header.Get("Location"), c.status, c.location)
		}
	}
	var paths []string
	for _, r := range backend.all() {
		paths = append(paths, r.Method+" "+r.Path)
	}
	if len(paths) != 1 || paths[0] != "GET /status" {
		t.Errorf("the backend served %q, want only GET /status", paths)
	}
}
