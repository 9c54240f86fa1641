package postgres

import (
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore/sqlstoretest"
)

// TestWebhookDeliverySurvivesRestart: a delivery queued before a restart
// arrives after it; one claimed by a process that then stopped before
// recording its attempt is claimed again once its lease ends.
func TestWebhookDeliverySurvivesRestart(t *testing.T) {
	url, schema := newSchema(t)
	sqlstoretest.DeliverySurvivesRestart(t, func() (store.Store, error) {
		return Open(t.Context(), url, WithSchema(schema))
	})
}

// TestWebhookClaimsAcrossStores: two Stores on one schema, as two gateway
// nodes sharing a database, claim every delivery exactly once between them.
func TestWebhookClaimsAcrossStores(t *testing.T) {
	url, schema := newSchema(t)
	sqlstoretest.ClaimsAcrossStores(t, openTest(t, url, schema), openTest(t, url, schema))
}

// TestWebhookDeleteWhileEnqueueing: an endpoint deleted while events are
// being queued for it leaves no delivery pending: each one queued before the
// deletion commits is failed by it, none is queued after.
func TestWebhookDeleteWhileEnqueueing(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	e := sqlstoretest.SeedWebhooks(t, s, 0)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				ev := store.WebhookEvent{ID: ids.New(ids.WebhookEvent), OrgID: e.OrgID, Type: "apikey.created",
					Payload: []byte(`{}`), CreatedAt: sqlstoretest.TestTime}
				if _, err := s.EnqueueWebhookEvent(ctx, ev); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond)
		if err := s.DeleteWebhookEndpoint(ctx, e.ID, sqlstoretest.TestTime, store.AuditEntry{ActorType: store.ActorCLI, Action: "webhook.delete"}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	pending, err := s.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: e.ID, Status: store.WebhookPending})
	if err != nil || len(pending) != 0 {
		t.Errorf("%d deliveries to the deleted endpoint still pending (%v), want none", len(pending), err)
	}
}

// TestWebhookHealthMigration: see sqlstoretest.WebhookHealthMigration.
func TestWebhookHealthMigration(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	sqlstoretest.WebhookHealthMigration(t, s, func(statements []string) {
		db := stdlib.OpenDBFromPool(s.pool)
		defer db.Close()
		p, err := newMigrationProvider(db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 9); err != nil {
			t.Fatalf("down to 9: %v", err)
		}
		for _, q := range statements {
			if _, err := s.pool.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := migrate(ctx, s.pool, schema); err != nil {
			t.Fatalf("up again: %v", err)
		}
	})
}
