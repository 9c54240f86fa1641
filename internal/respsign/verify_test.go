package respsign

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	decredecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// spki builds a secp256k1 SubjectPublicKeyInfo around point.
func spki(point []byte) []byte {
	der := []byte{0x30, byte(18 + 3 + len(point)),
		0x30, 0x10,
		0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
		0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a,
		0x03, byte(1 + len(point)), 0x00}
	return append(der, point...)
}

func TestParsePublicKeyPEM(t *testing.T) {
	pub := fixedKey("parse").PubKey()
	good := MarshalPublicKeyPEM(pub)
	der := MarshalPublicKeyDER(pub)

	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519DER, _ := x509.MarshalPKIXPublicKey(x25519.PublicKey())

	hybrid := pub.SerializeUncompressed()
	hybrid[0] = 0x06 | hybrid[64]&1
	offCurve := pub.SerializeUncompressed()
	offCurve[64] ^= 1
	// Explicit parameters in place of the named curve: a SEQUENCE.
	explicit := append([]byte{}, der...)
	explicit[13] = 0x30
	// A non-minimal length encoding (BER, not DER).
	ber := append([]byte{0x30, 0x81, 0x56}, der[2:]...)

	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ours", good, true},
		{"surrounding white space", append(append([]byte("\r\n\n"), good...), "\n \t\n"...), true},
		{"compressed point", pemOf("PUBLIC KEY", spki(pub.SerializeCompressed())), true},
		{"P-256", pemOf("PUBLIC KEY", p256DER), false},
		{"RSA", pemOf("PUBLIC KEY", rsaDER), false},
		{"X25519", pemOf("PUBLIC KEY", x25519DER), false},
		{"hybrid point", pemOf("PUBLIC KEY", spki(hybrid)), false},
		{"point off the curve", pemOf("PUBLIC KEY", spki(offCurve)), false},
		{"short point", pemOf("PUBLIC KEY", spki(pub.SerializeUncompressed()[:64])), false},
		{"explicit parameters", pemOf("PUBLIC KEY", explicit), false},
		{"BER length", pemOf("PUBLIC KEY", ber), false},
		{"trailing DER", pemOf("PUBLIC KEY", append(append([]byte{}, der...), 0)), false},
		{"unused bits", pemOf("PUBLIC KEY", func() []byte { d := append([]byte{}, der...); d[22] = 1; return d }()), false},
		{"trailing data", append(append([]byte{}, good...), "junk"...), false},
		{"two blocks", append(append([]byte{}, good...), good...), false},
		{"leading data", append([]byte("key: "), good...), false},
		{"EC PUBLIC KEY type", pemOf("EC PUBLIC KEY", der), false},
		{"headers", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Headers: map[string]string{"a": "b"}, Bytes: der}), false},
		{"raw DER", der, false},
		{"empty", nil, false},
	} {
		got, err := ParsePublicKeyPEM(tc.in)
		switch {
		case tc.ok && (err != nil || !got.IsEqual(pub)):
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (err == nil || !errors.Is(err, ErrInvalidKey)):
			t.Errorf("%s: accepted (%v)", tc.name, err)
		}
	}
}

func TestParseJWK(t *testing.T) {
	pub := fixedKey("jwk").PubKey()
	j := NewJWK("sig_1", pub)
	enc := func(f func(m map[string]any)) []byte {
		b, _ := json.Marshal(j)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		b, _ = json.Marshal(m)
		return b
	}
	other := NewJWK("", fixedKey("other").PubKey())
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"ours", enc(func(map[string]any) {}), true},
		{"bare", enc(func(m map[string]any) { delete(m, "kid"); delete(m, "alg"); delete(m, "use") }), true},
		{"extra members", enc(func(m map[string]any) { m["key_ops"] = []string{"verify"} }), true},
		{"kty", enc(func(m map[string]any) { m["kty"] = "OKP" }), false},
		{"crv", enc(func(m map[string]any) { m["crv"] = "P-256" }), false},
		{"alg", enc(func(m map[string]any) { m["alg"] = "ES256" }), false},
		{"use", enc(func(m map[string]any) { m["use"] = "enc" }), false},
		{"private", enc(func(m map[string]any) { m["d"] = j.X }), false},
		{"padded x", enc(func(m map[string]any) { m["x"] = j.X + "=" }), false},
		{"std base64 x", enc(func(m map[string]any) {
			m["x"] = base64.RawStdEncoding.EncodeToString(pub.SerializeUncompressed()[1:33])
		}), !strings.ContainsAny(j.X, "-_")}, // the same if no character differs
		{"short y", enc(func(m map[string]any) { m["y"] = j.Y[:40] }), false},
		{"x of another key", enc(func(m map[string]any) { m["x"] = other.X }), false},
		{"not JSON", []byte("{"), false},
		{"x a number", enc(func(m map[string]any) { m["x"] = 1 }), false},
	} {
		got, err := ParseJWK(tc.in)
		switch {
		case tc.ok && (err != nil || !got.IsEqual(pub)):
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (err == nil || !errors.Is(err, ErrInvalidKey)):
			t.Errorf("%s: accepted (%v)\n%s", tc.name, err, tc.in)
		}
	}
}

