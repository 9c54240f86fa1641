package webhooks

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// The JSON views of the API. Times are RFC 3339 in UTC at microsecond
// precision, as the store keeps them; a time that is not set is null.

// Endpoint is the public view of a webhook endpoint: never its secrets.
type Endpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	// Status is Health.Status: StatusHealthy, StatusFailing or
	// StatusDisabled.
	Status   string `json:"status"`
	Disabled bool   `json:"disabled"`
	// DisabledReason is ReasonFailures or ReasonOperator while disabled.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at"`
	// ConsecutiveFailures is Health.ConsecutiveFailures.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// Health says how its deliveries are going.
	Health Health `json:"health"`
	// SecretRotatingUntil is, while a rotated-out secret still signs
	// beside the current one, when it stops.
	SecretRotatingUntil *time.Time `json:"secret_rotating_until"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// endpointView renders e, with its backlog b, as of now (which decides
// whether a previous secret is still live), under disableAfter (see
// Options.DisableAfter).
func endpointView(e store.WebhookEndpoint, b store.WebhookBacklog, now time.Time, disableAfter time.Duration) Endpoint {
	v := Endpoint{
		ID:                  e.ID,
		URL:                 e.URL,
		Description:         e.Description,
		EventTypes:          slices.Clone(e.EventTypes),
		Disabled:            e.Disabled,
		DisabledAt:          optTime(e.DisabledAt),
		ConsecutiveFailures: e.Health.ConsecutiveFailures,
		Health:              healthView(e, b, now, disableAfter),
		CreatedAt:           ts(e.CreatedAt),
		UpdatedAt:           ts(e.UpdatedAt),
	}
	v.Status = v.Health.Status
	if v.EventTypes == nil {
		v.EventTypes = []string{}
	}
	if e.Disabled {
		v.DisabledReason = e.DisabledReason
	}
	if previousLive(e, now) {
		v.SecretRotatingUntil = optTime(e.PreviousSecretExpiresAt)
	}
	return v
}

// previousLive reports whether e's previous secret still signs at now.
func previousLive(e store.WebhookEndpoint, now time.Time) bool {
	return len(e.PreviousSecret) > 0 && now.Before(e.PreviousSecretExpiresAt)
}

// ShownOnce is the warning that goes with every secret.
const ShownOnce = "Store this secret now: it is shown only once and cannot be recovered."

// CreatedEndpoint is the answer to an endpoint's creation: the only time
// its first secret is shown.
type CreatedEndpoint struct {
	Endpoint
	Secret  string `json:"secret"`
	Warning string `json:"warning"`
}

// RotatedSecret is the answer to a secret rotation: the only time the new
// secret is shown. PreviousSecretExpiresAt is when the secret it replaced
// stops signing, null when it stopped at once.
type RotatedSecret struct {
	Endpoint
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	Warning                 string     `json:"warning"`
}

// Delivery is the public view of a delivery of an event to an endpoint.
type Delivery struct {
	ID         string `json:"id"`
	EventID    string `json:"event_id"` // the webhook-id header
	EventType  string `json:"event_type"`
	EndpointID string `json:"endpoint_id"`
	// Status is pending, succeeded or failed.
	Status       string `json:"status"`
	AttemptCount int    `json:"attempt_count"`
	// NextAttemptAt is, while pending, when the next attempt is due (or,
	// during an attempt, when its claim lapses).
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	// LastStatusCode is the HTTP status of the last answer, null when
	// there was none (not attempted yet, or no answer).
	LastStatusCode *int       `json:"last_status_code"`
	LastError      string     `json:"last_error,omitempty"`
	EventCreatedAt time.Time  `json:"event_created_at"`
	CreatedAt      time.Time  `json:"created_at"`
	FinishedAt     *time.Time `json:"finished_at"`
	// RedeliveryOf is the ID of the delivery this one repeats.
	RedeliveryOf string `json:"redelivery_of,omitempty"`
}

// DeliveryView renders d, without its payload.
func DeliveryView(d store.WebhookDelivery) Delivery {
	return Delivery{
		ID:             d.ID,
		EventID:        d.EventID,
		EventType:      d.EventType,
		EndpointID:     d.EndpointID,
		Status:         string(d.Status),
		AttemptCount:   d.Attempts,
		NextAttemptAt:  optTime(d.NextAttemptAt),
		LastAttemptAt:  optTime(d.LastAttemptAt),
		LastStatusCode: optInt(d.LastStatusCode),
		LastError:      d.LastError,
		EventCreatedAt: ts(d.EventCreatedAt),
		CreatedAt:      ts(d.CreatedAt),
		FinishedAt:     optTime(d.FinishedAt),
		RedeliveryOf:   d.RedeliveryOf,
	}
}

// Attempt is the public view of one attempt of a delivery.
type Attempt struct {
	N  int       `json:"n"` // 1, 2, …
	At time.Time `json:"at"`
	// DurationMS is how long the attempt took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// StatusCode is the HTTP status of the answer, null when none came.
	StatusCode *int   `json:"status_code"`
	Error      string `json:"error,omitempty"`
	Succeeded  bool   `json:"succeeded"`
}

// AttemptView renders a.
func AttemptView(a store.WebhookAttempt) Attempt {
	return Attempt{
		N: a.N, At: ts(a.At), DurationMS: float64(a.Duration.Microseconds()) / 1000,
		StatusCode: optInt(a.StatusCode), Error: a.Error, Succeeded: a.Succeeded,
	}
}

// DeliveryDetail is a delivery with the payload it delivers and its
// attempts, in order.
type DeliveryDetail struct {
	Delivery
	Payload  json.RawMessage `json:"payload"`
	Attempts []Attempt       `json:"attempts"`
}

// DeliveryDetailView renders d with its payload and attempts.
func DeliveryDetailView(d store.WebhookDelivery, attempts []store.WebhookAttempt) DeliveryDetail {
	v := DeliveryDetail{Delivery: DeliveryView(d), Attempts: make([]Attempt, 0, len(attempts))}
	if json.Valid(d.Payload) {
		v.Payload = json.RawMessage(d.Payload)
	} else {
		// Not from Emit; shown as a JSON string rather than breaking
		// the answer.
		v.Payload, _ = json.Marshal(string(d.Payload))
	}
	for _, a := range attempts {
		v.Attempts = append(v.Attempts, AttemptView(a))
	}
	return v
}

// List wraps a collection, as the rest of the control API does.
type List[T any] struct {
	Data []T `json:"data"`
}

// DeliveryPage is a page of the delivery log, newest first. NextBefore,
// when not null, is the before parameter that asks for the next page.
type DeliveryPage struct {
	Data       []Delivery `json:"data"`
	NextBefore *string    `json:"next_before"`
}

// ts renders times as the store keeps them (UTC, microseconds), so a value
// reads the same when it is created and when it is fetched again.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ts(t)
	return &t
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
