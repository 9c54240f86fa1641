package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Webhooks: endpoints, and the outbox of their events' deliveries.

// webhookLease is the claim lease of the webhook tests.
const webhookLease = time.Minute

// endpointValue returns an enabled endpoint of orgID taking the given event
// types, with a previous secret still valid.
func (f *fixture) endpointValue(orgID string, types ...string) store.WebhookEndpoint {
	id := ids.New(ids.WebhookEndpoint)
	now := f.now()
	return store.WebhookEndpoint{
		ID:          id,
		OrgID:       orgID,
		URL:         "https://hooks.example.com/" + id,
		Description: "orders service",
		EventTypes:  types,
		// Sealed bytes, opaque to the store.
		Secret:                  []byte("sealed secret " + id),
		PreviousSecret:          []byte("sealed previous secret " + id),
		PreviousSecretExpiresAt: now.Add(24 * time.Hour),
		CreatedAt:               now,
		UpdatedAt:               now,
	}
}

// createEndpoint creates an endpoint of orgID taking the given event types.
func (f *fixture) createEndpoint(orgID string, types []string, mods ...func(*store.WebhookEndpoint)) store.WebhookEndpoint {
	f.t.Helper()
	e := f.endpointValue(orgID, types...)
	for _, m := range mods {
		m(&e)
	}
	mustDo(f.t, f.s.CreateWebhookEndpoint(f.ctx, e, auditValue("webhook.create")))
	return normalizeEndpoint(e)
}

// normalizeEndpoint returns e as the store must read it back: its event
// types sorted, without duplicates.
func normalizeEndpoint(e store.WebhookEndpoint) store.WebhookEndpoint {
	e = normalize(e)
	e.EventTypes = slices.Compact(slices.Sorted(slices.Values(e.EventTypes)))
	return e
}

// webhookEventValue returns an event of orgID of the given type, created now.
func (f *fixture) webhookEventValue(orgID, typ string) store.WebhookEvent {
	id := ids.New(ids.WebhookEvent)
	return store.WebhookEvent{
		ID:        id,
		OrgID:     orgID,
		Type:      typ,
		Payload:   []byte(`{"type":"` + typ + `","data":{"id":"` + id + `"}}`),
		CreatedAt: f.now(),
	}
}

// enqueue enqueues ev and checks that it queued want deliveries.
func (f *fixture) enqueue(ev store.WebhookEvent, want int) {
	f.t.Helper()
	n, err := f.s.EnqueueWebhookEvent(f.ctx, ev)
	mustDo(f.t, err)
	if n != want {
		f.t.Errorf("EnqueueWebhookEvent(%s, %s): %d deliveries, want %d", ev.Type, ev.ID, n, want)
	}
}

// deliveriesOf returns the deliveries of an event, newest first.
func (f *fixture) deliveriesOf(eventID string) []store.WebhookDelivery {
	f.t.Helper()
	return must(f.s.ListWebhookDeliveries(f.ctx, store.WebhookDeliveryFilter{EventID: eventID}))(f.t)
}

// deliveryTo returns the one delivery of an event to an endpoint.
func (f *fixture) deliveryTo(eventID, endpointID string) store.WebhookDelivery {
	f.t.Helper()
	ds := must(f.s.ListWebhookDeliveries(f.ctx, store.WebhookDeliveryFilter{EventID: eventID, EndpointID: endpointID}))(f.t)
	if len(ds) != 1 {
		f.t.Fatalf("deliveries of event %s to endpoint %s: %d, want 1", eventID, endpointID, len(ds))
	}
	return ds[0]
}

// newDelivery returns a new pending delivery of ev to endpointID as the store
// must read it back; id is the delivery's ID, which the store chooses.
func newDelivery(id string, ev store.WebhookEvent, endpointID string) store.WebhookDelivery {
	return normalize(store.WebhookDelivery{
		ID:             id,
		EventID:        ev.ID,
		EndpointID:     endpointID,
		OrgID:          ev.OrgID,
		EventType:      ev.Type,
		Payload:        ev.Payload,
		EventCreatedAt: ev.CreatedAt,
		Status:         store.WebhookPending,
		NextAttemptAt:  ev.CreatedAt,
		CreatedAt:      ev.CreatedAt,
	})
}

