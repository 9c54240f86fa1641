package tokens

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
)

// memKeys is a minimal in-memory KeyStore.
type memKeys struct {
	mu   sync.Mutex
	keys []store.SigningKey
}

func (m *memKeys) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	return nil
}

func (m *memKeys) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.SigningKey(nil), m.keys...), nil
}

func (m *memKeys) RetireSigningKey(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			if m.keys[i].RetiredAt.IsZero() {
				m.keys[i].RetiredAt = at
			}
			return nil
		}
	}
	return store.ErrNotFound
}

func (m *memKeys) DeleteSigningKey(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.keys {
		if m.keys[i].ID == id {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			return nil
		}
	}
	return store.ErrNotFound
}

// xorSealer stands in for secretbox: it is enough to prove that the keyring
// seals what it stores and binds it to the key ID.
type xorSealer struct{}

func (xorSealer) Seal(p, ad []byte) ([]byte, error) {
	out := append(append([]byte{}, ad...), '|')
	for _, b := range p {
		out = append(out, b^0x5a)
	}
	return out, nil
}

func (xorSealer) Open(s, ad []byte) ([]byte, error) {
	prefix := append(append([]byte{}, ad...), '|')
	if !bytes.HasPrefix(s, prefix) {
		return nil, errors.New("wrong associated data")
	}
	out := make([]byte, 0, len(s)-len(prefix))
	for _, b := range s[len(prefix):] {
		out = append(out, b^0x5a)
	}
	return out, nil
}

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newRing(t *testing.T) (*Keyring, *memKeys, *clock.Fake) {
	t.Helper()
	ks := &memKeys{}
	clk := clock.NewFake(t0)
	k, err := LoadKeyring(context.Background(), ks, xorSealer{}, clk)
	if err != nil {
		t.Fatal(err)
	}
	return k, ks, clk
}

func claims(clk clock.Clock, ttl time.Duration) jwt.RegisteredClaims {
	now := clk.Now()
	return jwt.RegisteredClaims{
		Issuer: "https://issuer.test", Subject: "usr_1", Audience: jwt.ClaimStrings{"aud-a"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: "jti-1",
	}
}

func TestFirstLoadGeneratesOnePersistedSealedKey(t *testing.T) {
	k, ks, clk := newRing(t)
	if len(ks.keys) != 1 || k.ActiveKeyID() != ks.keys[0].ID {
		t.Fatalf("keys = %d, active %q", len(ks.keys), k.ActiveKeyID())
	}
	if _, err := x509.ParsePKCS8PrivateKey(ks.keys[0].PrivateKey); err == nil {
		t.Fatal("private key stored in clear")
	}
	// A second load (restart) reuses the stored key.
	k2, err := LoadKeyring(context.Background(), ks, xorSealer{}, clk)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.keys) != 1 || k2.ActiveKeyID() != k.ActiveKeyID() {
		t.Fatal("restart generated a new key")
	}
}

