package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore/sqlstoretest"
	"github.com/tollgate/tollgate/internal/store/storetest"
	"github.com/tollgate/tollgate/internal/testsvc"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Store {
		url, schema := newSchema(t)
		return openTest(t, url, schema)
	})
}

// newSchema returns the test server's URL and a fresh schema name, which is
// dropped, with everything in it, when the test ends (after the stores the
// test opens on it are closed: cleanups run last registered first).
func newSchema(t testing.TB) (url, schema string) {
	t.Helper()
	url = testsvc.PostgresURL(t)
	schema = testsvc.Name("tg_test_")
	t.Cleanup(func() { dropSchema(t, url, schema) })
	return url, schema
}

// dropSchema drops a schema through a connection of its own.
func dropSchema(t testing.TB, url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

// openTest opens a store on schema and closes it when the test ends.
func openTest(t testing.TB, url, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, append([]Option{WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(schema %s): %v", schema, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestMigrationsInStep: the two backends have the same migrations, by file
// name (version and name), so that a schema change is never made to one
// only.
func TestMigrationsInStep(t *testing.T) {
	names := func(dir string) []string {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, e.Name())
			}
		}
		if len(out) == 0 {
			t.Fatalf("no migrations in %s", dir)
		}
		return out
	}
	pg, lite := names("migrations"), names(filepath.Join("..", "sqlite", "migrations"))
	for _, n := range pg {
		if !slices.Contains(lite, n) {
			t.Errorf("migration %s is in postgres/migrations only; add its SQLite twin", n)
		}
	}
	for _, n := range lite {
		if !slices.Contains(pg, n) {
			t.Errorf("migration %s is in sqlite/migrations only; add its PostgreSQL twin", n)
		}
	}
	// The embedded files are the ones on disk.
	embedded, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(embedded) != len(pg) {
		t.Errorf("%d embedded migrations, %d on disk", len(embedded), len(pg))
	}
}

func TestReopenKeepsData(t *testing.T) {
	url, schema := newSchema(t)
	s, err := Open(t.Context(), url, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	org, owner, key := sqlstoretest.Seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	sqlstoretest.CheckSeeded(t, openTest(t, url, schema), org, owner, key)
}

// TestTwoStoresOnOneSchema: two Stores on one schema, as two nodes sharing a
// database, see each other's writes at once and lose none of their
// concurrent updates of one row.
func TestTwoStoresOnOneSchema(t *testing.T) {
	url, schema := newSchema(t)
	sqlstoretest.TwoStores(t, openTest(t, url, schema), openTest(t, url, schema))
}

func TestMigrationsIdempotent(t *testing.T) {
	url, schema := newSchema(t)
	for range 3 {
		s, err := Open(t.Context(), url, WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		sqlstoretest.Seed(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openTest(t, url, schema)
	orgs, err := s.ListOrganizations(t.Context())
	if err != nil || len(orgs) != 3 {
		t.Errorf("ListOrganizations after three opens: %d, %v; want 3", len(orgs), err)
	}
}

// TestMigrationsDownUp: every migration can be rolled back and applied again.
func TestMigrationsDownUp(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := newMigrationProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var tables int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename NOT LIKE 'goose%'`,
		schema).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("%d tables left after migrating down (%v), want 0", tables, err)
	}
	if err := migrate(ctx, s.pool, schema); err != nil {
		t.Fatalf("up again: %v", err)
	}
	sqlstoretest.Seed(t, s)
}

// TestConcurrentOpen opens a fresh schema from several Stores at once, as
// nodes starting together might: the migration lock lets one create the
// schema and migrate while the others wait, and every one opens.
func TestConcurrentOpen(t *testing.T) {
	url, schema := newSchema(t)
	const n = 3
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), url, WithSchema(schema))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		sqlstoretest.Seed(t, stores[i])
		if err := stores[i].Close(); err != nil {
			t.Errorf("Close %d: %v", i, err)
		}
	}
	s := openTest(t, url, schema)
	var versions int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if want := len(must(migrationFiles.ReadDir("migrations"))(t)); versions != want {
		t.Errorf("%d migrations recorded after concurrent opens, want %d (each once)", versions, want)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// childEnv, when set in a process running this test binary, names the URL and
// schema that TestChildProcess writes to, as a URL with a "schema" parameter.
const childEnv = "TOLLGATE_POSTGRES_TEST_CHILD"

// TestMultiProcess runs several processes (this test binary, re-executed)
// that open the same fresh schema at once and write to it concurrently, as
// the nodes of a cluster do.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL, schema := newSchema(t)
	target := url.Values{"url": {dbURL}, "schema": {schema}}.Encode()
	const procs = 3
	sqlstoretest.RunChildren(t, procs, childEnv+"="+target)
	sqlstoretest.CheckChildWork(t, openTest(t, dbURL, schema), procs)
}

// TestChildProcess is the body of TestMultiProcess's child processes; it
// does nothing in a normal test run.
func TestChildProcess(t *testing.T) {
	env := os.Getenv(childEnv)
	if env == "" {
		t.Skip("only run by TestMultiProcess")
	}
	target, err := url.ParseQuery(env)
	if err != nil {
		t.Fatal(err)
	}
	sqlstoretest.ChildWork(t, openTest(t, target.Get("url"), target.Get("schema")))
}

// TestSchemaNameQuoted: a schema name is an identifier, quoted as such,
// whatever characters it holds.
func TestSchemaNameQuoted(t *testing.T) {
	dbURL, schema := newSchema(t)
	odd := schema + `_Odd "name"; DROP`
	t.Cleanup(func() { dropSchema(t, dbURL, odd) })
	s := openTest(t, dbURL, odd)
	sqlstoretest.Seed(t, s)
	var found string
	if err := s.pool.QueryRow(t.Context(), `SELECT table_schema FROM information_schema.tables WHERE table_name = 'organizations'
		AND table_schema = current_schema()`).Scan(&found); err != nil || found != odd {
		t.Errorf("tables in schema %q (%v), want %q", found, err, odd)
	}
}

// TestSearchPathFromURL: without WithSchema, the store uses the schema of the
// URL's search_path (which must exist), and migrates it under the lock.
func TestSearchPathFromURL(t *testing.T) {
	dbURL, schema := newSchema(t)
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s, err := Open(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sqlstoretest.Seed(t, s)
	var tables int
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'organizations'`,
		schema).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("organizations tables in %s: %d (%v), want 1", schema, tables, err)
	}
}

// TestSmallPool: a pool of one connection (pool_max_conns=1) migrates and
// serves concurrent callers, each transaction on the one connection in
// turn.
func TestSmallPool(t *testing.T) {
	dbURL, schema := newSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	s := openTest(t, u.String(), schema)
	if got := s.pool.Config().MaxConns; got != 1 {
		t.Fatalf("pool of %d connections, want 1", got)
	}
	_, _, key := sqlstoretest.Seed(t, s)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := s.UpdateAPIKey(t.Context(), key.ID, func(k store.APIKey) (store.APIKey, error) {
				k.Scopes = append(slices.Clone(k.Scopes), fmt.Sprint(i))
				return k, nil
			}, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.update"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if k, err := s.GetAPIKey(t.Context(), key.ID); err != nil || len(k.Scopes) != 10 {
		t.Errorf("key after 10 updates: %d scopes, %v", len(k.Scopes), err)
	}
}

func TestOpenRefuses(t *testing.T) {
	dbURL := testsvc.PostgresURL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	missingDB := *u
	missingDB.Path = "/" + testsvc.Name("tg_missing_")
	for _, bad := range []string{"", "mysql://localhost/x", "postgres://127.0.0.1:1/test?connect_timeout=2", missingDB.String()} {
		if s, err := Open(ctx, bad, WithSchema(testsvc.Name("tg_test_"))); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", bad)
		}
	}
	long := testsvc.Name("tg_test_") + strings.Repeat("x", 64)
	if s, err := Open(ctx, dbURL, WithSchema(long)); err == nil {
		s.Close()
		dropSchema(t, dbURL, long[:63])
		t.Errorf("Open with a schema name of %d bytes succeeded, want an error", len(long))
	}
}

// TestClockDefaults: times the store fills in come from its clock.
func TestClockDefaults(t *testing.T) {
	now := time.Date(2030, time.January, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	dbURL, schema := newSchema(t)
	sqlstoretest.ClockDefaults(t, openTest(t, dbURL, schema, WithClock(clock.NewFake(now))), now)
}

// TestErrorsWrapped: sentinels come wrapped with context.
func TestErrorsWrapped(t *testing.T) {
	dbURL, schema := newSchema(t)
	sqlstoretest.ErrorsWrapped(t, openTest(t, dbURL, schema))
}

// TestRetry: a transaction that fails with a deadlock is run again; other
// errors, and a deadlock that lasts, are returned.
func TestRetry(t *testing.T) {
	s := &Store{clock: clock.System{}}
	deadlock := fmt.Errorf("postgres: x: %w", &pgconn.PgError{Code: sqlstateDeadlockDetected})
	runs := 0
	err := s.retry(t.Context(), func() error {
		runs++
		if runs < 3 {
			return deadlock
		}
		return nil
	})
	if err != nil || runs != 3 {
		t.Errorf("retry of two deadlocks: %d runs, %v; want 3, nil", runs, err)
	}
	runs = 0
	if err := s.retry(t.Context(), func() error { runs++; return deadlock }); !errors.Is(err, deadlock) || runs != txAttempts {
		t.Errorf("retry of a lasting deadlock: %d runs, %v; want %d and the deadlock", runs, err, txAttempts)
	}
	runs = 0
	boom := errors.New("boom")
	if err := s.retry(t.Context(), func() error { runs++; return boom }); !errors.Is(err, boom) || runs != 1 {
		t.Errorf("retry of another error: %d runs, %v; want 1", runs, err)
	}
}
