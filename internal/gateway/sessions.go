package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// Reasons a session is closed, as logged.
const (
	EndRevoked  = "revoked"  // its credential or token was revoked or changed
	EndExpired  = "expired"  // its credential expired
	EndDisabled = "disabled" // its organization was disabled
	EndBanned   = "banned"   // its address, credential or organization was banned
)

// SessionsOptions configure Sessions.
type SessionsOptions struct {
	// Counters hold the slots of the cap, shared by every node that shares
	// them (Redis), or this node's (memory). Required when Max is
	// positive; its bans are not read here (see Sessions.Banned).
	Counters counters.Store
	// Max is how many sessions one credential may hold open at once; 0:
	// no cap.
	Max int
	// Lease is how long a slot outlives the node that holds it. Default
	// 30s; Run renews the slots every third of it.
	Lease  time.Duration
	Clock  clock.Clock  // default clock.System{}: the expiry timers
	Logger *slog.Logger // default: discard
	// Recheck, when set, reads again from the store whether a session of
	// principal p, opened at opened, may go on (its credential not
	// revoked since, its organization not disabled). End calls it for
	// every open session on counters.Resync, when messages of the bus may
	// have been lost; false closes the session. An error (the store
	// unreachable) keeps it open.
	Recheck func(ctx context.Context, p *authn.Principal, opened time.Time) (bool, error)
}

// Sessions is the register of the open sessions of upgraded connections
// (WebSocket) that the gateway proxies for authenticated callers. It caps
// them per credential (a slot in the counters, leased, so that the cap holds
// across nodes and a dead node's slots free themselves), and closes them
// (both connections) when their credential ends: at its expiry (a timer per
// session, no polling), and when it is told that a credential was revoked,
// an organization disabled (End, fed by the invalidation bus) or something
// banned (Banned, fed by counters.Store.WatchBans). A session is metered
// when it ends, however it ends.
//
// A nil *Sessions admits every session and closes none. Sessions is safe
// for concurrent use.
type Sessions struct {
	o    SessionsOptions
	node string // prefix of this node's slot holders
	seq  atomic.Uint64

	mu      sync.Mutex
	byCred  map[string]map[*session]struct{}
	byOrg   map[string]map[*session]struct{}
	byIP    map[netip.Addr]map[*session]struct{}
	byToken map[string]map[*session]struct{}
	n       atomic.Int64 // open sessions: End and Banned cost nothing without any
}

// session is one open session.
type session struct {
	p      *authn.Principal
	opened time.Time
	ip     netip.Addr
	holder string // its slot's holder; "" without a cap
	cancel context.CancelCauseFunc
	timer  clock.Timer // its expiry; nil when the credential never expires
	reason atomic.Pointer[string]
}

// errSessionEnded is the cause of a closed session's context.
var errSessionEnded = errors.New("gateway: session closed")

// NewSessions returns an empty register.
func NewSessions(o SessionsOptions) *Sessions {
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Sessions{
		o: o, node: hex.EncodeToString(b[:]),
		byCred: map[string]map[*session]struct{}{}, byOrg: map[string]map[*session]struct{}{},
		byIP: map[netip.Addr]map[*session]struct{}{}, byToken: map[string]map[*session]struct{}{},
	}
}

// Len returns the number of open sessions.
func (s *Sessions) Len() int {
	if s == nil {
		return 0
	}
	return int(s.n.Load())
}

// slotKey is the counters key of a credential's session slots.
func slotKey(p *authn.Principal) string { return "ws:" + string(p.Method) + ":" + p.CredentialID }

var errTooManySessions = apierror.New(http.StatusTooManyRequests, apierror.RateLimited,
	"this credential has as many WebSocket sessions open as it may; close one first").
	WithReason(apierror.ReasonTooManySessions)

// IsUpgrade reports whether r opens a session: it asks to switch protocols
// (RFC 9110 §7.8) as ReverseProxy sees it, a Connection header naming
// "upgrade" and an Upgrade header, or it is an HTTP/2 extended CONNECT (RFC
// 8441, WebSocket over HTTP/2, should the server enable it).
func IsUpgrade(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return r.Header.Get(":protocol") != ""
	}
	return httpguts.HeaderValuesContainsToken(r.Header["Connection"], "Upgrade") && r.Header.Get("Upgrade") != ""
}