// deliveryIDs returns the IDs of deliveries, in order.
func deliveryIDs(ds []store.WebhookDelivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// claim claims due deliveries at now, for webhookLease, and returns their IDs.
func (f *fixture) claim(now time.Time, limit int) []string {
	f.t.Helper()
	return deliveryIDs(must(f.s.ClaimWebhookDeliveries(f.ctx, now, webhookLease, limit))(f.t))
}

// deliveryOrder is the delivery log's order: newest first, then by ID
// descending.
func deliveryOrder(a, b store.WebhookDelivery) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// testWebhookEndpoints: endpoints round trip (event types sorted, without
// duplicates), each organization sees its own, creations are audited, and
// invalid ones are refused without an audit entry.
func testWebhookEndpoints(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()

	before := f.allAudit()
	v := f.endpointValue(org.ID, "user.created", "apikey.created", "user.created")
	mustDo(t, s.CreateWebhookEndpoint(ctx, v, auditValue("webhook.create")))
	e1 := normalizeEndpoint(v)
	wantEqual(t, "event types read back", e1.EventTypes, []string{"apikey.created", "user.created"})
	a := auditValue("webhook.create")
	a.TargetID = v.ID
	f.wantNewAudit("CreateWebhookEndpoint", before, a)

	e2 := f.createEndpoint(org.ID, []string{"*"}, func(e *store.WebhookEndpoint) {
		e.Disabled, e.DisabledReason, e.DisabledAt = true, "failures", e.CreatedAt
		e.Health = store.WebhookHealth{ConsecutiveFailures: 7, FailingSince: e.CreatedAt.Add(-72 * time.Hour),
			LastSuccessAt: e.CreatedAt.Add(-73 * time.Hour), LastFailureAt: e.CreatedAt,
			LastFailureStatus: 502, LastFailureError: "HTTP 502: Bad Gateway"}
	})
	o1 := f.createEndpoint(other.ID, []string{"*"})

	wantEqual(t, "GetWebhookEndpoint", must(s.GetWebhookEndpoint(ctx, e1.ID))(t), e1)
	wantEqual(t, "GetWebhookEndpoint (disabled)", must(s.GetWebhookEndpoint(ctx, e2.ID))(t), e2)
	wantEqual(t, "ListWebhookEndpoints", must(s.ListWebhookEndpoints(ctx, org.ID))(t), []store.WebhookEndpoint{e1, e2})
	wantEqual(t, "ListWebhookEndpoints (other org)", must(s.ListWebhookEndpoints(ctx, other.ID))(t), []store.WebhookEndpoint{o1})
	wantEqual(t, "ListWebhookEndpoints (all)", must(s.ListWebhookEndpoints(ctx, ""))(t), []store.WebhookEndpoint{e1, e2, o1})
	wantEqual(t, "ListWebhookEndpoints (unknown org)", must(s.ListWebhookEndpoints(ctx, "org_missing"))(t), []store.WebhookEndpoint{})

	// Zero values round trip: no previous secret reads back empty.
	bare := store.WebhookEndpoint{ID: ids.New(ids.WebhookEndpoint), OrgID: org.ID, URL: "https://bare.example.com/",
		EventTypes: []string{"*"}, Secret: []byte("sealed")}
	mustDo(t, s.CreateWebhookEndpoint(ctx, bare, auditValue("webhook.create")))
	wantEqual(t, "bare endpoint", must(s.GetWebhookEndpoint(ctx, bare.ID))(t), normalizeEndpoint(bare))

	tests := []struct {
		name   string
		mod    func(*store.WebhookEndpoint)
		target error
	}{
		{"duplicate ID", func(e *store.WebhookEndpoint) { e.ID = e1.ID }, store.ErrAlreadyExists},
		{"unknown organization", func(e *store.WebhookEndpoint) { e.OrgID = "org_missing" }, store.ErrNotFound},
		{"no ID", func(e *store.WebhookEndpoint) { e.ID = "" }, errAny},
		{"no organization", func(e *store.WebhookEndpoint) { e.OrgID = "" }, errAny},
		{"no URL", func(e *store.WebhookEndpoint) { e.URL = "" }, errAny},
		{"no event types", func(e *store.WebhookEndpoint) { e.EventTypes = []string{} }, errAny},
		{"no secret", func(e *store.WebhookEndpoint) { e.Secret = nil }, errAny},
	}
	for _, tt := range tests {
		before := f.allAudit()
		e := f.endpointValue(org.ID, "*")
		tt.mod(&e)
		err := s.CreateWebhookEndpoint(ctx, e, auditValue("webhook.create"))
		if errors.Is(tt.target, errAny) {
			if err == nil {
				t.Errorf("%s: no error", tt.name)
			}
		} else {
			wantErr(t, tt.name, err, tt.target)
		}
		f.wantNewAudit(tt.name, before)
	}
	if got := must(s.ListWebhookEndpoints(ctx, ""))(t); len(got) != 4 {
		t.Errorf("%d endpoints after failed creations, want 4", len(got))
	}
}

// testUpdateWebhookEndpoint: an update changes everything but the ID, the
// organization and the creation time, and is audited; a failing update func
// or a value without a required field changes nothing.
func testUpdateWebhookEndpoint(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"apikey.created"}, func(e *store.WebhookEndpoint) {
		e.Health = store.WebhookHealth{ConsecutiveFailures: 3, FailingSince: e.CreatedAt, LastFailureAt: e.CreatedAt, LastFailureError: "timeout"}
	})

	later := f.now()
	before := f.allAudit()
	var seen store.WebhookEndpoint
	got, err := s.UpdateWebhookEndpoint(ctx, e.ID, func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
		seen = v
		v.ID, v.OrgID, v.CreatedAt = "wh_changed", other.ID, later
		v.URL, v.Description = "https://new.example.com/hook", "renamed"
		v.EventTypes = []string{"user.created", "apikey.revoked", "apikey.revoked"}
		v.PreviousSecret, v.Secret = v.Secret, []byte("sealed rotated secret")
		v.PreviousSecretExpiresAt = later.Add(24 * time.Hour)
		v.Disabled, v.DisabledReason, v.DisabledAt = true, "operator", later
		v.Health = store.WebhookHealth{LastSuccessAt: later}
		v.UpdatedAt = later
		return v, nil
	}, auditValue("webhook.update"))
	mustDo(t, err)
	wantEqual(t, "value passed to the update func", seen, e)
	want := e
	want.URL, want.Description = "https://new.example.com/hook", "renamed"
	want.EventTypes = []string{"apikey.revoked", "user.created"}
	want.PreviousSecret, want.Secret = e.Secret, []byte("sealed rotated secret")
	want.PreviousSecretExpiresAt = normalize(later.Add(24 * time.Hour))
	want.Disabled, want.DisabledReason, want.DisabledAt = true, "operator", normalize(later)
	want.Health, want.UpdatedAt = store.WebhookHealth{LastSuccessAt: normalize(later)}, normalize(later)
	wantEqual(t, "UpdateWebhookEndpoint result", got, want)
	wantEqual(t, "GetWebhookEndpoint after update", must(s.GetWebhookEndpoint(ctx, e.ID))(t), want)
	wantEqual(t, "the other organization's endpoints", must(s.ListWebhookEndpoints(ctx, other.ID))(t), []store.WebhookEndpoint{})
	f.wantNewAudit("UpdateWebhookEndpoint", before, auditValue("webhook.update"))

	for _, bad := range []struct {
		name string
		fn   func(store.WebhookEndpoint) (store.WebhookEndpoint, error)
		err  error
	}{
		{"update func error", func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
			v.URL = "https://never.example.com/"
			return v, errBoom
		}, errBoom},
		{"no event types", func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
			v.EventTypes = nil
			return v, nil
		}, errAny},
		{"no URL", func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
			v.URL = ""
			return v, nil
		}, errAny},
		{"no secret", func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
			v.Secret = nil
			return v, nil
		}, errAny},
	} {
		before := f.allAudit()
		_, err := s.UpdateWebhookEndpoint(ctx, e.ID, bad.fn, auditValue("webhook.update"))
		if errors.Is(bad.err, errAny) {
			if err == nil {
				t.Errorf("%s: no error", bad.name)
			}
		} else {
			wantErr(t, bad.name, err, bad.err)
		}
		wantEqual(t, "after "+bad.name, must(s.GetWebhookEndpoint(ctx, e.ID))(t), want)
		f.wantNewAudit(bad.name, before)
	}

	before = f.allAudit()
	_, err = s.UpdateWebhookEndpoint(ctx, "wh_missing", func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) { return v, nil },
		auditValue("webhook.update"))
	wantErr(t, "UpdateWebhookEndpoint of a missing endpoint", err, store.ErrNotFound)
	f.wantNewAudit("update of a missing endpoint", before)
}

