package ipallow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []string // Strings() of the result
	}{
		{"nil", nil, []string{}},
		{"empty slice", []string{}, []string{}},
		{"single IPv4", []string{"203.0.113.50"}, []string{"203.0.113.50"}},
		{"IPv4 range", []string{"203.0.113.0/24"}, []string{"203.0.113.0/24"}},
		{"multiple elements", []string{"203.0.113.50", "198.51.100.0/24"}, []string{"203.0.113.50", "198.51.100.0/24"}},
		{"comma-separated element", []string{"203.0.113.50, 198.51.100.0/24"}, []string{"203.0.113.50", "198.51.100.0/24"}},
		{"mixed", []string{"203.0.113.50,198.51.100.0/24", " 2001:db8::/32 "}, []string{"203.0.113.50", "198.51.100.0/24", "2001:db8::/32"}},
		{"spaces and newlines trimmed", []string{"\t203.0.113.50 ,\n 198.51.100.7\n"}, []string{"203.0.113.50", "198.51.100.7"}},
		{"single IPv6", []string{"2001:db8::1"}, []string{"2001:db8::1"}},
		{"IPv6 canonicalised", []string{"2001:0DB8:0000:0000:0000:0000:0000:0001"}, []string{"2001:db8::1"}},
		{"IPv6 range", []string{"2001:db8:abcd::/48"}, []string{"2001:db8:abcd::/48"}},
		{"full-length IPv4 prefix shown bare", []string{"203.0.113.50/32"}, []string{"203.0.113.50"}},
		{"full-length IPv6 prefix shown bare", []string{"2001:db8::1/128"}, []string{"2001:db8::1"}},
		{"mapped address unmapped", []string{"::ffff:203.0.113.50"}, []string{"203.0.113.50"}},
		{"mapped prefix unmapped", []string{"::ffff:203.0.113.0/120"}, []string{"203.0.113.0/24"}},
		{"mapped /128 unmapped", []string{"::ffff:203.0.113.50/128"}, []string{"203.0.113.50"}},
		{"mapped /96 is all IPv4", []string{"::ffff:0.0.0.0/96"}, []string{"0.0.0.0/0"}},
		{"duplicates removed", []string{"203.0.113.50", "203.0.113.50/32, ::ffff:203.0.113.50"}, []string{"203.0.113.50"}},
		{"duplicate prefixes removed, first kept", []string{"198.51.100.0/24, 203.0.113.0/24, 198.51.100.0/24"}, []string{"198.51.100.0/24", "203.0.113.0/24"}},
		{"overlapping prefixes kept", []string{"203.0.113.0/24, 203.0.113.50"}, []string{"203.0.113.0/24", "203.0.113.50"}},
		{"everything", []string{"0.0.0.0/0", "::/0"}, []string{"0.0.0.0/0", "::/0"}},
		{"exactly MaxEntries", hosts(MaxEntries), hosts(MaxEntries)},
		{"MaxEntries with duplicates", append(hosts(MaxEntries-1), "198.51.100.0"), hosts(MaxEntries - 1)},
		{"longest entry", []string{"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128"}, []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse(tt.entries)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.entries, err)
			}
			if got := l.Strings(); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q).Strings() = %q, want %q", tt.entries, got, tt.want)
			}
			if l.Len() != len(tt.want) || l.IsEmpty() != (len(tt.want) == 0) {
				t.Errorf("Len() = %d, IsEmpty() = %v for %q", l.Len(), l.IsEmpty(), tt.want)
			}
		})
	}
}

