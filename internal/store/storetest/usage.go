package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Usage: the request log, the rollups and the quota counts.

// eventValue returns an admitted request of the given organization, app and
// credential at the given time, with every field set.
func eventValue(orgID, appID, credentialID string, at time.Time) store.UsageEvent {
	return store.UsageEvent{
		ID:            ids.New(ids.Request),
		Time:          at,
		OrgID:         orgID,
		AppID:         appID,
		CredentialID:  credentialID,
		AuthMethod:    "apikey",
		Method:        "POST",
		Route:         "/v1/",
		Path:          "/v1/orders/42",
		Status:        200,
		Latency:       1500*time.Microsecond + 789*time.Nanosecond,
		RequestBytes:  1234,
		ResponseBytes: 56789,
		Units:         1,
		ClientIP:      "2001:db8::1",
		UserAgent:     "curl/8.5.0",
	}
}

// batchID returns a new usage batch ID.
func batchID() string { return ids.New(ids.UsageBatch) }

// normalizeEvent returns e as the store must read it back.
func normalizeEvent(e store.UsageEvent) store.UsageEvent {
	e = normalize(e)
	e.Latency = e.Latency.Truncate(time.Microsecond)
	return e
}

// utc returns a time in UTC; the nanoseconds are whole microseconds, so the
// time is stored as it is.
func utc(year int, month time.Month, day, hour, minute, sec, micros int) time.Time {
	return time.Date(year, month, day, hour, minute, sec, micros*1000, time.UTC)
}

// listOrder is the request log's order: newest first, then by ID descending.
func listOrder(a, b store.UsageEvent) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// wantRequests returns the entries of events (normalized) that rf selects, in
// list order, ignoring rf.Limit.
func wantRequests(events []store.UsageEvent, rf store.RequestFilter) []store.UsageEvent {
	out := []store.UsageEvent{}
	for _, e := range events {
		e = normalizeEvent(e)
		switch {
		case e.OrgID != rf.OrgID,
			rf.AppID != "" && e.AppID != rf.AppID,
			rf.CredentialID != "" && e.CredentialID != rf.CredentialID,
			rf.StatusMin != 0 && e.Status < rf.StatusMin,
			rf.StatusMax != 0 && e.Status > rf.StatusMax,
			!rf.From.IsZero() && e.Time.Before(rf.From),
			!rf.To.IsZero() && !e.Time.Before(rf.To),
			!rf.AfterTime.IsZero() && listOrder(e, store.UsageEvent{Time: rf.AfterTime, ID: rf.AfterID}) <= 0:
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, listOrder)
	return out
}

// allRequests pages through the entries rf selects, pageSize at a time,
// following the (AfterTime, AfterID) cursor until a page comes back empty.
func (f *fixture) allRequests(rf store.RequestFilter, pageSize int) []store.UsageEvent {
	f.t.Helper()
	out := []store.UsageEvent{}
	rf.Limit = pageSize
	for range 10000 {
		page := must(f.s.ListRequests(f.ctx, rf))(f.t)
		if len(page) > pageSize {
			f.t.Fatalf("ListRequests(%+v): %d entries, want at most %d", rf, len(page), pageSize)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		last := page[len(page)-1]
		rf.AfterTime, rf.AfterID = last.Time, last.ID
	}
	f.t.Fatalf("ListRequests(%+v): paging does not end", rf)
	return nil
}

// series returns the usage series of q, failing the test on error.
func (f *fixture) series(q store.UsageQuery) []store.UsagePoint {
	f.t.Helper()
	return must(f.s.UsageSeries(f.ctx, q))(f.t)
}

// testRecordUsage: events read back from the request log with every field,
// times in UTC at microsecond precision.
func testRecordUsage(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	app := f.createApp(org.ID)
	key := f.createKey(org.ID, app.ID)

	full := eventValue(org.ID, app.ID, key.ID, f.now())
	full.Status, full.ErrorCode, full.Units = 429, "rate_limited", 0
	ws := eventValue(org.ID, app.ID, app.ClientID, f.now())
	ws.AuthMethod, ws.Method, ws.Route, ws.Path = "bearer", "GET", "/ws/", "/ws/feed"
	ws.Status, ws.WebSocket, ws.Latency = 101, true, 90*time.Minute+time.Nanosecond
	ws.RequestBytes, ws.ResponseBytes, ws.Units = 1<<40, 1<<41, 1<<33
	// Refused before authentication: no organization, app or credential.
	anon := store.UsageEvent{ID: ids.New(ids.Request), Time: f.now(), Method: "GET", Path: "/v1/x", Status: 401, ErrorCode: "unauthenticated"}
	// Only the fields the store needs.
	bare := store.UsageEvent{ID: ids.New(ids.Request), Time: f.now(), OrgID: org.ID, Status: 200}

	before := f.allAudit()
	mustDo(t, s.RecordUsage(ctx, batchID(), []store.UsageEvent{full, ws, anon, bare}))
	mustDo(t, s.RecordUsage(ctx, batchID(), nil))
	f.wantNewAudit("RecordUsage (not audited)", before)

	want := []store.UsageEvent{normalizeEvent(bare), normalizeEvent(ws), normalizeEvent(full)}
	wantEqual(t, "ListRequests", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID}))(t), want)
	wantEqual(t, "ListRequests of another organization", must(s.ListRequests(ctx, store.RequestFilter{OrgID: "org_missing"}))(t), []store.UsageEvent{})
}

