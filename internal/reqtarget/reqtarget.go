// Package reqtarget makes a request's target canonical before anything
// decides on it: the route match, the scopes the route requires, and the
// path the upstream receives are all taken from the one canonical path that
// Parse returns, so that a route match is always a match of the path the
// upstream will see.
//
// Parse normalizes what RFC 3986 says is equivalent and refuses what is
// ambiguous, that is, what two RFC-conforming parsers, or a lenient one, may
// read as different paths. Normalized (section 6.2.2):
//
//   - percent-encoded unreserved characters are decoded ("%7E" is "~",
//     "%2e" is "."), and the hex digits of the other escapes upper-cased;
//   - dot segments are removed (section 5.2.4): "/v1/../v1/kyt/score" is
//     "/v1/kyt/score", and ".." above the root is dropped;
//   - repeated slashes are merged, after the dot segments are removed:
//     "/v1//kyt" is "/v1/kyt", "/v1//.." is "/v1/".
//
// Refused, whatever the route:
//
//   - an encoded slash ("%2F") or a backslash, raw or encoded ("%5C"):
//     some servers split segments on them, others do not;
//   - a semicolon, raw or encoded ("%3B"): servlet containers strip path
//     parameters ("/v1/kyt;x/score" is "/v1/kyt/score" to them);
//   - an encoded percent sign followed by two hex digits ("%252e"): a
//     server that decodes twice sees another path;
//   - an encoded percent sign spelled with escaped hex digits
//     ("%25%32%65"), which is forwarded as "%252e" all the same;
//   - control characters (raw or encoded, NUL included), invalid escapes,
//     percent-decoded bytes that are not valid UTF-8 (overlong forms such as
//     "%C0%AE" among them), a fragment, and characters that fold to an
//     ASCII character under Unicode compatibility normalization
//     ("%EF%BC%8E", the full-width full stop, is "."; "%EF%BD%8B", the
//     full-width small k, is "k");
//   - a target that is not in origin or absolute form (RFC 9112 section
//     3.2), or longer than MaxLength.
//
// Path matching stays case-sensitive, as RFC 3986 defines paths, and a
// trailing dot is part of a segment: an upstream that folds case or trims
// trailing dots (Windows file systems, IIS) must not rely on a route's path
// to tell its resources apart.
package reqtarget

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxLength bounds a request target, in bytes. The public listener's header
// limit bounds it too; this keeps Parse's work small for callers that have
// no such limit (the decision API's X-Forwarded-Uri).
const MaxLength = 16 << 10

// Target is a canonical request target.
type Target struct {
	// Path is the canonical path, percent-decoded: what routes are matched
	// against. It never holds an encoded slash, so its segments are those
	// of RawPath.
	Path string
	// RawPath is the canonical path as sent upstream: percent-encoded, with
	// the escapes of reserved and non-ASCII bytes kept (upper-cased).
	RawPath string
	// RawQuery is the query as the client sent it, without the "?".
	RawQuery string
	// Normalized reports whether the path was rewritten beyond escaping:
	// dot segments removed or slashes merged. Decoding an unreserved
	// character or upper-casing an escape does not count, since every
	// server decodes the path it receives the same way.
	Normalized bool
}

// Error is a refused target. Reason says why, in a few words.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return "reqtarget: " + e.Reason }

// Reasons of Error, for tests and logs; the client gets one 400.
var (
	errForm        = &Error{"not an origin-form or absolute-form request target"}
	errLength      = &Error{"request target too long"}
	errEscape      = &Error{"invalid percent-encoding"}
	errSlash       = &Error{"encoded slash"}
	errBackslash   = &Error{"backslash"}
	errSemicolon   = &Error{"semicolon (path parameter)"}
	errDouble      = &Error{"double percent-encoding"}
	errControl     = &Error{"control character"}
	errFragment    = &Error{"fragment in the request target"}
	errUTF8        = &Error{"percent-decoded bytes are not valid UTF-8"}
	errLookalike   = &Error{"a character that folds to an ASCII character (Unicode NFKC)"}
	errCharInvalid = &Error{"character not allowed in a path"}
)

// IsRefused reports whether err is a refusal of Parse.
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Parse returns the canonical form of target, a request target in origin
// form ("/path?query") or absolute form ("https://host/path?query"), or an
// *Error when the target is ambiguous.
func Parse(target string) (Target, error) {
	if len(target) > MaxLength {
		return Target{}, errLength
	}
	path, query, _ := strings.Cut(target, "?")
	if path == "" || path[0] != '/' {
		rest, ok := cutScheme(path)
		if !ok {
			return Target{}, errForm
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			path = "/"
		} else {
			path = rest[i:]
		}
	}
	if strings.IndexByte(query, '#') >= 0 {
		return Target{}, errFragment
	}
	t, err := canonicalPath(path)
	if err != nil {
		return Target{}, err
	}
	t.RawQuery = query
	return t, nil
}

// cutScheme returns what follows "http://" or "https://" (any case).
func cutScheme(s string) (string, bool) {
	for _, p := range []string{"http://", "https://"} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return s[len(p):], true
		}
	}
	return "", false
}