// hosts returns n distinct single-address entries.
func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("198.51.100.%d", i)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("1", MaxEntryLength+1)
	tests := []struct {
		name    string
		entries []string
		want    string // substring of the error
	}{
		{"empty element", []string{""}, "empty entry"},
		{"blank element", []string{"  "}, "empty entry"},
		{"empty between commas", []string{"203.0.113.1,,203.0.113.2"}, "empty entry"},
		{"trailing comma", []string{"203.0.113.1,"}, "empty entry"},
		{"leading comma", []string{",203.0.113.1"}, "empty entry"},
		{"host name", []string{"example.com"}, `"example.com" is not an IP address or CIDR prefix`},
		{"port", []string{"203.0.113.1:80"}, `"203.0.113.1:80" is not`},
		{"bracketed IPv6", []string{"[2001:db8::1]"}, `"[2001:db8::1]" is not`},
		{"leading zeros", []string{"203.000.113.1"}, `"203.000.113.1" is not`},
		{"short IPv4", []string{"10.1"}, `"10.1" is not`},
		{"prefix too long", []string{"203.0.113.0/33"}, `"203.0.113.0/33" is not`},
		{"IPv6 prefix too long", []string{"2001:db8::/129"}, `"2001:db8::/129" is not`},
		{"negative prefix", []string{"203.0.113.0/-1"}, `is not`},
		{"prefix with leading zero", []string{"203.0.113.0/024"}, `is not`},
		{"bare slash", []string{"/24"}, `is not`},
		{"zone", []string{"fe80::1%eth0"}, `"fe80::1%eth0" has an IPv6 zone`},
		{"zone in prefix", []string{"fe80::1%eth0/64"}, `has an IPv6 zone`},
		{"host bits IPv4", []string{"203.0.113.5/24"}, "203.0.113.5/24 has host bits set; did you mean 203.0.113.0/24?"},
		{"host bits IPv6", []string{"2001:db8::1/32"}, "2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"},
		{"host bits mapped", []string{"::ffff:203.0.113.5/120"}, "::ffff:203.0.113.5/120 has host bits set; did you mean ::ffff:203.0.113.0/120?"},
		{"host bits in second entry", []string{"203.0.113.0/24, 10.1.2.3/8"}, "10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8?"},
		{"too many entries", hosts(MaxEntries + 1), "more than 100 entries"},
		{"too many entries, comma-separated", []string{strings.Join(hosts(MaxEntries+1), ",")}, "more than 100 entries"},
		{"too many duplicates", slices.Repeat([]string{"203.0.113.1"}, MaxEntries+1), "more than 100 entries"},
		{"entry too long", []string{long}, fmt.Sprintf("is %d bytes long; the limit is 64", MaxEntryLength+1)},
		{"garbage after good entries", []string{"203.0.113.1", "nope"}, `"nope" is not`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse(tt.entries)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error containing %q", tt.entries, l.Strings(), tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.entries, err, tt.want)
			}
			if !l.IsEmpty() {
				t.Errorf("Parse returned a non-empty list with an error")
			}
		})
	}
}

