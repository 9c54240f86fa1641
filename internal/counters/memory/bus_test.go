package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/counterstest"
)

func TestBusConformance(t *testing.T) {
	counterstest.RunBusTests(t, func(t *testing.T) counters.Bus {
		b := NewBus()
		t.Cleanup(b.Close)
		return b
	})
}

// TestBusOverflowResyncs blocks a subscriber while more than MaxQueued
// messages are published: it then receives Resync and the messages after.
func TestBusOverflowResyncs(t *testing.T) {
	b := NewBus()
	defer b.Close()
	release := make(chan struct{})
	got := make(chan string, 2*MaxQueued)
	cancel := b.Subscribe(func(msg string) {
		<-release
		got <- msg
	})
	defer cancel()
	ctx := context.Background()
	_ = b.Publish(ctx, "first") // taken by the goroutine, blocked on release
	time.Sleep(10 * time.Millisecond)
	const n = MaxQueued + 10
	for i := range n {
		if err := b.Publish(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	want := []string{"first", counters.Resync}
	for i := n - 10; i < n; i++ {
		want = append(want, fmt.Sprint(i))
	}
	for i, w := range want {
		select {
		case m := <-got:
			if m != w {
				// "first" may not have been taken before the flood.
				if i == 0 && m == counters.Resync {
					want = want[1:]
					continue
				}
				t.Fatalf("message %d = %q, want %q", i, m, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d not received", i)
		}
	}
}

func TestBusClosed(t *testing.T) {
	b := NewBus()
	called := make(chan string, 1)
	b.Subscribe(func(msg string) { called <- msg })
	b.Close()
	b.Close()
	if err := b.Publish(context.Background(), "x"); err == nil {
		t.Fatal("Publish on a closed bus: no error")
	}
	b.Subscribe(func(msg string) { called <- msg })()
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("a closed bus holds %d subscriptions", n)
	}
	select {
	case m := <-called:
		t.Fatalf("a closed bus delivered %q", m)
	case <-time.After(10 * time.Millisecond):
	}
}
