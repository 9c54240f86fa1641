package server

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The ext_authz listener bounds the streams of a connection, and refuses a
// stream without the service token when it opens, before its message: a
// client sending half a gRPC message on each of thousands of streams of one
// connection held some 11 KB of the auth service's memory per stream.
func TestGRPCStreamsAreBounded(t *testing.T) {
	be := newRecorder(t, nil)
	n := start(t, authYAML(t, be.URL), nil)
	c, err := net.Dial("tcp", n.srv.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(answerWithin))
	if _, err := c.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", "/envoy.service.auth.v3.Authorization/Check"},
		{":authority", "tollgate"}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	// No token, and a message announced as 1000 bytes of which one is sent.
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, false, []byte{0, 0, 0, 3, 0xe8, 0x0a}); err != nil {
		t.Fatal(err)
	}
	var maxStreams uint32
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("stream 1, without the token, was not answered: %v (max concurrent streams %d)", err, maxStreams)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				maxStreams = v
			}
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 || !f.StreamEnded() {
				continue
			}
			if got := f.PseudoValue("status"); got != "" && got != "200" {
				t.Fatalf(":status %s", got)
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" && hf.Value != "16" { // UNAUTHENTICATED
					t.Fatalf("grpc-status %s, want 16", hf.Value)
				}
			}
			if maxStreams != maxGRPCStreams {
				t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS = %d, want %d", maxStreams, maxGRPCStreams)
			}
			return
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				t.Fatalf("stream 1 reset (%v), not answered UNAUTHENTICATED", f.ErrCode)
			}
		}
	}
}
