package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// start is the fake clock's first reading. It has nanoseconds and is not in
// UTC, so that every round trip checks that the store truncates to
// microseconds and reads back in UTC.
var start = time.Date(2025, time.June, 1, 12, 0, 0, 123456789, time.FixedZone("UTC+2", 2*60*60))

// errBoom is what update funcs return to abort an update.
var errBoom = errors.New("storetest: boom")

// errAny, as an expected error in a table, accepts any non-nil error: for
// failures the store package documents without naming a sentinel.
var errAny = errors.New("storetest: any error")

// fixture bundles what a test needs: the store under test, a context and a
// fake clock for the times put in values.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   store.Store
	clk *clock.Fake
}

func newFixture(t *testing.T, s store.Store) *fixture {
	return &fixture{t: t, ctx: t.Context(), s: s, clk: clock.NewFake(start)}
}

// now advances the fake clock by a second and returns it, so that objects
// created one after the other have increasing times.
func (f *fixture) now() time.Time {
	f.clk.Advance(time.Second)
	return f.clk.Now()
}

// hash returns a SHA-256 digest of s, standing in for a credential's hash.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// --- Values (not written) ---

func (f *fixture) orgValue() store.Organization {
	id := ids.New(ids.Organization)
	now := f.now()
	return store.Organization{
		ID:        id,
		Name:      "Acme " + id,
		Slug:      "acme-" + id[len(id)-8:],
		Plan:      "pro",
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// userValue returns an active member. Its email has upper-case letters, to
// check that the store lower-cases it.
func (f *fixture) userValue(orgID string) store.User {
	id := ids.New(ids.User)
	now := f.now()
	return store.User{ //nolint:gosec // G101: a fixture, not a credential
		ID:           id,
		OrgID:        orgID,
		Email:        "Someone." + id + "@Example.COM",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Role:         store.RoleMember,
		Status:       store.UserActive,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
}

func (f *fixture) appValue(orgID string) store.App {
	id := ids.New(ids.App)
	now := f.now()
	return store.App{
		ID:            id,
		OrgID:         orgID,
		Name:          "prod-main",
		Environment:   "production",
		ClientID:      "client-" + id,
		SecretHash:    hash("secret " + id),
		AllowedScopes: []string{"read", "write"},
		IPAllowlist:   []string{"10.0.0.0/8", "2001:db8::/32"},
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}

func (f *fixture) keyValue(orgID, appID string) store.APIKey {
	id := ids.New(ids.APIKey)
	now := f.now()
	return store.APIKey{
		ID:          id,
		OrgID:       orgID,
		AppID:       appID,
		Name:        "ci key",
		Prefix:      "tg_" + id[len(id)-6:],
		Hash:        hash("key " + id),
		Scopes:      []string{"read"},
		IPAllowlist: []string{"192.0.2.0/24"},
		ExpiresAt:   now.Add(90 * 24 * time.Hour),
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   "cli",
		// Sealed bytes, opaque to the store.
		SigningSecret:     []byte("sealed signing secret " + id),
		SignatureRequired: true,
	}
}

func (f *fixture) tokenValue(userID, familyID string) store.RefreshToken {
	id := ids.New(ids.RefreshToken)
	now := f.now()
	return store.RefreshToken{
		ID:        id,
		FamilyID:  familyID,
		UserID:    userID,
		Hash:      hash("token " + id),
		CreatedAt: now,
		ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
}

func (f *fixture) signingKeyValue() store.SigningKey {
	id := ids.New(ids.SigningKey)
	return store.SigningKey{
		ID:         id,
		Algorithm:  "RS256",
		PrivateKey: []byte("sealed private key " + id),
		CreatedAt:  f.now(),
	}
}

// auditValue returns an entry with the given action and no ID, Time or
// TargetID, for the store to fill in.
func auditValue(action string) store.AuditEntry {
	return store.AuditEntry{
		ActorType:  store.ActorCLI,
		ActorID:    "operator",
		Action:     action,
		TargetType: "test",
		IP:         "192.0.2.1",
		Details:    map[string]string{"action": action},
	}
}

// --- Writers: create an object, fail the test on error, and return the
// object as the store must read it back. ---

// createOrg creates an organization with its owner.
func (f *fixture) createOrg() (store.Organization, store.User) {
	f.t.Helper()
	org := f.orgValue()
	owner := f.userValue(org.ID)
	owner.Role = store.RoleOwner
	mustDo(f.t, f.s.CreateOrganizationWithOwner(f.ctx, org, owner, auditValue("org.create")))
	return normalize(org), normalizeUser(owner)
}

func (f *fixture) createUser(orgID string, mods ...func(*store.User)) store.User {
	f.t.Helper()
	u := f.userValue(orgID)
	for _, m := range mods {
		m(&u)
	}
	mustDo(f.t, f.s.CreateUser(f.ctx, u, auditValue("user.create")))
	return normalizeUser(u)
}

func (f *fixture) createApp(orgID string) store.App {
	f.t.Helper()
	app := f.appValue(orgID)
	mustDo(f.t, f.s.CreateApp(f.ctx, app, auditValue("app.create")))
	return normalize(app)
}

func (f *fixture) createKey(orgID, appID string, mods ...func(*store.APIKey)) store.APIKey {
	f.t.Helper()
	k := f.keyValue(orgID, appID)
	for _, m := range mods {
		m(&k)
	}
	mustDo(f.t, f.s.CreateAPIKey(f.ctx, k, auditValue("apikey.create")))
	return normalize(k)
}

func (f *fixture) createToken(userID, familyID string, mods ...func(*store.RefreshToken)) store.RefreshToken {
	f.t.Helper()
	tok := f.tokenValue(userID, familyID)
	for _, m := range mods {
		m(&tok)
	}
	mustDo(f.t, f.s.CreateRefreshToken(f.ctx, tok))
	return normalize(tok)
}

// allAudit returns the whole audit log (up to the store's cap), newest first.
func (f *fixture) allAudit() []store.AuditEntry {
	f.t.Helper()
	entries, err := f.s.ListAudit(f.ctx, store.AuditFilter{Limit: 1000})
	mustDo(f.t, err)
	return entries
}

// --- Normalization: what a value must look like once read back ---

// normalize returns v as the store must read it back: every time.Time in UTC
// and truncated to the microsecond, every nil slice or map empty.
func normalize[T any](v T) T {
	normalizeValue(reflect.ValueOf(&v).Elem())
	return v
}

var timeType = reflect.TypeFor[time.Time]()

func normalizeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			if t.IsZero() {
				t = time.Time{}
			} else {
				t = t.UTC().Truncate(time.Microsecond)
			}
			v.Set(reflect.ValueOf(t))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalizeValue(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	default:
		// Scalars and strings are compared as they are.
	}
}

// normalizeUser also lower-cases the email, as the store does.
func normalizeUser(u store.User) store.User {
	u = normalize(u)
	u.Email = strings.ToLower(u.Email)
	return u
}

// --- Assertions ---

// cmpOpts makes times equal only when they are the same instant in the same
// location, so that a time read back in another zone than UTC is a
// difference.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool {
		return a.Equal(b) && a.Location().String() == b.Location().String()
	}),
}

// wantEqual reports a difference between got and want.
func wantEqual[T any](t *testing.T, what string, got, want T, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, append(opts, cmpOpts)...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// mustDo fails the test now if err is not nil.
func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// must takes a call's results and returns a func that returns the value,
// failing the test now if the call failed: must(s.GetUser(ctx, id))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		mustDo(t, err)
		return v
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// wantNewAudit checks that the audit log grew by exactly the entries
// described by want, in any order (matched by Action, compared without ID
// and Time, which must be set), and returns the new entries.
func (f *fixture) wantNewAudit(what string, before []store.AuditEntry, want ...store.AuditEntry) []store.AuditEntry {
	f.t.Helper()
	seen := make(map[string]bool, len(before))
	for _, e := range before {
		seen[e.ID] = true
	}
	var added []store.AuditEntry
	for _, e := range f.allAudit() {
		if !seen[e.ID] {
			added = append(added, e)
		}
	}
	if len(added) != len(want) {
		f.t.Errorf("%s: %d new audit entries, want %d: %+v", what, len(added), len(want), added)
		return added
	}
	byAction := func(a, b store.AuditEntry) int { return strings.Compare(a.Action, b.Action) }
	added = slices.SortedStableFunc(slices.Values(added), byAction)
	want = slices.SortedStableFunc(slices.Values(want), byAction)
	for i, e := range added {
		if e.ID == "" || e.Time.IsZero() {
			f.t.Errorf("%s: audit entry without ID or Time: %+v", what, e)
		}
		w := want[i]
		w.ID, w.Time = e.ID, e.Time
		wantEqual(f.t, what+": audit entry", e, normalize(w))
	}
	return added
}

// SeedOrganization creates an organization ("Acme") with an active owner in
// s, for the tests of services built on a store.
func SeedOrganization(t testing.TB, s store.Store, now time.Time) store.Organization {
	t.Helper()
	org := store.Organization{ID: ids.New(ids.Organization), Name: "Acme", Slug: "acme-" + ids.New("")[1:9], CreatedAt: now}
	owner := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: org.Slug + "@example.com", PasswordHash: "x",
		Role: store.RoleOwner, Status: store.UserActive, CreatedAt: now}
	if err := s.CreateOrganizationWithOwner(context.Background(), org, owner, store.AuditEntry{Action: "test"}); err != nil {
		t.Fatal(err)
	}
	return org
}