func TestVerify(t *testing.T) {
	priv := fixedKey("verify")
	pub := priv.PubKey()
	body := []byte(`{"data":"Example payload"}`)
	sig := sign(priv, body)
	der, _ := base64.StdEncoding.DecodeString(sig)

	// The same signature with s negated: valid, though Sign never makes one.
	parsed, _ := decredecdsa.ParseDERSignature(der)
	r, s := parsed.R(), parsed.S()
	s.Negate()
	high := highSDER(&r, &s)
	rb, sb := r.Bytes(), s.Bytes()

	for _, tc := range []struct {
		name string
		pub  *secp256k1.PublicKey
		body []byte
		sig  string
		ok   bool
	}{
		{"good", pub, body, sig, true},
		{"high s", pub, body, base64.StdEncoding.EncodeToString(high), true},
		{"tampered body", pub, []byte(`{"data":"Example payloaD"}`), sig, false},
		{"empty body", pub, nil, sig, false},
		{"other key", fixedKey("other").PubKey(), body, sig, false},
		{"no key", nil, body, sig, false},
		{"unpadded", pub, body, strings.TrimRight(sig, "="), false},
		{"url alphabet", pub, body, base64.URLEncoding.EncodeToString(der), !strings.ContainsAny(sig, "+/")},
		{"new line", pub, body, sig[:20] + "\n" + sig[20:], false},
		{"white space", pub, body, " " + sig, false},
		{"trailing DER", pub, body, base64.StdEncoding.EncodeToString(append(der, 0)), false},
		{"raw r‖s", pub, body, base64.StdEncoding.EncodeToString(append(rb[:], sb[:]...)), false},
		{"empty", pub, body, "", false},
		{"long", pub, body, strings.Repeat("A", 1000), false},
	} {
		err := Verify(tc.pub, tc.body, tc.sig)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (err == nil || !errors.Is(err, ErrInvalidSignature)):
			t.Errorf("%s: accepted (%v)", tc.name, err)
		}
	}
}

// highSDER encodes r and s in DER without normalizing s.
func highSDER(r, s *secp256k1.ModNScalar) []byte {
	integer := func(v *secp256k1.ModNScalar) []byte {
		b := v.Bytes()
		i := 0
		for i < 31 && b[i] == 0 && b[i+1]&0x80 == 0 {
			i++
		}
		out := b[i:]
		if out[0]&0x80 != 0 {
			out = append([]byte{0}, out...)
		}
		return append([]byte{0x02, byte(len(out))}, out...)
	}
	body := append(integer(r), integer(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func FuzzParsePublicKeyPEM(f *testing.F) {
	pub := fixedKey("fuzz").PubKey()
	f.Add(MarshalPublicKeyPEM(pub))
	f.Add(pemOf("PUBLIC KEY", spki(pub.SerializeCompressed())))
	f.Add(pemOf("PUBLIC KEY", MarshalPublicKeyDER(pub)[:40]))
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	f.Add(pemOf("PUBLIC KEY", p256DER))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	// The DER and JWK parsers get the input too, where mutations do not
	// have to survive base64.
	f.Add(MarshalPublicKeyDER(pub))
	f.Add(spki(pub.SerializeCompressed()))
	f.Add(mustJSON(f, NewJWK("k", pub)))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParsed(t, "PEM", ParsePublicKeyPEM)(data)
		checkParsed(t, "DER", ParsePublicKeyDER)(data)
		checkParsed(t, "JWK", ParseJWK)(data)
	})
}

// checkParsed returns a function that checks what parse makes of its input:
// an error wrapping ErrInvalidKey, or a key on the curve that marshals back
// to itself.
func checkParsed(t *testing.T, name string, parse func([]byte) (*secp256k1.PublicKey, error)) func([]byte) {
	return func(data []byte) {
		t.Helper()
		got, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("%s: error %v does not wrap ErrInvalidKey", name, err)
			}
			return
		}
		if !got.IsOnCurve() {
			t.Fatalf("%s: accepted a point off the curve", name)
		}
		again, err := ParsePublicKeyPEM(MarshalPublicKeyPEM(got))
		if err != nil || !again.IsEqual(got) {
			t.Fatalf("%s: PEM round trip: %v", name, err)
		}
		j, err := ParseJWK(mustJSON(t, NewJWK("k", got)))
		if err != nil || !j.IsEqual(got) {
			t.Fatalf("%s: JWK round trip: %v", name, err)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzVerifySignature checks that Verify never panics, that what Sign makes
// always verifies, and that a signature verifies only for its body.
func FuzzVerifySignature(f *testing.F) {
	priv := fixedKey("fuzz")
	pub := priv.PubKey()
	for _, b := range goldenBodies {
		f.Add([]byte(b), sign(priv, []byte(b)))
	}
	f.Add([]byte("x"), "")
	f.Add([]byte("x"), "MAYCAQECAQE=") // r = s = 1
	f.Add([]byte("x"), strings.Repeat("/", maxSignatureB64))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		if err := Verify(pub, body, sig); err == nil {
			// Only a signature of this body verifies: the signature of
			// another body must not.
			if Verify(pub, append(body, 0), sig) == nil {
				t.Fatalf("%q verifies for two bodies", sig)
			}
		} else if !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("error %v does not wrap ErrInvalidSignature", err)
		}
		own := sign(priv, body)
		if err := Verify(pub, body, own); err != nil {
			t.Fatalf("own signature of %q: %v", body, err)
		}
	})
}
