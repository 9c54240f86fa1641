// Package secretbox encrypts the secrets Tollgate stores and must read back,
// such as token signing keys, under a key the operator holds outside the
// database.
//
// A Box seals with AES-256-GCM under its primary key and a fresh 12-byte
// random nonce. A sealed value is
//
//	version (1 byte, 0x01) ‖ key ID (4 bytes) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)
//
// 33 bytes longer than the plaintext. The key ID is the first 4 bytes of
// SHA-256("tollgate-secretbox-key-id" ‖ key); it names the key without
// revealing it, so that Open can pick the right key while keys are rotated.
// The GCM additional data is the version and key ID followed by the
// caller's associated data.
//
// Associated data binds a sealed value to where it is stored: seal a signing
// key with associatedData "signing_key:" + its ID, and a sealed value copied
// into another row fails to open there. It is authenticated, not encrypted,
// and not stored; the caller supplies it again to Open.
//
// To rotate, make the new key primary and keep the old one as previous:
// New(newKey, oldKey). Values sealed under either open; NeedsReseal picks
// out those to open and seal again, after which the old key can be dropped.
// With random nonces, seal no more than about 2^32 values under one key
// (NIST SP 800-38D section 8.3); rotate long before that.
//
// DeriveKeys gives other uses of the master key (MACs every node must
// compute alike) keys of their own, never the master key itself.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

const (
	// KeySize is the size of a key in bytes.
	KeySize = 32
	// Overhead is how many bytes longer a sealed value is than its
	// plaintext: version, key ID, nonce and tag.
	Overhead = headerSize + nonceSize + tagSize

	version    = 1
	keyIDSize  = 4
	headerSize = 1 + keyIDSize
	nonceSize  = 12
	tagSize    = 16

	keyIDContext      = "tollgate-secretbox-key-id"
	derivedKeyContext = "tollgate-derived-key:"
)

var (
	// ErrUnknownKey is returned by Open for a value sealed under a key
	// the Box does not hold.
	ErrUnknownKey = errors.New("secretbox: sealed under an unknown key")
	// ErrCorrupt is returned by Open for a value that is not one Seal
	// made, was altered, or was sealed with other associated data.
	ErrCorrupt = errors.New("secretbox: sealed value is corrupt")
)

type keyID [keyIDSize]byte

// Box seals and opens values. It is immutable once made and safe for
// concurrent use. The zero Box holds no key: it seals nothing and opens
// nothing. Make one with New.
type Box struct {
	primary keyID
	aeads   map[keyID]cipher.AEAD // the primary and the previous keys
	keys    [][]byte              // copies of the keys, primary first, for DeriveKeys
}

// New returns a Box that seals under primary and opens values sealed under
// primary or any of previous. Every key must be KeySize bytes. A previous key
// equal to primary, or given twice, is ignored. New keeps no reference to the
// slices passed in.
func New(primary []byte, previous ...[]byte) (*Box, error) {
	b := &Box{aeads: make(map[keyID]cipher.AEAD, 1+len(previous))}
	keys := make(map[keyID][]byte, 1+len(previous))
	for i, key := range append([][]byte{primary}, previous...) {
		if len(key) != KeySize {
			which := "primary key"
			if i > 0 {
				which = fmt.Sprintf("previous key %d", i)
			}
			return nil, fmt.Errorf("secretbox: %s is %d bytes; want %d", which, len(key), KeySize)
		}
		id := keyIDOf(key)
		if i == 0 {
			b.primary = id
		}
		if other, ok := keys[id]; ok {
			if subtle.ConstantTimeCompare(other, key) == 1 {
				continue // the same key twice
			}
			return nil, errors.New("secretbox: two different keys have the same key ID; generate a new key")
		}
		aead, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		keys[id] = key
		b.aeads[id] = aead
		b.keys = append(b.keys, append([]byte(nil), key...))
	}
	return b, nil
}

// DeriveKeys returns one KeySize-byte key for purpose per key of the Box,
// the primary's first, each derived with HKDF-SHA256 (RFC 5869) with
// "tollgate-derived-key:" + purpose as its info: a MAC key every node with
// the same master key computes alike, which a rotation keeps verifying
// under the previous keys. Distinct purposes give independent keys, and no
// derived key reveals the master key. The zero Box returns none.
func (b *Box) DeriveKeys(purpose string) [][]byte {
	out := make([][]byte, 0, len(b.keys))
	for _, k := range b.keys {
		d, err := hkdf.Key(sha256.New, k, nil, derivedKeyContext+purpose, KeySize)
		if err != nil {
			panic("secretbox: HKDF of a 32-byte key failed: " + err.Error()) // only for lengths over 255×32
		}
		out = append(out, d)
	}
	return out
}

