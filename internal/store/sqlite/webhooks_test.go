package sqlite

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore/sqlstoretest"
)

// TestWebhookDeliverySurvivesRestart: a delivery queued before a restart
// arrives after it; one claimed by a process that then stopped before
// recording its attempt is claimed again once its lease ends.
func TestWebhookDeliverySurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	sqlstoretest.DeliverySurvivesRestart(t, func() (store.Store, error) { return Open(t.Context(), path) })
}

// TestWebhookClaimsAcrossStores: two Stores on one file, as two gateway
// nodes sharing a database, claim every delivery exactly once between them.
func TestWebhookClaimsAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	sqlstoretest.ClaimsAcrossStores(t, openTest(t, path), openTest(t, path))
}

// TestWebhookClaimPlan: a claim reads the due deliveries in order from
// webhook_deliveries_due, without sorting the backlog.
func TestWebhookClaimPlan(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	rows, err := s.reader.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+deliveriesDue, string(store.WebhookPending), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "USING INDEX webhook_deliveries_due") || strings.Contains(text, "TEMP B-TREE") {
		t.Errorf("claim query plan:\n%s\nwant a search of webhook_deliveries_due and no sort", text)
	}
}

// TestWebhookHealthMigration: see sqlstoretest.WebhookHealthMigration.
func TestWebhookHealthMigration(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	ctx := t.Context()
	sqlstoretest.WebhookHealthMigration(t, s, func(statements []string) {
		fsys, err := fs.Sub(migrationFiles, "migrations")
		if err != nil {
			t.Fatal(err)
		}
		p, err := goose.NewProvider(goose.DialectSQLite3, s.writer, fsys,
			goose.WithDisableGlobalRegistry(true), goose.WithLogger(goose.NopLogger()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 9); err != nil {
			t.Fatalf("down to 9: %v", err)
		}
		for _, q := range statements {
			if _, err := s.writer.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if err := migrate(ctx, s.writer); err != nil {
			t.Fatalf("up again: %v", err)
		}
	})
}
