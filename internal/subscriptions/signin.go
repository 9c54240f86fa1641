// Package subscriptions signs wallets in (SIWX) on the strength of the
// subscriptions they bought with x402 payments.
//
// A SIWX credential is an EIP-4361 message (or its Solana counterpart) signed
// by a wallet, sent as "Authorization: SIWX base64(message).signature", or as
// x402's SIGN-IN-WITH-X header (base64 JSON of the message's fields and the
// signature). It proves who holds the wallet; it admits a request only while
// the wallet has an active subscription. A wallet without one gets the operator's 402
// Payment Required answer, which tells it what to buy and where.
package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/headerpolicy"
	"net/http"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/replay"
	"github.com/tollgate/tollgate/internal/siwx"
	"github.com/tollgate/tollgate/internal/store"
)

// Scheme is the authentication scheme of SIWX credentials.
const Scheme = "SIWX"

// Subscriptions reads wallet subscriptions and their organizations;
// store.Store is one.
type Subscriptions interface {
	GetSubscription(ctx context.Context, wallet string) (store.Subscription, error)
	// GetOrganization reads a wallet's organization, whose status is
	// cached with the subscription.
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
}

// VerifyFunc verifies a SIWX token (what follows "SIWX ") and returns the
// wallet that signed it as "namespace:address" (see store.Subscription). Its
// errors are sent to the client: *apierror.Error values with the seed's codes
// (INVALID_TOKEN, INVALID_SIGNATURE, EXPIRED_TOKEN).
type VerifyFunc func(token string) (wallet string, err error)

// Proof is what a verified SIGN-IN-WITH-X proof establishes.
type Proof struct {
	// Wallet signed the proof: "namespace:address".
	Wallet string
	// Nonce is the proof's nonce, accepted once per wallet.
	Nonce string
	// Until is when the nonce may no longer be accepted, in any proof: the
	// replay cache remembers it until then.
	Until time.Time
}

// VerifyProofFunc verifies a SIGN-IN-WITH-X header value, with the errors
// of VerifyFunc.
type VerifyProofFunc func(header string) (Proof, error)

// SignInOptions configure a SignIn. Verify, Subscriptions and PaymentRequired
// are required.
type SignInOptions struct {
	Verify VerifyFunc
	// VerifyHeader verifies a SIGN-IN-WITH-X header value the same way;
	// nil ignores the header. A proof's nonce is accepted once per wallet,
	// through Replay.
	VerifyHeader VerifyProofFunc
	// Replay is the replay cache of SIGN-IN-WITH-X nonces, required with
	// VerifyHeader: each wallet's nonces under the wallet (see package
	// replay), at most ReplayMaxPerWallet of them (default
	// replay.DefaultMaxPerOwner) at a time.
	Replay             counters.Store
	ReplayMaxPerWallet int
	Subscriptions      Subscriptions
	// PaymentRequired answers a wallet without an active subscription
	// (Catalog.PaymentRequired).
	PaymentRequired func() *apierror.Error
	// CacheTTL is how long a subscription read from the store is trusted
	// from memory: a purchase made through another node is seen within it.
	// Purchases through this node are seen at once (Forget). Default 5s.
	CacheTTL time.Duration
	// CacheSize bounds the number of wallets cached. Default 100,000.
	CacheSize int
	Clock     clock.Clock // default clock.System{}
}

// SignIn is the SIWX authentication method (authn.Authenticator). It is safe
// for concurrent use.
type SignIn struct {
	verify       VerifyFunc
	verifyHeader VerifyProofFunc
	replay       counters.Store
	replayMax    int
	subs         Subscriptions
	pay          func() *apierror.Error
	ttl          time.Duration
	clock        clock.Clock

	cache *lru.Cache[string, *walletEntry]
	// forgets counts Forget calls: a lookup that read the store while a
	// Forget happened does not cache what it read, which may be stale.
	mu      sync.Mutex
	forgets uint64
}

// walletEntry is what the store said about a wallet, and when. It is
// immutable once cached.
type walletEntry struct {
	read        time.Time
	found       bool
	orgDisabled bool
	expires     time.Time
	principal   *authn.Principal
}

// NewSignIn returns the SIWX method.
func NewSignIn(o SignInOptions) (*SignIn, error) {
	if o.Verify == nil || o.Subscriptions == nil || o.PaymentRequired == nil {
		return nil, errors.New("subscriptions: sign-in needs Verify, Subscriptions and PaymentRequired")
	}
	if o.VerifyHeader != nil && o.Replay == nil {
		return nil, errors.New("subscriptions: SIGN-IN-WITH-X proofs need a replay cache")
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	cache, err := lru.New[string, *walletEntry](o.CacheSize)
	if err != nil {
		return nil, err
	}
	return &SignIn{
		verify: o.Verify, verifyHeader: o.VerifyHeader, replay: o.Replay, replayMax: o.ReplayMaxPerWallet,
		subs: o.Subscriptions, pay: o.PaymentRequired, ttl: o.CacheTTL, clock: o.Clock, cache: cache,
	}, nil
}

var errTwoAuthorizations = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "more than one Authorization header")

// Token returns the SIWX token of an Authorization header value, and whether
// the value uses the SIWX scheme (case-insensitive, as auth schemes are).
func Token(header string) (token string, ok bool) {
	scheme, token := headerpolicy.Scheme(header)
	if !strings.EqualFold(scheme, Scheme) {
		return "", false
	}
	return token, true
}

