package postgres

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/internal/jsontext"
	"github.com/tollgate/tollgate/internal/store"
)

// The request log is stored in chunks: one request_chunks row per recorded
// batch and organization, whose events column is a JSON array of chunkEvent
// objects. Writing a chunk costs one row however many events it holds;
// reading decodes the chunks whose time range can hold what is asked for.

// chunkEvent is one event of a chunk. The organization is the chunk's. Keys
// are short, and zero values are left out, because a chunk holds up to a
// batch's thousand events. Strings are stored as valid UTF-8: each byte of
// invalid UTF-8 reads back as U+FFFD.
type chunkEvent struct {
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

// newChunkEvent returns e as a chunk stores it, at the time at (unix
// microseconds).
func newChunkEvent(e *store.UsageEvent, at int64) chunkEvent {
	c := chunkEvent{
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

// event returns c as a usage event of the organization orgID.
func (c *chunkEvent) event(orgID string) store.UsageEvent {
	return store.UsageEvent{
		ID: c.ID, Time: time.UnixMicro(c.Time).UTC(), OrgID: orgID, AppID: c.AppID,
		CredentialID: c.CredentialID, AuthMethod: c.AuthMethod, Method: c.Method,
		Route: c.Route, Path: c.Path, Status: c.Status, ErrorCode: c.ErrorCode,
		Latency: time.Duration(c.Latency) * time.Microsecond, RequestBytes: c.RequestBytes,
		ResponseBytes: c.ResponseBytes, Units: c.Units, ClientIP: c.ClientIP,
		UserAgent: c.UserAgent, WebSocket: c.WebSocket != 0,
	}
}

// chunkWriter builds the JSON array of one chunk, and tracks its time range
// and size.
type chunkWriter struct {
	buf              []byte
	minTime, maxTime int64
	entries          int
}

// add appends c to the chunk.
func (w *chunkWriter) add(c *chunkEvent) {
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

// text returns the chunk's JSON array; the chunk must not be empty.
func (w *chunkWriter) text() string { return string(append(w.buf, ']')) }

// appendChunkEvent appends c as a JSON object with the keys and omissions of
// chunkEvent's field tags, without reflection: this runs for every request
// the gateway records.
func appendChunkEvent(b []byte, c *chunkEvent) []byte {
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

// decodeChunk decodes a chunk's JSON array into dst, reusing its storage.
// Every event must have an ID.
func decodeChunk(data []byte, dst []chunkEvent) ([]chunkEvent, error) {
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
