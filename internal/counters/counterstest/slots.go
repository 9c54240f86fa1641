package counterstest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

func runSlotTests(t *testing.T, h Harness) {
	t.Run("SlotsUpToMax", func(t *testing.T) { testSlotsMax(t, h) })
	t.Run("SlotsExpireWithTheirLease", func(t *testing.T) { testSlotsLease(t, h) })
	t.Run("SlotsRenewed", func(t *testing.T) { testSlotsRenew(t, h) })
	t.Run("SlotsConcurrentNeverOverMax", func(t *testing.T) { testSlotsConcurrent(t, h) })
	t.Run("SlotsRejectBadInput", func(t *testing.T) { testSlotsBadInput(t, h) })
	t.Run("SlotsSharedAcrossNodes", func(t *testing.T) { testSlotsAcrossNodes(t, h) })
	t.Run("WatchBans", func(t *testing.T) { testWatchBans(t, h) })
	t.Run("WatchBansAcrossNodes", func(t *testing.T) { testWatchBansAcrossNodes(t, h) })
}

func acquire(t *testing.T, s counters.Store, key, holder string, max int, lease time.Duration) bool {
	t.Helper()
	ok, err := s.AcquireSlot(ctx, key, holder, max, lease)
	if err != nil {
		t.Fatalf("AcquireSlot(%q, %q): %v", key, holder, err)
	}
	return ok
}

// testSlotsMax: max holders per key, each key on its own; a holder that has
// a slot keeps it when it asks again; a released slot is free at once.
func testSlotsMax(t *testing.T, h Harness) {
	s := h.New(t)
	for _, holder := range []string{"a", "b"} {
		if !acquire(t, s, "k", holder, 2, time.Minute) {
			t.Fatalf("holder %s refused below max", holder)
		}
	}
	if acquire(t, s, "k", "c", 2, time.Minute) {
		t.Fatal("a third holder admitted with max 2")
	}
	if !acquire(t, s, "k", "a", 2, time.Minute) {
		t.Fatal("a holder refused the slot it holds")
	}
	if !acquire(t, s, "other", "c", 2, time.Minute) {
		t.Fatal("another key shares the first's slots")
	}
	if err := s.ReleaseSlot(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseSlot(ctx, "k", "never"); err != nil {
		t.Fatalf("releasing a slot not held: %v", err)
	}
	if !acquire(t, s, "k", "c", 2, time.Minute) {
		t.Fatal("a released slot was not freed")
	}
	if acquire(t, s, "k", "d", 2, time.Minute) {
		t.Fatal("over max after a release")
	}
}

// testSlotsLease: a holder that never renews (a node that died) loses its
// slot when its lease ends.
func testSlotsLease(t *testing.T, h Harness) {
	s := h.New(t)
	if !acquire(t, s, "k", "dead", 1, time.Second) {
		t.Fatal("refused")
	}
	if acquire(t, s, "k", "b", 1, time.Second) {
		t.Fatal("admitted while the lease runs")
	}
	h.Advance(t, 2*time.Second)
	if !acquire(t, s, "k", "b", 1, time.Minute) {
		t.Fatal("the slot of an ended lease was not freed")
	}
}

// testSlotsRenew: a renewed slot outlives its first lease; renewing a slot
// whose lease ended takes it again.
func testSlotsRenew(t *testing.T, h Harness) {
	s := h.New(t)
	if !acquire(t, s, "k", "a", 1, 2*time.Second) {
		t.Fatal("refused")
	}
	h.Advance(t, time.Second)
	if err := s.RenewSlots(ctx, []counters.Slot{{Key: "k", Holder: "a"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	h.Advance(t, 2*time.Second)
	if acquire(t, s, "k", "b", 1, time.Minute) {
		t.Fatal("a renewed slot was freed at the end of its first lease")
	}
	if err := s.RenewSlots(ctx, nil, time.Minute); err != nil {
		t.Fatalf("renewing nothing: %v", err)
	}
	// Lost, then renewed: held again.
	if !acquire(t, s, "j", "a", 1, time.Second) {
		t.Fatal("refused")
	}
	h.Advance(t, 2*time.Second)
	if err := s.RenewSlots(ctx, []counters.Slot{{Key: "j", Holder: "a"}, {Key: "k", Holder: "a"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if acquire(t, s, "j", "b", 1, time.Minute) {
		t.Fatal("a slot renewed after its lease ended was not taken again")
	}
}

// testSlotsConcurrent: holders racing for the slots of a key never get more
// than max between them.
func testSlotsConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	const max, racers = 5, 40
	var got atomic.Int64
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.AcquireSlot(ctx, "k", fmt.Sprint("h", i), max, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	if got.Load() != max {
		t.Fatalf("%d of %d racers got a slot, want exactly %d", got.Load(), racers, max)
	}
}

func testSlotsBadInput(t *testing.T, h Harness) {
	s := h.New(t)
	for _, c := range []struct {
		max   int
		lease time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {1, 0}, {1, -time.Second}} {
		if _, err := s.AcquireSlot(ctx, "k", "a", c.max, c.lease); err == nil {
			t.Errorf("AcquireSlot(max %d, lease %v): no error", c.max, c.lease)
		}
	}
	if err := s.RenewSlots(ctx, []counters.Slot{{Key: "k", Holder: "a"}}, 0); err == nil {
		t.Error("RenewSlots(lease 0): no error")
	}
}

// testSlotsAcrossNodes: the slots of a key are one semaphore for every node.
func testSlotsAcrossNodes(t *testing.T, h Harness) {
	if h.NewPeer == nil {
		t.Skip("the store has no peers: it is one node")
	}
	s := h.New(t)
	p := h.NewPeer(t, s)
	if !acquire(t, s, "k", "a", 2, time.Minute) || !acquire(t, p, "k", "b", 2, time.Minute) {
		t.Fatal("refused below max")
	}
	if acquire(t, s, "k", "c", 2, time.Minute) || acquire(t, p, "k", "c", 2, time.Minute) {
		t.Fatal("a node admitted over the max the nodes share")
	}
	if err := p.ReleaseSlot(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, s, "k", "c", 2, time.Minute) {
		t.Fatal("a slot released through the peer was not freed")
	}
}

// watch collects the keys WatchBans reports.
type watch struct {
	mu   sync.Mutex
	keys []string
}

func (w *watch) add(k string) {
	w.mu.Lock()
	w.keys = append(w.keys, k)
	w.mu.Unlock()
}

func (w *watch) has(k string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range w.keys {
		if x == k {
			return true
		}
	}
	return false
}

// testWatchBans: a ban set through the store is reported to its watchers,
// until they cancel.
func testWatchBans(t *testing.T, h Harness) {
	s := h.New(t)
	var w watch
	cancel := s.WatchBans(w.add)
	ban(t, s, "k", time.Hour)
	eventually(t, "the ban reported", func() bool { return w.has("k") })
	cancel()
	cancel()
	ban(t, s, "after", time.Hour)
	ban(t, s, "sentinel", time.Hour) // reported to nobody: let "after" arrive if it would
	if w.has("after") {
		t.Error("a ban reported after cancel")
	}
}

// testWatchBansAcrossNodes: a ban set through another node is reported too.
func testWatchBansAcrossNodes(t *testing.T, h Harness) {
	if h.NewPeer == nil {
		t.Skip("the store has no peers: it is one node")
	}
	s := h.New(t)
	p := h.NewPeer(t, s)
	var w watch
	defer p.WatchBans(w.add)()
	ban(t, s, "remote", time.Hour)
	eventually(t, "a ban set through another node reported", func() bool { return w.has("remote") })
}
