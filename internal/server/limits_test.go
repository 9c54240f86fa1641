package server

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// planYAML adds a plan to the base configuration and makes it the default.
func planYAML(t *testing.T, upstream, plan string) string {
	return baseYAML(t.TempDir(), upstream) + "plans:\n" + plan + "default_plan: free\n"
}

// The "done when": a burst against 5/s with burst 10 gets 429s with
// Retry-After; refused requests are not forwarded and cost nothing.
func TestRateLimit(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, planYAML(t, be.URL, "  - name: free\n    rate: {requests_per_second: 5, burst: 10}\n    quota: {units: 10000, period: month}\n"), nil)
	key, _ := n.createKey(n.account("gil@example.com", "Gil"), nil)
	var ok, limited int
	for i := range 30 {
		r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
		switch r.Status {
		case 200:
			ok++
			if !strings.Contains(r.Header.Get("RateLimit-Policy"), `"burst";q=10;w=2`) ||
				!strings.Contains(r.Header.Get("RateLimit"), `"month";r=`+strconv.Itoa(10000-ok)) {
				t.Fatalf("request %d: headers %v", i, r.Header)
			}
		case 429:
			limited++
			if code, _ := r.errCode(t); code != "RATE_LIMITED" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without RATE_LIMITED or Retry-After: %v %s", r.Header, r.Body)
			}
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if ok != 10 || limited != 20 || len(be.all()) != 10 {
		t.Fatalf("%d admitted, %d limited, %d forwarded; want 10, 20, 10 (frozen clock)", ok, limited, len(be.all()))
	}
	n.clock.Advance(time.Second) // 5 more
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 || !strings.Contains(r.Header.Get("RateLimit"), `"month";r=9989`) {
		t.Fatalf("after a second: %d %v", r.Status, r.Header)
	}
}

// A 50-unit quota: exactly 50 units admitted even under concurrency, the
// 51st refused with 403 quota_exhausted and Retry-After to the period's end.
func TestQuotaExact(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, planYAML(t, be.URL, "  - name: free\n    quota: {units: 50, period: day}\n"), nil)
	key, _ := n.createKey(n.account("hal@example.com", "Hal"), nil)
	var admitted, exhausted atomic.Int32
	var wg sync.WaitGroup
	for range 80 {
		wg.Go(func() {
			r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key)
			switch {
			case r.Status == 200:
				admitted.Add(1)
			case r.Status == 403 && strings.Contains(string(r.Body), "quota_exhausted") && r.Header.Get("Retry-After") != "":
				exhausted.Add(1)
			default:
				t.Errorf("status %d %v %s", r.Status, r.Header, r.Body)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 50 || exhausted.Load() != 30 || len(be.all()) != 50 {
		t.Fatalf("%d admitted, %d exhausted, %d forwarded; want 50, 30, 50", admitted.Load(), exhausted.Load(), len(be.all()))
	}
	// The next day the quota is back.
	n.clock.Advance(24 * time.Hour)
	if r := do(t, "GET", n.base+"/v1/x", nil, "X-API-KEY", key); r.Status != 200 {
		t.Fatalf("next day: %d %s", r.Status, r.Body)
	}
}
