package credentials

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/apikey"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

var ctx = context.Background()

// countingStore counts key lookups by hash on top of the real store.
type countingStore struct {
	*sqlite.Store
	lookups atomic.Int64
	fail    atomic.Bool
	// afterOrg, when set, runs after an organization is read.
	afterOrg atomic.Pointer[func()]
}

func (c *countingStore) GetOrganization(ctx context.Context, id string) (store.Organization, error) {
	o, err := c.Store.GetOrganization(ctx, id)
	if f := c.afterOrg.Load(); f != nil {
		(*f)()
	}
	return o, err
}

func (c *countingStore) GetAPIKeyByHash(ctx context.Context, h []byte) (store.APIKey, error) {
	c.lookups.Add(1)
	if c.fail.Load() {
		return store.APIKey{}, errors.New("database is down")
	}
	return c.Store.GetAPIKeyByHash(ctx, h)
}

type fixture struct {
	svc   *Service
	st    *countingStore
	clock *clock.Fake
	org   string
}

func newFixture(t testing.TB, o Options) *fixture {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	org := storetest.SeedOrganization(t, st, clk.Now())
	cs := &countingStore{Store: st}
	o.Clock = clk
	return &fixture{svc: New(cs, o), st: cs, clock: clk, org: org.ID}
}

var actor = store.Actor{Type: store.ActorCLI}

func (f *fixture) create(t testing.TB, in CreateInput) Created {
	t.Helper()
	if in.Name == "" {
		in.Name = "k"
	}
	c, err := f.svc.Create(ctx, f.org, in, actor)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKeysAreStoredHashedAndShownOnce(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.create(t, CreateInput{Name: "prod", Scopes: []string{"b.read", "a.read", "a.read"}})
	stored, err := f.st.GetAPIKey(ctx, c.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := apikey.Hash(c.Secret)
	if string(stored.Hash) != string(h[:]) || stored.Prefix != c.Secret[:12] {
		t.Fatal("stored hash or prefix wrong")
	}
	if fmt.Sprint(stored.Scopes) != "[a.read b.read]" {
		t.Errorf("scopes not normalized: %v", stored.Scopes)
	}
	listed, _ := f.svc.List(ctx, f.org)
	for _, k := range listed {
		if fmt.Sprintf("%+v", k) == c.Secret {
			t.Fatal("secret in listing")
		}
	}
}

func TestAuthenticateUsesTheCache(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: time.Minute})
	c := f.create(t, CreateInput{})
	for range 100 {
		p, err := principalOf(f.svc.Lookup(ctx, c.Secret))
		if err != nil || p.CredentialID != c.Key.ID || p.OrgID != f.org {
			t.Fatalf("authenticate: %+v %v", p, err)
		}
	}
	if n := f.st.lookups.Load(); n != 1 {
		t.Fatalf("%d store lookups for 100 requests", n)
	}
	// After the TTL the store is asked again, which is how changes made by
	// another process are seen.
	f.clock.Advance(time.Minute)
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
		t.Fatal(err)
	}
	if n := f.st.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups after the TTL", n)
	}
}

func TestConcurrentMissesShareOneLookup(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.create(t, CreateInput{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.st.lookups.Load(); n > 5 {
		t.Fatalf("%d lookups for 50 concurrent first requests", n)
	}
}

func TestGarbageNeverReachesTheStore(t *testing.T) {
	f := newFixture(t, Options{})
	for _, k := range []string{"", "x", "tgk_", "tgk_" + "A" + fmt.Sprint(time.Now().UnixNano())} {
		if _, err := principalOf(f.svc.Lookup(ctx, k)); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("%q: %v", k, err)
		}
	}
	if n := f.st.lookups.Load(); n != 0 {
		t.Fatalf("%d lookups for malformed keys", n)
	}
	// A well-formed unknown key is looked up once, then answered from memory.
	unknown, _ := apikey.Generate()
	for range 3 {
		if _, err := principalOf(f.svc.Lookup(ctx, unknown)); !errors.Is(err, ErrInvalidKey) {
			t.Fatal(err)
		}
	}
	if n := f.st.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups for a repeated unknown key", n)
	}
}

