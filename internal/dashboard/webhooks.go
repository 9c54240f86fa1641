package dashboard

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// webhookRoutes registers the webhooks pages: the endpoints and the form
// that creates one, and each endpoint's page with its edit form, secret
// rotation, test event, deletion and delivery log. They call the same
// service as /api/v1/webhooks, whose messages they show.
func (d *Dashboard) webhookRoutes() {
	if d.o.Webhooks == nil {
		// The menu links here: say so rather than 404.
		d.mux.Handle("GET /dashboard/webhooks", d.page(func(w http.ResponseWriter, r *http.Request, s *session) error {
			d.render(w, r, http.StatusOK, "webhooks", view{Title: "Webhooks", Nav: "webhooks", Session: s, Org: s.Org, CSRF: s.CSRF,
				Data: webhooksData{Unavailable: true}})
			return nil
		}))
		return
	}
	d.mux.Handle("GET /dashboard/webhooks", d.page(d.webhooks))
	d.mux.Handle("POST /dashboard/webhooks", d.page(d.createWebhook))
	d.mux.Handle("GET /dashboard/webhooks/{id}", d.page(d.webhook))
	d.mux.Handle("POST /dashboard/webhooks/{id}/edit", d.page(d.editWebhook))
	d.mux.Handle("POST /dashboard/webhooks/{id}/rotate-secret", d.page(d.rotateWebhookSecret))
	d.mux.Handle("POST /dashboard/webhooks/{id}/test", d.page(d.testWebhook))
	d.mux.Handle("POST /dashboard/webhooks/{id}/delete", d.page(d.deleteWebhook))
	d.mux.Handle("POST /dashboard/webhooks/{id}/deliveries/{delivery}/redeliver", d.page(d.redeliverWebhook))
}

// webhookPageSize is how many deliveries a page of the delivery log shows.
const webhookPageSize = 25

// errWebhookManage refuses a change by a user who is neither owner nor
// admin, as the control-plane API does.
var errWebhookManage = apierror.New(http.StatusForbidden, apierror.Forbidden,
	"only the organization's owners and admins may change webhooks")

// webhookNotices are the notices a redirect may ask for (?done=…): fixed
// texts, never text from the URL.
var webhookNotices = map[string]string{
	"updated":     "The endpoint was updated.",
	"test":        "A test event was queued; it appears in the delivery log below once attempted.",
	"deleted":     "The endpoint was deleted. Its pending deliveries will not be attempted.",
	"redelivered": "The delivery was queued again; the new delivery appears in the log below.",
}

// eventDescriptions say in plain words what each event type is about.
var eventDescriptions = map[string]string{
	webhooks.EventAPIKeyCreated:       "an API key was created",
	webhooks.EventAPIKeyRevoked:       "an API key was revoked",
	webhooks.EventAppDeleted:          "an app was deleted",
	webhooks.EventQuotaExhausted:      "the quota is used up",
	webhooks.EventQuotaThreshold:      "80% of the quota is used",
	webhooks.EventSecurityAlert:       "a security alert, such as a stolen session",
	webhooks.EventSubscriptionCreated: "a subscription was bought",
	webhooks.EventEndpointDisabled:    "an endpoint was disabled after failing for days",
	webhooks.EventTest:                "a test event",
}

// eventOption is a checkbox of the event types.
type eventOption struct {
	Value, Description string
	ID                 string // the checkbox's element ID
	Checked            bool
}

// eventOptions returns the checkboxes of the event types, prefix making
// their IDs unique in the page, with those of selected checked.
func eventOptions(prefix string, selected []string) []eventOption {
	types := append([]string{webhooks.AllEvents}, webhooks.EventTypes()...)
	out := make([]eventOption, 0, len(types))
	for _, t := range types {
		o := eventOption{Value: t, Description: eventDescriptions[t], Checked: slices.Contains(selected, t)}
		if t == webhooks.AllEvents {
			o.Description = "every event type, present and future"
			o.ID = prefix + "-all"
		} else {
			o.ID = prefix + "-" + strings.ReplaceAll(t, ".", "-")
		}
		out = append(out, o)
	}
	return out
}

// webhookForm is what the create and edit forms hold.
type webhookForm struct {
	URL, Description string
	Events           []eventOption
	Enabled          bool
}

// formEventTypes returns the event types checked in the form, deduplicated
// and sorted.
func formEventTypes(r *http.Request) []string {
	types := slices.Clone(r.PostForm["event_types"])
	slices.Sort(types)
	return slices.Compact(types)
}

// webhooksData is the webhooks page's.
type webhooksData struct {
	Unavailable bool
	CanManage   bool
	Endpoints   []webhooks.Endpoint
	Form        webhookForm
	// Created is the endpoint just created, with its secret: shown once.
	Created *webhooks.CreatedEndpoint
}

