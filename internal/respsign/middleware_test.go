package respsign

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tollgate/tollgate/internal/clock"
)

// signedServer serves h behind a Middleware with the given MaxBody.
func signedServer(t *testing.T, k *Keyring, maxBody int64, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer((&Middleware{Keyring: k, MaxBody: maxBody}).Wrap(h))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	*http.Response
	body    []byte
	readErr error
}

// fetch makes a request on a connection of its own and reads the response.
func fetch(t *testing.T, method, target string) response {
	t.Helper()
	r, err := tryFetch(method, target)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tryFetch(method, target string) (response, error) {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return response{}, err
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(resp.Body)
	return response{resp, body, readErr}, nil
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// checkSigned checks that r carries a valid signature of its body by the
// signing key of d, and an exact Content-Length.
func checkSigned(t *testing.T, d Document, r response) {
	t.Helper()
	if r.readErr != nil {
		t.Fatalf("reading the body: %v", r.readErr)
	}
	h := r.Header
	if len(h.Values(HeaderSignature)) != 1 || len(h.Values(HeaderKeyID)) != 1 || h.Get(HeaderStatus) != "" {
		t.Fatalf("signature headers: %v", h)
	}
	mustVerify(t, d, r.body, h.Get(HeaderKeyID), h.Get(HeaderSignature))
	if h.Get(HeaderKeyID) != d.CurrentKeyID {
		t.Fatalf("signed with %s, not %s", h.Get(HeaderKeyID), d.CurrentKeyID)
	}
	framed := r.Request.Method != http.MethodHead && r.StatusCode != http.StatusNoContent &&
		r.StatusCode != http.StatusNotModified && len(r.Trailer) == 0 // trailers: chunked
	if framed && r.ContentLength != int64(len(r.body)) {
		t.Fatalf("Content-Length %d, body %d bytes", r.ContentLength, len(r.body))
	}
}

func checkUnsigned(t *testing.T, r response, reason string) {
	t.Helper()
	h := r.Header
	want := `unsigned; reason="` + reason + `"`
	if got := h.Values(HeaderStatus); len(got) != 1 || got[0] != want || h.Get(HeaderSignature) != "" || h.Get(HeaderKeyID) != "" {
		t.Fatalf("headers %v; want %s: %s and no signature", h, HeaderStatus, want)
	}
}

func bodyOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26 + i/26%3)
	}
	return b
}

