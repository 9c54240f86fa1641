package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

type accessCase struct {
	name   string
	ua     string
	path   string
	status int
	info   reqinfo.Info
}

var accessCases = []accessCase{
	{name: "anonymous", ua: "curl/8.5", path: "/v1/x", status: 200,
		info: reqinfo.Info{ID: "req_1", ClientIP: netip.MustParseAddr("192.0.2.1")}},
	{name: "authenticated", ua: "wrk", path: "/v1/data", status: 201,
		info: reqinfo.Info{ID: "req_2", ClientIP: netip.MustParseAddr("2001:db8::1"), Route: "/v1/",
			Principal: &authn.Principal{OrgID: "org_1", CredentialID: "key_1", Method: authn.MethodAPIKey}}},
	{name: "refused", ua: "ua \"quoted\" \\ back\tslash\n\x00\x1f\x7f", path: "/v1/é/€/𝄞", status: 429,
		info: reqinfo.Info{ID: "req_3", ClientIP: netip.MustParseAddr("198.51.100.7"), Route: "/v1/",
			ErrorCode: "RATE_LIMITED", Reason: "rate_limited"}},
	{name: "server error", ua: "bad utf-8 \xff\xfe and \u2028\u2029 <&>", path: "/x", status: 502,
		info: reqinfo.Info{ID: "req_4", ClientIP: netip.MustParseAddr("203.0.113.9"),
			ErrorCode: "BAD_GATEWAY", Err: errors.New("dial tcp: connection refused \"x\"")}},
	{name: "unset status", ua: "", path: "/", status: 0,
		info: reqinfo.Info{ID: "req_5", ClientIP: netip.MustParseAddr("127.0.0.1")}},
}

func (c accessCase) log(l AccessLogger, end time.Time) {
	r := httptest.NewRequest("GET", "http://gw.example"+"/placeholder?secret=hunter2", nil)
	r.URL.Path = c.path
	r.Header.Set("User-Agent", c.ua)
	rec := NewRecorder(httptest.NewRecorder())
	if c.status != 0 {
		rec.WriteHeader(c.status)
	}
	_, _ = rec.Write([]byte("hello"))
	info := c.info
	l.LogRequest(r, rec, &info, end, 1234567*time.Nanosecond)
}

func decodeLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	return m
}

// The fast JSON access log writes what slog's JSON handler writes: the same
// fields with the same values, the same level, and never the query.
func TestJSONAccessLogMatchesSlog(t *testing.T) {
	end := time.Date(2026, 11, 22, 9, 30, 14, 123456789, time.UTC)
	for _, c := range accessCases {
		t.Run(c.name, func(t *testing.T) {
			var fast, slow bytes.Buffer
			c.log(JSONAccessLog(&fast, slog.LevelInfo), end)
			c.log(SlogAccessLog(slog.New(slog.NewJSONHandler(&slow, nil))), end)
			got, want := decodeLine(t, fast.Bytes()), decodeLine(t, slow.Bytes())
			if ts, _ := got["time"].(string); ts != "2026-11-22T09:30:14.123Z" {
				t.Errorf("time %q", ts)
			}
			delete(got, "time")
			delete(want, "time")
			if !maps.EqualFunc(got, want, func(a, b any) bool { return a == b }) {
				t.Errorf("fast %s\nslog %s", fast.Bytes(), slow.Bytes())
			}
			if bytes.Contains(fast.Bytes(), []byte("hunter2")) {
				t.Error("the query string was logged")
			}
		})
	}
}

func TestJSONAccessLogLevel(t *testing.T) {
	var buf bytes.Buffer
	l := JSONAccessLog(&buf, slog.LevelWarn)
	accessCases[0].log(l, time.Now()) // 200: INFO, dropped
	if buf.Len() != 0 {
		t.Fatalf("an INFO line at level WARN: %s", buf.Bytes())
	}
	accessCases[3].log(l, time.Now()) // 502: ERROR, kept
	if m := decodeLine(t, buf.Bytes()); m["level"] != "ERROR" || m["status"] != float64(502) {
		t.Errorf("line %v", m)
	}
}

func benchmarkAccessLog(b *testing.B, l AccessLogger) {
	c := accessCases[1]
	r := httptest.NewRequest("GET", "/v1/data", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) bench/1.0")
	rec := NewRecorder(httptest.NewRecorder())
	rec.WriteHeader(200)
	end := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.LogRequest(r, rec, &c.info, end, time.Millisecond)
	}
}

// One access-log line through slog's JSON handler, the former path…
func BenchmarkAccessLogSlogJSON(b *testing.B) {
	benchmarkAccessLog(b, SlogAccessLog(slog.New(slog.NewJSONHandler(io.Discard, nil))))
}

// …and through JSONAccessLog.
func BenchmarkAccessLogJSON(b *testing.B) {
	benchmarkAccessLog(b, JSONAccessLog(io.Discard, slog.LevelInfo))
}
