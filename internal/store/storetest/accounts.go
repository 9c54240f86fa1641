package storetest

import (
	"strings"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Organizations and users.

func testOrganizations(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, owner := f.createOrg()
	other, _ := f.createOrg()

	wantEqual(t, "GetOrganization", must(s.GetOrganization(ctx, org.ID))(t), org)
	wantEqual(t, "GetOrganizationBySlug", must(s.GetOrganizationBySlug(ctx, org.Slug))(t), org)
	wantEqual(t, "owner", must(s.GetUser(ctx, owner.ID))(t), owner)
	wantEqual(t, "ListOrganizations", must(s.ListOrganizations(ctx))(t), []store.Organization{org, other},
		cmpopts.SortSlices(func(a, b store.Organization) bool { return a.ID < b.ID }))

	// Zero values round trip: no plan, no times.
	bare := store.Organization{ID: ids.New(ids.Organization), Name: "Bare", Slug: "bare"}
	mustDo(t, s.CreateOrganizationWithOwner(ctx, bare, f.userValue(bare.ID), auditValue("org.create")))
	wantEqual(t, "bare organization", must(s.GetOrganization(ctx, bare.ID))(t), bare)
}

func testOrganizationErrors(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, owner := f.createOrg()

	tests := []struct {
		name   string
		org    func() store.Organization
		owner  func(orgID string) store.User
		target error
	}{
		{
			name:   "duplicate ID",
			org:    func() store.Organization { o := f.orgValue(); o.ID = org.ID; return o },
			owner:  f.userValue,
			target: store.ErrAlreadyExists,
		},
		{
			name:   "duplicate slug",
			org:    func() store.Organization { o := f.orgValue(); o.Slug = org.Slug; return o },
			owner:  f.userValue,
			target: store.ErrAlreadyExists,
		},
		{
			name: "owner email taken",
			org:  f.orgValue,
			owner: func(orgID string) store.User {
				u := f.userValue(orgID)
				u.Email = strings.ToUpper(owner.Email)
				return u
			},
			target: store.ErrAlreadyExists,
		},
		{
			name: "owner ID taken",
			org:  f.orgValue,
			owner: func(orgID string) store.User {
				u := f.userValue(orgID)
				u.ID = owner.ID
				return u
			},
			target: store.ErrAlreadyExists,
		},
	}
	for _, tt := range tests {
		before := f.allAudit()
		o := tt.org()
		u := tt.owner(o.ID)
		wantErr(t, tt.name, s.CreateOrganizationWithOwner(ctx, o, u, auditValue("org.create")), tt.target)
		// Nothing of the failed creation is left: the organization, its
		// owner and its audit entry go together or not at all.
		if o.ID != org.ID {
			wantErr(t, tt.name+": organization created anyway", second(s.GetOrganization(ctx, o.ID)), store.ErrNotFound)
		}
		if u.ID != owner.ID {
			wantErr(t, tt.name+": owner created anyway", second(s.GetUser(ctx, u.ID)), store.ErrNotFound)
		}
		f.wantNewAudit(tt.name, before)
	}
	wantEqual(t, "organization after failed creations", must(s.GetOrganization(ctx, org.ID))(t), org)
	wantEqual(t, "owner after failed creations", must(s.GetUser(ctx, owner.ID))(t), owner)
}

func testUpdateOrganization(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	taken, _ := f.createOrg()

	// The func gets the stored value; what it returns is stored, except the
	// immutable ID and CreatedAt.
	later := f.now()
	before := f.allAudit()
	var seen store.Organization
	got, err := s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		seen = o
		o.ID = "org_changed"
		o.CreatedAt = later
		o.Name = "Acme Renamed"
		o.Slug = "acme-renamed"
		o.Plan = ""
		o.UpdatedAt = later
		return o, nil
	}, auditValue("org.update"))
	mustDo(t, err)
	wantEqual(t, "value passed to the update func", seen, org)
	want := org
	want.Name, want.Slug, want.Plan, want.UpdatedAt = "Acme Renamed", "acme-renamed", "", normalize(later)
	wantEqual(t, "UpdateOrganization result", got, want)
	wantEqual(t, "GetOrganization after update", must(s.GetOrganization(ctx, org.ID))(t), want)
	wantEqual(t, "GetOrganizationBySlug after update", must(s.GetOrganizationBySlug(ctx, "acme-renamed"))(t), want)
	wantErr(t, "old slug after update", second(s.GetOrganizationBySlug(ctx, org.Slug)), store.ErrNotFound)
	wantErr(t, "changed ID", second(s.GetOrganization(ctx, "org_changed")), store.ErrNotFound)
	f.wantNewAudit("UpdateOrganization", before, auditValue("org.update"))

	// A slug that is taken.
	before = f.allAudit()
	_, err = s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		o.Slug = taken.Slug
		return o, nil
	}, auditValue("org.update"))
	wantErr(t, "update to a taken slug", err, store.ErrAlreadyExists)
	wantEqual(t, "after update to a taken slug", must(s.GetOrganization(ctx, org.ID))(t), want)
	f.wantNewAudit("update to a taken slug", before)

	// The func fails: nothing is written and its error comes back.
	_, err = s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		o.Name = "Never"
		return o, errBoom
	}, auditValue("org.update"))
	wantErr(t, "update func error", err, errBoom)
	wantEqual(t, "after failed update", must(s.GetOrganization(ctx, org.ID))(t), want)
	f.wantNewAudit("failed update", before)

	_, err = s.UpdateOrganization(ctx, "org_missing", func(o store.Organization) (store.Organization, error) {
		t.Error("update func called for a missing organization")
		return o, nil
	}, auditValue("org.update"))
	wantErr(t, "UpdateOrganization of a missing organization", err, store.ErrNotFound)
	f.wantNewAudit("update of a missing organization", before)
}

