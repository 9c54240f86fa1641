package httpx

import (
	"net/http"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
)

// NotFoundOrMethod answers a request no pattern of mux matched: 405 with the
// Allow header when the path exists for other methods, 404 otherwise.
func NotFoundOrMethod(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	probe := r.WithContext(r.Context()) // a shallow copy whose method we may change
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		apierror.Write(w, r, apierror.New(http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "method not allowed").
			WithHeader("Allow", strings.Join(allow, ", ")))
		return
	}
	apierror.Write(w, r, apierror.ErrNotFound)
}
