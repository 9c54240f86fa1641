package siwx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/tollgate/tollgate/internal/solana"
)

var (
	nonceKey  = bytes.Repeat([]byte{1}, 32)
	nonceKey2 = bytes.Repeat([]byte{2}, 32)
)

func newNonces(t testing.TB, keys ...[]byte) *Nonces {
	t.Helper()
	n, err := NewNonces(0, 0, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonces(t *testing.T) {
	n := newNonces(t, nonceKey)
	issued := t0
	nonce := n.Issue(issued)
	if len(nonce) != NonceLength || !lowerHex(nonce) {
		t.Fatalf("nonce %q: want %d lower-case hex digits", nonce, NonceLength)
	}
	exp, err := n.Check(nonce, issued.Add(time.Minute))
	if err != nil || !exp.Equal(issued.Add(DefaultHeaderMaxAge)) {
		t.Fatalf("Check = %v, %v; want %v", exp, err, issued.Add(DefaultHeaderMaxAge))
	}
	// Another node, with the same key (after a restart, say), accepts it.
	if _, err := newNonces(t, nonceKey).Check(nonce, issued); err != nil {
		t.Fatalf("another instance with the same key: %v", err)
	}
	// After a rotation, the previous key still recognizes it; another
	// deployment's key does not.
	if _, err := newNonces(t, nonceKey2, nonceKey).Check(nonce, issued); err != nil {
		t.Fatalf("the previous key: %v", err)
	}
	if _, err := newNonces(t, nonceKey2).Check(nonce, issued); !errors.Is(err, ErrMalformed) {
		t.Fatalf("another deployment's nonce: %v, want ErrMalformed", err)
	}

	flip := []byte(nonce)
	if flip[31] == '0' { // change the last digit
		flip[31] = '1'
	} else {
		flip[31] = '0'
	}
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	for name, bad := range map[string]string{
		"made up":     hex.EncodeToString(random),
		"altered":     string(flip),
		"upper case":  strings.ToUpper(nonce),
		"short":       nonce[:30],
		"long":        nonce + "00",
		"empty":       "",
		"not hex":     "zz" + nonce[2:],
		"client-made": "n0nce1234567",
	} {
		if _, err := n.Check(bad, issued); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s nonce %q: %v, want ErrMalformed", name, bad, err)
		}
	}

	// Its age: from its issue (a minute of skew between nodes) to 5 minutes.
	for _, c := range []struct {
		at   time.Time
		want error
	}{
		{issued.Add(-DefaultSkew), nil},
		{issued.Add(-DefaultSkew - time.Second), ErrMalformed},
		{issued.Add(DefaultHeaderMaxAge - time.Second), nil},
		{issued.Add(DefaultHeaderMaxAge), ErrExpired},
		{issued.Add(24 * time.Hour), ErrExpired},
	} {
		if _, err := n.Check(nonce, c.at); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("at %v after issue: %v, want %v", c.at.Sub(issued), err, c.want)
		}
	}

	seen := map[string]bool{}
	for range 1000 {
		s := n.Issue(issued)
		if seen[s] {
			t.Fatalf("nonce %s issued twice", s)
		}
		seen[s] = true
	}
}

func TestNewNoncesRefuses(t *testing.T) {
	for name, f := range map[string]func() (*Nonces, error){
		"no key":       func() (*Nonces, error) { return NewNonces(0, 0) },
		"short key":    func() (*Nonces, error) { return NewNonces(0, 0, make([]byte, 16)) },
		"negative age": func() (*Nonces, error) { return NewNonces(-time.Second, 0, nonceKey) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// solanaProof returns a SIGN-IN-WITH-X header signed by key for the
// challenge fields nonce and issuedAt.
func solanaProof(t testing.TB, key ed25519.PrivateKey, nonce string, issuedAt time.Time) string {
	t.Helper()
	var pub solana.PublicKey
	copy(pub[:], key.Public().(ed25519.PublicKey))
	p := Proof{
		Domain: "api.example.com", Address: pub.String(), URI: "https://api.example.com", Version: "1",
		ChainID: solanaMainnet, Type: TypeEd25519, Nonce: nonce, IssuedAt: issuedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	m, err := p.Message()
	if err != nil {
		t.Fatal(err)
	}
	p.Signature = base58.Encode(ed25519.Sign(key, []byte(m.String())))
	return p.Encode()
}

// TestVerifyProofNonces: with Config.Nonces, a proof must carry a nonce of
// this deployment's challenges, still young; the nonce check comes before
// the signature's, and the proof expires with its nonce.
func TestVerifyProofNonces(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nonces := newNonces(t, nonceKey)
	v, clk := newTestVerifier(t, func(c *Config) { c.Nonces = nonces })
	issued := clk.Now()
	nonce := nonces.Issue(issued)
	clk.Advance(30 * time.Second) // the proof is signed a little after the challenge
	good := solanaProof(t, key, nonce, clk.Now())
	r, err := v.VerifyProof(good)
	if err != nil {
		t.Fatal(err)
	}
	if r.Nonce != nonce || !r.NonceExpires.Equal(issued.Add(DefaultHeaderMaxAge)) || !r.Expires.Equal(r.NonceExpires) {
		t.Fatalf("VerifyProof = %+v; want the nonce, expiring with it at %v", r, issued.Add(DefaultHeaderMaxAge))
	}
	// The cached answer says the same.
	if r2, err := v.VerifyProof(good); err != nil || r2 != r {
		t.Fatalf("cached: %+v, %v", r2, err)
	}
	// A nonce the client made up, or another deployment's: refused, signed
	// or not.
	for _, bad := range []string{"a1b2c3d4e5f67890a1b2c3d4e5f67890", newNonces(t, nonceKey2).Issue(issued)} {
		if _, err := v.VerifyProof(solanaProof(t, key, bad, clk.Now())); !errors.Is(err, ErrMalformed) {
			t.Errorf("nonce %s: %v, want ErrMalformed", bad, err)
		}
	}
	// Without Nonces, any nonce goes (the library's default).
	plain, _ := newTestVerifier(t, nil)
	if _, err := plain.VerifyProof(solanaProof(t, key, "a1b2c3d4e5f67890a1b2c3d4e5f67890", t0)); err != nil {
		t.Errorf("without Nonces: %v", err)
	}
	// Once the nonce is 5 minutes old, the proof has expired with it, even
	// though its own issuedAt is younger.
	clk.Advance(DefaultHeaderMaxAge - 30*time.Second)
	if _, err := v.VerifyProof(good); !errors.Is(err, ErrExpired) {
		t.Errorf("at the nonce's end: %v, want ErrExpired", err)
	}
	fresh := solanaProof(t, key, nonce, clk.Now())
	if _, err := v.VerifyProof(fresh); !errors.Is(err, ErrExpired) {
		t.Errorf("a new proof of an expired nonce: %v, want ErrExpired", err)
	}
}

// FuzzNonceCheck checks that Check never panics, that its errors wrap
// ErrMalformed or ErrExpired, and that it accepts only what Issue made.
func FuzzNonceCheck(f *testing.F) {
	n := newNonces(f, nonceKey)
	f.Add(n.Issue(t0))
	f.Add("a1b2c3d4e5f67890a1b2c3d4e5f67890")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, err := n.Check(s, t0)
		if err == nil {
			if len(s) != NonceLength || !lowerHex(s) {
				t.Fatalf("accepted %q", s)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrExpired) {
			t.Fatalf("error %v wraps neither ErrMalformed nor ErrExpired", err)
		}
	})
}