// testDisableOrganization: an organization's status (DisabledAt and its
// reason) round trips through every read, is created disabled when asked,
// and enabling it forgets the reason.
func testDisableOrganization(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	if org.Disabled() {
		t.Fatal("a new organization is disabled")
	}
	at := f.now()
	before := f.allAudit()
	got, err := s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		o.DisabledAt, o.DisabledReason, o.UpdatedAt = at, "abuse: card fraud", at
		return o, nil
	}, auditValue("org.disable"))
	mustDo(t, err)
	want := org
	want.DisabledAt, want.DisabledReason, want.UpdatedAt = normalize(at), "abuse: card fraud", normalize(at)
	wantEqual(t, "UpdateOrganization (disable) result", got, want)
	if !got.Disabled() {
		t.Error("Disabled() = false after setting DisabledAt")
	}
	wantEqual(t, "GetOrganization after disable", must(s.GetOrganization(ctx, org.ID))(t), want)
	wantEqual(t, "GetOrganizationBySlug after disable", must(s.GetOrganizationBySlug(ctx, org.Slug))(t), want)
	var listed store.Organization
	for _, o := range must(s.ListOrganizations(ctx))(t) {
		if o.ID == org.ID {
			listed = o
		}
	}
	wantEqual(t, "ListOrganizations after disable", listed, want)
	f.wantNewAudit("disable", before, auditValue("org.disable"))

	// Enabling keeps nothing of the reason, even if the caller left it.
	got, err = s.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		o.DisabledAt = time.Time{}
		return o, nil
	}, auditValue("org.enable"))
	mustDo(t, err)
	want.DisabledAt, want.DisabledReason = time.Time{}, ""
	wantEqual(t, "UpdateOrganization (enable) result", got, want)
	wantEqual(t, "GetOrganization after enable", must(s.GetOrganization(ctx, org.ID))(t), want)

	// Created disabled: the status is written by the insert too.
	disabled := f.orgValue()
	disabled.DisabledAt, disabled.DisabledReason = at, "created disabled"
	mustDo(t, s.CreateOrganizationWithOwner(ctx, disabled, f.userValue(disabled.ID), auditValue("org.create")))
	wantEqual(t, "organization created disabled", must(s.GetOrganization(ctx, disabled.ID))(t), normalize(disabled))
}

func testUsers(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, owner := f.createOrg()
	u := f.createUser(org.ID, func(u *store.User) {
		u.Status = store.UserPending
		u.LastLoginAt = f.now()
	})
	wantEqual(t, "GetUser", must(s.GetUser(ctx, u.ID))(t), u)
	for _, email := range []string{u.Email, strings.ToUpper(u.Email), "Someone." + strings.TrimPrefix(u.Email, "someone.")} {
		wantEqual(t, "GetUserByEmail("+email+")", must(s.GetUserByEmail(ctx, email))(t), u)
	}
	wantEqual(t, "GetUser(owner)", must(s.GetUser(ctx, owner.ID))(t), owner)

	// Zero values round trip.
	bare := store.User{ID: ids.New(ids.User), OrgID: org.ID, Email: "bare@example.com", Role: store.RoleMember, Status: store.UserPending}
	mustDo(t, s.CreateUser(ctx, bare, auditValue("user.create")))
	wantEqual(t, "bare user", must(s.GetUser(ctx, bare.ID))(t), bare)
}

func testUserErrors(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, owner := f.createOrg()

	tests := []struct {
		name   string
		mod    func(*store.User)
		target error
	}{
		{"duplicate ID", func(u *store.User) { u.ID = owner.ID }, store.ErrAlreadyExists},
		{"duplicate email", func(u *store.User) { u.Email = owner.Email }, store.ErrAlreadyExists},
		{"duplicate email in another case", func(u *store.User) { u.Email = strings.ToUpper(owner.Email) }, store.ErrAlreadyExists},
		{"unknown organization", func(u *store.User) { u.OrgID = "org_missing" }, store.ErrNotFound},
	}
	for _, tt := range tests {
		before := f.allAudit()
		u := f.userValue(org.ID)
		tt.mod(&u)
		wantErr(t, tt.name, s.CreateUser(ctx, u, auditValue("user.create")), tt.target)
		f.wantNewAudit(tt.name, before)
	}
	wantEqual(t, "owner after failed creations", must(s.GetUser(ctx, owner.ID))(t), owner)
	wantEqual(t, "users after failed creations", must(s.ListUsers(ctx, store.UserFilter{}))(t), []store.User{owner})
}

