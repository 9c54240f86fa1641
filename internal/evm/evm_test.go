package evm

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// vectors.json is produced by ethers (testdata/gen_vectors.mjs), an
// implementation independent of this one.
type vectors struct {
	Signatures []struct {
		PrivateKey string `json:"private_key"`
		Address    string `json:"address"`
		Message    string `json:"message"`
		Hash       string `json:"hash"`
		Signature  string `json:"signature"`
	} `json:"signatures"`
	Checksums []struct {
		Lower       string `json:"lower"`
		Checksummed string `json:"checksummed"`
	} `json:"checksums"`
	Keccak []struct {
		Input string `json:"input"`
		Hash  string `json:"hash"`
	} `json:"keccak"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Signatures) == 0 || len(v.Checksums) == 0 || len(v.Keccak) == 0 {
		t.Fatal("empty vectors")
	}
	return v
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

func TestKeccak256(t *testing.T) {
	for _, k := range loadVectors(t).Keccak {
		if got := Keccak256([]byte(k.Input)); hex0x(got[:]) != k.Hash {
			t.Errorf("Keccak256(%q) = %x, ethers %s", k.Input, got, k.Hash)
		}
	}
	// Parts are concatenated.
	if Keccak256([]byte("ab"), []byte("c")) != Keccak256([]byte("abc")) {
		t.Error("parts not concatenated")
	}
}

// The test vectors of EIP-55 itself.
var eip55 = []string{
	// All caps
	"0x52908400098527886E0F7030069857D2E4169EE7",
	"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	// All lower
	"0xde709f2102306220921060314715629080e2fb77",
	"0x27b1fdb04752bbc536007a920d24acb045561c26",
	// Normal
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

func TestEIP55(t *testing.T) {
	for _, s := range eip55 {
		a, err := ParseChecksummed(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if a.Hex() != s {
			t.Errorf("Hex() = %s, want %s", a.Hex(), s)
		}
	}
	for _, c := range loadVectors(t).Checksums {
		a, err := ParseAddress(c.Lower)
		if err != nil {
			t.Fatal(err)
		}
		if a.Hex() != c.Checksummed {
			t.Errorf("%s: Hex() %s, ethers %s", c.Lower, a.Hex(), c.Checksummed)
		}
		if _, err := ParseChecksummed(c.Checksummed); err != nil {
			t.Errorf("%s: %v", c.Checksummed, err)
		}
	}
}

func TestParseAddressRefuses(t *testing.T) {
	good := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{good[2:], ErrMalformed},
		{"0X" + good[2:], ErrMalformed},
		{good[:41], ErrMalformed},
		{good + "0", ErrMalformed},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", ErrMalformed},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", ErrChecksum}, // one letter's case flipped
		{"0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ErrChecksum},
	} {
		if _, err := ParseAddress(c.in); !errors.Is(err, c.want) {
			t.Errorf("ParseAddress(%q) = %v, want %v", c.in, err, c.want)
		}
	}
	// A sign-in message must carry the checksummed form.
	if _, err := ParseChecksummed(strings.ToLower(good)); !errors.Is(err, ErrChecksum) {
		t.Errorf("lower-case address in checksummed context: %v", err)
	}
}

// EIP-191 hashes and personal_sign signatures made by ethers verify, and
// recover to the signer's address.
func TestPersonalSignEthers(t *testing.T) {
	for _, v := range loadVectors(t).Signatures {
		h := PersonalMessageHash([]byte(v.Message))
		if hex0x(h[:]) != v.Hash {
			t.Errorf("hash of %.30q: %x, ethers %s", v.Message, h, v.Hash)
		}
		sig, err := ParseSignature(v.Signature)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParseChecksummed(v.Address)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyPersonalSign([]byte(v.Message), sig, want); err != nil {
			t.Errorf("%s over %.30q: %v", v.Address, v.Message, err)
		}
		// v as 0/1 is accepted too.
		sig01 := append([]byte(nil), sig...)
		sig01[64] -= 27
		if err := VerifyPersonalSign([]byte(v.Message), sig01, want); err != nil {
			t.Errorf("v=%d: %v", sig01[64], err)
		}
		// Another message, another key: refused.
		if err := VerifyPersonalSign([]byte(v.Message+"!"), sig, want); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("altered message: %v", err)
		}
		// The private key gives the address (derivation checked against ethers).
		keyBytes, _ := hex.DecodeString(v.PrivateKey[2:])
		if got := PublicKeyAddress(secp256k1.PrivKeyFromBytes(keyBytes).PubKey()); got != want {
			t.Errorf("address of the key %s, ethers %s", got, want)
		}
	}
}

func TestRecoverRefusesMalformed(t *testing.T) {
	v := loadVectors(t).Signatures[0]
	sig, _ := ParseSignature(v.Signature)
	h := PersonalMessageHash([]byte(v.Message))

	// s → N - s (the malleated twin, EIP-2): refused.
	var s secp256k1.ModNScalar
	s.SetByteSlice(sig[32:64])
	s.Negate()
	high := append([]byte(nil), sig...)
	b := s.Bytes()
	copy(high[32:64], b[:])
	high[64] ^= 1 // the twin's recovery id flips
	if _, err := RecoverAddress(h, high); !errors.Is(err, ErrMalformed) {
		t.Errorf("high s: %v", err)
	}
	for name, bad := range map[string][]byte{
		"short":  sig[:64],
		"long":   append(append([]byte(nil), sig...), 0),
		"v=29":   append(append([]byte(nil), sig[:64]...), 29),
		"v=2":    append(append([]byte(nil), sig[:64]...), 2),
		"zero s": append(append(append([]byte(nil), sig[:32]...), make([]byte, 32)...), sig[64]),
		"zero r": append(append(make([]byte, 32), sig[32:64]...), sig[64]),
	} {
		if _, err := RecoverAddress(h, bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, s := range []string{"", "0x", v.Signature[:len(v.Signature)-2], v.Signature + "00", "0x" + strings.Repeat("zz", 65)} {
		if _, err := ParseSignature(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSignature(%q): %v", s, err)
		}
	}
}

// decred's own signer, through the r‖s‖v conversion, agrees with recovery.
func TestRoundTripDecredSigner(t *testing.T) {
	seed := Keccak256([]byte("round trip key"))
	key := secp256k1.PrivKeyFromBytes(seed[:])
	msg := []byte("sign in")
	h := PersonalMessageHash(msg)
	compact := ecdsa.SignCompact(key, h[:], false) // [27+recid] ‖ r ‖ s
	sig := append(append([]byte(nil), compact[1:]...), compact[0])
	if err := VerifyPersonalSign(msg, sig, PublicKeyAddress(key.PubKey())); err != nil {
		t.Fatal(err)
	}
}

func FuzzRecoverAddress(f *testing.F) {
	for _, v := range loadVectors(f).Signatures[:3] {
		sig, _ := ParseSignature(v.Signature)
		f.Add([]byte(v.Message), sig)
	}
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		a, err := RecoverAddress(PersonalMessageHash(msg), sig)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if len(sig) != SignatureLen {
			t.Fatalf("recovered from a %d-byte signature", len(sig))
		}
		// What recovers verifies against the recovered address.
		if err := VerifyPersonalSign(msg, sig, a); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range eip55 {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		// Whatever parses names the same address as its checksummed form.
		b, err := ParseChecksummed(a.Hex())
		if err != nil || b != a {
			t.Fatalf("%q: %s does not parse back: %v", s, a.Hex(), err)
		}
		if !strings.EqualFold(a.Hex(), s) {
			t.Fatalf("%q parsed as %s", s, a.Hex())
		}
	})
}

func BenchmarkVerifyPersonalSign(b *testing.B) {
	v := loadVectors(b).Signatures[4] // a sign-in message
	sig, _ := ParseSignature(v.Signature)
	want, _ := ParseChecksummed(v.Address)
	msg := []byte(v.Message)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyPersonalSign(msg, sig, want); err != nil {
			b.Fatal(err)
		}
	}
}