// testRecordUsageDuplicates: a batch recorded again under its ID, as after
// an uncertain failure, is counted once, even when it comes back different;
// another batch ID is another batch; a batch without an ID is refused; an
// empty batch records nothing, not even its ID.
func testRecordUsageDuplicates(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	at := utc(2025, time.April, 2, 10, 0, 0, 0)
	a := eventValue(org.ID, "", "key_a", at)
	b := eventValue(org.ID, "", "key_a", at.Add(time.Minute))
	c := eventValue(org.ID, "", "key_a", at.Add(2*time.Minute))
	d := eventValue(other.ID, "", "key_b", at)
	a.Units, b.Units, c.Units = 1, 2, 4

	first, second := batchID(), batchID()
	// An empty batch does not use up its ID.
	mustDo(t, s.RecordUsage(ctx, second, nil))
	// A batch of two organizations.
	mustDo(t, s.RecordUsage(ctx, first, []store.UsageEvent{a, b, d}))
	mustDo(t, s.RecordUsage(ctx, first, []store.UsageEvent{a, b, d}))
	// The same ID with other events is still the batch already recorded.
	mustDo(t, s.RecordUsage(ctx, first, []store.UsageEvent{c}))
	mustDo(t, s.RecordUsage(ctx, second, []store.UsageEvent{c}))
	mustDo(t, s.RecordUsage(ctx, second, []store.UsageEvent{c}))
	if err := s.RecordUsage(ctx, "", []store.UsageEvent{eventValue(org.ID, "", "key_a", at)}); err == nil {
		t.Error("RecordUsage without a batch ID: no error")
	}

	wantEqual(t, "ListRequests", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID}))(t),
		[]store.UsageEvent{normalizeEvent(c), normalizeEvent(b), normalizeEvent(a)})
	wantEqual(t, "ListRequests of the other organization", must(s.ListRequests(ctx, store.RequestFilter{OrgID: other.ID}))(t),
		[]store.UsageEvent{normalizeEvent(d)})
	for _, g := range []string{store.GranularityHour, store.GranularityDay, store.GranularityMonth} {
		got := f.series(store.UsageQuery{OrgID: org.ID, Granularity: g, From: utc(2025, time.April, 1, 0, 0, 0, 0), To: utc(2025, time.May, 1, 0, 0, 0, 0)})
		if len(got) != 1 || got[0].Units != 7 || got[0].Requests != 3 || got[0].Errors != 0 {
			t.Errorf("%s series after duplicates = %+v, want one bucket of 7 units, 3 requests, 0 errors", g, got)
		}
	}
}