// canonicalPath canonicalizes a path that starts with "/".
func canonicalPath(p string) (Target, error) {
	if isPlain(p) {
		// The common case: nothing to decode, escape, merge or remove.
		return Target{Path: p, RawPath: p}, nil
	}
	// Segments, each in both forms; a slash ends one.
	type segment struct{ raw, dec []byte }
	var segs []segment
	var raw, dec []byte
	normalized := false
	trailing := false // the path ends with a slash (or a dot segment)
	flush := func(last bool) {
		switch string(dec) {
		case "":
			// Before another slash: a repeated slash, kept until the
			// dot segments are removed (RFC 3986 resolves "/a//.." to
			// "/a/"), merged after. Last: the path ends with a slash.
			if !last {
				segs = append(segs, segment{})
			}
			trailing = true
		case ".":
			normalized, trailing = true, true
		case "..":
			normalized, trailing = true, true
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, segment{raw, dec})
			trailing = false
		}
		raw, dec = nil, nil
	}
	for i := 1; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			flush(false)
			continue
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return Target{}, errEscape
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case v == '/':
				return Target{}, errSlash
			case v == '\\':
				return Target{}, errBackslash
			case v == ';':
				return Target{}, errSemicolon
			case v < 0x20 || v == 0x7f:
				return Target{}, errControl
			case v == '%' && i+4 < len(p) && isHex(p[i+3]) && isHex(p[i+4]):
				return Target{}, errDouble
			case isUnreserved(v):
				raw = append(raw, v)
			default:
				raw = append(raw, '%', upperHex[v>>4], upperHex[v&15])
			}
			dec = append(dec, v)
			i += 2
			continue
		case c == '\\':
			return Target{}, errBackslash
		case c == ';':
			return Target{}, errSemicolon
		case c == '#':
			return Target{}, errFragment
		case c < 0x20 || c == 0x7f:
			return Target{}, errControl
		case c == ' ' || c == '"' || c == '<' || c == '>' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c == '[' || c == ']':
			// Not allowed raw in a path (RFC 3986 section 3.3); servers
			// disagree on what to make of them.
			return Target{}, errCharInvalid
		case c >= 0x80:
			// Raw non-ASCII: sent upstream percent-encoded, which every
			// server decodes to the same bytes.
			raw = append(raw, '%', upperHex[c>>4], upperHex[c&15])
		default:
			raw = append(raw, c)
		}
		dec = append(dec, c)
	}
	flush(true)
	// Merge repeated slashes: drop the empty segments.
	kept := segs[:0]
	for _, s := range segs {
		if len(s.dec) > 0 {
			kept = append(kept, s)
		}
	}
	if len(kept) < len(segs) {
		normalized = true
		trailing = trailing || len(segs[len(segs)-1].dec) == 0
		segs = kept
	}

	n := 1
	for _, s := range segs {
		n += len(s.raw) + 1
	}
	rawB := make([]byte, 0, n)
	decB := make([]byte, 0, n)
	for _, s := range segs {
		rawB = append(rawB, '/')
		decB = append(decB, '/')
		rawB = append(rawB, s.raw...)
		decB = append(decB, s.dec...)
	}
	if len(segs) == 0 || trailing {
		rawB = append(rawB, '/')
		decB = append(decB, '/')
	}
	if hasEscape(decB) {
		// "%25" then an escaped hex digit ("%25%32%65"): Tollgate reads
		// "%2e", a name, and forwards "%252e", which a server that
		// decodes twice reads as ".".
		return Target{}, errDouble
	}
	if !utf8.Valid(decB) {
		return Target{}, errUTF8
	}
	if hasLookalike(decB) {
		return Target{}, errLookalike
	}
	return Target{Path: string(decB), RawPath: string(rawB), Normalized: normalized}, nil
}

// isPlain reports whether p is already canonical: only unreserved
// characters, sub-delimiters other than ";", ":" and "@" between single
// slashes, and no dot segment.
func isPlain(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			if !plain[p[i]] {
				return false
			}
			continue
		}
		seg := p[segStart:i]
		switch {
		case seg == "" && i < len(p): // "//" (an empty last segment is a trailing slash)
			return false
		case seg == "." || seg == "..":
			return false
		}
		segStart = i + 1
	}
	return true
}

// plain marks the bytes isPlain accepts: RFC 3986's pchar without "%" and
// ";".
var plain = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@" {
		t[c] = true
	}
	return t
}()

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

const upperHex = "0123456789ABCDEF"

// hasEscape reports whether the decoded path b holds a percent sign
// followed by two hex digits: an escape once decoded, which its raw form
// sends as "%25" and two hex digits.
func hasEscape(b []byte) bool {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' && isHex(b[i+1]) && isHex(b[i+2]) {
			return true
		}
	}
	return false
}

// hasLookalike reports whether the valid UTF-8 b holds a non-ASCII character
// whose compatibility form (Unicode NFKC, UAX #15) holds an ASCII character:
// "\uFF0E", the full-width full stop, is "."; "\uFF4B", the full-width small
// letter k, is "k"; "\u212A", the Kelvin sign, is "K". A server that
// normalizes Unicode paths would read a dot segment, a separator, an escape,
// or another name (that of a route Tollgate did not match) where Tollgate
// reads a name of its own. Route paths are ASCII, so that the compatibility
// form of an accepted path starts with a route's path only if the path does.
func hasLookalike(b []byte) bool {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, n := utf8.DecodeRune(b[i:])
		for _, c := range norm.NFKC.Bytes(b[i : i+n]) {
			if c < utf8.RuneSelf {
				return true
			}
		}
		i += n
	}
	return false
}
