package metrics

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// scrape fetches m's exposition text through its handler, as Prometheus
// would, and returns its samples by series ("name{labels}" with labels
// sorted by name, as the library writes them) and the whole text.
func scrape(t *testing.T, m *Metrics) (samples map[string]string, text string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	samples = make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed sample line %q", line)
		}
		samples[line[:i]] = line[i+1:]
	}
	return samples, string(b)
}

func check(t *testing.T, samples map[string]string, want map[string]string) {
	t.Helper()
	for series, v := range want {
		got, ok := samples[series]
		switch {
		case !ok:
			t.Errorf("no series %s", series)
		case got != v:
			t.Errorf("%s = %s, want %s", series, got, v)
		}
	}
}

func TestNewExportsRuntimeAndZeroOutcomes(t *testing.T) {
	samples, text := scrape(t, New())
	check(t, samples, map[string]string{
		`tollgate_limiter_decisions_total{outcome="admitted"}`:        "0",
		`tollgate_limiter_decisions_total{outcome="rate_limited"}`:    "0",
		`tollgate_limiter_decisions_total{outcome="quota_exhausted"}`: "0",
		`tollgate_websocket_bytes_total{direction="in"}`:              "0",
		`tollgate_websocket_bytes_total{direction="out"}`:             "0",
	})
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes"} {
		if _, ok := samples[name]; !ok {
			t.Errorf("no Go runtime series %s", name)
		}
	}
	// The process collector only works where procfs does.
	if _, err := os.Stat("/proc/self/stat"); err == nil {
		if _, ok := samples["process_cpu_seconds_total"]; !ok {
			t.Error("no process series process_cpu_seconds_total")
		}
	}
	if strings.Contains(text, "tollgate_usage_events") {
		t.Error("usage_events series exported before WatchUsageQueue")
	}
}

