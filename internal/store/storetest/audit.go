package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// The audit log.

func testAppendAudit(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx

	// Given ID and Time are kept.
	full := store.AuditEntry{
		ID:         ids.New(ids.Audit),
		Time:       f.now(),
		OrgID:      "org_x",
		ActorType:  store.ActorUser,
		ActorID:    "usr_x",
		Action:     "user.login_failed",
		TargetType: "user",
		TargetID:   "usr_x",
		IP:         "2001:db8::1",
		Details:    map[string]string{"reason": "bad password", "attempt": "3"},
	}
	mustDo(t, s.AppendAudit(ctx, full))
	wantEqual(t, "ListAudit", f.allAudit(), []store.AuditEntry{normalize(full)})

	// Missing ID and Time are filled in; nil details read back empty.
	bare := store.AuditEntry{ActorType: store.ActorSystem, Action: "system.start"}
	before := f.allAudit()
	mustDo(t, s.AppendAudit(ctx, bare))
	added := f.wantNewAudit("AppendAudit without ID and Time", before, bare)
	if len(added) == 1 && !ids.Valid(ids.Audit, added[0].ID) {
		t.Errorf("filled-in audit ID %q is not an audit identifier", added[0].ID)
	}

	dup := bare
	dup.ID = full.ID
	wantErr(t, "AppendAudit with a duplicate ID", s.AppendAudit(ctx, dup), store.ErrAlreadyExists)
}

func testListAudit(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	t0, t1, t2, t3 := f.now(), f.now(), f.now(), f.now()
	entry := func(id string, at time.Time, orgID, targetID string) store.AuditEntry {
		return store.AuditEntry{ID: id, Time: at, OrgID: orgID, ActorType: store.ActorAdmin, Action: "test." + id, TargetID: targetID}
	}
	e1 := entry("aud_1", t0, "org_a", "x")
	e2 := entry("aud_2a", t1, "org_a", "y") // e2 and e3 share a time: by ID, descending
	e3 := entry("aud_2b", t1, "org_b", "x")
	e4 := entry("aud_3", t2, "", "z")
	e5 := entry("aud_4", t3, "org_a", "x")
	for _, e := range []store.AuditEntry{e3, e1, e5, e2, e4} {
		mustDo(t, s.AppendAudit(ctx, e))
	}
	e1, e2, e3, e4, e5 = normalize(e1), normalize(e2), normalize(e3), normalize(e4), normalize(e5)

	tests := []struct {
		name   string
		filter store.AuditFilter
		want   []store.AuditEntry
	}{
		{"all, newest first", store.AuditFilter{}, []store.AuditEntry{e5, e4, e3, e2, e1}},
		{"org", store.AuditFilter{OrgID: "org_a"}, []store.AuditEntry{e5, e2, e1}},
		{"target", store.AuditFilter{TargetID: "x"}, []store.AuditEntry{e5, e3, e1}},
		{"org and target", store.AuditFilter{OrgID: "org_a", TargetID: "x"}, []store.AuditEntry{e5, e1}},
		{"before (strictly)", store.AuditFilter{Before: normalize(t2)}, []store.AuditEntry{e3, e2, e1}},
		{"before a tie", store.AuditFilter{Before: normalize(t1)}, []store.AuditEntry{e1}},
		{"before the first", store.AuditFilter{Before: normalize(t0)}, []store.AuditEntry{}},
		{"limit", store.AuditFilter{Limit: 2}, []store.AuditEntry{e5, e4}},
		{"limit within a tie", store.AuditFilter{Limit: 3}, []store.AuditEntry{e5, e4, e3}},
		{"org, before, limit", store.AuditFilter{OrgID: "org_a", Before: normalize(t3), Limit: 1}, []store.AuditEntry{e2}},
		{"unknown org", store.AuditFilter{OrgID: "org_missing"}, []store.AuditEntry{}},
		{"actions", store.AuditFilter{Actions: []string{"test.aud_1", "test.aud_4", "test.none"}}, []store.AuditEntry{e5, e1}},
		{"org and an action", store.AuditFilter{OrgID: "org_b", Actions: []string{"test.aud_1"}}, []store.AuditEntry{}},
	}
	for _, tt := range tests {
		wantEqual(t, "ListAudit "+tt.name, must(s.ListAudit(ctx, tt.filter))(t), tt.want)
	}
}

func testListAuditLimit(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const (
		defaultLimit = 100
		maxLimit     = 1000
	)
	n := defaultLimit + 1
	if !testing.Short() {
		n = maxLimit + 1
	}
	at := f.now()
	for i := range n {
		mustDo(t, s.AppendAudit(ctx, store.AuditEntry{
			ID:        fmt.Sprintf("aud_%05d", i),
			Time:      at.Add(time.Duration(i) * time.Millisecond),
			ActorType: store.ActorSystem,
			Action:    "test.limit",
		}))
	}
	newest := fmt.Sprintf("aud_%05d", n-1)

	got := must(s.ListAudit(ctx, store.AuditFilter{}))(t)
	if len(got) != defaultLimit || got[0].ID != newest {
		t.Errorf("ListAudit with no limit: %d entries from %q, want %d from %q", len(got), firstID(got), defaultLimit, newest)
	}
	if n > maxLimit {
		got = must(s.ListAudit(ctx, store.AuditFilter{Limit: maxLimit * 5}))(t)
		if len(got) != maxLimit || got[0].ID != newest {
			t.Errorf("ListAudit with limit %d: %d entries from %q, want %d from %q", maxLimit*5, len(got), firstID(got), maxLimit, newest)
		}
	}
}