// testEnqueueWebhookEvent: an event goes to the enabled endpoints of its
// organization that take its type or "*", once however often it is
// enqueued; an event nobody takes is stored all the same.
func testEnqueueWebhookEvent(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	keys := f.createEndpoint(org.ID, []string{"apikey.created", "apikey.revoked"})
	all := f.createEndpoint(org.ID, []string{"*"})
	users := f.createEndpoint(org.ID, []string{"user.created"})
	f.createEndpoint(org.ID, []string{"*"}, func(e *store.WebhookEndpoint) { e.Disabled = true })
	otherAll := f.createEndpoint(other.ID, []string{"*"})

	before := f.allAudit()
	ev := f.webhookEventValue(org.ID, "apikey.created")
	f.enqueue(ev, 2)
	got := f.deliveriesOf(ev.ID)
	if len(got) != 2 {
		t.Fatalf("deliveries of the event: %+v, want 2", got)
	}
	for _, d := range got {
		if !ids.Valid(ids.WebhookDelivery, d.ID) {
			t.Errorf("delivery ID %q is not a delivery identifier", d.ID)
		}
	}
	want := []store.WebhookDelivery{
		newDelivery(f.deliveryTo(ev.ID, keys.ID).ID, ev, keys.ID),
		newDelivery(f.deliveryTo(ev.ID, all.ID).ID, ev, all.ID),
	}
	slices.SortFunc(want, deliveryOrder)
	wantEqual(t, "deliveries of the event", got, want)
	wantEqual(t, "GetWebhookDelivery", must(s.GetWebhookDelivery(ctx, want[0].ID))(t), want[0])
	f.wantNewAudit("EnqueueWebhookEvent (not audited)", before)

	// The same event again, even with another type: nothing changes.
	f.enqueue(ev, 0)
	again := ev
	again.Type = "user.created"
	f.enqueue(again, 0)
	wantEqual(t, "deliveries after enqueueing again", f.deliveriesOf(ev.ID), want)

	// Fan-out by type.
	userEv := f.webhookEventValue(org.ID, "user.created")
	f.enqueue(userEv, 2)
	f.deliveryTo(userEv.ID, users.ID)
	f.deliveryTo(userEv.ID, all.ID)
	f.enqueue(f.webhookEventValue(org.ID, "apikey.revoked"), 2)
	f.enqueue(f.webhookEventValue(other.ID, "apikey.created"), 1)
	wantEqual(t, "deliveries of the other organization", deliveryIDs(must(s.ListWebhookDeliveries(ctx,
		store.WebhookDeliveryFilter{OrgID: other.ID}))(t)), deliveryIDs(must(s.ListWebhookDeliveries(ctx,
		store.WebhookDeliveryFilter{EndpointID: otherAll.ID}))(t)))

	// Taken by "*" only; then by nobody, but stored: enqueueing it again
	// once an endpoint takes it queues nothing.
	f.enqueue(f.webhookEventValue(org.ID, "plan.changed"), 1)
	nobody := f.webhookEventValue(org.ID, "plan.changed")
	nobody.OrgID = other.ID
	mustDo(t, errOf(s.UpdateWebhookEndpoint(ctx, otherAll.ID, func(e store.WebhookEndpoint) (store.WebhookEndpoint, error) {
		e.EventTypes = []string{"apikey.created"}
		return e, nil
	}, auditValue("webhook.update"))))
	f.enqueue(nobody, 0)
	f.createEndpoint(other.ID, []string{"plan.changed"})
	f.enqueue(nobody, 0)
	wantEqual(t, "deliveries of an event nobody took", f.deliveriesOf(nobody.ID), []store.WebhookDelivery{})

	// A zero creation time is the store's now.
	zero := f.webhookEventValue(org.ID, "user.created")
	zero.CreatedAt = time.Time{}
	f.enqueue(zero, 2)
	for _, d := range f.deliveriesOf(zero.ID) {
		if d.CreatedAt.IsZero() || d.NextAttemptAt.IsZero() || d.EventCreatedAt.IsZero() {
			t.Errorf("delivery of an event without a creation time: %+v, want its times set", d)
		}
	}

	for _, tt := range []struct {
		name   string
		mod    func(*store.WebhookEvent)
		target error
	}{
		{"unknown organization", func(ev *store.WebhookEvent) { ev.OrgID = "org_missing" }, store.ErrNotFound},
		{"no ID", func(ev *store.WebhookEvent) { ev.ID = "" }, errAny},
		{"no organization", func(ev *store.WebhookEvent) { ev.OrgID = "" }, errAny},
		{"no type", func(ev *store.WebhookEvent) { ev.Type = "" }, errAny},
	} {
		ev := f.webhookEventValue(org.ID, "apikey.created")
		tt.mod(&ev)
		n, err := s.EnqueueWebhookEvent(ctx, ev)
		switch {
		case errors.Is(tt.target, errAny):
			if err == nil {
				t.Errorf("EnqueueWebhookEvent with %s: no error", tt.name)
			}
		default:
			wantErr(t, "EnqueueWebhookEvent with "+tt.name, err, tt.target)
		}
		if n != 0 {
			t.Errorf("EnqueueWebhookEvent with %s: %d deliveries", tt.name, n)
		}
	}
}

// testWebhookTestEvent: an event addressed to an endpoint goes to it only,
// whatever its types, even when it is disabled (and is then claimed all the
// same); an endpoint of another organization, or none, is ErrNotFound, and
// the event is not stored.
func testWebhookTestEvent(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	users := f.createEndpoint(org.ID, []string{"user.created"})
	all := f.createEndpoint(org.ID, []string{"*"})
	disabled := f.createEndpoint(org.ID, []string{"*"})
	otherAll := f.createEndpoint(other.ID, []string{"*"})
	// An ordinary event, queued for the endpoint before it is disabled.
	ordinary := f.webhookEventValue(org.ID, "apikey.created")
	f.enqueue(ordinary, 2)
	mustDo(t, errOf(s.UpdateWebhookEndpoint(ctx, disabled.ID, func(e store.WebhookEndpoint) (store.WebhookEndpoint, error) {
		e.Disabled, e.DisabledReason, e.DisabledAt = true, "failures", f.clk.Now()
		return e, nil
	}, auditValue("webhook.disable"))))

	ping := f.webhookEventValue(org.ID, "webhook.test")
	ping.Endpoint = users.ID
	f.enqueue(ping, 1)
	wantEqual(t, "test delivery", f.deliveriesOf(ping.ID), []store.WebhookDelivery{newDelivery(f.deliveryTo(ping.ID, users.ID).ID, ping, users.ID)})
	f.enqueue(ping, 0)

	toDisabled := f.webhookEventValue(org.ID, "webhook.test")
	toDisabled.Endpoint = disabled.ID
	f.enqueue(toDisabled, 1)
	// The test delivery to the disabled endpoint is claimed; the ordinary
	// one waits.
	got := f.claim(f.now(), 10)
	wantEqual(t, "claimed", slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values([]string{
		f.deliveryTo(ordinary.ID, all.ID).ID,
		f.deliveryTo(ping.ID, users.ID).ID,
		f.deliveryTo(toDisabled.ID, disabled.ID).ID,
	})))
	wantEqual(t, "the ordinary delivery to the disabled endpoint", f.deliveryTo(ordinary.ID, disabled.ID).Attempts, 0)

	for _, tt := range []struct{ name, endpoint string }{
		{"another organization's endpoint", otherAll.ID},
		{"a missing endpoint", "wh_missing"},
	} {
		ev := f.webhookEventValue(org.ID, "webhook.test")
		ev.Endpoint = tt.endpoint
		n, err := s.EnqueueWebhookEvent(ctx, ev)
		wantErr(t, "test event to "+tt.name, err, store.ErrNotFound)
		if n != 0 {
			t.Errorf("test event to %s: %d deliveries", tt.name, n)
		}
		// Not stored: enqueued again without an endpoint, it fans out (to
		// the enabled endpoint taking "*").
		ev.Endpoint = ""
		f.enqueue(ev, 1)
	}
}

