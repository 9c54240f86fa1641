package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore/sqlstoretest"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	})
}

// openTest opens the database at path and closes it when the test ends.
func openTest(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	org, owner, key := sqlstoretest.Seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	sqlstoretest.CheckSeeded(t, openTest(t, path), org, owner, key)
}

// TestTwoStoresOnOneFile: two Stores on one file see each other's writes at
// once, and lose none of their concurrent updates of one row: the busy
// timeout absorbs the contention for the file's write lock.
func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	sqlstoretest.TwoStores(t, openTest(t, path), openTest(t, path))
}

func TestNewFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	sqlstoretest.Seed(t, openTest(t, path))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("new database file mode = %v, want 0600", mode)
	}
	// SQLite gives the WAL the database file's mode.
	fi, err = os.Stat(path + "-wal")
	switch {
	case err != nil:
		t.Errorf("WAL file: %v", err)
	case fi.Mode().Perm() != 0o600:
		t.Errorf("WAL file mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	for range 3 {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		sqlstoretest.Seed(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := openTest(t, path)
	orgs, err := s.ListOrganizations(t.Context())
	if err != nil || len(orgs) != 3 {
		t.Errorf("ListOrganizations after three opens: %d, %v; want 3", len(orgs), err)
	}
}

// TestMigrationsDownUp: every migration can be rolled back and applied again.
func TestMigrationsDownUp(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.writer, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithLogger(goose.NopLogger()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(t.Context(), 0); err != nil {
		t.Fatalf("down: %v", err)
	}
	var tables int
	if err := s.writer.QueryRowContext(t.Context(),
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'goose%' AND name NOT LIKE 'sqlite%'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("%d tables left after migrating down (%v), want 0", tables, err)
	}
	if err := migrate(t.Context(), s.writer); err != nil {
		t.Fatalf("up again: %v", err)
	}
	sqlstoretest.Seed(t, s)
}

// TestConcurrentOpen opens a fresh file from several Stores at once, as the
// server and the CLI might: every one must open and migrate.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	const n = 16
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), path) })
	}
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
}

// childEnv, when set in a process running this test binary, names the
// database that TestChildProcess writes to.
const childEnv = "TOLLGATE_SQLITE_TEST_CHILD_DB"

// TestMultiProcess runs several processes (this test binary, re-executed)
// that open the same fresh file at once and write to it concurrently, as the
// server and the tollgate command do.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := filepath.Join(t.TempDir(), "tollgate.db")
	const procs = 3
	sqlstoretest.RunChildren(t, procs, childEnv+"="+path)
	sqlstoretest.CheckChildWork(t, openTest(t, path), procs)
}

// TestChildProcess is the body of TestMultiProcess's child processes; it
// does nothing in a normal test run.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only run by TestMultiProcess")
	}
	sqlstoretest.ChildWork(t, openTest(t, path))
}

// TestPathWithURICharacters: the path is a file path, not a URI, whatever
// characters it holds.
func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c=d&e#f%20g")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tollgate.db")
	sqlstoretest.Seed(t, openTest(t, path))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Contains(names, "tollgate.db") || len(entries) > 3 {
		t.Errorf("files in the database directory: %q, want tollgate.db and its WAL files", names)
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(missing, "tollgate.db")} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the missing directory (stat: %v)", err)
	}
}

func TestPragmas(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	ctx := t.Context()
	for _, db := range []struct {
		name string
		q    querier
	}{{"writer", s.writer}, {"reader", s.reader}} {
		var mode string
		var fk int
		if err := db.q.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("%s: journal_mode = %q, %v; want wal", db.name, mode, err)
		}
		if err := db.q.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Errorf("%s: foreign_keys = %d, %v; want 1", db.name, fk, err)
		}
	}
	if _, err := s.reader.ExecContext(ctx, "DELETE FROM plans"); err == nil {
		t.Error("the reader pool can write")
	}
}

// TestClockDefaults: times the store fills in come from its clock.
func TestClockDefaults(t *testing.T) {
	now := time.Date(2030, time.January, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"), WithClock(clock.NewFake(now)))
	sqlstoretest.ClockDefaults(t, s, now)
}

// TestErrorsWrapped: sentinels come wrapped with context.
func TestErrorsWrapped(t *testing.T) {
	sqlstoretest.ErrorsWrapped(t, openTest(t, filepath.Join(t.TempDir(), "tollgate.db")))
}
