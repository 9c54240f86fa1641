package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// waitDeadline bounds the waits of these tests for what must happen; they
// never assert how soon.
const waitDeadline = 10 * time.Second

func TestInFlightWaitsForHandlers(t *testing.T) {
	var f InFlight
	if err := f.Wait(t.Context()); err != nil {
		t.Fatalf("Wait with nothing running: %v", err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := f.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	var handlers sync.WaitGroup
	for range 3 {
		handlers.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
		<-entered
	}
	if f.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", f.Len())
	}

	// A bounded wait gives up while they run, and says so.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with handlers running and ctx done: %v", err)
	}

	waited := make(chan error, 1)
	go func() { waited <- f.Wait(t.Context()) }()
	// A handler that starts while Wait waits is waited for too.
	handlers.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) })
	<-entered
	release <- struct{}{}
	release <- struct{}{}
	release <- struct{}{}
	select {
	case err := <-waited:
		t.Fatalf("Wait returned %v with a handler running", err)
	default:
	}
	close(release)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitDeadline):
		t.Fatal("Wait did not return once the handlers had")
	}
	handlers.Wait()
	if f.Len() != 0 {
		t.Errorf("Len() = %d after every handler returned", f.Len())
	}
}

func TestInFlightCountsAPanicOnce(t *testing.T) {
	var f InFlight
	h := f.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	if f.Len() != 0 {
		t.Fatalf("Len() = %d after a handler panicked", f.Len())
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	defer cancel()
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// Many handlers starting and ending while Wait runs: Wait returns once they
// are all over, never before.
func TestInFlightConcurrent(t *testing.T) {
	var f InFlight
	var done sync.WaitGroup
	h := f.Track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 8 {
		done.Go(func() {
			for range 2000 {
				h.ServeHTTP(nil, nil)
			}
		})
	}
	all := make(chan struct{})
	go func() { done.Wait(); close(all) }()
	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	defer cancel()
	for {
		if err := f.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-all:
			if f.Len() != 0 {
				t.Fatalf("Len() = %d", f.Len())
			}
			return
		default: // a quiet moment between handlers; wait again
		}
	}
}
