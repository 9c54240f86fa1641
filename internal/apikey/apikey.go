// Package apikey defines the format of Tollgate API keys: how they are made,
// recognised and stored.
//
// A key is 42 ASCII characters:
//
//	tgk_ + 32 random base62 characters + 6 base62 checksum characters
//
// for example "tgk_0123456789ABCDEFGHIJKLMNOPQRSTUV0HtjbW". The random part
// comes from crypto/rand, sampled without modulo bias, and carries
// 32·log2(62) ≈ 190.5 bits of entropy. The checksum is the CRC-32 (IEEE
// polynomial, as computed by hash/crc32.ChecksumIEEE) of the first 36
// characters, "tgk_" and the random part, written as exactly 6 base62 digits,
// most significant first, left-padded with '0'. The base62 alphabet is
// 0-9, A-Z, a-z, in that order.
//
// The distinctive prefix and the checksum let secret scanners recognise a
// leaked key with almost no false positives, and let the gateway reject a
// mistyped or invented key (see Valid) without a database lookup. The checksum
// is not a secret and not a MAC: anyone can compute it. It only filters
// garbage; authenticity comes from looking up Hash(key) in the store.
//
// The store never keeps a key, only its Hash, and shows people its
// DisplayPrefix.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
)

const (
	// Prefix starts every key.
	Prefix = "tgk_"
	// Length is the length of every key in bytes (all characters are ASCII).
	Length = len(Prefix) + randomLen + checksumLen // 42

	// DisplayPrefixLength is the length of DisplayPrefix's result: Prefix and
	// the first 8 random characters.
	DisplayPrefixLength = len(Prefix) + 8 // 12
)

const (
	randomLen   = 32
	checksumLen = 6
	bodyLen     = len(Prefix) + randomLen // what the checksum covers

	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

	// rejectFrom is the largest multiple of 62 that fits in a byte: random
	// bytes at or above it are discarded so that b%62 is uniform.
	rejectFrom = 62 * (256 / 62) // 248
)

// Generate returns a new random key. Its error is non-nil only if the
// system's random source fails; on the platforms Go supports, crypto/rand
// never fails, so callers may treat an error as fatal.
func Generate() (string, error) {
	var key [Length]byte
	copy(key[:], Prefix)

	if err := RandomBase62(key[len(Prefix):bodyLen]); err != nil {
		return "", err
	}
	putChecksum(key[bodyLen:], crc32.ChecksumIEEE(key[:bodyLen]))
	return string(key[:]), nil
}

// RandomBase62 fills dst with characters drawn uniformly and independently
// from the base62 alphabet using crypto/rand: log2(62) ≈ 5.95 bits each.
// Other secrets (OAuth client secrets) use it too.
func RandomBase62(dst []byte) error {
	// Rejection sampling: each byte is accepted with probability 248/256,
	// so a buffer of twice the length almost always suffices.
	var buf [64]byte
	n := 0
	for n < len(dst) {
		if _, err := rand.Read(buf[:]); err != nil {
			return err
		}
		for _, b := range buf {
			if b >= rejectFrom {
				continue
			}
			dst[n] = alphabet[b%62]
			n++
			if n == len(dst) {
				break
			}
		}
	}
	return nil
}

// putChecksum writes c into dst (6 bytes) as base62, most significant digit
// first, left-padded with '0'. 62^6 > 2^32, so 6 digits always suffice.
func putChecksum(dst []byte, c uint32) {
	v := uint64(c)
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = alphabet[v%62]
		v /= 62
	}
}

// Valid reports whether s has the shape of a key (Prefix, 38 base62
// characters, Length bytes in all) and a correct checksum. It does not say
// whether the key exists: a true result only means s is worth looking up.
//
// Valid does not allocate and runs in time that depends only on len(s) and
// on where s first departs from the key shape; nothing it examines is secret.
// It is safe for concurrent use.
func Valid(s string) bool {
	if len(s) != Length || s[:len(Prefix)] != Prefix {
		return false
	}
	for i := len(Prefix); i < bodyLen; i++ {
		if digit(s[i]) < 0 {
			return false
		}
	}
	var sum uint64
	for i := bodyLen; i < Length; i++ {
		d := digit(s[i])
		if d < 0 {
			return false
		}
		sum = sum*62 + uint64(d)
	}
	return sum == uint64(crc32IEEE(s[:bodyLen]))
}

// crc32IEEE returns the same value as crc32.ChecksumIEEE([]byte(s)) without
// converting s, which hash/crc32 would force onto the heap. It is the classic
// byte-at-a-time algorithm over the standard library's own IEEE table (read,
// never written); a test checks it against hash/crc32.
func crc32IEEE(s string) uint32 {
	tab := crc32.IEEETable
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = tab[byte(crc)^s[i]] ^ crc>>8 //nolint:gosec // G115: keeping the low byte is the CRC algorithm
	}
	return ^crc
}

// digit returns the value of base62 digit c, or -1 if c is not one.
func digit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'Z':
		return int(c-'A') + 10
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}

// Hash returns the SHA-256 digest of key's bytes. The store keeps this digest,
// never the key: a key has 190 bits of entropy, so a fast unsalted hash is
// enough to make a stolen database useless for authenticating, and it lets
// the gateway find a key with one indexed lookup.
//
// Hash does not validate key; call Valid first.
func Hash(key string) [32]byte {
	if len(key) <= Length {
		// Copy through a stack buffer: converting the string directly
		// would allocate on every request.
		var buf [Length]byte
		return sha256.Sum256(buf[:copy(buf[:], key)])
	}
	return sha256.Sum256([]byte(key))
}

// DisplayPrefix returns the first DisplayPrefixLength (12) bytes of key,
// Prefix followed by 8 random characters, for example "tgk_01234567". It
// identifies a key to people in listings, logs and audit records ("which key
// is this?"), and is not secret: the 47 bits it reveals leave more than 142
// bits unknown. It is not guaranteed unique either; use the key's stored ID
// to refer to a key in code.
//
// If key is shorter than DisplayPrefixLength, it cannot be a key and
// DisplayPrefix returns "" rather than echo what may be some other secret.
func DisplayPrefix(key string) string {
	if len(key) < DisplayPrefixLength {
		return ""
	}
	return key[:DisplayPrefixLength]
}