// testClaimWebhookDeliveries: a claim takes the due deliveries of enabled
// endpoints, oldest first, up to its limit, and leases them: no claim takes
// them again before the lease ends.
func testClaimWebhookDeliveries(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	ev1 := f.webhookEventValue(org.ID, "a")
	ev2 := f.webhookEventValue(org.ID, "b")
	ev3 := f.webhookEventValue(org.ID, "c")
	// Enqueued in another order than their times.
	f.enqueue(ev3, 1)
	f.enqueue(ev1, 1)
	f.enqueue(ev2, 1)
	d1, d2, d3 := f.deliveryTo(ev1.ID, e.ID), f.deliveryTo(ev2.ID, e.ID), f.deliveryTo(ev3.ID, e.ID)

	wantEqual(t, "claim before anything is due", f.claim(ev1.CreatedAt.Add(-time.Microsecond), 10), []string{})
	wantEqual(t, "claim when the first is due", f.claim(ev1.CreatedAt, 10), []string{d1.ID})

	// The limit takes the oldest due.
	now := ev3.CreatedAt.Add(time.Second)
	claimed := must(s.ClaimWebhookDeliveries(ctx, now, webhookLease, 1))(t)
	leased := normalize(now.Add(webhookLease))
	d2.NextAttemptAt, d3.NextAttemptAt = leased, leased
	wantEqual(t, "claimed with a limit, oldest first", claimed, []store.WebhookDelivery{d2})
	wantEqual(t, "a claimed delivery", must(s.GetWebhookDelivery(ctx, d2.ID))(t), d2)
	wantEqual(t, "claim the rest", must(s.ClaimWebhookDeliveries(ctx, now, webhookLease, 10))(t), []store.WebhookDelivery{d3})

	sorted := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }
	wantEqual(t, "claim again at once", f.claim(now, 10), []string{})
	// d1's lease, taken earlier, has ended; d2's and d3's have not.
	wantEqual(t, "claim just before the lease ends", f.claim(now.Add(webhookLease-time.Microsecond), 10), []string{d1.ID})
	wantEqual(t, "claim when the lease ends", sorted(f.claim(now.Add(webhookLease), 10)...), sorted(d2.ID, d3.ID))
	later := now.Add(10 * webhookLease)
	wantEqual(t, "claim when the first lease ends", f.claim(later, 1), []string{d1.ID})

	// Deliveries of a disabled endpoint wait, and go once it is enabled.
	setDisabled := func(disabled bool) {
		mustDo(t, errOf(s.UpdateWebhookEndpoint(ctx, e.ID, func(v store.WebhookEndpoint) (store.WebhookEndpoint, error) {
			v.Disabled = disabled
			return v, nil
		}, auditValue("webhook.update"))))
	}
	later = later.Add(10 * webhookLease)
	setDisabled(true)
	wantEqual(t, "claim while the endpoint is disabled", f.claim(later, 10), []string{})
	setDisabled(false)
	wantEqual(t, "claim once it is enabled again", sorted(f.claim(later, 10)...), sorted(d1.ID, d2.ID, d3.ID))

	for _, bad := range []struct {
		lease time.Duration
		limit int
	}{{0, 10}, {-time.Second, 10}, {time.Second, 0}, {time.Second, -1}} {
		if _, err := s.ClaimWebhookDeliveries(ctx, later, bad.lease, bad.limit); err == nil {
			t.Errorf("ClaimWebhookDeliveries with lease %v and limit %d: no error", bad.lease, bad.limit)
		}
	}
}

// testConcurrentClaimWebhookDeliveries: claims racing from many goroutines
// take every due delivery exactly once while the leases hold.
func testConcurrentClaimWebhookDeliveries(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const (
		goroutines = 8
		endpoints  = 4
		events     = 10
		limit      = 3
	)
	org, _ := f.createOrg()
	for range endpoints {
		f.createEndpoint(org.ID, []string{"*"})
	}
	for range events {
		f.enqueue(f.webhookEventValue(org.ID, "order.paid"), endpoints)
	}
	now := f.now()

	var mu sync.Mutex
	var claimed []string
	errs := runAll(goroutines, func(int) error {
		for {
			ds, err := s.ClaimWebhookDeliveries(ctx, now, webhookLease, limit)
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				return nil
			}
			if len(ds) > limit {
				return fmt.Errorf("claimed %d deliveries with limit %d", len(ds), limit)
			}
			mu.Lock()
			claimed = append(claimed, deliveryIDs(ds)...)
			n := len(claimed)
			mu.Unlock()
			if n > endpoints*events {
				return fmt.Errorf("%d claims of %d deliveries: leased deliveries claimed again", n, endpoints*events)
			}
		}
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	all := deliveryIDs(must(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{OrgID: org.ID}))(t))
	if len(all) != endpoints*events {
		t.Fatalf("%d deliveries, want %d", len(all), endpoints*events)
	}
	wantEqual(t, "deliveries claimed (each once)", slices.Sorted(slices.Values(claimed)), slices.Sorted(slices.Values(all)))

	// When the leases end, they are all claimed again, once.
	again := must(s.ClaimWebhookDeliveries(ctx, now.Add(webhookLease), webhookLease, 1000))(t)
	wantEqual(t, "claimed after the leases", slices.Sorted(slices.Values(deliveryIDs(again))), slices.Sorted(slices.Values(all)))
}

