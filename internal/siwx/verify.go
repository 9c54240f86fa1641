// Package siwx verifies Sign-In with X tokens (wallet signatures):
// "Authorization: SIWX base64(message).signature", where the
// message is an EIP-4361 (Sign-In with Ethereum) message or its Solana
// counterpart (SIWS), signed by the wallet it names: EIP-191 personal_sign
// for EVM chains, Ed25519 for Solana. See [ParseToken] for the token's
// form and [Verifier.Verify] for what makes a token valid.
//
// A token is a session credential the wallet makes itself, a bearer
// credential until its Expiration Time: it may be sent with any number of
// requests, and a [Verifier] caches the tokens it has verified so that each
// costs one signature check. Its nonce is the client's and is not tracked;
// its Expiration Time, which is required and bounded by
// [Config.MaxLifetime], limits replay instead, as a JWT's exp does.
//
// A SIGN-IN-WITH-X proof (x402's sign-in-with-x extension) is a one-time
// answer to a challenge instead: with [Config.Nonces] its nonce must be one
// the server issued in a challenge (stateless: see [Nonces]), and the
// caller accepts each nonce once per wallet (package replay).
//
// Errors map to the API's codes (DESIGN.md) as:
//
//	ErrMalformed → 401 INVALID_TOKEN
//	ErrSignature → 401 INVALID_SIGNATURE
//	ErrExpired   → 401 EXPIRED_TOKEN
package siwx

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/siwx/message"
	"github.com/tollgate/tollgate/internal/solana"
)

// Errors. Every error that [Verifier.Verify] returns wraps exactly one of
// them, with the reason in its text.
var (
	// ErrMalformed: a token that is not well formed, or a message that is
	// not for this verifier or not valid now: another domain, URI, chain or
	// version; no Expiration Time; a lifetime over Config.MaxLifetime; an
	// Issued At or Not Before in the future; an EVM address not in its
	// EIP-55 form. API code INVALID_TOKEN.
	ErrMalformed = errors.New("siwx: invalid token")
	// ErrSignature: a well-formed token whose signature is not the named
	// address's signature of the message. API code INVALID_SIGNATURE.
	ErrSignature = errors.New("siwx: invalid signature")
	// ErrExpired: a token past its Expiration Time. API code EXPIRED_TOKEN.
	ErrExpired = errors.New("siwx: token expired")
)

// Defaults of the zero fields of [Config].
const (
	DefaultMaxLifetime = 24 * time.Hour
	DefaultSkew        = time.Minute
	DefaultCacheSize   = 10_000
	// DefaultHeaderMaxAge is how long a SIGN-IN-WITH-X proof is valid
	// after its issuedAt, as x402's sign-in-with-x extension specifies.
	DefaultHeaderMaxAge = 5 * time.Minute
)

// Config configures a [Verifier]. Only Domain, URI and Chains are required.
type Config struct {
	// Domain is the domain that messages must name, host[:port], compared
	// byte for byte (so "API.example.com" or "api.example.com:443" does
	// not match "api.example.com").
	Domain string
	// URI is the origin (or a URL under it) that a message's URI must
	// start with: equal to it, or continuing with "/", "?" or "#" after
	// it, compared byte for byte, a trailing "/" of URI not counting. For
	// URI "https://api.example.com" a message may name
	// "https://api.example.com" or "https://api.example.com/login", not
	// "https://api.example.com.evil.test" nor "https://api.example.com@evil.test".
	// A message whose header names a scheme ("https://api.example.com wants
	// you…") must name URI's scheme.
	URI string
	// Chains are the CAIP-2 chains that messages may sign in on:
	// "eip155:<chain id>" (e.g. "eip155:8453", Base) or
	// "solana:<genesis hash prefix>" (e.g.
	// "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", mainnet).
	Chains []string
	// MaxLifetime bounds a message's Expiration Time minus its Issued At.
	// Zero means DefaultMaxLifetime (24 hours).
	MaxLifetime time.Duration
	// Skew is how far in the future a message's Issued At and Not Before
	// may be, for wallets whose clocks run fast. It does not extend
	// Expiration Time. Zero means DefaultSkew (1 minute).
	Skew time.Duration
	// HeaderMaxAge is how long after its issuedAt a SIGN-IN-WITH-X
	// proof is accepted (x402 requires issuedAt to be "recent"); its
	// expirationTime may end it sooner, and is not required. Zero means
	// DefaultHeaderMaxAge (5 minutes). It does not apply to SIWX tokens.
	HeaderMaxAge time.Duration
	// Clock tells the time tokens are checked at. Nil means the system
	// clock.
	Clock clock.Clock
	// CacheSize bounds the number of verified tokens kept (a few hundred
	// bytes each, whatever the token's length). Zero means
	// DefaultCacheSize; a negative size disables the cache.
	CacheSize int
	// Nonces, when set, are the only nonces SIGN-IN-WITH-X proofs may
	// carry: those of this deployment's challenges (see
	// [Verifier.VerifyProof]). Nil accepts any nonce. They do not apply
	// to SIWX tokens.
	Nonces *Nonces
}

