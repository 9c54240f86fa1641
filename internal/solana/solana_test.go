package solana

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// vectors is testdata/vectors.json, made by testdata/gen_vectors.mjs with
// tweetnacl and bs58.
type vectors struct {
	Generator  string
	Signatures []struct {
		Seed         string `json:"seed"`
		PublicKey    string `json:"public_key"`
		Address      string `json:"address"`
		Message      string `json:"message"`
		Signature    string `json:"signature"`
		SignatureHex string `json:"signature_hex"`
	}
	Addresses []struct {
		Hex    string `json:"hex"`
		Base58 string `json:"base58"`
	}
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Signatures) == 0 || len(v.Addresses) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	for i, s := range v.Signatures {
		pub, err := ParseAddress(s.Address)
		if err != nil {
			t.Fatalf("%d: ParseAddress(%q): %v", i, s.Address, err)
		}
		if got := hex.EncodeToString(pub[:]); got != s.PublicKey {
			t.Errorf("%d: ParseAddress(%q) = %s, want %s", i, s.Address, got, s.PublicKey)
		}
		if got := pub.String(); got != s.Address {
			t.Errorf("%d: String() = %q, want %q", i, got, s.Address)
		}
		// The key tweetnacl derived from the seed is the one Go derives.
		priv := ed25519.NewKeyFromSeed(mustHex(t, s.Seed))
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub[:]) {
			t.Errorf("%d: Go derives another public key from seed %s", i, s.Seed)
		}
		sig, err := ParseSignature(s.Signature)
		if err != nil {
			t.Fatalf("%d: ParseSignature(%q): %v", i, s.Signature, err)
		}
		if got := hex.EncodeToString(sig); got != s.SignatureHex {
			t.Errorf("%d: ParseSignature = %s, want %s", i, got, s.SignatureHex)
		}
		if err := Verify(pub, []byte(s.Message), sig); err != nil {
			t.Errorf("%d: Verify: %v", i, err)
		}
		// Deterministic signatures: Go signs the same bytes.
		if got := ed25519.Sign(priv, []byte(s.Message)); !bytes.Equal(got, sig) {
			t.Errorf("%d: Go's signature differs from tweetnacl's", i)
		}
	}
}

