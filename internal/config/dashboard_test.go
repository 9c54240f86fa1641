package config

import (
	"strings"
	"testing"
)

// Where the dashboard is served, and the public URL it derives.
func TestDashboardModes(t *testing.T) {
	const plain = "server: {listen: 127.0.0.1:8080, insecure_http: true}\n"
	const tlsAPI = "server: {listen: 0.0.0.0:8443, tls: {cert_file: c, key_file: k}, public_url: 'https://api.example.com:8443'}\n"
	tests := []struct {
		name, yaml string
		mode       DashboardMode
		publicURL  string
	}{
		{"off by default", plain, DashboardOff, ""},
		{"own listener, plain", plain + "dashboard: {listen: 127.0.0.1:8082}", DashboardListener, "http://127.0.0.1:8082"},
		{"own listener, tls", tlsAPI + "dashboard: {listen: 0.0.0.0:9443}", DashboardListener, "https://0.0.0.0:9443"},
		{"own listener, public url", tlsAPI + "dashboard: {listen: 0.0.0.0:9443, public_url: 'https://dash.example.com'}", DashboardListener, "https://dash.example.com"},
		{"own host takes the API's scheme and port", tlsAPI + "dashboard: {host: Dash.Example.com.}", DashboardHost, "https://dash.example.com:8443"},
		{"api origin", plain + "dashboard: {allow_api_origin: true}", DashboardAPIOrigin, "http://127.0.0.1:8080"},
		{"gateway nodes serve none", plain + "dashboard: {listen: 127.0.0.1:8082}\nrole: gateway\nauth_service: {url: 'http://auth:8090'}", DashboardOff, "http://127.0.0.1:8082"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.DashboardMode(); got != tt.mode {
				t.Errorf("mode = %v, want %v", got, tt.mode)
			}
			if cfg.Dashboard.PublicURL != tt.publicURL {
				t.Errorf("public_url = %q, want %q", cfg.Dashboard.PublicURL, tt.publicURL)
			}
		})
	}
	cfg, err := Dev(t.TempDir(), "http://127.0.0.1:9", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DashboardMode() != DashboardListener || cfg.Dashboard.Listen != DevDashboardListen || cfg.Dashboard.PublicURL != "http://"+DevDashboardListen {
		t.Errorf("serve --dev: %v %+v", cfg.DashboardMode(), cfg.Dashboard)
	}
	cfg, err = Parse([]byte(plain), []string{"TOLLGATE_DASHBOARD_HOST=dash.example.com"})
	if err != nil || cfg.DashboardMode() != DashboardHost || cfg.Dashboard.PublicURL != "http://dash.example.com:8080" {
		t.Errorf("from the environment: %v %+v %v", cfg.DashboardMode(), cfg.Dashboard, err)
	}
}

func TestDashboardValidation(t *testing.T) {
	const base = "server: {listen: 127.0.0.1:8080, insecure_http: true, public_url: 'http://api.example.com'}\nadmin: {listen: 127.0.0.1:8081}\n"
	tests := []struct{ name, yaml, want string }{
		{"listen and host", base + "dashboard: {listen: 127.0.0.1:8082, host: dash.example.com}", "exclusive"},
		{"host and api origin", base + "dashboard: {host: dash.example.com, allow_api_origin: true}", "exclusive"},
		{"listen and api origin", base + "dashboard: {listen: 127.0.0.1:8082, allow_api_origin: true}", "exclusive"},
		{"bad listen", base + "dashboard: {listen: 8082}", "dashboard.listen"},
		{"listen on the public listener", base + "dashboard: {listen: 127.0.0.1:8080}", "must differ from server.listen"},
		{"listen on the admin listener", base + "dashboard: {listen: 127.0.0.1:8081}", "must differ from admin.listen"},
		{"host with a port", base + "dashboard: {host: 'dash.example.com:8443'}", "without scheme, port or path"},
		{"host with a scheme", base + "dashboard: {host: 'https://dash.example.com'}", "without scheme, port or path"},
		{"host with a path", base + "dashboard: {host: 'dash.example.com/x'}", "without scheme, port or path"},
		{"host of the API", base + "dashboard: {host: API.example.com}", "the API's host"},
		{"route on the dashboard host", base + "dashboard: {host: dash.example.com}\nroutes: [{path: /v1/, upstream: 'http://b', host: 'dash.example.com:8080'}]", "routes[0].host"},
		{"public url with a path", base + "dashboard: {listen: 127.0.0.1:8082, public_url: 'http://dash.example.com/admin/'}", "without path"},
		{"public url not http", base + "dashboard: {listen: 127.0.0.1:8082, public_url: 'ftp://dash.example.com'}", "absolute http(s) URL"},
		{"public url of the API", base + "dashboard: {listen: 127.0.0.1:8082, public_url: 'HTTP://api.example.com'}", "the API's origin"},
		{"public url of another host", base + "dashboard: {host: dash.example.com, public_url: 'http://other.example.com'}", "must name dashboard.host"},
		{"api origin elsewhere", base + "dashboard: {allow_api_origin: true, public_url: 'http://dash.example.com'}", "with allow_api_origin"},
		{"public url alone", base + "dashboard: {public_url: 'http://dash.example.com'}", "the dashboard is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	for _, ok := range []string{
		base + "dashboard: {listen: 127.0.0.1:8082}",
		base + "dashboard: {host: dash.example.com}\nroutes: [{path: /v1/, upstream: 'http://b', host: api.example.com}]",
		base + "dashboard: {host: 10.0.0.7}",
		base + "dashboard: {allow_api_origin: true}",
		"server: {listen: '127.0.0.1:0', insecure_http: true}\ndashboard: {listen: '127.0.0.1:0'}",
	} {
		if _, err := Parse([]byte(ok), nil); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestCanonicalHost(t *testing.T) {
	for in, want := range map[string]string{
		"Dash.Example.COM": "dash.example.com", "dash.example.com:8443": "dash.example.com",
		"dash.example.com.": "dash.example.com", "[::1]:8080": "::1", "[::1]": "::1", "": "",
	} {
		if got := CanonicalHost(in); got != want {
			t.Errorf("CanonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// CanonicalHost reads the Host header of every request on a public listener
// with dashboard.host: whatever the header, the result is lower case, and a
// host name is the same with or without a port.
func FuzzCanonicalHost(f *testing.F) {
	for _, s := range []string{"dash.example.com", "Dash.Example.com:8443", "[::1]:80", "dash.example.com.", "", ":", "[", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got := CanonicalHost(host)
		if got != strings.ToLower(got) {
			t.Fatalf("CanonicalHost(%q) = %q: not lower case", host, got)
		}
		if hostnameRE.MatchString(strings.ToLower(host)) {
			if withPort := CanonicalHost(host + ":443"); withPort != got {
				t.Fatalf("CanonicalHost(%q) = %q but with a port %q", host, got, withPort)
			}
		}
	})
}
