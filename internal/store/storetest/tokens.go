package storetest

import (
	"errors"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Plans, signing keys and refresh tokens.

func testPlans(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	pro := store.Plan{Name: "pro", RequestsPerSecond: 12.5, Burst: 25, QuotaUnits: 1_000_000, QuotaPeriod: "month", UpdatedAt: f.now()}
	free := store.Plan{Name: "free", RequestsPerSecond: 1, Burst: 2, QuotaUnits: 1000, QuotaPeriod: "day", UpdatedAt: f.now()}
	unlimited := store.Plan{Name: "unlimited", QuotaPeriod: "hour"}
	for _, p := range []store.Plan{pro, unlimited, free} {
		mustDo(t, s.UpsertPlan(ctx, p))
	}
	pro, free = normalize(pro), normalize(free)

	wantEqual(t, "GetPlan", must(s.GetPlan(ctx, "pro"))(t), pro)
	wantEqual(t, "GetPlan (zero values)", must(s.GetPlan(ctx, "unlimited"))(t), unlimited)
	wantEqual(t, "ListPlans (by name)", must(s.ListPlans(ctx))(t), []store.Plan{free, pro, unlimited})

	// UpsertPlan replaces every field.
	replaced := store.Plan{Name: "pro", RequestsPerSecond: 50, Burst: 0, QuotaUnits: 0, QuotaPeriod: "hour", UpdatedAt: f.now()}
	mustDo(t, s.UpsertPlan(ctx, replaced))
	replaced = normalize(replaced)
	wantEqual(t, "GetPlan after upsert", must(s.GetPlan(ctx, "pro"))(t), replaced)
	wantEqual(t, "ListPlans after upsert", must(s.ListPlans(ctx))(t), []store.Plan{free, replaced, unlimited})
	wantErr(t, "GetPlan of a missing plan", second(s.GetPlan(ctx, "missing")), store.ErrNotFound)
}

func testSigningKeys(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	k2 := f.signingKeyValue()
	k3 := f.signingKeyValue()
	k1 := f.signingKeyValue()
	k1.CreatedAt = k2.CreatedAt.Add(-time.Hour) // created last, dated first
	retired := f.now()
	k3.RetiredAt = retired
	for _, k := range []store.SigningKey{k2, k3, k1} {
		mustDo(t, s.CreateSigningKey(ctx, k))
	}
	k1, k2, k3 = normalize(k1), normalize(k2), normalize(k3)
	wantEqual(t, "ListSigningKeys (oldest first)", must(s.ListSigningKeys(ctx))(t), []store.SigningKey{k1, k2, k3})

	mustDo(t, s.ResealSigningKey(ctx, k2.ID, []byte("resealed")))
	k2.PrivateKey = []byte("resealed")
	wantEqual(t, "ListSigningKeys after a reseal", must(s.ListSigningKeys(ctx))(t), []store.SigningKey{k1, k2, k3})
	wantErr(t, "ResealSigningKey of an unknown key", s.ResealSigningKey(ctx, "sig_missing", []byte("x")), store.ErrNotFound)

	dup := f.signingKeyValue()
	dup.ID = k1.ID
	wantErr(t, "CreateSigningKey with a duplicate ID", s.CreateSigningKey(ctx, dup), store.ErrAlreadyExists)

	steps := []struct {
		name   string
		do     func() error
		target error // nil: must succeed
		want   []store.SigningKey
	}{
		{
			name: "retire k1",
			do:   func() error { return s.RetireSigningKey(ctx, k1.ID, retired.Add(time.Minute)) },
			want: []store.SigningKey{with(k1, func(k *store.SigningKey) { k.RetiredAt = normalize(retired.Add(time.Minute)) }), k2, k3},
		},
		{
			name: "retiring a retired key keeps its time",
			do:   func() error { return s.RetireSigningKey(ctx, k1.ID, retired.Add(time.Hour)) },
			want: []store.SigningKey{with(k1, func(k *store.SigningKey) { k.RetiredAt = normalize(retired.Add(time.Minute)) }), k2, k3},
		},
		{
			name:   "retire a missing key",
			do:     func() error { return s.RetireSigningKey(ctx, "sig_missing", retired) },
			target: store.ErrNotFound,
			want:   []store.SigningKey{with(k1, func(k *store.SigningKey) { k.RetiredAt = normalize(retired.Add(time.Minute)) }), k2, k3},
		},
		{
			name: "delete k3",
			do:   func() error { return s.DeleteSigningKey(ctx, k3.ID) },
			want: []store.SigningKey{with(k1, func(k *store.SigningKey) { k.RetiredAt = normalize(retired.Add(time.Minute)) }), k2},
		},
		{
			name:   "delete k3 again",
			do:     func() error { return s.DeleteSigningKey(ctx, k3.ID) },
			target: store.ErrNotFound,
			want:   []store.SigningKey{with(k1, func(k *store.SigningKey) { k.RetiredAt = normalize(retired.Add(time.Minute)) }), k2},
		},
	}
	for _, st := range steps {
		err := st.do()
		if st.target == nil {
			mustDo(t, err)
		} else {
			wantErr(t, st.name, err, st.target)
		}
		wantEqual(t, st.name+": ListSigningKeys", must(s.ListSigningKeys(ctx))(t), st.want)
	}
}

// with returns a copy of v changed by mod.
func with[T any](v T, mod func(*T)) T {
	mod(&v)
	return v
}

func testRefreshTokens(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	_, u := f.createOrg()
	fam := ids.New(ids.Family)
	tok := f.createToken(u.ID, fam, func(r *store.RefreshToken) {
		r.UsedAt = f.now()
		r.UsedBy = []byte("client digest")
		r.RevokedAt = f.now()
	})
	wantEqual(t, "GetRefreshTokenByHash", must(s.GetRefreshTokenByHash(ctx, tok.Hash))(t), tok)

	bare := store.RefreshToken{ID: ids.New(ids.RefreshToken), FamilyID: fam, UserID: u.ID, Hash: hash("bare")}
	mustDo(t, s.CreateRefreshToken(ctx, bare))
	wantEqual(t, "GetRefreshTokenByHash (zero values)", must(s.GetRefreshTokenByHash(ctx, bare.Hash))(t), normalize(bare))

	tests := []struct {
		name   string
		mod    func(*store.RefreshToken)
		target error
	}{
		{"duplicate ID", func(r *store.RefreshToken) { r.ID = tok.ID }, store.ErrAlreadyExists},
		{"duplicate hash", func(r *store.RefreshToken) { r.Hash = tok.Hash }, store.ErrAlreadyExists},
		{"unknown user", func(r *store.RefreshToken) { r.UserID = "usr_missing" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		r := f.tokenValue(u.ID, fam)
		tt.mod(&r)
		wantErr(t, tt.name, s.CreateRefreshToken(ctx, r), tt.target)
		if tt.name != "duplicate hash" {
			wantErr(t, tt.name+": created anyway", second(s.GetRefreshTokenByHash(ctx, r.Hash)), store.ErrNotFound)
		}
	}
	wantEqual(t, "token after failed creations", must(s.GetRefreshTokenByHash(ctx, tok.Hash))(t), tok)
}

func testRotateRefreshToken(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, u := f.createOrg()
	v := f.createUser(org.ID)
	fam := ids.New(ids.Family)
	t1 := f.createToken(u.ID, fam)
	t2 := normalize(f.tokenValue(u.ID, fam))
	t3 := normalize(f.tokenValue(u.ID, fam))
	revokedFam := ids.New(ids.Family)
	revoked := f.createToken(u.ID, revokedFam, func(r *store.RefreshToken) { r.RevokedAt = f.now() })
	// A token of a family one of whose tokens is revoked.
	sibling := f.createToken(u.ID, revokedFam)
	at1, at2 := f.now(), f.now()
	by1, by2 := []byte("client one"), []byte("client two")

	type stored struct {
		tok  store.RefreshToken
		want store.RefreshToken // zero: must not exist
	}
	t1Used := with(t1, func(r *store.RefreshToken) { r.UsedAt, r.UsedBy = normalize(at1), by1 })
	t2Used := with(t2, func(r *store.RefreshToken) { r.UsedAt, r.UsedBy = normalize(at2), by2 })

	steps := []struct {
		name    string
		oldHash []byte
		next    store.RefreshToken
		at      time.Time
		by      []byte
		target  error              // nil: must succeed
		wantOld store.RefreshToken // returned with nil or ErrTokenUsed
		after   []stored
	}{
		{
			name: "next of another family", oldHash: t1.Hash,
			next:   with(t2, func(r *store.RefreshToken) { r.FamilyID = ids.New(ids.Family) }),
			at:     at1,
			target: errAny,
			after:  []stored{{t1, t1}, {t2, store.RefreshToken{}}},
		},
		{
			name: "next of another user", oldHash: t1.Hash,
			next:   with(t2, func(r *store.RefreshToken) { r.UserID = v.ID }),
			at:     at1,
			target: errAny,
			after:  []stored{{t1, t1}, {t2, store.RefreshToken{}}},
		},
		{
			name: "next with a taken hash", oldHash: t1.Hash,
			next:   with(t2, func(r *store.RefreshToken) { r.Hash = revoked.Hash }),
			at:     at1,
			target: store.ErrAlreadyExists,
			after:  []stored{{t1, t1}, {t2, store.RefreshToken{}}},
		},
		{
			name: "rotate t1 to t2", oldHash: t1.Hash, next: t2, at: at1, by: by1,
			wantOld: t1Used,
			after:   []stored{{t1, t1Used}, {t2, t2}},
		},
		{
			name: "t1 again (reuse), by another client", oldHash: t1.Hash, next: t3, at: at2, by: by2,
			target: store.ErrTokenUsed, wantOld: t1Used,
			after: []stored{{t1, t1Used}, {t2, t2}, {t3, store.RefreshToken{}}},
		},
		{
			name: "rotate t2 to t3", oldHash: t2.Hash, next: t3, at: at2, by: by2,
			wantOld: t2Used,
			after:   []stored{{t1, t1Used}, {t2, t2Used}, {t3, t3}},
		},
		{
			name: "revoked token", oldHash: revoked.Hash, next: normalize(f.tokenValue(u.ID, revokedFam)), at: at2, by: by1,
			target: store.ErrTokenUsed, wantOld: revoked,
			after: []stored{{revoked, revoked}},
		},
		{
			name: "unused token of a revoked family", oldHash: sibling.Hash, next: normalize(f.tokenValue(u.ID, revokedFam)), at: at2, by: by1,
			target: store.ErrTokenUsed, wantOld: sibling,
			after: []stored{{sibling, sibling}},
		},
		{
			name: "unknown hash", oldHash: hash("missing"), next: normalize(f.tokenValue(u.ID, fam)), at: at2,
			target: store.ErrNotFound,
		},
	}
	for _, st := range steps {
		old, err := s.RotateRefreshToken(ctx, st.oldHash, st.next, st.at, st.by)
		switch {
		case st.target == nil:
			mustDo(t, err)
		case errors.Is(st.target, errAny):
			if err == nil {
				t.Errorf("%s: no error", st.name)
			}
		default:
			wantErr(t, st.name, err, st.target)
		}
		if st.target == nil || errors.Is(st.target, store.ErrTokenUsed) {
			wantEqual(t, st.name+": old token returned", old, st.wantOld)
		}
		if errors.Is(st.target, store.ErrNotFound) {
			st.after = append(st.after, stored{st.next, store.RefreshToken{}})
		}
		for _, a := range st.after {
			got, err := s.GetRefreshTokenByHash(ctx, a.tok.Hash)
			if a.want.ID == "" {
				wantErr(t, st.name+": token "+a.tok.ID+" exists", err, store.ErrNotFound)
				continue
			}
			mustDo(t, err)
			wantEqual(t, st.name+": token "+a.tok.ID, got, a.want)
		}
	}
}

func testRevokeRefreshTokens(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, u := f.createOrg()
	v := f.createUser(org.ID)
	famA, famB, famV := ids.New(ids.Family), ids.New(ids.Family), ids.New(ids.Family)
	earlier := f.now()
	a1 := f.createToken(u.ID, famA, func(r *store.RefreshToken) { r.UsedAt = earlier })
	a2 := f.createToken(u.ID, famA, func(r *store.RefreshToken) { r.RevokedAt = earlier })
	a3 := f.createToken(u.ID, famA)
	b1 := f.createToken(u.ID, famB)
	v1 := f.createToken(v.ID, famV)
	at1, at2 := f.now(), f.now()

	revokedAt := func(r store.RefreshToken, at time.Time) store.RefreshToken {
		r.RevokedAt = normalize(at)
		return r
	}
	steps := []struct {
		name string
		do   func() error
		want []store.RefreshToken
	}{
		{
			name: "revoke family A",
			do:   func() error { return s.RevokeRefreshTokenFamily(ctx, famA, at1) },
			want: []store.RefreshToken{revokedAt(a1, at1), a2, revokedAt(a3, at1), b1, v1},
		},
		{
			name: "revoke an unknown family",
			do:   func() error { return s.RevokeRefreshTokenFamily(ctx, "fam_missing", at1) },
			want: []store.RefreshToken{revokedAt(a1, at1), a2, revokedAt(a3, at1), b1, v1},
		},
		{
			name: "revoke the user's tokens",
			do:   func() error { return s.RevokeUserRefreshTokens(ctx, u.ID, at2) },
			want: []store.RefreshToken{revokedAt(a1, at1), a2, revokedAt(a3, at1), revokedAt(b1, at2), v1},
		},
		{
			name: "revoke an unknown user's tokens",
			do:   func() error { return s.RevokeUserRefreshTokens(ctx, "usr_missing", at2) },
			want: []store.RefreshToken{revokedAt(a1, at1), a2, revokedAt(a3, at1), revokedAt(b1, at2), v1},
		},
	}
	for _, st := range steps {
		mustDo(t, st.do())
		for _, want := range st.want {
			wantEqual(t, st.name+": token "+want.ID, must(s.GetRefreshTokenByHash(ctx, want.Hash))(t), want)
		}
	}

	// A revoked token cannot be rotated.
	_, err := s.RotateRefreshToken(ctx, a3.Hash, f.tokenValue(u.ID, famA), f.now(), nil)
	wantErr(t, "rotate a token of a revoked family", err, store.ErrTokenUsed)
}

func testRefreshFamilies(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	_, u := f.createOrg()
	fam, other := ids.New(ids.Family), ids.New(ids.Family)
	t1 := f.createToken(u.ID, fam)
	f.createToken(u.ID, other)
	live := store.RefreshFamily{ID: fam, UserID: u.ID}
	wantEqual(t, "live family", must(s.GetRefreshFamily(ctx, fam))(t), live)
	wantErr(t, "unknown family", second(s.GetRefreshFamily(ctx, "fam_missing")), store.ErrNotFound)

	// A rotation keeps the family live.
	t2 := f.tokenValue(u.ID, fam)
	must(s.RotateRefreshToken(ctx, t1.Hash, t2, f.now(), []byte("client")))(t)
	wantEqual(t, "family after a rotation", must(s.GetRefreshFamily(ctx, fam))(t), live)

	// A token revoked on its own revokes the family, at the earliest
	// revocation.
	early, late := f.now(), f.now().Add(time.Hour)
	f.createToken(u.ID, fam, func(r *store.RefreshToken) { r.RevokedAt = late })
	f.createToken(u.ID, fam, func(r *store.RefreshToken) { r.RevokedAt = early })
	wantEqual(t, "family with revoked tokens", must(s.GetRefreshFamily(ctx, fam))(t),
		store.RefreshFamily{ID: fam, UserID: u.ID, RevokedAt: normalize(early)})
	// The live token of that family can no longer be rotated.
	_, err := s.RotateRefreshToken(ctx, t2.Hash, f.tokenValue(u.ID, fam), f.now(), nil)
	wantErr(t, "rotate in a revoked family", err, store.ErrTokenUsed)
	wantEqual(t, "other family", must(s.GetRefreshFamily(ctx, other))(t), store.RefreshFamily{ID: other, UserID: u.ID})

	// Revoking the user's tokens revokes every family of theirs.
	at := f.now().Add(2 * time.Hour)
	mustDo(t, s.RevokeUserRefreshTokens(ctx, u.ID, at))
	wantEqual(t, "other family after the user's revocation", must(s.GetRefreshFamily(ctx, other))(t),
		store.RefreshFamily{ID: other, UserID: u.ID, RevokedAt: normalize(at)})
}

func testRevokedTokens(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	now := f.now()
	soon := store.RevokedToken{JTI: "jti-soon", ClientID: "client-a", ExpiresAt: now.Add(time.Hour), RevokedAt: now}
	late := store.RevokedToken{JTI: "jti-late", ClientID: "client-b", ExpiresAt: now.Add(48 * time.Hour), RevokedAt: now}

	wantEqual(t, "unknown jti revoked", must(s.AccessTokenRevoked(ctx, "jti-soon"))(t), false)
	before := f.allAudit()
	mustDo(t, s.RevokeAccessToken(ctx, soon, auditValue("token.revoke")))
	mustDo(t, s.RevokeAccessToken(ctx, late, auditValue("token.revoke")))
	f.wantNewAudit("RevokeAccessToken", before, auditValue("token.revoke"), auditValue("token.revoke"))
	wantEqual(t, "revoked jti", must(s.AccessTokenRevoked(ctx, "jti-soon"))(t), true)

	// A second revocation is not an error and writes no audit entry.
	before = f.allAudit()
	mustDo(t, s.RevokeAccessToken(ctx, soon, auditValue("token.revoke")))
	f.wantNewAudit("second RevokeAccessToken", before)

	// Purging forgets only the tokens expired before the bound.
	wantEqual(t, "purged nothing", must(s.PurgeRevokedTokens(ctx, now))(t), int64(0))
	wantEqual(t, "purged", must(s.PurgeRevokedTokens(ctx, now.Add(2*time.Hour)))(t), int64(1))
	wantEqual(t, "purged jti revoked", must(s.AccessTokenRevoked(ctx, "jti-soon"))(t), false)
	wantEqual(t, "kept jti revoked", must(s.AccessTokenRevoked(ctx, "jti-late"))(t), true)
}
