package message

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The examples of EIP-4361 ("Examples" section), verbatim.
const (
	eipExample = `example.com wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json`

	eipExamplePort = `example.com:3388 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json`

	eipExampleScheme = `https://example.com wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ExampleOrg Terms of Service: https://example.com/tos

URI: https://example.com/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json`

	// Scheme, no statement (so three LFs after the address), every optional field but resources.
	schemeNoStatement = `https://example.com wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2


URI: https://example.com/login
Version: 1
Chain ID: 8453
Nonce: abcDEF123456
Issued At: 2021-09-30T16:25:24.000Z
Expiration Time: 2021-10-01T16:25:24+02:00
Not Before: 2021-09-30t16:25:24.5z
Request ID: req-1:2@3%20`

	solanaExample = `example.com wants you to sign in with your Solana account:
7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv

Sign in to Example.

URI: https://example.com/login
Version: 1
Chain ID: 5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp
Nonce: oBbLoEldZs
Issued At: 2024-01-01T00:00:00Z
Expiration Time: 2024-01-01T00:10:00Z`

	// "Resources:" with no resource lines, and a present-but-empty request ID.
	emptyLists = `localhost:8080 wants you to sign in with your Ethereum account:
0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2


URI: http://localhost:8080/
Version: 1
Chain ID: 31337
Nonce: 00000000
Issued At: 2021-09-30T16:25:24-07:30
Request ID: 
Resources:`

	// UTF-8 statement, IPv6 domain with userinfo, URN URI.
	unicodeStatement = `https://user:pw@[2001:db8::1]:443 wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

Je me connecte à « Démo » — 日本語 OK

URI: urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66
Version: 1
Chain ID: 10
Nonce: Zz09Zz09Zz09
Issued At: 2021-09-30T16:25:24Z
Not Before: 2021-09-30T16:25:24Z
Resources:
- https://example.com/a?b=c&d=e#frag
- did:pkh:eip155:1:0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2`
)

// validCases are used by the tests and as fuzz seeds.
var validCases = map[string]string{
	"eip-example":        eipExample,
	"eip-example-port":   eipExamplePort,
	"eip-example-scheme": eipExampleScheme,
	"scheme-no-stmt":     schemeNoStatement,
	"solana":             solanaExample,
	"empty-lists":        emptyLists,
	"unicode-statement":  unicodeStatement,
}

// sameMessage reports the first difference between the exported fields of a and b, or "".
// Times are compared by instant and UTC offset; Resources distinguishes nil from empty.
func sameMessage(a, b *Message) string {
	sameTime := func(x, y time.Time) bool { return x.Equal(y) && sameOffset(x, y) }
	switch {
	case a.Scheme != b.Scheme:
		return fmt.Sprintf("Scheme %q != %q", a.Scheme, b.Scheme)
	case a.Domain != b.Domain:
		return fmt.Sprintf("Domain %q != %q", a.Domain, b.Domain)
	case a.Chain != b.Chain:
		return fmt.Sprintf("Chain %q != %q", a.Chain, b.Chain)
	case a.Address != b.Address:
		return fmt.Sprintf("Address %q != %q", a.Address, b.Address)
	case a.Statement != b.Statement:
		return fmt.Sprintf("Statement %q != %q", a.Statement, b.Statement)
	case a.URI != b.URI:
		return fmt.Sprintf("URI %q != %q", a.URI, b.URI)
	case a.Version != b.Version:
		return fmt.Sprintf("Version %q != %q", a.Version, b.Version)
	case a.ChainID != b.ChainID:
		return fmt.Sprintf("ChainID %q != %q", a.ChainID, b.ChainID)
	case a.Nonce != b.Nonce:
		return fmt.Sprintf("Nonce %q != %q", a.Nonce, b.Nonce)
	case !sameTime(a.IssuedAt, b.IssuedAt):
		return fmt.Sprintf("IssuedAt %v != %v", a.IssuedAt, b.IssuedAt)
	case !sameTime(a.ExpirationTime, b.ExpirationTime):
		return fmt.Sprintf("ExpirationTime %v != %v", a.ExpirationTime, b.ExpirationTime)
	case !sameTime(a.NotBefore, b.NotBefore):
		return fmt.Sprintf("NotBefore %v != %v", a.NotBefore, b.NotBefore)
	case a.RequestID != b.RequestID || a.HasRequestID != b.HasRequestID:
		return fmt.Sprintf("RequestID %q,%v != %q,%v", a.RequestID, a.HasRequestID, b.RequestID, b.HasRequestID)
	case (a.Resources == nil) != (b.Resources == nil) || !slices.Equal(a.Resources, b.Resources):
		return fmt.Sprintf("Resources %#v != %#v", a.Resources, b.Resources)
	}
	return ""
}

