package dashboard

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/store"
)

// requestPageSize is the number of request-log entries on a page of the
// metrics page.
const requestPageSize = 50

// appChoice prefixes the value of an app in the credential filter: the
// page's credential=app:ID is the API's app=ID, every request of the app
// (its API keys and its OAuth tokens).
const appChoice = "app:"

// metricRoutes registers the metrics pages.
func (d *Dashboard) metricRoutes() {
	d.mux.Handle("GET /dashboard/metrics", d.page(d.metrics))
}

// granularities are the charts of the metrics page, in the switch's order.
var granularities = []struct{ Value, Label, Range, Bucket, Format string }{
	{store.GranularityHour, "24 hours", "the last 24 hours", "Hour (UTC)", "2006-01-02 15:04"},
	{store.GranularityDay, "30 days", "the last 30 days", "Day (UTC)", "2006-01-02"},
	{store.GranularityMonth, "12 months", "the last 12 months", "Month (UTC)", "2006-01"},
}

// metricsData is the metrics page's.
type metricsData struct {
	Granularity string
	Switch      []switchLink
	Range       string // "the last 24 hours"
	BucketName  string // the data table's first column
	From, To    string // the chart's window, UTC
	// Chart is the chart's data, JSON-encoded by the template; Rows the
	// same numbers for the data table.
	Chart chartData
	Rows  []seriesRow
	// Totals are the chart's; Period the organization's current quota
	// period ("Total Usage") and Plan its allowance.
	Totals controlapi.UsageCounts
	Period controlapi.UsagePeriod
	Plan   planSummary

	Filters     requestFilters
	Credentials []choice // the credential filter's API keys
	Apps        []choice // and apps
	// Other is the credential filter's value when it is none of the
	// org's keys and apps, kept as a choice of its own.
	Other string
	// Requests is the request log's page; FiltersOK is false when the
	// filters were refused and no page was read.
	Requests  []requestRow
	FiltersOK bool
	NextPage  string // the URL of the next page, "" when none
	// Omitted is how many requests of the filters' window the request
	// log, sampled under overload, left out; they are in the series.
	Omitted int64
}

type switchLink struct {
	Value, Label, URL string
	Current           bool
}

// chartData is what static/app.js draws.
type chartData struct {
	Labels   []string       `json:"labels"`
	Datasets []chartDataset `json:"datasets"`
}

type chartDataset struct {
	Label string  `json:"label"`
	Data  []int64 `json:"data"`
}

type seriesRow struct {
	Label string
	controlapi.UsageCounts
}

type planSummary struct {
	Name                        string // "" when unlimited
	RequestsPerSecond           float64
	Burst                       int
	HasQuota                    bool
	QuotaUnits, Used, Remaining int64
}

// requestFilters are the request log's filters as the form shows them.
type requestFilters struct {
	Status, Credential, From, To string
}

type choice struct {
	Value, Label string
	Selected     bool
}

// requestRow is a request-log entry as the table shows it.
type requestRow struct {
	controlapi.RequestLogEntry
	When       string
	Latency    string // milliseconds
	Credential string // the key's or app's name when known, else the ID
	Error      string
}

