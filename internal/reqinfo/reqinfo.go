// Package reqinfo carries facts about one request through its context: the
// request ID, the client IP, who was authenticated and what went wrong, so that
// the single access-log line written at the end can say all of it.
//
// The access-log middleware attaches an *Info; everything downstream fills in
// what it learns. An Info belongs to one request and is not safe for
// concurrent use by several goroutines.
package reqinfo

import (
	"context"
	"net/netip"

	"github.com/tollgate/tollgate/internal/authn"
)

// Info describes one request. The zero value is valid.
type Info struct {
	ID       string     // request ID, echoed as X-Request-Id
	ClientIP netip.Addr // as resolved through trusted proxies
	Route    string     // path prefix of the matched route, "" for the control plane
	// UserAgent is the request's User-Agent header, "" without one.
	UserAgent string

	// Principal is who was authenticated, when anyone was. Read-only.
	Principal *authn.Principal
	// Undo, when set, gives back what authenticating the request claimed
	// (its place in the replay cache). The gateway calls it, once, when it
	// refuses the authenticated request before forwarding it, so that the
	// same signed request may be sent again.
	Undo func(ctx context.Context)

	// What went wrong, when something did.
	ErrorCode string // the error code sent to the client
	Reason    string // the reason sent with it, if any
	Err       error  // the internal cause; logged, never sent
}

type ctxKey struct{}

// With returns a copy of ctx carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the Info attached to ctx. Without one it returns a fresh,
// detached Info, so callers never need to check for nil.
func From(ctx context.Context) *Info {
	if info, ok := ctx.Value(ctxKey{}).(*Info); ok {
		return info
	}
	return &Info{}
}
