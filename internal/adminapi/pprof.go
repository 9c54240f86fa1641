package adminapi

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
)

// pprofPrefix is where the profiles are served; net/http/pprof expects
// /debug/pprof/, so it sees the path without /admin.
const pprofPrefix = "/admin/debug/pprof/"

// servePprof registers Go's runtime profiles behind the admin token:
//
//	curl -H "Authorization: Bearer $TOKEN" \
//	  'http://127.0.0.1:8081/admin/debug/pprof/profile?seconds=30' > cpu.pprof
func (a *API) servePprof(handle func(string, apierror.HandlerFunc)) {
	wrap := func(h http.HandlerFunc) apierror.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/debug/pprof/" + strings.TrimPrefix(r.URL.Path, pprofPrefix)
			h(w, r2)
			return nil
		}
	}
	handle("GET "+pprofPrefix, wrap(pprof.Index)) // also heap, allocs, goroutine, block, mutex…
	handle("GET "+pprofPrefix+"cmdline", wrap(pprof.Cmdline))
	handle("GET "+pprofPrefix+"profile", wrap(pprof.Profile))
	handle("GET "+pprofPrefix+"symbol", wrap(pprof.Symbol))
	handle("GET "+pprofPrefix+"trace", wrap(pprof.Trace))
}
