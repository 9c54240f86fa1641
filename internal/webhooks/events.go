package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Event types. Endpoints subscribe to those EventTypes lists, or to
// AllEvents.
const (
	EventAPIKeyCreated       = events.APIKeyCreated
	EventAPIKeyRevoked       = events.APIKeyRevoked
	EventAppDeleted          = events.AppDeleted
	EventQuotaThreshold      = events.QuotaThreshold
	EventQuotaExhausted      = events.QuotaExhausted
	EventSubscriptionCreated = events.SubscriptionCreated
	EventSecurityAlert       = events.SecurityAlert
	// EventEndpointDisabled is emitted by the dispatcher when it disables
	// an endpoint that has been failing for Options.DisableAfter; its data
	// is {"endpoint_id","url","reason","disabled_at","failing_since",
	// "consecutive_failures","last_error","last_status_code"}.
	EventEndpointDisabled = "webhook.endpoint.disabled"
	// EventTest is the type of the deliveries Test makes. It goes to one
	// endpoint only and cannot be subscribed to or emitted.
	EventTest = "webhook.test"

	// AllEvents, as an endpoint's event type, subscribes it to every
	// event type but EventTest.
	AllEvents = "*"
)

// EventTypes returns the event types endpoints may subscribe to, sorted. It
// returns a new slice on each call.
func EventTypes() []string {
	return []string{
		EventAPIKeyCreated, EventAPIKeyRevoked, EventAppDeleted, EventQuotaExhausted, EventQuotaThreshold,
		EventSecurityAlert, EventSubscriptionCreated, EventEndpointDisabled,
	}
}

// subscribable reports whether endpoints may subscribe to event type t.
func subscribable(t string) bool {
	switch t {
	case EventAPIKeyCreated, EventAPIKeyRevoked, EventAppDeleted, EventQuotaExhausted, EventQuotaThreshold,
		EventSecurityAlert, EventSubscriptionCreated, EventEndpointDisabled:
		return true
	}
	return false
}

// payload is the JSON body of every delivery, in this order.
type payload struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	Timestamp      time.Time       `json:"timestamp"`
	OrganizationID string          `json:"organization_id"`
	Data           json.RawMessage `json:"data"`
}

// Emit records that an event of type eventType happened in the organization
// now, with data (any value encoding/json encodes; nil is {}), and queues it
// for every enabled endpoint of the organization subscribed to the type. It
// returns the event ID, the webhook-id of its deliveries. The payload, built
// here, is what is signed and delivered, byte for byte (see the package
// doc); it may be at most MaxPayloadSize bytes.
//
// eventType must be one of EventTypes: anything else, EventTest included,
// is the caller's bug and an error. Emit returns once the event is stored;
// delivery is up to the dispatcher.
func (s *Service) Emit(ctx context.Context, orgID, eventType string, data any) (string, error) {
	if !subscribable(eventType) {
		return "", fmt.Errorf("webhooks: %q is not an event type that can be emitted", eventType)
	}
	return s.enqueue(ctx, orgID, eventType, data, "")
}

// enqueue stores an event, addressed to endpoint only when endpoint is set.
func (s *Service) enqueue(ctx context.Context, orgID, eventType string, data any, endpoint string) (string, error) {
	if orgID == "" {
		return "", errNoOrg
	}
	raw := json.RawMessage("{}")
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return "", fmt.Errorf("webhooks: encode data of %s event: %w", eventType, err)
		}
		if string(b) != "null" {
			raw = b
		}
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	id := ids.New(ids.WebhookEvent)
	body, err := json.Marshal(payload{ID: id, Type: eventType, Timestamp: now, OrganizationID: orgID, Data: raw})
	if err != nil {
		return "", fmt.Errorf("webhooks: encode %s event: %w", eventType, err)
	}
	if len(body) > MaxPayloadSize {
		return "", fmt.Errorf("webhooks: %s event of %d bytes; at most %d", eventType, len(body), MaxPayloadSize)
	}
	_, err = s.store.EnqueueWebhookEvent(ctx, store.WebhookEvent{
		ID: id, OrgID: orgID, Type: eventType, Payload: body, CreatedAt: now, Endpoint: endpoint,
	})
	if err != nil {
		return "", fmt.Errorf("webhooks: store %s event: %w", eventType, err)
	}
	return id, nil
}

// testData is the data of a test event.
type testData struct {
	EndpointID string `json:"endpoint_id"`
	Message    string `json:"message"`
}

// Test queues an EventTest event for one of the organization's endpoints
// only, even a disabled one, and returns its delivery, pending.
func (s *Service) Test(ctx context.Context, orgID, id string) (store.WebhookDelivery, error) {
	if _, err := s.endpoint(ctx, orgID, id); err != nil {
		return store.WebhookDelivery{}, err
	}
	eventID, err := s.enqueue(ctx, orgID, EventTest,
		testData{EndpointID: id, Message: "This is a test delivery from Tollgate."}, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.WebhookDelivery{}, ErrEndpointNotFound // deleted meanwhile
	}
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	ds, err := s.store.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{OrgID: orgID, EventID: eventID, Limit: 1})
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	if len(ds) == 0 {
		return store.WebhookDelivery{}, fmt.Errorf("webhooks: test event %s of endpoint %s has no delivery", eventID, id)
	}
	return ds[0], nil
}