// newAEAD is the cipher construction Seal and Open use: AES-256 in GCM with
// the standard 12-byte nonce and 16-byte tag.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func keyIDOf(key []byte) keyID {
	h := sha256.New()
	h.Write([]byte(keyIDContext))
	h.Write(key)
	var id keyID
	copy(id[:], h.Sum(nil))
	return id
}

// Seal encrypts and authenticates plaintext, binding it to associatedData,
// under the primary key. Its error is non-nil only if the system's random
// source fails, which crypto/rand documents never happens on the platforms
// Go supports.
func (b *Box) Seal(plaintext, associatedData []byte) ([]byte, error) {
	aead := b.aeads[b.primary]
	if aead == nil {
		return nil, errors.New("secretbox: Box was not made with New")
	}
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0] = version
	copy(out[1:headerSize], b.primary[:])
	nonce := out[headerSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, plaintext, additionalData(out[:headerSize], associatedData)), nil
}

// Open decrypts and authenticates a value made by Seal with the same
// associatedData. It returns ErrUnknownKey if the value names a key the Box
// does not hold, and ErrCorrupt for any other failure; neither says more, so
// that a failed Open leaks nothing about the key or the plaintext.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != version {
		return nil, ErrCorrupt
	}
	id := keyID(sealed[1:headerSize])
	aead, ok := b.aeads[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	nonce := sealed[headerSize : headerSize+nonceSize]
	plaintext, err := aead.Open(nil, nonce, sealed[headerSize+nonceSize:], additionalData(sealed[:headerSize], associatedData))
	if err != nil {
		return nil, ErrCorrupt
	}
	return plaintext, nil
}

// additionalData returns the GCM additional data: the 5-byte header, which
// has a fixed length, then the caller's associated data.
func additionalData(header, associatedData []byte) []byte {
	ad := make([]byte, 0, len(header)+len(associatedData))
	return append(append(ad, header...), associatedData...)
}

// NeedsReseal reports whether sealed is anything but a value in the current
// format under the primary key: one sealed under a previous key (or an
// unknown one), or one that is not a sealed value at all. A rotation job
// opens and seals again each value for which it is true. NeedsReseal only
// reads the header; it does not authenticate the value.
func (b *Box) NeedsReseal(sealed []byte) bool {
	if len(sealed) < Overhead || sealed[0] != version {
		return true
	}
	return keyID(sealed[1:headerSize]) != b.primary
}

// ParseKey decodes a key written as standard base64, with or without
// padding (44 or 43 characters), or as hex (64 characters), after trimming
// surrounding white space such as a final newline. It accepts exactly what
// `openssl rand -base64 32`, `openssl rand -hex 32` and GenerateKey print.
// Its errors never contain any part of s.
func ParseKey(s string) ([]byte, error) {
	key, err := parseKey(s)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return key, nil
}

func parseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var (
		key []byte
		err error
	)
	switch len(s) {
	case 2 * KeySize:
		key, err = hex.DecodeString(s)
	case base64.StdEncoding.EncodedLen(KeySize):
		key, err = base64.StdEncoding.Strict().DecodeString(s)
	case base64.RawStdEncoding.EncodedLen(KeySize):
		key, err = base64.RawStdEncoding.Strict().DecodeString(s)
	default:
		return nil, fmt.Errorf("a key is %d bytes written as base64 (44 characters) or hex (64 characters); got %d characters", KeySize, len(s))
	}
	if err != nil || len(key) != KeySize {
		// The decoders' errors quote the offending character: do not wrap.
		return nil, errors.New("key is neither valid base64 nor valid hex")
	}
	return key, nil
}

// GenerateKey returns a new random key in standard base64 with padding, the
// form ParseKey reads. Its error is non-nil only if the system's random
// source fails.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// maxKeyFileSize bounds what LoadKeyFile reads: a key and some white space.
const maxKeyFileSize = 1024

// LoadKeyFile reads a key, in any form ParseKey accepts, from the file at
// path. It refuses a file that is not a regular file, and a file whose
// permissions grant anything to group or others (mode&0o077 != 0): a key
// that other accounts can read is not a secret. Permissions are not checked
// on Windows, where Unix mode bits do not describe access.
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose on close
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secretbox: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secretbox: key file %s has mode %#o, which lets group or others access it; run chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("secretbox: reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("secretbox: key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	key, err := parseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
	}
	return key, nil
}

// CreateKeyFile generates a new key, writes it to a new file at path with
// mode 0600 in the form GenerateKey returns followed by a newline, and
// returns it. It never overwrites: if path exists, it fails with an error
// matching fs.ErrExist. If writing fails, it removes the file it created.
func CreateKeyFile(path string) ([]byte, error) {
	encoded, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(encoded)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("secretbox: key file %s already exists; refusing to overwrite it: %w", path, err)
		}
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	// The umask can only have removed bits; set the mode exactly anyway, so
	// that the owner can read the file whatever the umask.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(encoded + "\n")
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("secretbox: writing key file %s: %w", path, err)
	}
	return key, nil
}