// exported returns a copy of m with only its exported fields, as if built in code.
func exported(m *Message) *Message {
	return &Message{
		Scheme: m.Scheme, Domain: m.Domain, Chain: m.Chain, Address: m.Address,
		Statement: m.Statement, URI: m.URI, Version: m.Version, ChainID: m.ChainID,
		Nonce: m.Nonce, IssuedAt: m.IssuedAt, ExpirationTime: m.ExpirationTime,
		NotBefore: m.NotBefore, RequestID: m.RequestID, HasRequestID: m.HasRequestID,
		Resources: slices.Clone(m.Resources),
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseEIPExample(t *testing.T) {
	m, err := Parse(eipExample)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Domain:    "example.com",
		Chain:     ChainEthereum,
		Address:   "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
		Statement: "I accept the ExampleOrg Terms of Service: https://example.com/tos",
		URI:       "https://example.com/login",
		Version:   "1",
		ChainID:   "1",
		Nonce:     "32891756",
		IssuedAt:  mustTime(t, "2021-09-30T16:25:24Z"),
		Resources: []string{
			"ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
			"https://example.com/my-web2-claim.json",
		},
	}
	if d := sameMessage(m, want); d != "" {
		t.Error(d)
	}
	if got := m.CAIP2(); got != "eip155:1" {
		t.Errorf("CAIP2() = %q", got)
	}
}

func TestParseVariants(t *testing.T) {
	m, err := Parse(eipExamplePort)
	if err != nil {
		t.Fatal(err)
	}
	if m.Domain != "example.com:3388" || m.Scheme != "" {
		t.Errorf("port example: Scheme %q Domain %q", m.Scheme, m.Domain)
	}

	m, err = Parse(eipExampleScheme)
	if err != nil {
		t.Fatal(err)
	}
	if m.Domain != "example.com" || m.Scheme != "https" {
		t.Errorf("scheme example: Scheme %q Domain %q", m.Scheme, m.Domain)
	}

	m, err = Parse(schemeNoStatement)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		Scheme:         "https",
		Domain:         "example.com",
		Chain:          ChainEthereum,
		Address:        "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
		URI:            "https://example.com/login",
		Version:        "1",
		ChainID:        "8453",
		Nonce:          "abcDEF123456",
		IssuedAt:       mustTime(t, "2021-09-30T16:25:24Z"),
		ExpirationTime: mustTime(t, "2021-10-01T16:25:24+02:00"),
		NotBefore:      mustTime(t, "2021-09-30T16:25:24.5Z"),
		RequestID:      "req-1:2@3%20",
		HasRequestID:   true,
	}
	if d := sameMessage(m, want); d != "" {
		t.Error(d)
	}
	if m.CAIP2() != "eip155:8453" {
		t.Errorf("CAIP2() = %q", m.CAIP2())
	}

	m, err = Parse(solanaExample)
	if err != nil {
		t.Fatal(err)
	}
	if m.Chain != ChainSolana || m.Address != "7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv" ||
		m.Statement != "Sign in to Example." || m.Resources != nil || m.HasRequestID {
		t.Errorf("solana: %+v", m)
	}
	if got, want := m.CAIP2(), "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"; got != want {
		t.Errorf("CAIP2() = %q, want %q", got, want)
	}

	m, err = Parse(emptyLists)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasRequestID || m.RequestID != "" || m.Resources == nil || len(m.Resources) != 0 {
		t.Errorf("empty lists: HasRequestID %v RequestID %q Resources %#v", m.HasRequestID, m.RequestID, m.Resources)
	}
	if _, off := m.IssuedAt.Zone(); off != -(7*3600 + 30*60) {
		t.Errorf("IssuedAt offset %d", off)
	}

	m, err = Parse(unicodeStatement)
	if err != nil {
		t.Fatal(err)
	}
	if m.Domain != "user:pw@[2001:db8::1]:443" || !strings.Contains(m.Statement, "日本語") || len(m.Resources) != 2 {
		t.Errorf("unicode: %+v", m)
	}
}

