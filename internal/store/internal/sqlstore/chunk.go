package sqlstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/jsontext"
	"github.com/tollgate/tollgate/internal/store"
)

// The request log is stored in chunks: one request_chunks row per recorded
// batch and organization, whose events column is a JSON array of ChunkEvent
// objects. Writing a chunk costs one row however many events it holds;
// reading decodes the chunks whose time range can hold what is asked for.

// ChunkEvent is one event of a chunk. The organization is the chunk's. Keys
// are short, and zero values are left out, because a chunk holds up to a
// batch's thousand events. Strings are stored as valid UTF-8: each byte of
// invalid UTF-8 reads back as U+FFFD.
type ChunkEvent struct {
	ID            string `json:"i"`
	Time          int64  `json:"t"` // unix microseconds
	AppID         string `json:"a,omitempty"`
	CredentialID  string `json:"c,omitempty"`
	AuthMethod    string `json:"m,omitempty"`
	Method        string `json:"v,omitempty"`
	Route         string `json:"r,omitempty"`
	Path          string `json:"p,omitempty"`
	Status        int    `json:"s,omitempty"`
	ErrorCode     string `json:"e,omitempty"`
	Latency       int64  `json:"l,omitempty"` // microseconds
	RequestBytes  int64  `json:"q,omitempty"`
	ResponseBytes int64  `json:"b,omitempty"`
	Units         int64  `json:"u,omitempty"`
	ClientIP      string `json:"ip,omitempty"`
	UserAgent     string `json:"ua,omitempty"`
	WebSocket     int    `json:"w,omitempty"` // 1 for a WebSocket session
}

// NewChunkEvent returns e as a chunk stores it, at the time at (unix
// microseconds).
func NewChunkEvent(e *store.UsageEvent, at int64) ChunkEvent {
	c := ChunkEvent{
		ID: e.ID, Time: at, AppID: e.AppID, CredentialID: e.CredentialID,
		AuthMethod: e.AuthMethod, Method: e.Method, Route: e.Route, Path: e.Path,
		Status: e.Status, ErrorCode: e.ErrorCode, Latency: e.Latency.Microseconds(),
		RequestBytes: e.RequestBytes, ResponseBytes: e.ResponseBytes, Units: e.Units,
		ClientIP: e.ClientIP, UserAgent: e.UserAgent,
	}
	if e.WebSocket {
		c.WebSocket = 1
	}
	return c
}

// Event returns c as a usage event of the organization orgID.
func (c *ChunkEvent) Event(orgID string) store.UsageEvent {
	return store.UsageEvent{
		ID: c.ID, Time: time.UnixMicro(c.Time).UTC(), OrgID: orgID, AppID: c.AppID,
		CredentialID: c.CredentialID, AuthMethod: c.AuthMethod, Method: c.Method,
		Route: c.Route, Path: c.Path, Status: c.Status, ErrorCode: c.ErrorCode,
		Latency: time.Duration(c.Latency) * time.Microsecond, RequestBytes: c.RequestBytes,
		ResponseBytes: c.ResponseBytes, Units: c.Units, ClientIP: c.ClientIP,
		UserAgent: c.UserAgent, WebSocket: c.WebSocket != 0,
	}
}

// ChunkWriter builds the JSON array of one chunk, and tracks its time range
// and size: the min_time, max_time and entries columns of its row. The zero
// value is an empty chunk.
type ChunkWriter struct {
	buf              []byte
	minTime, maxTime int64
	entries          int
}

// newChunkWriter returns an empty chunk whose buffer has room for size
// bytes.
func newChunkWriter(size int) *ChunkWriter {
	return &ChunkWriter{buf: make([]byte, 0, size)}
}

// Add appends c to the chunk.
func (w *ChunkWriter) Add(c *ChunkEvent) {
	if w.entries == 0 {
		w.buf = append(w.buf[:0], '[')
		w.minTime, w.maxTime = c.Time, c.Time
	} else {
		w.buf = append(w.buf, ',')
		w.minTime, w.maxTime = min(w.minTime, c.Time), max(w.maxTime, c.Time)
	}
	w.entries++
	w.buf = appendChunkEvent(w.buf, c)
}

// Text returns the chunk's JSON array; the chunk must not be empty.
func (w *ChunkWriter) Text() string { return string(append(w.buf, ']')) }

