// Package message parses and formats EIP-4361 (Sign-In with Ethereum) messages and their Solana
// counterpart (SIWS), strictly, line by line.
//
// The grammar is the ABNF of EIP-4361 (https://eips.ethereum.org/EIPS/eip-4361):
//
//	sign-in-with-ethereum =
//	    [ scheme "://" ] domain %s" wants you to sign in with your Ethereum account:" LF
//	    address LF
//	    LF
//	    [ statement LF ]
//	    LF
//	    %s"URI: " uri LF
//	    %s"Version: " version LF
//	    %s"Chain ID: " chain-id LF
//	    %s"Nonce: " nonce LF
//	    %s"Issued At: " issued-at
//	    [ LF %s"Expiration Time: " expiration-time ]
//	    [ LF %s"Not Before: " not-before ]
//	    [ LF %s"Request ID: " request-id ]
//	    [ LF %s"Resources:" resources ]
//	resources = *( LF resource )
//	resource  = "- " URI
//
// A SIWS message has the same shape, with "Solana" in place of "Ethereum" in the header line, a
// base58 address, and a CAIP-2 Solana chain reference as the chain ID.
//
// Where this package is stricter than, or chooses between readings of, the ABNF:
//
//   - The address prefix must be "0x" exactly (the ABNF's quoted "0x" is case-insensitive).
//   - A statement that is present must not be empty: the ABNF allows "[ statement LF ]" with an
//     empty statement, which would be indistinguishable from an absent one in [Message].
//   - The statement may be UTF-8 text (EIP-4361 says ASCII); see [Parse] for what it may not hold.
//   - The domain's host must not be empty (RFC 3986 allows an empty reg-name).
//   - Times follow RFC 3339 "date-time" exactly ("T"/"Z" may be lower case, as RFC 3339 allows),
//     but a leap second (":60") is refused, and so is the zero [time.Time] instant, which
//     [Message] uses to mean "absent".
//   - URIs must satisfy both the RFC 3986 "URI" rule and [net/url.Parse].
package message

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits enforced by [Parse].
const (
	// MaxLength is the largest message, in bytes, that Parse accepts (8 KiB). It bounds the work
	// and memory spent on untrusted input; real messages are a few hundred bytes.
	MaxLength = 8 << 10
	// MaxResources is the largest number of "- " resource lines that Parse accepts.
	MaxResources = 64
)

// Chain names the family of account a message signs in with, as stated by its header line.
type Chain string

// The chains this package understands.
const (
	// ChainEthereum is EIP-4361 Sign-In with Ethereum (any EVM chain).
	ChainEthereum Chain = "ethereum"
	// ChainSolana is Sign-In With Solana.
	ChainSolana Chain = "solana"
)

// ErrMalformed is wrapped by every error that Parse returns; the wrapping error names the line
// number (1-based) and what was expected there.
var ErrMalformed = errors.New("siwx message: malformed")

// Message is a parsed (or to-be-formatted) EIP-4361 / SIWS message.
type Message struct {
	Scheme         string    // "" when absent
	Domain         string    // RFC 3986 authority
	Chain          Chain     // from the header line
	Address        string    // as written; EIP-55 checksums are not checked here
	Statement      string    // "" when absent
	URI            string    // RFC 3986 URI
	Version        string    // always "1"
	ChainID        string    // e.g. "1", "8453" for EVM; for Solana the CAIP-2 reference, e.g. "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
	Nonce          string    // at least 8 ASCII letters and digits
	IssuedAt       time.Time // required
	ExpirationTime time.Time // zero when absent
	NotBefore      time.Time // zero when absent
	RequestID      string    // "" when absent; see HasRequestID
	HasRequestID   bool      // whether a "Request ID:" line is present (its value may be empty)
	Resources      []string  // nil when there is no "Resources:" line; non-nil (maybe empty) when there is

	// The time strings exactly as parsed, so that String reproduces the parsed text byte for byte
	// (RFC 3339 allows several spellings of one instant). Each is used only while the
	// corresponding exported field still holds the instant and offset it was parsed as.
	issuedAtText, expirationTimeText, notBeforeText timeText
}

type timeText struct {
	t time.Time
	s string
}

