package secretbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustNew(t testing.TB, primary []byte, previous ...[]byte) *Box {
	t.Helper()
	b, err := New(primary, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGCMKnownAnswers runs the AES-256 test cases 13 to 16 of D. McGrew and
// J. Viega, "The Galois/Counter Mode of Operation (GCM)", revised 2005,
// Appendix B (the GCM submission to NIST, referenced by NIST SP 800-38D),
// through newAEAD, the construction Seal and Open use. The same values
// appear, for example, in GNU Nettle's testsuite/gcm-test.c.
func TestGCMKnownAnswers(t *testing.T) {
	const (
		k     = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
		iv    = "cafebabefacedbaddecaf888"
		p60   = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
		c60   = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
		zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	)
	tests := []struct {
		name             string
		key, iv, a, p, c string
		tag              string
	}{
		{"test case 13", zeros, zeros[:24], "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
		{"test case 14", zeros, zeros[:24], "", zeros[:32], "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
		{"test case 15", k, iv, "", p60 + "1aafd255", c60 + "898015ad", "b094dac5d93471bdec1a502270e3cc6c"},
		{"test case 16", k, iv, "feedfacedeadbeeffeedfacedeadbeefabaddad2", p60, c60, "76fc6ece0f4e1768cddf8853bb2d551b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aead, err := newAEAD(unhex(t, tt.key))
			if err != nil {
				t.Fatal(err)
			}
			if aead.NonceSize() != nonceSize || aead.Overhead() != tagSize {
				t.Fatalf("nonce size %d, overhead %d", aead.NonceSize(), aead.Overhead())
			}
			nonce, a, p := unhex(t, tt.iv), unhex(t, tt.a), unhex(t, tt.p)
			want := unhex(t, tt.c+tt.tag)
			got := aead.Seal(nil, nonce, p, a)
			if !bytes.Equal(got, want) {
				t.Errorf("Seal = %x\nwant   %x", got, want)
			}
			opened, err := aead.Open(nil, nonce, want, a)
			if err != nil || !bytes.Equal(opened, p) {
				t.Errorf("Open = %x, %v; want %x", opened, err, p)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	key := testKey(7)
	sum := sha256.Sum256(append([]byte("tollgate-secretbox-key-id"), key...))
	if got := keyIDOf(key); !bytes.Equal(got[:], sum[:4]) {
		t.Errorf("keyIDOf = %x, want %x", got, sum[:4])
	}
	b := mustNew(t, key)
	sealed, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != 1 || !bytes.Equal(sealed[1:5], sum[:4]) {
		t.Errorf("header = %x, want 01%x", sealed[:5], sum[:4])
	}
}

func TestRoundTrip(t *testing.T) {
	b := mustNew(t, testKey(1))
	tests := []struct {
		plaintext, ad []byte
	}{
		{nil, nil},
		{[]byte{}, []byte("signing_key:sig_1")},
		{[]byte("secret"), nil},
		{[]byte("-----BEGIN PRIVATE KEY-----\n..."), []byte("signing_key:sig_3kq7d5m2x9v4c8h6b1n0p2r5ta")},
		{bytes.Repeat([]byte{0xAB}, 100000), []byte("webhook_secret:app_1")},
	}
	for _, tt := range tests {
		sealed, err := b.Seal(tt.plaintext, tt.ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(tt.plaintext)+Overhead {
			t.Errorf("sealed %d bytes into %d, want %d", len(tt.plaintext), len(sealed), len(tt.plaintext)+Overhead)
		}
		if len(tt.plaintext) >= 4 && bytes.Contains(sealed, tt.plaintext) {
			t.Errorf("sealed value contains the plaintext")
		}
		again, err := b.Seal(tt.plaintext, tt.ad)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(sealed[5:17], again[5:17]) {
			t.Errorf("two seals used the same nonce")
		}
		got, err := b.Open(sealed, tt.ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, tt.plaintext) {
			t.Errorf("Open = %q, want %q", got, tt.plaintext)
		}
		if b.NeedsReseal(sealed) {
			t.Errorf("NeedsReseal = true for a value sealed under the primary key")
		}
	}
}

func TestWrongAssociatedData(t *testing.T) {
	b := mustNew(t, testKey(1))
	sealed, err := b.Seal([]byte("secret"), []byte("signing_key:sig_1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range [][]byte{nil, []byte(""), []byte("signing_key:sig_2"), []byte("signing_key:sig_1 "), []byte("signing_key:sig_")} {
		if got, err := b.Open(sealed, ad); !errors.Is(err, ErrCorrupt) || got != nil {
			t.Errorf("Open with associated data %q = %q, %v; want ErrCorrupt", ad, got, err)
		}
	}
	// The header is authenticated too: the associated data cannot absorb
	// bytes moved from it.
	sealed2, err := b.Seal([]byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(sealed2, sealed2[:5]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with the header as associated data: %v", err)
	}
}

func TestTamperEveryByte(t *testing.T) {
	b := mustNew(t, testKey(1), testKey(2))
	ad := []byte("signing_key:sig_1")
	sealed, err := b.Seal([]byte("a secret worth protecting"), ad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, flip := range []byte{0x01, 0x80, 0xFF} {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= flip
			got, err := b.Open(tampered, ad)
			if err == nil || got != nil {
				t.Fatalf("Open succeeded after flipping %#x at byte %d", flip, i)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("byte %d: error %v", i, err)
			}
		}
	}
	// Truncated at every length, and extended.
	for n := range len(sealed) {
		if _, err := b.Open(sealed[:n], ad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open of the first %d bytes: %v", n, err)
		}
	}
	if _, err := b.Open(append(bytes.Clone(sealed), 0), ad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a byte appended: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	oldBox := mustNew(t, oldKey)
	ad := []byte("signing_key:sig_1")
	sealedOld, err := oldBox.Seal([]byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}

	rotated := mustNew(t, newKey, oldKey)
	got, err := rotated.Open(sealedOld, ad)
	if err != nil || string(got) != "secret" {
		t.Fatalf("Open of a value sealed under the previous key = %q, %v", got, err)
	}
	if !rotated.NeedsReseal(sealedOld) {
		t.Error("NeedsReseal = false for a value sealed under the previous key")
	}
	resealed, err := rotated.Seal(got, ad)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.NeedsReseal(resealed) {
		t.Error("NeedsReseal = true after resealing")
	}
	if !bytes.Equal(resealed[1:5], func() []byte { id := keyIDOf(newKey); return id[:] }()) {
		t.Error("Seal did not use the primary key")
	}

	// Once the old key is dropped, old values no longer open; new ones do.
	newOnly := mustNew(t, newKey)
	if _, err := newOnly.Open(sealedOld, ad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open under a dropped key: %v, want ErrUnknownKey", err)
	}
	if got, err := newOnly.Open(resealed, ad); err != nil || string(got) != "secret" {
		t.Errorf("Open of the resealed value = %q, %v", got, err)
	}
	// The old box knows nothing of the new key.
	if _, err := oldBox.Open(resealed, ad); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old box opening a new value: %v, want ErrUnknownKey", err)
	}
}

func TestNeedsReseal(t *testing.T) {
	b := mustNew(t, testKey(1), testKey(2))
	prev := mustNew(t, testKey(2))
	fromPrev, err := prev.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	current, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	badVersion := bytes.Clone(current)
	badVersion[0] = 2
	tests := []struct {
		name   string
		sealed []byte
		want   bool
	}{
		{"primary", current, false},
		{"previous", fromPrev, true},
		{"unknown key", func() []byte { s, _ := mustNew(t, testKey(3)).Seal([]byte("x"), nil); return s }(), true},
		{"other version", badVersion, true},
		{"short", current[:Overhead-1], true},
		{"empty", nil, true},
	}
	for _, tt := range tests {
		if got := b.NeedsReseal(tt.sealed); got != tt.want {
			t.Errorf("%s: NeedsReseal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		primary  []byte
		previous [][]byte
		wantErr  string
	}{
		{"one key", testKey(1), nil, ""},
		{"with previous", testKey(1), [][]byte{testKey(2), testKey(3)}, ""},
		{"previous equals primary", testKey(1), [][]byte{testKey(1)}, ""},
		{"previous twice", testKey(1), [][]byte{testKey(2), testKey(2)}, ""},
		{"nil primary", nil, nil, "primary key is 0 bytes; want 32"},
		{"short primary", testKey(1)[:16], nil, "primary key is 16 bytes; want 32"},
		{"long primary", append(testKey(1), 0), nil, "primary key is 33 bytes; want 32"},
		{"short previous", testKey(1), [][]byte{testKey(2), testKey(3)[:24]}, "previous key 2 is 24 bytes; want 32"},
	}
	for _, tt := range tests {
		b, err := New(tt.primary, tt.previous...)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Error() != "secretbox: "+tt.wantErr {
			t.Errorf("%s: New = %v, %v; want error %q", tt.name, b, err, tt.wantErr)
		}
	}
	// New copies what it needs: changing the caller's slice changes nothing.
	key := testKey(9)
	b := mustNew(t, key)
	sealed, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	key[0] ^= 1
	if _, err := b.Open(sealed, nil); err != nil {
		t.Errorf("Open after the caller changed its key slice: %v", err)
	}
}

func TestZeroBox(t *testing.T) {
	var b Box
	if _, err := b.Seal([]byte("x"), nil); err == nil {
		t.Error("zero Box sealed")
	}
	sealed, err := mustNew(t, testKey(1)).Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("zero Box Open: %v", err)
	}
}

func TestErrorsSayNothing(t *testing.T) {
	for _, err := range []error{ErrCorrupt, ErrUnknownKey} {
		if strings.ContainsAny(err.Error(), "0123456789") {
			t.Errorf("%q contains details", err)
		}
	}
}

func TestParseKey(t *testing.T) {
	// The same 32 bytes, 0x00 to 0x1f, in every accepted form.
	want := make([]byte, KeySize)
	for i := range want {
		want[i] = byte(i)
	}
	const (
		b64    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
		b64raw = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
		hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	)
	if base64.StdEncoding.EncodeToString(want) != b64 || hex.EncodeToString(want) != hexKey {
		t.Fatal("test vectors are wrong")
	}
	tests := []struct {
		in      string
		wantErr string
	}{
		{b64, ""},
		{b64raw, ""},
		{hexKey, ""},
		{strings.ToUpper(hexKey), ""},
		{b64 + "\n", ""},
		{"  " + b64raw + "\r\n", ""},
		{"\t" + hexKey + "\n\n", ""},
		{"", "got 0 characters"},
		{"   \n", "got 0 characters"},
		{b64[:40], "got 40 characters"},
		{hexKey[:62], "got 62 characters"},
		{hexKey + "00", "got 66 characters"},
		{strings.Replace(hexKey, "0", "g", 1), "neither valid base64 nor valid hex"},
		{strings.Replace(b64, "A", "!", 1), "neither valid base64 nor valid hex"},
		{strings.Replace(b64, "A", "-", 1), "neither valid base64 nor valid hex"},              // URL-safe alphabet
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", "neither valid base64 nor valid hex"}, // stray bits
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH\nh8", "neither valid base64 nor valid hex"},
		{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd==", "got 42 characters"},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if tt.wantErr == "" {
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("ParseKey(%q) = %x, %v; want %x", tt.in, got, err, want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseKey(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			continue
		}
		// The error never repeats any part of the input.
		if s := strings.TrimSpace(tt.in); len(s) >= 4 {
			for i := 0; i+4 <= len(s); i++ {
				if strings.Contains(err.Error(), s[i:i+4]) {
					t.Errorf("ParseKey(%q) error %q echoes the input", tt.in, err)
					break
				}
			}
		}
	}
}

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 44 || seen[s] {
			t.Fatalf("GenerateKey() = %q", s)
		}
		seen[s] = true
		key, err := ParseKey(s)
		if err != nil || len(key) != KeySize {
			t.Fatalf("ParseKey(GenerateKey()) = %x, %v", key, err)
		}
		if _, err := New(key); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permissions")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "secretbox.key")

	key, err := CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created key file has mode %#o, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 45 || data[44] != '\n' {
		t.Errorf("key file holds %q, want 44 characters of base64 and a newline", data)
	}
	loaded, err := LoadKeyFile(path)
	if err != nil || !bytes.Equal(loaded, key) {
		t.Fatalf("LoadKeyFile = %x, %v; want %x", loaded, err, key)
	}

	// Never overwrite.
	if _, err := CreateKeyFile(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateKeyFile over an existing file: %v, want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("CreateKeyFile changed an existing file")
	}

	// Refuse group and other permissions, each bit on its own.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(path)
		if err == nil {
			t.Errorf("LoadKeyFile accepted mode %#o", mode)
			continue
		}
		if !strings.Contains(err.Error(), "lets group or others access it; run chmod 600") {
			t.Errorf("LoadKeyFile with mode %#o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyFile(path); err != nil {
			t.Errorf("LoadKeyFile with mode %#o: %v", mode, err)
		}
	}

	// Other failures.
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hexKey := strings.Repeat("ab", 32)
	tests := []struct {
		name, path, want string
	}{
		{"hex", write("hex.key", hexKey+"\n", 0o600), ""},
		{"missing", filepath.Join(dir, "missing.key"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"garbage", write("garbage.key", "not a key at all", 0o600), "got 16 characters"},
		{"too large", write("large.key", strings.Repeat(" ", 2000)+hexKey, 0o600), "larger than 1024 bytes"},
	}
	for _, tt := range tests {
		got, err := LoadKeyFile(tt.path)
		if tt.want == "" {
			if err != nil || hex.EncodeToString(got) != hexKey {
				t.Errorf("%s: LoadKeyFile = %x, %v", tt.name, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: LoadKeyFile error = %v, want %q", tt.name, err, tt.want)
		}
	}

	// CreateKeyFile into a missing directory fails without creating anything.
	if _, err := CreateKeyFile(filepath.Join(dir, "nope", "k")); err == nil {
		t.Error("CreateKeyFile into a missing directory succeeded")
	}
}

// sealWithNonce seals like Seal but with a chosen nonce, so that fuzz seeds
// are the same in every fuzzing process.
func sealWithNonce(t testing.TB, key []byte, nonce byte, plaintext, ad string) []byte {
	t.Helper()
	aead, err := newAEAD(key)
	if err != nil {
		t.Fatal(err)
	}
	id := keyIDOf(key)
	out := append([]byte{version}, id[:]...)
	out = append(out, bytes.Repeat([]byte{nonce}, nonceSize)...)
	return aead.Seal(out, out[headerSize:], []byte(plaintext), additionalData(out[:headerSize], []byte(ad)))
}

func FuzzOpen(f *testing.F) {
	b := mustNew(f, testKey(1), testKey(2))
	// Seeds include genuine sealed values; only these exact inputs may open.
	genuine := map[string]bool{}
	for _, s := range []struct {
		key    []byte
		nonce  byte
		pt, ad string
	}{
		{testKey(1), 1, "secret", "signing_key:sig_1"},
		{testKey(1), 2, "", ""},
		{testKey(2), 3, "older secret", "signing_key:sig_2"},
	} {
		sealed := sealWithNonce(f, s.key, s.nonce, s.pt, s.ad)
		if got, err := b.Open(sealed, []byte(s.ad)); err != nil || string(got) != s.pt {
			f.Fatalf("seed does not open: %q, %v", got, err)
		}
		genuine[string(sealed)+"\x00"+s.ad] = true
		f.Add(sealed, []byte(s.ad))
		f.Add(sealed, []byte(s.ad+"x"))
	}
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, Overhead), []byte("ad"))
	f.Add(append([]byte{1}, make([]byte, 40)...), []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		got, err := b.Open(sealed, ad)
		if err != nil {
			if got != nil {
				t.Fatal("Open returned plaintext with an error")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Open error %v is neither ErrCorrupt nor ErrUnknownKey", err)
			}
			return
		}
		if !genuine[string(sealed)+"\x00"+string(ad)] {
			t.Fatalf("Open accepted a value nobody sealed: %x (ad %q)", sealed, ad)
		}
		if len(got) != len(sealed)-Overhead {
			t.Fatalf("Open returned %d bytes from %d", len(got), len(sealed))
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	box := mustNew(b, testKey(1))
	pt := make([]byte, 256)
	ad := []byte("signing_key:sig_1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := box.Seal(pt, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeriveKeys: HKDF-SHA256 (RFC 5869, no salt) of each key, primary
// first, with the purpose in the info; a known answer computed apart with
// Python's hmac module.
func TestDeriveKeys(t *testing.T) {
	primary := make([]byte, KeySize)
	for i := range primary {
		primary[i] = byte(i)
	}
	previous := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(primary, previous, primary)
	if err != nil {
		t.Fatal(err)
	}
	keys := b.DeriveKeys("siwx-nonce")
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2 (the duplicate primary ignored)", len(keys))
	}
	if got := hex.EncodeToString(keys[0]); got != "1206e2dae57964f7681e83103dd9f314e14526806556000e355babbfae9df23b" {
		t.Errorf("derived key %s", got)
	}
	alone, _ := New(previous)
	if !bytes.Equal(keys[1], alone.DeriveKeys("siwx-nonce")[0]) {
		t.Error("the previous key's derived key differs from the same key's as primary")
	}
	if other := b.DeriveKeys("other"); bytes.Equal(other[0], keys[0]) || bytes.Equal(keys[0], primary) {
		t.Error("purposes share a key, or the master key is returned")
	}
	if n := len((&Box{}).DeriveKeys("x")); n != 0 {
		t.Errorf("the zero Box derived %d keys", n)
	}
}
