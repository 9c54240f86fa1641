package replay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

var errReplayed = apierror.New(http.StatusUnauthorized, apierror.InvalidSignature, "used").WithReason("replayed")

func request() (*http.Request, *reqinfo.Info) {
	info := &reqinfo.Info{}
	r := httptest.NewRequest("GET", "/v1/x", nil)
	return r.WithContext(reqinfo.With(r.Context(), info)), info
}

func TestClaim(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := memory.New(clk)
	claim := func(key string) (*reqinfo.Info, error) {
		r, info := request()
		return info, Claim(r, c, "key_1", key, time.Minute, 2, errReplayed)
	}
	info, err := claim("a")
	if err != nil || info.Undo == nil {
		t.Fatalf("first: %v (undo %v)", err, info.Undo != nil)
	}
	if _, err := claim("a"); !errors.Is(err, errReplayed) {
		t.Fatalf("again: %v", err)
	}
	// Undo gives it back: the same key is accepted again.
	info.Undo(context.Background())
	if _, err := claim("a"); err != nil {
		t.Fatalf("after Undo: %v", err)
	}
	if _, err := claim("b"); err != nil {
		t.Fatal(err)
	}
	// The owner's bound: 429, reason replay_cache_full, Retry-After until
	// its oldest key expires.
	_, err = claim("c")
	e := apierror.From(err)
	if e.Status != 429 || e.Code != apierror.RateLimited || e.Reason != apierror.ReasonReplayCacheFull || e.Header.Get("Retry-After") != "60" {
		t.Fatalf("beyond the bound: %v %v", e, e.Header)
	}
	// Another owner goes on.
	r, _ := request()
	if err := Claim(r, c, "key_2", "c", time.Minute, 2, errReplayed); err != nil {
		t.Fatalf("another owner: %v", err)
	}
}

// failing is a store that cannot be reached.
type failing struct{ counters.Store }

func (failing) MarkSeen(context.Context, string, string, time.Duration, int) (counters.Seen, error) {
	return counters.Seen{}, errors.New("connection refused")
}

func TestClaimUnreachable(t *testing.T) {
	r, info := request()
	err := Claim(r, failing{}, "key_1", "a", time.Minute, 0, errReplayed)
	if e := apierror.From(err); e.Status != http.StatusServiceUnavailable || info.Undo != nil {
		t.Fatalf("unreachable cache: %v (undo %v)", err, info.Undo != nil)
	}
}
