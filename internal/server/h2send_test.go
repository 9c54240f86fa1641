package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2cClient is an HTTP/2 client over plain TCP (prior knowledge), as the
// public listener accepts with insecure_http.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
}

// An HTTP/2 client that never opens its flow-control window writes nothing
// to the connection, so the connection's send deadline never fires: each
// stream's writes have server.send_timeout of their own. Without, one such
// connection held 250 handlers and their upstreams' connections for good.
func TestHTTP2SlowReaderIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	big := bytes.Repeat([]byte("x"), 1<<20)
	release := make(chan struct{})
	be := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("idle") != "" {
			// Server-sent events: a write, an idle spell past the
			// timeout, another write.
			_, _ = w.Write([]byte("data: 1\n\n"))
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write([]byte("data: 2\n\n"))
			return
		}
		_, _ = w.Write(big)
	})
	n := start(t, withServer(baseYAML(t.TempDir(), be.URL), "send_timeout: 300ms"), nil)
	addr := n.srv.Addr()

	// The control: a client that reads gets it all, over HTTP/2.
	res, err := h2cClient().Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil || res.ProtoMajor != 2 || len(got) != len(big) {
		t.Fatalf("a reading client: HTTP/%d, %d bytes, %v", res.ProtoMajor, len(got), err)
	}

	// A stream idle between its writes is no slow reader.
	res, err = h2cClient().Get("http://" + addr + "/status?idle=1")
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 9)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * timeout) // not waiting for an event: letting the timeout pass
	close(release)
	rest, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil || string(first)+string(rest) != "data: 1\n\ndata: 2\n\n" {
		t.Fatalf("an idle stream: %q %q %v", first, rest, err)
	}

	// The slow reader: a window of 0, never opened.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerWithin))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/status"}, {":authority", addr}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("the stream of a client that does not read was not reset: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				waitMetric(t, n, `tollgate_send_timeouts_total{listener="public"}`, 1)
				return
			}
		}
	}
}