func testListUsers(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	orgA, a1 := f.createOrg()
	a2 := f.createUser(orgA.ID, func(u *store.User) { u.Status = store.UserPending })
	a3 := f.createUser(orgA.ID, func(u *store.User) { u.Status = store.UserDisabled })
	orgB, b1 := f.createOrg()
	b2 := f.createUser(orgB.ID, func(u *store.User) { u.Status = store.UserPending })

	tests := []struct {
		name   string
		filter store.UserFilter
		want   []store.User
	}{
		{"all", store.UserFilter{}, []store.User{a1, a2, a3, b1, b2}},
		{"org A", store.UserFilter{OrgID: orgA.ID}, []store.User{a1, a2, a3}},
		{"org B", store.UserFilter{OrgID: orgB.ID}, []store.User{b1, b2}},
		{"pending", store.UserFilter{Status: store.UserPending}, []store.User{a2, b2}},
		{"disabled", store.UserFilter{Status: store.UserDisabled}, []store.User{a3}},
		{"org B active", store.UserFilter{OrgID: orgB.ID, Status: store.UserActive}, []store.User{b1}},
		{"org B disabled", store.UserFilter{OrgID: orgB.ID, Status: store.UserDisabled}, []store.User{}},
		{"unknown org", store.UserFilter{OrgID: "org_missing"}, []store.User{}},
	}
	for _, tt := range tests {
		got := must(s.ListUsers(ctx, tt.filter))(t)
		wantEqual(t, "ListUsers "+tt.name, got, tt.want,
			cmpopts.SortSlices(func(a, b store.User) bool { return a.ID < b.ID }))
	}
}

func testUpdateUser(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	u := f.createUser(org.ID, func(u *store.User) { u.Status = store.UserPending })

	later := f.now()
	before := f.allAudit()
	var seen store.User
	got, err := s.UpdateUser(ctx, u.ID, func(v store.User) (store.User, error) {
		seen = v
		v.ID = "usr_changed"
		v.OrgID = other.ID
		v.Email = "changed@example.com"
		v.CreatedAt = later
		v.Status = store.UserActive
		v.Role = store.RoleAdmin
		v.PasswordHash = "$argon2id$new"
		v.UpdatedAt = later
		return v, nil
	}, auditValue("user.activate"))
	mustDo(t, err)
	wantEqual(t, "value passed to the update func", seen, u)
	want := u
	want.Status, want.Role, want.PasswordHash, want.UpdatedAt = store.UserActive, store.RoleAdmin, "$argon2id$new", normalize(later)
	wantEqual(t, "UpdateUser result", got, want)
	wantEqual(t, "GetUser after update", must(s.GetUser(ctx, u.ID))(t), want)
	wantEqual(t, "GetUserByEmail after update", must(s.GetUserByEmail(ctx, u.Email))(t), want)
	wantErr(t, "changed email", second(s.GetUserByEmail(ctx, "changed@example.com")), store.ErrNotFound)
	f.wantNewAudit("UpdateUser", before, auditValue("user.activate"))

	before = f.allAudit()
	_, err = s.UpdateUser(ctx, u.ID, func(v store.User) (store.User, error) {
		v.Status = store.UserDisabled
		return v, errBoom
	}, auditValue("user.disable"))
	wantErr(t, "update func error", err, errBoom)
	wantEqual(t, "after failed update", must(s.GetUser(ctx, u.ID))(t), want)
	f.wantNewAudit("failed update", before)

	_, err = s.UpdateUser(ctx, "usr_missing", func(v store.User) (store.User, error) { return v, nil }, auditValue("user.update"))
	wantErr(t, "UpdateUser of a missing user", err, store.ErrNotFound)
	f.wantNewAudit("update of a missing user", before)
}

func testRecordLogin(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	_, u := f.createOrg()
	before := f.allAudit()

	for _, at := range []time.Time{f.now(), f.now()} {
		mustDo(t, s.RecordLogin(ctx, u.ID, at))
		u.LastLoginAt = normalize(at)
		wantEqual(t, "user after RecordLogin", must(s.GetUser(ctx, u.ID))(t), u)
	}
	f.wantNewAudit("RecordLogin (not audited by the store)", before)
	wantErr(t, "RecordLogin of a missing user", s.RecordLogin(ctx, "usr_missing", f.now()), store.ErrNotFound)
}
