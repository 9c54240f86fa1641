package webhooks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/store"
)

func TestBackoff(t *testing.T) {
	schedule := DefaultSchedule()
	cases := []struct {
		n      int
		r      float64
		want   time.Duration
		wantOK bool
	}{
		{1, 0.5, 5 * time.Second, true},
		{1, 0, 4 * time.Second, true},
		{1, 1, 6 * time.Second, true},
		{2, 0.5, 5 * time.Minute, true},
		{2, 0, 4 * time.Minute, true},
		{3, 0.5, 30 * time.Minute, true},
		{4, 0.5, 2 * time.Hour, true},
		{5, 0.5, 5 * time.Hour, true},
		{6, 0.5, 10 * time.Hour, true},
		{7, 0.5, 10 * time.Hour, true},
		{7, 1, 12 * time.Hour, true},
		{8, 0.5, 0, false}, // the eighth attempt was the last
		{0, 0.5, 0, false},
		{-1, 0.5, 0, false},
	}
	for _, c := range cases {
		got, ok := backoff(schedule, DefaultJitter, c.n, c.r)
		if got != c.want || ok != c.wantOK {
			t.Errorf("backoff(attempt %d, r %v) = %v, %v; want %v, %v", c.n, c.r, got, ok, c.want, c.wantOK)
		}
	}
	// The whole schedule is about 27 hours, and jitter stays within ±20%.
	var total time.Duration
	for _, d := range schedule {
		total += d
	}
	if total < 27*time.Hour || total > 28*time.Hour {
		t.Errorf("schedule totals %v", total)
	}
	for i := range 10000 {
		n := 1 + i%len(schedule)
		d := schedule[n-1]
		got, ok := backoff(schedule, DefaultJitter, n, rand.Float64()) //nolint:gosec // test input
		if !ok || float64(got) < 0.8*float64(d) || float64(got) >= 1.2*float64(d) {
			t.Fatalf("backoff(%d) = %v, outside %v ±20%%", n, got, d)
		}
	}
	if got, _ := backoff(schedule, 0, 3, 0.99); got != 30*time.Minute {
		t.Errorf("without jitter: %v", got)
	}
}

func TestOptionDefaults(t *testing.T) {
	s, err := New(Options{Store: nopStore{}, Sealer: nopSealer{}})
	if err != nil {
		t.Fatal(err)
	}
	o := s.o
	if o.AttemptTimeout != 15*time.Second || o.DisableAfter != 72*time.Hour || o.SecretGrace != 24*time.Hour ||
		o.Retention != 30*24*time.Hour || o.Jitter != 0.2 || o.Workers != 8 || o.BatchSize != 8 ||
		o.PollInterval != time.Second || o.Lease != 45*time.Second || o.MaxEndpoints != 20 || len(o.Schedule) != 7 {
		t.Errorf("defaults: %+v", o)
	}
	// A quarter of three days (18h) is longer than the longest retry
	// delay with its jitter and the lease (12h45s).
	if s.gap != 18*time.Hour {
		t.Errorf("run gap %v, want 18h", s.gap)
	}
	s, err = New(Options{Store: nopStore{}, Sealer: nopSealer{}, SecretGrace: -1, Jitter: -1, Workers: 2, BatchSize: 5,
		DisableAfter: -1, Schedule: []time.Duration{time.Minute, 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.SecretGrace != 0 || s.o.Jitter != 0 || s.o.BatchSize != 2 || s.o.DisableAfter != -1 {
		t.Errorf("options: %+v", s.o)
	}
	// Retries alone 24h apart keep an endpoint in one failing run.
	if s.gap != 24*time.Hour+45*time.Second {
		t.Errorf("run gap %v, want the longest delay and the lease", s.gap)
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"  ok  ":                "ok",
		"a\r\n\tb\x00\x7fc":     "a b c",
		"bad \xff\xfe utf8":     "bad utf8",
		strings.Repeat("é", 10): strings.Repeat("é", 10),
	} {
		if got := clean(in, 100); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
	if got := clean(strings.Repeat("é", 10), 5); got != "éé…" {
		t.Errorf("clean cut = %q", got)
	}
}

func TestTransportError(t *testing.T) {
	if got := transportError(&netguard.AddressError{Reason: "a loopback address"}, time.Second); !strings.HasPrefix(got, "address not allowed: ") || strings.Contains(got, "netguard") {
		t.Errorf("address error: %q", got)
	}
	if got := transportError(errors.New("x\ny"), time.Second); got != "x y" {
		t.Errorf("other error: %q", got)
	}
}

// clientError checks that err is a 4xx *apierror.Error.
func clientError(t *testing.T, body string, err error) {
	t.Helper()
	var e *apierror.Error
	if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 {
		t.Fatalf("body %q: %v is not a client error", body, err)
	}
}

// FuzzCreateRequest feeds untrusted bodies to the decoding and validation
// of POST /api/v1/webhooks: every input is either refused with a 4xx or
// becomes a valid endpoint: a URL the policy accepts, known event types,
// sorted and unique, a short description.
func FuzzCreateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://hooks.example.com/a","event_types":["apikey.created","quota.exhausted"],"description":"main"}`,
		`{"url":"https://hooks.example.com/a","event_types":["*","apikey.created"]}`,
		`{"url":"http://127.0.0.1/","event_types":["*"]}`,
		`{"url":"https://169.254.169.254/","event_types":["*"]}`,
		`{"url":"https://[::ffff:10.0.0.1]:8443/x","event_types":["*"]}`,
		`{"url":"https://a.example.com/","event_types":[],"description":null}`,
		`{"url":1}`, `{"event_types":"*"}`, `[]`, `{"url":"a"}{}`, ``, `{"secret":"whsec_x"}`,
	} {
		f.Add(seed)
	}
	policy := netguard.Policy{}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req CreateRequest
		if err := httpx.DecodeJSON(r, 64<<10, &req); err != nil {
			clientError(t, body, err)
			return
		}
		in := req.Input()
		u, err := checkURL(policy, in.URL)
		if err != nil {
			clientError(t, body, err)
			return
		}
		if _, err := policy.CheckURL(u); err != nil {
			t.Fatalf("canonical URL %q refused: %v", u, err)
		}
		types, err := checkEventTypes(in.EventTypes)
		if err != nil {
			clientError(t, body, err)
			return
		}
		for i, typ := range types {
			if typ != AllEvents && !subscribable(typ) || i > 0 && types[i-1] >= typ {
				t.Fatalf("event types %q", types)
			}
		}
		if _, err := checkDescription(in.Description); err != nil {
			clientError(t, body, err)
		}
	})
}

