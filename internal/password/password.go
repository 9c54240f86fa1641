// Package password hashes and verifies people's passwords with Argon2id and
// checks new passwords against Tollgate's password policy.
//
// Hashes are stored as PHC strings, the format of the Argon2 reference
// implementation and of most libraries that read Argon2 hashes:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// where m is the memory cost in KiB, t the number of passes over memory, p
// the degree of parallelism, and salt and hash are in standard base64 without
// padding. Because each stored hash names its own parameters, parameters can
// be raised at any time: Verify reports when a hash was made with parameters
// other than the Hasher's, and the caller re-hashes the password, which it
// has in hand after a successful login.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Bounds on Params, enforced on the Hasher's own parameters and on every
// stored hash that Verify reads, so that a tampered or corrupt hash cannot
// make Verify spend unbounded memory or time.
const (
	MaxMemory      = 1 << 20 // KiB (1 GiB)
	MaxIterations  = 16
	MaxParallelism = 16
	MinSaltLength  = 8  // bytes
	MaxSaltLength  = 64 // bytes
	MinKeyLength   = 8  // bytes
	MaxKeyLength   = 64 // bytes
)

// Params are Argon2id cost parameters.
type Params struct {
	// Memory is the memory cost in KiB. It must be at least 8 × Parallelism
	// (the Argon2 minimum) and at most MaxMemory.
	Memory uint32
	// Iterations is the number of passes over memory, 1 to MaxIterations.
	Iterations uint32
	// Parallelism is the number of lanes, 1 to MaxParallelism. The Go
	// implementation computes lanes in parallel goroutines.
	Parallelism uint8
	// SaltLength is the length of the random salt in bytes, MinSaltLength
	// to MaxSaltLength.
	SaltLength uint32
	// KeyLength is the length of the derived hash in bytes, MinKeyLength to
	// MaxKeyLength.
	KeyLength uint32
}

