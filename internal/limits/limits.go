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
//
// A credential may carry a plan of its own (a per-key override); its
// requests are then decided against that plan, with a rate and a quota of
// their own, and do not count against the organization's.
//
// Quota counts live in the hot-counter store and are copied to the durable
// store by Flush, which RunFlusher calls every interval and once more when
// it stops: after a crash at most one interval of admitted units is missing
// from the count, after a graceful shutdown none. A count is loaded from the
// durable store the first time this process decides against it, raising the
// hot count (never lowering it, so nodes sharing a hot store agree).
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
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

// QuotaStore keeps the durable copy of quota counts (store.Store).
type QuotaStore interface {
	GetQuotaCount(ctx context.Context, key string) (int64, error)
	SaveQuotaCounts(ctx context.Context, counts []store.QuotaCount) error
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
	// StoreOutageGrace is how long past PlanCacheTTL a cached plan is
	// still used while the store cannot be read; 0: none.
	StoreOutageGrace time.Duration
	// Quotas keeps quota counts across restarts; nil: they live only in
	// Counters.
	Quotas QuotaStore
	// OnDecision, when set, is told the outcome of every decision (for
	// metrics). It must be cheap and safe for concurrent use.
	OnDecision func(counters.LimitOutcome)
	// OnQuota, when set, is told when an admitted request takes a quota's
	// use across ThresholdPercent of the quota, or to all of it: once per
	// period and quota, since the counts are exact (on every node
	// together). It runs on the request's goroutine: it must not block.
	OnQuota func(QuotaCrossing)
}

// ThresholdPercent is the share of a quota whose crossing OnQuota reports
// as a threshold.
const ThresholdPercent = 80

// QuotaCrossing is a quota's use crossing ThresholdPercent (Exhausted
// false) or reaching the quota (Exhausted true).
type QuotaCrossing struct {
	OrgID string
	// CredentialID is set when the quota is the credential's own (a wallet
	// subscription's plan), not its organization's.
	CredentialID string
	Plan         string
	Period       string // "day", "month", …
	PeriodEnd    time.Time
	Used, Quota  int64
	Exhausted    bool
}

// Limiter decides requests against their organization's plan. It is safe for
// concurrent use.
type Limiter struct {
	o     Options
	plans map[string]config.Plan

	mu     sync.RWMutex
	cache  map[string]planEntry // organization ID → plan name
	flight singleflight.Group   // one store read per organization (or quota key) at a time

	loadedMu sync.RWMutex
	loaded   map[string]time.Time // quota keys loaded from Quotas → their period's end

	dirtyMu sync.Mutex
	dirty   map[string]time.Time // quota keys admitted since the last Flush → period end
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
	l := &Limiter{
		o: o, plans: make(map[string]config.Plan, len(o.Plans)), cache: map[string]planEntry{},
		loaded: map[string]time.Time{}, dirty: map[string]time.Time{},
	}
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
		switch {
		case err == nil:
			e = v.(planEntry)
		case ok && now.Sub(e.fetched) < l.o.PlanCacheTTL+l.o.StoreOutageGrace:
			// A store outage: the plan known a little while ago holds
			// for the grace.
		default:
			return config.Plan{}, false, err
		}
	}
	name := e.name
	if name == "" {
		name = l.o.DefaultPlan
	}
	p, ok := l.plans[name]
	return p, ok, nil
}

// Period returns the calendar period (UTC) containing now: its start and
// end, and a label naming it in counter keys. Periods are the buckets of
// the usage rollups (store.BucketStart).
func Period(period string, now time.Time) (start, end time.Time, label string) {
	start = store.BucketStart(period, now)
	end = store.AddBuckets(period, start, 1)
	switch period {
	case store.GranularityHour:
		return start, end, start.Format("2006-01-02T15")
	case store.GranularityDay:
		return start, end, start.Format("2006-01-02")
	default:
		return start, end, start.Format("2006-01")
	}
}

var errLimiterDown = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "limit store unavailable")