// testUsageRollups: every event lands in the calendar hour, day and month, in
// UTC, that holds it, boundaries included; errors are statuses of 400 or
// more; a series holds the non-empty buckets in [From, To), oldest first.
func testUsageRollups(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	ev := func(at time.Time, units int64, status int) store.UsageEvent {
		e := eventValue(org.ID, "app_a", "key_a", at)
		e.Units, e.Status = units, status
		return e
	}
	mustDo(t, s.RecordUsage(ctx, batchID(), []store.UsageEvent{
		ev(utc(2025, time.January, 31, 23, 59, 59, 999999), 1, 200),
		ev(utc(2025, time.February, 1, 0, 0, 0, 0), 2, 404),
		// 01:30 at UTC+2 is still January 31 in UTC.
		ev(time.Date(2025, time.February, 1, 1, 30, 0, 0, time.FixedZone("UTC+2", 2*60*60)), 4, 500),
		ev(utc(2025, time.February, 1, 0, 59, 59, 999999), 8, 399),
		ev(utc(2025, time.February, 1, 1, 0, 0, 0), 16, 400),
		ev(utc(2025, time.March, 1, 0, 0, 0, 0), 32, 101),
		ev(utc(2025, time.March, 1, 0, 0, 0, 1), 0, 403), // a refused request: no units, still a request
	}))

	point := func(start time.Time, units, requests, errs int64) store.UsagePoint {
		return store.UsagePoint{Start: start, Units: units, Requests: requests, Errors: errs}
	}
	jan31, feb1, mar1 := utc(2025, time.January, 31, 0, 0, 0, 0), utc(2025, time.February, 1, 0, 0, 0, 0), utc(2025, time.March, 1, 0, 0, 0, 0)
	tests := []struct {
		name     string
		g        string
		from, to time.Time
		want     []store.UsagePoint
	}{
		{"hours", store.GranularityHour, jan31, mar1.AddDate(0, 0, 1), []store.UsagePoint{
			point(jan31.Add(23*time.Hour), 5, 2, 1),
			point(feb1, 10, 2, 1),
			point(feb1.Add(time.Hour), 16, 1, 1),
			point(mar1, 32, 2, 1),
		}},
		{"one hour: From included, To excluded", store.GranularityHour, feb1, feb1.Add(time.Hour), []store.UsagePoint{
			point(feb1, 10, 2, 1),
		}},
		{"days", store.GranularityDay, jan31, mar1.AddDate(0, 0, 1), []store.UsagePoint{
			point(jan31, 5, 2, 1),
			point(feb1, 26, 3, 2),
			point(mar1, 32, 2, 1),
		}},
		{"days before March", store.GranularityDay, jan31, mar1, []store.UsagePoint{
			point(jan31, 5, 2, 1),
			point(feb1, 26, 3, 2),
		}},
		{"months", store.GranularityMonth, utc(2025, time.January, 1, 0, 0, 0, 0), utc(2025, time.April, 1, 0, 0, 0, 0), []store.UsagePoint{
			point(utc(2025, time.January, 1, 0, 0, 0, 0), 5, 2, 1),
			point(feb1, 26, 3, 2),
			point(mar1, 32, 2, 1),
		}},
		{"bounds in another zone", store.GranularityMonth, feb1.In(time.FixedZone("UTC-5", -5*60*60)), mar1.In(time.FixedZone("UTC+9", 9*60*60)), []store.UsagePoint{
			point(feb1, 26, 3, 2),
		}},
		{"no usage", store.GranularityMonth, utc(2025, time.April, 1, 0, 0, 0, 0), utc(2026, time.April, 1, 0, 0, 0, 0), []store.UsagePoint{}},
		{"empty range", store.GranularityDay, feb1, feb1, []store.UsagePoint{}},
	}
	for _, tt := range tests {
		got := f.series(store.UsageQuery{OrgID: org.ID, Granularity: tt.g, From: tt.from, To: tt.to})
		wantEqual(t, tt.name, got, tt.want)
	}
}

// testUsageFilters: a series may be narrowed to an app, a credential or
// both; it holds one organization's usage only, and events without an
// organization are in the request log but in no series.
func testUsageFilters(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	at := utc(2025, time.May, 5, 5, 5, 5, 5)
	ev := func(orgID, appID, credentialID string, units int64, status int) store.UsageEvent {
		e := eventValue(orgID, appID, credentialID, at)
		e.Units, e.Status = units, status
		return e
	}
	anon := ev("", "", "", 64, 401)
	mustDo(t, s.RecordUsage(ctx, batchID(), []store.UsageEvent{
		ev(org.ID, "app_a", "key_1", 1, 200),
		ev(org.ID, "app_a", "key_2", 2, 200),
		ev(org.ID, "app_b", "key_3", 4, 200),
		ev(org.ID, "", "key_4", 8, 200),
		ev(org.ID, "app_a", "key_1", 16, 500),
		ev(other.ID, "app_a", "key_1", 32, 200),
		anon,
	}))

	tests := []struct {
		name                    string
		orgID, app, credential  string
		units, requests, errors int64
	}{
		{"organization", org.ID, "", "", 31, 5, 1},
		{"app", org.ID, "app_a", "", 19, 3, 1},
		{"other app", org.ID, "app_b", "", 4, 1, 0},
		{"credential", org.ID, "", "key_1", 17, 2, 1},
		{"credential without app", org.ID, "", "key_4", 8, 1, 0},
		{"app and credential", org.ID, "app_a", "key_2", 2, 1, 0},
		{"app and another app's credential", org.ID, "app_a", "key_3", 0, 0, 0},
		{"unknown app", org.ID, "app_missing", "", 0, 0, 0},
		{"other organization", other.ID, "", "", 32, 1, 0},
		{"unknown organization", "org_missing", "", "", 0, 0, 0},
	}
	hour := utc(2025, time.May, 5, 5, 0, 0, 0)
	for _, tt := range tests {
		want := []store.UsagePoint{}
		if tt.requests > 0 {
			want = append(want, store.UsagePoint{Start: hour, Units: tt.units, Requests: tt.requests, Errors: tt.errors})
		}
		got := f.series(store.UsageQuery{OrgID: tt.orgID, Granularity: store.GranularityHour, AppID: tt.app,
			CredentialID: tt.credential, From: hour, To: hour.Add(time.Hour)})
		wantEqual(t, tt.name, got, want)
	}

	// The event without an organization is in the log: purging counts it.
	wantEqual(t, "purged entries", must(s.PurgeRequests(ctx, at.Add(time.Second), hour))(t), int64(7))
}

