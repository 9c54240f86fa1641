package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
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
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
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

var testTime = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// seed creates an organization with its owner and one API key.
func seed(t *testing.T, s *Store) (store.Organization, store.User, store.APIKey) {
	t.Helper()
	ctx := t.Context()
	org := store.Organization{ID: ids.New(ids.Organization), Name: "Acme", Slug: "acme-" + ids.New("x")[2:10], CreatedAt: testTime}
	owner := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: ids.New("u") + "@example.com", Role: store.RoleOwner, Status: store.UserActive, CreatedAt: testTime}
	key := store.APIKey{ID: ids.New(ids.APIKey), OrgID: org.ID, Name: "k", Prefix: "tg_", Hash: []byte(ids.New("h")), CreatedAt: testTime}
	if err := s.CreateOrganizationWithOwner(ctx, org, owner, store.AuditEntry{ActorType: store.ActorCLI, Action: "org.create"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIKey(ctx, key, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.create"}); err != nil {
		t.Fatal(err)
	}
	return org, owner, key
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
	org, owner, key := seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, url, schema)
	ctx := t.Context()
	if _, err := s.GetOrganization(ctx, org.ID); err != nil {
		t.Errorf("organization after reopening: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, owner.Email); err != nil {
		t.Errorf("owner after reopening: %v", err)
	}
	if _, err := s.GetAPIKeyByHash(ctx, key.Hash); err != nil {
		t.Errorf("key after reopening: %v", err)
	}
	if entries, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(entries) != 2 {
		t.Errorf("audit after reopening: %d entries, %v; want 2", len(entries), err)
	}
}

// TestTwoStoresOnOneSchema: two Stores on one schema, as two nodes sharing a
// database, see each other's writes at once and lose none of their
// concurrent updates of one row.
func TestTwoStoresOnOneSchema(t *testing.T) {
	url, schema := newSchema(t)
	a := openTest(t, url, schema)
	b := openTest(t, url, schema)
	ctx := t.Context()

	org, _, key := seed(t, a)
	if _, err := b.GetOrganization(ctx, org.ID); err != nil {
		t.Fatalf("second store does not see the first one's organization: %v", err)
	}
	if _, err := b.UpdateAPIKey(ctx, key.ID, func(k store.APIKey) (store.APIKey, error) {
		k.Name = "renamed by b"
		return k, nil
	}, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.update"}); err != nil {
		t.Fatal(err)
	}
	if k, err := a.GetAPIKey(ctx, key.ID); err != nil || k.Name != "renamed by b" {
		t.Fatalf("first store reads %q, %v; want the second one's update", k.Name, err)
	}

	const goroutines, writes = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines*writes)
	for _, s := range []*Store{a, b} {
		for g := range goroutines {
			wg.Go(func() {
				for i := range writes {
					_, err := s.UpdateAPIKey(ctx, key.ID, func(k store.APIKey) (store.APIKey, error) {
						k.Scopes = append(append([]string{}, k.Scopes...), fmt.Sprintf("%p-%d-%d", s, g, i))
						return k, nil
					}, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.update"})
					if err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	k, err := a.GetAPIKey(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Scopes) != 2*goroutines*writes {
		t.Errorf("%d scopes after concurrent updates from two stores, want %d", len(k.Scopes), 2*goroutines*writes)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	url, schema := newSchema(t)
	for range 3 {
		s, err := Open(t.Context(), url, WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		seed(t, s)
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
	seed(t, s)
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
		seed(t, stores[i])
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
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), childEnv+"="+target)
	}
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i])
		}
	}

	s := openTest(t, dbURL, schema)
	orgs, err := s.ListOrganizations(t.Context())
	if err != nil || len(orgs) != procs {
		t.Errorf("ListOrganizations: %d, %v; want %d", len(orgs), err, procs)
	}
	entries, err := s.ListAudit(t.Context(), store.AuditFilter{Limit: 1000})
	if want := procs * (2 + childWrites); err != nil || len(entries) != want {
		t.Errorf("ListAudit: %d entries, %v; want %d", len(entries), err, want)
	}
}

// childWrites is how many audit entries each child process appends.
const childWrites = 20

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
	s := openTest(t, target.Get("url"), target.Get("schema"))
	seed(t, s)
	for i := range childWrites {
		if err := s.AppendAudit(t.Context(), store.AuditEntry{ActorType: store.ActorCLI, Action: fmt.Sprintf("child.%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSchemaNameQuoted: a schema name is an identifier, quoted as such,
// whatever characters it holds.
func TestSchemaNameQuoted(t *testing.T) {
	dbURL, schema := newSchema(t)
	odd := schema + `_Odd "name"; DROP`
	t.Cleanup(func() { dropSchema(t, dbURL, odd) })
	s := openTest(t, dbURL, odd)
	seed(t, s)
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
	seed(t, s)
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
	_, _, key := seed(t, s)
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
	s := openTest(t, dbURL, schema, WithClock(clock.NewFake(now)))
	ctx := t.Context()
	_, _, key := seed(t, s)
	want := now.UTC().Truncate(time.Microsecond)

	entries, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(entries) != 2 {
		t.Fatalf("ListAudit: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if !e.Time.Equal(want) || e.Time.Location() != time.UTC {
			t.Errorf("audit entry %s at %v, want %v", e.Action, e.Time, want)
		}
	}

	// A zero time to revoke at means now.
	app := store.App{ID: ids.New(ids.App), OrgID: key.OrgID, ClientID: "c"}
	if err := s.CreateApp(ctx, app, store.AuditEntry{ActorType: store.ActorCLI, Action: "app.create"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateAPIKey(ctx, key.ID, func(k store.APIKey) (store.APIKey, error) {
		k.AppID = app.ID
		return k, nil
	}, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.update"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteApp(ctx, app.ID, time.Time{}, store.AuditEntry{ActorType: store.ActorCLI, Action: "app.delete"}); err != nil {
		t.Fatal(err)
	}
	if k, err := s.GetAPIKey(ctx, key.ID); err != nil || !k.RevokedAt.Equal(want) {
		t.Errorf("key revoked at %v (%v), want %v", k.RevokedAt, err, want)
	}
}

// TestErrorsWrapped: sentinels come wrapped with context.
func TestErrorsWrapped(t *testing.T) {
	dbURL, schema := newSchema(t)
	s := openTest(t, dbURL, schema)
	_, err := s.GetAPIKey(t.Context(), "key_nope")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "key_nope") {
		t.Errorf("GetAPIKey of a missing key: %v, want store.ErrNotFound wrapped with context", err)
	}
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
