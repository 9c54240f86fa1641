package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// countingKeys wraps a KeyStore and counts the lists, that is the reloads.
// While gate is non-nil, lists wait for it to be closed.
type countingKeys struct {
	KeyStore
	lists atomic.Int64
	gate  atomic.Pointer[chan struct{}]
}

func (c *countingKeys) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	c.lists.Add(1)
	if g := c.gate.Load(); g != nil {
		<-*g
	}
	return c.KeyStore.ListSigningKeys(ctx)
}

func testBox(t *testing.T) *secretbox.Box {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{7}, secretbox.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// openDB opens a SQLite store on path; another call on the same path is
// another node sharing the database.
func openDB(t *testing.T, path string, clk clock.Clock) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func sqliteRing(t *testing.T) (*Keyring, *sqlite.Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	st := openDB(t, filepath.Join(t.TempDir(), "tollgate.db"), clk)
	k, err := LoadKeyring(context.Background(), st, testBox(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	return k, st, clk
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &jwt.RegisteredClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func keyIDs(keys []KeyInfo) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func TestRotateWithTokensInFlight(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	v := NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-a", 0)
	oldID := k.ActiveKeyID()
	oldTok, err := k.Sign(claims(clk, time.Hour), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Minute)
	newID, retired, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newID == oldID || k.ActiveKeyID() != newID || !slices.Equal(retired, []string{oldID}) {
		t.Fatalf("rotate: new %q (was %q), active %q, retired %v", newID, oldID, k.ActiveKeyID(), retired)
	}
	newTok, err := k.Sign(claims(clk, time.Hour), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, newTok); kid != newID {
		t.Fatalf("new token kid = %q, want %q", kid, newID)
	}
	var c jwt.RegisteredClaims
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if err := v.Verify(tok, &c); err != nil {
			t.Fatalf("%s token after rotation: %v", name, err)
		}
	}

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || len(set.Key(oldID)) != 1 || len(set.Key(newID)) != 1 {
		t.Fatalf("jwks = %s", k.JWKS())
	}

	want := []KeyInfo{
		{ID: oldID, Algorithm: Algorithm, CreatedAt: t0, RetiredAt: t0.Add(time.Minute)},
		{ID: newID, Algorithm: Algorithm, CreatedAt: t0.Add(time.Minute), Signing: true},
	}
	got := k.Keys()
	if len(got) != len(want) {
		t.Fatalf("keys = %+v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Algorithm != w.Algorithm || !g.CreatedAt.Equal(w.CreatedAt) ||
			!g.RetiredAt.Equal(w.RetiredAt) || g.Signing != w.Signing {
			t.Errorf("keys[%d] = %+v, want %+v", i, g, w)
		}
	}
	stored, err := st.ListSigningKeys(ctx)
	if err != nil || len(stored) != 2 || !stored[0].RetiredAt.Equal(t0.Add(time.Minute)) || !stored[1].RetiredAt.IsZero() {
		t.Fatalf("stored = %+v, %v", stored, err)
	}

	// A second rotation retires only the key that was signing.
	clk.Advance(time.Minute)
	third, retired, err := k.Rotate(ctx)
	if err != nil || !slices.Equal(retired, []string{newID}) || k.ActiveKeyID() != third {
		t.Fatalf("second rotation: %q %v %v", third, retired, err)
	}
	if got := k.Keys(); !slices.Equal(keyIDs(got), []string{oldID, newID, third}) ||
		!got[0].RetiredAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("keys after second rotation = %+v", got)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if err := v.Verify(tok, &c); err != nil {
			t.Fatalf("%s token after second rotation: %v", name, err)
		}
	}
}

// A key created after Rotate's own, by a rotation elsewhere, is not retired,
// so that two concurrent rotations cannot leave no key to sign with.
func TestRotateLeavesNewerKeys(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	first := k.ActiveKeyID()
	other, err := LoadKeyring(ctx, st, testBox(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	// The other node's rotation creates its key "after" ours (its clock is
	// ahead) but before we retire.
	clk.Advance(2 * time.Minute)
	newer, err := other.create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Minute)
	ours, retired, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(retired, []string{first}) || k.ActiveKeyID() != newer {
		t.Fatalf("retired %v, active %q; want [%s], %q (ours %q)", retired, k.ActiveKeyID(), first, newer, ours)
	}
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	v := NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-a", 0)
	k0 := k.ActiveKeyID()
	tok0, _ := k.Sign(claims(clk, 30*time.Minute), "at+jwt")
	clk.Advance(time.Minute) // k0 retired at t0+1m
	k1, _, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // k1 retired at t0+61m
	k2, _, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const keep = time.Hour

	// At t0+61m nothing has been retired for an hour yet.
	if deleted, err := k.Prune(ctx, keep); err != nil || len(deleted) != 0 {
		t.Fatalf("prune at once: %v %v", deleted, err)
	}
	clk.Advance(time.Minute) // t0+62m: k0 retired 61m ago, k1 1m ago
	deleted, err := k.Prune(ctx, keep)
	if err != nil || !slices.Equal(deleted, []string{k0}) {
		t.Fatalf("prune = %v, %v; want [%s]", deleted, err, k0)
	}
	if ids := keyIDs(k.Keys()); !slices.Equal(ids, []string{k1, k2}) {
		t.Fatalf("keys after prune = %v", ids)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil || len(set.Key(k0)) != 0 {
		t.Fatalf("pruned key still published: %s", k.JWKS())
	}
	var c jwt.RegisteredClaims
	clk.Advance(-time.Hour) // so that only the key, not the expiry, decides
	if err := v.Verify(tok0, &c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a pruned key: %v", err)
	}
	clk.Advance(time.Hour)

	// Keeping nothing deletes every retired key but never the signing one.
	clk.Advance(time.Second)
	deleted, err = k.Prune(ctx, 0)
	if err != nil || !slices.Equal(deleted, []string{k1}) || k.ActiveKeyID() != k2 {
		t.Fatalf("prune(0) = %v, %v; active %q", deleted, err, k.ActiveKeyID())
	}
	// Not even when it was retired behind the keyring's back.
	if err := st.RetireSigningKey(ctx, k2, clk.Now().Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if deleted, err := k.Prune(ctx, 0); err != nil || len(deleted) != 0 {
		t.Fatalf("pruned the signing key: %v %v", deleted, err)
	}
	if stored, _ := st.ListSigningKeys(ctx); len(stored) != 1 || stored[0].ID != k2 {
		t.Fatalf("stored = %+v", stored)
	}
	if _, err := k.Prune(ctx, -time.Second); err == nil {
		t.Fatal("negative keep accepted")
	}
}

// Node B verifies a token signed with a key that node A rotated to after B
// loaded its keys; garbage kids reload at most once per missReloadInterval.
func TestUnknownKidReloadsRateLimited(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "tollgate.db")
	a, err := LoadKeyring(ctx, openDB(t, path, clk), testBox(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingKeys{KeyStore: openDB(t, path, clk)}
	b, err := LoadKeyring(ctx, counted, testBox(t), clk)
	if err != nil {
		t.Fatal(err)
	}
	if b.ActiveKeyID() != a.ActiveKeyID() {
		t.Fatalf("b signs with %q, a with %q", b.ActiveKeyID(), a.ActiveKeyID())
	}
	vb := NewVerifier(b, clk, "at+jwt", "https://issuer.test", "aud-a", 0)
	lists := func() int64 { return counted.lists.Load() }
	var c jwt.RegisteredClaims

	// A token of a key B holds costs no reload.
	before := lists()
	tok, _ := a.Sign(claims(clk, time.Hour), "at+jwt")
	if err := vb.Verify(tok, &c); err != nil || lists() != before {
		t.Fatalf("known kid: %v, %d reloads", err, lists()-before)
	}

	// A rotates; concurrent requests to B with A's new key share one reload
	// and all succeed.
	clk.Advance(time.Minute)
	newID, _, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newTok, _ := a.Sign(claims(clk, time.Hour), "at+jwt")
	gate := make(chan struct{})
	counted.gate.Store(&gate)
	before = lists()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			var c jwt.RegisteredClaims
			errs[i] = vb.Verify(newTok, &c)
		})
	}
	time.Sleep(50 * time.Millisecond) // let the requests pile up behind the reload
	close(gate)
	wg.Wait()
	counted.gate.Store(nil)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("token of the rotated-to key: %v", err)
	}
	if n := lists() - before; n != 1 {
		t.Fatalf("%d reloads, want 1", n)
	}
	if !slices.Contains(keyIDs(b.Keys()), newID) {
		t.Fatalf("b lacks %s", newID)
	}

	// Garbage kids, from a keyring of another database.
	stranger, _, _ := newRing(t)
	garbage, _ := stranger.Sign(claims(clk, time.Hour), "at+jwt")
	verifyGarbage := func() {
		t.Helper()
		var c jwt.RegisteredClaims
		if err := vb.Verify(garbage, &c); !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("garbage kid: %v", err)
		}
	}
	before = lists()
	for range 50 {
		verifyGarbage() // within 5 s of the last reload: none
	}
	if n := lists() - before; n != 0 {
		t.Fatalf("%d reloads within the interval, want 0", n)
	}
	clk.Advance(missReloadInterval - time.Millisecond)
	verifyGarbage()
	if n := lists() - before; n != 0 {
		t.Fatalf("%d reloads just before the interval ended, want 0", n)
	}
	clk.Advance(time.Millisecond)
	var wg2 sync.WaitGroup
	for range 50 {
		wg2.Go(verifyGarbage)
	}
	wg2.Wait()
	if n := lists() - before; n != 1 {
		t.Fatalf("%d reloads after the interval, want 1", n)
	}
	clk.Advance(missReloadInterval)
	verifyGarbage()
	verifyGarbage()
	if n := lists() - before; n != 2 {
		t.Fatalf("%d reloads after two intervals, want 2", n)
	}

	// A token without a kid never reloads.
	clk.Advance(missReloadInterval)
	before = lists()
	if _, err := b.Keyfunc(&jwt.Token{Header: map[string]any{}}); !errors.Is(err, ErrUnknownKey) || lists() != before {
		t.Fatalf("no kid: %v, %d reloads", err, lists()-before)
	}
}

// A failed reload is reported with the unknown kid, and still counts against
// the rate limit.
func TestUnknownKidReloadFailure(t *testing.T) {
	k, ks, clk := newRing(t)
	failing := &failingList{KeyStore: ks}
	k.store = failing
	failing.fail.Store(true)
	tok := &jwt.Token{Header: map[string]any{"kid": "sig_missing"}}
	if _, err := k.Keyfunc(tok); !errors.Is(err, ErrUnknownKey) || !errors.Is(err, errListFailed) {
		t.Fatalf("err = %v", err)
	}
	if _, err := k.Keyfunc(tok); !errors.Is(err, ErrUnknownKey) || errors.Is(err, errListFailed) {
		t.Fatalf("second err = %v", err)
	}
	if n := failing.lists.Load(); n != 1 {
		t.Fatalf("%d lists, want 1", n)
	}
	// The keys held before the failure still verify.
	if _, err := k.Keyfunc(&jwt.Token{Header: map[string]any{"kid": k.ActiveKeyID()}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(missReloadInterval)
	if _, err := k.Keyfunc(tok); !errors.Is(err, errListFailed) || failing.lists.Load() != 2 {
		t.Fatalf("after the interval: %v, %d lists", err, failing.lists.Load())
	}
}

var errListFailed = errors.New("list failed")

type failingList struct {
	KeyStore
	fail  atomic.Bool
	lists atomic.Int64
}

func (f *failingList) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	f.lists.Add(1)
	if f.fail.Load() {
		return nil, errListFailed
	}
	return f.KeyStore.ListSigningKeys(ctx)
}

func TestKeyfuncHitDoesNotAllocate(t *testing.T) {
	k, _, _ := newRing(t)
	tok := &jwt.Token{Header: map[string]any{"kid": k.ActiveKeyID()}}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := k.Keyfunc(tok); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per hit", allocs)
	}
}

func BenchmarkKeyfuncHit(b *testing.B) {
	k, err := LoadKeyring(context.Background(), &memKeys{}, xorSealer{}, clock.NewFake(t0))
	if err != nil {
		b.Fatal(err)
	}
	tok := &jwt.Token{Header: map[string]any{"kid": k.ActiveKeyID()}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Keyfunc(tok); err != nil {
			b.Fatal(err)
		}
	}
}