func TestRoundTrip(t *testing.T) {
	for name, s := range validCases {
		t.Run(name, func(t *testing.T) {
			m, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.String(); got != s {
				t.Fatalf("String() differs from the input:\n%s\n---\n%s", got, s)
			}
			// The same fields built in code render canonically and parse back equal.
			b := exported(m)
			m2, err := Parse(b.String())
			if err != nil {
				t.Fatalf("canonical rendering does not parse: %v\n%s", err, b.String())
			}
			if d := sameMessage(m2, m); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestBuiltMessage(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	m := &Message{
		Scheme:         "https",
		Domain:         "app.example.org",
		Chain:          ChainEthereum,
		Address:        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		Statement:      "Sign in to the gateway.",
		URI:            "https://app.example.org/siwe",
		Version:        "1",
		ChainID:        "8453",
		Nonce:          "k3Jd9sLq2mVx",
		IssuedAt:       time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC),
		ExpirationTime: time.Date(2025, 3, 4, 7, 6, 7, 0, cet),
		NotBefore:      time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		RequestID:      "8f1c",
		HasRequestID:   true,
		Resources:      []string{"https://app.example.org/api", "ipfs://bafy/x"},
	}
	const want = `https://app.example.org wants you to sign in with your Ethereum account:
0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed

Sign in to the gateway.

URI: https://app.example.org/siwe
Version: 1
Chain ID: 8453
Nonce: k3Jd9sLq2mVx
Issued At: 2025-03-04T05:06:07.89Z
Expiration Time: 2025-03-04T07:06:07+01:00
Not Before: 2025-03-04T05:06:07Z
Request ID: 8f1c
Resources:
- https://app.example.org/api
- ipfs://bafy/x`
	s := m.String()
	if s != want {
		t.Fatalf("String():\n%s\nwant:\n%s", s, want)
	}
	p, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if d := sameMessage(p, m); d != "" {
		t.Error(d)
	}

	// Minimal Solana message built in code: no statement, no optional fields, Version left empty.
	sol := &Message{
		Domain:   "example.com",
		Chain:    ChainSolana,
		Address:  "7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv",
		URI:      "https://example.com",
		ChainID:  "mainnet",
		Nonce:    "12345678",
		IssuedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	const wantSol = "example.com wants you to sign in with your Solana account:\n" +
		"7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv\n\n\n" +
		"URI: https://example.com\nVersion: 1\nChain ID: mainnet\nNonce: 12345678\n" +
		"Issued At: 2025-01-01T00:00:00Z"
	if got := sol.String(); got != wantSol {
		t.Fatalf("String():\n%q\nwant:\n%q", got, wantSol)
	}
	p, err = Parse(wantSol)
	if err != nil {
		t.Fatal(err)
	}
	sol.Version = "1"
	if d := sameMessage(p, sol); d != "" {
		t.Error(d)
	}
	if p.CAIP2() != "solana:mainnet" {
		t.Errorf("CAIP2() = %q", p.CAIP2())
	}
}

func TestStringAfterModification(t *testing.T) {
	m, err := Parse(schemeNoStatement)
	if err != nil {
		t.Fatal(err)
	}
	m.Nonce = "changed0"
	m.NotBefore = time.Time{}
	s := m.String()
	if !strings.Contains(s, "\nNonce: changed0\n") || strings.Contains(s, "Not Before") {
		t.Errorf("String() after modification does not reflect it:\n%s", s)
	}
	// Unchanged times keep their original spelling.
	if !strings.Contains(s, "\nIssued At: 2021-09-30T16:25:24.000Z\n") {
		t.Errorf("original time text lost:\n%s", s)
	}
	m.IssuedAt = m.IssuedAt.Add(time.Second)
	if !strings.Contains(m.String(), "\nIssued At: 2021-09-30T16:25:25Z\n") {
		t.Errorf("changed time not re-rendered:\n%s", m.String())
	}
	if _, err := Parse(m.String()); err != nil {
		t.Error(err)
	}
}

func TestCAIP2Unknown(t *testing.T) {
	if got := (&Message{Chain: "bitcoin", ChainID: "1"}).CAIP2(); got != "" {
		t.Errorf("CAIP2() = %q", got)
	}
}

func TestMalformed(t *testing.T) {
	base := eipExample
	noStmt := schemeNoStatement
	repl := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			panic("test bug: " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
	many := "\n- https://example.com/r" + strings.Repeat("\n- https://example.com/r", MaxResources)
	cases := []struct {
		name, in string
		line     int // expected line number in the error; 0 to skip the check
	}{
		{"empty", "", 1},
		{"missing blank line after address", repl(base, "Cc2\n\nI accept", "Cc2\nI accept"), 3},
		{"missing blank line after statement", repl(base, "/tos\n\nURI", "/tos\nURI"), 5},
		{"missing blank line without statement", repl(noStmt, "Cc2\n\n\nURI", "Cc2\n\nURI"), 5},
		{"extra blank line (empty statement)", repl(noStmt, "Cc2\n\n\nURI", "Cc2\n\n\n\nURI"), 5},
		{"two-line statement", repl(base, "/tos\n", "/tos\nmore text\n"), 5},
		{"statement containing LF", repl(base, "Terms of", "Terms\nof"), 5},
		{"wrong header text", repl(base, "sign in with your Ethereum", "sign in with your ethereum"), 1},
		{"other chain header", repl(base, "Ethereum account", "Bitcoin account"), 1},
		{"header without domain", repl(base, "example.com wants", " wants"), 1},
		{"header empty domain", repl(base, "example.com wants", "wants"), 1},
		{"header domain with path", repl(base, "example.com wants", "example.com/x wants"), 1},
		{"header domain with space", repl(base, "example.com wants", "exa mple.com wants"), 1},
		{"header bad scheme", repl(eipExampleScheme, "https://", "1https://"), 1},
		{"header empty scheme", repl(eipExampleScheme, "https://", "://"), 1},
		{"header bad port", repl(base, "example.com wants", "example.com:80a wants"), 1},
		{"header zone in IPv6", repl(base, "example.com wants", "[fe80::1%25en0] wants"), 1},
		{"Version: 2", repl(base, "Version: 1", "Version: 2"), 7},
		{"Version: 1.0", repl(base, "Version: 1", "Version: 1.0"), 7},
		{"non-numeric chain id", repl(base, "Chain ID: 1", "Chain ID: 0x1"), 8},
		{"empty chain id", repl(base, "Chain ID: 1", "Chain ID: "), 8},
		{"7-char nonce", repl(base, "Nonce: 32891756", "Nonce: 3289175"), 9},
		{"nonce with dash", repl(base, "Nonce: 32891756", "Nonce: 3289-1756"), 9},
		{"bad time", repl(base, "2021-09-30T16:25:24Z", "2021-09-30 16:25:24Z"), 10},
		{"time without offset", repl(base, "2021-09-30T16:25:24Z", "2021-09-30T16:25:24"), 10},
		{"time day out of range", repl(base, "2021-09-30T", "2021-09-31T"), 10},
		{"time comma fraction", repl(base, "16:25:24Z", "16:25:24,5Z"), 10},
		{"time empty fraction", repl(base, "16:25:24Z", "16:25:24.Z"), 10},
		{"time offset 24h", repl(base, "16:25:24Z", "16:25:24+24:00"), 10},
		{"time offset minutes", repl(base, "16:25:24Z", "16:25:24+01:60"), 10},
		{"time leap second", repl(base, "16:25:24Z", "23:59:60Z"), 10},
		{"time zero instant", repl(base, "2021-09-30T16:25:24Z", "0001-01-01T00:00:00Z"), 10},
		{"time short year", repl(base, "2021-09-30T", "221-09-30T"), 10},
		{"bad expiration time", repl(noStmt, "2021-10-01T16:25:24+02:00", "tomorrow"), 10},
		{"out-of-order fields", repl(noStmt, "Expiration Time: 2021-10-01T16:25:24+02:00\nNot Before: 2021-09-30t16:25:24.5z",
			"Not Before: 2021-09-30t16:25:24.5z\nExpiration Time: 2021-10-01T16:25:24+02:00"), 11},
		{"out-of-order required fields", repl(base, "Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1"), 7},
		{"duplicated field", repl(noStmt, "Not Before:", "Not Before: 2021-09-30T16:25:24Z\nNot Before:"), 12},
		{"duplicated required field", repl(base, "Nonce: 32891756\n", "Nonce: 32891756\nNonce: 32891756\n"), 10},
		{"duplicated resources header", repl(base, "Resources:\n", "Resources:\nResources:\n"), 12},
		{"trailing newline", base + "\n", 14},
		{"trailing newline after issued at", repl(base, "\nResources:", "\n"), 11},
		{"leading newline", "\n" + base, 1},
		{"CRLF", strings.ReplaceAll(base, "\n", "\r\n"), 1},
		{"CR in statement", repl(base, "Terms of", "Terms\rof"), 4},
		{"unknown field", repl(noStmt, "Request ID:", "Session ID: x\nRequest ID:"), 12},
		{"unknown field before optional", repl(base, "Resources:", "Foo: bar\nResources:"), 11},
		{"missing required field", repl(base, "Nonce: 32891756\n", ""), 9},
		{"truncated", base[:strings.Index(base, "\nVersion")], 7},
		{"address of 39 hex digits", repl(base, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc"), 2},
		{"address of 41 hex digits", repl(base, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc21"), 2},
		{"address with non-hex", repl(base, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xG02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"), 2},
		{"address with 0X", repl(base, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0XC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"), 2},
		{"resources line without dash", repl(base, "- https://example.com/my-web2", "https://example.com/my-web2"), 13},
		{"resources line without space", repl(base, "- https://example.com/my-web2", "-https://example.com/my-web2"), 13},
		{"resource not a URI", repl(base, "- https://example.com/my-web2-claim.json", "- my-web2-claim.json"), 13},
		{"resource with space", repl(base, "- https://example.com/my-web2-claim.json", "- https://example.com/my web2"), 13},
		{"resources header with value", repl(base, "Resources:", "Resources: x"), 11},
		{"field after resources", base + "\nRequest ID: x", 14},
		{"URI relative", repl(base, "URI: https://example.com/login", "URI: /login"), 6},
		{"URI with space", repl(base, "URI: https://example.com/login", "URI: https://example.com/log in"), 6},
		{"URI bad escape", repl(base, "URI: https://example.com/login", "URI: https://example.com/%zz"), 6},
		{"URI missing space", repl(base, "URI: https", "URI:https"), 6},
		{"request id with slash", repl(noStmt, "Request ID: req-1:2@3%20", "Request ID: a/b"), 12},
		{"request id bad escape", repl(noStmt, "Request ID: req-1:2@3%20", "Request ID: a%2"), 12},
		{"request id without space", repl(noStmt, "Request ID: req-1:2@3%20", "Request ID:"), 12},
		{"over-long input", repl(base, "Terms of", "Terms "+strings.Repeat("x", MaxLength)+" of"), 0},
		{"too many resources", base + many, 12 + MaxResources},
		{"non-ASCII outside statement", repl(base, "example.com/login", "exämple.com/login"), 6},
		{"non-ASCII domain", repl(base, "example.com wants", "exämple.com wants"), 1},
		{"tab in field", repl(base, "Nonce: ", "Nonce:\t"), 9},
		{"control char in statement", repl(base, "Terms of", "Terms\x00of"), 4},
		{"tab in statement", repl(base, "Terms of", "Terms\tof"), 4},
		{"DEL in statement", repl(base, "Terms of", "Terms\x7fof"), 4},
		{"invalid UTF-8 in statement", repl(base, "Terms of", "Terms\xffof"), 4},
		{"bidi override in statement", repl(base, "Terms of", "Terms\u202eof"), 4},
		{"line separator in statement", repl(base, "Terms of", "Terms\u2028of"), 4},
		{"Solana header with EVM address", repl(base, "Ethereum account", "Solana account"), 2},
		{"EVM header with Solana address", repl(solanaExample, "Solana account", "Ethereum account"), 2},
		{"Solana address too short", repl(solanaExample, "7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv", "7S3P4HxJpyyigGzodYwHtCxZyUQe9Ji"), 2},
		{"Solana address with 0", repl(solanaExample, "7S3P4HxJ", "0S3P4HxJ"), 2},
		{"Solana chain id with colon", repl(solanaExample, "Chain ID: 5eykt4", "Chain ID: solana:5eykt4"), 8},
		{"Solana chain id too long", repl(solanaExample, "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpX"), 8},
	}
	lineRE := regexp.MustCompile(`line (\d+):`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.in)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if m != nil {
				t.Errorf("Parse returned a message with its error")
			}
			if c.line != 0 {
				want := fmt.Sprintf("line %d:", c.line)
				if got := lineRE.FindString(err.Error()); got != want {
					t.Errorf("error %q: want %q", err, want)
				}
			}
		})
	}
}

// TestLimitsBoundary checks that inputs exactly at the limits are accepted.
func TestLimitsBoundary(t *testing.T) {
	var b strings.Builder
	b.WriteString(eipExample)
	for range MaxResources - 2 {
		b.WriteString("\n- https://example.com/r")
	}
	m, err := Parse(b.String())
	if err != nil {
		t.Fatalf("%d resources: %v", MaxResources, err)
	}
	if len(m.Resources) != MaxResources {
		t.Fatalf("got %d resources", len(m.Resources))
	}

	pad := MaxLength - len(eipExample)
	s := strings.Replace(eipExample, "Terms of", "Terms "+strings.Repeat("x", pad)+"of", 1)
	if len(s) != MaxLength {
		t.Fatalf("test bug: len %d", len(s))
	}
	if _, err := Parse(s); err != nil {
		t.Fatalf("%d bytes: %v", len(s), err)
	}
	if _, err := Parse(s[:len(s)-1] + "nx"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d bytes accepted: %v", len(s)+1, err)
	}
}

func TestAuthorityAndURIGrammar(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"example.com", true},
		{"example.com:", true}, // port = *DIGIT
		{"user@example.com", true},
		{"us%41er:pw@example.com:1", true},
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"[v1.fe]", true},
		{"[v.fe]", false},
		{"[1.2.3.4]", false},
		{"[::1", false},
		{"[::1]x", false},
		{"exa%4", false},
		{"a@b@c", false},
		{"", false},
		{":80", false},
	} {
		if got := isAuthority(c.s, false); got != c.want {
			t.Errorf("isAuthority(%q) = %v", c.s, got)
		}
	}
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"https://example.com", true},
		{"file:///etc/passwd", true},
		{"mailto:a@example.com", true},
		{"urn:isbn:0451450523", true},
		{"https://example.com/?q=a/b?c#f/r?x", true},
		{"https://example.com/#a#b", false},
		{"https://example.com/[x]", false},
		{"https://exa mple.com", false},
		{"example.com", false},
		{"1http://x", false},
		{":x", false},
		{"https://example.com:80x/", false},
	} {
		if got := isURI(c.s); got != c.want {
			t.Errorf("isURI(%q) = %v", c.s, got)
		}
	}
}
