package postgres

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// BenchmarkRecordUsage records batches of 1000 events (the gateway's largest)
// and reports events per second: from one credential (the load test's
// traffic), and spread over 10 organizations, 100 app and credential pairs
// and a few hours (600 rollup rows per batch).
func BenchmarkRecordUsage(b *testing.B) {
	b.Run("one-credential", func(b *testing.B) { benchmarkRecordUsage(b, 1) })
	b.Run("spread", func(b *testing.B) { benchmarkRecordUsage(b, 10) })
}

func benchmarkRecordUsage(b *testing.B, orgs int) {
	const batch = 1000
	url, schema := newSchema(b)
	s := openTest(b, url, schema)
	events := make([]store.UsageEvent, batch)
	n := 0
	for b.Loop() {
		b.StopTimer()
		for i := range events {
			n++
			events[i] = store.UsageEvent{
				ID:           ids.New(ids.Request),
				Time:         testTime.Add(time.Duration(n) * 10 * time.Millisecond),
				OrgID:        fmt.Sprintf("org_%d", n%orgs),
				AppID:        fmt.Sprintf("app_%d", n%(2*orgs)),
				CredentialID: fmt.Sprintf("key_%d", n%(5*orgs)),
				AuthMethod:   "apikey",
				Method:       "GET",
				Route:        "/v1/",
				Path:         "/v1/things/42",
				Status:       200 + 200*(n%10/9),
				Latency:      1200 * time.Microsecond,
				RequestBytes: 100, ResponseBytes: 2000, Units: 1,
				ClientIP: "192.0.2.1", UserAgent: "bench/1.0",
			}
		}
		b.StartTimer()
		if err := s.RecordUsage(b.Context(), ids.New(ids.UsageBatch), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// TestRequestLogMigration: migration 5 moves the request log between rows
// (version 4) and chunks in both directions without changing an entry; the
// chunks PostgreSQL's JSON functions build decode like the ones RecordUsage
// writes.
func TestRequestLogMigration(t *testing.T) {
	url, schema := newSchema(t)
	s := openTest(t, url, schema)
	ctx := t.Context()
	var events []store.UsageEvent
	for i := range 2500 {
		e := store.UsageEvent{
			ID: ids.New(ids.Request), Time: testTime.Add(time.Duration(i) * time.Second),
			OrgID: []string{"org_a", "org_b", ""}[i%3], AppID: "app_1", CredentialID: "key_1",
			AuthMethod: "apikey", Method: "GET", Route: "/v1/", Path: fmt.Sprintf("/v1/things/%d", i),
			Status: 200, Latency: time.Duration(i) * time.Microsecond, RequestBytes: int64(i),
			ResponseBytes: 1 << 41, Units: 1, ClientIP: "2001:db8::1", UserAgent: "bench/1.0",
		}
		if i%10 == 0 {
			e.Path, e.UserAgent = `/v1/"quoted"\back`+"\t\u00e9\u2028", "ua \x01 \U0001F600"
			e.Status, e.ErrorCode, e.Units, e.WebSocket = 101, "", 0, true
		}
		events = append(events, e)
	}
	for i := 0; i < len(events); i += 700 {
		if err := s.RecordUsage(ctx, ids.New(ids.UsageBatch), events[i:min(i+700, len(events))]); err != nil {
			t.Fatal(err)
		}
	}
	list := func(what, org string) []store.UsageEvent {
		t.Helper()
		got, err := s.ListRequests(ctx, store.RequestFilter{OrgID: org, Limit: 10000})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return got
	}
	want := map[string][]store.UsageEvent{}
	for _, org := range []string{"org_a", "org_b", ""} {
		want[org] = list("before", org)
		if len(want[org]) == 0 {
			t.Fatalf("nothing listed for %q", org)
		}
	}

	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := newMigrationProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("down to 4: %v", err)
	}
	var rows int
	var ws bool
	var path string
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM request_log`).Scan(&rows); err != nil || rows != len(events) {
		t.Fatalf("request_log holds %d rows (%v), want %d", rows, err, len(events))
	}
	if err := s.pool.QueryRow(ctx, `SELECT websocket, path FROM request_log WHERE id = $1`, events[10].ID).Scan(&ws, &path); err != nil || !ws || path != events[10].Path {
		t.Errorf("row of event 10: websocket %v, path %q (%v); want true, %q", ws, path, err, events[10].Path)
	}
	if err := migrate(ctx, s.pool, schema); err != nil {
		t.Fatalf("up again: %v", err)
	}
	for org, w := range want {
		if got := list("after", org); !slices.EqualFunc(got, w, func(a, b store.UsageEvent) bool { return a == b }) {
			t.Errorf("organization %q: %d entries after migrating down and up, they differ from the %d before", org, len(got), len(w))
		}
	}
	var chunks int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM request_chunks`).Scan(&chunks); err != nil || chunks < 3 || chunks > 9 {
		t.Errorf("%d chunks (%v) after migrating 2500 rows of 3 organizations, want 3 to 9", chunks, err)
	}
}

// BenchmarkListRequests reads the newest page of 100 entries, and a filtered
// page that matches one entry in 50, from a log of 100,000 entries of one
// organization in chunks of 1,000: what the request-log API costs now that a
// read decodes chunks.
func BenchmarkListRequests(b *testing.B) {
	url, schema := newSchema(b)
	s := openTest(b, url, schema)
	events := make([]store.UsageEvent, 1000)
	for n := 0; n < 100; n++ {
		for i := range events {
			at := n*len(events) + i
			events[i] = store.UsageEvent{
				ID: ids.New(ids.Request), Time: testTime.Add(time.Duration(at) * time.Millisecond),
				OrgID: "org_1", AppID: "app_1", CredentialID: fmt.Sprintf("key_%d", at%50),
				AuthMethod: "apikey", Method: "GET", Route: "/v1/", Path: "/v1/things/42",
				Status: 200, Latency: 1200 * time.Microsecond, RequestBytes: 100, ResponseBytes: 2000,
				Units: 1, ClientIP: "192.0.2.1", UserAgent: "bench/1.0",
			}
		}
		if err := s.RecordUsage(b.Context(), ids.New(ids.UsageBatch), events); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		f    store.RequestFilter
	}{
		{"newest-100", store.RequestFilter{OrgID: "org_1", Limit: 100}},
		{"one-credential-100", store.RequestFilter{OrgID: "org_1", CredentialID: "key_7", Limit: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.ListRequests(b.Context(), bc.f)
				if err != nil || len(got) != 100 {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
		})
	}
}
