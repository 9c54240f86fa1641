package server

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// metricsRow is a row of the metrics page's requests-table.
type metricsRow struct {
	ID, Status, Path, Credential, HTML string
}

var (
	metricsRowRE    = regexp.MustCompile(`(?s)<tr data-request-id="([^"]+)">(.*?)</tr>`)
	metricsCellRE   = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	metricsSeriesRE = regexp.MustCompile(`(?s)<script type="application/json" id="usage-series">(.*?)</script>`)
	metricsNextRE   = regexp.MustCompile(`<a href="([^"]+)" id="requests-next"`)
	metricsTagRE    = regexp.MustCompile(`<[^>]+>`)
)

// metricsRows reads the rows of the requests-table of a metrics page.
func metricsRows(t *testing.T, body string) []metricsRow {
	t.Helper()
	var rows []metricsRow
	for _, m := range metricsRowRE.FindAllStringSubmatch(body, -1) {
		cells := metricsCellRE.FindAllStringSubmatch(m[2], -1)
		if len(cells) != 11 {
			t.Fatalf("row of %d cells: %s", len(cells), m[0])
		}
		text := func(i int) string {
			return html.UnescapeString(strings.TrimSpace(metricsTagRE.ReplaceAllString(cells[i][1], "")))
		}
		rows = append(rows, metricsRow{ID: m[1], Path: text(2), Status: text(3), Credential: text(8), HTML: m[0]})
	}
	return rows
}

// metricsSeries reads the chart's JSON: the sum of each dataset by label,
// and the number of labels.
func metricsSeries(t *testing.T, body string) (sums map[string]int64, labels int) {
	t.Helper()
	m := metricsSeriesRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no usage-series data block in\n%s", body)
	}
	var chart struct {
		Labels   []string `json:"labels"`
		Datasets []struct {
			Label string  `json:"label"`
			Data  []int64 `json:"data"`
		} `json:"datasets"`
	}
	if err := json.Unmarshal([]byte(m[1]), &chart); err != nil {
		t.Fatalf("usage-series is not JSON: %v\n%s", err, m[1])
	}
	sums = map[string]int64{}
	for _, d := range chart.Datasets {
		if len(d.Data) != len(chart.Labels) {
			t.Fatalf("dataset %s has %d points for %d labels", d.Label, len(d.Data), len(chart.Labels))
		}
		for _, v := range d.Data {
			sums[d.Label] += v
		}
	}
	return sums, len(chart.Labels)
}