const (
	headerEthereum = " wants you to sign in with your Ethereum account:"
	headerSolana   = " wants you to sign in with your Solana account:"

	prefixURI        = "URI: "
	prefixVersion    = "Version: "
	prefixChainID    = "Chain ID: "
	prefixNonce      = "Nonce: "
	prefixIssuedAt   = "Issued At: "
	prefixExpiration = "Expiration Time: "
	prefixNotBefore  = "Not Before: "
	prefixRequestID  = "Request ID: "
	lineResources    = "Resources:"
	prefixResource   = "- "
)

// String returns the message's text. For a message returned by Parse and not modified since,
// that is exactly the text it was parsed from. Otherwise it is the canonical EIP-4361 rendering
// of the fields: the original time strings for times that were parsed and are unchanged, and
// [time.RFC3339Nano] (with "Z" for UTC) for the rest. ChainSolana selects the Solana header;
// any other Chain the Ethereum one. An empty Version renders as "1". Optional lines are written
// when their field is set: non-zero times, RequestID != "" or HasRequestID, Resources != nil.
// String does not validate the fields; Parse the result to check it.
func (m *Message) String() string {
	var b strings.Builder
	b.Grow(256 + len(m.Statement) + len(m.URI) + len(m.RequestID) + 64*len(m.Resources))
	if m.Scheme != "" {
		b.WriteString(m.Scheme)
		b.WriteString("://")
	}
	b.WriteString(m.Domain)
	if m.Chain == ChainSolana {
		b.WriteString(headerSolana)
	} else {
		b.WriteString(headerEthereum)
	}
	b.WriteString("\n")
	b.WriteString(m.Address)
	b.WriteString("\n\n")
	if m.Statement != "" {
		b.WriteString(m.Statement)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	b.WriteString(prefixURI + m.URI + "\n")
	version := m.Version
	if version == "" {
		version = "1"
	}
	b.WriteString(prefixVersion + version + "\n")
	b.WriteString(prefixChainID + m.ChainID + "\n")
	b.WriteString(prefixNonce + m.Nonce + "\n")
	b.WriteString(prefixIssuedAt + formatTime(m.IssuedAt, m.issuedAtText))
	if !m.ExpirationTime.IsZero() {
		b.WriteString("\n" + prefixExpiration + formatTime(m.ExpirationTime, m.expirationTimeText))
	}
	if !m.NotBefore.IsZero() {
		b.WriteString("\n" + prefixNotBefore + formatTime(m.NotBefore, m.notBeforeText))
	}
	if m.HasRequestID || m.RequestID != "" {
		b.WriteString("\n" + prefixRequestID + m.RequestID)
	}
	if m.Resources != nil {
		b.WriteString("\n" + lineResources)
		for _, r := range m.Resources {
			b.WriteString("\n" + prefixResource + r)
		}
	}
	return b.String()
}

// formatTime renders t, using the parsed text orig when t is still the instant and offset it
// was parsed as.
func formatTime(t time.Time, orig timeText) string {
	if orig.s != "" && t.Equal(orig.t) && sameOffset(t, orig.t) {
		return orig.s
	}
	return t.Format(time.RFC3339Nano)
}

// SetTimes sets IssuedAt, ExpirationTime and NotBefore from RFC 3339
// date-times, which String then writes exactly as given (so that a message
// rebuilt from its fields, as x402's SIGN-IN-WITH-X header sends them, is
// the text that was signed: ".000Z" and "Z" are different bytes). An empty
// expirationTime or notBefore leaves that time absent; issuedAt is
// required. Every error wraps [ErrMalformed].
func (m *Message) SetTimes(issuedAt, expirationTime, notBefore string) error {
	t, err := parseTime(0, issuedAt)
	if err != nil {
		return fmt.Errorf("issuedAt: %w", err)
	}
	m.IssuedAt, m.issuedAtText = t, timeText{t, issuedAt}
	m.ExpirationTime, m.expirationTimeText = time.Time{}, timeText{}
	if expirationTime != "" {
		if t, err = parseTime(0, expirationTime); err != nil {
			return fmt.Errorf("expirationTime: %w", err)
		}
		m.ExpirationTime, m.expirationTimeText = t, timeText{t, expirationTime}
	}
	m.NotBefore, m.notBeforeText = time.Time{}, timeText{}
	if notBefore != "" {
		if t, err = parseTime(0, notBefore); err != nil {
			return fmt.Errorf("notBefore: %w", err)
		}
		m.NotBefore, m.notBeforeText = t, timeText{t, notBefore}
	}
	return nil
}

func sameOffset(a, b time.Time) bool {
	_, oa := a.Zone()
	_, ob := b.Zone()
	return oa == ob
}

// CAIP2 returns the message's CAIP-2 chain identifier: "eip155:<ChainID>" for Ethereum and
// "solana:<ChainID>" for Solana. It returns "" for any other Chain.
func (m *Message) CAIP2() string {
	switch m.Chain {
	case ChainEthereum:
		return "eip155:" + m.ChainID
	case ChainSolana:
		return "solana:" + m.ChainID
	default:
		return ""
	}
}

func errAt(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: "+format, append([]any{ErrMalformed, line}, args...)...)
}

// Parse parses s as an EIP-4361 or SIWS message, strictly: every line must be exactly as the
// ABNF (see the package documentation) requires, in order, separated by "\n" alone, with no
// trailing newline. Every error wraps [ErrMalformed].
//
// Limits, beyond the grammar:
//   - s may be at most [MaxLength] (8 KiB) bytes long;
//   - there may be at most [MaxResources] (64) resources;
//   - "\r" may not appear anywhere;
//   - every line except the statement must be printable ASCII (0x20-0x7E);
//   - the statement must be valid UTF-8 without control characters (Unicode Cc), line or
//     paragraph separators (U+2028, U+2029) or bidirectional embedding, override and isolate
//     controls (U+202A-U+202E, U+2066-U+2069), which could disguise what the user signs.
func Parse(s string) (*Message, error) {
	if len(s) > MaxLength {
		return nil, fmt.Errorf("%w: message is %d bytes, more than the limit of %d", ErrMalformed, len(s), MaxLength)
	}
	if i := strings.IndexByte(s, '\r'); i >= 0 {
		return nil, errAt(1+strings.Count(s[:i], "\n"), `carriage return ("\r"): lines must end with "\n" alone`)
	}
	p := parser{lines: strings.Split(s, "\n")}
	m, err := p.parse()
	if err != nil {
		return nil, err
	}
	return m, nil
}

type parser struct {
	lines []string
	n     int // index of the next line
}

// next returns the next line and its 1-based number, or an error if the message ended before
// the expected line.
func (p *parser) next(expected string) (string, int, error) {
	if p.n >= len(p.lines) {
		return "", p.n + 1, errAt(p.n+1, "unexpected end of message, expected %s", expected)
	}
	line := p.lines[p.n]
	p.n++
	return line, p.n, nil
}

// field reads the next line, which must be prefix followed by a printable-ASCII value.
func (p *parser) field(prefix, what string) (string, int, error) {
	expected := fmt.Sprintf("%q followed by %s", prefix, what)
	line, no, err := p.next(expected)
	if err != nil {
		return "", no, err
	}
	value, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", no, errAt(no, "expected %s", expected)
	}
	if err := checkASCII(no, line); err != nil {
		return "", no, err
	}
	return value, no, nil
}

