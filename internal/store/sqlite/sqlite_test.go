package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
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

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	org, owner, key := seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path)
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

func TestTwoStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	a := openTest(t, path)
	b := openTest(t, path)
	ctx := t.Context()

	// One writes, the other sees it at once.
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

	// Both write at once, from many goroutines: the busy timeout absorbs
	// the contention for the file's write lock.
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

func TestNewFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.db")
	seed(t, openTest(t, path))
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
		seed(t, s)
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
	seed(t, s)
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
		seed(t, stores[i])
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
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), childEnv+"="+path)
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

	s := openTest(t, path)
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
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only run by TestMultiProcess")
	}
	s := openTest(t, path)
	seed(t, s)
	for i := range childWrites {
		if err := s.AppendAudit(t.Context(), store.AuditEntry{ActorType: store.ActorCLI, Action: fmt.Sprintf("child.%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPathWithURICharacters: the path is a file path, not a URI, whatever
// characters it holds.
func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a b?c=d&e#f%20g")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tollgate.db")
	seed(t, openTest(t, path))
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
	s := openTest(t, filepath.Join(t.TempDir(), "tollgate.db"))
	_, err := s.GetAPIKey(t.Context(), "key_nope")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "key_nope") {
		t.Errorf("GetAPIKey of a missing key: %v, want store.ErrNotFound wrapped with context", err)
	}
}
