package limits

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/store/storetest"
)

// node is one gateway process: its own hot counters, the shared store.
func node(st store.Store, clk clock.Clock, plans ...config.Plan) *Limiter {
	return New(Options{Plans: plans, DefaultPlan: plans[0].Name, Orgs: st, Quotas: st, Counters: memory.New(clk), Clock: clk})
}

func openStore(t *testing.T, clk clock.Clock) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func decide(t *testing.T, l *Limiter, p *authn.Principal, units int64) error {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/v1/x", nil)
	return l.Limit(httptest.NewRecorder(), r, p, units)
}

// A count flushed to the store survives the process: a new Limiter (a
// restart, with empty hot counters) goes on from it, and the quota stays
// exhausted. Counts not yet flushed are what a crash loses, at most one
// interval's worth.
func TestQuotaSurvivesRestart(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st := openStore(t, clk)
	org := storetest.SeedOrganization(t, st, clk.Now())
	plan := config.Plan{Name: "small", Quota: config.PlanQuota{Units: 50, Period: "month"}}
	p := &authn.Principal{OrgID: org.ID, CredentialID: "key_1"}
	ctx := context.Background()

	first := node(st, clk, plan)
	for i := range 30 {
		if err := decide(t, first, p, 1); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := first.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Ten more, never flushed: lost with the process.
	for range 10 {
		if err := decide(t, first, p, 1); err != nil {
			t.Fatal(err)
		}
	}

	second := node(st, clk, plan)
	st2, err := second.Status(ctx, org.ID)
	if err != nil || st2.Used != 30 || st2.Remaining != 20 {
		t.Fatalf("after restart: %+v, %v; want 30 used", st2, err)
	}
	for i := range 20 {
		if err := decide(t, second, p, 1); err != nil {
			t.Fatalf("request %d after restart: %v", i, err)
		}
	}
	err = decide(t, second, p, 1)
	if e := apierror.From(err); e.Status != http.StatusForbidden || e.Reason != apierror.ReasonQuotaExhausted {
		t.Fatalf("51st unit: %v", err)
	}
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	third := node(st, clk, plan)
	if s, _ := third.Status(ctx, org.ID); s.Used != 50 {
		t.Fatalf("after a second restart: %d used, want 50", s.Used)
	}
	// The next month starts from zero.
	clk.Set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err := decide(t, third, p, 1); err != nil {
		t.Fatalf("new month: %v", err)
	}
}

// Flush and Limit race: whatever interleaving, the stored count after a
// final Flush equals the admitted units.
func TestFlushRacesRequests(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st := openStore(t, clk)
	org := storetest.SeedOrganization(t, st, clk.Now())
	l := node(st, clk, config.Plan{Name: "big", Quota: config.PlanQuota{Units: 1_000_000, Period: "day"}})
	p := &authn.Principal{OrgID: org.ID}
	ctx := context.Background()
	stop := make(chan struct{})
	var flushes sync.WaitGroup
	flushes.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if err := l.Flush(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if err := decide(t, l, p, 3); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flushes.Wait()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, label := Period("day", clk.Now())
	got, err := st.GetQuotaCount(ctx, "quota:{"+org.ID+"}:"+label)
	if err != nil || got != 2400 {
		t.Fatalf("stored count %d, %v; want 2400", got, err)
	}
}

// A credential with a plan of its own is decided against that plan, with
// counters of its own; the organization's are untouched.
func TestCredentialPlanOverride(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st := openStore(t, clk)
	org := storetest.SeedOrganization(t, st, clk.Now())
	l := node(st, clk,
		config.Plan{Name: "free", Quota: config.PlanQuota{Units: 2, Period: "month"}},
		config.Plan{Name: "partner", Quota: config.PlanQuota{Units: 5, Period: "month"}},
	)
	ctx := context.Background()
	partner := &authn.Principal{OrgID: org.ID, CredentialID: "key_p", Plan: "partner"}
	other := &authn.Principal{OrgID: org.ID, CredentialID: "key_o"}
	for i := range 5 {
		if err := decide(t, l, partner, 1); err != nil {
			t.Fatalf("partner request %d: %v", i, err)
		}
	}
	if err := decide(t, l, partner, 1); apierror.From(err).Reason != apierror.ReasonQuotaExhausted {
		t.Fatalf("partner's 6th: %v", err)
	}
	if s, _ := l.Status(ctx, org.ID); s.Used != 0 || s.Plan != "free" {
		t.Fatalf("organization's status %+v: the partner key must not count against it", s)
	}
	for range 2 {
		if err := decide(t, l, other, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := decide(t, l, other, 1); apierror.From(err).Reason != apierror.ReasonQuotaExhausted {
		t.Fatalf("org's 3rd: %v", err)
	}
	// A plan that no longer exists falls back to the organization's.
	gone := &authn.Principal{OrgID: org.ID, CredentialID: "key_g", Plan: "removed"}
	if err := decide(t, l, gone, 1); apierror.From(err).Reason != apierror.ReasonQuotaExhausted {
		t.Fatalf("unknown override: %v, want the org's exhausted quota", err)
	}
}

// Charge adds after the fact, beyond the quota if it must; the next request
// is then refused, and the charge is flushed like any other count.
func TestCharge(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st := openStore(t, clk)
	org := storetest.SeedOrganization(t, st, clk.Now())
	var outcomes []counters.LimitOutcome
	l := New(Options{
		Plans:       []config.Plan{{Name: "free", Quota: config.PlanQuota{Units: 10, Period: "month"}}},
		DefaultPlan: "free", Orgs: st, Quotas: st, Counters: memory.New(clk), Clock: clk,
		OnDecision: func(o counters.LimitOutcome) { outcomes = append(outcomes, o) },
	})
	p := &authn.Principal{OrgID: org.ID}
	ctx := context.Background()
	if err := decide(t, l, p, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Charge(ctx, p, 12); err != nil {
		t.Fatal(err)
	}
	if err := decide(t, l, p, 1); apierror.From(err).Reason != apierror.ReasonQuotaExhausted {
		t.Fatalf("after the charge: %v", err)
	}
	if s, _ := l.Status(ctx, org.ID); s.Used != 13 || s.Remaining != 0 {
		t.Fatalf("status %+v", s)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := node(st, clk, config.Plan{Name: "free", Quota: config.PlanQuota{Units: 10, Period: "month"}}).Status(ctx, org.ID); s.Used != 13 {
		t.Fatalf("charge not durable: %+v", s)
	}
	if len(outcomes) != 2 || outcomes[0] != counters.Admitted || outcomes[1] != counters.QuotaExhausted {
		t.Fatalf("decisions observed: %v", outcomes)
	}
}
