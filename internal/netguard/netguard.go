// Package netguard keeps Tollgate's outgoing requests to user-supplied URLs,
// such as webhook deliveries, away from the gateway's own network: it is the
// guard against server-side request forgery (SSRF).
//
// A Policy says which URLs and addresses are allowed. Its zero value is the
// production policy: https URLs only, and connections only to public unicast
// addresses. It checks twice:
//
//   - CheckURL, when a URL is registered, refuses what is malformed or can
//     never be allowed, including hosts that are forbidden IP literals, and
//     gives a message fit for the API user;
//   - Control, run by the net.Dialer of DialContext, Transport and Client
//     after name resolution and before each connection, refuses a forbidden
//     address whatever name led to it. This is the check that matters: a
//     name that resolved to a public address when the URL was registered
//     may resolve to 127.0.0.1 at delivery time (DNS rebinding), and a
//     redirect or proxy could lead elsewhere, so Transport uses no proxy and
//     Client follows no redirect.
//
// # Forbidden addresses
//
// Unless the Policy allows them, connections are refused to these IPv4
// addresses: 0.0.0.0/8 ("this network", including the unspecified address),
// 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16 (private, RFC 1918),
// 100.64.0.0/10 (carrier-grade NAT), 127.0.0.0/8 (loopback), 169.254.0.0/16
// (link-local, including the cloud metadata service 169.254.169.254),
// 192.0.0.0/24 (IETF protocol assignments), 192.0.2.0/24, 198.51.100.0/24 and
// 203.0.113.0/24 (documentation), 192.88.99.0/24 (6to4 relays), 198.18.0.0/15
// (benchmarking), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved, including
// the broadcast address 255.255.255.255).
//
// IPv6 addresses must be global unicast, in 2000::/3, which leaves out the
// unspecified address ::, loopback ::1, the deprecated IPv4-compatible ::/96,
// 100::/64 (discard), 64:ff9b:1::/48 (local-use NAT64), fc00::/7 (unique
// local, the IPv6 private range), fe80::/10 (link-local), fec0::/10
// (site-local), ff00::/8 (multicast); within 2000::/3, 2001::/23 (IETF protocol
// assignments, including Teredo 2001::/32: a tunnel, refused as a whole),
// 2001:db8::/32 and 3fff::/20 (documentation) are refused too. Addresses with
// an IPv6 zone ("fe80::1%eth0") are refused.
//
// IPv6 forms that embed an IPv4 address are judged by that address:
// IPv4-mapped ::ffff:0:0/96 (::ffff:127.0.0.1 is loopback), IPv4-translated
// ::ffff:0:0:0/96, NAT64 64:ff9b::/96 (64:ff9b::a00:1 is 10.0.0.1) and 6to4
// 2002::/16. A NAT64 or 6to4 address that embeds a public IPv4 address is
// allowed, so that delivery works from IPv6-only hosts behind DNS64.
//
// # Errors
//
// Refused addresses produce an *AddressError, which matches
// ErrForbiddenAddress; refused URLs an error that matches ErrInvalidURL (and
// ErrForbiddenAddress too if the host is a forbidden IP literal). Use
// errors.Is: a refusal at connection time reaches the caller wrapped in a
// *net.OpError and a *url.Error, whose text names the resolved address.
// Show API users a fixed message for it rather than the error's text, or they
// learn what the gateway's resolver answers for names of their choosing.
package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// MaxURLLength is the longest URL CheckURL accepts, in bytes.
	MaxURLLength = 2048

	// DialTimeout limits each connection attempt of DialContext.
	DialTimeout = 10 * time.Second
	// TLSHandshakeTimeout and ResponseHeaderTimeout are what Transport sets
	// where its base leaves them zero.
	TLSHandshakeTimeout   = 10 * time.Second
	ResponseHeaderTimeout = 30 * time.Second
	// MaxResponseHeaderBytes is what Transport sets as
	// http.Transport.MaxResponseHeaderBytes where its base leaves it zero.
	MaxResponseHeaderBytes = 64 << 10
	// DefaultClientTimeout is the overall time limit of a Client given a
	// timeout of zero or less.
	DefaultClientTimeout = 30 * time.Second
)