// errCursor refuses a page cursor that is no delivery of the organization.
var errCursor = apierror.Invalid("before", "before must be the ID of a delivery of a previous page")

// Deliveries pages through the organization's delivery log as f selects,
// newest first; f.OrgID is set to orgID. f.Before, when set, must be a
// delivery of the organization (400 otherwise). f.Limit is the store's: 0
// means 100, at most 1000.
func (s *Service) Deliveries(ctx context.Context, orgID string, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error) {
	if orgID == "" {
		return nil, errNoOrg
	}
	f.OrgID = orgID
	if f.Before != "" {
		d, err := s.store.GetWebhookDelivery(ctx, f.Before)
		if errors.Is(err, store.ErrNotFound) || (err == nil && d.OrgID != orgID) {
			return nil, errCursor
		}
		if err != nil {
			return nil, err
		}
	}
	ds, err := s.store.ListWebhookDeliveries(ctx, f)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errCursor // purged meanwhile
	}
	return ds, err
}

// EndpointDeliveries pages through the delivery log of endpoint id of the
// organization, as Deliveries does. The log of an endpoint deleted since
// stays readable while the organization has deliveries of it; any other ID,
// another organization's endpoint included, is ErrEndpointNotFound, the
// same answer after the same store reads whichever it is.
func (s *Service) EndpointDeliveries(ctx context.Context, orgID, id string, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error) {
	if _, err := s.endpoint(ctx, orgID, id); err != nil {
		if !errors.Is(err, ErrEndpointNotFound) {
			return nil, err
		}
		if orgID == "" {
			return nil, errNoOrg
		}
		// Not an endpoint of the organization now: a deleted one's log, if
		// the organization has one (the query is the organization's own).
		some, err := s.store.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{OrgID: orgID, EndpointID: id, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(some) == 0 {
			return nil, ErrEndpointNotFound
		}
	}
	f.EndpointID = id
	return s.Deliveries(ctx, orgID, f)
}

// Delivery returns one of the organization's deliveries and its attempts,
// in order.
func (s *Service) Delivery(ctx context.Context, orgID, id string) (store.WebhookDelivery, []store.WebhookAttempt, error) {
	d, err := s.delivery(ctx, orgID, id)
	if err != nil {
		return store.WebhookDelivery{}, nil, err
	}
	attempts, err := s.store.ListWebhookAttempts(ctx, id)
	if err != nil {
		return store.WebhookDelivery{}, nil, err
	}
	return d, attempts, nil
}

func (s *Service) delivery(ctx context.Context, orgID, id string) (store.WebhookDelivery, error) {
	d, err := s.store.GetWebhookDelivery(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (d.OrgID != orgID || orgID == "")) {
		return store.WebhookDelivery{}, ErrDeliveryNotFound
	}
	return d, err
}

// Redeliver queues a finished delivery's event again to the same endpoint,
// due now, as a new delivery with its own attempts (the webhook-id stays the
// event's). A pending delivery, or one whose endpoint is deleted or
// disabled (unless it is a test delivery), is 409 CONFLICT.
func (s *Service) Redeliver(ctx context.Context, orgID, deliveryID string, actor store.Actor) (store.WebhookDelivery, error) {
	d, err := s.delivery(ctx, orgID, deliveryID)
	if err != nil {
		return store.WebhookDelivery{}, err
	}
	if d.Status == store.WebhookPending {
		return store.WebhookDelivery{}, errPending
	}
	e, err := s.store.GetWebhookEndpoint(ctx, d.EndpointID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.WebhookDelivery{}, errEndpointGone
	case err != nil:
		return store.WebhookDelivery{}, err
	case e.Disabled && d.EventType != EventTest:
		return store.WebhookDelivery{}, errEndpointDisabled
	}
	details := map[string]string{"redelivery_of": d.ID, "event_id": d.EventID, "endpoint_id": d.EndpointID}
	nd, err := s.store.RedeliverWebhook(ctx, d.ID, s.clock.Now(), actor.Entry(orgID, actionRedeliver, targetDelivery, "", details))
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.WebhookDelivery{}, errPending
	case errors.Is(err, store.ErrNotFound):
		return store.WebhookDelivery{}, errEndpointGone
	}
	return nd, err
}

var (
	errPending = apierror.New(http.StatusConflict, apierror.Conflict,
		"the delivery is still pending; redeliver it once it has succeeded or failed")
	errEndpointGone = apierror.New(http.StatusConflict, apierror.Conflict,
		"the delivery's endpoint was deleted")
	errEndpointDisabled = apierror.New(http.StatusConflict, apierror.Conflict,
		"the delivery's endpoint is disabled; enable it first")
)
