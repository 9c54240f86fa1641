package httpx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
)

// answerWithin bounds every wait of these tests: an answer that has not
// come by then is a failure, not a slow machine.
const answerWithin = 10 * time.Second

// slowServer serves h behind RequestInfo and BodyDeadline on a real
// loopback listener speaking HTTP/1.1 and h2c; every cut is sent on cuts.
func slowServer(t *testing.T, o BodyDeadlineOptions, h http.Handler) (addr string, cuts <-chan SlowBody) {
	t.Helper()
	ch := make(chan SlowBody, 16)
	o.OnTimeout = func(_ *http.Request, c SlowBody) { ch <- c }
	srv := httptest.NewUnstartedServer(Chain(h,
		RequestInfo(NewIDGenerator(), func(*http.Request) netip.Addr { return netip.MustParseAddr("127.0.0.1") }, clock.System{}, nil),
		BodyDeadline(o),
	))
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), ch
}

// readAll reads r's body, answering a handler's read error as the handlers
// of Tollgate do: with an error of their own (400), which BodyDeadline must
// replace.
func readAll(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		apierror.Write(w, r, apierror.Invalid("", "cannot read the body"))
		return
	}
	_, _ = fmt.Fprintf(w, "got %d bytes", len(b))
}

// trickle sends a request declaring a body of length bytes over HTTP/1.1,
// then one byte every interval until the server stops reading, and returns
// everything the server sent until it closed the connection.
func trickle(t *testing.T, addr, head string, length int, every time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n", head, length); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range length {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the trickling request was neither answered nor cut within %v; read %q", answerWithin, got)
	}
	return string(got)
}

// expect408 checks a raw HTTP/1.1 answer: 408 REQUEST_TIMEOUT, and the
// connection closed.
func expect408(t *testing.T, raw string) {
	t.Helper()
	expectCut(t, raw, http.StatusRequestTimeout, "REQUEST_TIMEOUT")
}

// expectCut checks a raw HTTP/1.1 answer: status and error code, and the
// connection closed.
func expectCut(t *testing.T, raw string, status int, code string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !strings.Contains(string(body), `"code":"`+code+`"`) || !resp.Close {
		t.Fatalf("answer %d (close %v) %s, want %d %s and Connection: close", resp.StatusCode, resp.Close, body, status, code)
	}
}

func waitCut(t *testing.T, cuts <-chan SlowBody) SlowBody {
	t.Helper()
	select {
	case c := <-cuts:
		return c
	case <-time.After(answerWithin):
		t.Fatal("no cut reported")
		return SlowBody{}
	}
}

// A body sent a byte at a time is cut: answered 408 when the handler reads
// it (and answers its read error with a 400 of its own), answered with the
// handler's refusal when it refuses without reading it; the connection is
// closed either way, and the cut reported.
func TestBodyDeadlineCutsATrickleHTTP1(t *testing.T) {
	o := BodyDeadlineOptions{Timeout: 300 * time.Millisecond, MinRate: 500}
	t.Run("reads", func(t *testing.T) {
		addr, cuts := slowServer(t, o, http.HandlerFunc(readAll))
		expect408(t, trickle(t, addr, "POST /upload HTTP/1.1\r\nHost: x\r\n", 60000, 20*time.Millisecond))
		if c := waitCut(t, cuts); !c.Answered || c.Received > 60000 {
			t.Errorf("cut reported as %+v", c)
		}
	})
	t.Run("refuses", func(t *testing.T) {
		addr, cuts := slowServer(t, o, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apierror.Write(w, r, apierror.ErrUnauthorized)
		}))
		expectCut(t, trickle(t, addr, "POST /upload HTTP/1.1\r\nHost: x\r\n", 60000, 20*time.Millisecond), 401, "UNAUTHORIZED")
		if c := waitCut(t, cuts); c.Answered {
			t.Errorf("cut reported as %+v", c)
		}
	})
}

// A refused request's body earns no time: sent at the minimum rate, it is
// still cut after Timeout, where a body being read would go on.
func TestBodyDeadlineDrainEarnsNothing(t *testing.T) {
	addr, cuts := slowServer(t, BodyDeadlineOptions{Timeout: 300 * time.Millisecond, MinRate: 100},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apierror.Write(w, r, apierror.ErrUnauthorized) }))
	// 100 bytes every 50 ms: 2000 B/s, twenty times the minimum rate.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte(strings.Repeat("d", 100))); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	raw, _ := io.ReadAll(c)
	expectCut(t, string(raw), 401, "UNAUTHORIZED")
	waitCut(t, cuts)
}

