package respsign

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/signingkeys"
	"sync"
	"sync/atomic"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Algorithm is the JOSE name (RFC 8812) of the keys' algorithm: ECDSA on
// secp256k1 with SHA-256. It is stored with each key, in the same table as
// the token signing keys of package tokens, and set as the JWKs' "alg".
const Algorithm = "ES256K"

// scalarSize is the size of a stored private key: a big-endian scalar.
const scalarSize = secp256k1.PrivKeyBytesLen

// KeyStore is the part of the store a Keyring uses. The keys share the
// signing key table with those of package tokens; a Keyring ignores, and
// never retires or deletes, keys of another algorithm.
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

// Keyring holds the response signing keys. It is safe for concurrent use;
// Sign takes no lock.
//
// The newest key that is not retired signs. Every key the store holds, the
// signing key and the retired ones not yet pruned, is published, so that a
// client holding a response signed just before a rotation can still check
// it.
type Keyring struct {
	store  KeyStore
	sealer Sealer
	clock  clock.Clock

	reloadMu sync.Mutex // serializes Reload, so an older snapshot never replaces a newer one
	snap     atomic.Pointer[snapshot]
}

// snapshot is what a reload read; it is never modified once stored.
type snapshot struct {
	active *key   // nil if no key may sign
	keys   []*key // oldest first
	doc    []byte // the JSON of the Document
	pem    []byte // the signing key's PEM; nil if no key may sign
}

type key struct {
	id        string
	private   *secp256k1.PrivateKey
	public    *secp256k1.PublicKey
	createdAt time.Time
	retiredAt time.Time
}

// KeyInfo describes a key of a Keyring.
type KeyInfo struct {
	ID        string // sent in X-Signature-Key-Id
	Algorithm string // always Algorithm
	CreatedAt time.Time
	RetiredAt time.Time // zero if not retired
	Signing   bool      // whether the key signs responses
}

// LoadKeyring reads the keys from ks, generating and storing a first key when
// there is none that may sign. Private keys are opened with sealer; a key
// that does not open (a wrong master key) is an error.
func LoadKeyring(ctx context.Context, ks KeyStore, sealer Sealer, clk clock.Clock) (*Keyring, error) {
	k := &Keyring{store: ks, sealer: sealer, clock: clk}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if k.snap.Load().active == nil {
		if _, err := k.Generate(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// associatedData binds a sealed key to its row. It is the same as that of
// package tokens, whose ResealKeys reseals every key of the table.
func associatedData(id string) []byte { return []byte("signing_key:" + id) }

// Generate creates a new key, stores it and makes it the signing key. It
// returns the new key's ID. Older keys are not retired: use Rotate for that.
func (k *Keyring) Generate(ctx context.Context) (string, error) {
	id, err := k.create(ctx)
	if err != nil {
		return "", err
	}
	return id, k.Reload(ctx)
}

// create generates and stores a new key without reloading.
func (k *Keyring) create(ctx context.Context) (string, error) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return "", fmt.Errorf("respsign: generate key: %w", err)
	}
	scalar := priv.Key.Bytes()
	priv.Zero()
	id := ids.New(ids.SigningKey)
	sealed, err := k.sealer.Seal(scalar[:], associatedData(id))
	clear(scalar[:])
	if err != nil {
		return "", fmt.Errorf("respsign: seal key: %w", err)
	}
	sk := store.SigningKey{ID: id, Algorithm: Algorithm, PrivateKey: sealed, CreatedAt: k.clock.Now()}
	if err := k.store.CreateSigningKey(ctx, sk); err != nil {
		return "", fmt.Errorf("respsign: store key: %w", err)
	}
	return id, nil
}

// Rotate creates and stores a new signing key, retires every older ES256K
// key that is not retired yet and reloads. It returns the new key's ID and
// the IDs of the keys it retired.
//
// Retired keys stay published until Prune deletes them, so that responses
// they signed can still be checked. Keys newer than the new one, created by
// a concurrent rotation elsewhere, are left alone, so that two rotations
// never leave no key to sign with. Keys of other algorithms are never
// touched.
func (k *Keyring) Rotate(ctx context.Context) (newID string, retired []string, err error) {
	newID, err = k.create(ctx)
	if err != nil {
		return "", nil, err
	}
	retired, err = signingkeys.RetireOlder(ctx, k.store, Algorithm, newID, k.clock.Now())
	if err != nil {
		return newID, retired, errors.Join(fmt.Errorf("respsign: %w", err), k.Reload(ctx))
	}
	return newID, retired, k.Reload(ctx)
}

// Prune deletes the ES256K keys retired more than grace ago and reloads. It
// never deletes the signing key. A retired key stays published for grace,
// which must exceed the interval at which other processes sharing the store
// Reload (until then they sign with the retired key) plus the publication's
// cache lifetime (5 minutes), and should leave clients time to check the
// responses they hold. Prune returns the IDs of the deleted keys.
func (k *Keyring) Prune(ctx context.Context, grace time.Duration) (deleted []string, err error) {
	if grace < 0 {
		return nil, fmt.Errorf("respsign: prune: negative grace %v", grace)
	}
	deleted, err = signingkeys.Prune(ctx, k.store, Algorithm, k.clock.Now().Add(-grace), k.ActiveKeyID())
	if err != nil {
		return deleted, errors.Join(fmt.Errorf("respsign: %w", err), k.Reload(ctx))
	}
	return deleted, k.Reload(ctx)
}

// list returns the stored ES256K keys, oldest first.
func (k *Keyring) list(ctx context.Context) ([]store.SigningKey, error) {
	keys, err := signingkeys.List(ctx, k.store, Algorithm)
	if err != nil {
		return nil, fmt.Errorf("respsign: %w", err)
	}
	return keys, nil
}

// Reload re-reads the keys from the store, so that a rotation made by another
// process is seen, and recomputes the publication. On error the keyring
// keeps the keys it held.
func (k *Keyring) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	stored, err := k.list(ctx)
	if err != nil {
		return err
	}
	sn := &snapshot{keys: make([]*key, 0, len(stored))}
	for _, s := range stored {
		priv, err := k.open(s)
		if err != nil {
			return err
		}
		sk := &key{
			id: s.ID, private: priv, public: priv.PubKey(),
			createdAt: s.CreatedAt.UTC(), retiredAt: s.RetiredAt.UTC(),
		}
		sn.keys = append(sn.keys, sk)
		if s.RetiredAt.IsZero() {
			sn.active = sk // newest non-retired wins
		}
	}
	if err := sn.publish(); err != nil {
		return err
	}
	k.snap.Store(sn)
	return nil
}