func TestMiddleware(t *testing.T) {
	k, _, _ := sqliteRing(t)
	d := document(t, k)
	const limit = 1000
	big := bodyOf(3 * limit)

	type tc struct {
		name    string
		method  string
		handler http.HandlerFunc
		check   func(t *testing.T, r response)
	}
	for _, c := range []tc{{
		name: "small body",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":"Example payload"}`)
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if string(r.body) != `{"data":"Example payload"}` || r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %q", r.StatusCode, r.body)
			}
		},
	}, {
		name:    "no body at all",
		handler: func(http.ResponseWriter, *http.Request) {},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.StatusCode != 200 || len(r.body) != 0 || r.Header.Get("Content-Length") != "0" {
				t.Fatalf("%d %v", r.StatusCode, r.Header)
			}
		},
	}, {
		name: "exactly the limit, in pieces",
		handler: func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < limit; i += 100 {
				_, _ = w.Write(big[i : i+100])
			}
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if !bytes.Equal(r.body, big[:limit]) {
				t.Fatal("body altered")
			}
		},
	}, {
		name: "declared length within the limit",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			_, _ = w.Write(big[:500])
		},
		check: func(t *testing.T, r response) { checkSigned(t, d, r) },
	}, {
		name: "error statuses are signed",
		handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such thing", http.StatusNotFound)
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.StatusCode != 404 || string(r.body) != "no such thing\n" {
				t.Fatalf("%d %q", r.StatusCode, r.body)
			}
		},
	}, {
		name: "500",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			w.WriteHeader(http.StatusOK) // superfluous, ignored
			_, _ = w.Write([]byte(`{"error":{}}`))
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.StatusCode != 500 {
				t.Fatalf("status %d", r.StatusCode)
			}
		},
	}, {
		name: "declared length above the limit",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonTooLarge)
			if !bytes.Equal(r.body, big) || r.ContentLength != int64(len(big)) || r.readErr != nil {
				t.Fatalf("body of %d bytes (%v), Content-Length %d", len(r.body), r.readErr, r.ContentLength)
			}
		},
	}, {
		name: "growing beyond the limit",
		handler: func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(big); i += 300 {
				if _, err := w.Write(big[i : i+300]); err != nil {
					t.Error(err)
				}
			}
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonTooLarge)
			if !bytes.Equal(r.body, big) || r.readErr != nil {
				t.Fatalf("body of %d bytes (%v)", len(r.body), r.readErr)
			}
		},
	}, {
		name: "one write beyond the limit",
		handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(big[:limit+1])
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonTooLarge)
			if !bytes.Equal(r.body, big[:limit+1]) {
				t.Fatal("body altered")
			}
		},
	}, {
		name: "flush of a JSON body: deferred, signed whole",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("part 1;"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			_, _ = w.Write([]byte("part 2"))
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if string(r.body) != "part 1;part 2" {
				t.Fatalf("body %q", r.body)
			}
		},
	}, {
		name: "flush of an NDJSON stream",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson; charset=utf-8")
			_, _ = w.Write([]byte("{}\n"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			_, _ = w.Write([]byte("{}\n"))
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonStreamed)
			if string(r.body) != "{}\n{}\n" {
				t.Fatalf("body %q", r.body)
			}
		},
	}, {
		name: "flush through http.Flusher before writing",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			_, _ = w.Write([]byte("data: 1\n\n"))
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonStreamed)
			if string(r.body) != "data: 1\n\n" || r.StatusCode != 200 {
				t.Fatalf("%d %q", r.StatusCode, r.body)
			}
		},
	}, {
		name:   "HEAD",
		method: http.MethodHead,
		handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write(big[:100]) // discarded, as net/http does
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if len(r.body) != 0 || r.ContentLength != 100 {
				t.Fatalf("body %q, Content-Length %d", r.body, r.ContentLength)
			}
		},
	}, {
		name:   "HEAD of a large declared body",
		method: http.MethodHead,
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10000000")
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.ContentLength != 10000000 {
				t.Fatalf("Content-Length %d", r.ContentLength)
			}
		},
	}, {
		name: "204",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("write to a 204: %v", err)
			}
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.StatusCode != 204 || len(r.Header.Values("Content-Length")) != 0 {
				t.Fatalf("%d %v", r.StatusCode, r.Header)
			}
		},
	}, {
		name: "304",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.StatusCode != 304 || len(r.body) != 0 {
				t.Fatalf("%d %q", r.StatusCode, r.body)
			}
		},
	}, {
		name: "forged signature headers",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderSignature, "forged")
			w.Header().Set(HeaderKeyID, "sig_evil")
			w.Header().Set(HeaderStatus, "signed")
			_, _ = w.Write([]byte("hi"))
		},
		check: func(t *testing.T, r response) { checkSigned(t, d, r) },
	}, {
		name: "forged signature headers on a large body",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(HeaderSignature, "forged")
			w.Header().Set(HeaderKeyID, "sig_evil")
			_, _ = w.Write(big)
		},
		check: func(t *testing.T, r response) { checkUnsigned(t, r, ReasonTooLarge) },
	}, {
		name: "declared trailers",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Checksum")
			_, _ = w.Write([]byte("body"))
			w.Header().Set("X-Checksum", "abc")
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonTrailers)
			if string(r.body) != "body" || r.Trailer.Get("X-Checksum") != "abc" || r.Header.Get("X-Checksum") != "" {
				t.Fatalf("body %q, header %v, trailer %v", r.body, r.Header, r.Trailer)
			}
		},
	}, {
		name: "undeclared trailers",
		handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("body"))
			w.Header().Set(http.TrailerPrefix+"X-Checksum", "abc")
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if r.Trailer.Get("X-Checksum") != "abc" {
				t.Fatalf("trailer %v", r.Trailer)
			}
		},
	}, {
		name: "writes beyond the declared length fail",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			if _, err := w.Write([]byte("abcd")); !errors.Is(err, http.ErrContentLength) {
				t.Errorf("write beyond Content-Length: %v", err)
			}
			_, _ = w.Write([]byte("abc"))
		},
		check: func(t *testing.T, r response) {
			checkSigned(t, d, r)
			if string(r.body) != "abc" {
				t.Fatalf("body %q", r.body)
			}
		},
	}, {
		name: "short of the declared length",
		handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			_, _ = w.Write([]byte("abcde"))
		},
		check: func(t *testing.T, r response) {
			checkUnsigned(t, r, ReasonLengthMismatch)
			if r.readErr == nil {
				t.Fatalf("a short body read without error: %q", r.body)
			}
		},
	}, {
		name: "response controller",
		handler: func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			}
			if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Error(err)
			}
			if err := rc.EnableFullDuplex(); err != nil {
				t.Error(err)
			}
			_, _ = w.Write([]byte("ok"))
		},
		check: func(t *testing.T, r response) { checkSigned(t, d, r) },
	}} {
		t.Run(c.name, func(t *testing.T) {
			srv := signedServer(t, k, limit, c.handler)
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			c.check(t, fetch(t, method, srv.URL+"/x"))
		})
	}
}

