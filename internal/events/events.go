// Package events names what happens in Tollgate that an organization may
// want to hear about (its webhook event types), and the hook through which
// the services that see it happen report it.
//
// A service reports an event after the change it describes is stored. The
// hook delivers nothing itself: the server's hook hands the event to the
// webhook outbox (package webhooks), which signs and delivers it to every
// endpoint of the organization subscribed to its type.
package events

import "context"

// Event types.
const (
	APIKeyCreated       = "apikey.created"
	APIKeyRevoked       = "apikey.revoked"
	AppDeleted          = "app.deleted"
	QuotaThreshold      = "quota.threshold" // 80% of a period's quota used
	QuotaExhausted      = "quota.exhausted" // the whole quota used
	SubscriptionCreated = "subscription.created"
	SecurityAlert       = "security.alert"
)

// Types are the event types above, which endpoints may subscribe to.
var Types = []string{
	APIKeyCreated, APIKeyRevoked, AppDeleted, QuotaThreshold, QuotaExhausted,
	SubscriptionCreated, SecurityAlert,
}

// Func reports that eventType happened in organization orgID, with data
// (marshalled to JSON as the event's "data"). It must not block for long
// and reports no error: a failure to record the event is the hook's to
// log. A nil Func is valid in the services that take one, and reports
// nothing.
type Func func(ctx context.Context, orgID, eventType string, data any)
