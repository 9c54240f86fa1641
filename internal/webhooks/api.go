package webhooks

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Caller is who calls the API, as the authorize function found: the
// organization whose endpoints it manages, and the actor of the audit log.
type Caller struct {
	OrgID string
	Actor store.Actor
}

// AuthorizeFunc authorizes a request of the API: write is false for the GET
// routes (scope webhook.read) and true for the others (webhook.write). It
// returns the caller, or the error to answer, such as a 401 or a 403
// INSUFFICIENT_SCOPE *apierror.Error, which is sent as it is.
type AuthorizeFunc func(r *http.Request, write bool) (Caller, error)

// API serves /api/v1/webhooks; it is an http.Handler, safe for concurrent
// use. Build it with NewAPI.
//
//	POST   /api/v1/webhooks                                      create (201, the secret once)
//	GET    /api/v1/webhooks                                      list
//	GET    /api/v1/webhooks/{id}                                 get
//	PATCH  /api/v1/webhooks/{id}                                 update
//	DELETE /api/v1/webhooks/{id}                                 delete
//	POST   /api/v1/webhooks/{id}/rotate-secret                   new secret (once)
//	POST   /api/v1/webhooks/{id}/test                            queue a test event (202)
//	GET    /api/v1/webhooks/{id}/deliveries                      delivery log (?status, ?limit, ?before)
//	GET    /api/v1/webhooks/{id}/deliveries/{delivery_id}        a delivery, its payload and attempts
//	POST   /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver  queue it again (202)
//
// Another organization's IDs, endpoints and deliveries, are 404 NOT_FOUND
// on every route, with the same body as IDs that exist nowhere, after the
// same store reads (the organization is checked where each object is read:
// Service.endpoint, Service.delivery, and the organization's filter of the
// delivery log). The delivery log of a deleted endpoint stays readable
// until it is purged.
type API struct {
	svc       *Service
	authorize AuthorizeFunc
	maxBody   int64
	mux       *http.ServeMux
}

// Delivery log page sizes: a page holds DefaultPageSize deliveries unless
// ?limit says otherwise, and at most MaxPageSize.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// NewAPI returns the API of svc. authorize is called first by every route
// (see AuthorizeFunc); maxBody bounds JSON request bodies, in bytes (64 KiB
// if not positive).
func NewAPI(svc *Service, authorize func(r *http.Request, write bool) (Caller, error), maxBody int64) *API {
	if maxBody <= 0 {
		maxBody = 64 << 10
	}
	a := &API{svc: svc, authorize: authorize, maxBody: maxBody, mux: http.NewServeMux()}
	handle := func(pattern string, write bool, h func(http.ResponseWriter, *http.Request, Caller) error) {
		a.mux.Handle(pattern, apierror.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			c, err := a.authorize(r, write)
			if err != nil {
				return err
			}
			if c.OrgID == "" {
				return apierror.ErrForbidden
			}
			return h(w, r, c)
		}))
	}
	const base = "/api/v1/webhooks"
	handle("POST "+base, true, a.create)
	handle("GET "+base, false, a.list)
	handle("GET "+base+"/{id}", false, a.get)
	handle("PATCH "+base+"/{id}", true, a.update)
	handle("DELETE "+base+"/{id}", true, a.delete)
	handle("POST "+base+"/{id}/rotate-secret", true, a.rotateSecret)
	handle("POST "+base+"/{id}/test", true, a.test)
	handle("GET "+base+"/{id}/deliveries", false, a.deliveries)
	handle("GET "+base+"/{id}/deliveries/{delivery_id}", false, a.delivery)
	handle("POST "+base+"/{id}/deliveries/{delivery_id}/redeliver", true, a.redeliver)
	return a
}

// ServeHTTP routes the request; unknown paths and methods get the common
// error body.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		httpx.NotFoundOrMethod(a.mux, w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// CreateRequest is the body of POST /api/v1/webhooks.
type CreateRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

// Input returns the service's input.
func (req CreateRequest) Input() Input {
	return Input(req)
}

// UpdateRequest is the body of PATCH /api/v1/webhooks/{id} (also as
// application/merge-patch+json): absent fields are left alone. url,
// event_types and enabled cannot be null; a null description clears it.
type UpdateRequest struct {
	URL         Optional[string]   `json:"url"`
	EventTypes  Optional[[]string] `json:"event_types"`
	Description Optional[string]   `json:"description"`
	Enabled     Optional[bool]     `json:"enabled"`
}

// Patch returns the service's patch, or a 400 for a field that cannot be
// null.
func (req UpdateRequest) Patch() (Patch, error) {
	var p Patch
	for _, f := range []struct {
		name string
		null bool
	}{{"url", req.URL.Null}, {"event_types", req.EventTypes.Null}, {"enabled", req.Enabled.Null}} {
		if f.null {
			return Patch{}, apierror.Invalid(f.name, "%s cannot be null", f.name)
		}
	}
	if req.URL.Set {
		p.URL = &req.URL.Value
	}
	if req.EventTypes.Set {
		p.EventTypes = &req.EventTypes.Value
	}
	if req.Description.Set {
		p.Description = &req.Description.Value // null: ""
	}
	if req.Enabled.Set {
		p.Enabled = &req.Enabled.Value
	}
	return p, nil
}

// Optional is a request field that distinguishes absent, null and a value
// (httpx.Optional).
type Optional[T any] = httpx.Optional[T]

func (a *API) decode(r *http.Request, v any) error {
	// RFC 7396 bodies read the same as plain JSON here.
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/merge-patch+json") {
		r.Header.Set("Content-Type", "application/json")
	}
	return httpx.DecodeJSON(r, a.maxBody, v)
}

