package controlapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/store"
)

// UsageReader reads the usage rollups and the request log (store.Store).
type UsageReader interface {
	UsageSeries(ctx context.Context, q store.UsageQuery) ([]store.UsagePoint, error)
	ListRequests(ctx context.Context, f store.RequestFilter) ([]store.UsageEvent, error)
}

// AllowanceReader reports an organization's plan allowance and its use
// (*limits.Limiter).
type AllowanceReader interface {
	Status(ctx context.Context, orgID string) (limits.Status, error)
}

// Bounds of the usage API's query parameters.
const (
	// maxBuckets bounds the length of a usage series.
	maxBuckets = 1000
	// maxIDParam bounds app and credential filters and the entry ID in a
	// request-log cursor, in bytes.
	maxIDParam = 128
	// maxTimeParam bounds the from and to parameters, in bytes.
	maxTimeParam = 64
	// defaultRequestPage and maxRequestPage bound a page of the request log.
	defaultRequestPage = 100
	maxRequestPage     = 1000
)

// Times outside [minQueryTime, maxQueryTime) are refused, so that every time
// the API derives from them (a month's end, a default window) stays within
// what JSON timestamps can carry.
var (
	minQueryTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxQueryTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// defaultBuckets is the length of the series asked without a from: the last
// 24 hours, the last 30 days, the last 12 months, the current one included.
var defaultBuckets = map[string]int{
	store.GranularityHour:  24,
	store.GranularityDay:   30,
	store.GranularityMonth: 12,
}

// --- views ---

// UsageCounts are the counters of a usage bucket or a sum of buckets.
// Errors are responses with a status of 400 or more.
type UsageCounts struct {
	Units    int64 `json:"units"`
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
}

func (c *UsageCounts) add(o UsageCounts) {
	c.Units += o.Units
	c.Requests += o.Requests
	c.Errors += o.Errors
}

func countsOf(p store.UsagePoint) UsageCounts {
	return UsageCounts{Units: p.Units, Requests: p.Requests, Errors: p.Errors}
}

// UsageBucket is one bucket of a usage series: the calendar hour, day or
// month (UTC) that begins at Start.
type UsageBucket struct {
	Start time.Time `json:"start"`
	UsageCounts
}

// UsagePeriod is the use of the organization's current quota period
// ("Total Usage"), summed from the rollups of the period's granularity.
type UsagePeriod struct {
	Period string    `json:"period"` // "hour", "day" or "month"
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"` // exclusive
	UsageCounts
}

// PlanAllowance is the organization's plan and what it has used of its
// quota in the current period.
type PlanAllowance struct {
	Name              *string `json:"name"`                // null: no plan applies, unlimited
	RequestsPerSecond float64 `json:"requests_per_second"` // 0: no rate limit
	Burst             int     `json:"burst"`
	// The quota fields are null when the plan has no quota.
	QuotaUnits     *int64 `json:"quota_units"`
	QuotaUsed      *int64 `json:"quota_used"`
	QuotaRemaining *int64 `json:"quota_remaining"`
}

// RequestLogSampling says whether the request log of a window holds every
// request. Under overload the log keeps a sample (see the README's Usage
// metering): Omitted requests of the window have no request-log entry, but
// count in the series, the totals and the quota like every other. Requests
// are counted by the hours (UTC) they fall in: every hour the window
// touches.
type RequestLogSampling struct {
	Sampled bool  `json:"sampled"` // Omitted > 0
	Omitted int64 `json:"omitted"`
}

func (s *RequestLogSampling) add(omitted int64) {
	s.Omitted += omitted
	s.Sampled = s.Omitted > 0
}

// Usage is the answer of GET /api/v1/usage.
type Usage struct {
	Granularity string    `json:"granularity"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"` // exclusive
	App         *string   `json:"app"`
	Credential  *string   `json:"credential"`
	// Series has every bucket of [From, To), oldest first; buckets without
	// requests are zero.
	Series        []UsageBucket `json:"series"`
	Totals        UsageCounts   `json:"totals"`
	CurrentPeriod UsagePeriod   `json:"current_period"`
	Plan          PlanAllowance `json:"plan"`
	// RequestLog says how many requests of [From, To) (and of the app and
	// credential asked) the request log left out.
	RequestLog RequestLogSampling `json:"request_log"`
}

// RequestLogEntry is the public view of one request-log entry.
type RequestLogEntry struct {
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	Route         string    `json:"route"`
	Status        int       `json:"status"`
	ErrorCode     *string   `json:"error_code"`
	LatencyMS     float64   `json:"latency_ms"` // milliseconds, to the microsecond
	RequestBytes  int64     `json:"request_bytes"`
	ResponseBytes int64     `json:"response_bytes"`
	Units         int64     `json:"units"`
	ClientIP      string    `json:"client_ip"`
	UserAgent     string    `json:"user_agent"`
	AuthMethod    string    `json:"auth_method"`
	AppID         *string   `json:"app_id"`
	CredentialID  *string   `json:"credential_id"`
	WebSocket     bool      `json:"websocket"`
}

// RequestLogView renders e.
func RequestLogView(e store.UsageEvent) RequestLogEntry {
	return RequestLogEntry{
		ID: e.ID, Time: ts(e.Time), Method: e.Method, Path: e.Path, Route: e.Route, Status: e.Status,
		ErrorCode:    optString(e.ErrorCode),
		LatencyMS:    float64(e.Latency.Microseconds()) / 1000,
		RequestBytes: e.RequestBytes, ResponseBytes: e.ResponseBytes, Units: e.Units,
		ClientIP: e.ClientIP, UserAgent: e.UserAgent, AuthMethod: e.AuthMethod,
		AppID: optString(e.AppID), CredentialID: optString(e.CredentialID), WebSocket: e.WebSocket,
	}
}

// RequestPage is a page of the request log, newest first. NextCursor, when
// not null, is the cursor parameter that asks for the next page. RequestLog
// says how many requests of the window asked (from and to, by whole hours;
// the app and credential asked; whatever their status) the log left out;
// it is the same on every page.
type RequestPage struct {
	Data       []RequestLogEntry  `json:"data"`
	NextCursor *string            `json:"next_cursor"`
	RequestLog RequestLogSampling `json:"request_log"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// --- GET /api/v1/usage ---

// getUsage answers the usage series of the session's organization, every
// bucket of the window zero-filled, with the use of the current quota period
// and the plan's allowance. Any role may read it.
func (a *API) getUsage(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	now := a.clock.Now()
	q, err := parseUsageQuery(r.URL.Query(), now)
	if err != nil {
		return err
	}
	q.OrgID = s.User.OrgID // never from the request
	out, err := ReportUsage(r.Context(), a.usage, a.allowance, q, now)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// ReportUsage is the answer of GET /api/v1/usage for q, a query made by
// ParseUsageQuery with its OrgID set, as of now: every bucket of q's window
// zero-filled, their totals, the use of the organization's current quota
// period (filtered like the series by q's app and credential) and the plan's
// allowance. A nil allowance means no plan applies: the period is the
// calendar month.
func ReportUsage(ctx context.Context, usage UsageReader, allowance AllowanceReader, q store.UsageQuery, now time.Time) (Usage, error) {
	points, err := usage.UsageSeries(ctx, q)
	if err != nil {
		return Usage{}, err
	}
	out := Usage{
		Granularity: q.Granularity, From: q.From, To: q.To,
		App: optString(q.AppID), Credential: optString(q.CredentialID),
		Series: fillSeries(q, points),
	}
	for _, b := range out.Series {
		out.Totals.add(b.UsageCounts)
	}
	for _, p := range points {
		if !p.Start.Before(q.From) && p.Start.Before(q.To) {
			out.RequestLog.add(p.Omitted)
		}
	}

	st := limits.Status{Period: store.GranularityMonth}
	if allowance != nil {
		if st, err = allowance.Status(ctx, q.OrgID); err != nil {
			return Usage{}, err
		}
	}
	if _, ok := defaultBuckets[st.Period]; !ok { // not a granularity of the rollups
		st.Period = store.GranularityMonth
	}
	if st.PeriodStart.IsZero() || !st.PeriodEnd.After(st.PeriodStart) {
		st.PeriodStart, st.PeriodEnd, _ = limits.Period(st.Period, now)
	}
	out.CurrentPeriod = UsagePeriod{Period: st.Period, Start: ts(st.PeriodStart), End: ts(st.PeriodEnd)}
	period, err := usage.UsageSeries(ctx, store.UsageQuery{
		OrgID: q.OrgID, Granularity: st.Period, From: out.CurrentPeriod.Start, To: out.CurrentPeriod.End,
		AppID: q.AppID, CredentialID: q.CredentialID,
	})
	if err != nil {
		return Usage{}, err
	}
	for _, p := range period {
		out.CurrentPeriod.add(countsOf(p))
	}
	out.Plan = planView(st)
	return out, nil
}

func planView(st limits.Status) PlanAllowance {
	p := PlanAllowance{Name: optString(st.Plan), RequestsPerSecond: st.Rate, Burst: st.Burst}
	if st.QuotaUnits > 0 {
		units, used, remaining := st.QuotaUnits, st.Used, st.Remaining
		p.QuotaUnits, p.QuotaUsed, p.QuotaRemaining = &units, &used, &remaining
	}
	return p
}

// ParseUsageQuery reads the parameters of GET /api/v1/usage as of now; see
// parseUsageQuery.
func ParseUsageQuery(v url.Values, now time.Time) (store.UsageQuery, error) {
	return parseUsageQuery(v, now)
}

// parseUsageQuery reads the parameters of GET /api/v1/usage as of now:
// granularity (hour, day or month; default day), from and to (RFC 3339
// timestamps or YYYY-MM-DD dates in UTC; to exclusive), app and credential.
// From is truncated to the start of its bucket and to rounded up to the next
// bucket start, so the current partial bucket is included. Without from the
// window holds the default number of buckets ending at to; without to it ends
// with the bucket holding now. The OrgID of the result is left empty. Every
// error is a 400 *apierror.Error.
func parseUsageQuery(v url.Values, now time.Time) (store.UsageQuery, error) {
	var q store.UsageQuery
	g, err := param(v, "granularity")
	if err != nil {
		return q, err
	}
	switch g {
	case "":
		g = store.GranularityDay
	case store.GranularityHour, store.GranularityDay, store.GranularityMonth:
	default:
		return q, apierror.Invalid("granularity", "granularity must be hour, day or month")
	}
	q.Granularity = g
	from, err := timeParam(v, "from")
	if err != nil {
		return q, err
	}
	to, err := timeParam(v, "to")
	if err != nil {
		return q, err
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return q, apierror.Invalid("from", "from must be before to")
	}
	if to.IsZero() {
		q.To = nextBucket(g, store.BucketStart(g, now))
	} else {
		q.To = roundUp(g, to)
	}
	if from.IsZero() {
		q.From = store.AddBuckets(g, q.To, -defaultBuckets[g])
	} else {
		q.From = store.BucketStart(g, from)
	}
	if !q.From.Before(q.To) {
		return q, apierror.Invalid("from", "from must be before to")
	}
	if n := bucketCount(g, q.From, q.To); n > maxBuckets {
		return q, apierror.Invalid("from", "the window from %s to %s holds %d %s buckets; at most %d are allowed",
			q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), n, g, maxBuckets)
	}
	if q.AppID, err = idParam(v, "app"); err != nil {
		return q, err
	}
	if q.CredentialID, err = idParam(v, "credential"); err != nil {
		return q, err
	}
	return q, nil
}

// fillSeries returns every bucket of q's window, oldest first, with the
// counts of the points that start it; points that start no bucket of the
// window are ignored.
func fillSeries(q store.UsageQuery, points []store.UsagePoint) []UsageBucket {
	n := bucketCount(q.Granularity, q.From, q.To)
	if n <= 0 || n > maxBuckets {
		return []UsageBucket{}
	}
	byStart := make(map[int64]UsageCounts, len(points))
	for _, p := range points {
		k := p.Start.UnixMicro()
		sum := byStart[k]
		sum.add(countsOf(p))
		byStart[k] = sum
	}
	out := make([]UsageBucket, 0, n)
	for t := q.From; t.Before(q.To); t = nextBucket(q.Granularity, t) {
		out = append(out, UsageBucket{Start: t, UsageCounts: byStart[t.UnixMicro()]})
	}
	return out
}

// nextBucket returns the start of the bucket after the one at start.
func nextBucket(g string, start time.Time) time.Time { return store.AddBuckets(g, start, 1) }

// roundUp returns t when it starts a bucket, else the start of the next one.
func roundUp(g string, t time.Time) time.Time {
	s := store.BucketStart(g, t)
	if s.Equal(t) {
		return s
	}
	return nextBucket(g, s)
}

// bucketCount is the number of buckets in [from, to), both bucket starts.
// Spans too long for a time.Duration count as more than maxBuckets.
func bucketCount(g string, from, to time.Time) int {
	switch g {
	case store.GranularityHour, store.GranularityDay:
		unit := time.Hour
		if g == store.GranularityDay {
			unit = 24 * time.Hour
		}
		d := to.Sub(from) // saturates, far beyond maxBuckets
		return int(min(d/unit, maxBuckets+1))
	default:
		return (to.Year()*12 + int(to.Month())) - (from.Year()*12 + int(from.Month()))
	}
}

// --- GET /api/v1/usage/requests ---

// listRequests pages through the request log of the session's organization,
// newest first. Any role may read it.
func (a *API) listRequests(w http.ResponseWriter, r *http.Request, s accounts.Session) error {
	f, err := parseRequestQuery(r.URL.Query())
	if err != nil {
		return err
	}
	f.OrgID = s.User.OrgID // never from the request
	out, err := ListRequestPage(r.Context(), a.usage, f)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, out)
}

// ListRequestPage reads the page of the request log that f selects, f made
// by ParseRequestQuery with its OrgID set: at most f.Limit entries (1 to
// 1000), newest first, with the cursor of the next page when there may be
// one.
func ListRequestPage(ctx context.Context, usage UsageReader, f store.RequestFilter) (RequestPage, error) {
	limit := f.Limit
	f.Limit = limit + 1 // one more tells whether there is a next page
	events, err := usage.ListRequests(ctx, f)
	if err != nil {
		return RequestPage{}, err
	}
	// A store may cap a page at maxRequestPage; a full page at the cap may
	// then have a successor, which at worst is empty.
	more := len(events) > limit || (len(events) == limit && limit == maxRequestPage)
	if len(events) > limit {
		events = events[:limit]
	}
	out := RequestPage{Data: make([]RequestLogEntry, 0, len(events))}
	for _, e := range events {
		out.Data = append(out.Data, RequestLogView(e))
	}
	if more && len(events) > 0 {
		last := events[len(events)-1]
		c := encodeCursor(last.Time, last.ID)
		out.NextCursor = &c
	}
	if out.RequestLog, err = requestLogSampling(ctx, usage, f); err != nil {
		return RequestPage{}, err
	}
	return out, nil
}

// requestLogSampling counts the requests the request log left out in the
// window of f, from the hourly rollups of every hour it touches: from f.From
// (or the first hour there is) to f.To (or the last), of f's app and
// credential.
func requestLogSampling(ctx context.Context, usage UsageReader, f store.RequestFilter) (RequestLogSampling, error) {
	q := store.UsageQuery{
		OrgID: f.OrgID, Granularity: store.GranularityHour, From: minQueryTime, To: maxQueryTime,
		AppID: f.AppID, CredentialID: f.CredentialID,
	}
	if !f.From.IsZero() {
		q.From = store.BucketStart(store.GranularityHour, f.From)
	}
	if !f.To.IsZero() {
		q.To = roundUp(store.GranularityHour, f.To)
	}
	var out RequestLogSampling
	points, err := usage.UsageSeries(ctx, q)
	if err != nil {
		return out, err
	}
	for _, p := range points {
		out.add(p.Omitted)
	}
	return out, nil
}

// ParseRequestQuery reads the parameters of GET /api/v1/usage/requests; see
// parseRequestQuery.
func ParseRequestQuery(v url.Values) (store.RequestFilter, error) {
	return parseRequestQuery(v)
}

// parseRequestQuery reads the parameters of GET /api/v1/usage/requests:
// status (an exact code such as 429, or a class such as 4xx), credential,
// app, from and to (RFC 3339 or YYYY-MM-DD; to exclusive), limit (1–1000,
// default 100) and cursor. The OrgID of the result is left empty. Every error
// is a 400 *apierror.Error.
func parseRequestQuery(v url.Values) (store.RequestFilter, error) {
	f := store.RequestFilter{Limit: defaultRequestPage}
	var err error
	if f.StatusMin, f.StatusMax, err = statusParam(v); err != nil {
		return f, err
	}
	if f.AppID, err = idParam(v, "app"); err != nil {
		return f, err
	}
	if f.CredentialID, err = idParam(v, "credential"); err != nil {
		return f, err
	}
	if f.From, err = timeParam(v, "from"); err != nil {
		return f, err
	}
	if f.To, err = timeParam(v, "to"); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, apierror.Invalid("from", "from must be before to")
	}
	l, err := param(v, "limit")
	if err != nil {
		return f, err
	}
	if l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRequestPage {
			return f, apierror.Invalid("limit", "limit must be between 1 and %d", maxRequestPage)
		}
		f.Limit = n
	}
	c, err := param(v, "cursor")
	if err != nil {
		return f, err
	}
	if c != "" {
		t, id, ok := decodeCursor(c)
		if !ok {
			return f, errCursor
		}
		f.AfterTime, f.AfterID = t, id
	}
	return f, nil
}

var errCursor = apierror.Invalid("cursor", "invalid cursor")

// statusParam reads status: an exact code (100–599) or a class (1xx–5xx),
// as inclusive bounds; 0, 0 when absent.
func statusParam(v url.Values) (lo, hi int, err error) {
	s, err := param(v, "status")
	if err != nil || s == "" {
		return 0, 0, err
	}
	bad := apierror.Invalid("status", "status must be a status code such as 429 or a class such as 4xx")
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return 0, 0, bad
	}
	class := int(s[0]-'0') * 100
	if strings.EqualFold(s[1:], "xx") {
		return class, class + 99, nil
	}
	if s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return 0, 0, bad
	}
	code := class + int(s[1]-'0')*10 + int(s[2]-'0')
	return code, code, nil
}

// encodeCursor makes the opaque cursor that continues a page after the entry
// (t, id): base64url, unpadded, of t in unix microseconds (8 bytes, big
// endian) followed by id.
func encodeCursor(t time.Time, id string) string {
	b := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(b, uint64(t.UnixMicro())) //nolint:gosec // G115: a bit pattern, decoded back to int64
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

// decodeCursor reverses encodeCursor; ok is false for anything encodeCursor
// cannot have made from an entry with a valid ID.
func decodeCursor(c string) (t time.Time, id string, ok bool) {
	// Line breaks are the only malleability left by Strict decoding.
	if len(c) > base64.RawURLEncoding.EncodedLen(8+maxIDParam) || strings.ContainsAny(c, "\r\n") {
		return time.Time{}, "", false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(b) <= 8 {
		return time.Time{}, "", false
	}
	id = string(b[8:])
	if !validID(id) {
		return time.Time{}, "", false
	}
	us := int64(binary.BigEndian.Uint64(b)) //nolint:gosec // G115: the bit pattern encodeCursor wrote
	t = time.UnixMicro(us).UTC()
	if t.Before(minQueryTime) || !t.Before(maxQueryTime) {
		return time.Time{}, "", false
	}
	return t, id, true
}

// --- query parameters ---

// param returns the value of a query parameter, "" when absent or empty. A
// parameter given more than once is refused.
func param(v url.Values, name string) (string, error) {
	vs := v[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	default:
		return "", apierror.Invalid(name, "%s must be given at most once", name)
	}
}

// idParam reads an app or credential filter: printable ASCII without spaces,
// at most maxIDParam bytes; "" when absent.
func idParam(v url.Values, name string) (string, error) {
	s, err := param(v, name)
	if err != nil || s == "" {
		return "", err
	}
	if !validID(s) {
		return "", apierror.Invalid(name, "%s must be an identifier of at most %d printable ASCII characters", name, maxIDParam)
	}
	return s, nil
}

func validID(s string) bool {
	if s == "" || len(s) > maxIDParam {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// timeParam reads an RFC 3339 timestamp or a YYYY-MM-DD date (midnight UTC)
// in UTC; the zero time when absent. A space stands for the "+" of an offset
// that was not URL-encoded.
func timeParam(v url.Values, name string) (time.Time, error) {
	s, err := param(v, name)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	bad := apierror.Invalid(name, "%s must be an RFC 3339 timestamp such as 2026-01-31T00:00:00Z or a date such as 2026-01-31", name)
	if len(s) > maxTimeParam {
		return time.Time{}, bad
	}
	var t time.Time
	if len(s) == len(time.DateOnly) {
		t, err = time.Parse(time.DateOnly, s)
	} else {
		t, err = time.Parse(time.RFC3339, strings.Replace(s, " ", "+", 1))
	}
	if err != nil {
		return time.Time{}, bad
	}
	t = t.UTC()
	if t.Before(minQueryTime) || !t.Before(maxQueryTime) {
		return time.Time{}, apierror.Invalid(name, "%s must be between %s and %s", name,
			minQueryTime.Format(time.DateOnly), maxQueryTime.Format(time.DateOnly))
	}
	return t, nil
}

var (
	_ UsageReader     = store.Store(nil)
	_ AllowanceReader = (*limits.Limiter)(nil)
)
