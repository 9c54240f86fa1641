package usage

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
)

// countingSink counts the events a store takes with their request-log
// entry.
type countingSink struct {
	*sqlite.Store
	logged atomic.Int64
}

func (s *countingSink) RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error {
	err := s.Store.RecordUsage(ctx, batchID, events)
	if err == nil {
		s.logged.Add(int64(len(events)))
	}
	return err
}

// BenchmarkOverloadSQLite records events from parallel goroutines, as fast
// as they can, into a Recorder with the default options on the embedded
// store: far above what the store writes, so the request log is sampled.
// It reports the rate offered, the rate of request-log entries the store
// took meanwhile (its sustained rate), and the share left out of the log;
// then, once the final flush is over, it checks that the rollups count every
// event and unit: the log degrades, the totals do not.
func BenchmarkOverloadSQLite(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "tollgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sink := &countingSink{Store: st}
	r := New(sink, Options{})
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()

	at := time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			r.Record(store.UsageEvent{
				ID: "req_" + strconv.FormatInt(i, 36), Time: at, OrgID: fmt.Sprintf("org_%d", i%10),
				AppID: "app_1", CredentialID: fmt.Sprintf("key_%d", i%100), AuthMethod: "apikey",
				Method: "GET", Route: "/v1/", Path: "/v1/things/42", Status: 200 + 200*int(i%10/9),
				Latency: 1200 * time.Microsecond, RequestBytes: 100, ResponseBytes: 2000, Units: 1,
				ClientIP: "192.0.2.1", UserAgent: "bench/1.0",
			})
		}
	})
	b.StopTimer()
	elapsed := b.Elapsed().Seconds()
	logged := sink.logged.Load()
	cancel()
	<-done

	n := seq.Load()
	var requests, units int64
	for o := range 10 {
		points, err := st.UsageSeries(context.Background(), store.UsageQuery{
			OrgID: fmt.Sprintf("org_%d", o), Granularity: store.GranularityMonth,
			From: store.BucketStart(store.GranularityMonth, at), To: store.AddBuckets(store.GranularityMonth, store.BucketStart(store.GranularityMonth, at), 1),
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range points {
			requests += p.Requests
			units += p.Units
		}
	}
	if requests != n || units != n || r.Dropped() != 0 || r.Failed() != 0 {
		b.Fatalf("%d events recorded; rollups count %d requests, %d units; dropped %d, failed %d",
			n, requests, units, r.Dropped(), r.Failed())
	}
	b.ReportMetric(float64(n)/elapsed, "offered_events/s")
	b.ReportMetric(float64(logged)/elapsed, "logged_events/s")
	b.ReportMetric(float64(r.Omitted())/float64(n), "omitted_share")
}
