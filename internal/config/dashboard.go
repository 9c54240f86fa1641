package config

import (
	"net"
	"net/url"
	"regexp"
	"strings"
)

// DevDashboardListen is the dashboard's own listener under `serve --dev`.
const DevDashboardListen = "127.0.0.1:8082"

// Dashboard configures where the web dashboard is served. A logged-in
// dashboard page can read and change the organization's credentials, so it
// must never share an origin (scheme, host and port) with content Tollgate
// proxies: a page of any backend on the same origin could read the
// dashboard with the user's cookies. Hence the dashboard is served on its
// own origin, as one of:
//
//   - Listen: a listener of its own (a port of its own), with the public
//     listener's TLS settings and middleware;
//   - Host: a host name of its own on the public listener, which serves
//     that host nothing but the dashboard, and the dashboard to no other
//     host;
//   - AllowAPIOrigin: on the API's own origin, under /dashboard/, as
//     before; only where no proxied route serves untrusted content (a
//     warning is logged at every start).
//
// With none of them the dashboard is off (outside `serve --dev`, which
// sets Listen to DevDashboardListen). Gateway-role nodes serve no
// dashboard whatever this says. The zero value is off.
type Dashboard struct {
	// Listen is the host:port of the dashboard's own listener.
	Listen string `yaml:"listen" env:"LISTEN"`
	// Host is the dashboard's own host name (dashboard.example.com, no
	// port): requests for it on the public listener get the dashboard and
	// nothing else; requests for any other host get no dashboard. The
	// certificate of server.tls must cover it.
	Host string `yaml:"host" env:"HOST"`
	// AllowAPIOrigin serves the dashboard under /dashboard/ on the public
	// listener, on the same origin as the API and every proxied route. Any
	// backend page on that origin can then act as the logged-in user.
	AllowAPIOrigin bool `yaml:"allow_api_origin" env:"ALLOW_API_ORIGIN"`
	// PublicURL is the dashboard's external base URL
	// (https://dashboard.example.com): the origin its forms must come from,
	// and whether its cookies are Secure with the __Host- prefix (https).
	// Default: from Listen (scheme as server.insecure_http says), from Host
	// (server.public_url's scheme and port), or server.public_url with
	// AllowAPIOrigin.
	PublicURL string `yaml:"public_url" env:"PUBLIC_URL"`
}

// DashboardMode says where a node serves the dashboard.
type DashboardMode int

// Where the dashboard is served.
const (
	DashboardOff       DashboardMode = iota // not at all
	DashboardListener                       // on Dashboard.Listen
	DashboardHost                           // on the public listener, for Dashboard.Host only
	DashboardAPIOrigin                      // on the public listener, under /dashboard/, for every host
)

// String names the mode in logs.
func (m DashboardMode) String() string {
	switch m {
	case DashboardListener:
		return "listener"
	case DashboardHost:
		return "host"
	case DashboardAPIOrigin:
		return "api_origin"
	}
	return "off"
}

// DashboardMode returns where this node serves the dashboard.
func (c *Config) DashboardMode() DashboardMode {
	d := c.Dashboard
	switch {
	case c.Role == "gateway":
		return DashboardOff
	case d.Listen != "":
		return DashboardListener
	case d.Host != "":
		return DashboardHost
	case d.AllowAPIOrigin:
		return DashboardAPIOrigin
	}
	return DashboardOff
}

// CanonicalHost returns the host name of a Host header or URL authority as
// the dashboard's Host setting is compared with it: without the port or
// the brackets of an IPv6 literal, in lower case, without a trailing dot.
func CanonicalHost(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// fillDashboard sets the dashboard's derived defaults; server.public_url
// must be set already.
func (c *Config) fillDashboard() {
	d := &c.Dashboard
	d.Host = strings.TrimSuffix(strings.ToLower(d.Host), ".")
	if d.PublicURL != "" {
		return
	}
	switch {
	case d.Listen != "":
		scheme := "https"
		if c.Server.InsecureHTTP {
			scheme = "http"
		}
		d.PublicURL = scheme + "://" + d.Listen
	case d.Host != "":
		u, err := url.Parse(c.Server.PublicURL)
		if err != nil {
			return // reported by Validate
		}
		host := d.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if p := u.Port(); p != "" {
			host += ":" + p
		}
		d.PublicURL = u.Scheme + "://" + host
	case d.AllowAPIOrigin:
		d.PublicURL = c.Server.PublicURL
	}
}

// hostnameRE is a DNS host name (RFC 1123 section 2.1), in lower case.
var hostnameRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c *Config) validateDashboard(bad func(string, ...any)) {
	d := c.Dashboard
	set := 0
	for _, on := range []bool{d.Listen != "", d.Host != "", d.AllowAPIOrigin} {
		if on {
			set++
		}
	}
	if set > 1 {
		bad("dashboard: listen, host and allow_api_origin are exclusive; choose one")
	}
	if d.Listen != "" {
		if _, _, err := net.SplitHostPort(d.Listen); err != nil {
			bad("dashboard.listen %q: %v", d.Listen, err)
		}
		for name, addr := range map[string]string{
			"server.listen": c.Server.Listen, "admin.listen": c.Admin.Listen,
			"auth_service.listen": c.AuthService.Listen, "auth_service.grpc_listen": c.AuthService.GRPCListen,
		} {
			if addr == d.Listen && !strings.HasSuffix(addr, ":0") {
				bad("dashboard.listen must differ from %s: the dashboard needs an origin of its own", name)
			}
		}
	}
	api, apiErr := url.Parse(c.Server.PublicURL)
	if d.Host != "" {
		switch {
		case !hostnameRE.MatchString(d.Host) && net.ParseIP(d.Host) == nil:
			bad("dashboard.host %q: a host name without scheme, port or path is required (dashboard.example.com)", d.Host)
		case apiErr == nil && CanonicalHost(api.Host) == d.Host:
			bad("dashboard.host %q is the API's host (server.public_url): the dashboard needs a host name of its own", d.Host)
		}
		for i, r := range c.Routes {
			if r.Host != "" && CanonicalHost(r.Host) == d.Host {
				bad("routes[%d].host %q is dashboard.host: that host serves the dashboard only, never a proxied route", i, r.Host)
			}
		}
	}
	if d.PublicURL == "" {
		return
	}
	u, err := url.Parse(d.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		bad("dashboard.public_url %q: an absolute http(s) URL without path, query or user info is required", d.PublicURL)
		return
	}
	sameAsAPI := apiErr == nil && strings.EqualFold(u.Scheme+"://"+u.Host, api.Scheme+"://"+api.Host)
	switch {
	case d.AllowAPIOrigin && !sameAsAPI:
		bad("dashboard.public_url %q: with allow_api_origin the dashboard is on server.public_url's origin", d.PublicURL)
	case !d.AllowAPIOrigin && sameAsAPI && u.Port() != "0": // port 0 (a free port, in tests) names no origin
		bad("dashboard.public_url %q is the API's origin (server.public_url): the dashboard needs an origin of its own, or allow_api_origin", d.PublicURL)
	case d.Host != "" && CanonicalHost(u.Host) != d.Host:
		bad("dashboard.public_url %q must name dashboard.host %q", d.PublicURL, d.Host)
	case set == 0:
		bad("dashboard.public_url is set but the dashboard is off: set dashboard.listen or dashboard.host")
	}
}