// FuzzUpdateRequest does the same for PATCH bodies, with nullable fields.
func FuzzUpdateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"url":"https://hooks.example.com/"}`, `{"enabled":true}`, `{"enabled":null}`, `{"description":null}`,
		`{"event_types":["*"],"description":"x"}`, `{"url":null}`, `{"enabled":"false"}`, `{}`, `null`,
	} {
		f.Add(seed)
	}
	policy := netguard.Policy{}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPatch, "/api/v1/webhooks/wh_x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/merge-patch+json")
		var req UpdateRequest
		if err := (&API{maxBody: 64 << 10}).decode(r, &req); err != nil {
			clientError(t, body, err)
			return
		}
		p, err := req.Patch()
		if err != nil {
			clientError(t, body, err)
			return
		}
		if req.URL.Set != (p.URL != nil) || req.EventTypes.Set != (p.EventTypes != nil) ||
			req.Description.Set != (p.Description != nil) || req.Enabled.Set != (p.Enabled != nil) {
			t.Fatalf("patch of %q does not match the request", body)
		}
		if p.URL != nil {
			if _, err := checkURL(policy, *p.URL); err != nil {
				clientError(t, body, err)
			}
		}
		if p.EventTypes != nil {
			if _, err := checkEventTypes(*p.EventTypes); err != nil {
				clientError(t, body, err)
			}
		}
	})
}

// nopStore is a Store that is never called: New does not touch it.
type nopStore struct{ Store }

// nopSealer is a Sealer that is never called.
type nopSealer struct{ Sealer }

// nextHealth, step by step: a run starts at the first failure after a
// success, grows with each failure, restarts after a quiet gap, ends with
// a success; attempts recorded out of order (a slow one recorded after a
// quicker, later one) do not rewrite what came after them.
func TestNextHealth(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	fail := func(d time.Duration, status int) store.WebhookAttempt {
		return store.WebhookAttempt{At: at(d), StatusCode: status, Error: fmt.Sprintf("HTTP %d", status)}
	}
	ok := func(d time.Duration) store.WebhookAttempt {
		return store.WebhookAttempt{At: at(d), StatusCode: 200, Succeeded: true}
	}
	const gap = 18 * time.Hour
	steps := []struct {
		name    string
		attempt store.WebhookAttempt
		want    store.WebhookHealth
	}{
		{"first failure starts a run", fail(0, 500),
			store.WebhookHealth{FailingSince: at(0), ConsecutiveFailures: 1, LastFailureAt: at(0), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"a burst adds to it", fail(time.Second, 502),
			store.WebhookHealth{FailingSince: at(0), ConsecutiveFailures: 2, LastFailureAt: at(time.Second), LastFailureStatus: 502, LastFailureError: "HTTP 502"}},
		{"a slower, earlier failure recorded late counts but is not the last", fail(time.Second/2, 503),
			store.WebhookHealth{FailingSince: at(0), ConsecutiveFailures: 3, LastFailureAt: at(time.Second), LastFailureStatus: 502, LastFailureError: "HTTP 502"}},
		{"a retry within the gap", fail(gap, 504),
			store.WebhookHealth{FailingSince: at(0), ConsecutiveFailures: 4, LastFailureAt: at(gap), LastFailureStatus: 504, LastFailureError: "HTTP 504"}},
		{"a failure after a longer quiet gap starts a new run", fail(2*gap+time.Second, 500),
			store.WebhookHealth{FailingSince: at(2*gap + time.Second), ConsecutiveFailures: 1, LastFailureAt: at(2*gap + time.Second), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"a success from before the run began changes nothing of it", ok(2 * gap),
			store.WebhookHealth{FailingSince: at(2*gap + time.Second), ConsecutiveFailures: 1, LastSuccessAt: at(2 * gap), LastFailureAt: at(2*gap + time.Second), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"a success ends the run", ok(2*gap + time.Minute),
			store.WebhookHealth{LastSuccessAt: at(2*gap + time.Minute), LastFailureAt: at(2*gap + time.Second), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"a failure from before that success starts no run", fail(2*gap+30*time.Second, 429),
			store.WebhookHealth{LastSuccessAt: at(2*gap + time.Minute), LastFailureAt: at(2*gap + 30*time.Second), LastFailureStatus: 429, LastFailureError: "HTTP 429"}},
		{"a new run", fail(3*gap, 500),
			store.WebhookHealth{FailingSince: at(3 * gap), ConsecutiveFailures: 1, LastSuccessAt: at(2*gap + time.Minute), LastFailureAt: at(3 * gap), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"and a later failure", fail(3*gap+time.Hour, 500),
			store.WebhookHealth{FailingSince: at(3 * gap), ConsecutiveFailures: 2, LastSuccessAt: at(2*gap + time.Minute), LastFailureAt: at(3*gap + time.Hour), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
		{"a success between them, recorded last, leaves the later failure failing", ok(3*gap + time.Minute),
			store.WebhookHealth{FailingSince: at(3*gap + time.Hour), ConsecutiveFailures: 1, LastSuccessAt: at(3*gap + time.Minute), LastFailureAt: at(3*gap + time.Hour), LastFailureStatus: 500, LastFailureError: "HTTP 500"}},
	}
	var h store.WebhookHealth
	for _, s := range steps {
		h = nextHealth(h, s.attempt, gap)
		if h != s.want {
			t.Fatalf("%s:\n got %+v\nwant %+v", s.name, h, s.want)
		}
	}
}

// disableDue needs both the time and the failures.
func TestDisableDue(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const after = 72 * time.Hour
	failing := func(n int) store.WebhookHealth {
		return store.WebhookHealth{FailingSince: t0, ConsecutiveFailures: n}
	}
	for _, tt := range []struct {
		name  string
		h     store.WebhookHealth
		now   time.Time
		after time.Duration
		want  bool
	}{
		{"healthy", store.WebhookHealth{}, t0.Add(100 * time.Hour), after, false},
		{"a burst of a thousand in one minute", failing(1000), t0.Add(time.Minute), after, false},
		{"just short of the time", failing(50), t0.Add(after - time.Microsecond), after, false},
		{"at the time", failing(50), t0.Add(after), after, true},
		{"at the time, with too few failures", failing(MinFailuresToDisable - 1), t0.Add(10 * after), after, false},
		{"at the time, with just enough failures", failing(MinFailuresToDisable), t0.Add(after), after, true},
		{"never", failing(1000), t0.Add(1000 * after), -1, false},
	} {
		if got := disableDue(tt.h, tt.now, tt.after); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