// noBody refuses a body on a route that takes none, but for an empty object.
func (a *API) noBody(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	var empty struct{}
	return a.decode(r, &empty)
}

func (a *API) create(w http.ResponseWriter, r *http.Request, c Caller) error {
	var req CreateRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	e, secret, err := a.svc.Create(r.Context(), c.OrgID, req.Input(), c.Actor)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/webhooks/"+e.ID)
	return httpx.WriteJSON(w, http.StatusCreated, CreatedEndpoint{Endpoint: e, Secret: secret, Warning: ShownOnce})
}

func (a *API) list(w http.ResponseWriter, r *http.Request, c Caller) error {
	es, err := a.svc.List(r.Context(), c.OrgID)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, List[Endpoint]{Data: es})
}

// endpointID is the {id} of the path; one that cannot be an endpoint's is
// not found without asking the store.
func endpointID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !ids.Valid(ids.WebhookEndpoint, id) {
		return "", ErrEndpointNotFound
	}
	return id, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	e, err := a.svc.Get(r.Context(), c.OrgID, id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, e)
}

func (a *API) update(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	var req UpdateRequest
	if err := a.decode(r, &req); err != nil {
		return err
	}
	p, err := req.Patch()
	if err != nil {
		return err
	}
	e, err := a.svc.Update(r.Context(), c.OrgID, id, p, c.Actor)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, e)
}

// Deleted is the answer to an endpoint's deletion.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	if err := a.svc.Delete(r.Context(), c.OrgID, id, c.Actor); err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, Deleted{ID: id, Deleted: true})
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	if err := a.noBody(r); err != nil {
		return err
	}
	secret, expires, err := a.svc.RotateSecret(r.Context(), c.OrgID, id, c.Actor)
	if err != nil {
		return err
	}
	e, err := a.svc.Get(r.Context(), c.OrgID, id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, RotatedSecret{
		Endpoint: e, Secret: secret, PreviousSecretExpiresAt: optTime(expires), Warning: ShownOnce,
	})
}

func (a *API) test(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	if err := a.noBody(r); err != nil {
		return err
	}
	d, err := a.svc.Test(r.Context(), c.OrgID, id)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, DeliveryView(d))
}

func (a *API) deliveries(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	f, err := parseDeliveryQuery(r.URL.Query())
	if err != nil {
		return err
	}
	limit := f.Limit
	f.Limit = limit + 1 // one more tells whether there is a next page
	ds, err := a.svc.EndpointDeliveries(r.Context(), c.OrgID, id, f)
	if err != nil {
		return err
	}
	page := DeliveryPage{Data: make([]Delivery, 0, min(len(ds), limit))}
	for i, d := range ds {
		if i == limit {
			next := ds[limit-1].ID
			page.NextBefore = &next
			break
		}
		page.Data = append(page.Data, DeliveryView(d))
	}
	return httpx.WriteJSON(w, http.StatusOK, page)
}

// parseDeliveryQuery reads the parameters of the delivery log: status
// (pending, succeeded or failed), limit (1 to MaxPageSize, default
// DefaultPageSize) and before (a delivery ID, the previous page's
// next_before). Each may be given once; every error is a 400.
func parseDeliveryQuery(v url.Values) (store.WebhookDeliveryFilter, error) {
	f := store.WebhookDeliveryFilter{Limit: DefaultPageSize}
	for name, vs := range v {
		switch name {
		case "status", "limit", "before":
			if len(vs) > 1 {
				return f, apierror.Invalid(name, "%s must be given at most once", name)
			}
		default:
			return f, apierror.Invalid(truncate(name, 64), "unknown parameter %q; use status, limit or before", truncate(name, 64))
		}
	}
	if s := v.Get("status"); s != "" {
		switch st := store.WebhookDeliveryStatus(s); st {
		case store.WebhookPending, store.WebhookSucceeded, store.WebhookFailed:
			f.Status = st
		default:
			return f, apierror.Invalid("status", "status must be pending, succeeded or failed")
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			return f, apierror.Invalid("limit", "limit must be between 1 and %d", MaxPageSize)
		}
		f.Limit = n
	}
	if s := v.Get("before"); s != "" {
		if !ids.Valid(ids.WebhookDelivery, s) {
			return f, errCursor
		}
		f.Before = s
	}
	return f, nil
}

// endpointDelivery reads the {delivery_id} of the path, a delivery of the
// {id} endpoint of the caller's organization.
func (a *API) endpointDelivery(r *http.Request, c Caller) (store.WebhookDelivery, []store.WebhookAttempt, error) {
	id, err := endpointID(r)
	if err != nil {
		return store.WebhookDelivery{}, nil, err
	}
	did := r.PathValue("delivery_id")
	if !ids.Valid(ids.WebhookDelivery, did) {
		return store.WebhookDelivery{}, nil, ErrDeliveryNotFound
	}
	d, attempts, err := a.svc.Delivery(r.Context(), c.OrgID, did)
	if err != nil {
		return store.WebhookDelivery{}, nil, err
	}
	if d.EndpointID != id {
		return store.WebhookDelivery{}, nil, ErrDeliveryNotFound
	}
	return d, attempts, nil
}

func (a *API) delivery(w http.ResponseWriter, r *http.Request, c Caller) error {
	d, attempts, err := a.endpointDelivery(r, c)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, DeliveryDetailView(d, attempts))
}

func (a *API) redeliver(w http.ResponseWriter, r *http.Request, c Caller) error {
	d, _, err := a.endpointDelivery(r, c)
	if err != nil {
		return err
	}
	if err := a.noBody(r); err != nil {
		return err
	}
	nd, err := a.svc.Redeliver(r.Context(), c.OrgID, d.ID, c.Actor)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusAccepted, DeliveryView(nd))
}

var _ http.Handler = (*API)(nil)