func (d *Dashboard) webhooksView(s *session) view {
	return view{Title: "Webhooks", Nav: "webhooks", Session: s, Org: s.Org, CSRF: s.CSRF}
}

// renderWebhooks renders the webhooks page with the organization's
// endpoints.
func (d *Dashboard) renderWebhooks(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, status int, v view, data webhooksData) error {
	eps, err := d.o.Webhooks.List(ctx, s.Org.ID)
	if err != nil {
		return err
	}
	data.Endpoints, data.CanManage = eps, s.CanManage()
	if data.Form.Events == nil {
		data.Form.Events = eventOptions("create-event", nil)
	}
	v.Data = data
	d.render(w, r, status, "webhooks", v)
	return nil
}

func (d *Dashboard) webhooks(w http.ResponseWriter, r *http.Request, s *session) error {
	v := d.webhooksView(s)
	v.Notice = webhookNotices[r.URL.Query().Get("done")]
	return d.renderWebhooks(r.Context(), w, r, s, http.StatusOK, v, webhooksData{})
}

func (d *Dashboard) createWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.CanManage() {
		return errWebhookManage
	}
	ctx := r.Context()
	types := formEventTypes(r)
	in := webhooks.Input{URL: r.PostFormValue("url"), EventTypes: types, Description: r.PostFormValue("description")}
	v := d.webhooksView(s)
	e, secret, err := d.o.Webhooks.Create(ctx, s.Org.ID, in, s.actor(r))
	if err != nil {
		v.Error, v.Field = errorOf(err)
		form := webhookForm{URL: in.URL, Description: in.Description, Events: eventOptions("create-event", types)}
		return d.renderWebhooks(ctx, w, r, s, apierror.From(err).Status, v, webhooksData{Form: form})
	}
	// The secret is shown here, once: no redirect, which would lose it
	// or carry it in a URL.
	v.Notice = "The endpoint was created."
	created := &webhooks.CreatedEndpoint{Endpoint: e, Secret: secret, Warning: webhooks.ShownOnce}
	return d.renderWebhooks(ctx, w, r, s, http.StatusCreated, v, webhooksData{Created: created})
}

// webhookData is an endpoint's page's.
type webhookData struct {
	CanManage bool
	Endpoint  webhooks.Endpoint
	Form      webhookForm
	// Deliveries are a page of the delivery log, newest first; Before is
	// the cursor of this page ("" for the newest), NextBefore that of the
	// next one ("" when there is none).
	Deliveries         []webhooks.Delivery
	Before, NextBefore string
	// Secret is the new secret of a rotation, shown once; PreviousUntil
	// is when the old one stops signing (nil: it stopped at once).
	Secret        string
	Warning       string
	PreviousUntil *time.Time
}

// endpointID is the {id} of the path; one that cannot be an endpoint's is
// not found without asking the store.
func endpointID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !ids.Valid(ids.WebhookEndpoint, id) {
		return "", webhooks.ErrEndpointNotFound
	}
	return id, nil
}

// renderWebhook renders endpoint id's page. data's Form, when it has no
// event checkboxes, is filled from the endpoint; its Secret is kept.
func (d *Dashboard) renderWebhook(w http.ResponseWriter, r *http.Request, s *session, id string, status int, v view, data webhookData) error {
	ctx := r.Context()
	e, err := d.o.Webhooks.Get(ctx, s.Org.ID, id)
	if err != nil {
		return err
	}
	data.Endpoint, data.CanManage = e, s.CanManage()
	if data.Form.Events == nil {
		data.Form = webhookForm{URL: e.URL, Description: e.Description, Events: eventOptions("edit-event", e.EventTypes), Enabled: !e.Disabled}
	}
	before := r.URL.Query().Get("before")
	if r.Method != http.MethodGet || !ids.Valid(ids.WebhookDelivery, before) {
		before = ""
	}
	ds, err := d.o.Webhooks.Deliveries(ctx, s.Org.ID, store.WebhookDeliveryFilter{EndpointID: id, Before: before, Limit: webhookPageSize + 1})
	if err != nil && before != "" && apierror.From(err).Status < 500 {
		// A cursor purged meanwhile: the newest page instead.
		before = ""
		ds, err = d.o.Webhooks.Deliveries(ctx, s.Org.ID, store.WebhookDeliveryFilter{EndpointID: id, Limit: webhookPageSize + 1})
	}
	if err != nil {
		return err
	}
	data.Before = before
	if len(ds) > webhookPageSize {
		ds = ds[:webhookPageSize]
		data.NextBefore = ds[webhookPageSize-1].ID
	}
	data.Deliveries = make([]webhooks.Delivery, 0, len(ds))
	for _, dl := range ds {
		data.Deliveries = append(data.Deliveries, webhooks.DeliveryView(dl))
	}
	v.Title = "Webhook endpoint"
	v.Nav, v.Session, v.Org, v.CSRF = "webhooks", s, s.Org, s.CSRF
	v.Data = data
	d.render(w, r, status, "webhook", v)
	return nil
}

