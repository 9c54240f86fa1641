package dashboard

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/store"
)

// overviewRoutes registers the overview page.
func (d *Dashboard) overviewRoutes() {
	d.mux.Handle("GET /dashboard/overview", d.page(d.overview))
}

// overviewData is the overview page's: the plan and its use this period,
// and today's traffic.
type overviewData struct {
	Allowance limits.Status
	Unlimited bool
	// Period's units, requests and errors (the calendar period of the
	// quota, or the month), and today's.
	Period, Today store.UsagePoint
	Keys, Apps    int
	// Alerts counts the security alerts of the last 7 days (owners and
	// admins only; -1 for others).
	Alerts int
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	now := d.o.Clock.Now()
	var data overviewData
	if d.o.Allowance != nil {
		st, err := d.o.Allowance.Status(ctx, s.Org.ID)
		if err != nil {
			return err
		}
		data.Allowance = st
	} else {
		_, end, _ := limits.Period(store.GranularityMonth, now)
		data.Allowance = limits.Status{Period: store.GranularityMonth, PeriodStart: store.BucketStart(store.GranularityMonth, now), PeriodEnd: end}
	}
	data.Unlimited = data.Allowance.Plan == ""
	sum := func(granularity string, from, to time.Time) (store.UsagePoint, error) {
		pts, err := d.o.Usage.UsageSeries(ctx, store.UsageQuery{OrgID: s.Org.ID, Granularity: granularity, From: from, To: to})
		var total store.UsagePoint
		for _, p := range pts {
			total.Units += p.Units
			total.Requests += p.Requests
			total.Errors += p.Errors
		}
		return total, err
	}
	var err error
	a := data.Allowance
	if data.Period, err = sum(a.Period, a.PeriodStart, a.PeriodEnd); err != nil {
		return err
	}
	day := store.BucketStart(store.GranularityDay, now)
	if data.Today, err = sum(store.GranularityDay, day, day.AddDate(0, 0, 1)); err != nil {
		return err
	}
	keys, err := d.o.Keys.List(ctx, s.Org.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || k.ExpiresAt.After(now)) {
			data.Keys++
		}
	}
	apps, err := d.o.Apps.ListApps(ctx, s.Org.ID)
	if err != nil {
		return err
	}
	data.Apps = len(apps)
	data.Alerts = -1
	if s.CanManage() {
		if data.Alerts, err = d.recentAlerts(ctx, s.Org.ID, now.Add(-7*24*time.Hour)); err != nil {
			return err
		}
	}
	d.render(w, r, http.StatusOK, "overview", view{Title: "Overview", Nav: "overview", Session: s, Org: s.Org, CSRF: s.CSRF, Data: data})
	return nil
}