// open unseals and parses a stored private key.
func (k *Keyring) open(s store.SigningKey) (*secp256k1.PrivateKey, error) {
	b, err := k.sealer.Open(s.PrivateKey, associatedData(s.ID))
	if err != nil {
		return nil, fmt.Errorf("respsign: open key %s (wrong master key?): %w", s.ID, err)
	}
	defer clear(b)
	var scalar secp256k1.ModNScalar
	if len(b) != scalarSize || scalar.SetByteSlice(b) || scalar.IsZero() {
		return nil, fmt.Errorf("respsign: key %s is not a secp256k1 private key", s.ID)
	}
	return secp256k1.NewPrivateKey(&scalar), nil
}

// Keys describes the keys the keyring holds as of its last reload, oldest
// first.
func (k *Keyring) Keys() []KeyInfo {
	sn := k.snap.Load()
	out := make([]KeyInfo, len(sn.keys))
	for i, sk := range sn.keys {
		out[i] = KeyInfo{
			ID: sk.id, Algorithm: Algorithm, CreatedAt: sk.createdAt, RetiredAt: sk.retiredAt,
			Signing: sk == sn.active,
		}
	}
	return out
}

// ActiveKeyID returns the ID of the key that signs, or "" if none may.
func (k *Keyring) ActiveKeyID() string {
	if a := k.snap.Load().active; a != nil {
		return a.id
	}
	return ""
}

// Sign signs body with the signing key. It returns the key's ID, for
// X-Signature-Key-Id, and the signature, for X-Signature: the standard
// base64 (with padding) of the DER-encoded, low-S, RFC 6979 deterministic
// ECDSA signature of SHA-256(body). Both are "" if no key may sign, which
// LoadKeyring prevents unless keys are retired behind the keyring's back.
//
// Sign takes no lock. It costs one ECDSA signature: some 50 to 100 µs of
// CPU and 30 small allocations, nearly all in the secp256k1 package.
func (k *Keyring) Sign(body []byte) (keyID, signature string) {
	a := k.snap.Load().active
	if a == nil {
		return "", ""
	}
	return a.id, sign(a.private, body)
}

// sign returns the base64 DER signature of SHA-256(body) by priv.
func sign(priv *secp256k1.PrivateKey, body []byte) string {
	sum := sha256.Sum256(body)
	der := ecdsa.Sign(priv, sum[:]).Serialize()
	var b [maxSignatureB64]byte
	base64.StdEncoding.Encode(b[:], der)
	return string(b[:base64.StdEncoding.EncodedLen(len(der))])
}