// testUsageTotals: totals of requests left out of the request log land in
// the rollups of their hour, day and month, counted as requests, errors and
// units like logged ones and also as omitted; they add up with the events of
// the request log in the same buckets, filter by app and credential like
// them, and put nothing in the log.
func testUsageTotals(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	h10 := utc(2025, time.July, 31, 10, 0, 0, 0)
	logged := eventValue(org.ID, "app_a", "key_1", h10.Add(5*time.Minute))
	logged.Units = 2
	mustDo(t, s.RecordUsage(ctx, batchID(), []store.UsageEvent{logged}))
	mustDo(t, s.RecordUsageTotals(ctx, batchID(), []store.UsageTotal{
		{Hour: h10, OrgID: org.ID, AppID: "app_a", CredentialID: "key_1", Requests: 100, Errors: 7, Units: 93},
		{Hour: h10, OrgID: org.ID, AppID: "app_b", CredentialID: "key_2", Requests: 10, Errors: 0, Units: 30},
		// The last hour of July, in another zone: still July 31 23:00 UTC.
		{Hour: time.Date(2025, time.August, 1, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*60*60)), OrgID: org.ID, CredentialID: "key_3", Requests: 1, Units: 1},
		{Hour: utc(2025, time.August, 1, 0, 0, 0, 0), OrgID: org.ID, CredentialID: "key_3", Requests: 4, Errors: 4},
	}))
	// A second batch adds to the same rows.
	mustDo(t, s.RecordUsageTotals(ctx, batchID(), []store.UsageTotal{
		{Hour: h10, OrgID: org.ID, AppID: "app_a", CredentialID: "key_1", Requests: 1, Errors: 1, Units: 0},
	}))
	h23 := utc(2025, time.July, 31, 23, 0, 0, 0)
	aug1 := utc(2025, time.August, 1, 0, 0, 0, 0)
	p := func(start time.Time, units, requests, errs, omitted int64) store.UsagePoint {
		return store.UsagePoint{Start: start, Units: units, Requests: requests, Errors: errs, Omitted: omitted}
	}
	day := utc(2025, time.July, 31, 0, 0, 0, 0)
	tests := []struct {
		name string
		q    store.UsageQuery
		want []store.UsagePoint
	}{
		{"hours", store.UsageQuery{Granularity: store.GranularityHour, From: day, To: aug1.AddDate(0, 0, 1)}, []store.UsagePoint{
			p(h10, 125, 112, 8, 111), p(h23, 1, 1, 0, 1), p(aug1, 0, 4, 4, 4),
		}},
		{"days", store.UsageQuery{Granularity: store.GranularityDay, From: day, To: aug1.AddDate(0, 0, 1)}, []store.UsagePoint{
			p(day, 126, 113, 8, 112), p(aug1, 0, 4, 4, 4),
		}},
		{"months", store.UsageQuery{Granularity: store.GranularityMonth, From: utc(2025, time.July, 1, 0, 0, 0, 0), To: utc(2025, time.September, 1, 0, 0, 0, 0)}, []store.UsagePoint{
			p(utc(2025, time.July, 1, 0, 0, 0, 0), 126, 113, 8, 112), p(aug1, 0, 4, 4, 4),
		}},
		{"app", store.UsageQuery{Granularity: store.GranularityDay, From: day, To: aug1, AppID: "app_a"}, []store.UsagePoint{
			p(day, 95, 102, 8, 101),
		}},
		{"credential", store.UsageQuery{Granularity: store.GranularityDay, From: day, To: aug1, CredentialID: "key_2"}, []store.UsagePoint{
			p(day, 30, 10, 0, 10),
		}},
	}
	for _, tt := range tests {
		tt.q.OrgID = org.ID
		wantEqual(t, tt.name, f.series(tt.q), tt.want)
	}
	wantEqual(t, "request log", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID}))(t),
		[]store.UsageEvent{normalizeEvent(logged)})
}

// testUsageTotalsDuplicates: a batch of totals recorded again under its ID,
// as after an uncertain failure, counts once, even when it comes back
// different; an empty batch does not use up its ID; the IDs are forgotten
// with the request log they outlive (PurgeRequests).
func testUsageTotalsDuplicates(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	h := utc(2025, time.August, 2, 3, 0, 0, 0)
	total := store.UsageTotal{Hour: h, OrgID: org.ID, CredentialID: "key_1", Requests: 3, Errors: 1, Units: 6}
	id, empty := batchID(), batchID()
	mustDo(t, s.RecordUsageTotals(ctx, empty, nil))
	mustDo(t, s.RecordUsageTotals(ctx, id, []store.UsageTotal{total}))
	mustDo(t, s.RecordUsageTotals(ctx, id, []store.UsageTotal{total}))
	mustDo(t, s.RecordUsageTotals(ctx, id, []store.UsageTotal{total, total}))
	mustDo(t, s.RecordUsageTotals(ctx, empty, []store.UsageTotal{total}))
	q := store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityHour, From: h, To: h.Add(time.Hour)}
	wantEqual(t, "after duplicates", f.series(q), []store.UsagePoint{{Start: h, Units: 12, Requests: 6, Errors: 2, Omitted: 6}})

	// Once the request log of their time is purged, the IDs are forgotten:
	// the batch would count again. (Batches are retried for minutes; the
	// log is kept for at least an hour.)
	must(s.PurgeRequests(ctx, utc(3000, time.January, 1, 0, 0, 0, 0), h))(t)
	mustDo(t, s.RecordUsageTotals(ctx, id, []store.UsageTotal{total}))
	wantEqual(t, "after purging the IDs", f.series(q), []store.UsagePoint{{Start: h, Units: 18, Requests: 9, Errors: 3, Omitted: 9}})
}

