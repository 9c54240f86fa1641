package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/whsig"
)

// The dispatcher: claims due deliveries from the store's outbox and
// attempts them.

const (
	// UserAgent is the User-Agent of every delivery.
	UserAgent = "Tollgate-Webhooks/1.0"

	// maxAnswerRead is how much of an answer's body an attempt reads.
	maxAnswerRead = 4 << 10
	// maxAnswerQuote is how much of it goes into the attempt's error.
	maxAnswerQuote = 200
	// maxErrorText bounds an attempt's error text, in bytes.
	maxErrorText = 512
	// storeTimeout bounds the store calls of an attempt, which finish
	// even when the dispatcher is stopping.
	storeTimeout = 30 * time.Second
	// purgeInterval is how often Run purges the delivery log.
	purgeInterval = time.Hour
)

// systemActor is who disables endpoints after failures.
var systemActor = store.Actor{Type: store.ActorSystem}

// Run delivers due webhooks until ctx is done, with up to Options.Workers
// attempts at once, and purges the finished deliveries older than
// Options.Retention about once an hour (and once at the start). Errors of
// the store are logged and retried at the next poll; Run returns nil once
// ctx is done and the attempts in flight, each bounded by
// Options.AttemptTimeout, are recorded. Several Runs, in this process or
// others sharing the store, may run at once: the store's claims keep them
// from attempting the same delivery twice at the same time.
func (s *Service) Run(ctx context.Context) error {
	sem := make(chan struct{}, s.o.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastPurge time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if now := s.clock.Now(); lastPurge.IsZero() || now.Sub(lastPurge) >= purgeInterval {
			lastPurge = now
			if n, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("webhooks: purge the delivery log", "error", err)
			} else if n > 0 {
				s.log.Info("webhooks: purged the delivery log", "deliveries", n)
			}
		}
		// Wait for an idle worker, then take every idle one, up to a
		// batch.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1 + acquire(sem, s.o.BatchSize-1)
		claimed, err := s.store.ClaimWebhookDeliveries(ctx, s.clock.Now(), s.o.Lease, n)
		if err != nil && ctx.Err() == nil {
			s.log.Error("webhooks: claim deliveries", "error", err)
		}
		for range n - len(claimed) {
			<-sem
		}
		for _, d := range claimed {
			wg.Go(func() {
				defer func() { <-sem }()
				s.deliver(ctx, d)
			})
		}
		if len(claimed) == n {
			continue // more may be due
		}
		timer.Reset(s.o.PollInterval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// acquire takes up to n more slots of sem without waiting and returns how
// many it took.
func acquire(sem chan struct{}, n int) int {
	for i := range n {
		select {
		case sem <- struct{}{}:
		default:
			return i
		}
	}
	return max(n, 0)
}

// DeliverDue makes one round of the dispatcher synchronously: it claims up
// to Options.BatchSize due deliveries, attempts them (Options.Workers at
// once) and records the attempts, and returns how many it claimed. An
// attempt, once started, runs to its end even if ctx is cancelled, so that
// it is recorded. Tests use it to step the dispatcher deterministically.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	claimed, err := s.store.ClaimWebhookDeliveries(ctx, s.clock.Now(), s.o.Lease, s.o.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("webhooks: claim deliveries: %w", err)
	}
	sem := make(chan struct{}, s.o.Workers)
	var wg sync.WaitGroup
	for _, d := range claimed {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.deliver(ctx, d)
		})
	}
	wg.Wait()
	return len(claimed), nil
}

// Purge forgets the deliveries that finished more than Options.Retention
// ago, with their attempts, and the events left without deliveries. It
// returns how many deliveries it removed. Run calls it about once an hour.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	n, err := s.store.PurgeWebhookDeliveries(ctx, s.clock.Now().Add(-s.o.Retention))
	if err != nil {
		return 0, fmt.Errorf("webhooks: purge deliveries: %w", err)
	}
	return n, nil
}

// outcome is what an attempt came to.
type outcome struct {
	status    int    // HTTP status, 0 when no answer
	err       string // "" on success
	succeeded bool
}

