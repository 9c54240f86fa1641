package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustResolver(t testing.TB, trusted ...string) *Resolver {
	t.Helper()
	r, err := NewResolver(trusted)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientIP(t *testing.T) {
	none := mustResolver(t)
	lb := mustResolver(t, "10.0.0.0/8")
	two := mustResolver(t, "10.0.0.0/8", "192.0.2.10")
	v6 := mustResolver(t, "2001:db8:ffff::/48, 10.0.0.0/8")

	tests := []struct {
		name   string
		r      *Resolver
		remote string
		xff    []string
		want   string // "" means the zero netip.Addr
	}{
		// No proxies configured: the peer, always.
		{"nil resolver", nil, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"zero resolver", &Resolver{}, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"no trusted proxies", none, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"no trusted proxies, trusted-looking peer", none, "10.0.0.1:5000", []string{"198.51.100.1"}, "10.0.0.1"},
		{"no header", lb, "203.0.113.7:5000", nil, "203.0.113.7"},

		// Spoofing from an untrusted peer.
		{"spoofed XFF, untrusted peer", lb, "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"spoofed trusted address, untrusted peer", lb, "203.0.113.7:5000", []string{"10.0.0.5"}, "203.0.113.7"},

		// One trusted hop.
		{"one hop", lb, "10.0.0.1:5000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"one hop, spoofed left", lb, "10.0.0.1:5000", []string{"198.51.100.66, 203.0.113.7"}, "203.0.113.7"},
		{"one hop, spaces", lb, "10.0.0.1:5000", []string{" 198.51.100.66 ,\t203.0.113.7 "}, "203.0.113.7"},
		{"trusted peer, no header", lb, "10.0.0.1:5000", nil, "10.0.0.1"},
		{"trusted peer, empty header", lb, "10.0.0.1:5000", []string{""}, "10.0.0.1"},

		// Two trusted hops.
		{"two hops", two, "10.0.0.1:5000", []string{"203.0.113.7, 192.0.2.10"}, "203.0.113.7"},
		{"two hops, spoofed left", two, "10.0.0.1:5000", []string{"1.1.1.1, 203.0.113.7, 192.0.2.10"}, "203.0.113.7"},
		{"two hops, spoofed trusted on the left", two, "10.0.0.1:5000", []string{"192.0.2.10, 203.0.113.7, 192.0.2.10"}, "203.0.113.7"},
		{"second hop untrusted", lb, "10.0.0.1:5000", []string{"203.0.113.7, 192.0.2.10"}, "192.0.2.10"},

		// Everything trusted: the left-most.
		{"all trusted", two, "10.0.0.1:5000", []string{"10.9.9.9, 192.0.2.10, 10.0.0.2"}, "10.9.9.9"},

		// Garbage: the last address vouched for.
		{"garbage right-most", lb, "10.0.0.1:5000", []string{"203.0.113.7, garbage"}, "10.0.0.1"},
		{"garbage behind trusted hop", lb, "10.0.0.1:5000", []string{"203.0.113.7, unknown, 10.0.0.2"}, "10.0.0.2"},
		{"garbage left of client", lb, "10.0.0.1:5000", []string{"garbage, 203.0.113.7"}, "203.0.113.7"},
		{"empty entry", lb, "10.0.0.1:5000", []string{"203.0.113.7,,10.0.0.2"}, "10.0.0.2"},
		{"trailing comma", lb, "10.0.0.1:5000", []string{"203.0.113.7,"}, "10.0.0.1"},
		{"zone", lb, "10.0.0.1:5000", []string{"fe80::1%eth0"}, "10.0.0.1"},
		{"host name", lb, "10.0.0.1:5000", []string{"client.example"}, "10.0.0.1"},
		{"obfuscated node (RFC 7239 style)", lb, "10.0.0.1:5000", []string{"_hidden"}, "10.0.0.1"},
		{"leading zeros", lb, "10.0.0.1:5000", []string{"203.000.113.7"}, "10.0.0.1"},
		{"bracketed IPv4", lb, "10.0.0.1:5000", []string{"[203.0.113.7]"}, "10.0.0.1"},
		{"bare IPv6 with port-like suffix is IPv6", lb, "10.0.0.1:5000", []string{"2001:db8::7:80"}, "2001:db8::7:80"},

		// Forms with ports and brackets.
		{"IPv4 with port", lb, "10.0.0.1:5000", []string{"203.0.113.7:41234"}, "203.0.113.7"},
		{"IPv6 in brackets", lb, "10.0.0.1:5000", []string{"[2001:db8::7]"}, "2001:db8::7"},
		{"IPv6 in brackets with port", lb, "10.0.0.1:5000", []string{"[2001:db8::7]:41234"}, "2001:db8::7"},
		{"bad port", lb, "10.0.0.1:5000", []string{"203.0.113.7:99999"}, "10.0.0.1"},

		// IPv6.
		{"IPv6 peer untrusted", v6, "[2001:db8::7]:5000", []string{"203.0.113.7"}, "2001:db8::7"},
		{"IPv6 trusted peer", v6, "[2001:db8:ffff::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"IPv6 chain", v6, "[2001:db8:ffff::1]:5000", []string{"2001:db8::7, 2001:db8:ffff:1::2, 10.1.1.1"}, "2001:db8::7"},
		{"IPv6 canonicalised", v6, "[2001:db8:ffff::1]:5000", []string{"2001:DB8:0:0:0:0:0:7"}, "2001:db8::7"},
		{"mapped peer trusted as IPv4", lb, "[::ffff:10.0.0.1]:5000", []string{"203.0.113.7"}, "203.0.113.7"},
		{"mapped entry unmapped", lb, "10.0.0.1:5000", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"mapped trusted entry skipped", lb, "10.0.0.1:5000", []string{"203.0.113.7, ::ffff:10.0.0.2"}, "203.0.113.7"},
		{"zoned peer never trusted", mustResolver(t, "fe80::/10"), "[fe80::1%eth0]:5000", []string{"203.0.113.7"}, "fe80::1%eth0"},

		// Several header lines are one list.
		{"two lines", lb, "10.0.0.1:5000", []string{"198.51.100.66", "203.0.113.7"}, "203.0.113.7"},
		{"two lines, trusted hop in the second", lb, "10.0.0.1:5000", []string{"198.51.100.66, 203.0.113.7", "10.0.0.2"}, "203.0.113.7"},
		{"two lines, all trusted", lb, "10.0.0.1:5000", []string{"10.0.0.3", "10.0.0.2"}, "10.0.0.3"},
		{"two lines, garbage in the first", lb, "10.0.0.1:5000", []string{"garbage", "10.0.0.2"}, "10.0.0.2"},

		// The peer.
		{"bare peer", lb, "203.0.113.7", nil, "203.0.113.7"},
		{"bad peer", lb, "not an address", []string{"203.0.113.7"}, ""},
		{"empty peer", lb, "", []string{"203.0.113.7"}, ""},
		{"unix socket peer", lb, "@", []string{"203.0.113.7"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.r.ClientIP(tt.remote, tt.xff)
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("ClientIP(%q, %q) = %v, want %v", tt.remote, tt.xff, got, want)
			}
		})
	}
}

func TestMaxHops(t *testing.T) {
	r := mustResolver(t, "10.0.0.0/8")
	hops := make([]string, 0, 40)
	hops = append(hops, "203.0.113.7")
	for i := range 39 {
		hops = append(hops, fmt.Sprintf("10.0.0.%d", i+1))
	}
	// 39 trusted entries: the walk stops after 32 of them, at the 32nd from
	// the right, and never reaches the client.
	got := r.ClientIP("10.0.0.100:1", []string{strings.Join(hops, ", ")})
	if want := netip.MustParseAddr("10.0.0.8"); got != want {
		t.Errorf("ClientIP with 39 trusted hops = %v, want %v", got, want)
	}
	// 31 trusted entries: the client is the 32nd hop examined.
	got = r.ClientIP("10.0.0.100:1", []string{strings.Join(hops[:32], ", ")})
	if want := netip.MustParseAddr("203.0.113.7"); got != want {
		t.Errorf("ClientIP with 31 trusted hops = %v, want %v", got, want)
	}
	// The cap counts entries across header lines.
	got = r.ClientIP("10.0.0.100:1", hops)
	if want := netip.MustParseAddr("10.0.0.8"); got != want {
		t.Errorf("ClientIP with 39 trusted lines = %v, want %v", got, want)
	}
}

func TestWithHTTPRequest(t *testing.T) {
	r := mustResolver(t, "192.0.2.0/24")
	req := httptest.NewRequest(http.MethodGet, "/", nil) // RemoteAddr 192.0.2.1:1234
	req.Header.Add("X-Forwarded-For", "198.51.100.66")
	req.Header.Add("X-Forwarded-For", "203.0.113.7, 192.0.2.200")
	got := r.ClientIP(req.RemoteAddr, req.Header.Values("X-Forwarded-For"))
	if want := netip.MustParseAddr("203.0.113.7"); got != want {
		t.Errorf("ClientIP = %v, want %v", got, want)
	}
}

func TestNewResolver(t *testing.T) {
	tests := []struct {
		trusted []string
		wantErr string
		trusts  []string
		not     []string
	}{
		{nil, "", nil, []string{"10.0.0.1"}},
		{[]string{"10.0.0.0/8", "192.0.2.10"}, "", []string{"10.1.2.3", "192.0.2.10", "::ffff:10.0.0.1"}, []string{"192.0.2.11", "11.0.0.1"}},
		{[]string{"10.0.0.0/8, 2001:db8::/32"}, "", []string{"10.1.2.3", "2001:db8::1"}, []string{"2001:db9::1"}},
		{[]string{"::ffff:10.0.0.0/104"}, "", []string{"10.1.2.3"}, []string{"11.0.0.0"}},
		{[]string{"10.0.0.1/8"}, "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?", nil, nil},
		{[]string{""}, "empty entry", nil, nil},
		{[]string{"10.0.0.1,"}, "empty entry", nil, nil},
		{[]string{"fe80::1%eth0"}, "has an IPv6 zone", nil, nil},
		{[]string{"proxy.internal"}, `"proxy.internal" is not an IP address`, nil, nil},
		{[]string{strings.Repeat("1", 65)}, "the limit is 64", nil, nil},
		{[]string{strings.Repeat("10.0.0.1,", 100) + "10.0.0.1"}, "more than 100 entries", nil, nil},
	}
	for _, tt := range tests {
		r, err := NewResolver(tt.trusted)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
				t.Errorf("NewResolver(%q) error = %v, want %q", tt.trusted, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewResolver(%q) error: %v", tt.trusted, err)
			continue
		}
		for _, s := range tt.trusts {
			if a := netip.MustParseAddr(s).Unmap(); !r.trusts(a) {
				t.Errorf("NewResolver(%q) does not trust %s", tt.trusted, s)
			}
		}
		for _, s := range tt.not {
			if r.trusts(netip.MustParseAddr(s)) {
				t.Errorf("NewResolver(%q) trusts %s", tt.trusted, s)
			}
		}
	}
}

func TestClientIPDoesNotAllocate(t *testing.T) {
	r := mustResolver(t, "10.0.0.0/8")
	xff := []string{"198.51.100.66, 203.0.113.7", "[2001:db8::1]:80, 10.0.0.2"}
	if n := testing.AllocsPerRun(100, func() { _ = r.ClientIP("10.0.0.1:5000", xff) }); n != 0 {
		t.Errorf("ClientIP allocates %v times per call, want 0", n)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:5000", "198.51.100.66, 203.0.113.7", "10.0.0.2")
	f.Add("203.0.113.7:5000", "10.0.0.5", "")
	f.Add("[2001:db8:ffff::1]:443", "2001:db8::7, [2001:db8::8]:80", "2001:db8:ffff::2")
	f.Add("10.0.0.1:5000", "garbage, 203.0.113.7:41234", "::ffff:10.0.0.3")
	f.Add("[::ffff:10.0.0.1]:1", ",,,", " ")
	f.Add("[fe80::1%eth0]:80", "fe80::2%eth0", "")
	f.Add("bad", "203.0.113.7", "")
	none := mustResolver(f)
	some := mustResolver(f, "10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.10")
	f.Fuzz(func(t *testing.T, remote, line1, line2 string) {
		xff := []string{line1, line2}
		peer, peerOK := parsePeer(remote)

		// With no trusted proxies, always the peer.
		for _, r := range []*Resolver{nil, {}, none} {
			if got := r.ClientIP(remote, xff); got != peer {
				t.Fatalf("untrusting resolver: ClientIP(%q, %q) = %v, want peer %v", remote, xff, got, peer)
			}
		}

		got := some.ClientIP(remote, xff)
		if !peerOK {
			if got.IsValid() {
				t.Fatalf("ClientIP(%q, ...) = %v for an unparsable peer", remote, got)
			}
			return
		}
		if !got.IsValid() || got.Is4In6() {
			t.Fatalf("ClientIP(%q, %q) = %v: invalid or mapped", remote, xff, got)
		}
		if got == peer {
			return
		}
		if !some.trusts(peer) {
			t.Fatalf("ClientIP(%q, %q) = %v, but the untrusted peer %v must win", remote, xff, got, peer)
		}
		// Otherwise the result is one of the X-Forwarded-For entries.
		found := false
		for _, line := range xff {
			for e := range strings.SplitSeq(line, ",") {
				e = strings.Trim(e, " \t")
				if a, ok := parseHop(e); ok && a == got {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("ClientIP(%q, %q) = %v, which is neither the peer nor in X-Forwarded-For", remote, xff, got)
		}
	})
}

func BenchmarkClientIP(b *testing.B) {
	r := mustResolver(b, "10.0.0.0/8", "192.0.2.0/24")
	xff := []string{"198.51.100.66, 203.0.113.7, 192.0.2.200"}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.ClientIP("10.0.0.1:5000", xff)
	}
}

func TestTrustsPeer(t *testing.T) {
	r, err := NewResolver([]string{"10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	for peer, want := range map[string]bool{
		"10.1.2.3:5555":        true,
		"[2001:db8::1]:443":    true,
		"[::ffff:10.0.0.1]:80": true,
		"192.0.2.1:5555":       false,
		"garbage":              false,
		"[2001:db8::2]:443":    false,
	} {
		if got := r.TrustsPeer(peer); got != want {
			t.Errorf("TrustsPeer(%q) = %v, want %v", peer, got, want)
		}
	}
	var none *Resolver
	if none.TrustsPeer("10.1.2.3:5555") {
		t.Error("nil Resolver trusts a peer")
	}
}

func TestTrustsAddr(t *testing.T) {
	r, err := NewResolver([]string{"10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.0.0.1": true, "2001:db8::1": true,
		"192.0.2.1": false, "2001:db8::2": false, "fe80::1%eth0": false,
	} {
		if got := r.TrustsAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("TrustsAddr(%s) = %v, want %v", addr, got, want)
		}
	}
	var none *Resolver
	if none.TrustsAddr(netip.MustParseAddr("10.1.2.3")) {
		t.Error("nil Resolver trusts an address")
	}
}