func (d *Dashboard) metrics(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	now := d.o.Clock.Now()
	query := r.URL.Query()
	v := view{Title: "Metrics", Nav: "metrics", Session: s, Org: s.Org, CSRF: s.CSRF}
	status := http.StatusOK
	// invalid records the first refused parameter; anything else fails.
	invalid := func(err error) error {
		if apierror.From(err).Status != http.StatusBadRequest {
			return err
		}
		if v.Error == "" {
			v.Error, v.Field = errorOf(err)
			if v.Field == "app" { // the credential field's app:ID
				v.Field = "credential"
			}
			status = http.StatusBadRequest
		}
		return nil
	}

	// The chart: the default window of the granularity.
	data := metricsData{Granularity: store.GranularityHour}
	if gs := query["granularity"]; len(gs) > 0 && (len(gs) > 1 || gs[0] != "") {
		uq, err := controlapi.ParseUsageQuery(url.Values{"granularity": gs}, now)
		if err != nil {
			if err := invalid(err); err != nil {
				return err
			}
		} else {
			data.Granularity = uq.Granularity
		}
	}
	uq, err := controlapi.ParseUsageQuery(url.Values{"granularity": {data.Granularity}}, now)
	if err != nil {
		return err
	}
	uq.OrgID = s.Org.ID
	usage, err := controlapi.ReportUsage(ctx, d.o.Usage, d.o.Allowance, uq, now)
	if err != nil {
		return err
	}
	data.setSeries(usage)

	// The request log.
	data.Filters = requestFilters{
		Status: query.Get("status"), Credential: query.Get("credential"),
		From: query.Get("from"), To: query.Get("to"),
	}
	filter, err := controlapi.ParseRequestQuery(requestQuery(query))
	if err != nil {
		if err := invalid(err); err != nil {
			return err
		}
	} else {
		data.FiltersOK = true
		data.Filters.From, data.Filters.To = localTime(filter.From, data.Filters.From), localTime(filter.To, data.Filters.To)
	}
	names, err := d.credentialChoices(r, s, &data)
	if err != nil {
		return err
	}
	if data.FiltersOK {
		filter.OrgID = s.Org.ID // never from the request
		filter.Limit = requestPageSize
		page, err := controlapi.ListRequestPage(ctx, d.o.Usage, filter)
		if err != nil {
			return err
		}
		for _, e := range page.Data {
			data.Requests = append(data.Requests, requestRowOf(e, names))
		}
		if page.NextCursor != nil {
			data.NextPage = data.url(data.Granularity, *page.NextCursor)
		}
		data.Omitted = page.RequestLog.Omitted
	}
	for _, g := range granularities {
		data.Switch = append(data.Switch, switchLink{Value: g.Value, Label: g.Label, URL: data.url(g.Value, ""), Current: g.Value == data.Granularity})
	}
	v.Data = data
	d.render(w, r, status, "metrics", v)
	return nil
}

// setSeries fills the chart, its data table and the totals from u.
func (m *metricsData) setSeries(u controlapi.Usage) {
	format := time.RFC3339
	for _, g := range granularities {
		if g.Value == u.Granularity {
			m.Range, m.BucketName, format = g.Range, g.Bucket, g.Format
		}
	}
	m.From, m.To = u.From.UTC().Format("2006-01-02 15:04 UTC"), u.To.UTC().Format("2006-01-02 15:04 UTC")
	requests := chartDataset{Label: "Requests", Data: make([]int64, 0, len(u.Series))}
	errs := chartDataset{Label: "Errors", Data: make([]int64, 0, len(u.Series))}
	units := chartDataset{Label: "Units", Data: make([]int64, 0, len(u.Series))}
	m.Chart.Labels = make([]string, 0, len(u.Series))
	for _, b := range u.Series {
		label := b.Start.UTC().Format(format)
		m.Chart.Labels = append(m.Chart.Labels, label)
		requests.Data = append(requests.Data, b.Requests)
		errs.Data = append(errs.Data, b.Errors)
		units.Data = append(units.Data, b.Units)
		m.Rows = append(m.Rows, seriesRow{Label: label, UsageCounts: b.UsageCounts})
	}
	m.Chart.Datasets = []chartDataset{requests, errs, units}
	m.Totals, m.Period = u.Totals, u.CurrentPeriod
	p := u.Plan
	if p.Name != nil {
		m.Plan.Name = *p.Name
	}
	m.Plan.RequestsPerSecond, m.Plan.Burst = p.RequestsPerSecond, p.Burst
	if p.QuotaUnits != nil && p.QuotaUsed != nil && p.QuotaRemaining != nil {
		m.Plan.HasQuota = true
		m.Plan.QuotaUnits, m.Plan.Used, m.Plan.Remaining = *p.QuotaUnits, *p.QuotaUsed, *p.QuotaRemaining
	}
}

