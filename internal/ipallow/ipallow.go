// Package ipallow parses and applies IP allowlists: the addresses from which
// an API key or an app may be used.
//
// An allowlist is written as entries, each a single address ("203.0.113.50",
// "2001:db8::1") or a CIDR prefix ("203.0.113.0/24", "2001:db8::/32"); a
// list may also be given as one comma-separated string
// ("203.0.113.50, 198.51.100.0/24"). Parsing is strict, because an allowlist
// that silently means something other than what its author wrote is a hole:
// see Parse for what is refused.
//
// IPv4 and IPv6 are separate address families. An IPv4-mapped IPv6 address
// (::ffff:203.0.113.50) is the IPv4 address it maps, both in entries and in
// the addresses checked; an IPv6 prefix never matches an IPv4 client, even
// one like ::/0 that covers the mapped range.
package ipallow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

const (
	// MaxEntries is the largest number of entries a list may have, counted
	// before duplicates are removed.
	MaxEntries = 100
	// MaxEntryLength is the longest entry accepted, in bytes, after
	// surrounding spaces are trimmed. The longest canonical entry,
	// "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", is 49 bytes.
	MaxEntryLength = 64
)

// ErrInvalid is wrapped by every error Parse, ParseString and
// List.UnmarshalJSON return, so that callers can recognise a bad allowlist
// with errors.Is and answer 400. The error's text names the offending entry
// (allowlist entries are not secret) and says what is wrong with it.
var ErrInvalid = errors.New("invalid IP allowlist")

// invalidError is an error that says only what is wrong with the input, so
// that callers can put it in their own context, yet matches ErrInvalid.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// List is a parsed IP allowlist: a set of IPv4 and IPv6 prefixes.
//
// The zero value is the empty list, which allows every address: "no
// allowlist configured" means "no restriction". Code that needs "nobody" must
// not express it as an empty List.
//
// A List is immutable once made, so it is safe for concurrent use and may be
// copied freely.
type List struct {
	// prefixes are masked, hold no IPv4-mapped addresses and no duplicates,
	// and are in the order of their first appearance in the input.
	prefixes []netip.Prefix
}

// Parse parses allowlist entries. Each element of entries is an address or a
// CIDR prefix, or several of them separated by commas; white space around
// each entry is trimmed. A nil or empty entries gives the empty List.
//
// Parse refuses, with an error that names the entry:
//   - an empty entry, including an empty element of entries and an empty
//     field between commas ("203.0.113.1,,203.0.113.2", or a trailing comma);
//   - anything that is not an IPv4 or IPv6 address or prefix, including
//     host names, ports, IPv4 addresses with leading zeros and IPv6 zones
//     ("fe80::1%eth0": a zone names an interface on one machine and means
//     nothing to a gateway);
//   - a prefix with bits set after the prefix length, such as
//     "203.0.113.5/24", which more often than not means its author got the
//     length or the address wrong; the error suggests the masked form;
//   - more than MaxEntries entries, or an entry longer than MaxEntryLength
//     bytes.
//
// IPv4-mapped IPv6 entries are converted to IPv4 ("::ffff:203.0.113.0/120"
// becomes "203.0.113.0/24") and duplicates are dropped, keeping the first.
func Parse(entries []string) (List, error) {
	var l List
	count := 0
	for _, e := range entries {
		if err := l.add(e, &count); err != nil {
			return List{}, err
		}
	}
	return l, nil
}

// ParseString parses a comma-separated allowlist such as
// "203.0.113.50, 198.51.100.0/24, 2001:db8::/32", by the rules of Parse. An
// empty string, or one of only white space, gives the empty List.
func ParseString(s string) (List, error) {
	if trimSpace(s) == "" {
		return List{}, nil
	}
	return Parse([]string{s})
}

// add parses one element of Parse's input, which may hold several
// comma-separated entries, and appends them to l. count is the number of
// entries seen so far, duplicates included.
func (l *List) add(s string, count *int) error {
	for {
		entry, rest, more := strings.Cut(s, ",")
		*count++
		if *count > MaxEntries {
			return invalidf("more than %d entries", MaxEntries)
		}
		p, err := parseEntry(trimSpace(entry))
		if err != nil {
			return err
		}
		if !slices.Contains(l.prefixes, p) {
			l.prefixes = append(l.prefixes, p)
		}
		if !more {
			return nil
		}
		s = rest
	}
}

