package server

import (
	"net/http"
	"testing"
)

// TestFrontDoor: proxied paths go to the gateway without the mux, the mux
// still serves Tollgate's own paths, and a path with ".." or "//" is served
// as its canonical form, never forwarded as it is.
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
		{"/status/../status", 200, ""},
		{"/v1/../api/v1/apikeys", 401, ""}, // the control plane's answer
		{"/v1//data", 401, ""},
		{"/v1/%2e%2e/healthz", 200, ""},
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
	if len(paths) != 2 || paths[0] != "GET /status" || paths[1] != "GET /status" {
		t.Errorf("the backend served %q, want GET /status twice", paths)
	}
}