// url is the metrics page of granularity g with the current filters, at
// cursor ("" for the first page).
func (m *metricsData) url(g, cursor string) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if g != store.GranularityHour {
		set("granularity", g)
	}
	set("status", m.Filters.Status)
	set("credential", m.Filters.Credential)
	set("from", m.Filters.From)
	set("to", m.Filters.To)
	set("cursor", cursor)
	if len(q) == 0 {
		return Prefix + "metrics"
	}
	return Prefix + "metrics?" + q.Encode()
}

// requestQuery turns the page's filters into the parameters of the API's
// request log: a credential app:ID is the app filter, and the from and to of
// a datetime-local field (no offset) are UTC. The page size is the page's.
func requestQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range []string{"status", "credential", "from", "to", "cursor"} {
		if vs, ok := q[k]; ok {
			out[k] = vs
		}
	}
	if vs := out["credential"]; len(vs) == 1 && strings.HasPrefix(vs[0], appChoice) {
		out["app"] = []string{strings.TrimPrefix(vs[0], appChoice)}
		delete(out, "credential")
	}
	for _, k := range []string{"from", "to"} {
		if vs := out[k]; len(vs) == 1 {
			out[k] = []string{utcTime(vs[0])}
		}
	}
	// Empty fields of a submitted form filter nothing.
	for k, vs := range out {
		if len(vs) == 1 && vs[0] == "" {
			delete(out, k)
		}
	}
	return out
}

// localLayouts are the values of a datetime-local field.
var localLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05"}

// utcTime returns the value of a datetime-local field as an RFC 3339 time
// in UTC; any other value as is.
func utcTime(s string) string {
	for _, l := range localLayouts {
		if t, err := time.Parse(l, s); err == nil { // no offset: UTC
			return t.Format(time.RFC3339Nano)
		}
	}
	return s
}

// localTime is t as a datetime-local field shows it, or raw when t is
// zero.
func localTime(t time.Time, raw string) string {
	if t.IsZero() {
		return raw
	}
	t = t.UTC()
	if t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(localLayouts[0])
	}
	return t.Format("2006-01-02T15:04:05.999999")
}

// credentialChoices fills the credential filter's choices (the org's API
// keys and apps) and returns the names of the credentials by their ID: a
// key's ID, an app's client ID (the credential of its OAuth tokens).
func (d *Dashboard) credentialChoices(r *http.Request, s *session, m *metricsData) (map[string]string, error) {
	ctx := r.Context()
	keys, err := d.o.Keys.List(ctx, s.Org.ID)
	if err != nil {
		return nil, err
	}
	apps, err := d.o.Apps.ListApps(ctx, s.Org.ID)
	if err != nil {
		return nil, err
	}
	now := d.o.Clock.Now()
	names := make(map[string]string, len(keys)+len(apps))
	cur, found := m.Filters.Credential, m.Filters.Credential == ""
	for _, k := range keys {
		names[k.ID] = k.Name
		label := k.Name + " (" + k.Prefix + "…)"
		if st := k.Status(now); st != store.KeyActive {
			label += " — " + st
		}
		m.Credentials = append(m.Credentials, choice{Value: k.ID, Label: label, Selected: k.ID == cur})
		found = found || k.ID == cur
	}
	for _, a := range apps {
		names[a.ClientID] = a.Name
		value := appChoice + a.ID
		label := a.Name
		if a.Environment != "" {
			label += " (" + a.Environment + ")"
		}
		m.Apps = append(m.Apps, choice{Value: value, Label: label, Selected: value == cur})
		found = found || value == cur
	}
	if !found {
		m.Other = cur
	}
	return names, nil
}

func requestRowOf(e controlapi.RequestLogEntry, names map[string]string) requestRow {
	row := requestRow{
		RequestLogEntry: e,
		When:            e.Time.UTC().Format("2006-01-02 15:04:05 UTC"),
		Latency:         strconv.FormatFloat(e.LatencyMS, 'f', -1, 64),
	}
	if e.CredentialID != nil {
		row.Credential = *e.CredentialID
		if n := names[row.Credential]; n != "" {
			row.Credential = n
		}
	}
	if e.ErrorCode != nil {
		row.Error = *e.ErrorCode
	}
	return row
}
