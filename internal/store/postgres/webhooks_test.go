package postgres

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// seedWebhooks creates an organization with an endpoint taking every event
// type, and enqueues n events at testTime; it returns the endpoint.
func seedWebhooks(t *testing.T, s *Store, n int) store.WebhookEndpoint {
	t.Helper()
	ctx := t.Context()
	org, _, _ := seed(t, s)
	e := store.WebhookEndpoint{ID: ids.New(ids.WebhookEndpoint), OrgID: org.ID, URL: "https://hooks.example.com/",
		EventTypes: []string{"*"}, Secret: []byte("sealed"), CreatedAt: testTime}
	if err := s.CreateWebhookEndpoint(ctx, e, store.AuditEntry{ActorType: store.ActorCLI, Action: "webhook.create"}); err != nil {
		t.Fatal(err)
	}
	for range n {
		ev := store.WebhookEvent{ID: ids.New(ids.WebhookEvent), OrgID: org.ID, Type: "apikey.created",
			Payload: []byte(`{"type":"apikey.created"}`), CreatedAt: testTime}
		if got, err := s.EnqueueWebhookEvent(ctx, ev); err != nil || got != 1 {
			t.Fatalf("EnqueueWebhookEvent: %d deliveries, %v; want 1", got, err)
		}
	}
	return e
}

// TestWebhookDeliverySurvivesRestart: a delivery queued before a restart
// arrives after it; one claimed by a process that then stopped before
// recording its attempt is claimed again once its lease ends.
func TestWebhookDeliverySurvivesRestart(t *testing.T) {
	url, schema := newSchema(t)
	ctx := t.Context()
	s, err := Open(ctx, url, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	e := seedWebhooks(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, url, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	now := testTime.Add(time.Second)
	claimed, err := s.ClaimWebhookDeliveries(ctx, now, time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim after a restart: %d deliveries, %v; want 1", len(claimed), err)
	}
	d := claimed[0]
	if d.EndpointID != e.ID || d.Status != store.WebhookPending || string(d.Payload) != `{"type":"apikey.created"}` {
		t.Errorf("delivery after a restart: %+v", d)
	}
	// The process stops before it records the attempt.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, url, schema)
	if got, err := s.ClaimWebhookDeliveries(ctx, now.Add(time.Minute-time.Microsecond), time.Minute, 10); err != nil || len(got) != 0 {
		t.Errorf("claim during the lease after a restart: %d deliveries, %v; want none", len(got), err)
	}
	again, err := s.ClaimWebhookDeliveries(ctx, now.Add(time.Minute), time.Minute, 10)
	if err != nil || len(again) != 1 || again[0].ID != d.ID {
		t.Fatalf("claim after the lease: %+v, %v; want delivery %s again", again, err, d.ID)
	}
	got, _, err := s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: now.Add(time.Minute),
		StatusCode: 200, Succeeded: true}, time.Time{})
	if err != nil || got.Status != store.WebhookSucceeded || got.EventID != d.EventID {
		t.Errorf("attempt after the restart: %+v, %v", got, err)
	}
}

// TestWebhookClaimsAcrossStores: two Stores on one schema, as two gateway
// nodes sharing a database, claim every delivery exactly once between them.
func TestWebhookClaimsAcrossStores(t *testing.T) {
	url, schema := newSchema(t)
	a := openTest(t, url, schema)
	b := openTest(t, url, schema)
	const deliveries, goroutines = 60, 4
	seedWebhooks(t, a, deliveries)
	now := testTime.Add(time.Second)

	var mu sync.Mutex
	var claimed []string
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		for range goroutines {
			wg.Go(func() {
				for {
					ds, err := s.ClaimWebhookDeliveries(t.Context(), now, time.Minute, 2)
					if err != nil {
						t.Error(err)
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						claimed = append(claimed, d.ID)
					}
					n := len(claimed)
					mu.Unlock()
					if n > deliveries {
						t.Errorf("%d claims of %d deliveries: leased deliveries claimed again", n, deliveries)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(claimed)
	if len(claimed) != deliveries || len(slices.Compact(claimed)) != deliveries {
		t.Errorf("%d claims of %d deliveries (%d distinct), want each claimed once", len(claimed), deliveries, len(slices.Compact(claimed)))
	}
}

// TestWebhookDeleteWhileEnqueueing: an endpoint deleted while events are
// being queued for it leaves no delivery pending: each one queued before the
// deletion commits is failed by it, none is queued after.
func TestWebhookDeleteWhileEnqueueing(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	e := seedWebhooks(t, s, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				ev := store.WebhookEvent{ID: ids.New(ids.WebhookEvent), OrgID: e.OrgID, Type: "apikey.created",
					Payload: []byte(`{}`), CreatedAt: testTime}
				if _, err := s.EnqueueWebhookEvent(ctx, ev); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond)
		if err := s.DeleteWebhookEndpoint(ctx, e.ID, testTime, store.AuditEntry{ActorType: store.ActorCLI, Action: "webhook.delete"}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	pending, err := s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: e.ID, Status: store.WebhookPending})
	if err != nil || len(pending) != 0 {
		t.Errorf("%d deliveries to the deleted endpoint still pending (%v), want none", len(pending), err)
	}
}