// A chunked body (no declared length) is cut as well.
func TestBodyDeadlineCutsAChunkedTrickle(t *testing.T) {
	addr, cuts := slowServer(t, BodyDeadlineOptions{Timeout: 300 * time.Millisecond, MinRate: 500}, http.HandlerFunc(readAll))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read %q: %v", raw, err)
	}
	expect408(t, string(raw))
	waitCut(t, cuts)
}

// slowReader yields one byte per tick, length bytes in all, until stop.
type slowReader struct {
	left int
	tick <-chan time.Time
	stop <-chan struct{}
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	select {
	case <-s.tick:
	case <-s.stop:
		return 0, errors.New("test over")
	}
	s.left--
	p[0] = 'x'
	return 1, nil
}

// Over HTTP/2 (h2c here) the deadline is the stream's: the trickling stream
// is answered 408 and the connection stays usable for other streams.
func TestBodyDeadlineCutsATrickleHTTP2(t *testing.T) {
	addr, cuts := slowServer(t, BodyDeadlineOptions{Timeout: 300 * time.Millisecond, MinRate: 500}, http.HandlerFunc(readAll))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: answerWithin}
	defer client.CloseIdleConnections()

	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stop := make(chan struct{})
	defer close(stop)
	req, _ := http.NewRequest("POST", "http://"+addr+"/upload", &slowReader{left: 60000, tick: tick.C, stop: stop})
	req.ContentLength = 60000
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 408 || !strings.Contains(string(body), `"code":"REQUEST_TIMEOUT"`) {
		t.Fatalf("HTTP/%d %d %s, want HTTP/2 408 REQUEST_TIMEOUT", resp.ProtoMajor, resp.StatusCode, body)
	}
	waitCut(t, cuts)
	// The connection serves the next stream.
	resp, err = client.Post("http://"+addr+"/upload", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "got 5 bytes" {
		t.Fatalf("next stream: %d %s", resp.StatusCode, body)
	}
}

// pacedReader yields chunk bytes every tick until length bytes are sent.
type pacedReader struct {
	left, chunk int
	tick        <-chan time.Time
	first       bool
}

func (s *pacedReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.first {
		<-s.tick
	}
	s.first = true
	n := min(s.chunk, s.left, len(p))
	for i := range n {
		p[i] = 'y'
	}
	s.left -= n
	return n, nil
}

// An upload slower than the timeout allows, but well above the minimum
// rate, succeeds on both protocols: the deadline follows the bytes.
func TestBodyDeadlineLetsASlowUploadThrough(t *testing.T) {
	// 3200 bytes at 400 B per 200 ms, four times the minimum rate, take
	// about 1.6 s: longer than Timeout. Each chunk earns 0.8 s, so the
	// client may stall several times that long under a loaded machine.
	addr, _ := slowServer(t, BodyDeadlineOptions{Timeout: time.Second, MinRate: 500}, http.HandlerFunc(readAll))
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	for name, tr := range map[string]*http.Transport{"HTTP/1.1": {}, "h2c": {Protocols: &h2c}} {
		t.Run(name, func(t *testing.T) {
			defer tr.CloseIdleConnections()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			start := time.Now()
			req, _ := http.NewRequest("POST", "http://"+addr+"/upload", &pacedReader{left: 3200, chunk: 400, tick: tick.C})
			req.ContentLength = 3200
			resp, err := (&http.Client{Transport: tr, Timeout: answerWithin}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "got 3200 bytes" {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if took := time.Since(start); took < time.Second {
				t.Logf("the upload took %v, not longer than the timeout: the extension went untested", took)
			}
		})
	}
}

// A hijacked connection (a WebSocket upgrade) keeps no body deadline: the
// session reads long after the body's deadline would have passed.
func TestBodyDeadlineHijackClearsTheDeadline(t *testing.T) {
	const timeout = 100 * time.Millisecond
	got := make(chan string, 1)
	addr, _ := slowServer(t, BodyDeadlineOptions{Timeout: timeout, MinRate: 500}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- "hijack: " + err.Error()
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		line, err := brw.ReadString('\n')
		if err != nil {
			got <- "read: " + err.Error()
			return
		}
		got <- line
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// An upgrade that declares a body: the handler never reads it.
	if _, err := io.WriteString(c, "POST /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\nContent-Length: 2\r\n\r\nhi"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Not waiting for an event: making sure the body's deadline is past.
	time.Sleep(3 * timeout)
	if _, err := io.WriteString(c, "still here\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if !strings.HasSuffix(line, "still here\n") { // after the body, "hi"
			t.Fatalf("the session read %q", line)
		}
	case <-time.After(answerWithin):
		t.Fatal("the session read nothing")
	}
}

// fakeConnWriter is a ResponseWriter that records the read deadlines set
// through it, as http.ResponseController sets them.
type fakeConnWriter struct {
	*httptest.ResponseRecorder
	mu        sync.Mutex
	deadlines []time.Time
}

func (f *fakeConnWriter) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadlines = append(f.deadlines, t)
	return nil
}

func (f *fakeConnWriter) calls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.deadlines...)
}

