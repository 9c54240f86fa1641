package tokens

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// The signing key table also holds the ES256K keys of package respsign:
// Rotate and Prune must neither retire nor delete them, and they must not
// stand in for the signing RS256 key.
func TestRotateAndPruneIgnoreOtherAlgorithms(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	r0 := k.ActiveKeyID()
	other := func(created, retired time.Time) string {
		t.Helper()
		id := ids.New(ids.SigningKey)
		sk := store.SigningKey{ID: id, Algorithm: "ES256K", PrivateKey: []byte("sealed elsewhere"),
			CreatedAt: created, RetiredAt: retired}
		if err := st.CreateSigningKey(ctx, sk); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// e0 signs responses; e1 was retired long ago.
	e1 := other(t0.Add(-48*time.Hour), t0.Add(-24*time.Hour))
	clk.Advance(time.Minute)
	e0 := other(clk.Now(), time.Time{})

	clk.Advance(time.Minute)
	r1, retired, err := k.Rotate(ctx)
	if err != nil || !slices.Equal(retired, []string{r0}) {
		t.Fatalf("rotate retired %v, %v; want [%s]", retired, err, r0)
	}
	if ids := keyIDs(k.Keys()); !slices.Equal(ids, []string{r0, r1}) {
		t.Fatalf("keys = %v", ids)
	}

	// A newer ES256K key must not pass for the signing key, so r1 is kept
	// even when retired behind the keyring's back.
	clk.Advance(time.Minute)
	e2 := other(clk.Now(), time.Time{})
	clk.Advance(time.Hour)
	deleted, err := k.Prune(ctx, 0)
	if err != nil || !slices.Equal(deleted, []string{r0}) {
		t.Fatalf("prune = %v, %v; want [%s]", deleted, err, r0)
	}
	if err := st.RetireSigningKey(ctx, r1, clk.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if deleted, err := k.Prune(ctx, 0); err != nil || len(deleted) != 0 {
		t.Fatalf("prune with the RS256 key retired = %v, %v", deleted, err)
	}

	stored, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.SigningKey{}
	for _, s := range stored {
		got[s.ID] = s
	}
	for _, id := range []string{e0, e1, e2, r1} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s deleted", id)
		}
	}
	if !got[e0].RetiredAt.IsZero() || !got[e2].RetiredAt.IsZero() {
		t.Errorf("ES256K keys retired: %+v, %+v", got[e0], got[e2])
	}
	if !got[e1].RetiredAt.Equal(t0.Add(-24 * time.Hour)) {
		t.Errorf("retired ES256K key changed: %+v", got[e1])
	}
	if len(stored) != 4 {
		t.Errorf("stored = %+v", stored)
	}
}