func TestParseString(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", []string{}, false},
		{"   ", []string{}, false},
		{"\n", []string{}, false},
		{"203.0.113.50", []string{"203.0.113.50"}, false},
		{"203.0.113.50, 198.51.100.0/24", []string{"203.0.113.50", "198.51.100.0/24"}, false},
		{"203.0.113.50,2001:db8::/32", []string{"203.0.113.50", "2001:db8::/32"}, false},
		{" , ", nil, true},
		{",", nil, true},
		{"203.0.113.50;198.51.100.1", nil, true},
		{"203.0.113.50 198.51.100.1", nil, true},
	}
	for _, tt := range tests {
		l, err := ParseString(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseString(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && !slices.Equal(l.Strings(), tt.want) {
			t.Errorf("ParseString(%q) = %q, want %q", tt.in, l.Strings(), tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	list := mustParse(t, "203.0.113.50, 198.51.100.0/24, 2001:db8::/32, ::ffff:192.0.2.0/120")
	tests := []struct {
		list List
		addr string // "" means the zero netip.Addr
		want bool
	}{
		{List{}, "203.0.113.50", true},
		{List{}, "2001:db8::1", true},
		{List{}, "", true},
		{list, "203.0.113.50", true},
		{list, "203.0.113.51", false},
		{list, "203.0.113.49", false},
		{list, "198.51.100.0", true},
		{list, "198.51.100.255", true},
		{list, "198.51.101.0", false},
		{list, "192.0.2.7", true}, // from the mapped entry
		{list, "::ffff:203.0.113.50", true},
		{list, "::ffff:198.51.100.9", true},
		{list, "::ffff:203.0.113.51", false},
		{list, "2001:db8::1", true},
		{list, "2001:db8:ffff::1", true},
		{list, "2001:db9::1", false},
		{list, "::1", false},
		{list, "127.0.0.1", false},
		{list, "", false},
		{mustParse(t, "fe80::/10"), "fe80::1%eth0", false},
		{mustParse(t, "fe80::/10"), "fe80::1", true},
		{mustParse(t, "::/0"), "203.0.113.50", false},
		{mustParse(t, "::/0"), "::ffff:203.0.113.50", false},
		{mustParse(t, "::/0"), "2001:db8::1", true},
		{mustParse(t, "0.0.0.0/0"), "203.0.113.50", true},
		{mustParse(t, "0.0.0.0/0"), "::ffff:203.0.113.50", true},
		{mustParse(t, "0.0.0.0/0"), "2001:db8::1", false},
	}
	for _, tt := range tests {
		var a netip.Addr
		if tt.addr != "" {
			a = netip.MustParseAddr(tt.addr)
		}
		if got := tt.list.Contains(a); got != tt.want {
			t.Errorf("%v.Contains(%v) = %v, want %v", tt.list.Strings(), a, got, tt.want)
		}
	}
}

func TestContainsDoesNotAllocate(t *testing.T) {
	l := mustParse(t, strings.Join(hosts(MaxEntries), ","))
	a := netip.MustParseAddr("::ffff:203.0.113.50")
	if n := testing.AllocsPerRun(100, func() { _ = l.Contains(a) }); n != 0 {
		t.Errorf("Contains allocates %v times per call, want 0", n)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{`null`, []string{}, ""},
		{`[]`, []string{}, ""},
		{`""`, []string{}, ""},
		{`"203.0.113.50, 198.51.100.0/24"`, []string{"203.0.113.50", "198.51.100.0/24"}, ""},
		{`["203.0.113.50", "198.51.100.0/24"]`, []string{"203.0.113.50", "198.51.100.0/24"}, ""},
		{`["203.0.113.50, 2001:db8::/32", "::ffff:198.51.100.1"]`, []string{"203.0.113.50", "2001:db8::/32", "198.51.100.1"}, ""},
		{`[""]`, nil, "empty entry"},
		{`["203.0.113.5/24"]`, nil, "did you mean 203.0.113.0/24?"},
		{`"203.0.113.5/24"`, nil, "did you mean 203.0.113.0/24?"},
		{`[1]`, nil, "element 0 of the JSON array is not a string"},
		{`["203.0.113.1", null]`, nil, "element 1 of the JSON array is not a string"},
		{`{"ip":"203.0.113.1"}`, nil, "want a JSON array of strings or a comma-separated string"},
		{`42`, nil, "want a JSON array"},
		{`true`, nil, "want a JSON array"},
		{`["203.0.113.1"`, nil, "unexpected end of JSON input"}, // refused by encoding/json itself
	}
	for _, tt := range tests {
		l := mustParse(t, "192.0.2.1") // must be replaced on success, kept on error
		err := json.Unmarshal([]byte(tt.in), &l)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Unmarshal(%s) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) && !strings.HasPrefix(tt.in, `["203.0.113.1"`) {
				t.Errorf("Unmarshal(%s) error %v does not wrap ErrInvalid", tt.in, err)
			}
			if !slices.Equal(l.Strings(), []string{"192.0.2.1"}) {
				t.Errorf("Unmarshal(%s) changed the list on error to %q", tt.in, l.Strings())
			}
			continue
		}
		if err != nil {
			t.Errorf("Unmarshal(%s) error: %v", tt.in, err)
			continue
		}
		if !slices.Equal(l.Strings(), tt.want) {
			t.Errorf("Unmarshal(%s) = %q, want %q", tt.in, l.Strings(), tt.want)
		}
	}
}

func TestUnmarshalJSONMalformed(t *testing.T) {
	var l List
	err := l.UnmarshalJSON([]byte(`["203.0.113.1"`))
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("UnmarshalJSON(malformed) error = %v, want ErrInvalid", err)
	}
}

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		list List
		want string
	}{
		{List{}, `[]`},
		{mustParse(t, "203.0.113.50/32, 198.51.100.0/24, 2001:DB8::/32"), `["203.0.113.50","198.51.100.0/24","2001:db8::/32"]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.list)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Marshal = %s, want %s", got, tt.want)
		}
	}
	// In a struct, by value and by pointer, including a nil pointer.
	type config struct {
		A List  `json:"a"`
		B *List `json:"b"`
	}
	got, err := json.Marshal(config{B: new(List)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[],"b":[]}`; string(got) != want {
		t.Errorf("Marshal(config) = %s, want %s", got, want)
	}
	var c config
	if err := json.Unmarshal([]byte(`{"a":"203.0.113.1","b":["2001:db8::1"]}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.A.String() != "203.0.113.1" || c.B == nil || c.B.String() != "2001:db8::1" {
		t.Errorf("Unmarshal(config) = %v, %v", c.A, c.B)
	}
}

func TestString(t *testing.T) {
	l := mustParse(t, "203.0.113.50,198.51.100.0/24")
	if got, want := l.String(), "203.0.113.50, 198.51.100.0/24"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (List{}).String(); got != "" {
		t.Errorf("String() of empty list = %q", got)
	}
}

func mustParse(t testing.TB, s string) List {
	t.Helper()
	l, err := ParseString(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkList checks the invariants of a successfully parsed list.
func checkList(t *testing.T, l List) {
	t.Helper()
	if l.Len() > MaxEntries {
		t.Fatalf("list has %d entries", l.Len())
	}
	for i, p := range l.prefixes {
		if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("entry %d (%v) is not canonical", i, p)
		}
		if slices.Contains(l.prefixes[:i], p) {
			t.Fatalf("entry %v is duplicated", p)
		}
		if !l.Contains(p.Addr()) || !l.Contains(netip.AddrFrom16(p.Addr().As16())) {
			t.Fatalf("list does not contain its own entry %v", p)
		}
	}
	// Round trip through the canonical forms, both ways ParseString and Parse.
	for _, s := range []func() (List, error){
		func() (List, error) { return Parse(l.Strings()) },
		func() (List, error) { return ParseString(l.String()) },
	} {
		back, err := s()
		if err != nil {
			t.Fatalf("reparsing %q: %v", l.Strings(), err)
		}
		if !slices.Equal(back.prefixes, l.prefixes) {
			t.Fatalf("round trip changed %q to %q", l.Strings(), back.Strings())
		}
	}
	// JSON round trip.
	data, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back List
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", data, err)
	}
	if !slices.Equal(back.prefixes, l.prefixes) {
		t.Fatalf("JSON round trip changed %q to %q", l.Strings(), back.Strings())
	}
	for _, a := range []netip.Addr{{}, netip.MustParseAddr("203.0.113.50"), netip.MustParseAddr("fe80::1%eth0"), netip.IPv6Unspecified()} {
		_ = l.Contains(a)
	}
}

func FuzzParseString(f *testing.F) {
	for _, s := range []string{
		"",
		"203.0.113.50",
		"203.0.113.0/24",
		"203.0.113.50, 198.51.100.0/24",
		"2001:db8::1, 2001:db8::/32, ::ffff:203.0.113.50",
		"::ffff:203.0.113.0/120",
		"203.0.113.5/24",
		"fe80::1%eth0",
		"1.2.3.4,,5.6.7.8",
		"0.0.0.0/0,::/0",
		strings.Join(hosts(MaxEntries), ","),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseString(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		checkList(t, l)
		// Each comma-separated entry of the input must be allowed by the list.
		if strings.TrimSpace(s) == "" {
			if !l.IsEmpty() {
				t.Fatalf("ParseString(%q) is not empty", s)
			}
			return
		}
		for e := range strings.SplitSeq(s, ",") {
			one, err := ParseString(e)
			if err != nil || one.Len() != 1 {
				t.Fatalf("entry %q of accepted %q does not parse alone: %v", e, s, err)
			}
			if !slices.Contains(l.prefixes, one.prefixes[0]) {
				t.Fatalf("entry %q missing from %q", e, l.Strings())
			}
		}
	})
}

func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`null`,
		`[]`,
		`""`,
		`"203.0.113.50, 198.51.100.0/24"`,
		`["203.0.113.50", "2001:db8::/32"]`,
		`["203.0.113.50, ::ffff:198.51.100.0/120"]`,
		`["203.0.113.5/24"]`,
		`[1, null]`,
		`{"a": "b"}`,
		`"\u0032\u0030\u0033.0.113.1"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var l List
		if err := l.UnmarshalJSON(data); err != nil {
			if !l.IsEmpty() {
				t.Fatalf("UnmarshalJSON changed the list on error")
			}
			return
		}
		checkList(t, l)
	})
}

func BenchmarkContains(b *testing.B) {
	for _, n := range []int{1, 10, MaxEntries} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l, err := Parse(hosts(n))
			if err != nil {
				b.Fatal(err)
			}
			a := netip.MustParseAddr("203.0.113.50") // not in the list: worst case
			b.ReportAllocs()
			for b.Loop() {
				if l.Contains(a) {
					b.Fatal("contained")
				}
			}
		})
	}
}