// Default returns the parameters Tollgate uses: m=19456 KiB (19 MiB), t=2,
// p=1, a 16-byte salt and a 32-byte hash. The costs are the first of the
// Argon2id configurations recommended by the OWASP Password Storage Cheat
// Sheet (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html,
// "Argon2id": "a minimum configuration of 19 MiB of memory, an iteration
// count of 2, and 1 degree of parallelism"); the salt and hash lengths are
// those RFC 9106 section 4 recommends (128-bit salt, 256-bit tag).
//
// One hash with these parameters takes 19 MiB of memory and, on a current
// server core, a few tens of milliseconds.
func Default() Params {
	return Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// Validate reports whether p is within the bounds documented on Params.
func (p Params) Validate() error {
	switch {
	case p.Parallelism < 1 || p.Parallelism > MaxParallelism:
		return fmt.Errorf("password: parallelism %d is outside 1..%d", p.Parallelism, MaxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxMemory:
		return fmt.Errorf("password: memory %d KiB is outside %d..%d KiB", p.Memory, 8*uint32(p.Parallelism), MaxMemory)
	case p.Iterations < 1 || p.Iterations > MaxIterations:
		return fmt.Errorf("password: iterations %d is outside 1..%d", p.Iterations, MaxIterations)
	case p.SaltLength < MinSaltLength || p.SaltLength > MaxSaltLength:
		return fmt.Errorf("password: salt length %d is outside %d..%d bytes", p.SaltLength, MinSaltLength, MaxSaltLength)
	case p.KeyLength < MinKeyLength || p.KeyLength > MaxKeyLength:
		return fmt.Errorf("password: key length %d is outside %d..%d bytes", p.KeyLength, MinKeyLength, MaxKeyLength)
	}
	return nil
}

// ErrInvalidHash is wrapped by the error Verify returns when the stored hash
// is not a PHC string this package accepts: not Argon2id version 19, not in
// canonical form, or with parameters outside the bounds on Params. The error
// says which rule was broken but never repeats the hash.
var ErrInvalidHash = errors.New("password: invalid stored hash")

// Hasher hashes and verifies passwords with fixed parameters. It is
// immutable once made and safe for concurrent use; each Hash, Verify and
// VerifyDummy call allocates Params.Memory KiB for its duration, so callers
// should bound how many run at once.
type Hasher struct {
	params Params
	// dummy is a hash of a random password, made with params, for
	// VerifyDummy.
	dummy string
}

// NewHasher returns a Hasher that hashes with p, after checking p with
// Params.Validate. It computes one hash, for VerifyDummy, so it takes as long
// as a call to Hash.
func NewHasher(p Params) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h := &Hasher{params: p}
	dummy, err := h.Hash(rand.Text())
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Params returns the parameters h hashes with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password, hashed with a new random salt.
// Its error is non-nil only if the system's random source fails, which
// crypto/rand documents never happens on the platforms Go supports.
//
// Hash does not apply the password policy; call CheckPolicy first when a
// password is chosen.
func (h *Hasher) Hash(password string) (string, error) {
	salt := make([]byte, h.params.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return h.hashWithSalt(password, salt), nil
}

func (h *Hasher) hashWithSalt(password string, salt []byte) string {
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	return phc{params: p, salt: salt, key: key}.String()
}

// Verify reports whether password matches encoded, a PHC string made by
// Hash (or by any Argon2id implementation with parameters within the bounds
// on Params). The comparison of the hashes takes constant time.
//
// needsRehash is true when the password matched but encoded was made with
// parameters other than h's (memory, iterations, parallelism, salt or key
// length): the caller should then store h.Hash(password) in its place. It is
// false whenever ok is false.
//
// err is non-nil, wrapping ErrInvalidHash, only when encoded cannot be read;
// a wrong password is ok == false with a nil error. A stored hash that cannot
// be read is a fault of the store, not of the person logging in, and should
// be logged (without the hash) and answered as a wrong password.
func (h *Hasher) Verify(password, encoded string) (ok, needsRehash bool, err error) {
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	p := stored.params
	key := argon2.IDKey([]byte(password), stored.salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	if subtle.ConstantTimeCompare(key, stored.key) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}

// VerifyDummy does the work of Verify against a hash of an unknown password
// made with h's parameters, and discards the result.
//
// Call it when a login names a user that does not exist (or has no
// password), in place of Verify. Otherwise "no such user" would be answered
// in microseconds and "wrong password" in tens of milliseconds, and anyone
// could learn which accounts exist by timing the login endpoint.
func (h *Hasher) VerifyDummy(password string) {
	_, _, _ = h.Verify(password, h.dummy)
}

// phc is a parsed Argon2id PHC string. Its params' SaltLength and KeyLength
// are len(salt) and len(key).
type phc struct {
	params Params
	salt   []byte
	key    []byte
}

const phcPrefix = "$argon2id$v=19$"

// String encodes p in the canonical form that parsePHC reads.
func (p phc) String() string {
	var b strings.Builder
	b.WriteString(phcPrefix)
	b.WriteString("m=")
	b.WriteString(strconv.FormatUint(uint64(p.params.Memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(p.params.Iterations), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(p.params.Parallelism), 10))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(p.salt))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(p.key))
	return b.String()
}

// maxPHCLength bounds the encoded form: the prefix, three parameters of at
// most 7, 2 and 2 digits, and 86 base64 characters each for salt and key.
const maxPHCLength = 256

// parsePHC parses a PHC string strictly: only Argon2id version 19, with the
// parameters m, t and p in that order and nothing else, decimal numbers
// without leading zeros, salt and key in unpadded standard base64 with no
// stray bits, and everything within the bounds on Params. It accepts exactly
// the strings phc.String produces.
func parsePHC(s string) (phc, error) {
	if len(s) > maxPHCLength {
		return phc{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidHash, maxPHCLength)
	}
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		switch {
		case strings.HasPrefix(s, "$argon2id$"):
			return phc{}, fmt.Errorf("%w: not Argon2 version 19", ErrInvalidHash)
		case strings.HasPrefix(s, "$argon2"):
			return phc{}, fmt.Errorf("%w: not Argon2id", ErrInvalidHash)
		}
		return phc{}, fmt.Errorf("%w: not an Argon2id PHC string", ErrInvalidHash)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return phc{}, fmt.Errorf("%w: want parameters, salt and hash separated by '$'", ErrInvalidHash)
	}

	var p phc
	params := fields[0]
	for i, name := range []string{"m=", "t=", "p="} {
		field, tail, more := strings.Cut(params, ",")
		params = tail
		digits, ok := strings.CutPrefix(field, name)
		if !ok || more != (i < 2) {
			return phc{}, fmt.Errorf("%w: want parameters m=,t=,p= in that order and no others", ErrInvalidHash)
		}
		n, ok := parseDecimal(digits)
		if !ok {
			return phc{}, fmt.Errorf("%w: parameter %s is not a decimal number", ErrInvalidHash, name[:1])
		}
		switch i {
		case 0:
			if n > MaxMemory {
				return phc{}, fmt.Errorf("%w: memory above %d KiB", ErrInvalidHash, MaxMemory)
			}
			p.params.Memory = uint32(n)
		case 1:
			if n < 1 || n > MaxIterations {
				return phc{}, fmt.Errorf("%w: iterations outside 1..%d", ErrInvalidHash, MaxIterations)
			}
			p.params.Iterations = uint32(n)
		case 2:
			if n < 1 || n > MaxParallelism {
				return phc{}, fmt.Errorf("%w: parallelism outside 1..%d", ErrInvalidHash, MaxParallelism)
			}
			p.params.Parallelism = uint8(n)
		}
	}
	if p.params.Memory < 8*uint32(p.params.Parallelism) {
		return phc{}, fmt.Errorf("%w: memory below 8 KiB per lane", ErrInvalidHash)
	}

	// Strict refuses non-zero padding bits, so that each value has one
	// encoding; newlines, which every base64 decoder skips, are refused
	// separately.
	b64 := base64.RawStdEncoding.Strict()
	var err error
	if p.salt, err = b64.DecodeString(fields[1]); err != nil || strings.ContainsAny(fields[1], "\r\n") {
		return phc{}, fmt.Errorf("%w: salt is not unpadded standard base64", ErrInvalidHash)
	}
	if n := len(p.salt); n < MinSaltLength || n > MaxSaltLength {
		return phc{}, fmt.Errorf("%w: salt length outside %d..%d bytes", ErrInvalidHash, MinSaltLength, MaxSaltLength)
	}
	if p.key, err = b64.DecodeString(fields[2]); err != nil || strings.ContainsAny(fields[2], "\r\n") {
		return phc{}, fmt.Errorf("%w: hash is not unpadded standard base64", ErrInvalidHash)
	}
	if n := len(p.key); n < MinKeyLength || n > MaxKeyLength {
		return phc{}, fmt.Errorf("%w: hash length outside %d..%d bytes", ErrInvalidHash, MinKeyLength, MaxKeyLength)
	}
	p.params.SaltLength = uint32(len(p.salt)) //nolint:gosec // G115: bounded to MaxSaltLength above
	p.params.KeyLength = uint32(len(p.key))   //nolint:gosec // G115: bounded to MaxKeyLength above
	return p, nil
}

// parseDecimal parses a decimal number of 1 to 10 digits with no sign and no
// leading zero (except "0" itself).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Password policy, after NIST SP 800-63B section 5.1.1.2 ("Memorized Secret
// Verifiers"): a minimum length and no composition rules.
const (
	// MinLength is the least number of characters (Unicode code points) a
	// new password may have. NIST SP 800-63B requires at least 8.
	MinLength = 10
	// MaxLength is the most bytes a new password may have: long enough for
	// any passphrase or password manager (NIST asks for at least 64
	// characters), short enough to bound hashing work.
	MaxLength = 256
)

// ErrPolicy is matched (with errors.Is) by every error CheckPolicy returns.
var ErrPolicy = errors.New("password does not meet the policy")

// policyError is a message fit to show the person choosing a password.
type policyError string

func (e policyError) Error() string        { return string(e) }
func (e policyError) Is(target error) bool { return target == ErrPolicy }

// CheckPolicy reports whether password is acceptable as a new password: at
// least MinLength characters (counted as Unicode code points), at most
// MaxLength bytes, valid UTF-8, and not only white space. It makes no
// composition rules (digits, symbols, mixed case), which NIST SP 800-63B
// advises against.
//
// The error matches ErrPolicy, and its text is a sentence fit to show the
// user, such as "password must be at least 10 characters long". It never
// contains the password.
func CheckPolicy(password string) error {
	switch {
	case len(password) > MaxLength:
		return policyError(fmt.Sprintf("password must be at most %d bytes long", MaxLength))
	case !utf8.ValidString(password):
		return policyError("password must be valid UTF-8 text")
	case utf8.RuneCountInString(password) < MinLength:
		return policyError(fmt.Sprintf("password must be at least %d characters long", MinLength))
	case strings.TrimFunc(password, unicode.IsSpace) == "":
		return policyError("password must not be only white space")
	}
	return nil
}