// timeoutReader returns os.ErrDeadlineExceeded after n bytes, as a
// connection past its read deadline does.
type timeoutReader struct{ n int }

func (r *timeoutReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)
	}
	k := min(r.n, len(p))
	r.n -= k
	return k, nil
}

// A large body read fast costs a few deadline updates, not one per read;
// on HTTP/1.x the deadline is cleared at its end.
func TestBodyDeadlineUpdatesAreFew(t *testing.T) {
	const size = 10 << 20
	for _, proto := range []int{1, 2} {
		f := &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
		reads := 0
		h := BodyDeadline(BodyDeadlineOptions{Timeout: 20 * time.Second, MinRate: 500})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 32<<10)
			for {
				_, err := r.Body.Read(buf)
				reads++
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			w.WriteHeader(204)
		}))
		r := httptest.NewRequest("POST", "/", io.LimitReader(zeros{}, size))
		r.ProtoMajor = proto
		r.ContentLength = size
		h.ServeHTTP(f, r)
		calls := f.calls()
		if f.Code != 204 || reads < 300 {
			t.Fatalf("HTTP/%d: status %d after %d reads", proto, f.Code, reads)
		}
		// The first deadline; for HTTP/1.x the clearing at the end; and
		// in between, each update at least doubles what is left: a
		// dozen for a credit of 20,000 s.
		if len(calls) > 16 || !calls[0].After(time.Now().Add(10*time.Second)) {
			t.Errorf("HTTP/%d: %d deadline updates for %d reads: %v", proto, len(calls), reads, calls)
		}
		last := calls[len(calls)-1]
		if proto == 1 && !last.IsZero() {
			t.Errorf("HTTP/1.1: the deadline was not cleared at the end of the body: %v", calls)
		}
		if proto == 2 && last.IsZero() {
			t.Errorf("HTTP/2: the stream's deadline was cleared (a message to the connection for nothing)")
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A read past the deadline gives the handler a 408 REQUEST_TIMEOUT error,
// and whatever the handler answers, the client gets that 408.
func TestBodyDeadlineReplacesTheAnswer(t *testing.T) {
	var cut *SlowBody
	h := BodyDeadline(BodyDeadlineOptions{Timeout: time.Second, MinRate: 500,
		OnTimeout: func(_ *http.Request, c SlowBody) { cut = &c }})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		var e *apierror.Error
		if !errors.As(err, &e) || e.Status != 408 || e.Code != apierror.RequestTimeout || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read error %v, want a 408 REQUEST_TIMEOUT wrapping the deadline", err)
		}
		if !BodyTimedOut(NewRecorder(w)) {
			t.Error("BodyTimedOut does not see the cut through a wrapping writer")
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Www-Authenticate", "Bearer")
		w.WriteHeader(http.StatusBadRequest)
		if _, err := w.Write([]byte("handler's own answer")); err == nil {
			t.Error("the handler's write went through")
		}
	}))
	f := &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
	f.Header().Set("X-Request-Id", "req_1") // set by the middleware before
	r := httptest.NewRequest("POST", "/", &timeoutReader{n: 10})
	r.ContentLength = 100
	h.ServeHTTP(f, r)
	if f.Code != 408 || !strings.Contains(f.Body.String(), "REQUEST_TIMEOUT") || strings.Contains(f.Body.String(), "handler's") ||
		f.Header().Get("Content-Encoding") != "" || f.Header().Get("Www-Authenticate") != "" ||
		f.Header().Get("X-Request-Id") != "req_1" || f.Header().Get("Connection") != "close" {
		t.Fatalf("answer %d %v %s", f.Code, f.Header(), f.Body)
	}
	if cut == nil || cut.Received != 10 || !cut.Answered {
		t.Fatalf("cut reported as %+v", cut)
	}

	// A handler that answers nothing gets the 408 all the same.
	h = BodyDeadline(BodyDeadlineOptions{Timeout: time.Second})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	f = &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
	r = httptest.NewRequest("POST", "/", &timeoutReader{n: 0})
	h.ServeHTTP(f, r)
	if f.Code != 408 {
		t.Fatalf("silent handler: %d %s", f.Code, f.Body)
	}
	// No cut, no change: the handler's answer, with a body read whole.
	h = BodyDeadline(BodyDeadlineOptions{Timeout: time.Second})(http.HandlerFunc(readAll))
	f = &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(f, httptest.NewRequest("POST", "/", strings.NewReader("abc")))
	if f.Code != 200 || f.Body.String() != "got 3 bytes" {
		t.Fatalf("whole body: %d %s", f.Code, f.Body)
	}
}