func firstID(entries []store.AuditEntry) string {
	if len(entries) == 0 {
		return ""
	}
	return entries[0].ID
}

// testAuditAtomicity runs every audited method once, and checks that each
// call that succeeds adds exactly its entry (ID and Time filled in, TargetID
// filled in with the created object's ID when the method creates it and the
// caller left it empty), and that each call that fails adds none.
func testAuditAtomicity(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	var (
		org   store.Organization
		owner store.User
		user  store.User
		app   store.App
		key   store.APIKey
	)
	// targeted returns the entry for an action on an existing object.
	targeted := func(action, targetID string) store.AuditEntry {
		a := auditValue(action)
		a.TargetID = targetID
		return a
	}
	steps := []struct {
		name string
		a    func() store.AuditEntry
		// do runs the call with the entry; it returns the ID of the object
		// it creates, if any.
		do func(a store.AuditEntry) (created string, err error)
		// fails: the call must fail and add no entry.
		fails bool
	}{
		{
			name: "CreateOrganizationWithOwner",
			do: func(a store.AuditEntry) (string, error) {
				org = f.orgValue()
				owner = f.userValue(org.ID)
				return org.ID, s.CreateOrganizationWithOwner(ctx, org, owner, a)
			},
		},
		{
			name: "CreateUser",
			do: func(a store.AuditEntry) (string, error) {
				user = f.userValue(org.ID)
				return user.ID, s.CreateUser(ctx, user, a)
			},
		},
		{
			name: "CreateUser with a taken email", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				u := f.userValue(org.ID)
				u.Email = user.Email
				return u.ID, s.CreateUser(ctx, u, a)
			},
		},
		{
			name: "UpdateOrganization",
			a:    func() store.AuditEntry { return targeted("UpdateOrganization", org.ID) },
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
					o.Plan = "enterprise"
					return o, nil
				}, a)
				return "", err
			},
		},
		{
			name: "UpdateUser",
			a:    func() store.AuditEntry { return targeted("UpdateUser", user.ID) },
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateUser(ctx, user.ID, func(u store.User) (store.User, error) {
					u.Status = store.UserDisabled
					return u, nil
				}, a)
				return "", err
			},
		},
		{
			name: "UpdateUser failing", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateUser(ctx, user.ID, func(u store.User) (store.User, error) { return u, errBoom }, a)
				return "", err
			},
		},
		{
			name: "CreateApp",
			do: func(a store.AuditEntry) (string, error) {
				app = f.appValue(org.ID)
				return app.ID, s.CreateApp(ctx, app, a)
			},
		},
		{
			name: "CreateApp with a taken client ID", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				v := f.appValue(org.ID)
				v.ClientID = app.ClientID
				return v.ID, s.CreateApp(ctx, v, a)
			},
		},
		{
			name: "UpdateApp",
			a:    func() store.AuditEntry { return targeted("UpdateApp", app.ID) },
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateApp(ctx, app.ID, func(v store.App) (store.App, error) {
					v.SecretHash = hash("rotated")
					return v, nil
				}, a)
				return "", err
			},
		},
		{
			name: "UpdateApp failing", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateApp(ctx, app.ID, func(v store.App) (store.App, error) { return v, errBoom }, a)
				return "", err
			},
		},
		{
			name: "CreateAPIKey",
			do: func(a store.AuditEntry) (string, error) {
				key = f.keyValue(org.ID, app.ID)
				return key.ID, s.CreateAPIKey(ctx, key, a)
			},
		},
		{
			name: "CreateAPIKey with a given TargetID",
			a:    func() store.AuditEntry { return targeted("CreateAPIKey with a given TargetID", "given") },
			do: func(a store.AuditEntry) (string, error) {
				return "", s.CreateAPIKey(ctx, f.keyValue(org.ID, ""), a)
			},
		},
		{
			name: "CreateAPIKey with a taken hash", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				v := f.keyValue(org.ID, "")
				v.Hash = key.Hash
				return v.ID, s.CreateAPIKey(ctx, v, a)
			},
		},
		{
			name: "UpdateAPIKey",
			a:    func() store.AuditEntry { return targeted("UpdateAPIKey", key.ID) },
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateAPIKey(ctx, key.ID, func(k store.APIKey) (store.APIKey, error) {
					k.Name = "renamed"
					return k, nil
				}, a)
				return "", err
			},
		},
		{
			name: "UpdateAPIKey failing", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.UpdateAPIKey(ctx, key.ID, func(k store.APIKey) (store.APIKey, error) { return k, errBoom }, a)
				return "", err
			},
		},
		{
			name: "DeleteApp",
			a:    func() store.AuditEntry { return targeted("DeleteApp", app.ID) },
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.DeleteApp(ctx, app.ID, f.now(), a)
				return "", err
			},
		},
		{
			name: "DeleteApp of a missing app", fails: true,
			do: func(a store.AuditEntry) (string, error) {
				_, err := s.DeleteApp(ctx, app.ID, f.now(), a)
				return "", err
			},
		},
		{
			name: "AppendAudit",
			do: func(a store.AuditEntry) (string, error) {
				return "", s.AppendAudit(ctx, a)
			},
		},
	}
	for _, st := range steps {
		a := auditValue(st.name)
		if st.a != nil {
			a = st.a()
		}
		before := f.allAudit()
		created, err := st.do(a)
		if st.fails {
			if err == nil {
				t.Errorf("%s: no error", st.name)
			}
			f.wantNewAudit(st.name, before)
			continue
		}
		mustDo(t, err)
		want := a
		if want.TargetID == "" {
			want.TargetID = created
		}
		f.wantNewAudit(st.name, before, want)
	}
}
