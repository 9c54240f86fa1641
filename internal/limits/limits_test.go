package limits

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/store"
)

func TestPeriod(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		period, now, start, end, label string
	}{
		{"hour", "2026-11-22T07:59:59Z", "2026-11-22T07:00:00Z", "2026-11-22T08:00:00Z", "2026-11-22T07"},
		{"day", "2026-11-22T23:59:59Z", "2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z", "2026-11-22"},
		{"month", "2026-12-31T23:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026-12"},
		{"month", "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", "2028-02"},
		// Another zone: the period is still the UTC calendar's.
		{"day", "2026-11-22T01:00:00+05:00", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", "2026-11-21"},
	}
	for _, tt := range tests {
		start, end, label := Period(tt.period, at(tt.now))
		if !start.Equal(at(tt.start)) || !end.Equal(at(tt.end)) || label != tt.label {
			t.Errorf("Period(%s, %s) = %v, %v, %q; want %s, %s, %q", tt.period, tt.now, start, end, label, tt.start, tt.end, tt.label)
		}
	}
}

type orgs struct {
	plan  string
	reads int
}

func (o *orgs) GetOrganization(_ context.Context, id string) (store.Organization, error) {
	o.reads++ // not atomic: TestPlanCache is sequential, BenchmarkLimit uses fixedOrgs
	return store.Organization{ID: id, Plan: o.plan}, nil
}

// An organization's plan is read once per cache TTL: a change made by the
// CLI shows within it; no plan means the default plan.
func TestPlanCache(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	src := &orgs{}
	l := New(Options{
		Plans:       []config.Plan{{Name: "free"}, {Name: "pro"}},
		DefaultPlan: "free", Orgs: src, Clock: clk, PlanCacheTTL: 30 * time.Second,
	})
	plan := func() string {
		t.Helper()
		p, ok, err := l.planOf(context.Background(), "org_1", clk.Now())
		if err != nil || !ok {
			t.Fatalf("planOf: %v %v", ok, err)
		}
		return p.Name
	}
	if got := plan(); got != "free" {
		t.Fatalf("no plan assigned: %s, want the default", got)
	}
	src.plan = "pro"
	if got := plan(); got != "free" || src.reads != 1 {
		t.Fatalf("within the TTL: %s after %d reads", got, src.reads)
	}
	clk.Advance(31 * time.Second)
	if got := plan(); got != "pro" || src.reads != 2 {
		t.Fatalf("after the TTL: %s after %d reads", got, src.reads)
	}
}

// BenchmarkLimit is the cost of one decision as the gateway makes it: the
// plan from the cache, the loaded-count check, Take on the memory store,
// the RateLimit headers. Parallel: every goroutine its own organization.
func BenchmarkLimit(b *testing.B) {
	clk := clock.System{}
	l := New(Options{
		Plans: []config.Plan{{Name: "free",
			Rate:  config.PlanRate{RequestsPerSecond: 1e9, Burst: 1 << 30},
			Quota: config.PlanQuota{Units: 1 << 60, Period: "month"}}},
		DefaultPlan: "free", Orgs: fixedOrgs{}, Counters: memory.New(clk), Clock: clk,
	})
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := &authn.Principal{OrgID: fmt.Sprintf("org_%d", n.Add(1)), CredentialID: "key_1"}
		r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
		w := httptest.NewRecorder()
		for pb.Next() {
			if err := l.Limit(w, r, p, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fixedOrgs has every organization, on the default plan.
type fixedOrgs struct{}

func (fixedOrgs) GetOrganization(_ context.Context, id string) (store.Organization, error) {
	return store.Organization{ID: id}, nil
}

// TestOnQuota reports the crossing of 80% of the quota, and of the whole
// quota, once per period; a period later they are reported again.
func TestOnQuota(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	var got []QuotaCrossing
	l := New(Options{
		Plans:       []config.Plan{{Name: "free", Quota: config.PlanQuota{Units: 10, Period: "day"}}},
		DefaultPlan: "free", Orgs: fixedOrgs{}, Counters: memory.New(clk), Clock: clk,
		OnQuota: func(c QuotaCrossing) { got = append(got, c) },
	})
	p := &authn.Principal{OrgID: "org_q", CredentialID: "key_1"}
	take := func(units int64) error {
		return l.Limit(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/x", nil), p, units)
	}
	for i := range 7 {
		if err := take(1); err != nil || len(got) != 0 {
			t.Fatalf("request %d: %v, crossings %+v", i+1, err, got)
		}
	}
	if err := take(1); err != nil || len(got) != 1 || got[0].Exhausted || got[0].Used != 8 || got[0].Quota != 10 ||
		got[0].OrgID != "org_q" || got[0].CredentialID != "" || got[0].Plan != "free" || got[0].Period != "day" {
		t.Fatalf("at 8 of 10: %v, %+v", err, got)
	}
	_ = take(1)
	if err := take(1); err != nil || len(got) != 2 || !got[1].Exhausted || got[1].Used != 10 {
		t.Fatalf("at 10 of 10: %v, %+v", err, got)
	}
	if err := take(1); err == nil || len(got) != 2 {
		t.Fatalf("refused beyond the quota: %v, %+v", err, got)
	}
	clk.Advance(24 * time.Hour)
	if err := take(9); err != nil || len(got) != 3 || got[2].Exhausted || got[2].Used != 9 {
		t.Fatalf("next day, 9 at once: %v, %+v", err, got)
	}
	if err := take(5); err == nil {
		t.Fatal("14 of 10 admitted")
	}
	if err := take(1); err != nil || len(got) != 4 || !got[3].Exhausted {
		t.Fatalf("the last unit: %v, %+v", err, got)
	}
}