func TestRevokeAndUpdateTakeEffectAtOnce(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: time.Hour})
	c := f.create(t, CreateInput{})
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
		t.Fatal(err)
	}
	allow, _ := ipallow.ParseString("10.0.0.0/8")
	if _, err := f.svc.Update(ctx, f.org, c.Key.ID, Patch{IPAllowlist: &allow}, actor); err != nil {
		t.Fatal(err)
	}
	p, err := principalOf(f.svc.Lookup(ctx, c.Secret))
	if err != nil || p.IPAllowlist.IsEmpty() {
		t.Fatalf("update not seen: %+v %v", p, err)
	}
	if _, err := f.svc.Revoke(ctx, f.org, c.Key.ID, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("revoked key: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: time.Hour})
	c := f.create(t, CreateInput{ExpiresAt: f.clock.Now().Add(time.Hour)})
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour) // expiry is checked on every request, cached or not
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); !errors.Is(err, ErrExpiredKey) {
		t.Fatalf("expired key: %v", err)
	}
	for _, bad := range []time.Time{f.clock.Now().Add(-time.Second), f.clock.Now().Add(11 * 365 * 24 * time.Hour)} {
		_, err := f.svc.Create(ctx, f.org, CreateInput{Name: "x", ExpiresAt: bad}, actor)
		var e *apierror.Error
		if !errors.As(err, &e) || e.Field != "expires_at" {
			t.Errorf("expiry %v: %v", bad, err)
		}
	}
}

func TestStoreFailureIsNotAnAuthFailure(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.create(t, CreateInput{})
	f.st.fail.Store(true)
	_, err := principalOf(f.svc.Lookup(ctx, c.Secret))
	var e *apierror.Error
	if !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("store down: %v", err)
	}
}

func TestOtherOrganizationsKeysAreInvisible(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.create(t, CreateInput{})
	name := "stolen"
	for _, err := range []error{
		func() error { _, err := f.svc.Get(ctx, "org_other", c.Key.ID); return err }(),
		func() error {
			_, err := f.svc.Update(ctx, "org_other", c.Key.ID, Patch{Name: &name}, actor)
			return err
		}(),
		func() error { _, err := f.svc.Revoke(ctx, "org_other", c.Key.ID, actor); return err }(),
	} {
		if !errors.Is(err, errNoKey) {
			t.Errorf("cross-org access: %v", err)
		}
	}
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
		t.Fatalf("key harmed by a foreign revoke: %v", err)
	}
}