// parseEntry parses one trimmed entry into a masked, unmapped prefix.
func parseEntry(e string) (netip.Prefix, error) {
	switch {
	case e == "":
		return netip.Prefix{}, invalidf("empty entry (check for doubled or trailing commas)")
	case len(e) > MaxEntryLength:
		return netip.Prefix{}, invalidf("entry %q... is %d bytes long; the limit is %d", e[:MaxEntryLength], len(e), MaxEntryLength)
	case strings.ContainsRune(e, '%'):
		return netip.Prefix{}, invalidf("%q has an IPv6 zone; zones are not allowed", e)
	}

	if !strings.ContainsRune(e, '/') {
		a, err := netip.ParseAddr(e)
		if err != nil {
			return netip.Prefix{}, invalidf("%q is not an IP address or CIDR prefix", e)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}

	p, err := netip.ParsePrefix(e)
	if err != nil {
		return netip.Prefix{}, invalidf("%q is not an IP address or CIDR prefix", e)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, invalidf("%s has host bits set; did you mean %s?", p, m)
	}
	// A masked IPv6 prefix whose address is IPv4-mapped has at least 96 bits
	// (the ::ffff: marker ends at bit 96), so the conversion is exact.
	if a := p.Addr(); a.Is4In6() {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// trimSpace trims the white space around an entry, including the newlines
// of a list wrapped over several lines of a configuration file.
func trimSpace(s string) string {
	return strings.TrimSpace(s)
}

// Contains reports whether the list allows ip. The empty list allows every
// address, even an invalid one; a non-empty list allows no invalid address
// (the zero netip.Addr) and no address with an IPv6 zone, since an entry
// cannot name a zone. An IPv4-mapped IPv6 address is checked as the IPv4
// address it maps.
//
// Contains does not allocate. Its cost is linear in the number of entries,
// at most MaxEntries.
func (l List) Contains(ip netip.Addr) bool {
	if len(l.prefixes) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range l.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Len returns the number of distinct entries in the list.
func (l List) Len() int { return len(l.prefixes) }

// IsEmpty reports whether the list has no entries, that is, allows every
// address.
func (l List) IsEmpty() bool { return len(l.prefixes) == 0 }

// Strings returns the entries in canonical form, in the order of their first
// appearance: a prefix that covers one address is written as the bare address
// ("203.0.113.50", "2001:db8::1"), any other prefix in CIDR notation
// ("203.0.113.0/24", "2001:db8::/32"). IPv6 is written as RFC 5952
// recommends. Parse of the result gives back an equal List.
//
// The empty list gives a non-nil empty slice.
func (l List) Strings() []string {
	out := make([]string, len(l.prefixes))
	for i, p := range l.prefixes {
		out[i] = prefixString(p)
	}
	return out
}

// String returns the entries in canonical form separated by ", ", the form
// ParseString reads.
func (l List) String() string {
	return strings.Join(l.Strings(), ", ")
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// MarshalJSON encodes the list as a JSON array of its canonical entries (see
// Strings): always an array, [] for the empty list.
func (l List) MarshalJSON() ([]byte, error) {
	return json.Marshal(l.Strings())
}

// UnmarshalJSON sets l from a JSON array of strings, each parsed like an
// element of Parse's entries (so it too may hold comma-separated entries),
// from one comma-separated JSON string, parsed like ParseString's input, or
// from null, which gives the empty List. On error l is left unchanged.
func (l *List) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return invalidf("%w", err)
	}
	var (
		parsed List
		err    error
	)
	switch v := v.(type) {
	case nil:
	case string:
		parsed, err = ParseString(v)
	case []any:
		entries := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return invalidf("element %d of the JSON array is not a string", i)
			}
			entries[i] = s
		}
		parsed, err = Parse(entries)
	default:
		return invalidf("want a JSON array of strings or a comma-separated string")
	}
	if err != nil {
		return err
	}
	*l = parsed
	return nil
}

// Interface guards.
var (
	_ json.Marshaler   = List{}
	_ json.Unmarshaler = (*List)(nil)
)