func TestObserveRequest(t *testing.T) {
	m := New()
	events := []struct {
		e      store.UsageEvent
		reason string
	}{
		{store.UsageEvent{Route: "/v1/", Status: 200, AuthMethod: "apikey", Latency: 3 * time.Millisecond}, ""},
		{store.UsageEvent{Route: "/v1/", Status: 200, AuthMethod: "apikey", Latency: 30 * time.Millisecond}, ""},
		{store.UsageEvent{Route: "/v1/", Status: 502, AuthMethod: "bearer", Latency: 2 * time.Second, ErrorCode: "BAD_GATEWAY"}, ""},
		// Refused before authentication, no route matched.
		{store.UsageEvent{Status: 401, ErrorCode: "UNAUTHORIZED", Latency: 100 * time.Microsecond}, ""},
		{store.UsageEvent{Route: "/v1/", Status: 401, ErrorCode: "INVALID_SIGNATURE"}, "mismatch"},
		{store.UsageEvent{Route: "/v1/", Status: 403, AuthMethod: "apikey", ErrorCode: "FORBIDDEN"}, "ip_not_allowed"},
		{store.UsageEvent{Route: "/v1/", Status: 403, AuthMethod: "apikey", ErrorCode: "INSUFFICIENT_SCOPE"}, ""},
		// Not auth failures: an exhausted quota, a rate limit, a 403 the
		// upstream sent itself.
		{store.UsageEvent{Route: "/v1/", Status: 403, AuthMethod: "apikey", ErrorCode: "FORBIDDEN"}, "quota_exhausted"},
		{store.UsageEvent{Route: "/v1/", Status: 429, AuthMethod: "apikey", ErrorCode: "RATE_LIMITED"}, ""},
		{store.UsageEvent{Route: "/v1/", Status: 403, AuthMethod: "apikey"}, ""},
		// A WebSocket session: bytes, no duration.
		{store.UsageEvent{Route: "/ws/", Status: 101, AuthMethod: "bearer", WebSocket: true,
			Latency: time.Hour, RequestBytes: 1500, ResponseBytes: 250000}, ""},
		{store.UsageEvent{Route: "/ws/", Status: 101, AuthMethod: "bearer", WebSocket: true, RequestBytes: 500}, ""},
	}
	for _, ev := range events {
		m.ObserveRequest(&ev.e, ev.reason)
	}
	m.ObserveLimit(OutcomeAdmitted)
	m.ObserveLimit(OutcomeAdmitted)
	m.ObserveLimit(OutcomeRateLimited)

	samples, text := scrape(t, m)
	check(t, samples, map[string]string{
		`tollgate_requests_total{auth_method="apikey",route="/v1/",status="200"}`: "2",
		`tollgate_requests_total{auth_method="bearer",route="/v1/",status="502"}`: "1",
		`tollgate_requests_total{auth_method="none",route="none",status="401"}`:   "1",
		`tollgate_requests_total{auth_method="none",route="/v1/",status="401"}`:   "1",
		`tollgate_requests_total{auth_method="apikey",route="/v1/",status="403"}`: "4",
		`tollgate_requests_total{auth_method="apikey",route="/v1/",status="429"}`: "1",
		`tollgate_requests_total{auth_method="bearer",route="/ws/",status="101"}`: "2",

		`tollgate_request_duration_seconds_count{route="/v1/"}`:              "9",
		`tollgate_request_duration_seconds_bucket{route="/v1/",le="0.005"}`:  "7",
		`tollgate_request_duration_seconds_bucket{route="/v1/",le="0.05"}`:   "8",
		`tollgate_request_duration_seconds_bucket{route="/v1/",le="2.5"}`:    "9",
		`tollgate_request_duration_seconds_sum{route="/v1/"}`:                "2.033",
		`tollgate_request_duration_seconds_count{route="none"}`:              "1",
		`tollgate_request_duration_seconds_bucket{route="none",le="0.0005"}`: "1",

		`tollgate_auth_failures_total{code="UNAUTHORIZED",reason="none"}`:          "1",
		`tollgate_auth_failures_total{code="INVALID_SIGNATURE",reason="mismatch"}`: "1",
		`tollgate_auth_failures_total{code="FORBIDDEN",reason="ip_not_allowed"}`:   "1",
		`tollgate_auth_failures_total{code="INSUFFICIENT_SCOPE",reason="none"}`:    "1",
		`tollgate_limiter_decisions_total{outcome="admitted"}`:                     "2",
		`tollgate_limiter_decisions_total{outcome="rate_limited"}`:                 "1",
		`tollgate_limiter_decisions_total{outcome="quota_exhausted"}`:              "0",
		`tollgate_websocket_bytes_total{direction="in"}`:                           "2000",
		`tollgate_websocket_bytes_total{direction="out"}`:                          "250000",
	})
	for _, absent := range []string{
		`reason="quota_exhausted"`,
		`code="RATE_LIMITED"`,
		`tollgate_request_duration_seconds_count{route="/ws/"}`,
	} {
		if strings.Contains(text, absent) {
			t.Errorf("exposition contains %s", absent)
		}
	}
	if n := strings.Count(text, "tollgate_auth_failures_total{"); n != 4 {
		t.Errorf("%d auth_failures_total series, want 4", n)
	}
}

func TestObserveLimitOtherOutcome(t *testing.T) {
	m := New()
	m.ObserveLimit("limiter_down")
	samples, _ := scrape(t, m)
	check(t, samples, map[string]string{`tollgate_limiter_decisions_total{outcome="limiter_down"}`: "1"})
}

// usageQueue is a UsageQueue of fixed counts.
type usageQueue struct {
	depth                             int
	dropped, written, failed, omitted uint64
}

func (q *usageQueue) Depth() int      { return q.depth }
func (q *usageQueue) Dropped() uint64 { return q.dropped }
func (q *usageQueue) Written() uint64 { return q.written }
func (q *usageQueue) Failed() uint64  { return q.failed }
func (q *usageQueue) Omitted() uint64 { return q.omitted }