func TestLastUsedIsBatchedAndSurvivesEviction(t *testing.T) {
	f := newFixture(t, Options{CacheSize: cacheShards}) // one entry per shard
	keys := make([]Created, 20)
	for i := range keys {
		keys[i] = f.create(t, CreateInput{})
	}
	for _, c := range keys {
		if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := f.st.GetAPIKey(ctx, keys[0].Key.ID)
	if !before.LastUsedAt.IsZero() {
		t.Fatal("last use written on the request path")
	}
	// Evict entries by filling the small cache with other keys.
	for range 200 {
		k, _ := apikey.Generate()
		_, _ = principalOf(f.svc.Lookup(ctx, k))
	}
	if err := f.svc.FlushLastUsed(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range keys {
		k, _ := f.st.GetAPIKey(ctx, c.Key.ID)
		if !k.LastUsedAt.Equal(f.clock.Now()) {
			t.Fatalf("key %s last used %v, want %v", c.Key.ID, k.LastUsedAt, f.clock.Now())
		}
	}
	if len(f.svc.pendingSnapshot()) != 0 {
		t.Fatal("pending uses left after a flush")
	}
	if n := f.svc.cache.len(); n > cacheShards {
		t.Fatalf("cache holds %d entries, bound %d", n, cacheShards)
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		in    CreateInput
		field string
	}{
		{CreateInput{Name: ""}, "name"},
		{CreateInput{Name: string(make([]byte, 65))}, "name"},
		{CreateInput{Name: "bad\x00name"}, "name"},
		{CreateInput{Name: "k", Scopes: []string{"Not Valid"}}, "scopes"},
		{CreateInput{Name: "k", AppID: "app_nope"}, "app_id"},
	}
	for _, tt := range tests {
		_, err := f.svc.Create(ctx, f.org, tt.in, actor)
		var e *apierror.Error
		if !errors.As(err, &e) || e.Field != tt.field {
			t.Errorf("%+v: %v (want field %s)", tt.in, err, tt.field)
		}
	}
}

// BenchmarkAuthenticateCached is the gateway's per-request cost of an API
// key that is already in the cache (DESIGN.md budget: a few microseconds, a
// handful of allocations).
func BenchmarkAuthenticateCached(b *testing.B) {
	f := newFixture(b, Options{CacheTTL: time.Hour})
	c := f.create(b, CreateInput{})
	if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateUncached is the cost when every request misses the
// cache and reads SQLite.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := newFixture(b, Options{CacheTTL: time.Nanosecond})
	c := f.create(b, CreateInput{})
	b.ReportAllocs()
	for b.Loop() {
		f.clock.Advance(time.Microsecond)
		if _, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil {
			b.Fatal(err)
		}
	}
}

func testSealer(t testing.TB) *secretbox.Box {
	t.Helper()
	box, err := secretbox.New(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// A signing secret is shown once, stored sealed under the master key and
// bound to its key, and handed to the gateway in clear.
func TestSigningSecret(t *testing.T) {
	f := newFixture(t, Options{Sealer: testSealer(t)})
	c := f.create(t, CreateInput{SigningSecret: true, SignatureRequired: true})
	if !strings.HasPrefix(c.SigningSecret, SigningSecretPrefix) || len(c.SigningSecret) != signingSecretLength {
		t.Fatalf("signing secret %q", c.SigningSecret)
	}
	stored, err := f.st.GetAPIKey(ctx, c.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.SigningSecret) == 0 || strings.Contains(string(stored.SigningSecret), c.SigningSecret[4:]) || !stored.SignatureRequired {
		t.Fatalf("stored %q, required %v", stored.SigningSecret, stored.SignatureRequired)
	}
	k, err := f.svc.Lookup(ctx, c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if string(k.SigningSecret) != c.SigningSecret || !k.SignatureRequired || k.Principal.CredentialID != c.Key.ID {
		t.Fatalf("lookup: %+v", k)
	}

	// Not required, then required again.
	no := false
	if _, err := f.svc.Update(ctx, f.org, c.Key.ID, Patch{SignatureRequired: &no}, actor); err != nil {
		t.Fatal(err)
	}
	if k, _ := f.svc.Lookup(ctx, c.Secret); k.SignatureRequired {
		t.Fatal("signature still required after the update")
	}

	// A key without a secret cannot require signatures.
	plain := f.create(t, CreateInput{})
	yes := true
	if _, err := f.svc.Update(ctx, f.org, plain.Key.ID, Patch{SignatureRequired: &yes}, actor); apierror.From(err).Field != "signature_required" {
		t.Fatalf("require a signature of a key without a secret: %v", err)
	}
	if _, err := f.svc.Create(ctx, f.org, CreateInput{Name: "x", SignatureRequired: true}, actor); apierror.From(err).Field != "signature_required" {
		t.Fatalf("signature_required without signing_secret: %v", err)
	}
	// Without a master key there are no signing secrets.
	g := newFixture(t, Options{})
	if _, err := g.svc.Create(ctx, g.org, CreateInput{Name: "x", SigningSecret: true}, actor); err == nil {
		t.Fatal("signing secret without a sealer")
	}
}

func TestResealSecrets(t *testing.T) {
	oldKey, newKey := testKey(t), testKey(t)
	oldBox, err := secretbox.New(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Sealer: oldBox})
	c := f.create(t, CreateInput{SigningSecret: true})
	f.create(t, CreateInput{}) // no secret: nothing to reseal

	rotated, err := secretbox.New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	for run, want := range []int{1, 0} { // the second run finds nothing left
		n, err := f.svc.ResealSecrets(ctx, rotated, []string{f.org}, actor)
		if err != nil || n != want {
			t.Fatalf("reseal run %d: %d %v, want %d", run+1, n, err, want)
		}
	}
	onlyNew, err := secretbox.New(newKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := New(f.st, Options{Sealer: onlyNew, Clock: f.clock}).Lookup(ctx, c.Secret)
	if err != nil || string(k.SigningSecret) != c.SigningSecret {
		t.Fatalf("under the new master key alone: %v", err)
	}
}

func testKey(t testing.TB) []byte {
	t.Helper()
	enc, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := secretbox.ParseKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// principalOf keeps the principal of a Lookup.
func principalOf(k Key, err error) (*authn.Principal, error) { return k.Principal, err }

// While the store cannot be read, a key verified within the cache TTL plus
// the outage grace keeps working; an unknown key, or one past the grace, is
// a 503, never a 401.
func TestStoreOutageGrace(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: 30 * time.Second, StoreOutageGrace: 5 * time.Minute})
	c := f.create(t, CreateInput{})
	other := f.create(t, CreateInput{Name: "never used"})
	if _, err := f.svc.Lookup(ctx, c.Secret); err != nil {
		t.Fatal(err)
	}
	f.st.fail.Store(true)
	f.clock.Advance(4 * time.Minute)
	if p, err := principalOf(f.svc.Lookup(ctx, c.Secret)); err != nil || p.CredentialID != c.Key.ID {
		t.Fatalf("within the grace: %v, %v", p, err)
	}
	var e *apierror.Error
	if _, err := f.svc.Lookup(ctx, other.Secret); !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("a key not cached during the outage: %v", err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.svc.Lookup(ctx, c.Secret); !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("past the grace: %v", err)
	}
	f.st.fail.Store(false)
	if _, err := f.svc.Lookup(ctx, c.Secret); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// Apply carries out other nodes' messages: a key's hash, a list of key IDs,
// and Resync.
func TestApplyInvalidations(t *testing.T) {
	var sent []string
	f := newFixture(t, Options{Broadcast: func(m string) { sent = append(sent, m) }})
	a, b := f.create(t, CreateInput{Name: "a"}), f.create(t, CreateInput{Name: "b"})
	if len(sent) != 2 || !strings.HasPrefix(sent[0], "apikey:") {
		t.Fatalf("creations broadcast %q", sent)
	}
	warm := func() {
		for _, k := range []Created{a, b} {
			if _, err := f.svc.Lookup(ctx, k.Secret); err != nil {
				t.Fatal(err)
			}
		}
	}
	warm()
	n := f.st.lookups.Load()
	if !f.svc.Apply(sent[0]) { // a's hash
		t.Fatal("an apikey message not taken")
	}
	warm()
	if got := f.st.lookups.Load() - n; got != 1 {
		t.Errorf("%d store reads after dropping one key, want 1", got)
	}
	n = f.st.lookups.Load()
	f.svc.Apply("apikey-ids:" + b.Key.ID)
	warm()
	if got := f.st.lookups.Load() - n; got != 1 {
		t.Errorf("%d store reads after dropping a key by ID, want 1", got)
	}
	n = f.st.lookups.Load()
	f.svc.Apply("*")
	warm()
	if got := f.st.lookups.Load() - n; got != 2 {
		t.Errorf("%d store reads after Resync, want 2", got)
	}
	if f.svc.Apply("oauth-client:x") || f.svc.Apply("apikey:zz") != true {
		t.Error("Apply claimed another service's message, or refused a malformed one of its own")
	}
}

// setDisabled disables or enables the fixture's organization in the store
// only, as another node would.
func (f *fixture) setDisabled(t *testing.T, disabled bool) {
	t.Helper()
	_, err := f.st.UpdateOrganization(ctx, f.org, func(o store.Organization) (store.Organization, error) {
		o.DisabledAt, o.DisabledReason = time.Time{}, ""
		if disabled {
			o.DisabledAt, o.DisabledReason = f.clock.Now(), "test"
		}
		return o, nil
	}, store.AuditEntry{Action: "org.disable", ActorType: store.ActorSystem, OrgID: f.org})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOrgDisabled: a key of a disabled organization is refused with 403
// organization_disabled once the organization's message is applied (the
// status is cached with the key: without the message, only at the TTL); an
// enabled one works again; the principal carries the key's expiry.
func TestOrgDisabled(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: time.Hour})
	expires := f.clock.Now().Add(48 * time.Hour)
	c := f.create(t, CreateInput{Name: "k", ExpiresAt: expires})
	k, err := f.svc.Lookup(ctx, c.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Principal.ExpiresAt.Equal(expires) {
		t.Errorf("principal ExpiresAt = %v, want %v", k.Principal.ExpiresAt, expires)
	}
	f.setDisabled(t, true)
	if _, err := f.svc.Lookup(ctx, c.Secret); err != nil {
		t.Fatalf("before the message, the cached key: %v", err)
	}
	if f.svc.Apply(authn.MsgOrgDisabled + "org_other") {
		t.Error("Apply reported an organization's message as its own")
	}
	if _, err := f.svc.Lookup(ctx, c.Secret); err != nil {
		t.Fatalf("another organization's message: %v", err)
	}
	f.svc.Apply(authn.MsgOrgDisabled + f.org)
	_, err = f.svc.Lookup(ctx, c.Secret)
	if e := apierror.From(err); e.Status != 403 || e.Reason != apierror.ReasonOrgDisabled {
		t.Fatalf("after the message: %v, want 403 organization_disabled", err)
	}
	f.setDisabled(t, false)
	f.svc.Apply(authn.MsgOrgEnabled + f.org)
	if _, err := f.svc.Lookup(ctx, c.Secret); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
}

// TestLoadRacingInvalidation: a load that read the organization just before
// it was disabled, and finishes after the message was applied, does not
// cache what it read: the next request reads the store again.
func TestLoadRacingInvalidation(t *testing.T) {
	f := newFixture(t, Options{CacheTTL: time.Hour})
	c := f.create(t, CreateInput{Name: "k"})
	read, proceed := make(chan struct{}), make(chan struct{})
	hook := func() { close(read); <-proceed }
	f.st.afterOrg.Store(&hook)
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Lookup(ctx, c.Secret)
		done <- err
	}()
	<-read // the organization was read, enabled
	f.st.afterOrg.Store(nil)
	f.setDisabled(t, true)
	f.svc.Apply(authn.MsgOrgDisabled + f.org)
	close(proceed)
	if err := <-done; err != nil {
		t.Fatalf("the request that raced: %v (it may be served as read)", err)
	}
	_, err := f.svc.Lookup(ctx, c.Secret)
	if e := apierror.From(err); e.Status != 403 || e.Reason != apierror.ReasonOrgDisabled {
		t.Fatalf("the next request: %v, want 403 organization_disabled (a stale entry was cached)", err)
	}
}