var (
	// ErrForbiddenAddress is matched by every error for an address the
	// Policy refuses, at CheckURL or at connection time.
	ErrForbiddenAddress = errors.New("netguard: forbidden address")

	// ErrInvalidURL is matched by every error CheckURL returns. The
	// error's text says what is wrong, for the API user.
	ErrInvalidURL = errors.New("netguard: invalid URL")
)

// AddressError is the error for an address the Policy refuses. It matches
// ErrForbiddenAddress.
type AddressError struct {
	// Addr is the refused address, as dialed or as written in the URL.
	Addr netip.Addr
	// Reason says what kind of address it is, such as "a loopback
	// address".
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("netguard: %s is %s; only public addresses are allowed", e.Addr, e.Reason)
}

// Is reports whether target is ErrForbiddenAddress.
func (e *AddressError) Is(target error) bool { return target == ErrForbiddenAddress }

// urlError is an error of CheckURL: msg for the API user, matching
// ErrInvalidURL and, through err, what caused it.
type urlError struct {
	msg string
	err error
}

func (e *urlError) Error() string        { return e.msg }
func (e *urlError) Unwrap() error        { return e.err }
func (e *urlError) Is(target error) bool { return target == ErrInvalidURL }

func invalidURL(format string, args ...any) error {
	return &urlError{msg: fmt.Sprintf(format, args...)}
}

// Policy says which outgoing URLs and addresses are allowed.
//
// The zero value allows https URLs to public addresses only (see the package
// doc), which is what production uses. A Policy is a value: its methods are
// safe for concurrent use as long as nobody modifies it, including the
// elements of AllowedCIDRs, once it is in use.
type Policy struct {
	// AllowPrivate allows every address, including loopback, private,
	// link-local and the other forbidden ranges. For development and
	// tests only.
	AllowPrivate bool

	// AllowHTTP allows http URLs besides https.
	AllowHTTP bool

	// AllowedCIDRs are ranges that are allowed even though they are
	// forbidden otherwise, such as an internal network whose receivers
	// may get webhooks. An IPv4 prefix also allows the IPv6 forms that
	// embed its addresses (::ffff:10.0.0.1, 64:ff9b::a00:1). Invalid
	// prefixes match nothing.
	AllowedCIDRs []netip.Prefix
}

// CheckAddr returns nil if p allows connections to a, and an *AddressError
// otherwise.
func (p Policy) CheckAddr(a netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	if !a.IsValid() {
		return &AddressError{Addr: a, Reason: "not an IP address"}
	}
	if a.Zone() != "" {
		return &AddressError{Addr: a, Reason: "an address with an IPv6 zone"}
	}
	u := a.Unmap()
	if p.allowed(a) || p.allowed(u) {
		return nil
	}
	if u.Is4() {
		if r := reason4(u); r != "" {
			if a.Is4In6() {
				r = fmt.Sprintf("an IPv4-mapped form of %s, %s", u, r)
			}
			return &AddressError{Addr: a, Reason: r}
		}
		return nil
	}
	if v4, form, ok := embedded4(u); ok {
		if p.allowed(v4) {
			return nil
		}
		if r := reason4(v4); r != "" {
			return &AddressError{Addr: a, Reason: fmt.Sprintf("%s of %s, %s", form, v4, r)}
		}
		return nil
	}
	if r := reason6(u); r != "" {
		return &AddressError{Addr: a, Reason: r}
	}
	return nil
}