func (d *Dashboard) webhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := endpointID(r)
	if err != nil {
		return err
	}
	return d.renderWebhook(w, r, s, id, http.StatusOK, view{Notice: webhookNotices[r.URL.Query().Get("done")]}, webhookData{})
}

// webhookPost starts the handler of a POST about endpoint {id}: the
// user must be allowed to change it.
func webhookPost(r *http.Request, s *session) (string, error) {
	if !s.CanManage() {
		return "", errWebhookManage
	}
	return endpointID(r)
}

// webhookFailed re-renders endpoint id's page with the service's error,
// or returns an unexpected one. An endpoint deleted meanwhile leaves no
// page: renderWebhook then returns its 404.
func (d *Dashboard) webhookFailed(w http.ResponseWriter, r *http.Request, s *session, id string, err error, data webhookData) error {
	e := apierror.From(err)
	if e.Status >= 500 {
		return err
	}
	var v view
	v.Error, v.Field = errorOf(err)
	return d.renderWebhook(w, r, s, id, e.Status, v, data)
}

func (d *Dashboard) editWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := webhookPost(r, s)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cur, err := d.o.Webhooks.Get(ctx, s.Org.ID, id)
	if err != nil {
		return err
	}
	types := formEventTypes(r)
	form := webhookForm{
		URL: r.PostFormValue("url"), Description: r.PostFormValue("description"),
		Events: eventOptions("edit-event", types), Enabled: r.PostFormValue("enabled") != "",
	}
	// Only what changed: the audit log then says what did, and an
	// enabled endpoint left enabled keeps its count of failures.
	var p webhooks.Patch
	if strings.TrimSpace(form.URL) != cur.URL {
		p.URL = &form.URL
	}
	if !slices.Equal(types, cur.EventTypes) {
		p.EventTypes = &types
	}
	if strings.TrimSpace(form.Description) != cur.Description {
		p.Description = &form.Description
	}
	if form.Enabled == cur.Disabled {
		p.Enabled = &form.Enabled
	}
	if p == (webhooks.Patch{}) {
		return d.renderWebhook(w, r, s, id, http.StatusOK, view{Notice: "Nothing to change: the form is as the endpoint is."}, webhookData{})
	}
	if _, err := d.o.Webhooks.Update(ctx, s.Org.ID, id, p, s.actor(r)); err != nil {
		return d.webhookFailed(w, r, s, id, err, webhookData{Form: form})
	}
	redirect(w, r, Prefix+"webhooks/"+id+"?done=updated")
	return nil
}

func (d *Dashboard) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := webhookPost(r, s)
	if err != nil {
		return err
	}
	secret, until, err := d.o.Webhooks.RotateSecret(r.Context(), s.Org.ID, id, s.actor(r))
	if err != nil {
		return d.webhookFailed(w, r, s, id, err, webhookData{})
	}
	// Shown here, once, as at creation.
	data := webhookData{Secret: secret, Warning: webhooks.ShownOnce}
	if !until.IsZero() {
		data.PreviousUntil = &until
	}
	return d.renderWebhook(w, r, s, id, http.StatusOK, view{Notice: "The signing secret was rotated."}, data)
}

func (d *Dashboard) testWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := webhookPost(r, s)
	if err != nil {
		return err
	}
	if _, err := d.o.Webhooks.Test(r.Context(), s.Org.ID, id); err != nil {
		return d.webhookFailed(w, r, s, id, err, webhookData{})
	}
	redirect(w, r, Prefix+"webhooks/"+id+"?done=test")
	return nil
}

func (d *Dashboard) deleteWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := webhookPost(r, s)
	if err != nil {
		return err
	}
	if err := d.o.Webhooks.Delete(r.Context(), s.Org.ID, id, s.actor(r)); err != nil {
		return d.webhookFailed(w, r, s, id, err, webhookData{})
	}
	redirect(w, r, Prefix+"webhooks?done=deleted")
	return nil
}

func (d *Dashboard) redeliverWebhook(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := webhookPost(r, s)
	if err != nil {
		return err
	}
	ctx := r.Context()
	did := r.PathValue("delivery")
	if !ids.Valid(ids.WebhookDelivery, did) {
		return webhooks.ErrDeliveryNotFound
	}
	dl, _, err := d.o.Webhooks.Delivery(ctx, s.Org.ID, did)
	if err == nil && dl.EndpointID != id {
		err = webhooks.ErrDeliveryNotFound
	}
	if err == nil {
		_, err = d.o.Webhooks.Redeliver(ctx, s.Org.ID, did, s.actor(r))
	}
	if err != nil {
		return d.webhookFailed(w, r, s, id, err, webhookData{})
	}
	redirect(w, r, Prefix+"webhooks/"+id+"?done=redelivered")
	return nil
}
