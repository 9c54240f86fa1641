// Package limits applies plans at the gateway: it finds the plan of the
// caller's organization, and decides the request's rate limit and quota in
// one atomic operation of the hot-counter store, so that a refused request
// consumes neither.
//
// A plan is a token-bucket rate (requests per second with a burst, decided
// by GCRA) and a quota of units per calendar period in UTC (hour, day or
// month). Both apply per organization. Every admitted response carries the
// remaining allowance in the IETF RateLimit-Policy and RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers), one policy for the rate and one
// for the quota:
//
//	RateLimit-Policy: "burst";q=10;w=2, "month";q=10000;w=2592000
//	RateLimit: "burst";r=7;t=1, "month";r=9958;t=1903412
//
// A rate refusal is 429 RATE_LIMITED; a quota refusal is 403 FORBIDDEN with
// reason quota_exhausted. Both carry Retry-After.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/store"
)

// OrgGetter reads an organization, for its plan.
type OrgGetter interface {
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
}

// Options configure a Limiter.
type Options struct {
	Plans       []config.Plan
	DefaultPlan string // plan of organizations without one; "" and unknown: unlimited
	Orgs        OrgGetter
	Counters    counters.Store
	Clock       clock.Clock // default clock.System{}
	// PlanCacheTTL bounds how long an organization's plan is trusted from
	// memory; `tollgate org set-plan` is seen within it. Default 30s.
	PlanCacheTTL time.Duration
}

// Limiter decides requests against their organization's plan. It is safe for
// concurrent use.
type Limiter struct {
	o     Options
	plans map[string]config.Plan

	mu     sync.RWMutex
	cache  map[string]planEntry // organization ID → plan name
	flight singleflight.Group   // one store read per organization at a time
}

type planEntry struct {
	name    string
	fetched time.Time
}

// New returns a Limiter.
func New(o Options) *Limiter {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.PlanCacheTTL <= 0 {
		o.PlanCacheTTL = 30 * time.Second
	}
	l := &Limiter{o: o, plans: make(map[string]config.Plan, len(o.Plans)), cache: map[string]planEntry{}}
	for _, p := range o.Plans {
		l.plans[p.Name] = p
	}
	return l
}

// maxPlanCache bounds the plan cache; past it the cache starts over.
const maxPlanCache = 100_000

// planOf returns the plan of an organization, and whether it has one.
func (l *Limiter) planOf(ctx context.Context, orgID string, now time.Time) (config.Plan, bool, error) {
	l.mu.RLock()
	e, ok := l.cache[orgID]
	l.mu.RUnlock()
	if !ok || now.Sub(e.fetched) >= l.o.PlanCacheTTL {
		v, err, _ := l.flight.Do(orgID, func() (any, error) {
			org, err := l.o.Orgs.GetOrganization(ctx, orgID)
			if err != nil {
				return nil, err
			}
			e := planEntry{name: org.Plan, fetched: now}
			l.mu.Lock()
			if len(l.cache) >= maxPlanCache {
				clear(l.cache)
			}
			l.cache[orgID] = e
			l.mu.Unlock()
			return e, nil
		})
		if err != nil {
			return config.Plan{}, false, err
		}
		e = v.(planEntry)
	}
	name := e.name
	if name == "" {
		name = l.o.DefaultPlan
	}
	p, ok := l.plans[name]
	return p, ok, nil
}

// Period returns the calendar period (UTC) containing now: its start and
// end, and a label naming it in counter keys.
func Period(period string, now time.Time) (start, end time.Time, label string) {
	now = now.UTC()
	switch period {
	case "hour":
		start = now.Truncate(time.Hour)
		return start, start.Add(time.Hour), start.Format("2006-01-02T15")
	case "day":
		start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1), start.Format("2006-01-02")
	default: // month
		start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0), start.Format("2006-01")
	}
}

var errLimiterDown = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "limit store unavailable")

// Limit decides a request of units for principal p, sets the RateLimit
// headers on w, and returns the refusal, if any.
func (l *Limiter) Limit(w http.ResponseWriter, r *http.Request, p *authn.Principal, units int64) error {
	now := l.o.Clock.Now()
	plan, ok, err := l.planOf(r.Context(), p.OrgID, now)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apierror.ErrForbidden.Wrap(err)
		}
		return errLimiterDown.Wrap(err)
	}
	if !ok || (plan.Rate.RequestsPerSecond == 0 && plan.Quota.Units == 0) {
		return nil // unlimited
	}
	a := counters.Allowance{Rate: plan.Rate.RequestsPerSecond, Burst: plan.Rate.Burst, Quota: plan.Quota.Units}
	var label string
	var periodLen time.Duration
	if a.Quota > 0 {
		var start time.Time
		start, a.PeriodEnd, label = Period(plan.Quota.Period, now)
		periodLen = a.PeriodEnd.Sub(start)
	}
	// {org} is a Redis Cluster hash tag: both keys in one slot, one script.
	d, err := l.o.Counters.Take(r.Context(), "rate:{"+p.OrgID+"}", "quota:{"+p.OrgID+"}:"+label, units, a)
	if err != nil {
		return errLimiterDown.Wrap(err)
	}
	setHeaders(w.Header(), plan, a, d, periodLen, now)
	switch d.Outcome {
	case counters.Admitted:
	case counters.RateLimited:
		return apierror.New(http.StatusTooManyRequests, apierror.RateLimited,
			fmt.Sprintf("rate limit of plan %s exceeded (%g requests per second, burst %d)", plan.Name, a.Rate, a.Burst)).
			WithRetryAfter(d.RetryAfter)
	case counters.QuotaExhausted:
		return apierror.New(http.StatusForbidden, apierror.Forbidden,
			fmt.Sprintf("quota of plan %s exhausted (%d units per %s)", plan.Name, a.Quota, plan.Quota.Period)).
			WithReason(apierror.ReasonQuotaExhausted).WithRetryAfter(d.RetryAfter)
	}
	return nil
}

// setHeaders writes RateLimit-Policy and RateLimit: "burst" for the rate
// (window: the time the bucket takes to refill), the period's name for the
// quota (window: the period's length).
func setHeaders(h http.Header, plan config.Plan, a counters.Allowance, d counters.LimitDecision, periodLen time.Duration, now time.Time) {
	var policy, state []string
	if a.Rate > 0 {
		w := int64(math.Ceil(float64(a.Burst) / a.Rate))
		policy = append(policy, `"burst";q=`+strconv.Itoa(a.Burst)+";w="+strconv.FormatInt(w, 10))
		state = append(state, `"burst";r=`+strconv.Itoa(d.RateRemaining)+";t="+seconds(d.RateReset))
	}
	if a.Quota > 0 {
		name := `"` + plan.Quota.Period + `"`
		policy = append(policy, name+";q="+strconv.FormatInt(a.Quota, 10)+";w="+seconds(periodLen))
		state = append(state, name+";r="+strconv.FormatInt(d.QuotaRemaining, 10)+";t="+seconds(a.PeriodEnd.Sub(now)))
	}
	h["Ratelimit-Policy"] = []string{strings.Join(policy, ", ")}
	h["Ratelimit"] = []string{strings.Join(state, ", ")}
}

func seconds(d time.Duration) string { return strconv.FormatInt(apierror.Seconds(d), 10) }
