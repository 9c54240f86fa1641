package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/webhooks"
	"github.com/tollgate/tollgate/internal/whsig"
)

// A real delivery verifies with the Standard Webhooks library, which reads
// the wall clock (so this test signs at real time), and with whsig.Verify
// for X-Webhook-Signature.
func TestDeliveryVerifiesIndependently(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, func(o *webhooks.Options) { o.Clock = clock.System{} })
	ep, secret := e.create(rcv.url("/hook"), webhooks.EventAPIKeyCreated)
	eventID := e.emit(webhooks.EventAPIKeyCreated, map[string]string{"key_id": "key_1", "name": "prod <main> & co"})
	e.deliverDue(1)

	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Errorf("Standard Webhooks library: %v", err)
	}
	if err := wh.Verify(append(bytes.Clone(r.body), ' '), r.header); err == nil {
		t.Error("Standard Webhooks library accepted a tampered body")
	}
	if err := whsig.Verify(r.header, r.body, key(t, secret), time.Now(), 0); err != nil {
		t.Errorf("whsig.Verify of X-Webhook-Signature: %v", err)
	}
	other, _ := whsig.NewSecret()
	if err := whsig.Verify(r.header, r.body, key(t, other), time.Now(), 0); !errors.Is(err, whsig.ErrInvalidSignature) {
		t.Errorf("whsig.Verify with another secret: %v", err)
	}
	for k, want := range map[string]string{
		"Webhook-Id": eventID, "Content-Type": "application/json", "User-Agent": webhooks.UserAgent,
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if s, x := signatures(r.header); s != 1 || x != 1 {
		t.Errorf("%d and %d signatures, want one of each", s, x)
	}
	var p struct {
		ID             string            `json:"id"`
		Type           string            `json:"type"`
		Timestamp      time.Time         `json:"timestamp"`
		OrganizationID string            `json:"organization_id"`
		Data           map[string]string `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("payload %s: %v", r.body, err)
	}
	if p.ID != eventID || p.Type != webhooks.EventAPIKeyCreated || p.OrganizationID != e.org ||
		p.Data["name"] != "prod <main> & co" || p.Timestamp.Location() != time.UTC {
		t.Errorf("payload %s", r.body)
	}
	d := e.only(ep.ID)
	if d.Status != store.WebhookSucceeded || d.Attempts != 1 || d.LastStatusCode != 200 || d.LastError != "" ||
		!bytes.Equal(d.Payload, r.body) {
		t.Errorf("delivery %+v", d)
	}
}

// The payload is exactly the documented envelope, as stored and delivered.
func TestEmitPayload(t *testing.T) {
	e := newEnv(t, nil)
	ep, _ := e.create("https://hooks.example.com/a", webhooks.AllEvents)
	e.clock.Set(t0.Add(123456789 * time.Nanosecond))
	type data struct {
		Plan  string `json:"plan"`
		Units int    `json:"units"`
	}
	id := e.emit(webhooks.EventQuotaThreshold, data{Plan: "pro", Units: 80})
	want := `{"id":"` + id + `","type":"quota.threshold","timestamp":"2026-03-01T12:00:00.123456Z","organization_id":"` +
		e.org + `","data":{"plan":"pro","units":80}}`
	if got := string(e.only(ep.ID).Payload); got != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
	e.clock.Advance(time.Second) // the log is newest first
	id = e.emit(webhooks.EventSecurityAlert, nil)
	ds := e.deliveries(ep.ID)
	if got := string(ds[0].Payload); ds[0].EventID != id || !strings.HasSuffix(got, `","data":{}}`) {
		t.Errorf("payload of nil data: %s", got)
	}

	ctx := t.Context()
	for _, typ := range []string{"", "nope", webhooks.EventTest, webhooks.AllEvents} {
		if _, err := e.svc.Emit(ctx, e.org, typ, nil); err == nil {
			t.Errorf("Emit(%q) succeeded", typ)
		}
	}
	if _, err := e.svc.Emit(ctx, e.org, webhooks.EventSecurityAlert, make(chan int)); err == nil {
		t.Error("Emit of data that cannot be encoded succeeded")
	}
	if _, err := e.svc.Emit(ctx, e.org, webhooks.EventSecurityAlert, strings.Repeat("x", webhooks.MaxPayloadSize)); err == nil {
		t.Error("Emit of an oversized payload succeeded")
	}
	if _, err := e.svc.Emit(ctx, "", webhooks.EventSecurityAlert, nil); err == nil {
		t.Error("Emit without an organization succeeded")
	}
	// An event no endpoint takes is stored all the same.
	other := e.newOrg()
	if _, err := e.svc.Emit(ctx, other, webhooks.EventSecurityAlert, nil); err != nil {
		t.Errorf("Emit to an organization without endpoints: %v", err)
	}
}

// After a rotation, deliveries carry two signatures, each verifiable with
// its secret alone; after the grace, only the new secret signs.
func TestRotation(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, s1 := e.create(rcv.url("/"), webhooks.AllEvents)

	s2, expires, err := e.svc.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	if !expires.Equal(t0.Add(webhooks.DefaultSecretGrace)) || s2 == s1 || !strings.HasPrefix(s2, "whsec_") {
		t.Fatalf("RotateSecret = %s…, %v", s2[:8], expires)
	}
	if got, _ := e.svc.Get(ctx, e.org, ep.ID); got.SecretRotatingUntil == nil || !got.SecretRotatingUntil.Equal(expires) {
		t.Errorf("secret_rotating_until during the grace: %v", got.SecretRotatingUntil)
	}
	outsider, _ := whsig.NewSecret()

	check := func(name string, verify, refuse []string) {
		t.Helper()
		e.emit(webhooks.EventAPIKeyRevoked, nil)
		e.deliverDue(1)
		reqs := rcv.requests()
		r := reqs[len(reqs)-1]
		if s, x := signatures(r.header); s != len(verify) || x != len(verify) {
			t.Errorf("%s: %d standard and %d X-Webhook-Signature signatures, want %d", name, s, x, len(verify))
		}
		now := e.clock.Now()
		for _, s := range verify {
			if err := whsig.Verify(r.header, r.body, key(t, s), now, 0); err != nil {
				t.Errorf("%s: Verify with a live secret: %v", name, err)
			}
			if err := whsig.VerifyStandard(r.header, r.body, key(t, s), now, 0); err != nil {
				t.Errorf("%s: VerifyStandard with a live secret: %v", name, err)
			}
		}
		for _, s := range refuse {
			if err := whsig.Verify(r.header, r.body, key(t, s), now, 0); !errors.Is(err, whsig.ErrInvalidSignature) {
				t.Errorf("%s: Verify with a dead secret: %v", name, err)
			}
			if err := whsig.VerifyStandard(r.header, r.body, key(t, s), now, 0); !errors.Is(err, whsig.ErrInvalidSignature) {
				t.Errorf("%s: VerifyStandard with a dead secret: %v", name, err)
			}
		}
	}
	check("during the grace", []string{s2, s1}, []string{outsider})

	e.clock.Advance(webhooks.DefaultSecretGrace)
	if got, _ := e.svc.Get(ctx, e.org, ep.ID); got.SecretRotatingUntil != nil {
		t.Errorf("secret_rotating_until after the grace: %v", got.SecretRotatingUntil)
	}
	check("after the grace", []string{s2}, []string{s1, outsider})

	// Rotating again during a grace drops the secret before the previous
	// one at once.
	s3, _, err := e.svc.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	s4, expires, err := e.svc.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	if !expires.Equal(e.clock.Now().Add(webhooks.DefaultSecretGrace)) {
		t.Errorf("second rotation: previous secret expires %v", expires)
	}
	check("two rotations", []string{s4, s3}, []string{s2, s1})

	// Without a grace, the old secret stops at once.
	nograce := e.service(func(o *webhooks.Options) { o.SecretGrace = -1 })
	s5, expires, err := nograce.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil || !expires.IsZero() {
		t.Fatalf("RotateSecret without a grace: %v, %v", expires, err)
	}
	check("no grace", []string{s5}, []string{s4, s3})
}

// An event emitted before a restart, while its receiver is down, is
// delivered once after it, with the same webhook-id.
func TestDeliverySurvivesRestart(t *testing.T) {
	down := newReceiver(t, ok)
	addr := down.srv.Listener.Addr().String()
	down.srv.Close()

	e := newEnv(t, nil)
	ctx := t.Context()
	ep, secret := e.create("https://"+addr+"/hook", webhooks.AllEvents)
	eventID := e.emit(webhooks.EventSubscriptionCreated, map[string]string{"plan": "pro"})
	e.deliverDue(1) // the receiver is down
	d := e.only(ep.ID)
	if d.Status != store.WebhookPending || d.Attempts != 1 || d.LastStatusCode != 0 || d.LastError == "" {
		t.Fatalf("delivery to a receiver that is down: %+v", d)
	}
	t.Logf("attempt error: %s", d.LastError)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}

	// The process restarts: a new store on the same file, a new service,
	// and the receiver is back.
	e.open()
	svc := e.service(nil)
	rcv := newReceiverAt(t, addr, ok)
	e.clock.Set(d.NextAttemptAt)
	if n, err := svc.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverDue after the restart = %d, %v", n, err)
	}
	if n, err := svc.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("second DeliverDue after the restart = %d, %v", n, err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	if got := reqs[0].header.Get(whsig.HeaderID); got != eventID {
		t.Errorf("webhook-id %s, want %s", got, eventID)
	}
	if err := whsig.Verify(reqs[0].header, reqs[0].body, key(t, secret), e.clock.Now(), 0); err != nil {
		t.Errorf("delivery after the restart: %v", err)
	}
	ds, err := svc.Deliveries(ctx, e.org, store.WebhookDeliveryFilter{EndpointID: ep.ID})
	if err != nil || len(ds) != 1 || ds[0].Status != store.WebhookSucceeded || ds[0].Attempts != 2 {
		t.Errorf("delivery after the restart: %+v, %v", ds, err)
	}
}

// A delivery stored before any dispatcher ran is delivered by the first one,
// after a restart.
func TestDeliveryQueuedBeforeDispatcher(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	e.create(rcv.url("/"), webhooks.EventAppDeleted)
	eventID := e.emit(webhooks.EventAppDeleted, map[string]string{"app_id": "app_1"})
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open()
	e.svc = e.service(nil)
	e.deliverDue(1)
	e.deliverDue(0)
	if reqs := rcv.requests(); len(reqs) != 1 || reqs[0].header.Get(whsig.HeaderID) != eventID {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
}

// A receiver that fails twice then succeeds gets three attempts at the
// scheduled times, all with the same webhook-id.
func TestRetries(t *testing.T) {
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	eventID := e.emit(webhooks.EventAPIKeyCreated, nil)
	schedule := webhooks.DefaultSchedule()
	var attemptTimes []time.Time
	for i := 1; i <= 3; i++ {
		attemptTimes = append(attemptTimes, e.clock.Now())
		e.deliverDue(1)
		d := e.only(ep.ID)
		if i == 3 {
			break
		}
		if d.Status != store.WebhookPending || d.Attempts != i || d.LastStatusCode != 500 || !strings.HasPrefix(d.LastError, "HTTP 500") {
			t.Fatalf("after attempt %d: %+v", i, d)
		}
		delay := d.NextAttemptAt.Sub(e.clock.Now())
		lo := time.Duration(float64(schedule[i-1])*(1-webhooks.DefaultJitter)) - time.Microsecond
		hi := time.Duration(float64(schedule[i-1])*(1+webhooks.DefaultJitter)) + time.Microsecond
		if delay < lo || delay > hi {
			t.Errorf("after attempt %d: next attempt in %v, want %v ±20%%", i, delay, schedule[i-1])
		}
		if ep, _ := e.svc.Get(ctx, e.org, ep.ID); ep.ConsecutiveFailures != i {
			t.Errorf("after attempt %d: %d consecutive failures", i, ep.ConsecutiveFailures)
		}
		// Not due a moment before its time.
		e.clock.Set(d.NextAttemptAt.Add(-time.Millisecond))
		e.deliverDue(0)
		e.clock.Set(d.NextAttemptAt)
	}

	d, attempts, err := e.svc.Delivery(ctx, e.org, e.only(ep.ID).ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.WebhookSucceeded || d.Attempts != 3 || d.LastStatusCode != 204 || !d.FinishedAt.Equal(attemptTimes[2]) {
		t.Errorf("delivery %+v", d)
	}
	if len(attempts) != 3 {
		t.Fatalf("%d attempts, want 3", len(attempts))
	}
	for i, a := range attempts {
		wantStatus, wantOK := 500, false
		if i == 2 {
			wantStatus, wantOK = 204, true
		}
		if a.N != i+1 || !a.At.Equal(attemptTimes[i]) || a.StatusCode != wantStatus || a.Succeeded != wantOK || (a.Error == "") != wantOK {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
	}
	reqs := rcv.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	for i, r := range reqs {
		if got := r.header.Get(whsig.HeaderID); got != eventID {
			t.Errorf("request %d: webhook-id %s, want %s", i+1, got, eventID)
		}
		if got := r.header.Get(whsig.HeaderTimestamp); got != strconv.FormatInt(attemptTimes[i].Unix(), 10) {
			t.Errorf("request %d: webhook-timestamp %s, want the attempt's time", i+1, got)
		}
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("request %d: another body", i+1)
		}
	}
	if ep, _ := e.svc.Get(ctx, e.org, ep.ID); ep.ConsecutiveFailures != 0 {
		t.Errorf("consecutive failures after a success: %d", ep.ConsecutiveFailures)
	}
}

// Once the schedule is exhausted the delivery fails for good.
func TestGiveUp(t *testing.T) {
	rcv := newReceiver(t, failing)
	e := newEnv(t, func(o *webhooks.Options) {
		o.Schedule = []time.Duration{time.Second, time.Minute}
		o.Jitter = -1
	})
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	e.emit(webhooks.EventQuotaExhausted, nil)
	e.deliverDue(1)
	if d := e.only(ep.ID); !d.NextAttemptAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("without jitter, next attempt at %v, want %v", d.NextAttemptAt, t0.Add(time.Second))
	}
	e.clock.Advance(time.Second)
	e.deliverDue(1)
	if d := e.only(ep.ID); !d.NextAttemptAt.Equal(t0.Add(time.Second + time.Minute)) {
		t.Fatalf("without jitter, next attempt at %v", d.NextAttemptAt)
	}
	e.clock.Advance(time.Minute)
	e.deliverDue(1)
	d := e.only(ep.ID)
	if d.Status != store.WebhookFailed || d.Attempts != 3 || !d.NextAttemptAt.IsZero() || !d.FinishedAt.Equal(e.clock.Now()) {
		t.Errorf("after the last attempt: %+v", d)
	}
	e.clock.Advance(48 * time.Hour)
	e.deliverDue(0)
	if n := len(rcv.requests()); n != 3 {
		t.Errorf("receiver got %d requests, want 3", n)
	}
}

// An endpoint that keeps failing, with events arriving every hour, is
// disabled at its first failed attempt once it has been failing for
// DisableAfter (72 hours by default), not before; the organization's other
// endpoints hear of it (webhook.endpoint.disabled); its health says why
// all along. Disabled, it gets nothing until enabled again, which starts it
// healthy and resumes its pending deliveries.
func TestDisableAfterFailingFor(t *testing.T) {
	bad := newReceiver(t, failing)
	watcher := newReceiver(t, ok)
	e := newEnv(t, func(o *webhooks.Options) { o.Jitter = -1 })
	ctx := t.Context()
	a, _ := e.create(bad.url("/"), webhooks.EventAPIKeyCreated)
	b, _ := e.create(watcher.url("/"), webhooks.EventEndpointDisabled)

	const after = webhooks.DefaultDisableAfter
	for h := time.Duration(0); h < after; h += time.Hour {
		e.clock.Set(t0.Add(h))
		e.emit(webhooks.EventAPIKeyCreated, nil)
		e.drain()
		got := e.endpoint(a.ID)
		if got.Disabled || got.Status != webhooks.StatusFailing {
			t.Fatalf("after failing for %v: %+v", h, got)
		}
	}
	// Its health, an hour before it is disabled.
	got := e.endpoint(a.ID)
	hl := got.Health
	if hl.FailingSince == nil || !hl.FailingSince.Equal(t0) || hl.DisableAt == nil || !hl.DisableAt.Equal(t0.Add(after)) ||
		hl.LastFailure == nil || !hl.LastFailure.At.Equal(t0.Add(after-time.Hour)) || hl.LastFailure.StatusCode == nil ||
		*hl.LastFailure.StatusCode != 500 || hl.LastFailure.Error != "HTTP 500" || hl.LastSuccessAt != nil ||
		hl.PendingDeliveries == 0 || hl.NextAttemptAt == nil || got.ConsecutiveFailures != hl.ConsecutiveFailures ||
		!strings.HasPrefix(hl.Summary, "Failing since 2026-03-01T12:00:00Z (") {
		t.Fatalf("health of a failing endpoint: %+v", hl)
	}
	wantNext := e.clock.Now().Add(5 * time.Second) // the last event's first retry
	if !hl.NextAttemptAt.Equal(wantNext) {
		t.Errorf("next attempt at %v, want %v", hl.NextAttemptAt, wantNext)
	}

	disabledAt := t0.Add(after)
	e.clock.Set(disabledAt)
	e.emit(webhooks.EventAPIKeyCreated, nil)
	e.drain()
	got = e.endpoint(a.ID)
	if !got.Disabled || got.DisabledReason != webhooks.ReasonFailures || got.DisabledAt == nil ||
		!got.DisabledAt.Equal(disabledAt) || got.Status != webhooks.StatusDisabled ||
		got.Health.Status != webhooks.StatusDisabled || got.Health.NextAttemptAt != nil || got.Health.DisableAt != nil ||
		!strings.HasPrefix(got.Health.Summary, "Disabled after failing continuously since 2026-03-01T12:00:00Z (") {
		t.Fatalf("endpoint after failing for %v: %+v", after, got)
	}
	failures := got.ConsecutiveFailures // attempts claimed with the last one failed after it

	reqs := watcher.requests()
	if len(reqs) != 1 {
		t.Fatalf("watcher got %d requests, want 1", len(reqs))
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			EndpointID          string    `json:"endpoint_id"`
			URL                 string    `json:"url"`
			Reason              string    `json:"reason"`
			DisabledAt          time.Time `json:"disabled_at"`
			FailingSince        time.Time `json:"failing_since"`
			ConsecutiveFailures int       `json:"consecutive_failures"`
			LastError           string    `json:"last_error"`
			LastStatusCode      int       `json:"last_status_code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(reqs[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != webhooks.EventEndpointDisabled || p.Data.EndpointID != a.ID || p.Data.URL != a.URL ||
		p.Data.Reason != webhooks.ReasonFailures || !p.Data.DisabledAt.Equal(disabledAt) || !p.Data.FailingSince.Equal(t0) ||
		p.Data.ConsecutiveFailures < webhooks.MinFailuresToDisable || p.Data.ConsecutiveFailures > failures || p.Data.LastError != "HTTP 500" || p.Data.LastStatusCode != 500 {
		t.Errorf("disabled event: %s", reqs[0].body)
	}

	// Disabled: no delivery of new events, no attempt of pending ones.
	before := len(e.deliveries(a.ID))
	requests := len(bad.requests())
	e.emit(webhooks.EventAPIKeyCreated, nil)
	if n := len(e.deliveries(a.ID)); n != before {
		t.Errorf("disabled endpoint has %d deliveries, want the %d before", n, before)
	}
	e.clock.Advance(48 * time.Hour)
	e.drain()
	if n := len(bad.requests()); n != requests {
		t.Errorf("disabled endpoint got %d requests, want %d", n, requests)
	}
	pending := e.endpoint(a.ID).Health.PendingDeliveries
	if pending == 0 {
		t.Fatal("no delivery waits for the disabled endpoint")
	}

	// Enabled again: healthy, pending deliveries resume.
	enable := true
	got, err := e.svc.Update(ctx, e.org, a.ID, webhooks.Patch{Enabled: &enable}, actor)
	if err != nil {
		t.Fatal(err)
	}
	if got.Disabled || got.DisabledReason != "" || got.DisabledAt != nil || got.ConsecutiveFailures != 0 ||
		got.Status != webhooks.StatusHealthy || got.Health.FailingSince != nil || got.Health.LastFailure == nil ||
		got.Health.PendingDeliveries != pending {
		t.Errorf("endpoint enabled again: %+v", got)
	}
	bad.setStatus(ok)
	if n := e.drain(); n != pending {
		t.Errorf("%d deliveries attempted after enabling, want the %d pending", n, pending)
	}
	got = e.endpoint(a.ID)
	if got.Status != webhooks.StatusHealthy || got.Health.LastSuccessAt == nil || !got.Health.LastSuccessAt.Equal(e.clock.Now()) ||
		got.Health.PendingDeliveries != 0 {
		t.Errorf("endpoint after its pending deliveries: %+v", got.Health)
	}
	if ds := e.deliveries(b.ID); len(ds) != 1 {
		t.Errorf("watcher has %d deliveries, want still 1", len(ds))
	}
}

// A ten-minute outage of a receiver during a burst of 200 events leaves
// the endpoint enabled, however many attempts fail; once the receiver is
// back, every event arrives (at least once), each with one webhook-id on
// all of its attempts. (Counting failed attempts, as a limit of 50 in a
// row did, disabled this endpoint within seconds.)
func TestOutageBurstNotDisabled(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	rcv := newReceiver(t, func(int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e := newEnv(t, nil)
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	const events = 200
	ids := map[string]bool{}
	for i := range events {
		e.clock.Set(t0.Add(time.Duration(i) * 25 * time.Millisecond)) // 5 s of events
		ids[e.emit(webhooks.EventAPIKeyCreated, map[string]int{"n": i})] = true
		e.drain()
	}
	// The outage: ten minutes, the dispatcher polling every second.
	for e.clock.Now().Before(t0.Add(10 * time.Minute)) {
		e.drain()
		e.clock.Advance(time.Second)
	}
	got := e.endpoint(ep.ID)
	if got.Disabled || got.Status != webhooks.StatusFailing || got.ConsecutiveFailures < 3*events ||
		!got.Health.FailingSince.Equal(t0) || got.Health.PendingDeliveries != events {
		t.Fatalf("endpoint after the outage: %+v", got)
	}
	// Back: the retries (30 min ±20% after the third attempt) succeed.
	down.Store(false)
	for end := t0.Add(2 * time.Hour); e.clock.Now().Before(end); e.clock.Advance(10 * time.Second) {
		e.drain()
	}
	got = e.endpoint(ep.ID)
	if got.Disabled || got.Status != webhooks.StatusHealthy || got.Health.PendingDeliveries != 0 {
		t.Fatalf("endpoint after the outage: %+v", got)
	}
	for _, d := range e.deliveries(ep.ID) {
		if d.Status != store.WebhookSucceeded {
			t.Errorf("delivery %s: %s after %d attempts", d.ID, d.Status, d.Attempts)
		}
	}
	delivered := map[string]bool{}
	attempts := map[string]int{}
	for _, r := range rcv.requests() {
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if id := r.header.Get(whsig.HeaderID); id != p.ID || !ids[id] {
			t.Fatalf("webhook-id %q on the delivery of event %q", id, p.ID)
		}
		attempts[p.ID]++
		if r.status == http.StatusOK {
			delivered[p.ID] = true
		}
	}
	if len(delivered) != events {
		t.Errorf("%d events delivered, want %d", len(delivered), events)
	}
	for id, n := range attempts {
		if n < 4 {
			t.Errorf("event %s: %d attempts, want 3 failed and 1 successful at least", id, n)
		}
	}
}

// An operator may disable an endpoint; test deliveries still reach it.
func TestOperatorDisable(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	disable := false
	got, err := e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{Enabled: &disable}, actor)
	if err != nil || !got.Disabled || got.DisabledReason != webhooks.ReasonOperator {
		t.Fatalf("disable: %+v, %v", got, err)
	}
	e.emit(webhooks.EventSecurityAlert, nil)
	if ds := e.deliveries(ep.ID); len(ds) != 0 {
		t.Errorf("disabled endpoint got %d deliveries", len(ds))
	}
	d, err := e.svc.Test(ctx, e.org, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.EventType != webhooks.EventTest || d.Status != store.WebhookPending || d.EndpointID != ep.ID {
		t.Errorf("test delivery %+v", d)
	}
	e.deliverDue(1)
	reqs := rcv.requests()
	if len(reqs) != 1 || !bytes.Contains(reqs[0].body, []byte(`"type":"webhook.test"`)) {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	// A redelivery of the test reaches the disabled endpoint too; of an
	// ordinary event, it is refused.
	if _, err := e.svc.Redeliver(ctx, e.org, d.ID, actor); err != nil {
		t.Errorf("redeliver a test delivery to a disabled endpoint: %v", err)
	}
}

// URLs that could reach the gateway's own network are refused at Create
// and Update under the default policy, and a name that resolves to
// loopback is refused when it is dialed.
func TestSSRF(t *testing.T) {
	e := newEnv(t, func(o *webhooks.Options) { o.Policy = netguard.Policy{} })
	ctx := t.Context()
	for _, u := range []string{
		"http://hooks.example.com/hook",
		"https://127.0.0.1/hook",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]:8443/hook",
		"https://10.1.2.3/hook",
		"https://[::ffff:127.0.0.1]/hook",
		"https://localhost/hook",
		"https://user:pw@hooks.example.com/hook",
		"ftp://hooks.example.com/",
		"/relative",
		"",
	} {
		_, _, err := e.svc.Create(ctx, e.org, webhooks.Input{URL: u, EventTypes: []string{"*"}}, actor)
		wantInvalid(t, err, "url")
		t.Logf("%s: %v", u, apiError(t, err).Message)
	}
	ep, _ := e.create("https://hooks.example.com/hook", webhooks.AllEvents)
	bad := "https://169.254.169.254/"
	_, err := e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{URL: &bad}, actor)
	wantInvalid(t, err, "url")
	if err := e.svc.Delete(ctx, e.org, ep.ID, actor); err != nil {
		t.Fatal(err)
	}

	// Dial time: an endpoint stored with a name resolving to loopback
	// (created when private addresses were allowed) gets no connection
	// under the default policy.
	rcv := newReceiver(t, ok)
	permissive := e.service(func(o *webhooks.Options) { o.Policy = netguard.Policy{AllowPrivate: true} })
	_, port, err := net.SplitHostPort(rcv.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local, _, err := permissive.Create(ctx, e.org, webhooks.Input{URL: "https://localhost:" + port + "/hook", EventTypes: []string{"*"}}, actor)
	if err != nil {
		t.Fatal(err)
	}
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(1)
	d := e.only(local.ID)
	if d.Status != store.WebhookPending || d.Attempts != 1 || d.LastStatusCode != 0 ||
		!strings.Contains(d.LastError, "address not allowed") || !strings.Contains(d.LastError, "loopback") {
		t.Errorf("delivery to localhost: %+v", d)
	}
	t.Logf("dial-time refusal: %s", d.LastError)
	if n := rcv.conns.Load(); n != 0 || len(rcv.requests()) != 0 {
		t.Errorf("receiver got %d connections", n)
	}
	// The same endpoint, once allowed, is reached.
	e.clock.Set(d.NextAttemptAt)
	if n, err := permissive.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("DeliverDue = %d, %v", n, err)
	}
	// The certificate names 127.0.0.1, not localhost: the TLS check
	// refuses it, which proves the connection was made this time.
	if rcv.conns.Load() == 0 {
		t.Error("permissive service made no connection")
	}
}

// A plain-http endpoint stored while http was allowed is not delivered to
// once it is no longer allowed.
func TestHTTPRefusedAtDelivery(t *testing.T) {
	e := newEnv(t, func(o *webhooks.Options) { o.Policy = netguard.Policy{AllowPrivate: true, AllowHTTP: true} })
	ep, _ := e.create("http://127.0.0.1:1/hook", webhooks.AllEvents)
	e.svc = e.service(func(o *webhooks.Options) { o.Policy.AllowHTTP = false })
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(1)
	if d := e.only(ep.ID); d.Attempts != 1 || !strings.Contains(d.LastError, `scheme "http" is not allowed`) {
		t.Errorf("delivery to http: %+v", d)
	}
}

// What an answer that is not 2xx leaves in the delivery log.
func TestAttemptErrors(t *testing.T) {
	stuck := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://example.com/", http.StatusFound)
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("missing\n\tfield\x00 " + strings.Repeat("x", 10000)))
	})
	mux.HandleFunc("/slow", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stuck:
		}
	})
	e := newEnv(t, func(o *webhooks.Options) { o.AttemptTimeout = 200 * time.Millisecond })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stuck) }) // before srv.Close, which waits for the handlers
	cases := map[string]func(d store.WebhookDelivery) bool{
		"/redirect": func(d store.WebhookDelivery) bool {
			return d.LastStatusCode == 302 && d.LastError == "HTTP 302: redirects are not followed"
		},
		"/bad": func(d store.WebhookDelivery) bool {
			return d.LastStatusCode == 400 && strings.HasPrefix(d.LastError, "HTTP 400: missing field xxx") && len(d.LastError) < 300
		},
		"/slow": func(d store.WebhookDelivery) bool {
			return d.LastStatusCode == 0 && d.LastError == "no answer within 200ms"
		},
	}
	eps := map[string]string{}
	for path := range cases {
		ep, _ := e.create(srv.URL+path, webhooks.AllEvents)
		eps[path] = ep.ID
	}
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(3)
	for path, check := range cases {
		if d := e.only(eps[path]); d.Status != store.WebhookPending || !check(d) {
			t.Errorf("%s: status %d, error %q", path, d.LastStatusCode, d.LastError)
		}
	}
}

// Endpoint validation and limits.
func TestCreateValidation(t *testing.T) {
	e := newEnv(t, func(o *webhooks.Options) { o.MaxEndpoints = 2 })
	ctx := t.Context()
	create := func(in webhooks.Input) (webhooks.Endpoint, error) {
		if in.URL == "" {
			in.URL = "https://hooks.example.com/x"
		}
		ep, secret, err := e.svc.Create(ctx, e.org, in, actor)
		if err == nil {
			if _, perr := whsig.ParseSecret(secret); perr != nil {
				t.Errorf("secret: %v", perr)
			}
		}
		return ep, err
	}
	for _, types := range [][]string{nil, {}, {"nope"}, {webhooks.EventTest}, {"apikey.created", "APIKEY.CREATED"}, {""}} {
		_, err := create(webhooks.Input{EventTypes: types})
		wantInvalid(t, err, "event_types")
	}
	for _, d := range []string{strings.Repeat("é", webhooks.MaxDescriptionLength+1), "a\x00b", "line\nbreak", "\xff"} {
		_, err := create(webhooks.Input{EventTypes: []string{"*"}, Description: d})
		wantInvalid(t, err, "description")
	}
	ep, err := create(webhooks.Input{
		URL:         " https://hooks.example.com/a?b=c ",
		EventTypes:  []string{"quota.exhausted", "apikey.created", "quota.exhausted"},
		Description: "  " + strings.Repeat("é", webhooks.MaxDescriptionLength) + " ",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ep.EventTypes, ",") != "apikey.created,quota.exhausted" || ep.URL != "https://hooks.example.com/a?b=c" ||
		ep.Description != strings.Repeat("é", webhooks.MaxDescriptionLength) || ep.Disabled || !ep.CreatedAt.Equal(t0) {
		t.Errorf("endpoint %+v", ep)
	}
	ep, err = create(webhooks.Input{EventTypes: []string{"apikey.created", "*"}})
	if err != nil || strings.Join(ep.EventTypes, ",") != "*" {
		t.Errorf("* with another type: %v, %v", ep.EventTypes, err)
	}
	_, err = create(webhooks.Input{EventTypes: []string{"*"}})
	if e := apiError(t, err); e.Status != http.StatusConflict {
		t.Errorf("third endpoint of 2: %v", err)
	}
	// Update refuses the same things, and an empty patch.
	empty := []string{}
	_, err = e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{EventTypes: &empty}, actor)
	wantInvalid(t, err, "event_types")
	_, err = e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{}, actor)
	wantInvalid(t, err, "")
	desc, types, u := "new", []string{webhooks.EventAppDeleted}, "https://other.example.com/"
	got, err := e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{Description: &desc, EventTypes: &types, URL: &u}, actor)
	if err != nil || got.Description != desc || strings.Join(got.EventTypes, ",") != webhooks.EventAppDeleted || got.URL != u {
		t.Errorf("Update: %+v, %v", got, err)
	}
}

// Another organization's IDs are not found, and listing shows only one's
// own.
func TestOrganizationIsolation(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(1)
	d := e.only(ep.ID)

	other := e.newOrg()
	notFound := func(what string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s of another organization: %v, want %v", what, err, want)
		}
	}
	_, err := e.svc.Get(ctx, other, ep.ID)
	notFound("Get", err, webhooks.ErrEndpointNotFound)
	desc := "x"
	_, err = e.svc.Update(ctx, other, ep.ID, webhooks.Patch{Description: &desc}, actor)
	notFound("Update", err, webhooks.ErrEndpointNotFound)
	_, _, err = e.svc.RotateSecret(ctx, other, ep.ID, actor)
	notFound("RotateSecret", err, webhooks.ErrEndpointNotFound)
	_, err = e.svc.Test(ctx, other, ep.ID)
	notFound("Test", err, webhooks.ErrEndpointNotFound)
	notFound("Delete", e.svc.Delete(ctx, other, ep.ID, actor), webhooks.ErrEndpointNotFound)
	_, _, err = e.svc.Delivery(ctx, other, d.ID)
	notFound("Delivery", err, webhooks.ErrDeliveryNotFound)
	_, err = e.svc.Redeliver(ctx, other, d.ID, actor)
	notFound("Redeliver", err, webhooks.ErrDeliveryNotFound)
	_, err = e.svc.Get(ctx, e.org, "wh_doesnotexist")
	notFound("Get of an unknown ID", err, webhooks.ErrEndpointNotFound)

	if list, err := e.svc.List(ctx, other); err != nil || len(list) != 0 {
		t.Errorf("List of another organization: %v, %v", list, err)
	}
	if ds, err := e.svc.Deliveries(ctx, other, store.WebhookDeliveryFilter{}); err != nil || len(ds) != 0 {
		t.Errorf("Deliveries of another organization: %v, %v", ds, err)
	}
	_, err = e.svc.Deliveries(ctx, other, store.WebhookDeliveryFilter{Before: d.ID})
	wantInvalid(t, err, "before")
	if _, err := e.svc.List(ctx, ""); err == nil {
		t.Error("List without an organization succeeded")
	}
	if _, err := e.svc.Deliveries(ctx, "", store.WebhookDeliveryFilter{}); err == nil {
		t.Error("Deliveries without an organization succeeded")
	}
	// Nothing changed.
	if got, err := e.svc.Get(ctx, e.org, ep.ID); err != nil || got.Description != "" || got.SecretRotatingUntil != nil {
		t.Errorf("endpoint after another organization's calls: %+v, %v", got, err)
	}
}

// Deleting an endpoint fails its pending deliveries; they cannot be
// redelivered.
func TestDelete(t *testing.T) {
	rcv := newReceiver(t, failing)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(1)
	if err := e.svc.Delete(ctx, e.org, ep.ID, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Get(ctx, e.org, ep.ID); !errors.Is(err, webhooks.ErrEndpointNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := e.svc.Delete(ctx, e.org, ep.ID, actor); !errors.Is(err, webhooks.ErrEndpointNotFound) {
		t.Errorf("Delete twice: %v", err)
	}
	d := e.only(ep.ID)
	if d.Status != store.WebhookFailed || d.LastError != "endpoint deleted" {
		t.Errorf("pending delivery of a deleted endpoint: %+v", d)
	}
	_, err := e.svc.Redeliver(ctx, e.org, d.ID, actor)
	if e := apiError(t, err); e.Status != http.StatusConflict {
		t.Errorf("Redeliver to a deleted endpoint: %v", err)
	}
	e.clock.Advance(time.Hour)
	e.deliverDue(0)
}

// Redelivery queues the event again, with the same webhook-id; a pending
// delivery cannot be redelivered.
func TestRedeliver(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	eventID := e.emit(webhooks.EventSecurityAlert, nil)
	d := e.only(ep.ID)
	_, err := e.svc.Redeliver(ctx, e.org, d.ID, actor)
	if e := apiError(t, err); e.Status != http.StatusConflict {
		t.Errorf("Redeliver of a pending delivery: %v", err)
	}
	e.deliverDue(1)
	nd, err := e.svc.Redeliver(ctx, e.org, d.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	if nd.RedeliveryOf != d.ID || nd.EventID != eventID || nd.Status != store.WebhookPending || nd.ID == d.ID {
		t.Errorf("redelivery %+v", nd)
	}
	e.deliverDue(1)
	reqs := rcv.requests()
	if len(reqs) != 2 || reqs[1].header.Get(whsig.HeaderID) != eventID || !bytes.Equal(reqs[0].body, reqs[1].body) {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	// Disabled endpoints take no redelivery but of a test.
	off := false
	if _, err := e.svc.Update(ctx, e.org, ep.ID, webhooks.Patch{Enabled: &off}, actor); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Redeliver(ctx, e.org, d.ID, actor)
	if e := apiError(t, err); e.Status != http.StatusConflict {
		t.Errorf("Redeliver to a disabled endpoint: %v", err)
	}
}

// Run delivers what is due until its context ends, then returns.
func TestRun(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, func(o *webhooks.Options) { o.PollInterval = 5 * time.Millisecond })
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	for range 3 {
		e.emit(webhooks.EventSecurityAlert, nil)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(rcv.requests()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if n := len(rcv.requests()); n != 3 {
		t.Fatalf("receiver got %d requests, want 3", n)
	}
	for _, d := range e.deliveries(ep.ID) {
		if d.Status != store.WebhookSucceeded {
			t.Errorf("delivery %+v", d)
		}
	}
}

// Finished deliveries are purged after the retention.
func TestPurge(t *testing.T) {
	rcv := newReceiver(t, ok)
	e := newEnv(t, nil)
	ctx := t.Context()
	ep, _ := e.create(rcv.url("/"), webhooks.AllEvents)
	e.emit(webhooks.EventSecurityAlert, nil)
	e.deliverDue(1)
	e.clock.Advance(webhooks.DefaultRetention - time.Second)
	if n, err := e.svc.Purge(ctx); err != nil || n != 0 {
		t.Errorf("Purge within the retention = %d, %v", n, err)
	}
	e.emit(webhooks.EventSecurityAlert, nil) // pending: never purged
	e.clock.Advance(2 * time.Second)
	if n, err := e.svc.Purge(ctx); err != nil || n != 1 {
		t.Errorf("Purge after the retention = %d, %v", n, err)
	}
	if ds := e.deliveries(ep.ID); len(ds) != 1 || ds[0].Status != store.WebhookPending {
		t.Errorf("after the purge: %+v", ds)
	}
}

// New checks its options.
func TestNewOptions(t *testing.T) {
	e := newEnv(t, nil)
	for name, o := range map[string]webhooks.Options{
		"no store":            {Sealer: e.box},
		"zero delay":          {Store: e.store, Sealer: e.box, Schedule: []time.Duration{time.Second, 0}},
		"jitter 1":            {Store: e.store, Sealer: e.box, Jitter: 1},
		"lease below timeout": {Store: e.store, Sealer: e.box, AttemptTimeout: time.Minute, Lease: time.Minute},
	} {
		if _, err := webhooks.New(o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := webhooks.New(webhooks.Options{Store: e.store, Sealer: e.box}); err != nil {
		t.Errorf("defaults: %v", err)
	}
	// Without a sealer: events are recorded, endpoints cannot be made.
	rec, err := webhooks.New(webhooks.Options{Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Emit(t.Context(), e.org, webhooks.EventAPIKeyCreated, map[string]string{"k": "v"}); err != nil {
		t.Errorf("Emit without a sealer: %v", err)
	}
	if _, _, err := rec.Create(t.Context(), e.org, webhooks.Input{URL: "https://hooks.example.com/x", EventTypes: []string{"*"}}, store.Actor{Type: store.ActorCLI}); err == nil {
		t.Error("Create without a sealer succeeded")
	}
	var _ webhooks.Store = (*sqlite.Store)(nil)
	var _ webhooks.Store = store.Store(nil)
}

// The dispatcher's logs name deliveries and endpoints, never secrets,
// payloads or answers.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rcv := newReceiver(t, failing)
	e := newEnv(t, func(o *webhooks.Options) { o.Logger = logger; o.DisableAfter = time.Second })
	ctx := t.Context()
	ep, s1 := e.create(rcv.url("/"), webhooks.AllEvents)
	s2, _, err := e.svc.RotateSecret(ctx, e.org, ep.ID, actor)
	if err != nil {
		t.Fatal(err)
	}
	e.emit(webhooks.EventSecurityAlert, map[string]string{"marker": "PAYLOAD-MARKER"})
	e.deliverDue(1)
	d := e.only(ep.ID)
	// Enough failures over DisableAfter to disable it.
	for range webhooks.MinFailuresToDisable - 1 {
		e.clock.Advance(time.Second)
		e.emit(webhooks.EventSecurityAlert, nil)
		e.drain()
	}
	logs := buf.String()
	for _, secret := range []string{s1, s2, s1[len("whsec_"):], "whsec_", "PAYLOAD-MARKER"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{d.ID, ep.ID, "status=500", "disabled"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the dispatcher's workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
