package config

import (
	"path/filepath"
)

// DevDataDir is where `tollgate serve --dev` keeps its state.
const DevDataDir = "./tollgate-data"

// Dev returns the configuration of `tollgate serve --dev`: plain HTTP on
// 127.0.0.1:8080, the admin API on 127.0.0.1:8081, the dashboard on its own
// listener at 127.0.0.1:8082 (the production shape: its own origin, never
// the one of the proxied demo routes), SQLite under dataDir, and
// two routes to the built-in demo upstream at demoURL: /v1/, and /v1/kyt/,
// which requires the kyt.read scope; webhooks may target local http://
// receivers. The environment
// still applies on top; the result is validated.
func Dev(dataDir, demoURL string, environ []string) (Config, error) {
	cfg := Default()
	cfg.Dev = true
	cfg.Server.InsecureHTTP = true
	cfg.Admin.Listen = "127.0.0.1:8081"
	cfg.Dashboard.Listen = DevDashboardListen
	cfg.Storage.SQLite.Path = filepath.Join(dataDir, "tollgate.db")
	cfg.Log.Format = "text"
	// Local receivers (http://localhost:…) for webhooks under development.
	cfg.Webhooks.AllowPrivateNetworks, cfg.Webhooks.AllowHTTP = true, true
	cfg.Routes = []Route{
		{Path: "/v1/", Upstream: demoURL},
		{Path: "/v1/kyt/", Upstream: demoURL, Scopes: []string{"kyt.read"}},
	}
	return finish(cfg, environ)
}
