package server

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// upgradingBackend accepts every upgrade it is asked for: a 101 (with the
// WebSocket handshake's Sec-WebSocket-Accept when the request has a key),
// then the connection is the client's, whatever it was upgraded to. Other
// requests get the recorder's JSON.
func upgradingBackend(w http.ResponseWriter, r *http.Request) {
	if up := r.Header.Get("Upgrade"); up != "" {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		accept := ""
		if key := r.Header.Get("Sec-WebSocket-Key"); key != "" {
			sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) //nolint:gosec // G401: RFC 6455
			accept = "Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + up + "\r\n" + accept + "\r\nupgraded to " + up)
		_ = brw.Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// upgrade asks for an upgrade through addr and returns the status line and
// what follows the headers.
func upgrade(t *testing.T, addr, protocols string, extra ...string) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET /v1/hello HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: " + protocols +
		"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		strings.Join(extra, "") + "\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		rest := make([]byte, 64)
		n, _ := br.Read(rest)
		return res.Status, string(rest[:n])
	}
	body := make([]byte, 256)
	n, _ := res.Body.Read(body)
	return res.Status, string(body[:n])
}

// regressUpgrades: only the configured upgrades (websocket) reach the
// backend; an h2c upgrade, or a list naming another protocol, is forwarded
// as a plain request, so the backend's 101 never hands the client a
// connection whose later requests Tollgate would not see.
func regressUpgrades(t *testing.T, f *fixture) {
	t.Run("gateway", func(t *testing.T) { regressUpgradesAt(t, f, f.addrs["gateway"], f.key) })
	t.Run("gateway-role", func(t *testing.T) { regressUpgradesAt(t, f, f.addrs["gateway-role"], f.authKeys[f.key]) })
}

func regressUpgradesAt(t *testing.T, f *fixture, gw, key string) {
	keyHeader := "X-API-KEY: " + key + "\r\n"
	for _, c := range []struct {
		protocols string
		upgraded  bool
	}{
		{"h2c", false}, {"H2C", false}, {"websocket, h2c", false}, {"h2c, websocket", false}, {"foo/1", false},
		{"websocket", true}, {"WebSocket", true},
	} {
		before := len(f.backend.all())
		status, rest := upgrade(t, gw, c.protocols, keyHeader)
		got := f.since(before)
		if c.upgraded {
			if !strings.HasPrefix(status, "101") || !strings.Contains(rest, "upgraded to "+c.protocols) {
				t.Errorf("Upgrade: %s: %s %q, want the upgrade", c.protocols, status, rest)
			}
			continue
		}
		if strings.HasPrefix(status, "101") {
			t.Errorf("Upgrade: %s: the client got %s %q", c.protocols, status, rest)
		}
		for _, r := range got {
			if r.Header.Get("Upgrade") != "" || r.Header.Get("Http2-Settings") != "" {
				t.Errorf("Upgrade: %s: the backend got Upgrade %q HTTP2-Settings %q", c.protocols, r.Header.Get("Upgrade"), r.Header.Get("Http2-Settings"))
			}
		}
	}
}
