package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Races. Run the suite with -race.

// testConcurrentUpdateAPIKey: goroutines that each add a scope to the same
// key all see their scope stored; no update is lost.
func testConcurrentUpdateAPIKey(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const n = 20
	org, _ := f.createOrg()
	k := f.createKey(org.ID, "", func(k *store.APIKey) { k.Scopes = []string{"base"} })
	before := f.allAudit()

	errs := runAll(n, func(i int) error {
		scope := fmt.Sprintf("scope-%02d", i)
		_, err := s.UpdateAPIKey(ctx, k.ID, func(v store.APIKey) (store.APIKey, error) {
			// No side effects: the func may run more than once.
			v.Scopes = append(slices.Clone(v.Scopes), scope)
			return v, nil
		}, auditValue("apikey.add_scope"))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}

	want := []string{"base"}
	for i := range n {
		want = append(want, fmt.Sprintf("scope-%02d", i))
	}
	got := must(s.GetAPIKey(ctx, k.ID))(t)
	wantEqual(t, "scopes after concurrent updates", slices.Sorted(slices.Values(got.Scopes)), want)
	if got.Scopes[0] != "base" {
		t.Errorf("scopes after concurrent updates = %q, want the original scope first", got.Scopes)
	}
	wantAudit := make([]store.AuditEntry, n)
	for i := range wantAudit {
		wantAudit[i] = auditValue("apikey.add_scope")
	}
	f.wantNewAudit("concurrent updates", before, wantAudit...)
}

// testConcurrentRotateRefreshToken: of goroutines that rotate the same token
// at once, exactly one succeeds; the others get ErrTokenUsed with the token
// as the winner left it (used, by the winner), and only the winner's
// successor is stored.
func testConcurrentRotateRefreshToken(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const n = 10
	_, u := f.createOrg()
	fam := ids.New(ids.Family)
	old := f.createToken(u.ID, fam)
	next := make([]store.RefreshToken, n)
	for i := range next {
		next[i] = f.tokenValue(u.ID, fam)
	}
	at := f.now()

	olds := make([]store.RefreshToken, n)
	errs := runAll(n, func(i int) error {
		var err error
		olds[i], err = s.RotateRefreshToken(ctx, old.Hash, next[i], at, []byte(fmt.Sprint("client ", i)))
		return err
	})
	winner := -1
	for i, err := range errs {
		_, getErr := s.GetRefreshTokenByHash(ctx, next[i].Hash)
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("rotations %d and %d of one token both succeeded", winner, i)
			}
			winner = i
			mustDo(t, getErr)
		case errors.Is(err, store.ErrTokenUsed):
			wantErr(t, fmt.Sprintf("successor %d of a losing rotation", i), getErr, store.ErrNotFound)
		default:
			t.Errorf("rotation %d: %v, want nil or ErrTokenUsed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no rotation of the token succeeded")
	}
	old.UsedAt, old.UsedBy = normalize(at), []byte(fmt.Sprint("client ", winner))
	wantEqual(t, "old token after the race", must(s.GetRefreshTokenByHash(ctx, old.Hash))(t), old)
	for i, err := range errs {
		if err != nil {
			wantEqual(t, fmt.Sprintf("old token returned to loser %d", i), olds[i], old)
		}
	}
}

// runAll runs fn(0) … fn(n-1) in n goroutines released at the same moment,
// and returns their errors by index.
func runAll(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-startGate
			errs[i] = fn(i)
		})
	}
	close(startGate)
	wg.Wait()
	return errs
}