func checkASCII(no int, line string) error {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 || c > 0x7e {
			if c >= 0x80 {
				return errAt(no, "non-ASCII byte 0x%02x at column %d (only the statement may hold non-ASCII text)", c, i+1)
			}
			return errAt(no, "control byte 0x%02x at column %d", c, i+1)
		}
	}
	return nil
}

func (p *parser) parse() (*Message, error) {
	m := &Message{}

	// Line 1: [ scheme "://" ] domain " wants you to sign in with your <Chain> account:"
	line, no, err := p.next("the header line")
	if err != nil {
		return nil, err
	}
	if err := checkASCII(no, line); err != nil {
		return nil, err
	}
	var origin string
	if o, ok := strings.CutSuffix(line, headerEthereum); ok {
		origin, m.Chain = o, ChainEthereum
	} else if o, ok := strings.CutSuffix(line, headerSolana); ok {
		origin, m.Chain = o, ChainSolana
	} else {
		return nil, errAt(no, "expected a header ending in %q or %q", headerEthereum, headerSolana)
	}
	if scheme, domain, ok := strings.Cut(origin, "://"); ok {
		if !isScheme(scheme) {
			return nil, errAt(no, "expected an RFC 3986 scheme before \"://\"")
		}
		m.Scheme, origin = scheme, domain
	}
	if !isAuthority(origin, false) {
		return nil, errAt(no, "expected the domain as a non-empty RFC 3986 authority")
	}
	m.Domain = origin

	// Line 2: address
	line, no, err = p.next("the address")
	if err != nil {
		return nil, err
	}
	if err := checkASCII(no, line); err != nil {
		return nil, err
	}
	switch m.Chain {
	case ChainEthereum:
		if !isEthereumAddress(line) {
			return nil, errAt(no, `expected an Ethereum address: "0x" and 40 hexadecimal digits`)
		}
	case ChainSolana:
		if !isSolanaAddress(line) {
			return nil, errAt(no, "expected a Solana address: 32 to 44 base58 characters")
		}
	}
	m.Address = line

	// Line 3: empty.
	line, no, err = p.next("an empty line")
	if err != nil {
		return nil, err
	}
	if line != "" {
		return nil, errAt(no, "expected an empty line after the address")
	}

	// Line 4: [ statement LF ] LF
	line, no, err = p.next("a statement or an empty line")
	if err != nil {
		return nil, err
	}
	if line != "" {
		if err := checkStatement(no, line); err != nil {
			return nil, err
		}
		m.Statement = line
		line, no, err = p.next("an empty line after the statement")
		if err != nil {
			return nil, err
		}
		if line != "" {
			return nil, errAt(no, "expected an empty line after the statement (a statement is a single line)")
		}
	}

	// Required fields.
	v, no, err := p.field(prefixURI, "an RFC 3986 URI")
	if err != nil {
		return nil, err
	}
	if !isURI(v) {
		return nil, errAt(no, "expected an absolute RFC 3986 URI after %q", prefixURI)
	}
	m.URI = v

	v, no, err = p.field(prefixVersion, `"1"`)
	if err != nil {
		return nil, err
	}
	if v != "1" {
		return nil, errAt(no, `expected version "1"`)
	}
	m.Version = v

	switch m.Chain {
	case ChainEthereum:
		v, no, err = p.field(prefixChainID, "decimal digits")
		if err != nil {
			return nil, err
		}
		if !isDigits(v) {
			return nil, errAt(no, "expected a chain ID of one or more decimal digits")
		}
	case ChainSolana:
		v, no, err = p.field(prefixChainID, "a CAIP-2 reference")
		if err != nil {
			return nil, err
		}
		if !isCAIP2Reference(v) {
			return nil, errAt(no, "expected a chain ID that is a CAIP-2 reference: 1 to 32 of [-_a-zA-Z0-9]")
		}
	}
	m.ChainID = v

	v, no, err = p.field(prefixNonce, "at least 8 letters and digits")
	if err != nil {
		return nil, err
	}
	if len(v) < 8 || !isAlnum(v) {
		return nil, errAt(no, "expected a nonce of at least 8 ASCII letters and digits")
	}
	m.Nonce = v

	v, no, err = p.field(prefixIssuedAt, "an RFC 3339 date-time")
	if err != nil {
		return nil, err
	}
	if m.IssuedAt, err = parseTime(no, v); err != nil {
		return nil, err
	}
	m.issuedAtText = timeText{m.IssuedAt, v}

	// Optional fields, each at most once and in this order, then the resources.
	const (
		optExpiration = iota
		optNotBefore
		optRequestID
		optResources
		optEnd
	)
	optNames := [...]string{
		optExpiration: prefixExpiration,
		optNotBefore:  prefixNotBefore,
		optRequestID:  prefixRequestID,
		optResources:  lineResources,
	}
	nextOpt := optExpiration // the first optional field still allowed
	var seen uint            // bit i: optNames[i] was seen
	for p.n < len(p.lines) {
		no := p.n + 1
		line := p.lines[p.n]
		p.n++
		if err := checkASCII(no, line); err != nil {
			return nil, err
		}
		if nextOpt == optEnd {
			// After "Resources:" only resource lines may follow.
			r, ok := strings.CutPrefix(line, prefixResource)
			if !ok {
				if line == "" {
					return nil, errAt(no, "expected %q and a URI; empty line (a trailing newline is not allowed)", prefixResource)
				}
				return nil, errAt(no, "expected %q and a URI, the only lines allowed after %q", prefixResource, lineResources)
			}
			if len(m.Resources) == MaxResources {
				return nil, errAt(no, "more than %d resources", MaxResources)
			}
			if !isURI(r) {
				return nil, errAt(no, "expected an absolute RFC 3986 URI after %q", prefixResource)
			}
			m.Resources = append(m.Resources, r)
			continue
		}
		opt, name := -1, ""
		for i, n := range optNames {
			if strings.HasPrefix(line, n) {
				opt, name = i, n
				break
			}
		}
		expected := func() string {
			var names []string
			for _, n := range optNames[nextOpt:] {
				names = append(names, strconv.Quote(n))
			}
			return "one of " + strings.Join(names, ", ")
		}
		switch {
		case opt < 0 && line == "":
			return nil, errAt(no, "expected %s; empty line (a trailing newline is not allowed)", expected())
		case opt < 0:
			return nil, errAt(no, "expected %s; unknown or misplaced field", expected())
		case seen&(1<<opt) != 0:
			return nil, errAt(no, "duplicate %q field", name)
		case opt < nextOpt:
			return nil, errAt(no, "%q field out of order: expected %s", name, expected())
		}
		seen |= 1 << opt
		nextOpt = opt + 1
		value := line[len(name):]
		switch opt {
		case optExpiration:
			if m.ExpirationTime, err = parseTime(no, value); err != nil {
				return nil, err
			}
			m.expirationTimeText = timeText{m.ExpirationTime, value}
		case optNotBefore:
			if m.NotBefore, err = parseTime(no, value); err != nil {
				return nil, err
			}
			m.notBeforeText = timeText{m.NotBefore, value}
		case optRequestID:
			if !isPchars(value) {
				return nil, errAt(no, "expected a request ID of RFC 3986 pchar characters")
			}
			m.RequestID, m.HasRequestID = value, true
		case optResources:
			if value != "" {
				return nil, errAt(no, "expected %q alone on its line", lineResources)
			}
			m.Resources = []string{}
			nextOpt = optEnd
		}
	}
	return m, nil
}

