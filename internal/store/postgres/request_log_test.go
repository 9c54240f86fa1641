package postgres

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzChunkEvent: whatever an event holds, appendChunkEvent writes JSON that
// decodeChunk (encoding/json, through chunkEvent's tags) reads back as the
// same event, strings made valid UTF-8 as documented; and decodeChunk never
// panics on what it is given.
func FuzzChunkEvent(f *testing.F) {
	f.Add("req_1", int64(1735689600000000), "app_1", "/v1/x", "curl/8.5.0", 200, int64(1500), int64(1)<<41, true)
	f.Add("req_\"2\"", int64(-1), "", "/v1/\u00e9\u2028\\", "\x00\xff", 0, int64(0), int64(-5), false)
	f.Fuzz(func(t *testing.T, id string, at int64, app, path, ua string, status int, latency, n int64, ws bool) {
		if id == "" {
			id = "req"
		}
		in := chunkEvent{ID: id, Time: at, AppID: app, CredentialID: app + "k", AuthMethod: "apikey", Method: "GET",
			Route: path, Path: path, Status: status, ErrorCode: ua, Latency: latency, RequestBytes: n,
			ResponseBytes: -n, Units: n / 3, ClientIP: ua, UserAgent: ua}
		if ws {
			in.WebSocket = 1
		}
		var w chunkWriter
		w.add(&in)
		w.add(&in)
		text := w.text()
		if !json.Valid([]byte(text)) {
			t.Fatalf("invalid JSON %q", text)
		}
		got, err := decodeChunk([]byte(text), []chunkEvent{{Route: "left over", Units: 9}})
		if err != nil {
			t.Fatal(err)
		}
		want := in
		for _, s := range []*string{&want.ID, &want.AppID, &want.CredentialID, &want.Route, &want.Path, &want.ErrorCode, &want.ClientIP, &want.UserAgent} {
			*s = validUTF8(*s)
		}
		if len(got) != 2 || got[0] != want || got[1] != want {
			t.Fatalf("decoded %+v, want twice %+v", got, want)
		}
		if w.minTime != at || w.maxTime != at || w.entries != 2 {
			t.Errorf("chunk range %d..%d of %d entries, want %d..%d of 2", w.minTime, w.maxTime, w.entries, at, at)
		}
		_, _ = decodeChunk([]byte(path), nil)
	})
}

// validUTF8 replaces each byte of invalid UTF-8 in s with U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