// open admits and registers the session r asks for, if r is an upgrade of
// an authenticated caller: it returns the request to forward, whose context
// ends when the session must close, and what to call once the upgrade is
// over (nil when r is no such request). It refuses a credential that holds
// Max sessions already.
func (s *Sessions) open(r *http.Request) (*http.Request, func(), error) {
	if s == nil || !IsUpgrade(r) {
		return r, nil, nil
	}
	info := reqinfo.From(r.Context())
	p := info.Principal
	if p == nil {
		return r, nil, nil
	}
	ss := &session{p: p, ip: info.ClientIP, opened: s.o.Clock.Now()}
	if res, _ := r.Context().Value(reservationKey{}).(*reservation); res != nil && res.holder != "" && res.p == p {
		ss.holder = res.holder // taken before the limiter charged the request
	} else if s.o.Max > 0 {
		holder, err := s.acquire(r.Context(), p)
		if err != nil {
			return r, nil, err
		}
		ss.holder = holder
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	ss.cancel = cancel
	s.add(ss)
	if !p.ExpiresAt.IsZero() {
		ss.timer = clock.AfterFunc(s.o.Clock, p.ExpiresAt.Sub(s.o.Clock.Now()), func() { s.close(ss, EndExpired) })
	}
	return r.WithContext(ctx), func() { s.done(ss) }, nil
}

// acquire takes a slot for a session of p, or refuses it.
func (s *Sessions) acquire(ctx context.Context, p *authn.Principal) (holder string, err error) {
	holder = s.node + "-" + strconv.FormatUint(s.seq.Add(1), 16)
	ok, err := s.o.Counters.AcquireSlot(ctx, slotKey(p), holder, s.o.Max, s.o.Lease)
	if err != nil {
		return "", apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable,
			"counter store unavailable").Wrap(err)
	}
	if !ok {
		return "", errTooManySessions
	}
	return holder, nil
}

// release frees a slot taken for a session that will not be.
func (s *Sessions) release(p *authn.Principal, holder string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.o.Counters.ReleaseSlot(ctx, slotKey(p), holder); err != nil {
		s.o.Logger.Warn("a WebSocket session's slot was not released; it frees itself when its lease ends",
			"credential_id", p.CredentialID, "lease", s.o.Lease, "error", err)
	}
}

// reservation is the slot taken for an upgrade the gateway is about to
// decide and proxy (see mark); it travels in the request's context.
type reservation struct {
	p      *authn.Principal
	holder string // "" until taken
}

type reservationKey struct{}

// mark prepares an upgrade that the gateway proxies (not one the decision
// API only decides) for its slot to be taken by the limiter, before the
// request is charged: a session refused for the cap costs nothing. Other
// requests are returned as they are, at no cost.
func (s *Sessions) mark(r *http.Request) *http.Request {
	if s == nil || s.o.Max <= 0 || !IsUpgrade(r) {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), reservationKey{}, &reservation{}))
}

// limiter wraps the gateway's limiter so that a marked upgrade takes its
// slot before it is charged, and gives it back when the limiter refuses.
func (s *Sessions) limiter(l Limiter) Limiter {
	if s == nil || s.o.Max <= 0 || l == nil {
		return l
	}
	return slotLimiter{Limiter: l, s: s}
}

type slotLimiter struct {
	Limiter
	s *Sessions
}

func (l slotLimiter) Limit(w http.ResponseWriter, r *http.Request, p *authn.Principal, units int64) error {
	res, _ := r.Context().Value(reservationKey{}).(*reservation)
	if res == nil {
		return l.Limiter.Limit(w, r, p, units)
	}
	holder, err := l.s.acquire(r.Context(), p)
	if err != nil {
		return err
	}
	if err := l.Limiter.Limit(w, r, p, units); err != nil {
		l.s.release(p, holder)
		return err
	}
	res.p, res.holder = p, holder
	return nil
}

