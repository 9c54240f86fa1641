package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/store"
)

// A handler that neither its cancellation nor the closing of its
// connection ends cannot hold a shutdown forever: after the two waits of
// HandlerGrace, Shutdown goes on, and logs what it gives up: the handlers
// still running, and the requests and units admitted and not metered.
func TestShutdownGivesUpOnAWedgedHandler(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	defer upstream.Close()
	metering, release := make(chan struct{}), make(chan struct{})
	units := int64(3)
	gw, err := gateway.New([]config.Route{{Path: "/v1/", Upstream: upstream.URL, Units: &units, Public: true}}, gateway.Options{
		// A meter stuck on something that ignores every cancellation.
		Meter: func(*store.UsageEvent, string) { close(metering); <-release },
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s := &Server{log: slog.New(slog.NewJSONHandler(logs, nil)), gateway: gw, handlerGrace: time.Millisecond}
	s.baseCtx, s.baseCancel = context.WithCancelCause(context.Background())
	front := httptest.NewServer(s.handlers.Track(gw))
	defer front.Close()  // waits for the handler…
	defer close(release) // …which this, run first, lets go
	go func() {
		if res, err := http.Get(front.URL + "/v1/x"); err == nil {
			_ = res.Body.Close()
		}
	}()
	select {
	case <-metering:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not metered")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want := `"msg":"shutdown: handlers still running; the usage of their requests is lost","handlers":1,"requests_unmetered":1,"units_unmetered":3`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %s:\n%s", want, logs)
	}
}