// Limit decides a request of units for principal p, sets the RateLimit
// headers on w, and returns the refusal, if any.
func (l *Limiter) Limit(w http.ResponseWriter, r *http.Request, p *authn.Principal, units int64) error {
	ctx := r.Context()
	now := l.o.Clock.Now()
	plan, scope, ok, err := l.planFor(ctx, p, now)
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
	var quotaKey string
	var periodLen time.Duration
	if a.Quota > 0 {
		var start time.Time
		var label string
		start, a.PeriodEnd, label = Period(plan.Quota.Period, now)
		periodLen = a.PeriodEnd.Sub(start)
		quotaKey = "quota:" + scope + ":" + label
		if err := l.load(ctx, quotaKey, a.PeriodEnd); err != nil {
			return errLimiterDown.Wrap(err)
		}
	}
	d, err := l.o.Counters.Take(ctx, "rate:"+scope, quotaKey, units, a)
	if err != nil {
		return errLimiterDown.Wrap(err)
	}
	if l.o.OnDecision != nil {
		l.o.OnDecision(d.Outcome)
	}
	setHeaders(w.Header(), plan, a, d, periodLen, now)
	switch d.Outcome {
	case counters.Admitted:
		if a.Quota > 0 && units > 0 {
			l.markDirty(quotaKey, a.PeriodEnd)
			if l.o.OnQuota != nil {
				l.crossed(p, plan, a, d.QuotaUsed, units)
			}
		}
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

// crossed reports to OnQuota a use that went from used-units to used
// across the threshold or to the quota.
func (l *Limiter) crossed(p *authn.Principal, plan config.Plan, a counters.Allowance, used, units int64) {
	before := used - units
	threshold := (a.Quota*ThresholdPercent + 99) / 100 // the first count at or above 80%
	atThreshold := before < threshold && used >= threshold && used < a.Quota
	exhausted := before < a.Quota && used >= a.Quota
	if !atThreshold && !exhausted {
		return // nearly always
	}
	c := QuotaCrossing{
		OrgID: p.OrgID, Plan: plan.Name, Period: plan.Quota.Period, PeriodEnd: a.PeriodEnd,
		Used: used, Quota: a.Quota, Exhausted: exhausted,
	}
	if plan.Name == p.Plan {
		c.CredentialID = p.CredentialID
	}
	l.o.OnQuota(c)
}

// Charge adds units to the quota of p's plan without deciding anything: for
// what is only known after the fact, such as the megabytes a WebSocket
// session carried. The count may then exceed the quota; the next request is
// refused. Without a quota it does nothing.
func (l *Limiter) Charge(ctx context.Context, p *authn.Principal, units int64) error {
	if units <= 0 {
		return nil
	}
	now := l.o.Clock.Now()
	plan, scope, ok, err := l.planFor(ctx, p, now)
	if err != nil || !ok || plan.Quota.Units == 0 {
		return err
	}
	_, end, label := Period(plan.Quota.Period, now)
	key := "quota:" + scope + ":" + label
	if err := l.load(ctx, key, end); err != nil {
		return err
	}
	// A quota no count can exhaust admits every charge: Take then only adds.
	if _, err := l.o.Counters.Take(ctx, "", key, units, counters.Allowance{Quota: math.MaxInt64, PeriodEnd: end}); err != nil {
		return err
	}
	l.markDirty(key, end)
	return nil
}

// planFor returns the plan deciding p's requests and the scope of its
// counters: the credential's own plan when it has one that exists, else the
// organization's. {org} is a Redis Cluster hash tag: both counters of a
// decision hash to one slot, so that one script decides them.
func (l *Limiter) planFor(ctx context.Context, p *authn.Principal, now time.Time) (config.Plan, string, bool, error) {
	if p.Plan != "" {
		if plan, ok := l.plans[p.Plan]; ok {
			return plan, "{" + p.OrgID + "}:cred:" + p.CredentialID, true, nil
		}
	}
	plan, ok, err := l.planOf(ctx, p.OrgID, now)
	return plan, "{" + p.OrgID + "}", ok, err
}

// maxLoaded bounds the set of quota keys loaded from the durable store;
// past it the set starts over, which costs reloads, never counts.
const maxLoaded = 100_000

// load raises the hot count of key to its durable count, once per process
// and key (and again after the set of loaded keys starts over).
func (l *Limiter) load(ctx context.Context, key string, periodEnd time.Time) error {
	if l.o.Quotas == nil {
		return nil
	}
	l.loadedMu.RLock()
	_, ok := l.loaded[key]
	l.loadedMu.RUnlock()
	if ok {
		return nil
	}
	_, err, _ := l.flight.Do("load "+key, func() (any, error) {
		l.loadedMu.RLock()
		_, ok := l.loaded[key]
		l.loadedMu.RUnlock()
		if ok {
			return nil, nil
		}
		used, err := l.o.Quotas.GetQuotaCount(ctx, key)
		if err != nil {
			return nil, err
		}
		if used > 0 {
			if err := l.o.Counters.SetQuotaUsed(ctx, key, used, periodEnd); err != nil {
				return nil, err
			}
		}
		l.loadedMu.Lock()
		if len(l.loaded) >= maxLoaded {
			clear(l.loaded)
		}
		l.loaded[key] = periodEnd
		l.loadedMu.Unlock()
		return nil, nil
	})
	return err
}

// markDirty notes that key's count changed since the last Flush. It runs
// after the change, so a Flush that swaps the set out before reading the
// count either reads the change or finds the key marked again.
func (l *Limiter) markDirty(key string, periodEnd time.Time) {
	if l.o.Quotas == nil {
		return
	}
	l.dirtyMu.Lock()
	l.dirty[key] = periodEnd
	l.dirtyMu.Unlock()
}

// Flush copies the quota counts that changed since the last Flush to the
// durable store. On failure the keys stay marked for the next one.
func (l *Limiter) Flush(ctx context.Context) error {
	if l.o.Quotas == nil {
		return nil
	}
	l.dirtyMu.Lock()
	dirty := l.dirty
	l.dirty = make(map[string]time.Time, len(dirty))
	l.dirtyMu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	counts := make([]store.QuotaCount, 0, len(dirty))
	var err error
	for key, end := range dirty {
		var used int64
		if used, err = l.o.Counters.QuotaUsed(ctx, key); err != nil {
			break
		}
		counts = append(counts, store.QuotaCount{Key: key, Used: used, PeriodEnd: end})
	}
	if err == nil {
		err = l.o.Quotas.SaveQuotaCounts(ctx, counts)
	}
	if err != nil {
		l.dirtyMu.Lock()
		for key, end := range dirty {
			if _, ok := l.dirty[key]; !ok {
				l.dirty[key] = end
			}
		}
		l.dirtyMu.Unlock()
		return fmt.Errorf("limits: flush quota counts: %w", err)
	}
	// Forget loaded keys of periods that are over.
	now := l.o.Clock.Now()
	l.loadedMu.Lock()
	for key, end := range l.loaded {
		if !end.After(now) {
			delete(l.loaded, key)
		}
	}
	l.loadedMu.Unlock()
	return nil
}

// RunFlusher calls Flush every interval until ctx ends, then once more,
// with its own deadline, so that a graceful shutdown loses no count.
func (l *Limiter) RunFlusher(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
				log.Error("quota counts not saved; retrying", "error", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := l.Flush(fctx); err != nil {
				log.Error("final flush of quota counts failed", "error", err)
			}
			return
		}
	}
}

// setHeaders writes RateLimit-Policy and RateLimit: "burst" for the rate
// (window: the time the bucket takes to refill), the period's name for the
// quota (window: the period's length).
func setHeaders(h http.Header, plan config.Plan, a counters.Allowance, d counters.LimitDecision, periodLen time.Duration, now time.Time) {
	var buf [256]byte
	policy, state := buf[:0:128], buf[128:128]
	if a.Rate > 0 {
		w := int64(math.Ceil(float64(a.Burst) / a.Rate))
		policy = append(policy, `"burst";q=`...)
		policy = strconv.AppendInt(policy, int64(a.Burst), 10)
		policy = append(policy, ";w="...)
		policy = strconv.AppendInt(policy, w, 10)
		state = append(state, `"burst";r=`...)
		state = strconv.AppendInt(state, int64(d.RateRemaining), 10)
		state = append(state, ";t="...)
		state = strconv.AppendInt(state, apierror.Seconds(d.RateReset), 10)
	}
	if a.Quota > 0 {
		if len(policy) > 0 {
			policy, state = append(policy, ", "...), append(state, ", "...)
		}
		policy = append(append(append(policy, '"'), plan.Quota.Period...), `";q=`...)
		policy = strconv.AppendInt(policy, a.Quota, 10)
		policy = append(policy, ";w="...)
		policy = strconv.AppendInt(policy, apierror.Seconds(periodLen), 10)
		state = append(append(append(state, '"'), plan.Quota.Period...), `";r=`...)
		state = strconv.AppendInt(state, d.QuotaRemaining, 10)
		state = append(state, ";t="...)
		state = strconv.AppendInt(state, apierror.Seconds(a.PeriodEnd.Sub(now)), 10)
	}
	// One string and one backing array for both headers: two allocations
	// instead of four. policy has room of its own up to 128 bytes, so the
	// append never writes over state.
	both := string(append(policy, state...))
	values := make([]string, 2)
	values[0], values[1] = both[:len(policy)], both[len(policy):]
	h["Ratelimit-Policy"] = values[0:1:1]
	h["Ratelimit"] = values[1:2:2]
}

// Status is an organization's allowance and what it has used of its quota
// in the current period.
type Status struct {
	Plan       string  // "" when no plan applies: unlimited
	Rate       float64 // requests per second; 0: no rate limit
	Burst      int
	QuotaUnits int64 // units per period; 0: no quota
	// Period is the quota's period, "month" when the plan has no quota;
	// PeriodStart and PeriodEnd bound the current one (calendar, UTC).
	Period      string
	PeriodStart time.Time
	PeriodEnd   time.Time
	Used        int64 // units used in the period; 0 without a quota
	Remaining   int64 // QuotaUnits − Used, never negative; 0 without a quota
}

// Status reports the allowance of an organization's plan and its use.
func (l *Limiter) Status(ctx context.Context, orgID string) (Status, error) {
	now := l.o.Clock.Now()
	plan, ok, err := l.planOf(ctx, orgID, now)
	if err != nil {
		return Status{}, err
	}
	st := Status{Period: "month"}
	if ok {
		st.Plan, st.Rate, st.Burst, st.QuotaUnits = plan.Name, plan.Rate.RequestsPerSecond, plan.Rate.Burst, plan.Quota.Units
		if plan.Quota.Units > 0 {
			st.Period = plan.Quota.Period
		}
	}
	var label string
	st.PeriodStart, st.PeriodEnd, label = Period(st.Period, now)
	if st.QuotaUnits > 0 {
		key := "quota:{" + orgID + "}:" + label
		if err := l.load(ctx, key, st.PeriodEnd); err != nil {
			return Status{}, err
		}
		if st.Used, err = l.o.Counters.QuotaUsed(ctx, key); err != nil {
			return Status{}, err
		}
		st.Remaining = max(0, st.QuotaUnits-st.Used)
	}
	return st, nil
}