// testRecordWebhookAttempt: attempts are recorded in order, once each; a
// failure reschedules the delivery or, with no next time, gives it up; a
// success finishes it; the endpoint's health is what the caller's health
// func makes of the health stored, in the same transaction.
func testRecordWebhookAttempt(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	ev := f.webhookEventValue(org.ID, "apikey.created")
	f.enqueue(ev, 1)
	d := f.deliveryTo(ev.ID, e.ID)
	claimedAt := f.now()
	f.claim(claimedAt, 10)
	d.NextAttemptAt = normalize(claimedAt.Add(webhookLease))

	// Attempt 1 fails: retried later.
	a1 := store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: f.now(), Duration: 1500*time.Millisecond + 789*time.Nanosecond,
		StatusCode: 503, Error: "503 Service Unavailable"}
	retry := a1.At.Add(30 * time.Second)
	var seen []store.WebhookHealth
	gotD, gotE := must2(s.RecordWebhookAttempt(ctx, a1, retry, func(h store.WebhookHealth) store.WebhookHealth {
		seen = append(seen, h)
		return tally(a1)(h)
	}))(t)
	if len(seen) == 0 || seen[len(seen)-1] != (store.WebhookHealth{}) {
		t.Errorf("health func given %+v, want the stored zero health", seen)
	}
	d.Attempts, d.NextAttemptAt, d.LastAttemptAt = 1, normalize(retry), normalize(a1.At)
	d.LastStatusCode, d.LastError = 503, "503 Service Unavailable"
	e.Health = store.WebhookHealth{ConsecutiveFailures: 1, FailingSince: normalize(a1.At), LastFailureAt: normalize(a1.At),
		LastFailureStatus: 503, LastFailureError: "503 Service Unavailable"}
	wantEqual(t, "delivery after a failed attempt", gotD, d)
	wantEqual(t, "endpoint after a failed attempt", gotE, e)
	wantEqual(t, "GetWebhookDelivery after a failed attempt", must(s.GetWebhookDelivery(ctx, d.ID))(t), d)
	wantEqual(t, "GetWebhookEndpoint after a failed attempt", must(s.GetWebhookEndpoint(ctx, e.ID))(t), e)

	// Stale or skipped attempt numbers change nothing, health included.
	for _, n := range []int{1, 3} {
		stale := a1
		stale.N, stale.Succeeded, stale.Error = n, true, ""
		_, _, err := s.RecordWebhookAttempt(ctx, stale, time.Time{}, tally(stale))
		wantErr(t, fmt.Sprintf("attempt %d after attempt 1", n), err, store.ErrConflict)
	}
	wantEqual(t, "delivery after stale attempts", must(s.GetWebhookDelivery(ctx, d.ID))(t), d)
	wantEqual(t, "endpoint after stale attempts", must(s.GetWebhookEndpoint(ctx, e.ID))(t), e)

	// Attempt 2, when due, succeeds.
	wantEqual(t, "claim when the retry is due", f.claim(retry, 10), []string{d.ID})
	a2 := store.WebhookAttempt{DeliveryID: d.ID, N: 2, At: f.now(), Duration: 80 * time.Millisecond, StatusCode: 204, Succeeded: true}
	gotD, gotE = must2(s.RecordWebhookAttempt(ctx, a2, a2.At.Add(time.Hour), tally(a2)))(t)
	d.Status, d.Attempts, d.NextAttemptAt, d.LastAttemptAt = store.WebhookSucceeded, 2, time.Time{}, normalize(a2.At)
	d.LastStatusCode, d.LastError, d.FinishedAt = 204, "", normalize(a2.At)
	e.Health.ConsecutiveFailures, e.Health.FailingSince, e.Health.LastSuccessAt = 0, time.Time{}, normalize(a2.At)
	wantEqual(t, "delivery after a successful attempt", gotD, d)
	wantEqual(t, "endpoint after a successful attempt", gotE, e)
	wantEqual(t, "claim after success", f.claim(retry.Add(10*webhookLease), 10), []string{})

	a3 := a2
	a3.N = 3
	_, _, err := s.RecordWebhookAttempt(ctx, a3, time.Time{}, tally(a3))
	wantErr(t, "attempt of a succeeded delivery", err, store.ErrConflict)

	a1.Duration = a1.Duration.Truncate(time.Microsecond)
	wantEqual(t, "ListWebhookAttempts", must(s.ListWebhookAttempts(ctx, d.ID))(t),
		[]store.WebhookAttempt{normalize(a1), normalize(a2)})
	wantEqual(t, "ListWebhookAttempts of an unknown delivery", must(s.ListWebhookAttempts(ctx, "dlv_missing"))(t),
		[]store.WebhookAttempt{})

	// Failures in a row count across deliveries; a success resets them.
	var ds []store.WebhookDelivery
	for range 3 {
		ev := f.webhookEventValue(org.ID, "apikey.created")
		f.enqueue(ev, 1)
		ds = append(ds, f.deliveryTo(ev.ID, e.ID))
	}
	for i, d := range ds[:2] {
		a := store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: f.now(), Error: "dial tcp: connection refused"}
		_, gotE := must2(s.RecordWebhookAttempt(ctx, a, f.now().Add(time.Minute), tally(a)))(t)
		if gotE.Health.ConsecutiveFailures != i+1 {
			t.Errorf("consecutive failures after %d failures: %d", i+1, gotE.Health.ConsecutiveFailures)
		}
	}
	// The dispatcher gives up: the delivery fails for good.
	at := f.now()
	a := store.WebhookAttempt{DeliveryID: ds[2].ID, N: 1, At: at, Duration: 10 * time.Second, Error: "timeout"}
	gotD, gotE = must2(s.RecordWebhookAttempt(ctx, a, time.Time{}, tally(a)))(t)
	want := ds[2]
	want.Status, want.Attempts, want.NextAttemptAt, want.LastAttemptAt = store.WebhookFailed, 1, time.Time{}, normalize(at)
	want.LastError, want.FinishedAt = "timeout", normalize(at)
	wantEqual(t, "delivery given up", gotD, want)
	if gotE.Health.ConsecutiveFailures != 3 || gotE.Health.LastFailureError != "timeout" {
		t.Errorf("health after 3 failures: %+v", gotE.Health)
	}
	wantEqual(t, "claim of a delivery given up", slices.Contains(f.claim(at.Add(time.Hour), 10), want.ID), false)
	_, _, err = s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: ds[2].ID, N: 2, At: f.now()}, f.now(), nil)
	wantErr(t, "attempt of a delivery given up", err, store.ErrConflict)
	// Without a health func the endpoint's health is left alone.
	kept := must(s.GetWebhookEndpoint(ctx, e.ID))(t)
	_, gotE = must2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: ds[1].ID, N: 2, At: f.now(),
		Error: "HTTP 500"}, f.now().Add(time.Minute), nil))(t)
	wantEqual(t, "endpoint after an attempt without a health func", gotE, kept)
	ok := store.WebhookAttempt{DeliveryID: ds[0].ID, N: 2, At: f.now(), StatusCode: 200, Succeeded: true}
	_, gotE = must2(s.RecordWebhookAttempt(ctx, ok, time.Time{}, tally(ok)))(t)
	if gotE.Health.ConsecutiveFailures != 0 || !gotE.Health.FailingSince.IsZero() {
		t.Errorf("health after a success: %+v", gotE.Health)
	}

	_, _, err = s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: "dlv_missing", N: 1, At: f.now()}, time.Time{}, nil)
	wantErr(t, "attempt of an unknown delivery", err, store.ErrNotFound)
	if _, _, err := s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: ds[1].ID, N: 0, At: f.now()}, time.Time{}, nil); err == nil {
		t.Error("attempt number 0: no error")
	}
}

