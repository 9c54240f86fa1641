package dashboard

import "net/http"

// routes registers every page. Each page family registers its own routes
// in its file (keys.go, apps.go, webhooks.go, metrics.go, security.go).
func (d *Dashboard) routes() {
	d.mux.HandleFunc("GET /dashboard/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"overview", http.StatusFound)
	})
	d.mux.HandleFunc("GET /dashboard/login", d.login)
	d.mux.HandleFunc("POST /dashboard/login", d.login)
	d.mux.HandleFunc("GET /dashboard/register", d.register)
	d.mux.HandleFunc("POST /dashboard/register", d.register)
	d.mux.HandleFunc("POST /dashboard/logout", d.logout)
	d.overviewRoutes()
	d.keyRoutes()
	d.appRoutes()
	d.webhookRoutes()
	d.metricRoutes()
	d.securityRoutes()
}