func TestSignVerify(t *testing.T) {
	k, _, clk := newRing(t)
	v := NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-a", 30*time.Second)
	tok, err := k.Sign(claims(clk, time.Hour), "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	var got jwt.RegisteredClaims
	if err := v.Verify(tok, &got); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got.Subject != "usr_1" {
		t.Errorf("sub = %q", got.Subject)
	}

	tests := []struct {
		name   string
		verify *Verifier
		token  func() string
		want   error
	}{
		{"wrong audience", NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-b", 0), func() string { return tok }, ErrInvalid},
		{"wrong issuer", NewVerifier(k, clk, "at+jwt", "https://other.test", "aud-a", 0), func() string { return tok }, ErrInvalid},
		{"wrong typ", NewVerifier(k, clk, "jwt", "https://issuer.test", "aud-a", 0), func() string { return tok }, ErrInvalid},
		{"tampered payload", v, func() string {
			parts := strings.Split(tok, ".")
			parts[1] = strings.ToUpper(parts[1][:1]) + parts[1][1:] + "A"
			return strings.Join(parts, ".")
		}, ErrInvalid},
		{"alg none", v, func() string {
			tn := jwt.NewWithClaims(jwt.SigningMethodNone, claims(clk, time.Hour))
			tn.Header["kid"] = k.ActiveKeyID()
			tn.Header["typ"] = "at+jwt"
			s, _ := tn.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}, ErrInvalid},
		{"HS256 with the public key as secret (alg confusion)", v, func() string {
			pub, _ := k.Keyfunc(&jwt.Token{Header: map[string]any{"kid": k.ActiveKeyID()}})
			der, _ := x509.MarshalPKIXPublicKey(pub.(*rsa.PublicKey))
			th := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(clk, time.Hour))
			th.Header["kid"] = k.ActiveKeyID()
			th.Header["typ"] = "at+jwt"
			s, _ := th.SignedString(der)
			return s
		}, ErrInvalid},
		{"unknown kid", v, func() string {
			other, _, _ := newRing(t)
			s, _ := other.Sign(claims(clk, time.Hour), "at+jwt")
			return s
		}, ErrInvalid},
		{"no expiry", v, func() string {
			c := claims(clk, time.Hour)
			c.ExpiresAt = nil
			s, _ := k.Sign(c, "at+jwt")
			return s
		}, ErrInvalid},
		{"expired", v, func() string {
			s, _ := k.Sign(claims(clock.NewFake(t0.Add(-2*time.Hour)), time.Hour), "at+jwt")
			return s
		}, ErrExpired},
		{"not yet valid", v, func() string {
			c := claims(clk, time.Hour)
			c.NotBefore = jwt.NewNumericDate(t0.Add(10 * time.Minute))
			s, _ := k.Sign(c, "at+jwt")
			return s
		}, ErrInvalid},
		{"garbage", v, func() string { return "not.a.jwt" }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c jwt.RegisteredClaims
			err := tt.verify.Verify(tt.token(), &c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestLeewayAndTypVariants(t *testing.T) {
	k, _, clk := newRing(t)
	v := NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-a", 30*time.Second)
	tok, _ := k.Sign(claims(clk, time.Minute), "application/AT+JWT")
	clk.Advance(time.Minute + 20*time.Second) // expired by 20 s: inside the leeway
	var c jwt.RegisteredClaims
	if err := v.Verify(tok, &c); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	clk.Advance(20 * time.Second)
	if err := v.Verify(tok, &c); !errors.Is(err, ErrExpired) {
		t.Fatalf("past leeway: %v", err)
	}
}

func TestRotationKeepsOldTokensValidAndPublished(t *testing.T) {
	k, _, clk := newRing(t)
	v := NewVerifier(k, clk, "at+jwt", "https://issuer.test", "aud-a", 0)
	oldID := k.ActiveKeyID()
	oldTok, _ := k.Sign(claims(clk, time.Hour), "at+jwt")
	clk.Advance(time.Second)
	newID, err := k.Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if k.ActiveKeyID() != newID || newID == oldID {
		t.Fatalf("active = %q, new = %q", k.ActiveKeyID(), newID)
	}
	newTok, _ := k.Sign(claims(clk, time.Hour), "at+jwt")
	var c jwt.RegisteredClaims
	for _, tok := range []string{oldTok, newTok} {
		if err := v.Verify(tok, &c); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Key(oldID)) != 1 || len(set.Key(newID)) != 1 {
		t.Fatalf("jwks = %s", k.JWKS())
	}
	for _, jwk := range set.Keys {
		if !jwk.IsPublic() || jwk.Algorithm != "RS256" || jwk.Use != "sig" {
			t.Errorf("published key %s: public=%v alg=%s use=%s", jwk.KeyID, jwk.IsPublic(), jwk.Algorithm, jwk.Use)
		}
	}
}

// A token verifies with nothing but the published JWKS, through go-jose, a
// JOSE implementation independent of the golang-jwt code that signed it.
func TestJWKSVerifiesIndependently(t *testing.T) {
	k, _, clk := newRing(t)
	tok, _ := k.Sign(claims(clk, time.Hour), "at+jwt")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	sig, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(sig.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", sig.Signatures[0].Header.KeyID)
	}
	payload, err := sig.Verify(keys[0])
	if err != nil {
		t.Fatalf("go-jose verify: %v", err)
	}
	if !bytes.Contains(payload, []byte(`"sub":"usr_1"`)) {
		t.Errorf("payload = %s", payload)
	}
}

func TestWrongMasterKeyFailsLoudly(t *testing.T) {
	_, ks, clk := newRing(t)
	ks.keys[0].PrivateKey[0] ^= 0xff // as if sealed for another row or key
	if _, err := LoadKeyring(context.Background(), ks, xorSealer{}, clk); err == nil {
		t.Fatal("loaded a key that does not open")
	}
}
