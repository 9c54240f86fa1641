package sqlstore

import (
	"fmt"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// The rules of the webhook outbox: which endpoints and events may be
// stored, how a claim leases deliveries, and what an attempt makes of its
// delivery.

// Webhook delivery list limits: ListWebhookDeliveries returns
// DefaultDeliveryLimit deliveries when the filter does not say, and never
// more than MaxDeliveryLimit.
const (
	DefaultDeliveryLimit = 100
	MaxDeliveryLimit     = 1000
)

// EndpointDeletedError is the LastError of the deliveries failed by the
// deletion of their endpoint.
const EndpointDeletedError = "endpoint deleted"

// CheckEndpoint refuses an endpoint without one of its required fields.
func CheckEndpoint(e store.WebhookEndpoint) error {
	if e.ID == "" || e.OrgID == "" || e.URL == "" || len(e.EventTypes) == 0 || len(e.Secret) == 0 {
		return fmt.Errorf("webhook endpoint %q: ID, organization, URL, event types and secret are required", e.ID)
	}
	return nil
}

// EventTypes returns the event types as stored: a JSON list, sorted,
// without duplicates.
func EventTypes(types []string) string {
	return JSONList(slices.Compact(slices.Sorted(slices.Values(types))))
}

// CheckEvent refuses an event without one of its required fields.
func CheckEvent(ev store.WebhookEvent) error {
	if ev.ID == "" || ev.OrgID == "" || ev.Type == "" {
		return fmt.Errorf("webhook event %q: ID, organization and type are required", ev.ID)
	}
	return nil
}

// CheckClaim refuses a claim of deliveries without a positive lease and
// limit.
func CheckClaim(lease time.Duration, limit int) error {
	if lease <= 0 || limit <= 0 {
		return fmt.Errorf("claim webhook deliveries: lease %v and limit %d must be positive", lease, limit)
	}
	return nil
}

// LeaseEnd returns when a lease taken at now ends, as it is stored: in UTC,
// at microsecond precision.
func LeaseEnd(now time.Time, lease time.Duration) time.Time {
	return time.UnixMicro(now.Add(lease).UnixMicro()).UTC()
}

// Lease moves the claimed deliveries to until, the end of their lease, and
// returns their IDs, for the statement that does the same in the database.
func Lease(claimed []store.WebhookDelivery, until time.Time) []string {
	ids := make([]string, len(claimed))
	for i := range claimed {
		ids[i] = claimed[i].ID
		claimed[i].NextAttemptAt = until
	}
	return ids
}

// CheckAttempt refuses an attempt without a delivery ID or with a number
// below 1.
func CheckAttempt(at store.WebhookAttempt) error {
	if at.DeliveryID == "" || at.N < 1 {
		return fmt.Errorf("webhook attempt %d of %q: a delivery ID and an attempt number from 1 are required", at.N, at.DeliveryID)
	}
	return nil
}

// CheckAttemptOf refuses, with store.ErrConflict, an attempt of a delivery
// that is not pending or whose attempt count is not the one before at.N.
func CheckAttemptOf(d store.WebhookDelivery, at store.WebhookAttempt) error {
	if d.Status != store.WebhookPending || d.Attempts != at.N-1 {
		return fmt.Errorf("webhook attempt %d of %q, which is %s after %d attempts: %w",
			at.N, at.DeliveryID, d.Status, d.Attempts, store.ErrConflict)
	}
	return nil
}

// AttemptOutcome is what an attempt makes of its delivery: the new values
// of its status, last_error, next_attempt_at and finished_at columns.
type AttemptOutcome struct {
	Status        store.WebhookDeliveryStatus
	LastError     string
	NextAttemptAt any // unix microseconds, or nil
	FinishedAt    any // unix microseconds, or nil
}

// Outcome returns the outcome of the attempt at, after which the next one
// is due at next: a success finishes the delivery, a failure with no next
// attempt (a zero next) fails it, and any other failure leaves it pending
// until next.
func Outcome(at store.WebhookAttempt, next time.Time) AttemptOutcome {
	switch {
	case at.Succeeded:
		return AttemptOutcome{Status: store.WebhookSucceeded, FinishedAt: Micros(at.At)}
	case next.IsZero():
		return AttemptOutcome{Status: store.WebhookFailed, LastError: at.Error, NextAttemptAt: Micros(next), FinishedAt: Micros(at.At)}
	}
	return AttemptOutcome{Status: store.WebhookPending, LastError: at.Error, NextAttemptAt: Micros(next)}
}

// CheckRedelivery refuses, with store.ErrConflict, to deliver again a
// delivery that is still pending.
func CheckRedelivery(d store.WebhookDelivery) error {
	if d.Status == store.WebhookPending {
		return fmt.Errorf("redeliver webhook delivery %q, which is pending: %w", d.ID, store.ErrConflict)
	}
	return nil
}

// NormalizeHealth returns h as the store reads it back: its times in UTC
// at microsecond precision.
func NormalizeHealth(h store.WebhookHealth) store.WebhookHealth {
	for _, t := range []*time.Time{&h.FailingSince, &h.LastSuccessAt, &h.LastFailureAt} {
		if !t.IsZero() {
			*t = time.UnixMicro(t.UnixMicro()).UTC()
		}
	}
	return h
}

// ScanBacklog reads a row of the count and the earliest next_attempt_at
// (NULL when there is none) of an endpoint's pending deliveries.
func ScanBacklog(r RowScanner) (store.WebhookBacklog, error) {
	var b store.WebhookBacklog
	err := r.Scan(&b.Pending, TimeCol(&b.NextAttemptAt))
	return b, err
}
