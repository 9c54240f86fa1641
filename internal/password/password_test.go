package password

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// cheap are the smallest parameters, for tests that are not about cost.
var cheap = Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func mustHasher(t testing.TB, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReferenceVectors runs the Argon2id version 19 test vectors of the
// Argon2 reference implementation, P-H-C/phc-winner-argon2, src/test.c lines
// 233-264 at commit f57e61e19229e23c4445b85494dbf7c07de721cb
// (https://github.com/P-H-C/phc-winner-argon2/blob/f57e61e19229e23c4445b85494dbf7c07de721cb/src/test.c#L233-L264).
// Each gives t, log2(m), p, password, salt, the 32-byte tag in hex and the
// PHC string. The test recomputes each one with golang.org/x/crypto/argon2,
// through the same code path as Hash, and verifies it through Verify.
func TestReferenceVectors(t *testing.T) {
	tests := []struct {
		t, logM  uint32
		p        uint8
		password string
		salt     string
		tag      string
		encoded  string
		large    bool
	}{
		{2, 16, 1, "password", "somesalt",
			"09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7",
			"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", false},
		{2, 18, 1, "password", "somesalt",
			"78fe1ec91fb3aa5657d72e710854e4c3d9b9198c742f9616c2f085bed95b2e8c",
			"$argon2id$v=19$m=262144,t=2,p=1$c29tZXNhbHQ$eP4eyR+zqlZX1y5xCFTkw9m5GYx0L5YWwvCFvtlbLow", true},
		{2, 8, 1, "password", "somesalt",
			"9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
			"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", false},
		{2, 8, 2, "password", "somesalt",
			"6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037",
			"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", false},
		{1, 16, 1, "password", "somesalt",
			"f6a5adc1ba723dddef9b5ac1d464e180fcd9dffc9d1cbf76cca2fed795d9ca98",
			"$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHQ$9qWtwbpyPd3vm1rB1GThgPzZ3/ydHL92zKL+15XZypg", false},
		{4, 16, 1, "password", "somesalt",
			"9025d48e68ef7395cca9079da4c4ec3affb3c8911fe4f86d1a2520856f63172c",
			"$argon2id$v=19$m=65536,t=4,p=1$c29tZXNhbHQ$kCXUjmjvc5XMqQedpMTsOv+zyJEf5PhtGiUghW9jFyw", false},
		{2, 16, 1, "differentpassword", "somesalt",
			"0b84d652cf6b0c4beaef0dfe278ba6a80df6696281d7e0d2891b817d8c458fde",
			"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$C4TWUs9rDEvq7w3+J4umqA32aWKB1+DSiRuBfYxFj94", false},
		{2, 16, 1, "password", "diffsalt",
			"bdf32b05ccc42eb15d58fd19b1f856b113da1e9a5874fdcc544308565aa8141c",
			"$argon2id$v=19$m=65536,t=2,p=1$ZGlmZnNhbHQ$vfMrBczELrFdWP0ZsfhWsRPaHppYdP3MVEMIVlqoFBw", false},
	}
	verifier := mustHasher(t, cheap)
	for _, tt := range tests {
		t.Run(tt.encoded, func(t *testing.T) {
			if tt.large && testing.Short() {
				t.Skip("256 MiB vector skipped in -short mode")
			}
			p := Params{Memory: 1 << tt.logM, Iterations: tt.t, Parallelism: tt.p, SaltLength: 8, KeyLength: 32}
			h := &Hasher{params: p} // no dummy needed; NewHasher would hash once more

			// Hashing with the vector's salt gives the published string.
			if got := h.hashWithSalt(tt.password, []byte(tt.salt)); got != tt.encoded {
				t.Errorf("hash = %s\nwant   %s", got, tt.encoded)
			}
			parsed, err := parsePHC(tt.encoded)
			if err != nil {
				t.Fatalf("parsePHC: %v", err)
			}
			if got := hex.EncodeToString(parsed.key); got != tt.tag {
				t.Errorf("tag = %s, want %s", got, tt.tag)
			}
			if parsed.params != p || string(parsed.salt) != tt.salt {
				t.Errorf("parsed %+v salt %q, want %+v salt %q", parsed.params, parsed.salt, p, tt.salt)
			}

			// Verify reads it whatever the verifier's own parameters.
			ok, rehash, err := verifier.Verify(tt.password, tt.encoded)
			if !ok || !rehash || err != nil {
				t.Errorf("Verify(right password) = %v, %v, %v; want true, true, nil", ok, rehash, err)
			}
			if !tt.large {
				ok, rehash, err = verifier.Verify(tt.password+"x", tt.encoded)
				if ok || rehash || err != nil {
					t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if got := Default(); got != want {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	h := mustHasher(t, Default())
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash with Default() = %s", enc)
	}
	ok, rehash, err := h.Verify("correct horse battery staple", enc)
	if !ok || rehash || err != nil {
		t.Errorf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestRoundTrip(t *testing.T) {
	h := mustHasher(t, cheap)
	passwords := []string{"", "password", "correct horse battery staple", "pässwörd ✓ 密码", strings.Repeat("x", 1000), "with\x00nul"}
	for _, pw := range passwords {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		enc2, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if enc == enc2 {
			t.Errorf("two hashes of %q are equal: salt not random", pw)
		}
		if strings.Contains(enc, pw) && pw != "" {
			t.Errorf("hash contains the password")
		}
		for _, e := range []string{enc, enc2} {
			if ok, rehash, err := h.Verify(pw, e); !ok || rehash || err != nil {
				t.Errorf("Verify(%q) = %v, %v, %v; want true, false, nil", pw, ok, rehash, err)
			}
			for _, wrong := range []string{pw + "x", strings.ToUpper(pw) + "!", "x" + pw} {
				if ok, rehash, err := h.Verify(wrong, e); ok || rehash || err != nil {
					t.Errorf("Verify(%q) against hash of %q = %v, %v, %v; want false, false, nil", wrong, pw, ok, rehash, err)
				}
			}
		}
		// The stored form parses back to the hasher's parameters.
		parsed, err := parsePHC(enc)
		if err != nil || parsed.params != cheap {
			t.Errorf("parsePHC(%s) = %+v, %v", enc, parsed.params, err)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	old := mustHasher(t, cheap)
	enc, err := old.Hash("password123")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		p      Params
		rehash bool
	}{
		{"same", cheap, false},
		{"more memory", Params{16, 1, 1, 16, 32}, true},
		{"more iterations", Params{8, 2, 1, 16, 32}, true},
		{"more lanes", Params{16, 1, 2, 16, 32}, true},
		{"longer salt", Params{8, 1, 1, 32, 32}, true},
		{"longer key", Params{8, 1, 1, 16, 64}, true},
		{"shorter key", Params{8, 1, 1, 16, 16}, true},
	}
	for _, tt := range tests {
		h := mustHasher(t, tt.p)
		ok, rehash, err := h.Verify("password123", enc)
		if !ok || rehash != tt.rehash || err != nil {
			t.Errorf("%s: Verify = %v, %v, %v; want true, %v, nil", tt.name, ok, rehash, err, tt.rehash)
		}
		// A wrong password never asks for a rehash.
		if ok, rehash, err := h.Verify("password124", enc); ok || rehash || err != nil {
			t.Errorf("%s: Verify(wrong) = %v, %v, %v", tt.name, ok, rehash, err)
		}
	}
}

func TestNewHasherValidates(t *testing.T) {
	tests := []struct {
		p    Params
		want string
	}{
		{Params{}, "parallelism 0"},
		{Params{Memory: 19456, Iterations: 2, Parallelism: 17, SaltLength: 16, KeyLength: 32}, "parallelism 17"},
		{Params{Memory: 7, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "memory 7 KiB"},
		{Params{Memory: 31, Iterations: 1, Parallelism: 4, SaltLength: 16, KeyLength: 32}, "memory 31 KiB is outside 32.."},
		{Params{Memory: MaxMemory + 1, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "memory 1048577 KiB"},
		{Params{Memory: 8, Iterations: 0, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "iterations 0"},
		{Params{Memory: 8, Iterations: 17, Parallelism: 1, SaltLength: 16, KeyLength: 32}, "iterations 17"},
		{Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 7, KeyLength: 32}, "salt length 7"},
		{Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 65, KeyLength: 32}, "salt length 65"},
		{Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 7}, "key length 7"},
		{Params{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 65}, "key length 65"},
	}
	for _, tt := range tests {
		h, err := NewHasher(tt.p)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewHasher(%+v) = %v, %v; want error containing %q", tt.p, h, err, tt.want)
		}
	}
	// The bounds themselves are accepted.
	for _, p := range []Params{
		{Memory: 8, Iterations: 1, Parallelism: 1, SaltLength: 8, KeyLength: 8},
		{Memory: 128, Iterations: MaxIterations, Parallelism: MaxParallelism, SaltLength: 64, KeyLength: 64},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := mustHasher(t, cheap)
	good, err := h.Hash("password123")
	if err != nil {
		t.Fatal(err)
	}
	salt16 := "c29tZXNhbHRzb21lc2FsdA" // "somesaltsomesalt"
	key32 := "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	tests := []struct {
		name, encoded, want string
	}{
		{"empty", "", "not an Argon2id PHC string"},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "not an Argon2id PHC string"},
		{"argon2i", "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not Argon2id"},
		{"argon2d", "$argon2d$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not Argon2id"},
		{"version 16", "$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not Argon2 version 19"},
		{"no version", "$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not Argon2 version 19"},
		{"upper case", "$ARGON2ID$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not an Argon2id PHC string"},
		{"leading space", " " + good, "not an Argon2id PHC string"},
		{"trailing newline", good + "\n", "not unpadded standard base64"},
		{"missing hash", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ", "separated by '$'"},
		{"extra field", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$" + key32 + "$", "separated by '$'"},
		{"params out of order", "$argon2id$v=19$t=2,m=65536,p=1$c29tZXNhbHQ$" + key32, "in that order"},
		{"missing param", "$argon2id$v=19$m=65536,t=2$c29tZXNhbHQ$" + key32, "in that order"},
		{"extra param", "$argon2id$v=19$m=65536,t=2,p=1,keyid=abc$c29tZXNhbHQ$" + key32, "in that order"},
		{"trailing comma", "$argon2id$v=19$m=65536,t=2,p=1,$c29tZXNhbHQ$" + key32, "in that order"},
		{"data param", "$argon2id$v=19$m=65536,t=2,p=1,data=abc$c29tZXNhbHQ$" + key32, "in that order"},
		{"spaces", "$argon2id$v=19$m=65536, t=2, p=1$c29tZXNhbHQ$" + key32, "in that order"},
		{"leading zero", "$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$" + key32, "not a decimal number"},
		{"sign", "$argon2id$v=19$m=+65536,t=2,p=1$c29tZXNhbHQ$" + key32, "not a decimal number"},
		{"hex", "$argon2id$v=19$m=0x10000,t=2,p=1$c29tZXNhbHQ$" + key32, "not a decimal number"},
		{"empty number", "$argon2id$v=19$m=,t=2,p=1$c29tZXNhbHQ$" + key32, "not a decimal number"},
		{"overflowing number", "$argon2id$v=19$m=99999999999,t=2,p=1$c29tZXNhbHQ$" + key32, "not a decimal number"},
		{"memory above 1 GiB", "$argon2id$v=19$m=1048577,t=2,p=1$c29tZXNhbHQ$" + key32, "memory above 1048576 KiB"},
		{"memory 4 GiB", "$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$" + key32, "memory above"},
		{"memory below 8p", "$argon2id$v=19$m=15,t=1,p=2$c29tZXNhbHQ$" + key32, "memory below 8 KiB per lane"},
		{"zero iterations", "$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$" + key32, "iterations outside 1..16"},
		{"17 iterations", "$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHQ$" + key32, "iterations outside 1..16"},
		{"zero lanes", "$argon2id$v=19$m=65536,t=2,p=0$c29tZXNhbHQ$" + key32, "parallelism outside 1..16"},
		{"17 lanes", "$argon2id$v=19$m=65536,t=2,p=17$c29tZXNhbHQ$" + key32, "parallelism outside 1..16"},
		{"256 lanes", "$argon2id$v=19$m=65536,t=2,p=256$c29tZXNhbHQ$" + key32, "parallelism outside 1..16"},
		{"short salt", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbA$" + key32, "salt length outside 8..64"},
		{"long salt", "$argon2id$v=19$m=65536,t=2,p=1$" + strings.Repeat("A", 88) + "$" + key32, "salt length outside 8..64"},
		{"empty salt", "$argon2id$v=19$m=65536,t=2,p=1$$" + key32, "salt length"},
		{"padded salt", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$" + key32, "salt is not unpadded standard base64"},
		{"URL-safe salt", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNh_-Q$" + key32, "salt is not unpadded standard base64"},
		{"stray bits in salt", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHR$" + key32, "salt is not unpadded standard base64"},
		{"newline in salt", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNh\nbHQ$" + key32, "salt is not unpadded standard base64"},
		{"short hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt16 + "$AAAAAAAAAA", "hash length outside 8..64"},
		{"long hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt16 + "$" + strings.Repeat("A", 88), "hash length outside 8..64"},
		{"padded hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt16 + "$" + key32 + "=", "hash is not unpadded standard base64"},
		{"stray bits in hash", "$argon2id$v=19$m=65536,t=2,p=1$" + salt16 + "$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPd", "hash is not unpadded standard base64"},
		{"too long", good + strings.Repeat("A", 300), "longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify("password123", tt.encoded)
			if ok || rehash {
				t.Errorf("Verify(%q) = %v, %v", tt.encoded, ok, rehash)
			}
			if !errors.Is(err, ErrInvalidHash) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Verify(%q) error = %v, want ErrInvalidHash with %q", tt.encoded, err, tt.want)
			}
			if len(tt.encoded) > 12 && strings.Contains(err.Error(), tt.encoded[len(tt.encoded)-12:]) {
				t.Errorf("error %q repeats the stored hash", err)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := mustHasher(t, cheap)
	if h.dummy == "" {
		t.Fatal("no dummy hash")
	}
	parsed, err := parsePHC(h.dummy)
	if err != nil || parsed.params != cheap {
		t.Fatalf("dummy hash %s: %+v, %v", h.dummy, parsed.params, err)
	}
	// The dummy hash is of a random password, fresh for each Hasher.
	if h2 := mustHasher(t, cheap); h2.dummy == h.dummy {
		t.Error("two hashers have the same dummy hash")
	}
	for _, pw := range []string{"", "password", h.dummy} {
		if ok, _, _ := h.Verify(pw, h.dummy); ok {
			t.Errorf("dummy hash matches %q", pw)
		}
		h.VerifyDummy(pw)
	}
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		password string
		want     string // "" means accepted
	}{
		{"correct horse", ""},
		{"0123456789", ""},
		{"012345678", "password must be at least 10 characters long"},
		{"", "password must be at least 10 characters long"},
		{"ééééééééé", "password must be at least 10 characters long"}, // 9 runes, 18 bytes
		{"éééééééééé", ""},                                            // 10 runes
		{"密码密码密码密码密码", ""},
		{"🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑", ""},
		{"          ", "password must not be only white space"},
		{"\t\n\v\f\r \u00a0\u2003\u3000\u2028", "password must not be only white space"},
		{"  password  ", ""},
		{strings.Repeat("a", 256), ""},
		{strings.Repeat("a", 257), "password must be at most 256 bytes long"},
		{strings.Repeat("é", 128), ""},
		{strings.Repeat("é", 129), "password must be at most 256 bytes long"},
		{"abcdefghi\xff", "password must be valid UTF-8 text"},
		{"Password1!", ""}, // no composition rules either way
		{"aaaaaaaaaa", ""},
	}
	for _, tt := range tests {
		err := CheckPolicy(tt.password)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckPolicy(%q) = %v, want nil", tt.password, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("CheckPolicy(%q) = %v, want %q", tt.password, err, tt.want)
			continue
		}
		if !errors.Is(err, ErrPolicy) {
			t.Errorf("CheckPolicy(%q) error does not match ErrPolicy", tt.password)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
		"$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO0",
		"$argon2id$v=19$m=1048577,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=2,p=1,$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		"",
	} {
		f.Add(s)
	}
	h := mustHasher(f, cheap)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHash) {
				t.Fatalf("error %v does not wrap ErrInvalidHash", err)
			}
			return
		}
		// Everything accepted is within bounds...
		if err := p.params.Validate(); err != nil {
			t.Fatalf("parsePHC(%q) accepted params %+v: %v", s, p.params, err)
		}
		if int(p.params.SaltLength) != len(p.salt) || int(p.params.KeyLength) != len(p.key) {
			t.Fatalf("parsePHC(%q): lengths %+v disagree with salt and key", s, p.params)
		}
		// ...and canonical: there is one encoding of each hash.
		if got := p.String(); got != s {
			t.Fatalf("parsePHC(%q) re-encodes as %q", s, got)
		}
		// Verify must not accept a password unless the hash matches, and the
		// fuzzer will not find a preimage; keep the work small.
		if p.params.Memory <= 1024 && p.params.Iterations <= 2 {
			if ok, _, err := h.Verify("fuzz", s); ok || err != nil {
				t.Fatalf("Verify(fuzz, %q) = %v, %v", s, ok, err)
			}
		}
	})
}

func BenchmarkHashDefault(b *testing.B) {
	h := mustHasher(b, Default())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
