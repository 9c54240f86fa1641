package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// BenchmarkRecordUsage records batches of 1000 events (the gateway's largest)
// spread over 10 organizations, 50 credentials and a few hours, and reports
// events per second.
func BenchmarkRecordUsage(b *testing.B) {
	const batch = 1000
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "tollgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	events := make([]store.UsageEvent, batch)
	n := 0
	for b.Loop() {
		b.StopTimer()
		for i := range events {
			n++
			events[i] = store.UsageEvent{
				ID:           ids.New(ids.Request),
				Time:         testTime.Add(time.Duration(n) * 10 * time.Millisecond),
				OrgID:        fmt.Sprintf("org_%d", n%10),
				AppID:        fmt.Sprintf("app_%d", n%20),
				CredentialID: fmt.Sprintf("key_%d", n%50),
				AuthMethod:   "apikey",
				Method:       "GET",
				Route:        "/v1/",
				Path:         "/v1/things/42",
				Status:       200 + 200*(n%10/9),
				Latency:      1200 * time.Microsecond,
				RequestBytes: 100, ResponseBytes: 2000, Units: 1,
				ClientIP: "192.0.2.1", UserAgent: "bench/1.0",
			}
		}
		b.StartTimer()
		if err := s.RecordUsage(b.Context(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
