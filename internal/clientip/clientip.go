// Package clientip finds the address of the client behind the reverse
// proxies that Tollgate trusts.
//
// Every proxy that forwards an HTTP request appends the address it received
// the request from to the X-Forwarded-For header, so a request that passed a
// load balancer and then a CDN edge arrives with
//
//	X-Forwarded-For: <what the client sent>, <client>, <CDN edge>
//
// and the load balancer as the TCP peer. The header is input like any other:
// a client can write anything into it, including an address in an allowlist
// or a fresh address for each request to escape a rate limit. Only the
// entries that trusted proxies appended can be believed, so the Resolver
// walks the header from the right, past the proxies it trusts, and takes the
// first address that is not one of them. Whatever lies to the left of that
// address was written by the client or by a proxy we know nothing about, and
// is ignored. The left-most entry is never believed merely because it is
// left-most.
//
// Configure as trusted only the proxies that are in front of Tollgate and
// that append (rather than pass through) X-Forwarded-For. With no trusted
// proxies, the header is ignored and the client is the TCP peer.
package clientip

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tollgate/tollgate/internal/ipallow"
)

// MaxHops is the largest number of X-Forwarded-For entries ClientIP
// examines. A longer chain of trusted proxies is not a real deployment; the
// cap bounds the work an attacker can cause with a long header.
const MaxHops = 32

// ErrInvalid is wrapped by every error NewResolver returns.
var ErrInvalid = errors.New("invalid trusted proxy")

// Resolver finds client addresses behind a fixed set of trusted proxies.
//
// A nil *Resolver and the zero Resolver trust nobody: ClientIP returns the
// TCP peer. A Resolver is immutable once made and safe for concurrent use.
type Resolver struct {
	// trusted holds the proxies. Unlike an allowlist, where an empty list
	// admits everyone, an empty trusted list trusts nobody.
	trusted ipallow.List
}

// NewResolver returns a Resolver that trusts the proxies in trusted. Each
// element is an IPv4 or IPv6 address ("10.0.0.7") or CIDR prefix
// ("10.0.0.0/8"), or several separated by commas; white space around each is
// trimmed. An empty list gives a Resolver that trusts nobody.
//
// NewResolver is as strict as an allowlist should be, since an over-broad
// trusted list lets clients choose their own address: it refuses empty
// entries, zones, prefixes with host bits set ("10.0.0.1/8"; the error
// suggests the masked form), and more than 100 entries. IPv4-mapped IPv6
// entries are converted to IPv4.
func NewResolver(trusted []string) (*Resolver, error) {
	l, err := ipallow.Parse(trusted) // the same syntax and strictness as allowlists
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return &Resolver{trusted: l}, nil
}

// trusts reports whether a is a trusted proxy. Addresses with a zone are
// never trusted.
func (r *Resolver) trusts(a netip.Addr) bool {
	return !r.trusted.IsEmpty() && r.trusted.Contains(a)
}

// TrustsPeer reports whether the TCP peer remoteAddr (http.Request.RemoteAddr)
// is a trusted proxy, whose X-Forwarded-For may be passed on and extended.
// A nil Resolver trusts nobody.
func (r *Resolver) TrustsPeer(remoteAddr string) bool {
	if r == nil {
		return false
	}
	a, ok := parsePeer(remoteAddr)
	return ok && r.trusts(a)
}

// TrustsAddr reports whether the peer address a is a trusted proxy. A nil
// Resolver trusts nobody.
func (r *Resolver) TrustsAddr(a netip.Addr) bool {
	return r != nil && r.trusts(a.Unmap())
}

// ClientIP returns the address of the client that sent a request.
//
// remoteAddr is the request's http.Request.RemoteAddr, the TCP peer, as
// "host:port" ("192.0.2.1:54321", "[2001:db8::1]:54321"); a bare address is
// accepted too. xff holds every X-Forwarded-For header line of the request,
// in order (r.Header.Values("X-Forwarded-For")); the lines are read as one
// comma-separated list, as RFC 9110 section 5.3 prescribes.
//
// If the peer is not a trusted proxy, it is the client and xff is ignored.
// Otherwise ClientIP walks the X-Forwarded-For entries from the right,
// skipping trusted proxies, and returns the first untrusted one. If every
// entry is trusted, or MaxHops entries have been examined, it returns the
// left-most entry examined. If an entry is not an address, the walk stops
// and ClientIP returns the last address it could vouch for: the peer or the
// trusted entry to the right of the bad one. Entries are trimmed of spaces
// and tabs and may take these forms:
//
//	203.0.113.7         2001:db8::7
//	203.0.113.7:41234   [2001:db8::7]:41234   [2001:db8::7]
//
// The forms with a port or brackets are accepted because some proxies
// (Azure Application Gateway, for one) append the client's address with its
// port; the port is discarded. An entry with an IPv6 zone is not an address
// here. IPv4-mapped IPv6 addresses are returned as IPv4.
//
// If remoteAddr is not an address, ClientIP returns the zero netip.Addr
// (not valid); callers should refuse the request or treat the client as
// unknown. The peer keeps its IPv6 zone, if it has one, and a zoned peer is
// never trusted.
//
// ClientIP does not allocate, except for an error value when it meets an
// entry (or a peer) that is not an address.
func (r *Resolver) ClientIP(remoteAddr string, xff []string) netip.Addr {
	peer, ok := parsePeer(remoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if r == nil || !r.trusts(peer) {
		return peer
	}

	client := peer // the last address we can vouch for
	hops := 0
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			// Take the right-most entry of line.
			entry := line
			comma := strings.LastIndexByte(line, ',')
			if comma >= 0 {
				entry, line = line[comma+1:], line[:comma]
			}
			a, ok := parseHop(strings.Trim(entry, " \t"))
			if !ok {
				return client
			}
			client = a
			if !r.trusts(a) {
				return a
			}
			hops++
			if hops == MaxHops {
				return client
			}
			if comma < 0 {
				break
			}
		}
	}
	return client
}

// parsePeer parses http.Request.RemoteAddr.
func parsePeer(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// parseHop parses one trimmed X-Forwarded-For entry. It picks the parser by
// the entry's shape so that a well-formed entry never goes through a failed
// parse, which would allocate an error.
func parseHop(s string) (netip.Addr, bool) {
	if s == "" || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	var (
		a   netip.Addr
		err error
	)
	switch {
	case s[0] == '[' && s[len(s)-1] == ']': // "[v6]"
		a, err = netip.ParseAddr(s[1 : len(s)-1])
		if err == nil && !a.Is6() {
			return netip.Addr{}, false
		}
	case s[0] == '[' || strings.Count(s, ":") == 1: // "[v6]:port", "v4:port"
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		a = ap.Addr()
	default:
		a, err = netip.ParseAddr(s)
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
