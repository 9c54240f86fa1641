package sqlstoretest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// SeedWebhooks creates an organization with an endpoint taking every event
// type, and enqueues n events at TestTime; it returns the endpoint.
func SeedWebhooks(t *testing.T, s store.Store, n int) store.WebhookEndpoint {
	t.Helper()
	ctx := t.Context()
	org, _, _ := Seed(t, s)
	e := store.WebhookEndpoint{ID: ids.New(ids.WebhookEndpoint), OrgID: org.ID, URL: "https://hooks.example.com/",
		EventTypes: []string{"*"}, Secret: []byte("sealed"), CreatedAt: TestTime}
	if err := s.CreateWebhookEndpoint(ctx, e, store.AuditEntry{ActorType: store.ActorCLI, Action: "webhook.create"}); err != nil {
		t.Fatal(err)
	}
	for range n {
		ev := store.WebhookEvent{ID: ids.New(ids.WebhookEvent), OrgID: org.ID, Type: "apikey.created",
			Payload: []byte(`{"type":"apikey.created"}`), CreatedAt: TestTime}
		if got, err := s.EnqueueWebhookEvent(ctx, ev); err != nil || got != 1 {
			t.Fatalf("EnqueueWebhookEvent: %d deliveries, %v; want 1", got, err)
		}
	}
	return e
}

// DeliverySurvivesRestart checks that a delivery queued before a restart
// arrives after it, and that one claimed by a process that then stopped
// before recording its attempt is claimed again once its lease ends. open
// opens a store on the database under test, the same each time; each store
// is closed before the next one opens, the last when the test ends.
func DeliverySurvivesRestart(t *testing.T, open func() (store.Store, error)) {
	t.Helper()
	ctx := t.Context()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	e := SeedWebhooks(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = open()
	if err != nil {
		t.Fatal(err)
	}
	now := TestTime.Add(time.Second)
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

	s, err = open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if got, err := s.ClaimWebhookDeliveries(ctx, now.Add(time.Minute-time.Microsecond), time.Minute, 10); err != nil || len(got) != 0 {
		t.Errorf("claim during the lease after a restart: %d deliveries, %v; want none", len(got), err)
	}
	again, err := s.ClaimWebhookDeliveries(ctx, now.Add(time.Minute), time.Minute, 10)
	if err != nil || len(again) != 1 || again[0].ID != d.ID {
		t.Fatalf("claim after the lease: %+v, %v; want delivery %s again", again, err, d.ID)
	}
	got, _, err := s.RecordWebhookAttempt(ctx, store.WebhookAttempt{DeliveryID: d.ID, N: 1, At: now.Add(time.Minute),
		StatusCode: 200, Succeeded: true}, time.Time{}, nil)
	if err != nil || got.Status != store.WebhookSucceeded || got.EventID != d.EventID {
		t.Errorf("attempt after the restart: %+v, %v", got, err)
	}
}

// ClaimsAcrossStores checks that two stores on one database, as two gateway
// nodes sharing it, claim every delivery exactly once between them, from
// several goroutines each.
func ClaimsAcrossStores(t *testing.T, a, b store.Store) {
	t.Helper()
	const deliveries, goroutines = 60, 4
	SeedWebhooks(t, a, deliveries)
	now := TestTime.Add(time.Second)

	var mu sync.Mutex
	var claimed []string
	var wg sync.WaitGroup
	for _, s := range []store.Store{a, b} {
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

// WebhookHealthMigration checks that migration 10 fills the endpoints'
// health from the delivery log. It records attempts of an endpoint's
// deliveries (a failure, a success, then two failures) without touching its
// health, then calls downUp with statements that set the failure counts as
// version 9 kept them: downUp must migrate down to version 9, run them, and
// migrate up again. The endpoint then reads as failing since its first
// failure after the success; one whose failures the log no longer holds
// reads as healthy.
func WebhookHealthMigration(t *testing.T, s store.Store, downUp func(statements []string)) {
	t.Helper()
	ctx := t.Context()
	e := SeedWebhooks(t, s, 4)
	ds, err := s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: e.ID})
	if err != nil || len(ds) != 4 {
		t.Fatalf("ListWebhookDeliveries: %d, %v", len(ds), err)
	}
	at := func(m int) time.Time { return TestTime.Add(time.Duration(m) * time.Minute) }
	for i, a := range []store.WebhookAttempt{
		{DeliveryID: ds[0].ID, N: 1, At: at(1), StatusCode: 500, Error: "HTTP 500"},
		{DeliveryID: ds[1].ID, N: 1, At: at(2), StatusCode: 200, Succeeded: true},
		{DeliveryID: ds[2].ID, N: 1, At: at(3), Error: "no answer within 15s"},
		{DeliveryID: ds[3].ID, N: 1, At: at(4), StatusCode: 502, Error: "HTTP 502: bad gateway"},
	} {
		if _, _, err := s.RecordWebhookAttempt(ctx, a, at(60), nil); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	forgotten := store.WebhookEndpoint{ID: ids.New(ids.WebhookEndpoint), OrgID: e.OrgID, URL: "https://old.example.com/",
		EventTypes: []string{"*"}, Secret: []byte("sealed"), CreatedAt: TestTime}
	if err := s.CreateWebhookEndpoint(ctx, forgotten, store.AuditEntry{ActorType: store.ActorCLI, Action: "webhook.create"}); err != nil {
		t.Fatal(err)
	}
	downUp([]string{
		"UPDATE webhook_endpoints SET consecutive_failures = 2 WHERE id = '" + e.ID + "'",
		"UPDATE webhook_endpoints SET consecutive_failures = 9 WHERE id = '" + forgotten.ID + "'",
	})

	got, err := s.GetWebhookEndpoint(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := store.WebhookHealth{ConsecutiveFailures: 2, FailingSince: at(3), LastSuccessAt: at(2), LastFailureAt: at(4),
		LastFailureStatus: 502, LastFailureError: "HTTP 502: bad gateway"}
	if got.Health != want {
		t.Errorf("health after the migration:\n got %+v\nwant %+v", got.Health, want)
	}
	got, err = s.GetWebhookEndpoint(ctx, forgotten.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Health != (store.WebhookHealth{}) {
		t.Errorf("health of an endpoint without attempts in the log: %+v, want healthy", got.Health)
	}
}