// tally is a health func for the tests: it counts failures in a row, from
// the first one, and a success resets them.
func tally(at store.WebhookAttempt) func(store.WebhookHealth) store.WebhookHealth {
	return func(h store.WebhookHealth) store.WebhookHealth {
		if at.Succeeded {
			h.ConsecutiveFailures, h.FailingSince, h.LastSuccessAt = 0, time.Time{}, at.At
			return h
		}
		if h.FailingSince.IsZero() {
			h.FailingSince = at.At
		}
		h.ConsecutiveFailures++
		h.LastFailureAt, h.LastFailureStatus, h.LastFailureError = at.At, at.StatusCode, at.Error
		return h
	}
}

// testConcurrentWebhookHealth: attempts of one endpoint's deliveries
// recorded at once, from several goroutines, each see the health the one
// before left: none is lost.
func testConcurrentWebhookHealth(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	const n = 24
	var ds []store.WebhookDelivery
	for range n {
		ev := f.webhookEventValue(org.ID, "apikey.created")
		f.enqueue(ev, 1)
		ds = append(ds, f.deliveryTo(ev.ID, e.ID))
	}
	at := f.now()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			a := store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: at, StatusCode: 500, Error: "HTTP 500"}
			if _, _, err := s.RecordWebhookAttempt(ctx, a, at.Add(time.Minute), tally(a)); err != nil {
				t.Errorf("attempt of %s: %v", d.ID, err)
			}
		})
	}
	wg.Wait()
	got := must(s.GetWebhookEndpoint(ctx, e.ID))(t).Health
	if got.ConsecutiveFailures != n || !got.FailingSince.Equal(normalize(at)) {
		t.Errorf("health after %d failures recorded at once: %+v", n, got)
	}
}

// testWebhookBacklog: an endpoint's backlog counts its pending deliveries
// and the earliest of their due times, and nobody else's.
func testWebhookBacklog(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	other := f.createEndpoint(org.ID, []string{"apikey.revoked"})
	wantEqual(t, "backlog of a new endpoint", must(s.WebhookBacklog(ctx, e.ID))(t), store.WebhookBacklog{})
	wantEqual(t, "backlog of an unknown endpoint", must(s.WebhookBacklog(ctx, "wh_missing"))(t), store.WebhookBacklog{})
	var ds []store.WebhookDelivery
	for range 3 {
		ev := f.webhookEventValue(org.ID, "apikey.created")
		f.enqueue(ev, 1)
		ds = append(ds, f.deliveryTo(ev.ID, e.ID))
	}
	first := ds[0].NextAttemptAt
	wantEqual(t, "backlog of 3 new deliveries", must(s.WebhookBacklog(ctx, e.ID))(t),
		store.WebhookBacklog{Pending: 3, NextAttemptAt: first})
	// One succeeds, one is retried in an hour: the third is due first.
	ok := store.WebhookAttempt{DeliveryID: ds[0].ID, N: 1, At: f.now(), StatusCode: 200, Succeeded: true}
	mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, ok, time.Time{}, nil)))
	later := f.now().Add(time.Hour)
	mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: ds[1].ID, N: 1, At: f.now(), Error: "x"}, later, nil)))
	wantEqual(t, "backlog after a success and a retry", must(s.WebhookBacklog(ctx, e.ID))(t),
		store.WebhookBacklog{Pending: 2, NextAttemptAt: ds[2].NextAttemptAt})
	wantEqual(t, "backlog of another endpoint", must(s.WebhookBacklog(ctx, other.ID))(t), store.WebhookBacklog{})
}

// must2 is must for calls returning two values.
func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		mustDo(t, err)
		return a, b
	}
}

// testDeleteWebhookEndpoint: deleting an endpoint fails its pending
// deliveries and keeps the delivery log; it is audited.
func testDeleteWebhookEndpoint(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	kept := f.createEndpoint(org.ID, []string{"*"})
	done := f.webhookEventValue(org.ID, "apikey.created")
	f.enqueue(done, 2)
	succeeded := f.deliveryTo(done.ID, e.ID)
	attempt := store.WebhookAttempt{DeliveryID: succeeded.ID, N: 1, At: f.now(), StatusCode: 200, Succeeded: true}
	succeeded, _ = must2(s.RecordWebhookAttempt(ctx, attempt, time.Time{}, nil))(t)
	ev := f.webhookEventValue(org.ID, "apikey.revoked")
	f.enqueue(ev, 2)
	pending := f.deliveryTo(ev.ID, e.ID)
	otherPending := f.deliveryTo(ev.ID, kept.ID)

	at := f.now()
	before := f.allAudit()
	mustDo(t, s.DeleteWebhookEndpoint(ctx, e.ID, at, auditValue("webhook.delete")))
	f.wantNewAudit("DeleteWebhookEndpoint", before, auditValue("webhook.delete"))
	wantErr(t, "GetWebhookEndpoint after delete", second(s.GetWebhookEndpoint(ctx, e.ID)), store.ErrNotFound)
	wantEqual(t, "ListWebhookEndpoints after delete", must(s.ListWebhookEndpoints(ctx, org.ID))(t), []store.WebhookEndpoint{kept})

	pending.Status, pending.LastError, pending.FinishedAt, pending.NextAttemptAt = store.WebhookFailed, "endpoint deleted", normalize(at), time.Time{}
	want := []store.WebhookDelivery{pending, succeeded}
	slices.SortFunc(want, deliveryOrder)
	wantEqual(t, "the deleted endpoint's delivery log", must(s.ListWebhookDeliveries(ctx,
		store.WebhookDeliveryFilter{EndpointID: e.ID}))(t), want)
	wantEqual(t, "another endpoint's delivery", must(s.GetWebhookDelivery(ctx, otherPending.ID))(t), otherPending)
	wantEqual(t, "attempts kept", must(s.ListWebhookAttempts(ctx, succeeded.ID))(t), []store.WebhookAttempt{normalize(attempt)})
	wantEqual(t, "claim after delete", slices.Sorted(slices.Values(f.claim(at.Add(time.Hour), 10))),
		slices.Sorted(slices.Values([]string{f.deliveryTo(done.ID, kept.ID).ID, otherPending.ID})))

	_, _, err := s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: pending.ID, N: 1, At: f.now()}, f.now(), nil)
	wantErr(t, "attempt of a delivery to a deleted endpoint", err, store.ErrConflict)

	// Events for the organization no longer go to it.
	f.enqueue(f.webhookEventValue(org.ID, "apikey.created"), 1)

	before = f.allAudit()
	wantErr(t, "DeleteWebhookEndpoint again", s.DeleteWebhookEndpoint(ctx, e.ID, f.now(), auditValue("webhook.delete")), store.ErrNotFound)
	f.wantNewAudit("DeleteWebhookEndpoint again", before)
}

