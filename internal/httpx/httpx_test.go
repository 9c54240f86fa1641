package httpx

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

func TestRequestIDsAreUnique(t *testing.T) {
	g := NewIDGenerator()
	seen := sync.Map{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				if _, dup := seen.LoadOrStore(g.Next(), true); dup {
					t.Error("duplicate request ID")
				}
			}
		}()
	}
	wg.Wait()
	if a, b := NewIDGenerator().Next(), NewIDGenerator().Next(); a == b {
		t.Error("two generators gave the same first ID")
	}
}

func TestRequestInfoAndRecover(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		if reqinfo.From(r.Context()).ClientIP != netip.MustParseAddr("192.0.2.9") {
			t.Error("client IP not attached")
		}
		w.WriteHeader(http.StatusTeapot)
	}),
		Recover(log),
		RequestInfo(NewIDGenerator(), func(*http.Request) netip.Addr { return netip.MustParseAddr("192.0.2.9") }, clock.System{}, SlogAccessLog(log)),
	)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x?secret=hunter2", nil))
	if w.Code != http.StatusTeapot || w.Header().Get("X-Request-Id") == "" {
		t.Fatalf("status %d id %q", w.Code, w.Header().Get("X-Request-Id"))
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Error("query string logged")
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/panic", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"INTERNAL_ERROR"`) || strings.Contains(w.Body.String(), "boom") {
		t.Fatalf("panic answered %d %s", w.Code, w.Body.String())
	}
	if !strings.Contains(logs.String(), `"panic":"boom"`) {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func TestHSTSOnlyOverTLS(t *testing.T) {
	h := HSTS(365*24*time.Hour, true)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS over plain HTTP")
	}
	r.TLS = &tls.ConnectionState{}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS = %q", got)
	}
}

type sample struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body, ct string
		status         int
		field          string
	}{
		{"ok", `{"name":"a","count":2}`, "application/json", 0, ""},
		{"charset param", `{"name":"a"}`, "application/json; charset=utf-8", 0, ""},
		{"no content type", `{"name":"a"}`, "", 415, ""},
		{"form", `name=a`, "application/x-www-form-urlencoded", 415, ""},
		{"empty", ``, "application/json", 400, ""},
		{"syntax", `{"name":`, "application/json", 400, ""},
		{"unknown field", `{"nam":"a"}`, "application/json", 400, "nam"},
		{"type", `{"count":"two"}`, "application/json", 400, "count"},
		{"trailing", `{"name":"a"} []`, "application/json", 400, ""},
		{"too large", `{"name":"` + strings.Repeat("x", 200) + `"}`, "application/json", 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var v sample
			err := DecodeJSON(r, 100, &v)
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *apierror.Error
			if !errors.As(apierror.From(err), &e) || e.Status != tt.status || e.Field != tt.field {
				t.Fatalf("err = %v (status %d field %q), want %d %q", err, e.Status, e.Field, tt.status, tt.field)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc",
		"": "", "Bearer": "", "Bearer  ": "", "Basic abc": "", "Bearerabc": "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		got, ok := BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v", h, got, ok)
		}
	}
}