// testUsageTotalsRefused: a batch without an ID, a total of no organization
// and a negative count are refused, and the batch they are in records
// nothing.
func testUsageTotalsRefused(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	h := utc(2025, time.August, 3, 3, 0, 0, 0)
	good := store.UsageTotal{Hour: h, OrgID: org.ID, Requests: 1, Units: 1}
	tests := []struct {
		name   string
		id     string
		totals []store.UsageTotal
	}{
		{"no batch ID", "", []store.UsageTotal{good}},
		{"no organization", batchID(), []store.UsageTotal{good, {Hour: h, Requests: 1}}},
		{"negative requests", batchID(), []store.UsageTotal{good, {Hour: h, OrgID: org.ID, Requests: -1}}},
		{"negative units", batchID(), []store.UsageTotal{good, {Hour: h, OrgID: org.ID, Requests: 1, Units: -5}}},
	}
	for _, tt := range tests {
		if err := s.RecordUsageTotals(ctx, tt.id, tt.totals); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	wantEqual(t, "series", f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityMonth,
		From: utc(2025, time.August, 1, 0, 0, 0, 0), To: utc(2025, time.September, 1, 0, 0, 0, 0)}), []store.UsagePoint{})
}

// testListRequests: filters, order (newest first, then ID descending) and
// paging with the (AfterTime, AfterID) cursor, through entries that share
// their times: every page joined gives every entry once.
func testListRequests(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	other, _ := f.createOrg()
	base := normalize(f.now())
	times := make([]time.Time, 6)
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Minute)
	}
	statuses := []int{200, 201, 404, 429, 500, 101, 399, 400}
	var events []store.UsageEvent
	for i := range 48 {
		e := eventValue(org.ID, []string{"app_a", "app_b", ""}[i%3], []string{"key_1", "key_2", "key_3", "key_4"}[i%4], times[i%len(times)])
		e.Status = statuses[i%len(statuses)]
		events = append(events, e)
		// The same times in another organization, never listed with org's.
		events = append(events, eventValue(other.ID, "app_a", "key_1", times[i%len(times)]))
	}
	// Recorded out of order, in batches.
	for i := 0; i < len(events); i += 25 {
		mustDo(t, s.RecordUsage(ctx, batchID(), events[i:min(i+25, len(events))]))
	}

	filters := []struct {
		name string
		rf   store.RequestFilter
	}{
		{"all", store.RequestFilter{}},
		{"app", store.RequestFilter{AppID: "app_a"}},
		{"no such app", store.RequestFilter{AppID: "app_missing"}},
		{"credential", store.RequestFilter{CredentialID: "key_2"}},
		{"app and credential", store.RequestFilter{AppID: "app_b", CredentialID: "key_1"}},
		{"4xx", store.RequestFilter{StatusMin: 400, StatusMax: 499}},
		{"errors", store.RequestFilter{StatusMin: 400}},
		{"below 400", store.RequestFilter{StatusMax: 399}},
		{"exact status", store.RequestFilter{StatusMin: 101, StatusMax: 101}},
		{"from", store.RequestFilter{From: times[2]}},
		{"to", store.RequestFilter{To: times[3]}},
		{"from and to", store.RequestFilter{From: times[1], To: times[4]}},
		{"from in another zone", store.RequestFilter{From: times[4].In(time.FixedZone("UTC-7", -7*60*60))}},
		{"everything", store.RequestFilter{AppID: "app_a", StatusMin: 200, StatusMax: 499, From: times[1], To: times[5]}},
		{"after a time", store.RequestFilter{AfterTime: times[3]}},
		{"after a time with the largest ID", store.RequestFilter{AfterTime: times[3], AfterID: "~"}},
	}
	for _, ff := range filters {
		rf := ff.rf
		rf.OrgID = org.ID
		want := wantRequests(events, rf)
		wantEqual(t, ff.name+": one page", must(s.ListRequests(ctx, store.RequestFilter{
			OrgID: rf.OrgID, AppID: rf.AppID, CredentialID: rf.CredentialID, StatusMin: rf.StatusMin, StatusMax: rf.StatusMax,
			From: rf.From, To: rf.To, AfterTime: rf.AfterTime, AfterID: rf.AfterID, Limit: 1000,
		}))(t), want)
		for _, size := range []int{1, 3, 4, 7} {
			wantEqual(t, fmt.Sprintf("%s: pages of %d", ff.name, size), f.allRequests(rf, size), want)
		}
		first := rf
		first.Limit = 5
		wantEqual(t, ff.name+": first 5", must(s.ListRequests(ctx, first))(t), want[:min(5, len(want))])
	}
	if n := len(wantRequests(events, store.RequestFilter{OrgID: org.ID})); n != 48 {
		t.Fatalf("the test lists %d of its 48 events", n)
	}

	// The cursor is an entry in the middle of a run of entries at the same
	// time: the page goes on with that run's smaller IDs.
	all := wantRequests(events, store.RequestFilter{OrgID: org.ID})
	mid := all[len(all)/2+1]
	if !mid.Time.Equal(all[len(all)/2].Time) || !mid.Time.Equal(all[len(all)/2+2].Time) {
		t.Fatalf("entries %d to %d do not share their time", len(all)/2, len(all)/2+2)
	}
	wantEqual(t, "page after the middle of a run",
		must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID, AfterTime: mid.Time, AfterID: mid.ID, Limit: 2}))(t),
		all[len(all)/2+2:len(all)/2+4])
}