// testRedeliverWebhook: a finished delivery can be sent again, as a new
// delivery of the same event to the same endpoint; the original stays.
func testRedeliverWebhook(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	e := f.createEndpoint(org.ID, []string{"*"})
	gone := f.createEndpoint(org.ID, []string{"*"})
	ev := f.webhookEventValue(org.ID, "apikey.created")
	f.enqueue(ev, 2)
	orig, _ := must2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: f.deliveryTo(ev.ID, e.ID).ID, N: 1,
		At: f.now(), StatusCode: 200, Succeeded: true}, time.Time{}, nil))(t)
	toGone := f.deliveryTo(ev.ID, gone.ID)

	at := f.now()
	before := f.allAudit()
	d := must(s.RedeliverWebhook(ctx, orig.ID, at, auditValue("webhook.redeliver")))(t)
	want := newDelivery(d.ID, ev, e.ID)
	want.NextAttemptAt, want.CreatedAt, want.RedeliveryOf = normalize(at), normalize(at), orig.ID
	wantEqual(t, "redelivery", d, want)
	if d.ID == orig.ID || !ids.Valid(ids.WebhookDelivery, d.ID) {
		t.Errorf("redelivery ID %q, want a new delivery identifier", d.ID)
	}
	wantEqual(t, "GetWebhookDelivery of the redelivery", must(s.GetWebhookDelivery(ctx, d.ID))(t), want)
	wantEqual(t, "the original", must(s.GetWebhookDelivery(ctx, orig.ID))(t), orig)
	a := auditValue("webhook.redeliver")
	a.TargetID = d.ID
	f.wantNewAudit("RedeliverWebhook", before, a)
	wantEqual(t, "claim of the redelivery", f.claim(at, 10), []string{toGone.ID, d.ID})

	// A pending delivery is not redelivered.
	before = f.allAudit()
	_, err := s.RedeliverWebhook(ctx, d.ID, f.now(), auditValue("webhook.redeliver"))
	wantErr(t, "redelivery of a pending delivery", err, store.ErrConflict)
	_, err = s.RedeliverWebhook(ctx, "dlv_missing", f.now(), auditValue("webhook.redeliver"))
	wantErr(t, "redelivery of an unknown delivery", err, store.ErrNotFound)
	f.wantNewAudit("failed redeliveries", before)

	// A delivery given up is redelivered; one whose endpoint was deleted is
	// not.
	failed, _ := must2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: f.now(), StatusCode: 500,
		Error: "500 Internal Server Error"}, time.Time{}, nil))(t)
	again := must(s.RedeliverWebhook(ctx, failed.ID, f.now(), auditValue("webhook.redeliver")))(t)
	if again.RedeliveryOf != failed.ID || again.Status != store.WebhookPending || again.Attempts != 0 {
		t.Errorf("redelivery of a failed delivery: %+v", again)
	}
	mustDo(t, s.DeleteWebhookEndpoint(ctx, gone.ID, f.now(), auditValue("webhook.delete")))
	before = f.allAudit()
	_, err = s.RedeliverWebhook(ctx, toGone.ID, f.now(), auditValue("webhook.redeliver"))
	wantErr(t, "redelivery to a deleted endpoint", err, store.ErrNotFound)
	f.wantNewAudit("redelivery to a deleted endpoint", before)
}

// testListWebhookDeliveries: the delivery log, newest first, filtered, and
// paged with the Before cursor.
func testListWebhookDeliveries(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	e1 := f.createEndpoint(org.ID, []string{"*"})
	e2 := f.createEndpoint(org.ID, []string{"apikey.created"})
	o1 := f.createEndpoint(other.ID, []string{"*"})

	var evs []store.WebhookEvent
	for i := range 4 {
		ev := f.webhookEventValue(org.ID, "apikey.created")
		if i == 2 {
			ev.OrgID = other.ID
		}
		evs = append(evs, ev)
		want := 2 // e1 and e2
		if i == 2 {
			want = 1 // o1
		}
		f.enqueue(ev, want)
	}
	// One succeeded, one failed.
	ok := f.deliveryTo(evs[0].ID, e1.ID)
	mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: ok.ID, N: 1, At: f.now(), StatusCode: 200, Succeeded: true}, time.Time{}, nil)))
	bad := f.deliveryTo(evs[1].ID, e2.ID)
	mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: bad.ID, N: 1, At: f.now(), StatusCode: 410}, time.Time{}, nil)))

	all := must(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{}))(t)
	if len(all) != 7 {
		t.Fatalf("ListWebhookDeliveries: %d deliveries, want 7", len(all))
	}
	if !slices.IsSortedFunc(all, deliveryOrder) {
		t.Errorf("ListWebhookDeliveries not newest first, then by ID descending: %v", deliveryIDs(all))
	}
	where := func(keep func(store.WebhookDelivery) bool) []store.WebhookDelivery {
		out := []store.WebhookDelivery{}
		for _, d := range all {
			if keep(d) {
				out = append(out, d)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		filter store.WebhookDeliveryFilter
		want   []store.WebhookDelivery
	}{
		{"org", store.WebhookDeliveryFilter{OrgID: org.ID}, where(func(d store.WebhookDelivery) bool { return d.OrgID == org.ID })},
		{"other org", store.WebhookDeliveryFilter{OrgID: other.ID}, where(func(d store.WebhookDelivery) bool { return d.EndpointID == o1.ID })},
		{"endpoint", store.WebhookDeliveryFilter{EndpointID: e2.ID}, where(func(d store.WebhookDelivery) bool { return d.EndpointID == e2.ID })},
		{"event", store.WebhookDeliveryFilter{EventID: evs[3].ID}, where(func(d store.WebhookDelivery) bool { return d.EventID == evs[3].ID })},
		{"pending", store.WebhookDeliveryFilter{Status: store.WebhookPending}, where(func(d store.WebhookDelivery) bool { return d.ID != ok.ID && d.ID != bad.ID })},
		{"succeeded", store.WebhookDeliveryFilter{Status: store.WebhookSucceeded}, where(func(d store.WebhookDelivery) bool { return d.ID == ok.ID })},
		{"failed", store.WebhookDeliveryFilter{Status: store.WebhookFailed}, where(func(d store.WebhookDelivery) bool { return d.ID == bad.ID })},
		{"org and endpoint of another", store.WebhookDeliveryFilter{OrgID: other.ID, EndpointID: e1.ID}, []store.WebhookDelivery{}},
		{"limit", store.WebhookDeliveryFilter{Limit: 3}, all[:3]},
		{"before", store.WebhookDeliveryFilter{Before: all[2].ID}, all[3:]},
		{"before, limit", store.WebhookDeliveryFilter{Before: all[0].ID, Limit: 2}, all[1:3]},
		{"before the last", store.WebhookDeliveryFilter{Before: all[6].ID}, []store.WebhookDelivery{}},
		{"org, before", store.WebhookDeliveryFilter{OrgID: org.ID, Before: all[0].ID},
			where(func(d store.WebhookDelivery) bool { return d.OrgID == org.ID && d.ID != all[0].ID })},
		{"unknown org", store.WebhookDeliveryFilter{OrgID: "org_missing"}, []store.WebhookDelivery{}},
	}
	for _, tt := range tests {
		wantEqual(t, "ListWebhookDeliveries "+tt.name, must(s.ListWebhookDeliveries(ctx, tt.filter))(t), tt.want)
	}

	// Paging through with a small limit lists everything, once.
	var paged []store.WebhookDelivery
	cursor := ""
	for range len(all) + 1 {
		page := must(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{Before: cursor, Limit: 2}))(t)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		cursor = page[len(page)-1].ID
	}
	wantEqual(t, "paged", paged, all)

	_, err := s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{Before: "dlv_missing"})
	wantErr(t, "an unknown cursor", err, store.ErrNotFound)
}