// RFC 8032 section 7.1, TEST 1 and TEST 2.
func TestRFC8032(t *testing.T) {
	tests := []struct {
		name, secret, public, msg, sig string
	}{
		{
			"TEST 1",
			"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
			"",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
		},
		{
			"TEST 2",
			"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
			"72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pub PublicKey
			copy(pub[:], mustHex(t, tt.public))
			msg, sig := mustHex(t, tt.msg), mustHex(t, tt.sig)
			if got := ed25519.NewKeyFromSeed(mustHex(t, tt.secret)).Public().(ed25519.PublicKey); !bytes.Equal(got, pub[:]) {
				t.Fatalf("public key of the secret = %x", got)
			}
			if err := Verify(pub, msg, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			// Through the text forms.
			pub2, err := ParseAddress(pub.String())
			if err != nil || pub2 != pub {
				t.Fatalf("ParseAddress(String()) = %x, %v", pub2, err)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	v := loadVectors(t)
	s := v.Signatures[len(v.Signatures)-1] // a SIWS message
	pub, _ := ParseAddress(s.Address)
	sig, _ := ParseSignature(s.Signature)
	msg := []byte(s.Message)
	other, _ := ParseAddress(v.Signatures[0].Address)

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	// S + L: the same signature with S not reduced mod L, which RFC 8032
	// says to reject (it is a malleated twin).
	unreduced := bytes.Clone(sig)
	addL(unreduced[32:])

	tests := []struct {
		name string
		pub  PublicKey
		msg  []byte
		sig  []byte
		want error
	}{
		{"tampered message", pub, flip(msg, 0), sig, ErrSignatureMismatch},
		{"message with a trailing newline", pub, append(bytes.Clone(msg), '\n'), sig, ErrSignatureMismatch},
		{"tampered R", pub, msg, flip(sig, 0), ErrSignatureMismatch},
		{"tampered S", pub, msg, flip(sig, 40), ErrSignatureMismatch},
		{"S not reduced", pub, msg, unreduced, ErrSignatureMismatch},
		{"another key", other, msg, sig, ErrSignatureMismatch},
		{"key not on the curve", offCurve, msg, sig, ErrSignatureMismatch},
		{"zero key", PublicKey{}, msg, sig, ErrSignatureMismatch},
		{"short signature", pub, msg, sig[:63], ErrMalformed},
		{"long signature", pub, msg, append(bytes.Clone(sig), 0), ErrMalformed},
		{"no signature", pub, msg, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.pub, tt.msg, tt.sig); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// addL adds the Ed25519 group order L to the little-endian scalar s in place.
func addL(s []byte) {
	l := []byte{
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	}
	var carry uint16
	for i := range s {
		sum := uint16(s[i]) + uint16(l[i]) + carry
		s[i], carry = byte(sum), sum>>8
	}
}

// offCurve is 32 bytes that are no point of edwards25519, as a
// program-derived address is none: y = 2, for which (y²-1)/(dy²+1) is not
// a square mod 2^255-19, so no x exists.
var offCurve = PublicKey{2}

func TestParseAddress(t *testing.T) {
	for _, a := range loadVectors(t).Addresses {
		pub, err := ParseAddress(a.Base58)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", a.Base58, err)
			continue
		}
		if got := hex.EncodeToString(pub[:]); got != a.Hex {
			t.Errorf("ParseAddress(%q) = %s, want %s", a.Base58, got, a.Hex)
		}
		if got := pub.String(); got != a.Base58 {
			t.Errorf("String() = %q, want %q", got, a.Base58)
		}
	}
	if got := (PublicKey{}).String(); got != "11111111111111111111111111111111" {
		t.Errorf("zero PublicKey = %q", got)
	}
}

func TestParseAddressRejects(t *testing.T) {
	const valid = "EntjGfVQ6CT8mHEMQfBzEX8WeHDSWGa239TWgxmpRp3a"
	bad := []struct{ name, s string }{
		{"empty", ""},
		{"31 characters", strings.Repeat("1", 31)},
		{"45 characters", strings.Repeat("2", 45)},
		{"33 bytes", "1" + valid},
		{"31 bytes (a leading 1 short)", "1111111111111111111111111111112"},
		{"33 zero bytes", strings.Repeat("1", 33)},
		{"more than 32 bytes in 44 characters", strings.Repeat("z", 44)},
		{"zero digit", "0" + valid[1:]},
		{"capital O", "O" + valid[1:]},
		{"capital I", "I" + valid[1:]},
		{"small l", "l" + valid[1:]},
		{"space", valid[:43] + " "},
		{"newline", valid + "\n"},
		{"non-ASCII", "é" + valid[2:]},
		{"hex", "0x" + strings.Repeat("ab", 20)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if pub, err := ParseAddress(tt.s); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseAddress(%q) = %x, %v; want ErrMalformed", tt.s, pub, err)
			}
		})
	}
}

func TestParseSignatureRejects(t *testing.T) {
	v := loadVectors(t)
	valid := v.Signatures[0].Signature
	bad := []struct{ name, s string }{
		{"empty", ""},
		{"an address", v.Signatures[0].Address},
		{"65 bytes", "1" + valid},
		{"63 zero bytes", strings.Repeat("1", 63)},
		{"89 characters", strings.Repeat("2", 89)},
		{"more than 64 bytes in 88 characters", strings.Repeat("z", 88)},
		{"hex", v.Signatures[0].SignatureHex},
		{"0x hex", "0x" + v.Signatures[0].SignatureHex},
		{"base64", "5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc+bRr0lv18FlbviRlUUFDjnoQCw=="},
		{"invalid digit", "0" + valid[1:]},
		{"trailing space", valid + " "},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if sig, err := ParseSignature(tt.s); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseSignature(%q) = %x, %v; want ErrMalformed", tt.s, sig, err)
			}
		})
	}
	// All-zero signature: 64 "1"s, the shortest text.
	if sig, err := ParseSignature(strings.Repeat("1", 64)); err != nil || !bytes.Equal(sig, make([]byte, 64)) {
		t.Errorf("ParseSignature(64 ones) = %x, %v", sig, err)
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, a := range loadVectors(f).Addresses {
		f.Add(a.Base58)
	}
	f.Add("1" + "EntjGfVQ6CT8mHEMQfBzEX8WeHDSWGa239TWgxmpRp3a")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParseAddress(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if got := pub.String(); got != s {
			t.Fatalf("ParseAddress(%q).String() = %q", s, got)
		}
	})
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range loadVectors(f).Signatures[:3] {
		f.Add(s.Signature)
	}
	f.Add(strings.Repeat("1", 64))
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignature(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(sig) != SignatureSize {
			t.Fatalf("ParseSignature(%q) returned %d bytes", s, len(sig))
		}
	})
}

func BenchmarkParseAddress(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAddress("EntjGfVQ6CT8mHEMQfBzEX8WeHDSWGa239TWgxmpRp3a"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	s := loadVectors(b).Signatures[5]
	pub, _ := ParseAddress(s.Address)
	sig, _ := ParseSignature(s.Signature)
	msg := []byte(s.Message)
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(pub, msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}
