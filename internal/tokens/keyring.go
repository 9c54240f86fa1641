// Package tokens holds Tollgate's token signing keys and signs and verifies
// JWTs with them.
//
// A Keyring keeps RSA keys for RS256. Keys are generated on first start and
// persisted in the store with their private half sealed by the master key
// (package secretbox). The newest key that is not retired signs; every stored
// key verifies and is published in the JWKS, so a rotation never invalidates a
// token that is still within its lifetime. Rotate retires the signing key in
// favour of a new one, and Prune deletes keys retired long enough ago that no
// token they signed can still be valid.
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
	"github.com/tollgate/tollgate/internal/signingkeys"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Algorithm is the only signing algorithm Tollgate issues and accepts.
const Algorithm = "RS256"

// rsaBits is the size of generated keys.
const rsaBits = 2048

// A token naming a key the keyring does not hold makes it reload from the
// store, at most once per missReloadInterval and for at most missReloadTimeout.
const (
	missReloadInterval = 5 * time.Second
	missReloadTimeout  = 2 * time.Second
)

// KeyStore is the part of the store a Keyring uses.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	signingkeys.Store
}

var _ KeyStore = store.Store(nil)

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

	reloadMu sync.Mutex // serializes Reload, so an older snapshot never replaces a newer one

	mu      sync.RWMutex
	active  *signingKey
	byID    map[string]*signingKey
	ordered []*signingKey // oldest first
	jwks    []byte

	misses   singleflight.Group // concurrent unknown-kid reloads share one
	missMu   sync.Mutex
	nextMiss time.Time // earliest time of the next unknown-kid reload
}

type signingKey struct {
	id        string
	private   *rsa.PrivateKey
	createdAt time.Time
	retiredAt time.Time
}

// KeyInfo describes a key of a Keyring.
type KeyInfo struct {
	ID        string // the JWT "kid"
	Algorithm string
	CreatedAt time.Time
	RetiredAt time.Time // zero if not retired
	Signing   bool      // whether the key signs new tokens
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
	id, err := k.create(ctx)
	if err != nil {
		return "", err
	}
	return id, k.Reload(ctx)
}

// create generates and stores a new key without reloading.
func (k *Keyring) create(ctx context.Context) (string, error) {
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
	return id, nil
}

// Rotate creates and stores a new signing key, retires every older RS256 key
// that is not retired yet and reloads. It returns the new key's ID and the
// IDs of the keys it retired.
//
// Retired keys still verify and stay in the JWKS until Prune deletes them, so
// tokens they signed remain valid until they expire. Keys newer than the new
// one, created by a concurrent rotation elsewhere, are left alone, so that two
// rotations never leave no key to sign with. Keys of other algorithms in the
// table (package respsign's) are never touched.
func (k *Keyring) Rotate(ctx context.Context) (newID string, retired []string, err error) {
	newID, err = k.create(ctx)
	if err != nil {
		return "", nil, err
	}
	retired, err = signingkeys.RetireOlder(ctx, k.store, Algorithm, newID, k.clock.Now())
	if err != nil {
		return newID, retired, errors.Join(fmt.Errorf("tokens: %w", err), k.Reload(ctx))
	}
	return newID, retired, k.Reload(ctx)
}

// Prune deletes the RS256 keys retired more than keep ago and reloads. It
// never deletes the signing key. keep must cover the longest token lifetime
// plus the verifiers' leeway and reload interval, so that every token a
// deleted key signed has expired everywhere. Prune returns the IDs of the
// deleted keys. Keys of other algorithms are never touched.
func (k *Keyring) Prune(ctx context.Context, keep time.Duration) (deleted []string, err error) {
	if keep < 0 {
		return nil, fmt.Errorf("tokens: prune: negative keep %v", keep)
	}
	deleted, err = signingkeys.Prune(ctx, k.store, Algorithm, k.clock.Now().Add(-keep), k.ActiveKeyID())
	if err != nil {
		return deleted, errors.Join(fmt.Errorf("tokens: %w", err), k.Reload(ctx))
	}
	return deleted, k.Reload(ctx)
}

// list returns the stored RS256 keys, oldest first.
func (k *Keyring) list(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := signingkeys.List(ctx, k.store, Algorithm)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return keys, nil
}

// Reload re-reads the keys from the store, so that a rotation made by another
// process is seen.
func (k *Keyring) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	stored, err := k.list(ctx)
	if err != nil {
		return err
	}
	byID := make(map[string]*signingKey, len(stored))
	ordered := make([]*signingKey, 0, len(stored))
	var active *signingKey
	var set jose.JSONWebKeySet
	for _, s := range stored {
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
		sk := &signingKey{id: s.ID, private: priv, createdAt: s.CreatedAt, retiredAt: s.RetiredAt}
		byID[s.ID] = sk
		ordered = append(ordered, sk)
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
	k.active, k.byID, k.ordered, k.jwks = active, byID, ordered, jwks
	k.mu.Unlock()
	return nil
}

// Keys describes the keys the keyring holds as of its last reload, oldest
// first.
func (k *Keyring) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, len(k.ordered))
	for i, sk := range k.ordered {
		out[i] = KeyInfo{
			ID: sk.id, Algorithm: Algorithm, CreatedAt: sk.createdAt, RetiredAt: sk.retiredAt,
			Signing: sk == k.active,
		}
	}
	return out
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

// ErrUnknownKey: the token names a key the keyring does not hold, even after
// reloading.
var ErrUnknownKey = errors.New("tokens: unknown signing key")

// Keyfunc is a jwt.Keyfunc that returns the public key named by the token's
// kid. Use it only with jwt.WithValidMethods([]string{Algorithm}).
//
// A kid the keyring does not hold may name a key that another process has
// just rotated to, so Keyfunc then reloads from the store and looks again.
// Such reloads happen at most once per 5 seconds; concurrent misses share one.
func (k *Keyring) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if sk := k.lookup(kid); sk != nil {
		return &sk.private.PublicKey, nil
	}
	if kid == "" {
		return nil, ErrUnknownKey
	}
	if err := k.reloadOnMiss(); err != nil {
		return nil, fmt.Errorf("%w (reloading keys: %w)", ErrUnknownKey, err)
	}
	if sk := k.lookup(kid); sk != nil {
		return &sk.private.PublicKey, nil
	}
	return nil, ErrUnknownKey
}

func (k *Keyring) lookup(kid string) *signingKey {
	k.mu.RLock()
	sk := k.byID[kid]
	k.mu.RUnlock()
	return sk
}

// reloadOnMiss reloads the keys unless that was done less than
// missReloadInterval ago. Callers that arrive during a reload wait for it.
func (k *Keyring) reloadOnMiss() error {
	_, err, _ := k.misses.Do("", func() (any, error) {
		now := k.clock.Now()
		k.missMu.Lock()
		if now.Before(k.nextMiss) {
			k.missMu.Unlock()
			return nil, nil
		}
		k.nextMiss = now.Add(missReloadInterval)
		k.missMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), missReloadTimeout)
		defer cancel()
		return nil, k.Reload(ctx)
	})
	return err
}
