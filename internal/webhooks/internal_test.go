package webhooks

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/netguard"
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
	if o.AttemptTimeout != 15*time.Second || o.MaxFailures != 50 || o.SecretGrace != 24*time.Hour ||
		o.Retention != 30*24*time.Hour || o.Jitter != 0.2 || o.Workers != 8 || o.BatchSize != 8 ||
		o.PollInterval != time.Second || o.Lease != 45*time.Second || o.MaxEndpoints != 20 || len(o.Schedule) != 7 {
		t.Errorf("defaults: %+v", o)
	}
	s, err = New(Options{Store: nopStore{}, Sealer: nopSealer{}, SecretGrace: -1, Jitter: -1, Workers: 2, BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.SecretGrace != 0 || s.o.Jitter != 0 || s.o.BatchSize != 2 {
		t.Errorf("options: %+v", s.o)
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