func TestWatchUsageQueue(t *testing.T) {
	m := New()
	q := &usageQueue{depth: 7, dropped: 3, written: 1000, failed: 2, omitted: 40}
	m.WatchUsageQueue(q)
	samples, text := scrape(t, m)
	check(t, samples, map[string]string{
		"tollgate_usage_events_queued":        "7",
		"tollgate_usage_events_dropped_total": "3",
		"tollgate_usage_events_written_total": "1000",
		"tollgate_usage_events_failed_total":  "2",
		"tollgate_usage_events_omitted_total": "40",
	})
	for _, typ := range []string{
		"# TYPE tollgate_usage_events_queued gauge",
		"# TYPE tollgate_usage_events_dropped_total counter",
	} {
		if !strings.Contains(text, typ) {
			t.Errorf("exposition lacks %q", typ)
		}
	}

	// Values are read at every scrape.
	q.depth, q.written = 0, 1007
	samples, _ = scrape(t, m)
	check(t, samples, map[string]string{
		"tollgate_usage_events_queued":        "0",
		"tollgate_usage_events_written_total": "1007",
	})

	defer func() {
		if recover() == nil {
			t.Error("second WatchUsageQueue did not panic")
		}
	}()
	m.WatchUsageQueue(q)
}

func TestInstancesAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.ObserveLimit(OutcomeAdmitted)
	samples, _ := scrape(t, b)
	check(t, samples, map[string]string{`tollgate_limiter_decisions_total{outcome="admitted"}`: "0"})
}

func TestStatusOutsideTable(t *testing.T) {
	m := New()
	m.ObserveRequest(&store.UsageEvent{Route: "/v1/", Status: 999}, "")
	m.ObserveRequest(&store.UsageEvent{Route: "/v1/"}, "") // status unknown
	samples, _ := scrape(t, m)
	check(t, samples, map[string]string{
		`tollgate_requests_total{auth_method="none",route="/v1/",status="999"}`: "1",
		`tollgate_requests_total{auth_method="none",route="/v1/",status="0"}`:   "1",
	})
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	ok := &store.UsageEvent{Route: "/v1/", Status: 200, AuthMethod: "apikey", Latency: 4 * time.Millisecond}
	denied := &store.UsageEvent{Status: 401, ErrorCode: "INVALID_TOKEN", Latency: 200 * time.Microsecond}
	b.Run("admitted", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ObserveRequest(ok, "")
			}
		})
	})
	b.Run("auth_failure", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ObserveRequest(denied, "")
			}
		})
	})
}

func BenchmarkObserveLimit(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveLimit(OutcomeAdmitted)
		}
	})
}

func TestListenerMetrics(t *testing.T) {
	m := New()
	open := 3
	pub := m.Listener("public", func() int { return open })
	adm := m.Listener("admin", nil)
	samples, _ := scrape(t, m)
	// Every series exists at 0 from the start.
	check(t, samples, map[string]string{
		`tollgate_connections_open{listener="public"}`:                               "3",
		`tollgate_connections_refused_total{listener="public",reason="per_address"}`: "0",
		`tollgate_connections_refused_total{listener="admin",reason="total"}`:        "0",
		`tollgate_accept_errors_total{listener="admin"}`:                             "0",
		`tollgate_send_timeouts_total{listener="public"}`:                            "0",
		`tollgate_request_body_timeouts_total{listener="public"}`:                    "0",
	})
	pub.Refused(RefusedPerAddr)
	pub.Refused(RefusedPerAddr)
	pub.Refused(RefusedTotal)
	adm.AcceptError()
	pub.SendTimeout()
	pub.BodyTimeout()
	open = 1
	samples, _ = scrape(t, m)
	check(t, samples, map[string]string{
		`tollgate_connections_open{listener="public"}`:                               "1",
		`tollgate_connections_refused_total{listener="public",reason="per_address"}`: "2",
		`tollgate_connections_refused_total{listener="public",reason="total"}`:       "1",
		`tollgate_accept_errors_total{listener="admin"}`:                             "1",
		`tollgate_send_timeouts_total{listener="public"}`:                            "1",
		`tollgate_request_body_timeouts_total{listener="public"}`:                    "1",
	})
	if _, ok := samples[`tollgate_connections_open{listener="admin"}`]; ok {
		t.Error("a gauge for a listener given no count")
	}
	if n := testing.AllocsPerRun(100, func() { pub.Refused(RefusedPerAddr); pub.BodyTimeout() }); n != 0 {
		t.Errorf("%v allocations per event", n)
	}
}