// The metrics page: the charts of each granularity, the totals, and the
// request log with its filters and pages, from real gateway traffic.
func TestDashboardMetrics(t *testing.T) {
	be := newRecorder(t, nil)
	yaml := dashYAML(t.TempDir(), be.URL) + `plans:
  - name: big
    quota: {units: 1000, period: month}
default_plan: big
usage:
  flush_interval: 20ms
  quota_flush_interval: 20ms
`
	n := start(t, yaml, nil)
	c := dashLogin(t, n, "metrics@example.com", "Metrics <Co>")
	token := n.login("metrics@example.com", "correct horse battery")
	key, keyID := n.createKey(token, map[string]any{"name": "main <key>"})
	other, otherID := n.createKey(token, map[string]any{"name": "other key"})
	app := n.create(token, "/api/v1/apps", map[string]any{"name": "prod-main"}, nil)

	// 50 admitted calls with the main key, 2 refused for a missing scope,
	// one with the other key (the newest), and one with a bad key, which
	// belongs to no organization.
	call := func(k, path string, want int) {
		t.Helper()
		if r := do(t, "GET", n.base+path, nil, "X-API-KEY", k, "User-Agent", "metrics-test/1"); r.Status != want {
			t.Fatalf("GET %s: %d, want %d: %s", path, r.Status, want, r.Body)
		}
	}
	for range 50 {
		call(key, "/v1/x", 200)
	}
	call(key, "/v1/kyt/score", 403)
	call(key, "/v1/kyt/score", 403)
	call("tg_live_not-a-real-key", "/v1/x", 401)
	n.clock.Advance(time.Millisecond)
	call(other, "/v1/other", 200)
	const calls = 53 // the organization's

	var p page
	waitFor(t, "the usage to be written", func() bool {
		p = c.get("/dashboard/metrics")
		if p.Status != 200 {
			t.Fatalf("metrics: %d %s", p.Status, p.Body)
		}
		sums, _ := metricsSeries(t, p.Body)
		return sums["Requests"] == calls && len(metricsRows(t, p.Body)) == 50
	})

	// The hourly chart (the default) and its totals.
	sums, labels := metricsSeries(t, p.Body)
	if labels != 24 || sums["Requests"] != calls || sums["Errors"] != 2 || sums["Units"] != 51 {
		t.Fatalf("hourly series: %d labels, sums %v", labels, sums)
	}
	for _, want := range []string{
		`<canvas id="usage-chart" data-chart="usage-series" role="img" aria-label="`,
		`<summary>Data table</summary>`,
		`data-granularity="hour" aria-current="page"`,
		`<p class="stat" id="total-requests">53</p>`,
		`<p class="stat" id="total-errors">2</p>`,
		`Total usage this month`, `of 1000`, `Plan big`,
		`<form id="request-filters" method="get"`, `<label for="f-status">`, `<label for="f-credential">`,
		`<label for="f-from">`, `<label for="f-to">`, `type="datetime-local"`,
		`<div class="table-wrap">`, `<th scope="col">User agent</th>`,
		`Metrics &lt;Co&gt;`, `main &lt;key&gt;`,
	} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("metrics page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, "main <key>") || strings.Contains(p.Body, "style=") {
		t.Error("metrics page: unescaped key name or inline style")
	}

	// The request log: newest first, 50 a page, with status, path,
	// credential; the bad key's 401 is no one's.
	rows := metricsRows(t, p.Body)
	if r := rows[0]; r.Status != "200" || r.Path != "/v1/other" || r.Credential != "other key" || !strings.Contains(r.HTML, "metrics-test/1") {
		t.Fatalf("newest row %+v", r)
	}
	statuses := map[string]int{}
	for _, r := range rows {
		statuses[r.Status]++
		if r.Status == "403" && (r.Path != "/v1/kyt/score" || r.Credential != "main <key>") {
			t.Errorf("403 row %+v", r)
		}
	}
	if statuses["403"] != 2 || statuses["401"] != 0 || statuses["200"] != 48 {
		t.Fatalf("first page statuses %v", statuses)
	}
	next := metricsNextRE.FindStringSubmatch(p.Body)
	if next == nil {
		t.Fatal("no Next page link on a full page")
	}
	p2 := c.get(html.UnescapeString(next[1]))
	rows2 := metricsRows(t, p2.Body)
	if p2.Status != 200 || len(rows2) != calls-50 || metricsNextRE.MatchString(p2.Body) {
		t.Fatalf("second page: %d, %d rows", p2.Status, len(rows2))
	}
	seen := map[string]bool{}
	for _, r := range append(rows, rows2...) {
		if seen[r.ID] {
			t.Fatalf("request %s on both pages", r.ID)
		}
		seen[r.ID] = true
	}

	// The status filter narrows the log, and keeps its value in the form.
	p = c.get("/dashboard/metrics?status=4xx")
	rows = metricsRows(t, p.Body)
	if p.Status != 200 || len(rows) != 2 || !strings.Contains(p.Body, `name="status" list="status-choices" value="4xx"`) {
		t.Fatalf("status=4xx: %d, %d rows", p.Status, len(rows))
	}
	for _, r := range rows {
		if r.Status != "403" || r.Path != "/v1/kyt/score" || !strings.Contains(r.HTML, `<td data-label="Error code">INSUFFICIENT_SCOPE</td>`) {
			t.Errorf("4xx row %+v", r)
		}
	}
	// The credential filter, alone and with the status filter.
	p = c.get("/dashboard/metrics?credential=" + otherID)
	rows = metricsRows(t, p.Body)
	if p.Status != 200 || len(rows) != 1 || rows[0].Credential != "other key" ||
		!strings.Contains(p.Body, `<option value="`+otherID+`" selected>`) {
		t.Fatalf("credential filter: %d, rows %+v", p.Status, rows)
	}
	p = c.get("/dashboard/metrics?" + url.Values{"credential": {keyID}, "status": {"2xx"}}.Encode())
	if rows = metricsRows(t, p.Body); len(rows) != 50 || metricsNextRE.MatchString(p.Body) {
		t.Fatalf("main key's 2xx: %d rows", len(rows)) // exactly a page: no next one
	}
	p = c.get("/dashboard/metrics?" + url.Values{"credential": {keyID}, "granularity": {"day"}}.Encode())
	if rows = metricsRows(t, p.Body); len(rows) != 50 || !metricsNextRE.MatchString(p.Body) {
		t.Fatalf("main key's requests: %d rows", len(rows))
	}
	next = metricsNextRE.FindStringSubmatch(p.Body)
	if u := html.UnescapeString(next[1]); !strings.Contains(u, "credential="+keyID) || !strings.Contains(u, "granularity=day") {
		t.Fatalf("next page link %q lost the filters", u)
	}
	if p = c.get(html.UnescapeString(next[1])); len(metricsRows(t, p.Body)) != 2 {
		t.Fatalf("main key's second page: %d rows", len(metricsRows(t, p.Body)))
	}
	// An app: its requests (none here), not a refused filter.
	p = c.get("/dashboard/metrics?credential=app:" + app["id"].(string))
	if p.Status != 200 || !strings.Contains(p.Body, "No requests match.") || !strings.Contains(p.Body, ">prod-main") {
		t.Fatalf("app filter: %d %s", p.Status, p.Body)
	}
	// A datetime-local range, in UTC.
	now := n.clock.Now().UTC()
	q := url.Values{"from": {now.Add(-time.Hour).Format("2006-01-02T15:04")}, "to": {now.Add(time.Hour).Format("2006-01-02T15:04")}, "status": {"403"}}
	p = c.get("/dashboard/metrics?" + q.Encode())
	if rows = metricsRows(t, p.Body); p.Status != 200 || len(rows) != 2 || !strings.Contains(p.Body, `value="`+q.Get("from")+`"`) {
		t.Fatalf("from/to: %d, %d rows", p.Status, len(rows))
	}
	q.Set("from", now.Add(time.Minute).Format("2006-01-02T15:04"))
	if p = c.get("/dashboard/metrics?" + q.Encode()); p.Status != 200 || !strings.Contains(p.Body, "No requests match.") {
		t.Fatalf("from in the future: %d", p.Status)
	}

	// The daily and monthly charts.
	for g, buckets := range map[string]int{"day": 30, "month": 12} {
		p = c.get("/dashboard/metrics?granularity=" + g)
		sums, labels := metricsSeries(t, p.Body)
		if p.Status != 200 || labels != buckets || sums["Requests"] != calls ||
			!strings.Contains(p.Body, `data-granularity="`+g+`" aria-current="page"`) ||
			!strings.Contains(p.Body, `<input type="hidden" name="granularity" value="`+g+`">`) {
			t.Fatalf("granularity=%s: %d, %d labels, sums %v", g, p.Status, labels, sums)
		}
	}

	// Refused parameters: a 400 page naming the field, never a 500.
	for q, field := range map[string]string{
		"from=yesterday":                "f-from",
		"to=2026-13-45":                 "f-to",
		"status=abc":                    "f-status",
		"granularity=week":              "",
		"cursor=%21%21%21":              "",
		"from=2026-01-02&to=2026-01-01": "f-from",
	} {
		p = c.get("/dashboard/metrics?" + q)
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `role="alert"`) {
			t.Errorf("%s: %d, want a 400 page with the error", q, p.Status)
			continue
		}
		if field != "" && !regexp.MustCompile(`id="`+field+`"[^>]*aria-invalid="true"`).MatchString(p.Body) {
			t.Errorf("%s: field %s not marked invalid", q, field)
		}
	}
	if p = c.get("/dashboard/metrics?from=yesterday"); !strings.Contains(p.Body, "from must be") || !strings.Contains(p.Body, `value="yesterday"`) {
		t.Errorf("bad from: %s", p.Body)
	}

	// Another organization sees none of it.
	c2 := dashLogin(t, n, "stranger@example.com", "Stranger")
	p = c2.get("/dashboard/metrics")
	if sums, _ := metricsSeries(t, p.Body); p.Status != 200 || sums["Requests"] != 0 || !strings.Contains(p.Body, "No requests match.") {
		t.Fatalf("another organization: %d, %v", p.Status, sums)
	}
}