// allowed reports whether a is in one of p.AllowedCIDRs.
func (p Policy) allowed(a netip.Addr) bool {
	for _, pfx := range p.AllowedCIDRs {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

type forbidden struct {
	prefix netip.Prefix
	reason string
}

// forbidden4 and forbidden6 are the forbidden ranges; the first that
// contains an address gives its reason.
var (
	forbidden4 = []forbidden{
		{netip.MustParsePrefix("0.0.0.0/8"), `in 0.0.0.0/8 ("this network")`},
		{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address (RFC 6598)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (such as a cloud metadata service)"},
		{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment (192.0.0.0/24)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
		{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address"},
		{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
		{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
		{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
		{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
		{netip.MustParsePrefix("255.255.255.255/32"), "the broadcast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	}
	forbidden6 = []forbidden{
		{netip.MustParsePrefix("::/128"), "the unspecified address"},
		{netip.MustParsePrefix("::1/128"), "a loopback address"},
		{netip.MustParsePrefix("::/96"), "an IPv4-compatible address (deprecated)"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
		{netip.MustParsePrefix("100::/64"), "a discard-only address"},
		{netip.MustParsePrefix("2001::/32"), "a Teredo address"},
		{netip.MustParsePrefix("2001::/23"), "an IETF protocol assignment (2001::/23)"},
		{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
		{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
		{netip.MustParsePrefix("fc00::/7"), "a unique local address (private)"},
		{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
		{netip.MustParsePrefix("fec0::/10"), "a site-local address (deprecated)"},
		{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	}
	global6 = netip.MustParsePrefix("2000::/3")

	mapped4     = netip.MustParsePrefix("::ffff:0:0/96")
	translated4 = netip.MustParsePrefix("::ffff:0:0:0/96")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// reason4 returns why the IPv4 address a is forbidden, or "" if it is not.
func reason4(a netip.Addr) string {
	for _, f := range forbidden4 {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	return ""
}

// reason6 returns why the IPv6 address a, which embeds no IPv4 address, is
// forbidden, or "" if it is not.
func reason6(a netip.Addr) string {
	for _, f := range forbidden6 {
		if f.prefix.Contains(a) {
			return f.reason
		}
	}
	if !global6.Contains(a) {
		return "not a global unicast address"
	}
	return ""
}

// embedded4 returns the IPv4 address embedded in the IPv6 address a and the
// name of the form, if a is of a form that embeds one.
func embedded4(a netip.Addr) (v4 netip.Addr, form string, ok bool) {
	b := a.As16()
	switch {
	case mapped4.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "an IPv4-mapped form", true
	case translated4.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "an IPv4-translated form", true
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), "a NAT64 form", true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), "a 6to4 form", true
	}
	return netip.Addr{}, "", false
}

// CheckURL parses raw and returns it if p allows requests to it, and an
// error matching ErrInvalidURL, whose text says what is wrong, otherwise.
//
// The URL must be absolute, at most MaxURLLength bytes, with scheme https
// (or http if p.AllowHTTP) and a host; without user information or a
// fragment ('#'); with a port, if any, a decimal from 1 to 65535 without
// leading zeros. The host is an IP literal, without IPv6 zone, that
// CheckAddr allows, or a DNS name of ASCII letters, digits, '-' and '_' in
// labels of at most 63 bytes, at most 253 bytes in all, whose last label
// starts with a letter (so "127.1" and "0x7f000001" are refused, which some
// resolvers read as addresses); "localhost" and names under ".localhost" are
// refused if p refuses loopback addresses. Whether a name resolves to an
// allowed address is only known when connecting: see Control.
func (p Policy) CheckURL(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, invalidURL("URL is longer than %d bytes", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalidURL("URL is not valid: %s", urlErrText(err))
	}
	switch {
	case u.Scheme == "":
		return nil, invalidURL("URL must be absolute, starting with https://")
	case u.Scheme == "https", u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return nil, invalidURL("URL scheme must be https, not http")
	default:
		return nil, invalidURL("URL scheme must be https")
	}
	switch {
	case u.Opaque != "" || u.Host == "":
		return nil, invalidURL("URL has no host; write it as %s://host/path", u.Scheme)
	case u.User != nil:
		return nil, invalidURL("URL must not contain user information (user:password@)")
	case strings.Contains(raw, "#"):
		return nil, invalidURL("URL must not contain a fragment (#...)")
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, invalidURL("URL has an empty port after ':'")
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return nil, invalidURL("URL port must be a number from 1 to 65535")
		}
	}
	// url.Parse has refused brackets around anything but an IPv6 address.
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, invalidURL("URL host must not have an IPv6 zone")
		}
		if err := p.CheckAddr(a); err != nil {
			var ae *AddressError
			if errors.As(err, &ae) {
				return nil, &urlError{msg: fmt.Sprintf("URL host %s is %s; only public addresses are allowed", a, ae.Reason), err: err}
			}
			return nil, &urlError{msg: "URL host is not allowed", err: err}
		}
		return u, nil
	}
	if msg := checkName(host); msg != "" {
		return nil, invalidURL("URL host %s", msg)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		if err := p.CheckAddr(netip.IPv6Loopback()); err != nil {
			return nil, &urlError{msg: "URL host " + name + " is a loopback name; only public addresses are allowed", err: err}
		}
		if err := p.CheckAddr(netip.AddrFrom4([4]byte{127, 0, 0, 1})); err != nil {
			return nil, &urlError{msg: "URL host " + name + " is a loopback name; only public addresses are allowed", err: err}
		}
	}
	return u, nil
}

// urlErrText returns the reason of a url.Parse error without the URL, which
// the caller has.
func urlErrText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkName returns what is wrong with the DNS name host, or "" if nothing.
func checkName(host string) string {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return "must be a DNS name of 1 to 253 bytes or an IP address"
	}
	var label string
	for label = range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "has a DNS label that is empty or longer than 63 bytes"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= 0x80 {
				return "must be ASCII; write an internationalized name in its xn-- form"
			}
			if !isLetter(c) && !isDigit(c) && c != '-' && c != '_' {
				return fmt.Sprintf("has the character %q, which is not allowed in a DNS name", c)
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "has a DNS label that starts or ends with '-'"
		}
	}
	if !isLetter(label[0]) {
		return "must be a valid IP address or end in a top-level domain that starts with a letter"
	}
	return ""
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// Control checks the address a net.Dialer is about to connect to, after name
// resolution: it returns an error matching ErrForbiddenAddress (an
// *AddressError if the address parses) unless network is tcp, tcp4 or tcp6
// and address is an IP address and port that CheckAddr allows. Its
// signature is that of net.Dialer.Control.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %s is not allowed", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse the address being dialed", ErrForbiddenAddress)
	}
	return p.CheckAddr(ap.Addr())
}

// Dialer returns a net.Dialer with timeout DialTimeout, TCP keep-alives every
// 30 seconds and p.Control, so that it connects only to addresses p allows.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second, Control: p.Control}
}

// DialContext connects to address on the named network with p.Dialer. Every
// address the name resolves to is checked before it is tried, so a
// forbidden one is never connected to; if all are refused, the error matches
// ErrForbiddenAddress.
func (p Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer().DialContext(ctx, network, address)
}

// Transport returns a clone of base (or of a new transport with Go's default
// pooling settings if base is nil) that connects with p.DialContext and
// through no proxy: Proxy, Dial, DialTLS and DialTLSContext are cleared, so
// neither the environment nor base can route around the check. Where base
// leaves them zero, TLSHandshakeTimeout, ResponseHeaderTimeout and
// MaxResponseHeaderBytes are set to this package's constants of those names.
//
// The transport follows no redirects (transports never do); use it with a
// client that does not either, such as Client's.
func (p Policy) Transport(base *http.Transport) *http.Transport {
	var t *http.Transport
	if base != nil {
		t = base.Clone()
	} else {
		t = &http.Transport{
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	t.Proxy = nil
	t.OnProxyConnectResponse = nil
	t.DialContext = p.DialContext
	t.Dial = nil    //nolint:staticcheck // SA1019: cleared so that it cannot bypass DialContext
	t.DialTLS = nil //nolint:staticcheck // SA1019: as Dial
	t.DialTLSContext = nil
	if t.TLSHandshakeTimeout == 0 {
		t.TLSHandshakeTimeout = TLSHandshakeTimeout
	}
	if t.ResponseHeaderTimeout == 0 {
		t.ResponseHeaderTimeout = ResponseHeaderTimeout
	}
	if t.MaxResponseHeaderBytes == 0 {
		t.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	}
	return t
}

// Client returns an HTTP client for requests under p: its transport is
// p.Transport(nil), verifying servers against rootCAs (the system's roots
// if nil) with TLS 1.2 or later; it gives up on a request after timeout
// (DefaultClientTimeout if timeout ≤ 0), and it follows no redirect: a 3xx
// response is returned as it is, with its body, for the caller to close.
func (p Policy) Client(timeout time.Duration, rootCAs *x509.CertPool) *http.Client {
	if timeout <= 0 {
		timeout = DefaultClientTimeout
	}
	t := p.Transport(nil)
	t.TLSClientConfig = &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
