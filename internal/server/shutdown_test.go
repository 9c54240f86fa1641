package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/sqlite"
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

// A client that stops reading its response holds its handler in a write
// that no cancellation ends: the shutdown closes its connection after the
// first wait, and the request, charged, is metered all the same.
func TestShutdownClosesAStalledClientAndMetersIt(t *testing.T) {
	var written atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		chunk := make([]byte, 64<<10)
		for range 1024 { // 64 MiB, far more than the sockets buffer
			if _, err := w.Write(chunk); err != nil {
				return
			}
			written.Add(int64(len(chunk)))
			w.(http.Flusher).Flush()
		}
	}))
	defer upstream.Close()
	dir := t.TempDir()
	n := start(t, baseYAML(dir, upstream.URL)+"plans:\n  - name: big\n    quota: {units: 1000, period: month}\ndefault_plan: big\n", nil)
	token := n.account("stall@example.com", "Stall Co")
	key, _ := n.createKey(token, nil)

	conn, err := net.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /v1/big HTTP/1.1\r\nHost: x\r\nX-API-KEY: " + key + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing. Once the upstream has sent a few MiB, the
	// gateway is forwarding, soon stuck writing to the client.
	deadline := time.Now().Add(10 * time.Second)
	for written.Load() < 4<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the upstream sent %d bytes only", written.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	n.srv.handlerGrace = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = n.srv.Shutdown(ctx) // reaches its deadline: the request is still running
	n.srv = nil
	if logs := n.logs.String(); strings.Contains(logs, "the usage of their requests is lost") {
		t.Fatalf("the shutdown gave up on the stalled request:\n%s", logs)
	}
	closed := strings.Contains(n.logs.String(), `"after":"cancelled"`)
	t.Logf("the cancellation left the handler stuck, and its connection was closed: %v", closed)

	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "tollgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUserByEmail(context.Background(), "stall@example.com")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.ListRequests(context.Background(), store.RequestFilter{OrgID: u.OrgID})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Path != "/v1/big" || entries[0].Units != 1 || entries[0].Status != http.StatusOK {
		t.Fatalf("request log %+v; want the stalled request, status 200 as sent, 1 unit", entries)
	}
	t.Logf("metered: status %d, %d response bytes written before the connection was closed", entries[0].Status, entries[0].ResponseBytes)
}