// testListWebhookDeliveriesLimit: 100 deliveries by default, 1000 at most.
func testListWebhookDeliveriesLimit(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const (
		defaultLimit = 100
		maxLimit     = 1000
	)
	endpoints, events := 11, 10 // 110 deliveries
	if !testing.Short() {
		endpoints, events = 32, 32 // 1024
	}
	org, _ := f.createOrg()
	for range endpoints {
		f.createEndpoint(org.ID, []string{"*"})
	}
	for range events {
		f.enqueue(f.webhookEventValue(org.ID, "order.paid"), endpoints)
	}
	got := must(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{}))(t)
	if len(got) != defaultLimit {
		t.Errorf("ListWebhookDeliveries with no limit: %d deliveries, want %d", len(got), defaultLimit)
	}
	if endpoints*events > maxLimit {
		got = must(s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{Limit: maxLimit * 5}))(t)
		if len(got) != maxLimit {
			t.Errorf("ListWebhookDeliveries with limit %d: %d deliveries, want %d", maxLimit*5, len(got), maxLimit)
		}
	}
}

// testPurgeWebhookDeliveries: the purge forgets the deliveries finished
// before its time, with their attempts, and then the events older than it
// left without deliveries; pending deliveries and their events stay.
func testPurgeWebhookDeliveries(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	quiet, _ := f.createOrg() // no endpoint takes its events
	e1 := f.createEndpoint(org.ID, []string{"*"})
	e2 := f.createEndpoint(org.ID, []string{"*"})
	succeed := func(d store.WebhookDelivery) {
		t.Helper()
		mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: f.now(),
			StatusCode: 200, Succeeded: true}, time.Time{}, nil)))
	}

	// old: both deliveries finish (one succeeds, one is given up) before
	// the horizon.
	old := f.webhookEventValue(org.ID, "a")
	f.enqueue(old, 2)
	oldOK, oldFailed := f.deliveryTo(old.ID, e1.ID), f.deliveryTo(old.ID, e2.ID)
	succeed(oldOK)
	mustDo(t, errOf2(s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: oldFailed.ID, N: 1, At: f.now(),
		Error: "connection refused"}, time.Time{}, nil)))
	// mixed: one delivery finishes before the horizon, one is still pending.
	mixed := f.webhookEventValue(org.ID, "b")
	f.enqueue(mixed, 2)
	mixedOK, mixedPending := f.deliveryTo(mixed.ID, e1.ID), f.deliveryTo(mixed.ID, e2.ID)
	succeed(mixedOK)
	// unwanted: an event nobody took, before the horizon.
	unwanted := f.webhookEventValue(quiet.ID, "c")
	f.enqueue(unwanted, 0)
	horizon := f.now()
	// late: finished after the horizon; fresh: nobody took it, after it.
	late := f.webhookEventValue(org.ID, "d")
	f.enqueue(late, 2)
	lateOK := f.deliveryTo(late.ID, e1.ID)
	succeed(lateOK)
	fresh := f.webhookEventValue(quiet.ID, "e")
	f.enqueue(fresh, 0)

	wantEqual(t, "PurgeWebhookDeliveries", must(s.PurgeWebhookDeliveries(ctx, horizon))(t), int64(3))
	for _, d := range []store.WebhookDelivery{oldOK, oldFailed, mixedOK} {
		wantErr(t, "purged delivery", second(s.GetWebhookDelivery(ctx, d.ID)), store.ErrNotFound)
		wantEqual(t, "attempts of a purged delivery", must(s.ListWebhookAttempts(ctx, d.ID))(t), []store.WebhookAttempt{})
	}
	wantEqual(t, "an old pending delivery", must(s.GetWebhookDelivery(ctx, mixedPending.ID))(t), mixedPending)
	mustDo(t, second(s.GetWebhookDelivery(ctx, lateOK.ID)))
	if got := must(s.ListWebhookAttempts(ctx, lateOK.ID))(t); len(got) != 1 {
		t.Errorf("attempts of a kept delivery: %d, want 1", len(got))
	}

	// Events enqueued again: a forgotten one is queued anew, a kept one is
	// a duplicate.
	f.createEndpoint(quiet.ID, []string{"*"})
	f.enqueue(old, 2)
	f.enqueue(mixed, 0)
	f.enqueue(late, 0)
	f.enqueue(fresh, 0)
	f.enqueue(unwanted, 1)

	wantEqual(t, "purge again", must(s.PurgeWebhookDeliveries(ctx, horizon))(t), int64(0))
	wantEqual(t, "purge at the zero time", must(s.PurgeWebhookDeliveries(ctx, time.Time{}))(t), int64(0))
}

// errOf2 returns the error of a call's three results.
func errOf2[A, B any](_ A, _ B, err error) error { return err }
