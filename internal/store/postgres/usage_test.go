package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore/sqlstoretest"
)

// openBench opens a store on a fresh schema for a benchmark, closed (and
// the schema dropped) when it ends.
func openBench(b *testing.B) store.Store {
	url, schema := newSchema(b)
	return openTest(b, url, schema)
}

// BenchmarkRecordUsage: see sqlstoretest.BenchRecordUsage.
func BenchmarkRecordUsage(b *testing.B) { sqlstoretest.BenchRecordUsage(b, openBench) }

// BenchmarkListRequests: see sqlstoretest.BenchListRequests.
func BenchmarkListRequests(b *testing.B) { sqlstoretest.BenchListRequests(b, openBench(b)) }

// TestRequestLogMigration: migration 5 moves the request log between rows
// (version 4) and chunks in both directions without changing an entry; the
// chunks PostgreSQL's JSON functions build decode like the ones RecordUsage
// writes.
func TestRequestLogMigration(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	sqlstoretest.RequestLogMigration(t, s, func(events []store.UsageEvent) {
		db := stdlib.OpenDBFromPool(s.pool)
		defer db.Close()
		p, err := newMigrationProvider(db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 4); err != nil {
			t.Fatalf("down to 4: %v", err)
		}
		var rows int
		var ws bool
		var path string
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM request_log`).Scan(&rows); err != nil || rows != len(events) {
			t.Fatalf("request_log holds %d rows (%v), want %d", rows, err, len(events))
		}
		if err := s.pool.QueryRow(ctx, `SELECT websocket, path FROM request_log WHERE id = $1`, events[10].ID).Scan(&ws, &path); err != nil || !ws || path != events[10].Path {
			t.Errorf("row of event 10: websocket %v, path %q (%v); want true, %q", ws, path, err, events[10].Path)
		}
		if err := migrate(ctx, s.pool, schema); err != nil {
			t.Fatalf("up again: %v", err)
		}
		var chunks int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM request_chunks`).Scan(&chunks); err != nil || chunks < 3 || chunks > 9 {
			t.Errorf("%d chunks (%v) after migrating 2500 rows of 3 organizations, want 3 to 9", chunks, err)
		}
	})
}