// deliver attempts claimed delivery d and records the attempt. It logs
// rather than returns its errors: a delivery left unrecorded is claimed
// again when its lease ends.
func (s *Service) deliver(ctx context.Context, d store.WebhookDelivery) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout+s.o.AttemptTimeout)
	defer cancel()
	log := s.log.With("delivery", d.ID, "endpoint", d.EndpointID, "event_type", d.EventType)

	e, err := s.store.GetWebhookEndpoint(ctx, d.EndpointID)
	if errors.Is(err, store.ErrNotFound) {
		log.Debug("webhooks: the endpoint was deleted after the claim")
		return // its deletion failed the delivery
	}
	if err != nil {
		log.Error("webhooks: read endpoint", "error", err)
		return
	}
	if e.Disabled && d.EventType != EventTest {
		log.Debug("webhooks: the endpoint was disabled after the claim")
		return // its deliveries wait for it to be enabled
	}
	now := s.clock.Now()
	keys, err := s.secrets(e, now)
	if err != nil {
		// Not the receiver's fault (a missing master key, say): no
		// attempt is recorded, and the delivery is claimed again after
		// its lease.
		log.Error("webhooks: open the endpoint's secrets", "error", err)
		return
	}
	headers, err := whsig.Sign(d.EventID, now, d.Payload, keys...)
	if err != nil {
		log.Error("webhooks: sign delivery", "error", err)
		return
	}

	start := time.Now() // the duration is measured on the monotonic clock
	out := s.attempt(ctx, e.URL, d.Payload, headers)
	duration := time.Since(start)

	attempt := store.WebhookAttempt{
		DeliveryID: d.ID,
		N:          d.Attempts + 1,
		At:         now,
		Duration:   duration,
		StatusCode: out.status,
		Error:      out.err,
		Succeeded:  out.succeeded,
	}
	var next time.Time
	if !out.succeeded {
		if delay, ok := backoff(s.o.Schedule, s.o.Jitter, attempt.N, rand.Float64()); ok { //nolint:gosec // G404: jitter, not security
			next = s.clock.Now().Add(delay)
		}
	}
	d2, e2, err := s.store.RecordWebhookAttempt(ctx, attempt, next, func(h store.WebhookHealth) store.WebhookHealth {
		return nextHealth(h, attempt, s.gap)
	})
	if errors.Is(err, store.ErrConflict) {
		// Recorded by another node whose claim lapsed into ours, or
		// failed by the endpoint's deletion.
		log.Debug("webhooks: attempt already recorded or delivery finished", "attempt", attempt.N)
		return
	}
	if err != nil {
		log.Error("webhooks: record attempt", "attempt", attempt.N, "error", err)
		return
	}
	// The log gets the status, or the error when there was no answer:
	// never the answer's body, which the delivery log quotes.
	attrs := []any{"attempt", attempt.N, "status", out.status}
	if out.status == 0 && !out.succeeded {
		attrs = append(attrs, "error", out.err)
	}
	switch {
	case out.succeeded:
		log.Debug("webhooks: delivered", attrs...)
	case d2.Status == store.WebhookFailed:
		log.Info("webhooks: delivery failed for good", attrs...)
	default:
		log.Info("webhooks: attempt failed", append(attrs, "next_attempt_at", next)...)
	}
	if !out.succeeded && !e2.Disabled && disableDue(e2.Health, attempt.At, s.o.DisableAfter) {
		s.disable(ctx, e2, attempt.At, log)
	}
}

// secrets opens the keys that sign e's deliveries at now: the current
// secret's, then the previous one's during its grace.
func (s *Service) secrets(e store.WebhookEndpoint, now time.Time) ([][]byte, error) {
	if s.sealer == nil {
		return nil, errNoSealer
	}
	sealed := [][]byte{e.Secret}
	if previousLive(e, now) {
		sealed = append(sealed, e.PreviousSecret)
	}
	keys := make([][]byte, 0, len(sealed))
	for _, b := range sealed {
		plain, err := s.sealer.Open(b, secretAD(e.ID))
		if err != nil {
			return nil, err
		}
		key, err := whsig.ParseSecret(string(plain))
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// attempt POSTs body to rawURL with the signature headers and says how it
// went.
func (s *Service) attempt(ctx context.Context, rawURL string, body []byte, sig http.Header) outcome {
	u, err := url.Parse(rawURL)
	if err != nil {
		return outcome{err: "invalid URL"}
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !s.o.Policy.AllowHTTP) {
		return outcome{err: fmt.Sprintf("URL scheme %q is not allowed; use https", u.Scheme)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return outcome{err: "invalid URL"}
	}
	maps.Copy(req.Header, sig)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return outcome{err: transportError(err, s.o.AttemptTimeout)}
	}
	defer func() { _ = resp.Body.Close() }()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerRead))
	out := outcome{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		out.succeeded = true
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		out.err = fmt.Sprintf("HTTP %d: redirects are not followed", resp.StatusCode)
	default:
		out.err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if q := quote(answer); q != "" {
			out.err += ": " + q
		} else if readErr != nil {
			out.err += ": " + transportError(readErr, s.o.AttemptTimeout)
		}
	}
	return out
}