// MinTime returns the time of the chunk's oldest event (unix microseconds).
func (w *ChunkWriter) MinTime() int64 { return w.minTime }

// MaxTime returns the time of the chunk's newest event (unix microseconds).
func (w *ChunkWriter) MaxTime() int64 { return w.maxTime }

// Entries returns how many events the chunk holds.
func (w *ChunkWriter) Entries() int { return w.entries }

// appendChunkEvent appends c as a JSON object with the keys and omissions of
// ChunkEvent's field tags, without reflection: this runs for every request
// the gateway records.
func appendChunkEvent(b []byte, c *ChunkEvent) []byte {
	b = append(b, `{"i":`...)
	b = jsontext.AppendString(b, c.ID)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, c.Time, 10)
	b = appendChunkString(b, "a", c.AppID)
	b = appendChunkString(b, "c", c.CredentialID)
	b = appendChunkString(b, "m", c.AuthMethod)
	b = appendChunkString(b, "v", c.Method)
	b = appendChunkString(b, "r", c.Route)
	b = appendChunkString(b, "p", c.Path)
	b = appendChunkInt(b, "s", int64(c.Status))
	b = appendChunkString(b, "e", c.ErrorCode)
	b = appendChunkInt(b, "l", c.Latency)
	b = appendChunkInt(b, "q", c.RequestBytes)
	b = appendChunkInt(b, "b", c.ResponseBytes)
	b = appendChunkInt(b, "u", c.Units)
	b = appendChunkString(b, "ip", c.ClientIP)
	b = appendChunkString(b, "ua", c.UserAgent)
	b = appendChunkInt(b, "w", int64(c.WebSocket))
	return append(b, '}')
}

// appendChunkString appends ,"key":"value" unless value is empty; key needs
// no escaping.
func appendChunkString(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return jsontext.AppendString(b, value)
}

// appendChunkInt appends ,"key":value unless value is 0.
func appendChunkInt(b []byte, key string, value int64) []byte {
	if value == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, value, 10)
}

// DecodeChunk decodes a chunk's JSON array into dst, reusing its storage.
// Every event must have an ID.
func DecodeChunk(data []byte, dst []ChunkEvent) ([]ChunkEvent, error) {
	// encoding/json decodes into the elements already there without
	// zeroing them first, and a chunk leaves zero values out.
	clear(dst[:cap(dst)])
	dst = dst[:0]
	if err := json.Unmarshal(data, &dst); err != nil {
		return nil, fmt.Errorf("request-log chunk: %w", err)
	}
	for i := range dst {
		if dst[i].ID == "" {
			return nil, fmt.Errorf("request-log chunk: event %d has no ID", i)
		}
	}
	return dst, nil
}

// ChunkRow is the ID and the events column of a request_chunks row.
type ChunkRow struct {
	ID     int64
	Events []byte
}

// ScanChunkRow reads a row of the columns id and events of request_chunks.
func ScanChunkRow(r RowScanner) (ChunkRow, error) {
	var c ChunkRow
	err := r.Scan(&c.ID, &c.Events)
	return c, err
}

// CutChunks cuts the events before horizon (unix microseconds) out of the
// chunks a purge keeps, those that began before it and end at or after it,
// and returns how many events it cut. rewrite writes each chunk back, as
// what is left of it. A chunk with nothing left is an error: the purge
// deletes the chunks that end before the horizon rather than cutting them.
func CutChunks(chunks []ChunkRow, horizon int64, rewrite func(id int64, w *ChunkWriter) error) (int64, error) {
	var removed int64
	var decoded []ChunkEvent
	for _, c := range chunks {
		var err error
		if decoded, err = DecodeChunk(c.Events, decoded); err != nil {
			return 0, err
		}
		var w ChunkWriter
		for i := range decoded {
			if decoded[i].Time >= horizon {
				w.Add(&decoded[i])
			} else {
				removed++
			}
		}
		if w.entries == 0 { // cannot happen: the chunk ends after horizon
			return 0, fmt.Errorf("chunk %d: nothing left after cutting", c.ID)
		}
		if err := rewrite(c.ID, &w); err != nil {
			return 0, err
		}
	}
	return removed, nil
}