func addTo[K comparable](m map[K]map[*session]struct{}, k K, ss *session) {
	set := m[k]
	if set == nil {
		set = map[*session]struct{}{}
		m[k] = set
	}
	set[ss] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*session]struct{}, k K, ss *session) {
	if set := m[k]; set != nil {
		delete(set, ss)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

func (s *Sessions) add(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addTo(s.byCred, ss.p.CredentialID, ss)
	addTo(s.byOrg, ss.p.OrgID, ss)
	addTo(s.byIP, ss.ip, ss)
	if ss.p.TokenID != "" {
		addTo(s.byToken, ss.p.TokenID, ss)
	}
	s.n.Add(1)
}

// done unregisters a session that is over and frees its slot.
func (s *Sessions) done(ss *session) {
	s.mu.Lock()
	removeFrom(s.byCred, ss.p.CredentialID, ss)
	removeFrom(s.byOrg, ss.p.OrgID, ss)
	removeFrom(s.byIP, ss.ip, ss)
	if ss.p.TokenID != "" {
		removeFrom(s.byToken, ss.p.TokenID, ss)
	}
	s.n.Add(-1)
	s.mu.Unlock()
	if ss.timer != nil {
		ss.timer.Stop()
	}
	ss.cancel(nil)
	if ss.holder != "" {
		s.release(ss.p, ss.holder)
	}
}

// close closes a session (both of its connections) for reason.
func (s *Sessions) close(ss *session, reason string) {
	if !ss.reason.CompareAndSwap(nil, &reason) {
		return // closed already
	}
	s.o.Logger.Info("WebSocket session closed", "reason", reason, "org_id", ss.p.OrgID,
		"credential_id", ss.p.CredentialID, "client_ip", ss.ip.String())
	ss.cancel(errSessionEnded)
}

// closeAll closes the sessions of set (one of the indexes, under key k).
func closeAll[K comparable](s *Sessions, m map[K]map[*session]struct{}, k K, reason string) int {
	if s.n.Load() == 0 {
		return 0
	}
	s.mu.Lock()
	set := make([]*session, 0, len(m[k]))
	for ss := range m[k] {
		set = append(set, ss)
	}
	s.mu.Unlock()
	for _, ss := range set {
		s.close(ss, reason)
	}
	return len(set)
}

// End carries out a message of the invalidation bus (counters.Bus) that
// ends sessions: API keys revoked or changed (credentials.KeyIDsOfMessage),
// an OAuth client's sessions ended (authn.MsgCredentialEnded), a token
// revoked (authn.MsgTokenRevoked), an organization disabled
// (authn.MsgOrgDisabled). Other messages are ignored. It returns how many
// sessions it closed.
//
// counters.Resync (messages may have been lost) rechecks every open session
// in the background (SessionsOptions.Recheck) and returns 0.
func (s *Sessions) End(msg string) int {
	if s == nil || s.n.Load() == 0 {
		return 0
	}
	if msg == counters.Resync {
		if s.o.Recheck != nil {
			go s.recheck()
		}
		return 0
	}
	if ids, ok := credentials.KeyIDsOfMessage(msg); ok {
		n := 0
		for _, id := range ids {
			n += closeAll(s, s.byCred, id, EndRevoked)
		}
		return n
	}
	if id, ok := strings.CutPrefix(msg, authn.MsgCredentialEnded); ok {
		return closeAll(s, s.byCred, id, EndRevoked)
	}
	if jti, ok := strings.CutPrefix(msg, authn.MsgTokenRevoked); ok {
		return closeAll(s, s.byToken, jti, EndRevoked)
	}
	if org, ok := strings.CutPrefix(msg, authn.MsgOrgDisabled); ok {
		return closeAll(s, s.byOrg, org, EndDisabled)
	}
	return 0
}

// recheck closes the open sessions that Recheck refuses.
func (s *Sessions) recheck() {
	s.mu.Lock()
	var open []*session
	for _, set := range s.byCred {
		for ss := range set {
			open = append(open, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range open {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ok, err := s.o.Recheck(ctx, ss.p, ss.opened)
		cancel()
		if err != nil {
			s.o.Logger.Warn("an open WebSocket session's credential could not be checked again; it stays open",
				"credential_id", ss.p.CredentialID, "error", err)
			continue
		}
		if !ok {
			s.close(ss, EndRevoked)
		}
	}
}

// Banned closes the sessions of what the ban key (BanKey) names, if it is
// banned now: counters.Store.WatchBans calls it for every ban set on any
// node. It returns how many sessions it closed.
func (s *Sessions) Banned(key string, bans counters.Store) int {
	if s == nil || s.n.Load() == 0 {
		return 0
	}
	if d, err := bans.Banned(context.Background(), key); err != nil || d <= 0 {
		return 0
	}
	rest, ok := strings.CutPrefix(key, "ban:")
	if !ok {
		return 0
	}
	kind, id, _ := strings.Cut(rest, ":")
	switch kind {
	case BanIP:
		if ip, err := netip.ParseAddr(id); err == nil {
			return closeAll(s, s.byIP, ip, EndBanned)
		}
	case BanCredential:
		return closeAll(s, s.byCred, id, EndBanned)
	case BanOrganization:
		return closeAll(s, s.byOrg, id, EndBanned)
	}
	return 0
}

// Run renews the slots of the open sessions every third of the lease, until
// ctx ends. Without a cap it returns at once.
func (s *Sessions) Run(ctx context.Context) {
	if s == nil || s.o.Max <= 0 {
		return
	}
	t := time.NewTicker(s.o.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.renew(ctx)
		}
	}
}

// renew renews the slots of the open sessions in one call.
func (s *Sessions) renew(ctx context.Context) {
	s.mu.Lock()
	slots := make([]counters.Slot, 0, s.n.Load())
	for _, set := range s.byCred {
		for ss := range set {
			if ss.holder != "" {
				slots = append(slots, counters.Slot{Key: slotKey(ss.p), Holder: ss.holder})
			}
		}
	}
	s.mu.Unlock()
	if len(slots) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.o.Lease/3)
	defer cancel()
	if err := s.o.Counters.RenewSlots(rctx, slots, s.o.Lease); err != nil {
		s.o.Logger.Warn("renewing the slots of open WebSocket sessions failed; they may be counted as free once their lease ends",
			"sessions", len(slots), "error", err)
	}
}
