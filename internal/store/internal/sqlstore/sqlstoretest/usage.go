package sqlstoretest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// RequestLogMigration checks that migration 5 moves the request log between
// rows (version 4) and chunks in both directions without changing an entry,
// and that the chunks the database's JSON functions build decode like the
// ones RecordUsage writes. It records 2500 events of three
// organizations (one of them "") in s, in batches of 700, and lists them;
// downUp must migrate the database down to version 4, check what it holds
// then (one request_log row per event; events[10] is a WebSocket session
// with an odd path), migrate it up again and check that it holds 3 to 9
// chunks; the entries listed then must be the ones listed before.
func RequestLogMigration(t *testing.T, s store.Store, downUp func(events []store.UsageEvent)) {
	t.Helper()
	ctx := t.Context()
	var events []store.UsageEvent
	for i := range 2500 {
		e := store.UsageEvent{
			ID: ids.New(ids.Request), Time: TestTime.Add(time.Duration(i) * time.Second),
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

	downUp(events)

	for org, w := range want {
		if got := list("after", org); !slices.EqualFunc(got, w, func(a, b store.UsageEvent) bool { return a == b }) {
			t.Errorf("organization %q: %d entries after migrating down and up, they differ from the %d before", org, len(got), len(w))
		}
	}
}

// BenchRecordUsage records batches of 1000 events (the gateway's largest)
// and reports events per second: from one credential (the load test's
// traffic), and spread over 10 organizations, 100 app and credential pairs
// and a few hours (600 rollup rows per batch). open returns a fresh store,
// closed when the benchmark ends.
func BenchRecordUsage(b *testing.B, open func(b *testing.B) store.Store) {
	b.Run("one-credential", func(b *testing.B) { benchmarkRecordUsage(b, open(b), 1) })
	b.Run("spread", func(b *testing.B) { benchmarkRecordUsage(b, open(b), 10) })
}

func benchmarkRecordUsage(b *testing.B, s store.Store, orgs int) {
	const batch = 1000
	events := make([]store.UsageEvent, batch)
	n := 0
	for b.Loop() {
		b.StopTimer()
		for i := range events {
			n++
			events[i] = store.UsageEvent{
				ID:           ids.New(ids.Request),
				Time:         TestTime.Add(time.Duration(n) * 10 * time.Millisecond),
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

// BenchListRequests reads the newest page of 100 entries, and a filtered
// page that matches one entry in 50, from a log of 100,000 entries of one
// organization in chunks of 1,000, recorded in s: what the request-log API
// costs now that a read decodes chunks.
func BenchListRequests(b *testing.B, s store.Store) {
	events := make([]store.UsageEvent, 1000)
	for n := 0; n < 100; n++ {
		for i := range events {
			at := n*len(events) + i
			events[i] = store.UsageEvent{
				ID: ids.New(ids.Request), Time: TestTime.Add(time.Duration(at) * time.Millisecond),
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
