package storetest

import (
	"slices"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Apps and API keys.

func testApps(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	a1 := f.createApp(org.ID)
	a2 := f.createApp(org.ID)
	b1 := f.createApp(other.ID)

	wantEqual(t, "GetApp", must(s.GetApp(ctx, a1.ID))(t), a1)
	wantEqual(t, "GetAppByClientID", must(s.GetAppByClientID(ctx, a2.ClientID))(t), a2)
	byID := cmpopts.SortSlices(func(a, b store.App) bool { return a.ID < b.ID })
	wantEqual(t, "ListApps", must(s.ListApps(ctx, org.ID))(t), []store.App{a1, a2}, byID)
	wantEqual(t, "ListApps (other org)", must(s.ListApps(ctx, other.ID))(t), []store.App{b1}, byID)

	// Zero values round trip: nil slices and hashes come back empty.
	bare := store.App{ID: ids.New(ids.App), OrgID: org.ID, Name: "bare", ClientID: "bare-client"}
	mustDo(t, s.CreateApp(ctx, bare, auditValue("app.create")))
	wantEqual(t, "bare app", must(s.GetApp(ctx, bare.ID))(t), normalize(bare))
}

func testAppErrors(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	app := f.createApp(org.ID)

	tests := []struct {
		name   string
		mod    func(*store.App)
		target error
	}{
		{"duplicate ID", func(a *store.App) { a.ID = app.ID }, store.ErrAlreadyExists},
		{"duplicate client ID", func(a *store.App) { a.ClientID = app.ClientID }, store.ErrAlreadyExists},
		{"unknown organization", func(a *store.App) { a.OrgID = "org_missing" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		before := f.allAudit()
		a := f.appValue(org.ID)
		tt.mod(&a)
		wantErr(t, tt.name, s.CreateApp(ctx, a, auditValue("app.create")), tt.target)
		f.wantNewAudit(tt.name, before)
	}
	wantEqual(t, "apps after failed creations", must(s.ListApps(ctx, org.ID))(t), []store.App{app})

	before := f.allAudit()
	_, err := s.UpdateApp(ctx, "app_missing", func(a store.App) (store.App, error) { return a, nil }, auditValue("app.update"))
	wantErr(t, "UpdateApp of a missing app", err, store.ErrNotFound)
	_, err = s.DeleteApp(ctx, "app_missing", f.now(), auditValue("app.delete"))
	wantErr(t, "DeleteApp of a missing app", err, store.ErrNotFound)
	f.wantNewAudit("update and delete of a missing app", before)
}

func testUpdateApp(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	app := f.createApp(org.ID)

	later := f.now()
	before := f.allAudit()
	var seen store.App
	got, err := s.UpdateApp(ctx, app.ID, func(a store.App) (store.App, error) {
		seen = a
		a.ID = "app_changed"
		a.OrgID = other.ID
		a.ClientID = "changed-client"
		a.CreatedAt = later
		a.Name = "renamed"
		a.Environment = "test"
		a.SecretHash = hash("rotated secret")
		a.AllowedScopes = nil
		a.IPAllowlist = []string{"198.51.100.0/24"}
		a.TokensNotBefore = later
		a.UpdatedAt = later
		return a, nil
	}, auditValue("app.rotate_secret"))
	mustDo(t, err)
	wantEqual(t, "value passed to the update func", seen, app)
	want := app
	want.Name, want.Environment, want.SecretHash = "renamed", "test", hash("rotated secret")
	want.AllowedScopes, want.IPAllowlist, want.UpdatedAt = []string{}, []string{"198.51.100.0/24"}, normalize(later)
	want.TokensNotBefore = normalize(later)
	wantEqual(t, "UpdateApp result", got, want)
	wantEqual(t, "GetApp after update", must(s.GetApp(ctx, app.ID))(t), want)
	wantEqual(t, "GetAppByClientID after update", must(s.GetAppByClientID(ctx, app.ClientID))(t), want)
	wantErr(t, "changed client ID", second(s.GetAppByClientID(ctx, "changed-client")), store.ErrNotFound)
	f.wantNewAudit("UpdateApp", before, auditValue("app.rotate_secret"))

	before = f.allAudit()
	_, err = s.UpdateApp(ctx, app.ID, func(a store.App) (store.App, error) {
		a.Name = "never"
		return a, errBoom
	}, auditValue("app.update"))
	wantErr(t, "update func error", err, errBoom)
	wantEqual(t, "after failed update", must(s.GetApp(ctx, app.ID))(t), want)
	f.wantNewAudit("failed update", before)
}

func testDeleteApp(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	app := f.createApp(org.ID)
	otherApp := f.createApp(org.ID)
	earlier := f.now()

	active := f.createKey(org.ID, app.ID)
	revoked := f.createKey(org.ID, app.ID, func(k *store.APIKey) { k.RevokedAt = earlier })
	expired := f.createKey(org.ID, app.ID, func(k *store.APIKey) { k.ExpiresAt = earlier })
	ofOtherApp := f.createKey(org.ID, otherApp.ID)
	ofNoApp := f.createKey(org.ID, "")

	at := f.now()
	before := f.allAudit()
	revokedIDs, err := s.DeleteApp(ctx, app.ID, at, auditValue("app.delete"))
	mustDo(t, err)
	wantEqual(t, "revoked key IDs", revokedIDs, []string{active.ID, expired.ID}, cmpopts.SortSlices(func(a, b string) bool { return a < b }))
	f.wantNewAudit("DeleteApp", before, auditValue("app.delete"))

	wantErr(t, "GetApp after DeleteApp", second(s.GetApp(ctx, app.ID)), store.ErrNotFound)
	wantErr(t, "GetAppByClientID after DeleteApp", second(s.GetAppByClientID(ctx, app.ClientID)), store.ErrNotFound)
	wantEqual(t, "ListApps after DeleteApp", must(s.ListApps(ctx, org.ID))(t), []store.App{otherApp})

	// Keys keep their AppID, as history; only the app's unrevoked keys are
	// revoked, at the given time.
	active.RevokedAt, expired.RevokedAt = normalize(at), normalize(at)
	for _, want := range []store.APIKey{active, revoked, expired, ofOtherApp, ofNoApp} {
		wantEqual(t, "key "+want.ID+" after DeleteApp", must(s.GetAPIKey(ctx, want.ID))(t), want)
	}

	// The other app revokes only its own key.
	revokedIDs, err = s.DeleteApp(ctx, otherApp.ID, at, auditValue("app.delete"))
	mustDo(t, err)
	wantEqual(t, "revoked key IDs of the second app", revokedIDs, []string{ofOtherApp.ID})

	empty := f.createApp(org.ID)
	revokedIDs, err = s.DeleteApp(ctx, empty.ID, at, auditValue("app.delete"))
	mustDo(t, err)
	if revokedIDs == nil || len(revokedIDs) != 0 {
		t.Errorf("DeleteApp of an app without keys = %#v, want an empty, non-nil slice", revokedIDs)
	}

	_, err = s.DeleteApp(ctx, app.ID, at, auditValue("app.delete"))
	wantErr(t, "DeleteApp twice", err, store.ErrNotFound)
}

func testAPIKeys(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	app := f.createApp(org.ID)
	k := f.createKey(org.ID, app.ID, func(k *store.APIKey) {
		k.LastUsedAt = f.now()
		k.RevokedAt = f.now()
		k.Plan = "enterprise"
	})

	wantEqual(t, "GetAPIKey", must(s.GetAPIKey(ctx, k.ID))(t), k)
	wantEqual(t, "GetAPIKeyByHash", must(s.GetAPIKeyByHash(ctx, k.Hash))(t), k)

	// Zero values round trip: no app, scopes, allowlist or times.
	bare := store.APIKey{ID: ids.New(ids.APIKey), OrgID: org.ID, Name: "bare", Prefix: "tg_bare", Hash: hash("bare")}
	mustDo(t, s.CreateAPIKey(ctx, bare, auditValue("apikey.create")))
	wantEqual(t, "bare key", must(s.GetAPIKey(ctx, bare.ID))(t), normalize(bare))
	wantEqual(t, "bare key by hash", must(s.GetAPIKeyByHash(ctx, hash("bare")))(t), normalize(bare))
}

func testAPIKeyErrors(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	k := f.createKey(org.ID, "")

	tests := []struct {
		name   string
		mod    func(*store.APIKey)
		target error
	}{
		{"duplicate ID", func(v *store.APIKey) { v.ID = k.ID }, store.ErrAlreadyExists},
		{"duplicate hash", func(v *store.APIKey) { v.Hash = k.Hash }, store.ErrAlreadyExists},
		{"unknown organization", func(v *store.APIKey) { v.OrgID = "org_missing" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		before := f.allAudit()
		v := f.keyValue(org.ID, "")
		tt.mod(&v)
		wantErr(t, tt.name, s.CreateAPIKey(ctx, v, auditValue("apikey.create")), tt.target)
		f.wantNewAudit(tt.name, before)
	}
	wantEqual(t, "keys after failed creations", must(s.ListAPIKeys(ctx, org.ID))(t), []store.APIKey{k})

	before := f.allAudit()
	_, err := s.UpdateAPIKey(ctx, "key_missing", func(v store.APIKey) (store.APIKey, error) { return v, nil }, auditValue("apikey.update"))
	wantErr(t, "UpdateAPIKey of a missing key", err, store.ErrNotFound)
	f.wantNewAudit("update of a missing key", before)
}

func testListAPIKeys(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	oldest := f.now().Add(-time.Hour)

	k1 := f.createKey(org.ID, "")
	k2 := f.createKey(org.ID, "", func(k *store.APIKey) { k.RevokedAt = f.now() })
	k3 := f.createKey(org.ID, "", func(k *store.APIKey) { k.Plan = "enterprise" })
	// Created last but dated first: the order is by creation time.
	k0 := f.createKey(org.ID, "", func(k *store.APIKey) { k.CreatedAt = oldest })
	kOther := f.createKey(other.ID, "")

	wantEqual(t, "ListAPIKeys", must(s.ListAPIKeys(ctx, org.ID))(t), []store.APIKey{k3, k2, k1, k0})
	wantEqual(t, "ListAPIKeys (other org)", must(s.ListAPIKeys(ctx, other.ID))(t), []store.APIKey{kOther})
}

func testUpdateAPIKey(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	app := f.createApp(org.ID)
	k := f.createKey(org.ID, app.ID)

	later := f.now()
	before := f.allAudit()
	var seen store.APIKey
	got, err := s.UpdateAPIKey(ctx, k.ID, func(v store.APIKey) (store.APIKey, error) {
		seen = v
		v.ID = "key_changed"
		v.OrgID = other.ID
		v.Hash = hash("changed")
		v.Prefix = "tg_changed"
		v.CreatedAt = later
		v.Name = "renamed"
		v.Scopes = []string{"read", "admin"}
		v.IPAllowlist = nil
		v.ExpiresAt = time.Time{}
		v.RevokedAt = later
		v.UpdatedAt = later
		v.SigningSecret = nil
		v.SignatureRequired = false
		v.Plan = "gold"
		return v, nil
	}, auditValue("apikey.revoke"))
	mustDo(t, err)
	wantEqual(t, "value passed to the update func", seen, k)
	want := k
	want.Name, want.Scopes, want.IPAllowlist = "renamed", []string{"read", "admin"}, []string{}
	want.ExpiresAt, want.RevokedAt, want.UpdatedAt = time.Time{}, normalize(later), normalize(later)
	want.SigningSecret, want.SignatureRequired, want.Plan = []byte{}, false, "gold"
	wantEqual(t, "UpdateAPIKey result", got, want)
	wantEqual(t, "GetAPIKey after update", must(s.GetAPIKey(ctx, k.ID))(t), want)
	wantEqual(t, "GetAPIKeyByHash after update", must(s.GetAPIKeyByHash(ctx, k.Hash))(t), want)
	wantErr(t, "changed hash", second(s.GetAPIKeyByHash(ctx, hash("changed"))), store.ErrNotFound)
	wantErr(t, "changed ID", second(s.GetAPIKey(ctx, "key_changed")), store.ErrNotFound)
	f.wantNewAudit("UpdateAPIKey", before, auditValue("apikey.revoke"))

	before = f.allAudit()
	_, err = s.UpdateAPIKey(ctx, k.ID, func(v store.APIKey) (store.APIKey, error) {
		v.Scopes = append(slices.Clone(v.Scopes), "never")
		return v, errBoom
	}, auditValue("apikey.update"))
	wantErr(t, "update func error", err, errBoom)
	wantEqual(t, "after failed update", must(s.GetAPIKey(ctx, k.ID))(t), want)
	f.wantNewAudit("failed update", before)
}

func testTouchAPIKeys(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	a := f.createKey(org.ID, "")
	b := f.createKey(org.ID, "")
	t1, t2, t3 := f.now(), f.now(), f.now()

	steps := []struct {
		name  string
		touch map[string]time.Time
		wantA time.Time
		wantB time.Time
	}{
		{"nothing", map[string]time.Time{}, time.Time{}, time.Time{}},
		{"first use", map[string]time.Time{a.ID: t2}, t2, time.Time{}},
		{"earlier time is ignored", map[string]time.Time{a.ID: t1, b.ID: t1}, t2, t1},
		{"same time", map[string]time.Time{a.ID: t2}, t2, t1},
		{"later time", map[string]time.Time{a.ID: t3, b.ID: t2}, t3, t2},
		{"unknown IDs are ignored", map[string]time.Time{"key_missing": t3, b.ID: t3}, t3, t3},
	}
	before := f.allAudit()
	for _, st := range steps {
		mustDo(t, s.TouchAPIKeys(ctx, st.touch))
		a.LastUsedAt, b.LastUsedAt = normalize(st.wantA), normalize(st.wantB)
		wantEqual(t, st.name+": key a", must(s.GetAPIKey(ctx, a.ID))(t), a)
		wantEqual(t, st.name+": key b", must(s.GetAPIKey(ctx, b.ID))(t), b)
	}
	mustDo(t, s.TouchAPIKeys(ctx, nil))
	f.wantNewAudit("TouchAPIKeys (not audited)", before)
	wantErr(t, "touched unknown key", second(s.GetAPIKey(ctx, "key_missing")), store.ErrNotFound)
}