func checkStatement(no int, s string) error {
	if !utf8.ValidString(s) {
		return errAt(no, "statement is not valid UTF-8")
	}
	for i, r := range s {
		switch {
		case unicode.Is(unicode.Cc, r):
			return errAt(no, "control character %U at byte %d of the statement", r, i+1)
		case r == '\u2028' || r == '\u2029':
			return errAt(no, "line or paragraph separator %U at byte %d of the statement", r, i+1)
		case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
			return errAt(no, "bidirectional control %U at byte %d of the statement", r, i+1)
		}
	}
	return nil
}

// parseTime parses an RFC 3339 date-time:
//
//	date-time = full-date "T" full-time
//	full-date = 4DIGIT "-" 2DIGIT "-" 2DIGIT
//	full-time = 2DIGIT ":" 2DIGIT ":" 2DIGIT [ "." 1*DIGIT ] ( "Z" / ( "+" / "-" ) 2DIGIT ":" 2DIGIT )
//
// checking the syntax itself (time.Parse also takes "," before the fraction and out-of-range
// offsets) and leaving ranges of the date and time to time.Parse.
func parseTime(no int, s string) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, errAt(no, "expected an RFC 3339 date-time such as 2021-09-30T16:25:24Z: %s", why)
	}
	const base = "2006-01-02T15:04:05"
	if len(s) < len(base)+1 {
		return bad("too short")
	}
	for i := 0; i < len(base); i++ {
		c := s[i]
		switch base[i] {
		case '-', ':':
			if c != base[i] {
				return bad(fmt.Sprintf("expected %q at column %d", base[i], i+1))
			}
		case 'T':
			if c != 'T' && c != 't' {
				return bad(`expected "T" between date and time`)
			}
		default:
			if !isDigit(c) {
				return bad(fmt.Sprintf("expected a digit at column %d", i+1))
			}
		}
	}
	rest := s[len(base):]
	if rest[0] == '.' {
		j := 1
		for j < len(rest) && isDigit(rest[j]) {
			j++
		}
		if j == 1 {
			return bad(`expected digits after "."`)
		}
		rest = rest[j:]
	}
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && isDigit(rest[1]) && isDigit(rest[2]) &&
		rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5]):
		if (rest[1]-'0')*10+rest[2]-'0' > 23 || rest[4] > '5' {
			return bad("offset out of range")
		}
	default:
		return bad(`expected "Z" or a numeric offset such as "+02:00" at the end`)
	}
	// RFC 3339 allows lower-case "t" and "z"; time.Parse does not.
	norm := []byte(s)
	norm[10] = 'T'
	if c := &norm[len(norm)-1]; *c == 'z' {
		*c = 'Z'
	}
	t, err := time.Parse(time.RFC3339Nano, string(norm))
	if err != nil {
		return bad("date or time out of range")
	}
	if t.IsZero() {
		return bad("the zero instant 0001-01-01T00:00:00Z is not allowed")
	}
	return t, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

