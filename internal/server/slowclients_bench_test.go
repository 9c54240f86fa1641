package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/connguard"
	"github.com/tollgate/tollgate/internal/httpx"
)

// BenchmarkSlowClientGuards measures what the guards against slow clients
// cost a request over a real loopback connection (keep-alive, one client):
// the connection guard (per-address count, send timeout) and BodyDeadline.
// Each iteration sends one request to a server without them and one to a
// server with them, so that both see the same load of the machine; the
// ratio guarded/unguarded is reported. The handler does nothing, so the
// ratio bounds the cost in the gateway from above.
func BenchmarkSlowClientGuards(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
	start := func(guarded bool) (string, func()) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var h http.Handler = handler
		if guarded {
			h = httpx.BodyDeadline(httpx.BodyDeadlineOptions{Timeout: 20 * time.Second, MinRate: 500})(h)
			ln = connguard.New(connguard.Options{MaxPerAddr: 256, SendTimeout: time.Minute}).Listen(ln)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		return "http://" + ln.Addr().String() + "/", func() { _ = srv.Close() }
	}
	plainURL, stopPlain := start(false)
	defer stopPlain()
	guardedURL, stopGuarded := start(true)
	defer stopGuarded()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	body := strings.Repeat("x", 1024)
	send := func(b *testing.B, method, url string) time.Duration {
		var rd io.Reader
		if method == "POST" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, url, rd)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(t0)
	}
	for _, method := range []string{"GET", "POST"} {
		b.Run(method, func(b *testing.B) {
			var plain, guarded time.Duration
			n := 0
			for b.Loop() {
				if n%2 == 0 { // alternate which goes first
					plain += send(b, method, plainURL)
					guarded += send(b, method, guardedURL)
				} else {
					guarded += send(b, method, guardedURL)
					plain += send(b, method, plainURL)
				}
				n++
			}
			b.ReportMetric(float64(plain.Nanoseconds())/float64(n), "unguarded-ns/req")
			b.ReportMetric(float64(guarded.Nanoseconds())/float64(n), "guarded-ns/req")
			b.ReportMetric(float64(guarded)/float64(plain), "ratio")
		})
	}
}
