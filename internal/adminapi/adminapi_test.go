package adminapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

const token = "admin-token-0123456789abcdef0123456789"

// The admin token is a high-entropy secret: the right one is admitted
// whoever failed before, from the guessing address too. Wrong ones are
// counted per client IP; past the free failures they get 429 with a
// Retry-After that grows, and other addresses are not affected.
func TestWrongTokensNeverStopTheRightOne(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	hash, _ := TokenHash(token, "")
	api := New(Options{TokenSHA256: hash, Counters: memory.New(clk), Clock: clk})
	do := func(ip, bearer string) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest("GET", "/admin/v1/bans/ip/203.0.113.1", nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		r = r.WithContext(reqinfo.With(r.Context(), &reqinfo.Info{ID: "req_1", ClientIP: netip.MustParseAddr(ip)}))
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w
	}
	const a, b = "192.0.2.1", "198.51.100.7"
	free := config.Default().Auth.Login.MaxFailuresPerIP
	for i := range free + 1 {
		bearer := "wrong-guess"
		if i%2 == 0 {
			bearer = "" // a missing token counts too
		}
		if w := do(a, bearer); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	var prev int
	for i := range 6 {
		w := do(a, "wrong-guess")
		retry, _ := strconv.Atoi(w.Header().Get("Retry-After"))
		if w.Code != http.StatusTooManyRequests || retry <= prev {
			t.Fatalf("wrong token during delay %d: %d, Retry-After %q after %d", i+1, w.Code, w.Header().Get("Retry-After"), prev)
		}
		prev = retry
		for _, ip := range []string{a, b} {
			if w := do(ip, token); w.Code != http.StatusOK {
				t.Fatalf("right token from %s during delay %d: %d %s", ip, i+1, w.Code, w.Body)
			}
		}
		if w := do(b, "wrong-guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token from another address: %d", w.Code)
		}
		clk.Advance(time.Duration(retry) * time.Second)
		if w := do(a, "wrong-guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong token after delay %d: %d", i+1, w.Code)
		}
	}
}
