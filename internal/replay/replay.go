// Package replay refuses what must be used once, signed requests and wallet
// sign-in nonces, through the replay cache of package counters, and gives a
// place back when the request that took it is refused after all.
//
// Places are counted per owner, the credential or wallet that signed: one
// owner that floods signed requests exhausts its own share, and gets 429
// RATE_LIMITED (reason replay_cache_full) until its oldest place expires,
// while every other owner goes on (README, "HMAC-signed requests").
package replay

import (
	"context"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// DefaultMaxPerOwner is the default bound of one owner's live places: 60,000,
// that is 100 signed requests a second, sustained, over the 10 minutes (twice
// the default 5-minute signature window) a signature's place lives; some 9 MB
// of memory (all-in-one) or of Redis at most, per owner.
const DefaultMaxPerOwner = 60_000

// ErrFull is the refusal of an owner whose share of the replay cache is
// exhausted, without its Retry-After (Claim adds it).
var ErrFull = apierror.New(http.StatusTooManyRequests, apierror.RateLimited,
	"too many signed requests with this credential within the replay window: retry later").
	WithReason(apierror.ReasonReplayCacheFull)

// Claim records key as used by owner in c for ttl, with at most maxPerOwner
// (DefaultMaxPerOwner if not positive) live keys per owner. On success it
// sets r's reqinfo.Info.Undo to give the key back, which the gateway calls if
// it refuses r before forwarding it. It returns replayed for a key used
// already, ErrFull with Retry-After for an owner at its bound, and 503
// SERVICE_UNAVAILABLE when the cache cannot be reached (the request cannot
// be shown not to be a replay).
func Claim(r *http.Request, c counters.Store, owner, key string, ttl time.Duration, maxPerOwner int, replayed error) error {
	if maxPerOwner <= 0 {
		maxPerOwner = DefaultMaxPerOwner
	}
	seen, err := c.MarkSeen(r.Context(), owner, key, ttl, maxPerOwner)
	if err != nil {
		return apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "replay cache unavailable").Wrap(err)
	}
	switch seen.Outcome {
	case counters.Fresh:
		reqinfo.From(r.Context()).Undo = func(ctx context.Context) { _ = c.Unsee(ctx, owner, key, seen.Claim) }
		return nil
	case counters.OwnerFull:
		return ErrFull.WithRetryAfter(seen.RetryAfter)
	default:
		return replayed
	}
}