// isEthereumAddress reports whether s is "0x" followed by 40 hexadecimal digits of any case.
func isEthereumAddress(s string) bool {
	if len(s) != 42 || s[:2] != "0x" {
		return false
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// isSolanaAddress reports whether s is 32 to 44 characters of the base58 alphabet.
func isSolanaAddress(s string) bool {
	if len(s) < 32 || len(s) > 44 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base58Alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// isCAIP2Reference reports whether s matches the CAIP-2 reference rule [-_a-zA-Z0-9]{1,32}.
func isCAIP2Reference(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !isAlpha(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// RFC 3986 character classes.
func isUnreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=", c) >= 0
}

// scanChars reports whether s consists only of pct-encoded triplets and bytes for which ok
// returns true.
func scanChars(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
			continue
		}
		if !ok(c) {
			return false
		}
	}
	return true
}

// isPchar reports whether c is a pchar other than pct-encoded:
// unreserved / sub-delims / ":" / "@".
func isPchar(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' }

// isPchars reports whether s matches *pchar.
func isPchars(s string) bool { return scanChars(s, isPchar) }

// isScheme reports whether s matches scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isAuthority reports whether s matches authority = [ userinfo "@" ] host [ ":" port ].
// The host may be empty only if allowEmptyHost.
func isAuthority(s string, allowEmptyHost bool) bool {
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		userinfo := s[:at]
		if !scanChars(userinfo, func(c byte) bool { return isUnreserved(c) || isSubDelim(c) || c == ':' }) {
			return false
		}
		s = s[at+1:]
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, s = s[:end+1], s[end+1:]
		if s != "" {
			if s[0] != ':' {
				return false
			}
			port = s[1:]
		}
		if !isIPLiteral(host) {
			return false
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		// reg-name = *( unreserved / pct-encoded / sub-delims ); it also covers IPv4address.
		if !scanChars(host, func(c byte) bool { return isUnreserved(c) || isSubDelim(c) }) {
			return false
		}
		if host == "" && !allowEmptyHost {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return true
}

// isIPLiteral reports whether s matches IP-literal = "[" ( IPv6address / IPvFuture ) "]".
func isIPLiteral(s string) bool {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	s = s[1 : len(s)-1]
	if s != "" && (s[0] == 'v' || s[0] == 'V') {
		// IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
		dot := strings.IndexByte(s, '.')
		if dot < 2 || dot == len(s)-1 {
			return false
		}
		for i := 1; i < dot; i++ {
			if !isHex(s[i]) {
				return false
			}
		}
		for i := dot + 1; i < len(s); i++ {
			if c := s[i]; !isUnreserved(c) && !isSubDelim(c) && c != ':' {
				return false
			}
		}
		return true
	}
	if strings.IndexByte(s, '%') >= 0 { // RFC 3986 has no zone identifiers
		return false
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// isURI reports whether s matches the RFC 3986 rule
//
//	URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
//
// and net/url also accepts it, with a scheme.
func isURI(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon < 0 || !isScheme(s[:colon]) {
		return false
	}
	rest := s[colon+1:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if !scanChars(rest[i+1:], func(c byte) bool { return isPchar(c) || c == '/' || c == '?' }) {
			return false
		}
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		if !scanChars(rest[i+1:], func(c byte) bool { return isPchar(c) || c == '/' || c == '?' }) {
			return false
		}
		rest = rest[:i]
	}
	// hier-part = "//" authority path-abempty / path-absolute / path-rootless / path-empty.
	// Any *( pchar / "/" ) not starting with "//" is one of the last three.
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		end := strings.IndexByte(after, '/')
		if end < 0 {
			end = len(after)
		}
		if !isAuthority(after[:end], true) {
			return false
		}
		rest = after[end:]
	}
	if !scanChars(rest, func(c byte) bool { return isPchar(c) || c == '/' }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}
