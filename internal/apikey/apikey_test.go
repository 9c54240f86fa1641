package apikey

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"testing"
)

// makeKey builds a key with a correct checksum around a 32-character body.
func makeKey(t testing.TB, random string) string {
	t.Helper()
	if len(random) != randomLen {
		t.Fatalf("random part must be %d characters, got %d", randomLen, len(random))
	}
	b := []byte(Prefix + random + "000000")
	putChecksum(b[bodyLen:], crc32.ChecksumIEEE(b[:bodyLen]))
	return string(b)
}

func TestGenerateShape(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != Length || !strings.HasPrefix(k, Prefix) {
			t.Fatalf("Generate() = %q: wrong shape", k)
		}
		if !Valid(k) {
			t.Fatalf("Valid(Generate()) = false for %q", k)
		}
		if seen[k] {
			t.Fatalf("Generate returned %q twice", k)
		}
		seen[k] = true
	}
}

// TestGenerateUniform is a coarse check that sampling covers the alphabet
// evenly (a modulo bias towards the first 8 characters, 0-7, would show as
// those characters appearing about 5/4 as often as the others).
func TestGenerateUniform(t *testing.T) {
	const keys = 4000
	var counts [62]int
	for range keys {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		for i := len(Prefix); i < bodyLen; i++ {
			counts[digit(k[i])]++
		}
	}
	want := float64(keys*randomLen) / 62 // about 2065
	for d, n := range counts {
		// 6 standard deviations (sqrt(2065) ≈ 45) each way.
		if float64(n) < want-270 || float64(n) > want+270 {
			t.Errorf("character %q appeared %d times, want about %.0f", alphabet[d], n, want)
		}
	}
}

func TestChecksumEncoding(t *testing.T) {
	tests := []struct {
		crc  uint32
		want string
	}{
		{0, "000000"},
		{1, "000001"},
		{61, "00000z"},
		{62, "000010"},
		{3843, "0000zz"}, // 62*62-1
		{0xFFFFFFFF, "4gfFC3"},
	}
	for _, tt := range tests {
		var got [checksumLen]byte
		putChecksum(got[:], tt.crc)
		if string(got[:]) != tt.want {
			t.Errorf("putChecksum(%d) = %q, want %q", tt.crc, got, tt.want)
		}
	}
}

func TestValid(t *testing.T) {
	// CRC-32/IEEE check value from the CRC catalogue: "123456789" → 0xCBF43926.
	if got := crc32IEEE("123456789"); got != 0xCBF43926 {
		t.Fatalf("crc32IEEE(123456789) = %#x, want 0xcbf43926", got)
	}
	tests := []struct {
		key  string
		want bool
	}{
		{makeKey(t, strings.Repeat("0", 32)), true},
		{makeKey(t, strings.Repeat("z", 32)), true},
		{makeKey(t, "0123456789ABCDEFGHIJKLMNOPQRSTUV"), true},
		{"", false},
		{Prefix, false},
		{strings.Repeat("0", Length), false},
		{"tgk-" + makeKey(t, strings.Repeat("A", 32))[4:], false},
		{"TGK_" + makeKey(t, strings.Repeat("A", 32))[4:], false},
		{makeKey(t, strings.Repeat("A", 32)) + "0", false},
		{makeKey(t, strings.Repeat("A", 32))[:Length-1], false},
		{makeKey(t, strings.Repeat("A", 31)+"_"), false}, // '_' is not base62
		{makeKey(t, strings.Repeat("A", 31)+"é"[:1]), false},
	}
	for _, tt := range tests {
		if got := Valid(tt.key); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// TestGoldenKeys pins the format end to end with keys computed outside Go
// (Python 3: zlib.crc32 of the first 36 bytes, encoded in base62 by hand).
// A change to the alphabet, the checksum's input or its encoding would
// invalidate every key already issued, and must fail this test.
func TestGoldenKeys(t *testing.T) {
	tests := []struct {
		key string
		crc uint32
	}{
		{"tgk_000000000000000000000000000000004RupIP", 0xf302a1b1},
		{"tgk_0123456789ABCDEFGHIJKLMNOPQRSTUV0HtjbW", 0x0fc3a922},
	}
	for _, tt := range tests {
		if !Valid(tt.key) {
			t.Errorf("Valid(%q) = false, want true", tt.key)
		}
		if got := crc32IEEE(tt.key[:bodyLen]); got != tt.crc {
			t.Errorf("crc32IEEE(%q) = %#x, want %#x", tt.key[:bodyLen], got, tt.crc)
		}
		if got := makeKey(t, tt.key[len(Prefix):bodyLen]); got != tt.key {
			t.Errorf("checksum of %q encodes as %q, want %q", tt.key[:bodyLen], got, tt.key)
		}
	}
}

func TestCRCMatchesStdlib(t *testing.T) {
	inputs := []string{"", "a", "tgk_", strings.Repeat("\xff", 100)}
	for range 200 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, k, k[:bodyLen])
	}
	for _, s := range inputs {
		if got, want := crc32IEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Errorf("crc32IEEE(%q) = %#x, want %#x", s, got, want)
		}
	}
}

