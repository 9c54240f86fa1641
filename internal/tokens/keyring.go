// Package tokens holds Tollgate's token signing keys and signs and verifies
// JWTs with them.
//
// A Keyring keeps RSA keys for RS256. Keys are generated on first start and
// persisted in the store with their private half sealed by the master key
// (package secretbox). The newest key that is not retired signs; every stored
// key verifies and is published in the JWKS, so a rotation never invalidates a
// token that is still within its lifetime.
//
// Algorithms are pinned: a token is only ever verified as RS256 with a key the
// keyring holds, looked up by the token's "kid".
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Algorithm is the only signing algorithm Tollgate issues and accepts.
const Algorithm = "RS256"

// rsaBits is the size of generated keys.
const rsaBits = 2048

// KeyStore is the part of the store a Keyring uses.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
}

// Sealer encrypts private keys at rest; *secretbox.Box implements it.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Keyring holds the signing keys. It is safe for concurrent use.
type Keyring struct {
	store  KeyStore
	sealer Sealer
	clock  clock.Clock

	mu     sync.RWMutex
	active *signingKey
	byID   map[string]*signingKey
	jwks   []byte
}

type signingKey struct {
	id        string
	private   *rsa.PrivateKey
	createdAt time.Time
}

// LoadKeyring reads the keys from ks, generating and storing a first key when
// there is none that may sign.
func LoadKeyring(ctx context.Context, ks KeyStore, sealer Sealer, clk clock.Clock) (*Keyring, error) {
	k := &Keyring{store: ks, sealer: sealer, clock: clk}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if k.active == nil {
		if _, err := k.Generate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func associatedData(id string) []byte { return []byte("signing_key:" + id) }

// Generate creates a new key, stores it and makes it the signing key. It
// returns the new key's ID.
func (k *Keyring) Generate(ctx context.Context) (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", fmt.Errorf("tokens: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("tokens: encode key: %w", err)
	}
	id := ids.New(ids.SigningKey)
	sealed, err := k.sealer.Seal(der, associatedData(id))
	if err != nil {
		return "", fmt.Errorf("tokens: seal key: %w", err)
	}
	sk := store.SigningKey{ID: id, Algorithm: Algorithm, PrivateKey: sealed, CreatedAt: k.clock.Now()}
	if err := k.store.CreateSigningKey(ctx, sk); err != nil {
		return "", fmt.Errorf("tokens: store key: %w", err)
	}
	return id, k.Reload(ctx)
}

// Reload re-reads the keys from the store, so that a rotation made by another
// process is seen.
func (k *Keyring) Reload(ctx context.Context) error {
	stored, err := k.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("tokens: list keys: %w", err)
	}
	byID := make(map[string]*signingKey, len(stored))
	var active *signingKey
	var set jose.JSONWebKeySet
	sort.SliceStable(stored, func(i, j int) bool { return stored[i].CreatedAt.Before(stored[j].CreatedAt) })
	for _, s := range stored {
		if s.Algorithm != Algorithm {
			continue
		}
		der, err := k.sealer.Open(s.PrivateKey, associatedData(s.ID))
		if err != nil {
			return fmt.Errorf("tokens: open key %s (wrong master key?): %w", s.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("tokens: parse key %s: %w", s.ID, err)
		}
		priv, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("tokens: key %s is not an RSA key", s.ID)
		}
		sk := &signingKey{id: s.ID, private: priv, createdAt: s.CreatedAt}
		byID[s.ID] = sk
		if s.RetiredAt.IsZero() {
			active = sk // newest non-retired wins
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &priv.PublicKey, KeyID: s.ID, Algorithm: Algorithm, Use: "sig",
		})
	}
	if set.Keys == nil {
		set.Keys = []jose.JSONWebKey{}
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("tokens: encode jwks: %w", err)
	}
	k.mu.Lock()
	k.active, k.byID, k.jwks = active, byID, jwks
	k.mu.Unlock()
	return nil
}

// JWKS returns the JSON Web Key Set of every key that may have signed a token
// still valid. The caller must not modify the returned slice.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// ActiveKeyID returns the ID of the key that signs new tokens.
func (k *Keyring) ActiveKeyID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.active == nil {
		return ""
	}
	return k.active.id
}

// Sign signs claims with the active key, setting the header's kid and typ
// (e.g. "at+jwt" per RFC 9068).
func (k *Keyring) Sign(claims jwt.Claims, typ string) (string, error) {
	k.mu.RLock()
	active := k.active
	k.mu.RUnlock()
	if active == nil {
		return "", errors.New("tokens: no active signing key")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = active.id
	t.Header["typ"] = typ
	return t.SignedString(active.private)
}

// ErrUnknownKey: the token names a key the keyring does not hold.
var ErrUnknownKey = errors.New("tokens: unknown signing key")

// Keyfunc is a jwt.Keyfunc that returns the public key named by the token's
// kid. Use it only with jwt.WithValidMethods([]string{Algorithm}).
func (k *Keyring) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k.mu.RLock()
	sk := k.byID[kid]
	k.mu.RUnlock()
	if sk == nil {
		return nil, ErrUnknownKey
	}
	return &sk.private.PublicKey, nil
}