// testListRequestsLimit: a zero Limit means 100.
func testListRequestsLimit(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	events := make([]store.UsageEvent, 120)
	for i := range events {
		events[i] = eventValue(org.ID, "", "key_1", f.now())
	}
	mustDo(t, s.RecordUsage(ctx, batchID(), events))
	all := wantRequests(events, store.RequestFilter{OrgID: org.ID})
	wantEqual(t, "default limit", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID}))(t), all[:100])
	wantEqual(t, "limit 110", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID, Limit: 110}))(t), all[:110])
	wantEqual(t, "limit 1", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID, Limit: 1}))(t), all[:1])
}

// testListRequestsAcrossBatches: the log of many batches, each of a stretch
// of time, with late entries (a long request recorded well after it began)
// and entries sharing times across batches, pages in list order at every
// page size, with and without filters, and purges at any horizon.
func testListRequestsAcrossBatches(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	base := utc(2025, time.May, 5, 12, 0, 0, 0)
	var events []store.UsageEvent
	for b := range 12 {
		var batch []store.UsageEvent
		for i := range 7 {
			at := base.Add(time.Duration(b)*time.Minute + time.Duration(i)*10*time.Second)
			if i == 6 && b%3 == 0 {
				at = base.Add(time.Duration(b-5) * time.Minute) // late: began five batches earlier
			}
			if i == 3 {
				at = base.Add(time.Duration(b/2) * time.Minute) // a time another batch has too
			}
			e := eventValue(org.ID, []string{"app_a", "app_b"}[i%2], "key_1", at)
			e.Status = []int{200, 404, 500}[(b+i)%3]
			batch = append(batch, e)
		}
		events = append(events, batch...)
		mustDo(t, s.RecordUsage(ctx, batchID(), batch))
	}
	for _, rf := range []store.RequestFilter{
		{OrgID: org.ID},
		{OrgID: org.ID, AppID: "app_b"},
		{OrgID: org.ID, StatusMin: 500},
		{OrgID: org.ID, From: base.Add(3 * time.Minute), To: base.Add(8 * time.Minute)},
	} {
		want := wantRequests(events, rf)
		for _, size := range []int{1, 2, 5, 7, 8, 30, 100} {
			wantEqual(t, fmt.Sprintf("%+v in pages of %d", rf, size), f.allRequests(rf, size), want)
		}
	}
	// A horizon inside batches: each is cut, the rest kept.
	horizon := base.Add(4*time.Minute + 25*time.Second)
	var kept []store.UsageEvent
	for _, e := range events {
		if !e.Time.Before(horizon) {
			kept = append(kept, e)
		}
	}
	hourlyKept := base.Add(-time.Hour)
	wantEqual(t, "purged entries", must(s.PurgeRequests(ctx, horizon, hourlyKept))(t), int64(len(events)-len(kept)))
	for _, size := range []int{1, 7, 100} {
		wantEqual(t, fmt.Sprintf("after purging, in pages of %d", size), f.allRequests(store.RequestFilter{OrgID: org.ID}, size), wantRequests(kept, store.RequestFilter{OrgID: org.ID}))
	}
	wantEqual(t, "purged again", must(s.PurgeRequests(ctx, horizon, hourlyKept))(t), int64(0))
}