// Requests without a body pass untouched and cost no allocation; so do
// writers that cannot set deadlines.
func TestBodyDeadlineSkipsBodilessRequests(t *testing.T) {
	var sawBody io.ReadCloser
	var sawWriter http.ResponseWriter
	h := BodyDeadline(BodyDeadlineOptions{Timeout: time.Second, MinRate: 500})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawBody, sawWriter = r.Body, w
	}))
	f := &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest("GET", "/", nil)
	r.Body = http.NoBody
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(f, r) }); n != 0 {
		t.Errorf("%v allocations for a request without a body", n)
	}
	if sawBody != http.NoBody || sawWriter != http.ResponseWriter(f) || len(f.calls()) != 0 {
		t.Error("a request without a body was guarded")
	}
	// HTTP/2 without a body: a body that is not NoBody, length 0, no
	// Content-Length.
	r2 := httptest.NewRequest("GET", "/", strings.NewReader(""))
	r2.ProtoMajor, r2.ContentLength = 2, 0
	h.ServeHTTP(f, r2)
	if len(f.calls()) != 0 {
		t.Error("an HTTP/2 request without a body was guarded")
	}
	// ... but Content-Length: 0 on a stream left open is guarded.
	r2.Header.Set("Content-Length", "0")
	h.ServeHTTP(f, r2)
	if len(f.calls()) == 0 {
		t.Error("an HTTP/2 request declaring an empty body was not guarded")
	}
	// A writer without deadlines: served as is.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/", strings.NewReader("abc")))
	if sawWriter != http.ResponseWriter(rec) {
		t.Error("a writer without deadlines was wrapped")
	}
}

// A client that sends nothing at first, while a handler is slow to start
// reading, is not cut for the handler's delay: the first read restarts the
// count.
func TestBodyDeadlineLateFirstRead(t *testing.T) {
	f := &fakeConnWriter{ResponseRecorder: httptest.NewRecorder()}
	var r *http.Request
	h := BodyDeadline(BodyDeadlineOptions{Timeout: 40 * time.Millisecond, MinRate: 500})(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Not waiting for an event: being a handler slow to read.
		time.Sleep(50 * time.Millisecond)
		readAll(w, req)
	}))
	r = httptest.NewRequest("POST", "/", strings.NewReader("abc"))
	h.ServeHTTP(f, r)
	calls := f.calls()
	if len(calls) < 3 || !calls[1].After(calls[0]) || !calls[len(calls)-1].IsZero() {
		t.Fatalf("deadlines %v: want the first, one moved at the late first read, then the clearing", calls)
	}
}

// An Expect: 100-continue request that the handler refuses without reading
// is answered at once: the client sends no body, none is awaited.
func TestBodyDeadlineExpectContinue(t *testing.T) {
	addr, _ := slowServer(t, BodyDeadlineOptions{Timeout: time.Hour, MinRate: 500}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, r, apierror.ErrUnauthorized)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: "+strconv.Itoa(1<<20)+"\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(answerWithin))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("%v %v, want 401 without waiting for the body", resp, err)
	}
}

// BenchmarkBodyDeadline is the middleware's cost on a request without a
// body (a pointer comparison) and on a POST of 1 KiB (one allocation, the
// deadline set and cleared through the writer), against the bare handler.
func BenchmarkBodyDeadline(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})
	guarded := BodyDeadline(BodyDeadlineOptions{Timeout: 20 * time.Second, MinRate: 500})(bare)
	f := &nopDeadlineWriter{}
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"guarded", guarded}} {
		b.Run("GET/"+h.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Body = http.NoBody
			b.ReportAllocs()
			for b.Loop() {
				h.h.ServeHTTP(f, r)
			}
		})
		b.Run("POST1K/"+h.name, func(b *testing.B) {
			body := strings.NewReader(strings.Repeat("x", 1024))
			rc := io.NopCloser(struct{ io.Reader }{body}) // read as a server's body is: no WriterTo
			r := httptest.NewRequest("POST", "/", body)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = body.Seek(0, io.SeekStart)
				r.Body = rc
				h.h.ServeHTTP(f, r)
			}
		})
	}
}

// nopDeadlineWriter accepts everything, deadlines included.
type nopDeadlineWriter struct{ h http.Header }

func (w *nopDeadlineWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *nopDeadlineWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w *nopDeadlineWriter) WriteHeader(int)                   {}
func (w *nopDeadlineWriter) SetReadDeadline(t time.Time) error { return nil }
