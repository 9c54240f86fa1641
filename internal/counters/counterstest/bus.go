package counterstest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

// RunBusTests runs the conformance suite of counters.Bus. newBus returns a
// fresh bus, independent of any other it returned. The suite ignores
// counters.Resync, which a bus may deliver at any time.
func RunBusTests(t *testing.T, newBus func(t *testing.T) counters.Bus) {
	t.Run("DeliveredToEverySubscriber", func(t *testing.T) { testBusDelivery(t, newBus) })
	t.Run("InOrderPerSubscriber", func(t *testing.T) { testBusOrder(t, newBus) })
	t.Run("FromNowOn", func(t *testing.T) { testBusFromNowOn(t, newBus) })
	t.Run("CancelStopsDelivery", func(t *testing.T) { testBusCancel(t, newBus) })
	t.Run("CancelFromCallback", func(t *testing.T) { testBusCancelFromCallback(t, newBus) })
	t.Run("SlowSubscriberBlocksNoOther", func(t *testing.T) { testBusSlow(t, newBus) })
}

// busWithin is how long a published message may take to be delivered.
const busWithin = 5 * time.Second

// inbox collects the messages of one subscription.
type inbox struct {
	mu     sync.Mutex
	msgs   []string
	resync int
	cancel func()
}

func subscribe(b counters.Bus) *inbox {
	in := &inbox{}
	in.cancel = b.Subscribe(in.add)
	return in
}

func (in *inbox) add(msg string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if msg == counters.Resync {
		in.resync++
		return
	}
	in.msgs = append(in.msgs, msg)
}

func (in *inbox) got() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.msgs)
}

// wait waits until the inbox holds n messages and returns them.
func (in *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(busWithin)
	for {
		got := in.got()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages within %v, want %d: %q", len(got), busWithin, n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func publish(t *testing.T, b counters.Bus, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := b.Publish(ctx, m); err != nil {
			t.Fatalf("Publish(%q): %v", m, err)
		}
	}
}

func testBusDelivery(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	var ins []*inbox
	for range 3 {
		in := subscribe(b)
		defer in.cancel()
		ins = append(ins, in)
	}
	want := []string{"key:a", "", "key b with spaces", "ünïcode\x00bytes"}
	publish(t, b, want...)
	for i, in := range ins {
		if got := in.wait(t, len(want)); !slices.Equal(got, want) {
			t.Fatalf("subscriber %d received %q, want %q", i, got, want)
		}
	}
}

func testBusOrder(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	a, c := subscribe(b), subscribe(b)
	defer a.cancel()
	defer c.cancel()
	var want []string
	for i := range 200 {
		want = append(want, fmt.Sprint("m", i))
	}
	// Two publishers at once: both subscribers see one order, and each
	// publisher's messages in the order it published them.
	var wg sync.WaitGroup
	var other []string
	for i := range 50 {
		other = append(other, fmt.Sprint("o", i))
	}
	wg.Go(func() {
		for _, m := range other {
			if err := b.Publish(ctx, m); err != nil {
				panic(err)
			}
		}
	})
	publish(t, b, want...)
	wg.Wait()
	ga, gc := a.wait(t, len(want)+len(other)), c.wait(t, len(want)+len(other))
	if !slices.Equal(ga, gc) {
		t.Fatalf("subscribers received different orders:\n%q\n%q", ga, gc)
	}
	var mine, theirs []string
	for _, m := range ga {
		if m[0] == 'm' {
			mine = append(mine, m)
		} else {
			theirs = append(theirs, m)
		}
	}
	if !slices.Equal(mine, want) || !slices.Equal(theirs, other) {
		t.Fatalf("out of order: %q", ga)
	}
}

func testBusFromNowOn(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	first := subscribe(b)
	defer first.cancel()
	publish(t, b, "before")
	first.wait(t, 1)
	late := subscribe(b)
	defer late.cancel()
	publish(t, b, "after")
	first.wait(t, 2)
	if got := late.wait(t, 1); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("a subscriber received %q, want only what was published after it subscribed", got)
	}
}

func testBusCancel(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	gone, stays := subscribe(b), subscribe(b)
	defer stays.cancel()
	publish(t, b, "one")
	gone.wait(t, 1)
	gone.cancel()
	gone.cancel() // twice is harmless
	publish(t, b, "two", "three")
	stays.wait(t, 3)
	// Give a wrongly delivered message the time the others took.
	time.Sleep(20 * time.Millisecond)
	if got := gone.got(); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("a cancelled subscription received %q", got)
	}
}

func testBusCancelFromCallback(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	var (
		mu     sync.Mutex
		calls  []string
		cancel func()
	)
	ready := make(chan struct{})
	cancel = b.Subscribe(func(msg string) {
		if msg == counters.Resync {
			return
		}
		<-ready
		mu.Lock()
		calls = append(calls, msg)
		mu.Unlock()
		cancel()
	})
	close(ready)
	watch := subscribe(b)
	defer watch.cancel()
	publish(t, b, "one", "two", "three")
	watch.wait(t, 3)
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(calls, []string{"one"}) {
		t.Fatalf("a subscription that cancelled itself on its first message received %q", calls)
	}
}

func testBusSlow(t *testing.T, newBus func(*testing.T) counters.Bus) {
	b := newBus(t)
	release := make(chan struct{})
	slow := &inbox{}
	slow.cancel = b.Subscribe(func(msg string) {
		<-release
		slow.add(msg)
	})
	defer slow.cancel()
	fast := subscribe(b)
	defer fast.cancel()
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprint("m", i))
	}
	publish(t, b, want...)
	if got := fast.wait(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("beside a blocked subscriber, received %q", got)
	}
	close(release)
	if got := slow.wait(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("the blocked subscriber, released, received %q", got)
	}
}