func TestMiddlewareDefaultLimit(t *testing.T) {
	k, _, _ := sqliteRing(t)
	d := document(t, k)
	big := bodyOf(DefaultMaxBody + 1)
	srv := signedServer(t, k, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = w.Write(big[:n])
	}))
	checkSigned(t, d, fetch(t, "GET", srv.URL+"/?n="+strconv.Itoa(DefaultMaxBody)))
	r := fetch(t, "GET", srv.URL+"/?n="+strconv.Itoa(DefaultMaxBody+1))
	checkUnsigned(t, r, ReasonTooLarge)
	if !bytes.Equal(r.body, big) {
		t.Fatal("body altered")
	}
}

// An event stream reaches the client while the handler is still writing.
func TestMiddlewareStreams(t *testing.T) {
	k, _, _ := sqliteRing(t)
	release := make(chan struct{})
	srv := signedServer(t, k, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "data: 2\n\n")
	}))
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	checkUnsigned(t, response{Response: resp}, ReasonStreamed)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("rest: %q %v", rest, err)
	}
}

// A handler that panics, such as httputil.ReverseProxy when the upstream
// fails mid-body, has nothing sent: above all not a truncated body, signed.
func TestMiddlewareAbort(t *testing.T) {
	k, _, _ := sqliteRing(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("only ten b"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cuts the connection
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = discardLog()
	srv := signedServer(t, k, 0, proxy)
	direct := signedServer(t, k, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("partial"))
		panic(http.ErrAbortHandler)
	}))
	for _, target := range []string{srv.URL, direct.URL} {
		resp, err := http.Get(target)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("%d %v %q: a response was sent", resp.StatusCode, resp.Header, b)
		}
	}
}

// Behind httputil.ReverseProxy: an upstream response is signed whether it
// has a Content-Length or is chunked (relayed with a flush after each
// write); an event stream goes through unsigned, as it is written.
func TestMiddlewareReverseProxy(t *testing.T) {
	k, _, _ := sqliteRing(t)
	d := document(t, k)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderSignature, "from upstream")
		if r.URL.Query().Has("chunked") {
			_, _ = w.Write([]byte("chunk 1;"))
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)
	srv := signedServer(t, k, 0, httputil.NewSingleHostReverseProxy(u))

	r := fetch(t, "GET", srv.URL+"/")
	checkSigned(t, d, r)
	if string(r.body) != `{"ok":true}` {
		t.Fatalf("body %q", r.body)
	}
	r = fetch(t, "GET", srv.URL+"/?chunked")
	checkSigned(t, d, r)
	if string(r.body) != `chunk 1;{"ok":true}` {
		t.Fatalf("body %q", r.body)
	}
}