// Authenticate implements authn.Authenticator: a request whose Authorization
// header uses the SIWX scheme, or that carries a SIGN-IN-WITH-X header, is
// admitted as its wallet's organization while the wallet's subscription is
// active, and refused otherwise. The Authorization header wins when a
// request has both.
//
// A SIGN-IN-WITH-X proof is one-time: once its wallet is known to be
// subscribed, its nonce is claimed in the replay cache under the wallet, and
// the same nonce again gets 401 INVALID_SIGNATURE, reason replayed (a wallet
// over its share, 429 RATE_LIMITED, reason replay_cache_full). A request
// the gateway refuses after that gives the nonce back (replay.Claim).
func (s *SignIn) Authenticate(r *http.Request) (*authn.Principal, error) {
	wallet, proof, err := s.wallet(r)
	if err != nil {
		return nil, err
	}
	e, err := s.lookup(r.Context(), wallet)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	if !e.found || !now.Before(e.expires) {
		return nil, s.pay().WithReason("no_active_subscription")
	}
	if e.orgDisabled {
		return nil, apierror.ErrOrgDisabled
	}
	if proof != nil {
		ttl := max(proof.Until.Sub(now), time.Millisecond)
		if err := replay.Claim(r, s.replay, wallet, "siwx:"+proof.Nonce, ttl, s.replayMax, errProofReplayed); err != nil {
			return nil, err
		}
	}
	return e.principal, nil
}

var errProofReplayed = apierror.New(http.StatusUnauthorized, apierror.InvalidSignature,
	"this "+siwx.Header+" proof was already used: sign a new challenge (every 402 carries one)").
	WithReason(apierror.ReasonSignatureReplayed)

var errTwoProofs = apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "more than one "+siwx.Header+" header")

// wallet verifies the request's SIWX credential and returns its wallet, and
// the proof when it is a SIGN-IN-WITH-X header, or authn.ErrAbsent when it
// has none.
func (s *SignIn) wallet(r *http.Request) (string, *Proof, error) {
	auths := r.Header.Values("Authorization")
	for _, v := range auths {
		token, ok := Token(v)
		if !ok {
			continue
		}
		// A SIWX credential in any of several fields is this
		// method's; more than one field is ambiguous.
		if len(auths) > 1 {
			return "", nil, errTwoAuthorizations
		}
		w, err := s.verify(token)
		return w, nil, err
	}
	if s.verifyHeader == nil {
		return "", nil, authn.ErrAbsent
	}
	vs := r.Header.Values(siwx.Header)
	switch len(vs) {
	case 0:
		return "", nil, authn.ErrAbsent
	case 1:
		p, err := s.verifyHeader(strings.TrimSpace(vs[0]))
		if err != nil {
			return "", nil, err
		}
		return p.Wallet, &p, nil
	default:
		return "", nil, errTwoProofs
	}
}

// Challenge implements authn.Authenticator.
func (s *SignIn) Challenge() string { return Scheme + ` realm="tollgate"` }

// lookup returns what the store says about wallet, from the cache while it
// is fresh.
func (s *SignIn) lookup(ctx context.Context, wallet string) (*walletEntry, error) {
	now := s.clock.Now()
	if e, ok := s.cache.Get(wallet); ok && now.Sub(e.read) < s.ttl {
		return e, nil
	}
	s.mu.Lock()
	forgets := s.forgets
	s.mu.Unlock()
	sub, err := s.subs.GetSubscription(ctx, wallet)
	e := &walletEntry{read: now}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("subscriptions: subscription of %s: %w", wallet, err)
	default:
		org, err := s.subs.GetOrganization(ctx, sub.OrgID)
		if err != nil {
			return nil, fmt.Errorf("subscriptions: organization of %s: %w", wallet, err)
		}
		e.found, e.expires, e.orgDisabled = true, sub.ExpiresAt, org.Disabled()
		e.principal = &authn.Principal{
			OrgID: sub.OrgID, CredentialID: wallet, Method: authn.MethodSIWX, Plan: sub.Plan,
			ExpiresAt: sub.ExpiresAt,
		}
	}
	s.mu.Lock()
	if s.forgets == forgets {
		s.cache.Add(wallet, e)
	}
	s.mu.Unlock()
	return e, nil
}

// Apply carries out a message of the invalidation bus (counters.Bus): an
// organization's message (authn.OrgOfMessage) drops its wallets, so that
// their next request reads its status again, and counters.Resync ("*")
// drops every wallet. It reports true for Resync only: the other messages
// are every cache's business.
func (s *SignIn) Apply(msg string) bool {
	org, ok := authn.OrgOfMessage(msg)
	if !ok && msg != "*" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgets++ // a lookup under way does not cache what it read before
	if !ok {
		s.cache.Purge()
		return true
	}
	for _, w := range s.cache.Keys() {
		if e, found := s.cache.Peek(w); found && e.principal != nil && e.principal.OrgID == org {
			s.cache.Remove(w)
		}
	}
	return false
}

// Forget drops what is cached about wallet, so that its next request reads
// the store: after a purchase through this node.
func (s *SignIn) Forget(wallet string) {
	s.mu.Lock()
	s.forgets++
	s.cache.Remove(wallet)
	s.mu.Unlock()
}
