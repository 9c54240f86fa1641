package webhooks

import (
	"fmt"
	"slices"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// An endpoint's health: whether it is failing, since when, and when the
// dispatcher disables it. See "Failing and disabled endpoints" in the
// package doc.

// Defaults and bounds of the disabling of failing endpoints.
const (
	// DefaultDisableAfter is the default of Options.DisableAfter: three
	// days, longer than a weekend and than two full retry schedules
	// (27 hours each) of one delivery.
	DefaultDisableAfter = 72 * time.Hour
	// MinFailuresToDisable is the fewest failed attempts of a failing run
	// that disables an endpoint, whatever its length.
	MinFailuresToDisable = 5
)

// Health statuses, in Health.Status and Endpoint.Status.
const (
	// StatusHealthy: the last attempt succeeded, or none failed since the
	// endpoint was created or enabled.
	StatusHealthy = "healthy"
	// StatusFailing: every attempt has failed since Health.FailingSince.
	StatusFailing = "failing"
	// StatusDisabled: the endpoint gets no deliveries until enabled.
	StatusDisabled = "disabled"
)

// runGap is the longest quiet time between two failed attempts of one
// failing run: a failure after a longer gap starts a new run. It is the
// longer of a quarter of DisableAfter and the longest retry delay with its
// jitter and a lease, so that an endpoint kept failing by its retries alone
// stays in one run, and a run long enough to disable it has at least five
// failures spread over it.
func runGap(o Options) time.Duration {
	longest := slices.Max(o.Schedule)
	retry := time.Duration(float64(longest)*(1+o.Jitter)) + o.Lease
	return max(o.DisableAfter/4, retry)
}

// nextHealth returns what attempt at makes of an endpoint's health h. It is
// called in the store's transaction, with the health as stored, so that
// attempts recorded at once by several workers or nodes all count.
//
// A success ends the failing run (unless a failure that started later is
// recorded already: the endpoint failed after it). A failure starts a run
// when there is none, or when the previous failure is more than gap ago;
// otherwise it adds to the run. A failure that started before a success
// already recorded is history: it changes only the last failure, if it is
// the latest.
func nextHealth(h store.WebhookHealth, at store.WebhookAttempt, gap time.Duration) store.WebhookHealth {
	if at.Succeeded {
		if at.At.After(h.LastSuccessAt) {
			h.LastSuccessAt = at.At
		}
		if h.FailingSince.IsZero() || !at.At.Before(h.LastFailureAt) {
			h.FailingSince, h.ConsecutiveFailures = time.Time{}, 0
		} else if at.At.After(h.FailingSince) {
			// A later failure is recorded already: the run restarts
			// at the latest one, the only one known to be after this
			// success.
			h.FailingSince, h.ConsecutiveFailures = h.LastFailureAt, 1
		}
		return h
	}
	previous := h.LastFailureAt
	if !at.At.Before(h.LastFailureAt) {
		h.LastFailureAt, h.LastFailureStatus, h.LastFailureError = at.At, at.StatusCode, at.Error
	}
	switch {
	case at.At.Before(h.LastSuccessAt):
		// The endpoint has answered since.
	case h.FailingSince.IsZero() || at.At.Sub(previous) > gap:
		h.FailingSince, h.ConsecutiveFailures = at.At, 1
	default:
		h.ConsecutiveFailures++
		if at.At.Before(h.FailingSince) {
			h.FailingSince = at.At
		}
	}
	return h
}

// disableDue reports whether an endpoint of health h is to be disabled at
// now: it has been failing for DisableAfter, with at least
// MinFailuresToDisable failures. disableAfter < 0 never disables.
func disableDue(h store.WebhookHealth, now time.Time, disableAfter time.Duration) bool {
	return disableAfter >= 0 && !h.FailingSince.IsZero() && h.ConsecutiveFailures >= MinFailuresToDisable &&
		now.Sub(h.FailingSince) >= disableAfter
}

// Health is the view of an endpoint's health in the API and dashboard.
// Times are null when not set.
type Health struct {
	// Status is StatusHealthy, StatusFailing or StatusDisabled.
	Status string `json:"status"`
	// Summary says the same in a sentence, for people.
	Summary string `json:"summary"`
	// FailingSince is when the current run of failed attempts began
	// (null while healthy); ConsecutiveFailures counts its attempts.
	FailingSince        *time.Time `json:"failing_since"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	// DisableAt is, while the endpoint is failing and enabled, the
	// earliest time the dispatcher disables it if it keeps failing
	// (FailingSince + webhooks.disable_after); null otherwise.
	DisableAt *time.Time `json:"disable_at"`
	// DisabledReason and DisabledAt say why and when the endpoint was
	// disabled: ReasonFailures or ReasonOperator.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at"`
	LastSuccessAt  *time.Time `json:"last_success_at"`
	// LastFailure is the latest failed attempt, null when none failed.
	LastFailure *Failure `json:"last_failure"`
	// PendingDeliveries counts the deliveries waiting for the endpoint;
	// NextAttemptAt is when the earliest is due (null when none is, or
	// while the endpoint is disabled: they wait for it to be enabled).
	PendingDeliveries int        `json:"pending_deliveries"`
	NextAttemptAt     *time.Time `json:"next_attempt_at"`
}

// Failure is a failed attempt, as the health shows it.
type Failure struct {
	At time.Time `json:"at"`
	// StatusCode is the HTTP status of the answer, null when none came.
	StatusCode *int `json:"status_code"`
	// Error is its short error text: the status and the start of the
	// answer, or why no answer came.
	Error string `json:"error"`
}

// healthView renders the health of endpoint e with backlog b as of now,
// under disableAfter (negative: never disabled for failures).
func healthView(e store.WebhookEndpoint, b store.WebhookBacklog, now time.Time, disableAfter time.Duration) Health {
	h := e.Health
	v := Health{
		Status:              StatusHealthy,
		FailingSince:        optTime(h.FailingSince),
		ConsecutiveFailures: h.ConsecutiveFailures,
		LastSuccessAt:       optTime(h.LastSuccessAt),
		PendingDeliveries:   b.Pending,
		NextAttemptAt:       optTime(b.NextAttemptAt),
	}
	if !h.LastFailureAt.IsZero() {
		v.LastFailure = &Failure{At: ts(h.LastFailureAt), StatusCode: optInt(h.LastFailureStatus), Error: h.LastFailureError}
	}
	switch {
	case e.Disabled:
		v.Status, v.DisabledReason, v.DisabledAt = StatusDisabled, e.DisabledReason, optTime(e.DisabledAt)
		v.NextAttemptAt = nil
	case !h.FailingSince.IsZero():
		v.Status = StatusFailing
		if disableAfter >= 0 {
			v.DisableAt = optTime(h.FailingSince.Add(disableAfter))
		}
	}
	v.Summary = healthSummary(v, now)
	return v
}

// healthSummary says what v says, in a sentence.
func healthSummary(v Health, now time.Time) string {
	last := ""
	if f := v.LastFailure; f != nil {
		last = "; last error: " + f.Error
	}
	switch v.Status {
	case StatusDisabled:
		s := "Disabled"
		switch v.DisabledReason {
		case ReasonFailures:
			s += " after failing continuously"
			if v.FailingSince != nil {
				s += " since " + stamp(*v.FailingSince)
			}
			s += fmt.Sprintf(" (%s%s)", count(v.ConsecutiveFailures, "failed attempt"), last)
		case ReasonOperator:
			s += " by a user"
		}
		if v.DisabledAt != nil {
			s += " at " + stamp(*v.DisabledAt)
		}
		if v.PendingDeliveries > 0 {
			s += fmt.Sprintf("; %s for it to be enabled", count(v.PendingDeliveries, "delivery waits", "deliveries wait"))
		}
		return s + "."
	case StatusFailing:
		s := fmt.Sprintf("Failing since %s (%s%s)", stamp(*v.FailingSince), count(v.ConsecutiveFailures, "failed attempt"), last)
		if v.DisableAt != nil {
			if v.DisableAt.After(now) {
				s += "; disabled at " + stamp(*v.DisableAt) + " or later if it keeps failing"
			} else {
				s += "; disabled at its next failure"
			}
		}
		return s + "."
	}
	if v.LastSuccessAt != nil {
		return "Healthy: last delivered " + stamp(*v.LastSuccessAt) + "."
	}
	return "Healthy: nothing delivered yet."
}

// count says "1 thing", or "n things" (forms, when given, are the
// singular and plural).
func count(n int, forms ...string) string {
	one, many := forms[0], forms[0]+"s"
	if len(forms) > 1 {
		many = forms[1]
	}
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// stamp renders t for a summary: RFC 3339 in UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