// WebSockets are hijacked, directly or through httputil.ReverseProxy, and
// the 101 says the exchange is unsigned.
func TestMiddlewareWebSocket(t *testing.T) {
	k, _, _ := sqliteRing(t)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	upstream := httptest.NewServer(echo)
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL)

	for name, h := range map[string]http.Handler{
		"direct":        echo,
		"reverse proxy": httputil.NewSingleHostReverseProxy(u),
	} {
		t.Run(name, func(t *testing.T) {
			srv := signedServer(t, k, 0, h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			checkUnsigned(t, response{Response: resp}, ReasonUpgrade)
			if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			_, msg, err := c.Read(ctx)
			if err != nil || string(msg) != "echo: hi" {
				t.Fatalf("read %q %v", msg, err)
			}
		})
	}
}

// Informational responses go out at once; the final one is signed.
func TestMiddlewareEarlyHints(t *testing.T) {
	k, _, _ := sqliteRing(t)
	d := document(t, k)
	srv := signedServer(t, k, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = w.Write([]byte("final"))
	}))
	var hints []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		hints = append(hints, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	checkSigned(t, d, response{resp, body, err})
	if len(hints) != 1 || hints[0] != http.StatusEarlyHints || resp.StatusCode != 200 {
		t.Fatalf("hints %v, status %d", hints, resp.StatusCode)
	}
}

func TestMiddlewareNoKey(t *testing.T) {
	ctx := context.Background()
	k, st, clk := sqliteRing(t)
	if err := st.RetireSigningKey(ctx, k.ActiveKeyID(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	srv := signedServer(t, k, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello"))
	}))
	r := fetch(t, "GET", srv.URL)
	checkUnsigned(t, r, ReasonNoKey)
	if string(r.body) != "hello" {
		t.Fatalf("body %q", r.body)
	}
}

func TestMiddlewareWithoutKeyringPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	(&Middleware{}).Wrap(http.NotFoundHandler())
}

// Many clients, while the keys rotate: every response verifies with the
// key it names, and pooled buffers never mix bodies.
func TestMiddlewareConcurrent(t *testing.T) {
	ctx := context.Background()
	k, _, clk := sqliteRing(t)
	const limit = 5000
	srv := signedServer(t, k, limit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := range n {
			_, _ = fmt.Fprintf(w, "%s-%d;", r.URL.Query().Get("id"), i)
		}
	}))
	type result struct {
		resp response
		want []byte
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("g%di%d", g, i)
				n := (g*37 + i*101) % 700
				var want bytes.Buffer
				for j := range n {
					fmt.Fprintf(&want, "%s-%d;", id, j)
				}
				r, err := tryFetch("GET", fmt.Sprintf("%s/?id=%s&n=%d", srv.URL, id, n))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, result{r, want.Bytes()})
				mu.Unlock()
			}
		})
	}
	for range 3 {
		clk.Advance(time.Minute)
		if _, _, err := k.Rotate(ctx); err != nil {
			t.Error(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	d := document(t, k)
	signed := 0
	for _, r := range results {
		if !bytes.Equal(r.resp.body, r.want) {
			t.Fatalf("body %.60q..., want %.60q...", r.resp.body, r.want)
		}
		if len(r.want) > limit {
			checkUnsigned(t, r.resp, ReasonTooLarge)
			continue
		}
		mustVerify(t, d, r.resp.body, r.resp.Header.Get(HeaderKeyID), r.resp.Header.Get(HeaderSignature))
		signed++
	}
	if signed == 0 || signed == len(results) {
		t.Fatalf("%d of %d signed", signed, len(results))
	}
}

// discardWriter is a ResponseWriter that costs nothing, for benchmarks.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkMiddleware compares a handler answering 1 KiB bare and signed.
func BenchmarkMiddleware(b *testing.B) {
	k, _ := plantedRing(b, clock.NewFake(t0), planted("sig_bench", fixedKey("bench"), t0, time.Time{}))
	body := bodyOf(1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	req := httptest.NewRequest("GET", "/", nil)
	for name, handler := range map[string]http.Handler{
		"bare":   h,
		"signed": (&Middleware{Keyring: k}).Wrap(h),
	} {
		b.Run(name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.n = 0
				handler.ServeHTTP(w, req)
			}
			if w.n != len(body) {
				b.Fatalf("wrote %d bytes", w.n)
			}
		})
	}
}
