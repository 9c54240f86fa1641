package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/dashboard"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/secretbox"
)

// csrfKeyLabel names the key of the dashboard's CSRF tokens, derived from
// the master key, which every node of a cluster shares.
const csrfKeyLabel = "tollgate dashboard csrf v1"

// buildDashboard builds the dashboard wherever the configuration puts it
// (config.Config.DashboardMode): on the API's own mux (allow_api_origin);
// or, on its own origin, as s.dashboard, the handler of its own listener
// or host. On the API's origin the dashboard's path then sends browsers to
// where it is, or says it is off.
func (s *Server) buildDashboard(box *secretbox.Box, apiMux *http.ServeMux) error {
	cfg := s.cfg
	mode := cfg.DashboardMode()
	if mode == config.DashboardOff {
		s.log.Warn("dashboard off: serve it on an origin of its own with dashboard.listen (a listener of its own) " +
			"or dashboard.host (a host name of its own on the public listener); see the README's Dashboard section")
		apiMux.Handle(dashboard.Prefix, apierror.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return apierror.New(http.StatusNotFound, apierror.NotFound, "the dashboard is not served by this node")
		}))
		return nil
	}
	keys := box.DeriveKeys(csrfKeyLabel)
	if len(keys) == 0 {
		return errors.New("server: dashboard: no master key to derive the CSRF key from")
	}
	// The primary key's: after a master-key rotation, open forms are
	// reloaded.
	key := keys[0]
	dash, err := dashboard.New(dashboard.Options{
		Accounts: s.accounts, Keys: s.keys, Apps: s.oauth, Webhooks: s.webhooks, Orgs: s.store,
		Usage: s.store, Allowance: s.limiter, Audit: s.store,
		PublicURL: cfg.Dashboard.PublicURL, SharedOrigin: mode == config.DashboardAPIOrigin,
		CSRFKey: key, MaxBody: cfg.Server.MaxAPIBodyBytes,
		Clock: s.clock, Logger: s.log,
	})
	if err != nil {
		return err
	}
	if mode == config.DashboardAPIOrigin {
		s.log.Warn("INSECURE: the dashboard shares the API's origin (dashboard.allow_api_origin): any page a proxied "+
			"backend serves on it can act as the logged-in dashboard user and read new API keys; serve the dashboard "+
			"on dashboard.listen or dashboard.host instead", "dashboard", cfg.Dashboard.PublicURL+dashboard.Prefix)
		apiMux.Handle(dashboard.Prefix, dash)
		return nil
	}
	if mode == config.DashboardListener && !cfg.Dev && sameHostName(cfg.Dashboard.PublicURL, cfg.Server.PublicURL) {
		s.log.Warn("the dashboard's listener has the API's host name (dashboard.public_url, server.public_url): browsers "+
			"send a host's cookies to all its ports; the gateway keeps the dashboard's cookies from backends, but a page a "+
			"backend serves could plant one; give the dashboard a host name of its own", "dashboard", cfg.Dashboard.PublicURL)
	}
	apiMux.Handle(dashboard.Prefix, movedDashboard(cfg.Dashboard.PublicURL))
	mux := http.NewServeMux()
	mux.Handle(dashboard.Prefix, dash)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dashboard.Prefix, http.StatusFound)
	})
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	s.dashboard = mux
	return nil
}

// sameHostName reports whether two URLs name the same host, whatever
// their ports.
func sameHostName(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && config.CanonicalHost(ua.Host) == config.CanonicalHost(ub.Host)
}

// movedDashboard answers the dashboard's paths on the API's origin: a GET
// is sent to the same path on the dashboard's own origin, anything else
// is refused. Nothing is served there.
func movedDashboard(publicURL string) http.Handler {
	base := strings.TrimSuffix(publicURL, "/")
	return apierror.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return apierror.New(http.StatusNotFound, apierror.NotFound,
				"the dashboard is served at "+base+dashboard.Prefix)
		}
		to := base + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, to, http.StatusFound) //nolint:gosec // G710: a configured origin and a path under /dashboard/
		return nil
	})
}

// dashboardHost serves the dashboard, and nothing else, to requests for
// the dashboard's host, and every other request through next, which never
// serves the dashboard: no proxied content ever shares the dashboard's
// origin, whatever its port.
func dashboardHost(host string, dash, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if config.CanonicalHost(r.Host) == host {
			dash.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// wrapDashboard puts the dashboard in front of the public listener's
// handler when it is served on a host name of its own.
func (s *Server) wrapDashboard(core http.Handler) http.Handler {
	if s.dashboard == nil || s.cfg.DashboardMode() != config.DashboardHost {
		return core
	}
	return dashboardHost(s.cfg.Dashboard.Host, s.dashboard, core)
}

// buildDashboardListener builds the dashboard's own listener, when it has
// one: the public listener's middleware (chain), TLS settings and limits on
// slow and greedy clients.
func (s *Server) buildDashboardListener(resolver *clientip.Resolver, chain func(http.Handler, httpx.Middleware) http.Handler) {
	if s.dashboard == nil || s.cfg.DashboardMode() != config.DashboardListener {
		return
	}
	var bodyDeadline httpx.Middleware
	s.dashGuard, bodyDeadline = s.listenerGuard(listenerDashboard, resolver, s.cfg.Server.MaxConnectionsPerIP, 0)
	s.dashSrv = &http.Server{
		Handler:           chain(s.dashboard, bodyDeadline),
		ReadHeaderTimeout: s.public.ReadHeaderTimeout,
		IdleTimeout:       s.public.IdleTimeout,
		MaxHeaderBytes:    s.public.MaxHeaderBytes,
		ErrorLog:          s.public.ErrorLog,
		BaseContext:       s.public.BaseContext,
		Protocols:         s.public.Protocols,
	}
	if s.public.TLSConfig != nil {
		s.dashSrv.TLSConfig = s.public.TLSConfig.Clone()
	}
}

// serveDashboard serves the dashboard's listener, if any, on ln.
func (s *Server) serveDashboard(serve func(name string, f func() error)) {
	if s.dashSrv == nil {
		return
	}
	if s.dashSrv.TLSConfig != nil {
		go serve("dashboard", func() error { return s.dashSrv.ServeTLS(s.dashLn, "", "") })
		return
	}
	go serve("dashboard", func() error { return s.dashSrv.Serve(s.dashLn) })
}

// DashboardAddr is the dashboard listener's address, "" when the dashboard
// has none.
func (s *Server) DashboardAddr() string {
	if s.dashLn == nil {
		return ""
	}
	return s.dashLn.Addr().String()
}

// DashboardURL is where the dashboard's pages are, "" when this node
// serves none.
func (s *Server) DashboardURL() string {
	switch s.cfg.DashboardMode() {
	case config.DashboardOff:
		return ""
	case config.DashboardListener:
		scheme := "https" // the public listener's TLS settings
		if s.cfg.Server.InsecureHTTP {
			scheme = "http"
		}
		return scheme + "://" + s.DashboardAddr() + dashboard.Prefix
	}
	return strings.TrimSuffix(s.cfg.Dashboard.PublicURL, "/") + dashboard.Prefix
}