// testPurgeRequests: purging forgets log entries strictly older than before
// and hourly buckets that started strictly before hourlyBefore, keeps the
// daily and monthly rollups, and counts the log entries it removed.
func testPurgeRequests(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	org, _ := f.createOrg()
	ev := func(hour, minute int) store.UsageEvent {
		return eventValue(org.ID, "app_a", "key_1", utc(2025, time.March, 10, hour, minute, 0, 0))
	}
	events := []store.UsageEvent{ev(8, 15), ev(9, 15), ev(10, 15), ev(10, 15), ev(11, 0)}
	mustDo(t, s.RecordUsage(ctx, batchID(), events))
	day := utc(2025, time.March, 10, 0, 0, 0, 0)
	hours := func() []store.UsagePoint {
		return f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityHour, From: day, To: day.AddDate(0, 0, 1)})
	}
	hour := func(h int, n int64) store.UsagePoint {
		return store.UsagePoint{Start: day.Add(time.Duration(h) * time.Hour), Units: n, Requests: n}
	}
	wantDaysAndMonths := func(what string) {
		t.Helper()
		wantEqual(t, what+": days", f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityDay, From: day, To: day.AddDate(0, 0, 1)}),
			[]store.UsagePoint{{Start: day, Units: 5, Requests: 5}})
		month := utc(2025, time.March, 1, 0, 0, 0, 0)
		wantEqual(t, what+": months", f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityMonth, From: month, To: month.AddDate(0, 1, 0)}),
			[]store.UsagePoint{{Start: month, Units: 5, Requests: 5}})
	}
	wantEqual(t, "hours before purging", hours(), []store.UsagePoint{hour(8, 1), hour(9, 1), hour(10, 2), hour(11, 1)})

	// The entries at exactly before, and the bucket starting at exactly
	// hourlyBefore, are kept.
	before := f.allAudit()
	n := must(s.PurgeRequests(ctx, events[2].Time, day.Add(10*time.Hour)))(t)
	wantEqual(t, "purged entries", n, int64(2))
	wantEqual(t, "entries after purging", f.allRequests(store.RequestFilter{OrgID: org.ID}, 100), wantRequests(events[2:], store.RequestFilter{OrgID: org.ID}))
	wantEqual(t, "hours after purging", hours(), []store.UsagePoint{hour(10, 2), hour(11, 1)})
	wantDaysAndMonths("after purging")
	f.wantNewAudit("PurgeRequests (not audited)", before)

	wantEqual(t, "purged again", must(s.PurgeRequests(ctx, events[2].Time, day.Add(10*time.Hour)))(t), int64(0))
	wantEqual(t, "purged everything", must(s.PurgeRequests(ctx, day.AddDate(1, 0, 0), day.AddDate(1, 0, 0)))(t), int64(3))
	wantEqual(t, "entries after purging everything", must(s.ListRequests(ctx, store.RequestFilter{OrgID: org.ID}))(t), []store.UsageEvent{})
	wantEqual(t, "hours after purging everything", hours(), []store.UsagePoint{})
	wantDaysAndMonths("after purging everything")
}

// testQuotaCounts: a saved count only ever rises; a missing key counts 0;
// purging forgets the counts of periods that ended before the given time.
func testQuotaCounts(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	end1 := normalize(f.now().Add(time.Hour))
	end2 := end1.Add(time.Hour)
	wantEqual(t, "missing key", must(s.GetQuotaCount(ctx, "quota:missing"))(t), int64(0))

	steps := []struct {
		name         string
		save         []store.QuotaCount
		wantA, wantB int64
	}{
		{"nothing", nil, 0, 0},
		{"first count", []store.QuotaCount{{Key: "quota:a", Used: 5, PeriodEnd: end1}}, 5, 0},
		{"lower count is ignored", []store.QuotaCount{{Key: "quota:a", Used: 3, PeriodEnd: end1}}, 5, 0},
		{"same count", []store.QuotaCount{{Key: "quota:a", Used: 5, PeriodEnd: end1}}, 5, 0},
		{"two keys", []store.QuotaCount{{Key: "quota:a", Used: 7, PeriodEnd: end1}, {Key: "quota:b", Used: 1, PeriodEnd: end2}}, 7, 1},
		{"one key twice in a batch", []store.QuotaCount{{Key: "quota:b", Used: 4, PeriodEnd: end2}, {Key: "quota:b", Used: 2, PeriodEnd: end2}}, 7, 4},
		{"large count", []store.QuotaCount{{Key: "quota:b", Used: 1 << 50, PeriodEnd: end2}}, 7, 1 << 50},
	}
	for _, st := range steps {
		mustDo(t, s.SaveQuotaCounts(ctx, st.save))
		wantEqual(t, st.name+": key a", must(s.GetQuotaCount(ctx, "quota:a"))(t), st.wantA)
		wantEqual(t, st.name+": key b", must(s.GetQuotaCount(ctx, "quota:b"))(t), st.wantB)
	}

	// A period that ends at exactly the bound is kept.
	mustDo(t, s.PurgeQuotaCounts(ctx, end1))
	wantEqual(t, "key a after purging at its period end", must(s.GetQuotaCount(ctx, "quota:a"))(t), int64(7))
	mustDo(t, s.PurgeQuotaCounts(ctx, end1.Add(time.Microsecond)))
	wantEqual(t, "key a after purging past its period end", must(s.GetQuotaCount(ctx, "quota:a"))(t), int64(0))
	wantEqual(t, "key b after purging", must(s.GetQuotaCount(ctx, "quota:b"))(t), int64(1<<50))

	// A purged count starts over.
	mustDo(t, s.SaveQuotaCounts(ctx, []store.QuotaCount{{Key: "quota:a", Used: 2, PeriodEnd: end2}}))
	wantEqual(t, "key a saved again", must(s.GetQuotaCount(ctx, "quota:a"))(t), int64(2))
}

