package siwx

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// NonceLength is the length of the nonces Nonces issues: 32 lower-case hex
// digits, as x402's sign-in-with-x extension asks of a challenge's nonce.
const NonceLength = 32

// nonceLabel starts every MAC'd nonce, so that the key signs nothing else
// that could pass for one.
const nonceLabel = "tollgate siwx nonce v1\x00"

// Nonces issues the nonces of sign-in challenges and recognizes them
// without storing any: a nonce is the hex of
//
//	issue time (4 bytes, Unix seconds, big-endian) ‖ 4 random bytes ‖
//	the first 8 bytes of HMAC-SHA256(key, label ‖ the 8 bytes before)
//
// so any node holding the key (derived from the master key, see
// secretbox.Box.DeriveKeys) accepts a nonce another node issued, before or
// after a restart. A nonce is accepted from its issue time (Skew earlier)
// until MaxAge after it. Nonces proves where a nonce comes from and how old
// it is; that each is used once is the replay cache's business (package
// replay). It is safe for concurrent use.
type Nonces struct {
	keys   [][]byte // keys[0] issues, all recognize (rotation)
	maxAge time.Duration
	skew   time.Duration
}

// NewNonces returns the Nonces of keys, the first issuing and all
// recognizing, each at least 32 bytes; maxAge is how long a nonce is
// accepted after its issue, skew how far in the future its issue time may
// be (nodes' clocks differ). Zero maxAge and skew mean DefaultHeaderMaxAge
// and DefaultSkew.
func NewNonces(maxAge, skew time.Duration, keys ...[]byte) (*Nonces, error) {
	if len(keys) == 0 {
		return nil, errors.New("siwx: nonces need a key")
	}
	for _, k := range keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("siwx: nonce key of %d bytes, want at least 32", len(k))
		}
	}
	if maxAge < 0 || skew < 0 {
		return nil, errors.New("siwx: negative nonce age or skew")
	}
	if maxAge == 0 {
		maxAge = DefaultHeaderMaxAge
	}
	if skew == 0 {
		skew = DefaultSkew
	}
	return &Nonces{keys: keys, maxAge: maxAge, skew: skew}, nil
}

// MaxAge is how long after its issue a nonce is accepted.
func (n *Nonces) MaxAge() time.Duration { return n.maxAge }

// Issue returns a new nonce issued at now.
func (n *Nonces) Issue(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:8]) // never fails (crypto/rand)
	copy(b[8:], n.tag(n.keys[0], b[:8]))
	return hex.EncodeToString(b[:])
}

func (n *Nonces) tag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(nonceLabel))
	m.Write(body)
	return m.Sum(nil)[:8]
}

// Check reports whether nonce is one Issue made, with one of the keys, and
// is still accepted at now, and returns when it stops being accepted. A
// nonce not issued here (or altered, or spelled otherwise: upper-case hex)
// wraps ErrMalformed; one too old wraps ErrExpired.
func (n *Nonces) Check(nonce string, now time.Time) (expires time.Time, err error) {
	var b [16]byte
	if len(nonce) != NonceLength || !lowerHex(nonce) {
		return time.Time{}, fmt.Errorf("%w: nonce %q was not issued by this server: sign the challenge of a 402", ErrMalformed, nonce)
	}
	_, _ = hex.Decode(b[:], []byte(nonce))
	ok := false
	for _, k := range n.keys {
		ok = ok || hmac.Equal(n.tag(k, b[:8]), b[8:])
	}
	if !ok {
		return time.Time{}, fmt.Errorf("%w: nonce %q was not issued by this server: sign the challenge of a 402", ErrMalformed, nonce)
	}
	issued := time.Unix(int64(binary.BigEndian.Uint32(b[:4])), 0)
	expires = issued.Add(n.maxAge)
	switch {
	case issued.After(now.Add(n.skew)):
		return time.Time{}, fmt.Errorf("%w: nonce issued in the future (at %s)", ErrMalformed, issued.UTC().Format(time.RFC3339))
	case !now.Before(expires):
		return time.Time{}, fmt.Errorf("%w: the nonce's challenge expired at %s: sign a new one", ErrExpired, expires.UTC().Format(time.RFC3339))
	}
	return expires, nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