// TestSingleCharacterChange checks exhaustively, for a few keys, that
// replacing any one byte by any other byte value makes the key invalid.
// CRC-32 detects every error burst of up to 32 bits, so no change to the
// body can keep the checksum; base62 has one representation per value, so no
// change to the checksum digits can either.
func TestSingleCharacterChange(t *testing.T) {
	keys := []string{
		makeKey(t, strings.Repeat("0", 32)),
		makeKey(t, strings.Repeat("z", 32)),
	}
	for range 3 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if !Valid(k) {
			t.Fatalf("Valid(%q) = false", k)
		}
		b := []byte(k)
		for i := range b {
			orig := b[i]
			for c := 0; c < 256; c++ {
				if byte(c) == orig {
					continue
				}
				b[i] = byte(c)
				if Valid(string(b)) {
					t.Errorf("Valid(%q) = true after changing byte %d of %q", b, i, k)
				}
			}
			b[i] = orig
		}
	}
}

func TestValidDoesNotAllocate(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	bad := k[:Length-1] + "!"
	if n := testing.AllocsPerRun(100, func() {
		_ = Valid(k)
		_ = Valid(bad)
	}); n != 0 {
		t.Errorf("Valid allocates %v times per call, want 0", n)
	}
}

func TestHash(t *testing.T) {
	k := makeKey(t, strings.Repeat("0", 32))
	want := sha256.Sum256([]byte(k))
	if got := Hash(k); got != want {
		t.Errorf("Hash(%q) = %x, want %x", k, got, want)
	}
	// FIPS 180-2 "abc" vector: Hash is plain SHA-256 of the bytes.
	abc := Hash("abc")
	if got := hex.EncodeToString(abc[:]); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf(`Hash("abc") = %s`, got)
	}
}

func TestDisplayPrefix(t *testing.T) {
	k := makeKey(t, "abcdefgh"+strings.Repeat("0", 24))
	tests := []struct{ in, want string }{
		{k, "tgk_abcdefgh"},
		{"tgk_abcdefgh", "tgk_abcdefgh"},
		{"tgk_abcdefg", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DisplayPrefix(tt.in); got != tt.want {
			t.Errorf("DisplayPrefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if len(DisplayPrefix(k)) != DisplayPrefixLength {
		t.Errorf("DisplayPrefixLength = %d, but DisplayPrefix returned %d bytes", DisplayPrefixLength, len(DisplayPrefix(k)))
	}
}

func FuzzValid(f *testing.F) {
	f.Add(makeKey(f, strings.Repeat("0", 32)))
	f.Add(makeKey(f, "0123456789ABCDEFGHIJKLMNOPQRSTUV"))
	f.Add(makeKey(f, strings.Repeat("z", 32))[:Length-1] + "y")
	f.Add("tgk_")
	f.Add("")
	f.Add("ghp_" + strings.Repeat("a", 36))
	f.Add(strings.Repeat("\xff", Length))
	f.Fuzz(func(t *testing.T, s string) {
		ok := Valid(s)
		if ok != (len(s) == Length && strings.HasPrefix(s, Prefix) && checksumOK(s)) {
			t.Fatalf("Valid(%q) = %v disagrees with the reference check", s, ok)
		}
		if !ok {
			return
		}
		if len(s) != Length || !strings.HasPrefix(s, Prefix) {
			t.Fatalf("Valid(%q) = true for a string of the wrong shape", s)
		}
		if got := DisplayPrefix(s); got != s[:DisplayPrefixLength] {
			t.Fatalf("DisplayPrefix(%q) = %q", s, got)
		}
		// Any one-byte change to a valid key must be caught.
		b := []byte(s)
		i := int(crc32.ChecksumIEEE(b)) % len(b)
		b[i] ^= 1 + byte(i)
		if Valid(string(b)) {
			t.Fatalf("Valid(%q) = true after changing byte %d of %q", b, i, s)
		}
	})
}

// checksumOK is a straightforward reference implementation of the checksum
// check, written with the standard library, for the fuzz target.
func checksumOK(s string) bool {
	for i := len(Prefix); i < len(s); i++ {
		if !strings.ContainsRune(alphabet, rune(s[i])) || s[i] >= 0x80 {
			return false
		}
	}
	var want [checksumLen]byte
	putChecksum(want[:], crc32.ChecksumIEEE([]byte(s[:bodyLen])))
	return s[bodyLen:] == string(want[:])
}

func BenchmarkValid(b *testing.B) {
	k, err := Generate()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !Valid(k) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkValidRejectShape(b *testing.B) {
	s := "Bearer " + strings.Repeat("x", 35)
	b.ReportAllocs()
	for b.Loop() {
		if Valid(s) {
			b.Fatal("valid")
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHashDoesNotAllocate(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(k))
	if Hash(k) != want || Hash("short") != sha256.Sum256([]byte("short")) {
		t.Fatal("Hash differs from SHA-256")
	}
	long := strings.Repeat("x", 100)
	if Hash(long) != sha256.Sum256([]byte(long)) {
		t.Fatal("Hash of a long input differs from SHA-256")
	}
	if n := testing.AllocsPerRun(100, func() { _ = Hash(k) }); n != 0 {
		t.Fatalf("Hash allocates %v times", n)
	}
}