// testConcurrentRecordUsage: goroutines that record batches at once, each
// its own events plus one batch they all share and a retry of their first
// batch, leave exact totals: every event counted once.
func testConcurrentRecordUsage(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const goroutines, batches, perBatch = 8, 4, 50
	org, _ := f.createOrg()
	day := utc(2025, time.July, 4, 0, 0, 0, 0)
	ev := func(i int) store.UsageEvent {
		e := eventValue(org.ID, "app_a", []string{"key_1", "key_2"}[i%2], day.Add(time.Duration(i%3)*time.Hour+time.Duration(i)*time.Microsecond))
		e.Units = int64(i%5 + 1)
		if i%7 == 0 {
			e.Status = 503
		}
		return e
	}
	shared := make([]store.UsageEvent, perBatch)
	for i := range shared {
		shared[i] = ev(i)
	}
	sharedID := batchID()
	own := make([][][]store.UsageEvent, goroutines)
	ownIDs := make([][]string, goroutines)
	all := slices.Clone(shared)
	for g := range own {
		own[g] = make([][]store.UsageEvent, batches)
		ownIDs[g] = make([]string, batches)
		for b := range own[g] {
			ownIDs[g][b] = batchID()
			for i := range perBatch {
				e := ev(perBatch*(1+g*batches+b) + i)
				own[g][b] = append(own[g][b], e)
				all = append(all, e)
			}
		}
	}

	errs := runAll(goroutines, func(g int) error {
		for b := range batches {
			if err := s.RecordUsage(ctx, ownIDs[g][b], own[g][b]); err != nil {
				return err
			}
			if b == 1 {
				if err := s.RecordUsage(ctx, sharedID, shared); err != nil {
					return err
				}
			}
		}
		return s.RecordUsage(ctx, ownIDs[g][0], own[g][0])
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}

	wantHours := map[time.Time]store.UsagePoint{}
	for _, e := range all {
		h := e.Time.Truncate(time.Hour)
		p := wantHours[h]
		p.Start = h
		p.Units += e.Units
		p.Requests++
		if e.Status >= 400 {
			p.Errors++
		}
		wantHours[h] = p
	}
	want := []store.UsagePoint{}
	for _, h := range slices.SortedFunc(maps.Keys(wantHours), time.Time.Compare) {
		want = append(want, wantHours[h])
	}
	wantEqual(t, "hourly totals", f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityHour, From: day, To: day.AddDate(0, 0, 1)}), want)
	wantEqual(t, "request log", f.allRequests(store.RequestFilter{OrgID: org.ID}, 1000), wantRequests(all, store.RequestFilter{OrgID: org.ID}))
}

// testConcurrentRecordUsageTotals: batches of totals and of events recorded
// at once, each batch of totals also by every goroutine under one shared ID,
// add up exactly, the shared batch once.
func testConcurrentRecordUsageTotals(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const goroutines, batches = 8, 4
	org, _ := f.createOrg()
	h := utc(2025, time.July, 5, 6, 0, 0, 0)
	shared := []store.UsageTotal{{Hour: h, OrgID: org.ID, CredentialID: "key_1", Requests: 1000, Errors: 10, Units: 2000}}
	sharedID := batchID()
	errs := runAll(goroutines, func(g int) error {
		for b := range batches {
			// Two credentials: batches that share rows, and ones that
			// share none.
			total := store.UsageTotal{Hour: h, OrgID: org.ID, CredentialID: []string{"key_1", "key_2"}[g%2], Requests: 3, Errors: 1, Units: 5}
			if err := s.RecordUsageTotals(ctx, batchID(), []store.UsageTotal{total}); err != nil {
				return err
			}
			e := eventValue(org.ID, "", "key_1", h.Add(time.Duration(g*batches+b)*time.Second))
			if err := s.RecordUsage(ctx, batchID(), []store.UsageEvent{e}); err != nil {
				return err
			}
			if b == 1 {
				if err := s.RecordUsageTotals(ctx, sharedID, shared); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	const n = goroutines * batches
	wantEqual(t, "hour", f.series(store.UsageQuery{OrgID: org.ID, Granularity: store.GranularityHour, From: h, To: h.Add(time.Hour)}),
		[]store.UsagePoint{{Start: h, Units: 2000 + 5*n + n, Requests: 1000 + 3*n + n, Errors: 10 + n, Omitted: 1000 + 3*n}})
}
