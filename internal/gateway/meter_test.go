package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// meterDeadline bounds the waits of the metering tests for what must
// happen; they never assert how soon.
const meterDeadline = 10 * time.Second

// meteredGateway runs a gateway on a real server (ReverseProxy aborts a
// response it cannot finish only under one) with a metered route /v1/ of 3
// units to upstream, and returns its URL and the channel its usage events
// go to. base is the server's base context (the server's shutdown cancels
// it); nil for the default.
func meteredGateway(t *testing.T, upstream string, base context.Context) (string, <-chan store.UsageEvent) {
	t.Helper()
	units := int64(3)
	events := make(chan store.UsageEvent, 16)
	g, err := New([]config.Route{{Path: "/v1/", Upstream: upstream, Units: &units}}, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}},
		Meter:          func(e *store.UsageEvent, _ string) { events <- *e },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqinfo.Info{ID: "req_" + strings.TrimPrefix(r.URL.Path, "/v1/"), ClientIP: netip.MustParseAddr("192.0.2.1")}
		g.ServeHTTP(w, r.WithContext(reqinfo.With(r.Context(), info)))
	}))
	srv.Config.ErrorLog = nil
	if base != nil {
		srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, events
}

func nextEvent(t *testing.T, events <-chan store.UsageEvent) store.UsageEvent {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(meterDeadline):
		t.Fatal("no usage event")
		return store.UsageEvent{}
	}
}

func getKeyed(t *testing.T, url string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-API-KEY", "good")
	return (&http.Client{Timeout: meterDeadline}).Do(req)
}

// A response whose body the upstream cuts halfway makes ReverseProxy abort
// the handler (panic http.ErrAbortHandler): the request was charged, and is
// metered all the same, with what was sent.
func TestMeteredWhenTheUpstreamCutsTheBody(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("x", 100))
		_ = brw.Flush()
		_ = conn.Close()
	}))
	defer upstream.Close()
	url, events := meteredGateway(t, upstream.URL, nil)

	res, err := getKeyed(t, url+"/v1/cut")
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}
	if err == nil {
		t.Error("the client read a whole response from a body cut halfway")
	}
	e := nextEvent(t, events)
	if e.ID != "req_cut" || e.Units != 3 || e.Status != http.StatusOK || e.OrgID != orgPrincipal.OrgID {
		t.Errorf("event %+v; want req_cut, status 200 as sent, 3 units, org %s", e, orgPrincipal.OrgID)
	}
}

// A client that goes away in the middle of a response: charged, metered.
func TestMeteredWhenTheClientLeavesMidBody(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream") // flushed as it comes
		_, _ = w.Write([]byte("data: first\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer upstream.Close()
	url, events := meteredGateway(t, upstream.URL, nil)

	res, err := getKeyed(t, url+"/v1/leaver")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	_ = res.Body.Close() // goes away
	e := nextEvent(t, events)
	if e.ID != "req_leaver" || e.Units != 3 || e.Status != http.StatusOK {
		t.Errorf("event %+v; want req_leaver, status 200, 3 units", e)
	}
}

// A shutdown cancels the requests still waiting for their upstream (the
// server's base context ends with cause http.ErrServerClosed): the client
// gets 503 SERVICE_UNAVAILABLE, not an empty answer, and the request, which
// was charged, is metered with that status. Unmetered counts it meanwhile.
func TestShutdownCancellationAnswered503AndMetered(t *testing.T) {
	arrived := make(chan struct{}, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	defer upstream.Close()
	base, shutdown := context.WithCancelCause(context.Background())
	defer shutdown(nil)
	units := int64(3)
	events := make(chan store.UsageEvent, 1)
	g, err := New([]config.Route{{Path: "/v1/", Upstream: upstream.URL, Units: &units}}, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}},
		Meter:          func(e *store.UsageEvent, _ string) { events <- *e },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &reqinfo.Info{ID: "req_stuck", ClientIP: netip.MustParseAddr("192.0.2.1")}
		g.ServeHTTP(w, r.WithContext(reqinfo.With(r.Context(), info)))
	}))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := getKeyed(t, srv.URL+"/v1/stuck")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		answered <- answer{res.StatusCode, string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(meterDeadline):
		t.Fatal("the request did not reach the upstream")
	}
	if n, u := g.Unmetered(); n != 1 || u != 3 {
		t.Errorf("Unmetered() = %d requests, %d units while the request waits; want 1, 3", n, u)
	}
	shutdown(http.ErrServerClosed)
	a := <-answered
	if a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, `"SERVICE_UNAVAILABLE"`) {
		t.Errorf("answer %d %q %v; want 503 SERVICE_UNAVAILABLE", a.status, a.body, a.err)
	}
	e := nextEvent(t, events)
	if e.Status != http.StatusServiceUnavailable || e.Units != 3 || e.ErrorCode != "SERVICE_UNAVAILABLE" {
		t.Errorf("event %+v; want status 503, 3 units, SERVICE_UNAVAILABLE", e)
	}
	if n, u := g.Unmetered(); n != 0 || u != 0 {
		t.Errorf("Unmetered() = %d, %d once metered", n, u)
	}
}

// A panic in the request path is metered as the 500 httpx.Recover answers,
// and goes on up.
func TestMeteredWhenAHandlerPanics(t *testing.T) {
	units := int64(3)
	var got store.UsageEvent
	g, err := New([]config.Route{{Path: "/v1/", Upstream: "http://192.0.2.1", Units: &units}}, Options{
		Authenticators: []authn.Authenticator{APIKeyMethod{Keys: keys{"good": orgPrincipal}}},
		Meter:          func(e *store.UsageEvent, _ string) { got = *e },
		// Asked on the request's goroutine, once the request is admitted.
		Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) { panic("proxy") }},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v1/x", nil)
	r.Header.Set("X-API-KEY", "good")
	func() {
		defer func() {
			if v := recover(); v != "proxy" {
				t.Errorf("the panic went on up as %v", v)
			}
		}()
		serve(g, r, "192.0.2.1")
	}()
	if got.Status != http.StatusInternalServerError || got.Units != 3 {
		t.Errorf("event %+v; want status 500, 3 units", got)
	}
	if n, _ := g.Unmetered(); n != 0 {
		t.Errorf("Unmetered() = %d after the panic was metered", n)
	}
}
