package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/counters"
)

// ReasonBanned is the reason of the refusal of a banned caller.
const ReasonBanned = "banned"

// Bans are the gateway's temporary bans (automatic protection): of a
// client address, checked before its credential is even read, and of a
// credential or an organization, checked once the caller is known. An
// address that keeps presenting bad credentials is banned by itself:
// MaxFailures failed authentications within Window ban it for Duration.
// Operators ban by hand through the admin API (see BanKey).
//
// Checking costs no round trip (counters.Store.Banned answers from memory,
// and nothing is looked up while no ban exists); recording a failure costs
// one, on failed requests only.
type Bans struct {
	Counters counters.Store
	// MaxFailures is the number of failed authentications from one
	// address within Window that bans it for Duration; 0 disables the
	// automatic bans.
	MaxFailures int
	Window      time.Duration
	Duration    time.Duration
	Logger      *slog.Logger // default: discard
}

// Kinds of ban keys.
const (
	BanIP           = "ip"
	BanCredential   = "credential"
	BanOrganization = "org"
)

// BanKey is the counters key of a ban of kind (BanIP, BanCredential,
// BanOrganization) on id.
func BanKey(kind, id string) string { return "ban:" + kind + ":" + id }

// banCounter reports how many bans a store holds; both counters.Store
// implementations (and the failover wrapper) have it.
type banCounter interface{ BanLen() int }

// any reports whether any ban may exist, so that a store without bans costs
// nothing per request.
func (b *Bans) any() bool {
	if c, ok := b.Counters.(banCounter); ok {
		return c.BanLen() > 0
	}
	return true
}

func errBanned(d time.Duration) *apierror.Error {
	return apierror.New(http.StatusForbidden, apierror.Forbidden, "temporarily banned: too many failed requests or an operator's ban").
		WithReason(ReasonBanned).WithRetryAfter(d)
}

// checkAddr refuses a banned client address.
func (b *Bans) checkAddr(ctx context.Context, ip netip.Addr) error {
	if b == nil || !b.any() {
		return nil
	}
	return b.check(ctx, BanKey(BanIP, ip.String()))
}

// checkPrincipal refuses a banned credential or organization.
func (b *Bans) checkPrincipal(ctx context.Context, p *authn.Principal) error {
	if b == nil || !b.any() {
		return nil
	}
	if err := b.check(ctx, BanKey(BanCredential, p.CredentialID)); err != nil {
		return err
	}
	return b.check(ctx, BanKey(BanOrganization, p.OrgID))
}

func (b *Bans) check(ctx context.Context, key string) error {
	d, err := b.Counters.Banned(ctx, key)
	if err != nil {
		return nil //nolint:nilerr // bans are a protection on top: an unreadable one bans nobody
	}
	if d > 0 {
		return errBanned(d)
	}
	return nil
}

// failed records a failed authentication from ip, and bans the address once
// it has failed MaxFailures times within Window.
func (b *Bans) failed(ctx context.Context, ip netip.Addr, err error) {
	if b == nil || b.MaxFailures <= 0 || !ip.IsValid() {
		return
	}
	var e *apierror.Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.Code == apierror.Unauthorized {
		return // a missing credential is no failed attempt
	}
	d, rerr := b.Counters.RecordAttempt(ctx, "authfail:"+ip.String(), counters.Limit{Max: b.MaxFailures, Window: b.Window})
	if rerr != nil || d.Allowed {
		return
	}
	if err := b.Counters.Ban(ctx, BanKey(BanIP, ip.String()), b.Duration); err != nil {
		return
	}
	if b.Logger != nil {
		b.Logger.Warn("client address banned after repeated failed authentications",
			"client_ip", ip.String(), "failures", b.MaxFailures, "window", b.Window, "duration", b.Duration)
	}
}
