// Package sqlstoretest holds the test helpers and test bodies that the tests
// of the two SQL backends (the sqlite and postgres packages) share: they
// exercise a backend through store.Store, beyond the conformance suite
// (storetest), in ways that do not depend on the database: several stores on
// one database, reopening, the store's clock, the request log across a
// migration, and the benchmarks of usage recording and listing.
//
// It is an ordinary package so that the backends' tests can import it;
// nothing outside tests should.
package sqlstoretest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// TestTime is the time of the objects Seed and SeedWebhooks create.
var TestTime = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// Seed creates an organization with its owner and one API key, each with
// its audit entry.
func Seed(t *testing.T, s store.Store) (store.Organization, store.User, store.APIKey) {
	t.Helper()
	ctx := t.Context()
	org := store.Organization{ID: ids.New(ids.Organization), Name: "Acme", Slug: "acme-" + ids.New("x")[2:10], CreatedAt: TestTime}
	owner := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: ids.New("u") + "@example.com", Role: store.RoleOwner, Status: store.UserActive, CreatedAt: TestTime}
	key := store.APIKey{ID: ids.New(ids.APIKey), OrgID: org.ID, Name: "k", Prefix: "tg_", Hash: []byte(ids.New("h")), CreatedAt: TestTime}
	if err := s.CreateOrganizationWithOwner(ctx, org, owner, store.AuditEntry{ActorType: store.ActorCLI, Action: "org.create"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIKey(ctx, key, store.AuditEntry{ActorType: store.ActorCLI, Action: "apikey.create"}); err != nil {
		t.Fatal(err)
	}
	return org, owner, key
}

// CheckSeeded checks that s holds what Seed created (org, owner and key) and
// its two audit entries, and nothing else: after the store that seeded it
// was closed and s opened on the same database.
func CheckSeeded(t *testing.T, s store.Store, org store.Organization, owner store.User, key store.APIKey) {
	t.Helper()
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

// TwoStores checks two stores on one database (one file, one schema), as two
// processes or nodes sharing it: each sees the other's writes at once, and
// none of their concurrent updates of one row, from many goroutines each, is
// lost.
func TwoStores(t *testing.T, a, b store.Store) {
	t.Helper()
	ctx := t.Context()
	org, _, key := Seed(t, a)
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
	for _, s := range []store.Store{a, b} {
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

// ClockDefaults checks that the times a store fills in come from its clock,
// which reads now: audit entries' times, and a zero time to revoke keys at.
func ClockDefaults(t *testing.T, s store.Store, now time.Time) {
	t.Helper()
	ctx := t.Context()
	_, _, key := Seed(t, s)
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

// ErrorsWrapped checks that the store's sentinels come wrapped with
// context.
func ErrorsWrapped(t *testing.T, s store.Store) {
	t.Helper()
	_, err := s.GetAPIKey(t.Context(), "key_nope")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "key_nope") {
		t.Errorf("GetAPIKey of a missing key: %v, want store.ErrNotFound wrapped with context", err)
	}
}

// ChildWrites is how many audit entries ChildWork appends.
const ChildWrites = 20

// RunChildren runs procs processes of this test binary at once, running
// only TestChildProcess, with env ("NAME=value") added to their
// environment, and fails t with the output of those that fail.
func RunChildren(t *testing.T, procs int, env string) {
	t.Helper()
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmds[i] = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1") //nolint:gosec // G204: this test binary, run again
		cmds[i].Env = append(os.Environ(), env)
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
}

// ChildWork is what each child process of RunChildren writes to s: Seed's
// objects and ChildWrites audit entries.
func ChildWork(t *testing.T, s store.Store) {
	t.Helper()
	Seed(t, s)
	for i := range ChildWrites {
		if err := s.AppendAudit(t.Context(), store.AuditEntry{ActorType: store.ActorCLI, Action: fmt.Sprintf("child.%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckChildWork checks that s holds what procs child processes wrote with
// ChildWork, all of it.
func CheckChildWork(t *testing.T, s store.Store, procs int) {
	t.Helper()
	orgs, err := s.ListOrganizations(t.Context())
	if err != nil || len(orgs) != procs {
		t.Errorf("ListOrganizations: %d, %v; want %d", len(orgs), err, procs)
	}
	entries, err := s.ListAudit(t.Context(), store.AuditFilter{Limit: 1000})
	if want := procs * (2 + ChildWrites); err != nil || len(entries) != want {
		t.Errorf("ListAudit: %d entries, %v; want %d", len(entries), err, want)
	}
}
