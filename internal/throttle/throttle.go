// Package throttle slows down the guessing of credentials at the control
// plane's doors: the passwords of dashboard and API logins, OAuth client
// secrets and the admin token.
//
// Failures are counted per client address and per address and identifier
// (the account's e-mail address, the client ID), never per identifier
// alone: failures from other addresses never lock the rightful owner out.
// Each count follows a counters.Backoff: some free failures, then delays
// that double with every further failure, up to a cap. The counts live in
// the counters store, so every node of a cluster shares them.
//
// Two disciplines, by the entropy of what is guessed:
//
//   - Passwords (Begin, Succeeded): an attempt is counted as a failure
//     before the password is verified, and given back when it was right.
//     An address in its delay is refused before any verification, so a
//     right password after failures is no oracle, and attempts racing in
//     parallel cannot get past the count.
//   - High-entropy secrets (Failed): the secret is verified first, and a
//     right one is always admitted, whoever failed before; only wrong ones
//     are counted, and answered 429 while their address is delayed.
//
// Addresses are counted as given, except that an IPv4-mapped IPv6 address
// counts as its IPv4 address and an IPv6 address by its /64, the block one
// host commonly holds.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
)

// Policy is how failures are counted and delayed.
type Policy struct {
	// PerAddress counts the failures of one client address, whatever the
	// identifier.
	PerAddress counters.Backoff
	// PerAccount counts the failures of one client address for one
	// identifier.
	PerAccount counters.Backoff
}

// FromConfig returns the policy that auth.login describes.
func FromConfig(l config.Login) Policy {
	b := counters.Backoff{Base: l.BackoffBase, Max: l.BackoffMax, Window: l.Window}
	p := Policy{PerAddress: b, PerAccount: b}
	p.PerAddress.Free = l.MaxFailuresPerIP
	p.PerAccount.Free = l.MaxFailuresPerIPAccount
	return p
}

// Guard throttles one door. It is safe for concurrent use.
type Guard struct {
	counters counters.Store
	scope    string
	p        Policy
}

// New returns a Guard counting in c under keys that start with scope
// ("login", "oauth", "admin"), so that the doors are counted apart.
func New(c counters.Store, scope string, p Policy) *Guard {
	return &Guard{counters: c, scope: scope, p: p}
}

// Address returns the key part that stands for ip: the IPv4 address of an
// IPv4 or IPv4-mapped address, the /64 of an IPv6 one, "unknown" for the
// zero Addr.
func Address(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is4() || ip.Is4In6():
		return ip.Unmap().String()
	}
	return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
}

// keys returns the counting keys of ip and id: the address's, and, when
// id is not empty, the address and identifier's. The identifier is hashed,
// so that keys stay short whatever a client sends.
func (g *Guard) keys(ip netip.Addr, id string) (addr, acct string) {
	a := Address(ip)
	addr = g.scope + ":ip:" + a
	if id != "" {
		h := sha256.Sum256([]byte(id))
		acct = g.scope + ":acct:" + a + ":" + hex.EncodeToString(h[:16])
	}
	return addr, acct
}

// Failed records a wrong high-entropy secret presented from ip for id (""
// when there is none). It returns how long ip (or ip for id) remains
// delayed when it already was, 0 otherwise: the caller answers 429 with
// Retry-After then, and its ordinary refusal otherwise. A failure during a
// delay is not counted.
func (g *Guard) Failed(ctx context.Context, ip netip.Addr, id string) (time.Duration, error) {
	addr, acct := g.keys(ip, id)
	d, err := g.counters.Fail(ctx, addr, g.p.PerAddress)
	if err != nil || !d.Allowed {
		return d.RetryAfter, err
	}
	if acct == "" {
		return 0, nil
	}
	d, err = g.counters.Fail(ctx, acct, g.p.PerAccount)
	if err != nil || !d.Allowed {
		return d.RetryAfter, err
	}
	return 0, nil
}

// Begin counts a password attempt from ip for id as a failure, before the
// password is verified. It returns how long ip (or ip for id) remains
// delayed when it is: the caller refuses the attempt with 429 and
// Retry-After, unverified, and nothing is counted. Otherwise the caller
// verifies the password and, if it was right, calls Succeeded.
func (g *Guard) Begin(ctx context.Context, ip netip.Addr, id string) (time.Duration, error) {
	addr, acct := g.keys(ip, id)
	d, err := g.counters.Fail(ctx, addr, g.p.PerAddress)
	if err != nil || !d.Allowed {
		return d.RetryAfter, err
	}
	if acct == "" {
		return 0, nil
	}
	d, err = g.counters.Fail(ctx, acct, g.p.PerAccount)
	if err == nil && d.Allowed {
		return 0, nil
	}
	// Not attempted after all: give the address's count back.
	if ferr := g.counters.Forgive(ctx, addr); err == nil {
		err = ferr
	}
	return d.RetryAfter, err
}

// Succeeded gives back what Begin counted for an attempt that was right,
// and lifts the delay it may have started.
func (g *Guard) Succeeded(ctx context.Context, ip netip.Addr, id string) error {
	addr, acct := g.keys(ip, id)
	if acct != "" {
		if err := g.counters.Forgive(ctx, acct); err != nil {
			return err
		}
	}
	return g.counters.Forgive(ctx, addr)
}