// Wallet is the account a token signs in as.
type Wallet struct {
	// Chain is the CAIP-2 chain the message names, e.g. "eip155:8453".
	Chain string
	// Address is the account's address: EIP-55 checksummed for EVM chains,
	// base58 for Solana.
	Address string
}

// Account returns the wallet as "namespace:address", e.g. "eip155:0x…" or
// "solana:…": the chain family and the address, the form subscriptions are
// kept under (store.Subscription.Wallet), since an EVM address is the same
// account on every EVM chain.
func (w Wallet) Account() string {
	ns, _, _ := strings.Cut(w.Chain, ":")
	return ns + ":" + w.Address
}

// String returns the CAIP-10 account ID, "<chain>:<address>", e.g.
// "eip155:8453:0x…".
func (w Wallet) String() string { return w.Chain + ":" + w.Address }

// Verifier verifies SIWX tokens for one domain. It is safe for concurrent
// use.
type Verifier struct {
	domain      string
	uri         string // without a trailing "/"
	scheme      string // URI's, lower case
	chains      map[string]bool
	maxLifetime time.Duration
	skew        time.Duration
	headerAge   time.Duration
	clock       clock.Clock
	cache       *cache  // nil when disabled
	nonces      *Nonces // nil: any nonce
}

// New returns a Verifier for cfg, or an error if cfg is not valid.
func New(cfg Config) (*Verifier, error) {
	if u, err := url.Parse("//" + cfg.Domain); cfg.Domain == "" || err != nil || u.Host != cfg.Domain || u.User != nil {
		return nil, fmt.Errorf("siwx: domain %q: host[:port] required", cfg.Domain)
	}
	u, err := url.Parse(cfg.URI)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, fmt.Errorf("siwx: URI %q: an absolute URI with a host and no user, query or fragment is required", cfg.URI)
	}
	v := &Verifier{
		domain:      cfg.Domain,
		uri:         strings.TrimRight(cfg.URI, "/"),
		scheme:      u.Scheme,
		chains:      make(map[string]bool, len(cfg.Chains)),
		maxLifetime: cfg.MaxLifetime,
		skew:        cfg.Skew,
		headerAge:   cfg.HeaderMaxAge,
		clock:       cfg.Clock,
		nonces:      cfg.Nonces,
	}
	if len(cfg.Chains) == 0 {
		return nil, errors.New("siwx: at least one chain is required")
	}
	for _, c := range cfg.Chains {
		if !supportedChain(c) {
			return nil, fmt.Errorf(`siwx: chain %q: want "eip155:<decimal chain id>" or "solana:<CAIP-2 reference>"`, c)
		}
		v.chains[c] = true
	}
	switch {
	case v.maxLifetime == 0:
		v.maxLifetime = DefaultMaxLifetime
	case v.maxLifetime < 0:
		return nil, fmt.Errorf("siwx: negative MaxLifetime %v", v.maxLifetime)
	}
	switch {
	case v.skew == 0:
		v.skew = DefaultSkew
	case v.skew < 0:
		return nil, fmt.Errorf("siwx: negative Skew %v", v.skew)
	}
	switch {
	case v.headerAge == 0:
		v.headerAge = DefaultHeaderMaxAge
	case v.headerAge < 0:
		return nil, fmt.Errorf("siwx: negative HeaderMaxAge %v", v.headerAge)
	}
	if v.clock == nil {
		v.clock = clock.System{}
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size > 0 {
		if v.cache, err = newCache(size); err != nil {
			return nil, fmt.Errorf("siwx: %w", err)
		}
	}
	return v, nil
}

