package sqlstore

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzChunkEvent: whatever an event holds, appendChunkEvent writes JSON that
// DecodeChunk (encoding/json, through ChunkEvent's tags) reads back as the
// same event, strings made valid UTF-8 as documented; and DecodeChunk never
// panics on what it is given. Both backends store chunks with this codec.
func FuzzChunkEvent(f *testing.F) {
	f.Add("req_1", int64(1735689600000000), "app_1", "/v1/x", "curl/8.5.0", 200, int64(1500), int64(1)<<41, true)
	f.Add("req_\"2\"", int64(-1), "", "/v1/\u00e9\u2028\\", "\x00\xff", 0, int64(0), int64(-5), false)
	f.Fuzz(func(t *testing.T, id string, at int64, app, path, ua string, status int, latency, n int64, ws bool) {
		if id == "" {
			id = "req"
		}
		in := ChunkEvent{ID: id, Time: at, AppID: app, CredentialID: app + "k", AuthMethod: "apikey", Method: "GET",
			Route: path, Path: path, Status: status, ErrorCode: ua, Latency: latency, RequestBytes: n,
			ResponseBytes: -n, Units: n / 3, ClientIP: ua, UserAgent: ua}
		if ws {
			in.WebSocket = 1
		}
		var w ChunkWriter
		w.Add(&in)
		w.Add(&in)
		text := w.Text()
		if !json.Valid([]byte(text)) {
			t.Fatalf("invalid JSON %q", text)
		}
		got, err := DecodeChunk([]byte(text), []ChunkEvent{{Route: "left over", Units: 9}})
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
		if w.MinTime() != at || w.MaxTime() != at || w.Entries() != 2 {
			t.Errorf("chunk range %d..%d of %d entries, want %d..%d of 2", w.MinTime(), w.MaxTime(), w.Entries(), at, at)
		}
		_, _ = DecodeChunk([]byte(path), nil)
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

// TestCutChunks: a cut keeps the events at or after the horizon, in their
// order, with the chunk's range and size recomputed, and refuses to leave a
// chunk empty.
func TestCutChunks(t *testing.T) {
	var w ChunkWriter
	for _, at := range []int64{30, 10, 20, 40} {
		w.Add(&ChunkEvent{ID: "req", Time: at})
	}
	chunks := []ChunkRow{{ID: 7, Events: []byte(w.Text())}, {ID: 8, Events: []byte(`[{"i":"x","t":25}]`)}}
	rewritten := map[int64]string{}
	removed, err := CutChunks(chunks, 20, func(id int64, kept *ChunkWriter) error {
		if id == 7 && (kept.MinTime() != 20 || kept.MaxTime() != 40 || kept.Entries() != 3) {
			t.Errorf("chunk 7 cut at 20: %d..%d of %d, want 20..40 of 3", kept.MinTime(), kept.MaxTime(), kept.Entries())
		}
		rewritten[id] = kept.Text()
		return nil
	})
	if err != nil || removed != 1 {
		t.Fatalf("cut at 20: removed %d, %v; want 1", removed, err)
	}
	if want := `[{"i":"req","t":30},{"i":"req","t":20},{"i":"req","t":40}]`; rewritten[7] != want {
		t.Errorf("chunk 7 kept %s, want %s", rewritten[7], want)
	}
	if want := `[{"i":"x","t":25}]`; rewritten[8] != want {
		t.Errorf("chunk 8 kept %s, want %s", rewritten[8], want)
	}
	keep := func(int64, *ChunkWriter) error { return nil }
	if _, err := CutChunks(chunks, 50, keep); err == nil || !strings.Contains(err.Error(), "chunk 7") {
		t.Errorf("cut of every event: %v, want an error naming chunk 7", err)
	}
	if _, err := CutChunks([]ChunkRow{{ID: 9, Events: []byte(`[{"t":1}]`)}}, 0, keep); err == nil {
		t.Error("cut of a chunk with an event without ID succeeded")
	}
}