// transportError is the short text of an attempt that got no answer. It
// never names the URL, which the delivery log shows beside it.
func transportError(err error, timeout time.Duration) string {
	var addr *netguard.AddressError
	var ne net.Error
	var msg string
	switch {
	case errors.As(err, &addr):
		msg = "address not allowed: " + strings.TrimPrefix(addr.Error(), "netguard: ")
	case errors.Is(err, netguard.ErrForbiddenAddress):
		msg = "address not allowed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		msg = fmt.Sprintf("no answer within %v", timeout)
	default:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		msg = err.Error()
	}
	return clean(msg, maxErrorText)
}

// quote returns the start of an answer's body as printable text, "" when
// there is none.
func quote(b []byte) string {
	return clean(string(b), maxAnswerQuote)
}

// clean makes s printable on one line (control characters and invalid
// UTF-8 become spaces, runs of spaces one) and cuts it to at most n bytes
// and a mark of the cut.
func clean(s string, n int) string {
	var sb strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			r = ' '
		}
		if r == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		sb.WriteRune(r)
		if sb.Len() > n {
			break
		}
	}
	return truncate(strings.TrimSpace(sb.String()), n)
}

// disable disables e, which has been failing for Options.DisableAfter at
// now, unless it is disabled already or has recovered meanwhile, and emits
// EventEndpointDisabled to the organization (to its other endpoints: e
// gets no deliveries of new events while disabled).
func (s *Service) disable(ctx context.Context, e store.WebhookEndpoint, now time.Time, log *slog.Logger) {
	var h store.WebhookHealth
	details := map[string]string{
		"reason":               ReasonFailures,
		"failing_since":        e.Health.FailingSince.UTC().Format(time.RFC3339),
		"consecutive_failures": fmt.Sprint(e.Health.ConsecutiveFailures),
	}
	disabled, err := s.store.UpdateWebhookEndpoint(ctx, e.ID, func(cur store.WebhookEndpoint) (store.WebhookEndpoint, error) {
		if cur.Disabled || !disableDue(cur.Health, now, s.o.DisableAfter) {
			return cur, errNoChange
		}
		h = cur.Health
		cur.Disabled, cur.DisabledReason, cur.DisabledAt = true, ReasonFailures, now
		cur.UpdatedAt = now
		return cur, nil
	}, systemActor.Entry(e.OrgID, actionDisable, targetEndpoint, e.ID, details))
	if errors.Is(err, errNoChange) || errors.Is(err, store.ErrNotFound) {
		return
	}
	if err != nil {
		log.Error("webhooks: disable failing endpoint", "error", err)
		return
	}
	log.Warn("webhooks: endpoint disabled: failing continuously", "failing_since", h.FailingSince,
		"consecutive_failures", h.ConsecutiveFailures, "disable_after", s.o.DisableAfter)
	_, err = s.Emit(ctx, disabled.OrgID, EventEndpointDisabled, endpointDisabledData{
		EndpointID: disabled.ID, URL: disabled.URL, Reason: ReasonFailures, DisabledAt: ts(now),
		FailingSince: ts(h.FailingSince), ConsecutiveFailures: h.ConsecutiveFailures,
		LastError: h.LastFailureError, LastStatusCode: optInt(h.LastFailureStatus),
	})
	if err != nil {
		log.Error("webhooks: emit the endpoint's disabling", "error", err)
	}
}

// errNoChange stops an update that has nothing to do.
var errNoChange = errors.New("webhooks: no change")

// endpointDisabledData is the data of an EventEndpointDisabled event.
type endpointDisabledData struct {
	EndpointID          string    `json:"endpoint_id"`
	URL                 string    `json:"url"`
	Reason              string    `json:"reason"`
	DisabledAt          time.Time `json:"disabled_at"`
	FailingSince        time.Time `json:"failing_since"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error"`
	LastStatusCode      *int      `json:"last_status_code"`
}

// backoff returns the delay before the attempt after failed attempt n (1,
// 2, …): schedule[n-1] varied by up to ±jitter of it, by r drawn uniformly
// from [0, 1) (r = 0.5 is the delay itself). ok is false when the schedule
// is exhausted: the delivery is given up.
func backoff(schedule []time.Duration, jitter float64, n int, r float64) (delay time.Duration, ok bool) {
	if n < 1 || n > len(schedule) {
		return 0, false
	}
	d := schedule[n-1]
	delay = time.Duration(float64(d) * (1 + jitter*(2*r-1)))
	return max(delay, time.Microsecond), true
}