// supportedChain reports whether c is a CAIP-2 chain ID this package can
// verify signatures of, written as messages write it: "eip155:" and a
// decimal number without leading zeros, or "solana:" and a CAIP-2 reference
// ([-_a-zA-Z0-9]{1,32}).
func supportedChain(c string) bool {
	ns, ref, _ := strings.Cut(c, ":")
	if len(ref) < 1 || len(ref) > 32 {
		return false
	}
	for i := 0; i < len(ref); i++ {
		ch := ref[i]
		digit := '0' <= ch && ch <= '9'
		switch ns {
		case "eip155":
			if !digit || (i == 0 && ch == '0' && len(ref) > 1) {
				return false
			}
		case "solana":
			if !digit && !isLetter(ch) && ch != '-' && ch != '_' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// Verify verifies token, the text after "SIWX " in an Authorization header,
// at the Verifier's clock's time, and returns the wallet it signs in as and
// when it expires. A token is valid when:
//
//   - it is well formed (see [ParseToken]);
//   - its message names the configured domain, a URI under the configured
//     one, and one of the configured chains; the version is "1";
//   - it has an Expiration Time, not more than MaxLifetime after its
//     Issued At;
//   - its Issued At, and its Not Before if any, are at most Skew in the
//     future, and its Expiration Time is in the future;
//   - an EVM address is written in its EIP-55 checksummed form (as
//     EIP-4361 requires) and the signature is its EIP-191 personal_sign
//     signature of the message; a Solana address is canonical base58 and
//     the signature is its Ed25519 signature of the message's bytes.
//
// The checks run in that order, the signature last: a forged token that
// has expired gets ErrExpired.
//
// A verified token is cached, by its SHA-256, until it expires; a cached
// token is not checked again, except for its expiry (a cached token found
// expired is dropped). Failures are not cached: a negative cache would not
// slow an attacker, who can vary a token at will, and its entries would
// evict verified tokens.
//
// Every error wraps [ErrMalformed], [ErrSignature] or [ErrExpired].
func (v *Verifier) Verify(token string) (Wallet, time.Time, error) {
	if len(token) > MaxTokenLength {
		return Wallet{}, time.Time{}, fmt.Errorf("%w: token is %d bytes, more than the limit of %d", ErrMalformed, len(token), MaxTokenLength)
	}
	now := v.clock.Now()
	key := keyOf(token)
	if e, found, expired := v.cache.get(key, now); expired {
		return Wallet{}, time.Time{}, expiredError(e.expires)
	} else if found {
		return e.wallet, e.expires, nil
	}
	w, exp, err := v.verify(token, now)
	if err != nil {
		return Wallet{}, time.Time{}, err
	}
	v.cache.add(key, cached{wallet: w, expires: exp})
	return w, exp, nil
}

// verify does Verify's work, without the cache.
func (v *Verifier) verify(token string, now time.Time) (Wallet, time.Time, error) {
	t, err := ParseToken(token)
	if err != nil {
		return Wallet{}, time.Time{}, err
	}
	if err := v.checkMessage(t.Message, now); err != nil {
		return Wallet{}, time.Time{}, err
	}
	w, err := verifySignature(t)
	return w, t.Message.ExpirationTime, err
}

// verifySignature checks that t's signature is its address's signature of
// its text, and returns the wallet.
func verifySignature(t Token) (Wallet, error) {
	m := t.Message
	w := Wallet{Chain: m.CAIP2()}
	switch m.Chain {
	case message.ChainEthereum:
		addr, err := evm.ParseChecksummed(m.Address)
		if err != nil {
			return Wallet{}, fmt.Errorf("%w: address %q is not in its EIP-55 checksummed form", ErrMalformed, m.Address)
		}
		if err := evm.VerifyPersonalSign([]byte(t.Text), t.Signature, addr); err != nil {
			return Wallet{}, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		w.Address = addr.Hex()
	case message.ChainSolana:
		pub, err := solana.ParseAddress(m.Address)
		if err != nil {
			return Wallet{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if err := solana.Verify(pub, []byte(t.Text), t.Signature); err != nil {
			return Wallet{}, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		w.Address = pub.String()
	default: // ParseToken and ParseHeader return no other chain
		return Wallet{}, fmt.Errorf("%w: unknown chain %q", ErrMalformed, m.Chain)
	}
	return w, nil
}

// checkMessage checks everything about m but its address and signature.
func (v *Verifier) checkMessage(m *message.Message, now time.Time) error {
	if err := v.checkBinding(m); err != nil {
		return err
	}
	switch {
	case m.ExpirationTime.IsZero():
		return fmt.Errorf("%w: no Expiration Time", ErrMalformed)
	case !m.ExpirationTime.After(m.IssuedAt):
		return fmt.Errorf("%w: Expiration Time is not after Issued At", ErrMalformed)
	case m.ExpirationTime.Sub(m.IssuedAt) > v.maxLifetime:
		return fmt.Errorf("%w: lifetime %v (Issued At to Expiration Time) exceeds %v", ErrMalformed, m.ExpirationTime.Sub(m.IssuedAt), v.maxLifetime)
	}
	return v.checkTimes(m, m.ExpirationTime, now)
}

// checkTimes checks that m is valid at now, until expires.
func (v *Verifier) checkTimes(m *message.Message, expires, now time.Time) error {
	switch {
	case m.IssuedAt.After(now.Add(v.skew)):
		return fmt.Errorf("%w: issued in the future (at %s)", ErrMalformed, m.IssuedAt.UTC().Format(time.RFC3339))
	case !m.NotBefore.IsZero() && m.NotBefore.After(now.Add(v.skew)):
		return fmt.Errorf("%w: not yet valid (Not Before %s)", ErrMalformed, m.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(expires):
		return expiredError(expires)
	}
	return nil
}

// checkBinding checks that m is for this verifier: its domain, scheme, URI,
// chain and version.
func (v *Verifier) checkBinding(m *message.Message) error {
	switch {
	case m.Domain != v.domain:
		return fmt.Errorf("%w: domain %q, want %q", ErrMalformed, m.Domain, v.domain)
	case m.Scheme != "" && !strings.EqualFold(m.Scheme, v.scheme):
		return fmt.Errorf("%w: scheme %q, want %q", ErrMalformed, m.Scheme, v.scheme)
	case !v.uriAllowed(m.URI):
		return fmt.Errorf("%w: URI %q is not under %q", ErrMalformed, m.URI, v.uri)
	case !v.chains[m.CAIP2()]:
		return fmt.Errorf("%w: chain %q is not accepted", ErrMalformed, m.CAIP2())
	case m.Version != "1":
		return fmt.Errorf("%w: version %q, want \"1\"", ErrMalformed, m.Version)
	}
	return nil
}

// uriAllowed reports whether u is the configured URI or under it.
func (v *Verifier) uriAllowed(u string) bool {
	rest, ok := strings.CutPrefix(u, v.uri)
	return ok && (rest == "" || rest[0] == '/' || rest[0] == '?' || rest[0] == '#')
}

func expiredError(exp time.Time) error {
	return fmt.Errorf("%w: at %s", ErrExpired, exp.UTC().Format(time.RFC3339))
}
