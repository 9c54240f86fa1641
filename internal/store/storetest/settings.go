package storetest

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/store"
)

// Cluster settings: what every node sharing the store must agree on.

// testClusterSettings: the first value pinned stays, later pins return it;
// a set replaces it, with an audit entry; names are independent.
func testClusterSettings(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	_, err := s.GetClusterSetting(ctx, "auth.issuer")
	wantErr(t, "GetClusterSetting before any pin", err, store.ErrNotFound)

	first := store.ClusterSetting{Name: "auth.issuer", Value: "https://api.example.com", RecordedAt: f.now(), RecordedBy: "10.0.0.1:8443"}
	wantEqual(t, "first pin", must(s.PinClusterSetting(ctx, first))(t), normalize(first))
	other := store.ClusterSetting{Name: "auth.issuer", Value: "https://10.0.0.2:8443", RecordedAt: f.now(), RecordedBy: "10.0.0.2:8443"}
	wantEqual(t, "second pin of another value", must(s.PinClusterSetting(ctx, other))(t), normalize(first))
	wantEqual(t, "GetClusterSetting", must(s.GetClusterSetting(ctx, "auth.issuer"))(t), normalize(first))

	aud := store.ClusterSetting{Name: "auth.audience", Value: "https://api.example.com", RecordedAt: f.now()}
	wantEqual(t, "pin of another name", must(s.PinClusterSetting(ctx, aud))(t), normalize(aud))

	before := f.allAudit()
	changed := store.ClusterSetting{Name: "auth.issuer", Value: "https://new.example.com", RecordedAt: f.now(), RecordedBy: "cli"}
	mustDo(t, s.SetClusterSetting(ctx, changed, auditValue("cluster.set_setting")))
	a := auditValue("cluster.set_setting")
	a.TargetID = "auth.issuer"
	f.wantNewAudit("SetClusterSetting", before, a)
	wantEqual(t, "GetClusterSetting after a set", must(s.GetClusterSetting(ctx, "auth.issuer"))(t), normalize(changed))
	wantEqual(t, "pin after a set", must(s.PinClusterSetting(ctx, first))(t), normalize(changed))
	wantEqual(t, "the other name after a set", must(s.GetClusterSetting(ctx, "auth.audience"))(t), normalize(aud))

	// A zero time is now; a name is required.
	now := store.ClusterSetting{Name: "x402.siwx.domain", Value: "api.example.com"}
	if got := must(s.PinClusterSetting(ctx, now))(t); got.RecordedAt.IsZero() || got.Value != now.Value {
		t.Errorf("pin without a time: %+v", got)
	}
	if _, err := s.PinClusterSetting(ctx, store.ClusterSetting{Value: "v"}); err == nil {
		t.Error("pin without a name: no error")
	}
	before = f.allAudit()
	if err := s.SetClusterSetting(ctx, store.ClusterSetting{Value: "v"}, auditValue("cluster.set_setting")); err == nil {
		t.Error("set without a name: no error")
	}
	f.wantNewAudit("SetClusterSetting without a name", before)
}

// testConcurrentPinClusterSetting: nodes starting at once, each pinning its
// own value, all get the same one back.
func testConcurrentPinClusterSetting(f *fixture) {
	t, s, ctx := f.t, f.s, f.ctx
	const goroutines = 8
	at := f.now()
	got := make([]store.ClusterSetting, goroutines)
	errs := runAll(goroutines, func(g int) error {
		var err error
		got[g], err = s.PinClusterSetting(ctx, store.ClusterSetting{Name: "auth.issuer",
			Value: fmt.Sprintf("https://node-%d.example.com", g), RecordedAt: at, RecordedBy: fmt.Sprint(g)})
		return err
	})
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}
	for g := range got {
		wantEqual(t, fmt.Sprintf("goroutine %d's setting", g), got[g], got[0])
	}
	wantEqual(t, "GetClusterSetting", must(s.GetClusterSetting(ctx, "auth.issuer"))(t), got[0])
}
