// Package gateway is Tollgate's data plane: it matches a request to a
// configured route, authenticates and authorizes the caller, and proxies the
// request to the route's upstream with the caller's context attached. A
// request that fails any check is answered by the gateway and never reaches
// the upstream.
package gateway

import (
	"context"
	"crypto/sha1" //nolint:gosec // G505: RFC 6455 names SHA-1 for Sec-WebSocket-Accept
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/headerpolicy"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// Headers of the contract between Tollgate and its clients and upstreams
// (package headerpolicy has them all, and what becomes of them).
const (
	HeaderAPIKey     = headerpolicy.APIKey
	HeaderRequestID  = headerpolicy.RequestID
	HeaderOrg        = headerpolicy.Org
	HeaderApp        = headerpolicy.App
	HeaderCredential = headerpolicy.Credential
	HeaderScopes     = headerpolicy.Scopes
)

// DefaultUpgrades are the protocols a client may upgrade a connection to
// through the gateway when Options.Upgrades is nil.
var DefaultUpgrades = []string{"websocket"}

// Options configure a Gateway.
type Options struct {
	// Authenticators are the authentication methods, by priority: for each
	// request the first whose credential is present decides (wallet
	// signature, then API key, then JWT Bearer).
	Authenticators []authn.Authenticator
	// Limiter decides the rate limit and quota of authenticated requests;
	// nil: unlimited.
	Limiter Limiter
	// Bans refuses banned callers and bans addresses that keep failing to
	// authenticate; nil bans nobody.
	Bans *Bans
	// Decider, when set, decides every request on a non-public route in
	// place of Authenticators and Limiter: a gateway-role node asks the
	// auth service. Limiter's Charge is still used for what is charged
	// after the fact.
	Decider Decider
	// Transport carries requests to upstreams. Default: NewTransport().
	Transport *http.Transport
	// TrustedPeer reports whether the direct peer of a request is a trusted
	// proxy, so that its X-Forwarded-For is kept and extended rather than
	// replaced. Default: trust nobody.
	TrustedPeer func(remoteAddr string) bool
	// NoCredentials, when set, answers a request that carries no credential
	// of any method on a route that needs one: x402's 402 Payment Required.
	// Default: 401 UNAUTHORIZED with a WWW-Authenticate
	// challenge per method. It is called for each such request, so that
	// its answer may change (x402's sign-in-with-x challenge does).
	NoCredentials func() *apierror.Error
	// Meter, when set, is told of every request (see Meter).
	Meter Meter
	// Sessions, when set, caps and registers the upgraded (WebSocket)
	// sessions of authenticated callers, and closes them when their
	// credential ends (see Sessions); nil admits them all.
	Sessions *Sessions
	// Sign wraps a handler so that its responses are signed (package
	// respsign). The gateway applies it to the routes with SignResponse,
	// their refusals included. Nil signs nothing.
	Sign func(http.Handler) http.Handler
	// SignAll says that every response is signed outside the gateway:
	// Sign is not applied, but every route is prepared for signing (see
	// SignResponse).
	SignAll bool
	// Upgrades are the protocols (RFC 9110 section 7.8) a client may
	// upgrade its connection to through the gateway, compared
	// case-insensitively; nil: DefaultUpgrades. Any other Upgrade request
	// is forwarded as a plain request, without Upgrade and Connection: an
	// h2c upgrade would give the client an HTTP/2 connection to the
	// upstream whose later requests Tollgate never sees.
	Upgrades []string
	// PrivateCookie reports whether a cookie is Tollgate's own (the
	// dashboard's session): such cookies are removed from the requests
	// sent to upstreams, and their Set-Cookie fields from the responses,
	// so that no backend on a host the dashboard shares (browsers send a
	// host's cookies to all its ports) reads or plants one. Nil: none.
	PrivateCookie func(name string) bool
	Clock         clock.Clock // default clock.System{}
	Logger        *slog.Logger
}

// Limiter decides an authenticated request costing units: Limit sets the
// allowance headers on w and returns the refusal, if any. Charge adds units
// known only after the fact (a WebSocket session's megabytes), refusing
// nothing.
type Limiter interface {
	Limit(w http.ResponseWriter, r *http.Request, p *authn.Principal, units int64) error
	Charge(ctx context.Context, p *authn.Principal, units int64) error
}

// Decider decides a request on the route with prefix route, elsewhere than
// in this process: it returns the principal of an admitted request, having
// set the headers for the client (RateLimit-*) on w, or the refusal, with
// the principal when it is known (for metering).
type Decider interface {
	Decide(w http.ResponseWriter, r *http.Request, route string) (*authn.Principal, error)
}

// Gateway is an http.Handler for every path that is not Tollgate's own. It is
// safe for concurrent use; its routes are compiled once, at New.
type Gateway struct {
	routes   []*route
	methods  []authn.Authenticator
	limiter  Limiter
	bans     *Bans
	decider  Decider
	noCreds  func() *apierror.Error // the answer to a request without credentials
	trusted  func(string) bool
	private  func(string) bool // Options.PrivateCookie
	meter    Meter
	upgrades []string
	open     *Sessions
	clock    clock.Clock
	log      *slog.Logger
	// signed serves the requests of signed routes; nil when no route is
	// signed by the gateway.
	signed http.Handler

	// unmetered counts the requests admitted and not yet metered, and
	// their units (see Unmetered).
	unmetered struct{ requests, units atomic.Int64 }
}

type route struct {
	prefix  string
	folded  string   // foldPath(prefix)
	host    string   // lower case; "" matches any host
	methods []string // nil matches any method
	scopes  []string
	public  bool
	strip   bool
	// sign: the route's responses are signed, so they must reach the
	// client exactly as signed: no content coding.
	sign  bool
	units int64
	// unitsPerMB is charged per started megabyte of a WebSocket session.
	unitsPerMB int64
	upstream   *url.URL
	proxy      *httputil.ReverseProxy
}

// NewTransport returns the transport tuned for proxying: a large idle pool per
// upstream, HTTP/2 when the upstream offers it over TLS, bounded dial and TLS
// handshake times.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil, // never send upstream traffic through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// proxyBufferSize is the size of the buffers responses are copied through,
// ReverseProxy's own default.
const proxyBufferSize = 32 << 10

// bufferPool recycles the copy buffers of proxied responses. Without one,
// ReverseProxy allocates (and the garbage collector clears and sweeps) a
// 32 KiB buffer per request: most of the allocation of a proxied request.
// sync.Pool holds pointers; the pointer holders are pooled too, so that a
// Get and a Put allocate nothing.
type bufferPool struct{ buffers, holders sync.Pool }

// NewBufferPool returns the pool of response copy buffers the gateway gives
// its ReverseProxy; one pool serves every route.
func NewBufferPool() httputil.BufferPool {
	return &bufferPool{
		buffers: sync.Pool{New: func() any { b := make([]byte, proxyBufferSize); return &b }},
		holders: sync.Pool{New: func() any { return new([]byte) }},
	}
}

func (bp *bufferPool) Get() []byte {
	h := bp.buffers.Get().(*[]byte)
	b := *h
	*h = nil
	bp.holders.Put(h)
	return b
}

func (bp *bufferPool) Put(b []byte) {
	if cap(b) != proxyBufferSize {
		return
	}
	h := bp.holders.Get().(*[]byte)
	*h = b[:proxyBufferSize]
	bp.buffers.Put(h)
}

// New compiles routes into a Gateway.
func New(routes []config.Route, o Options) (*Gateway, error) {
	if o.Transport == nil {
		o.Transport = NewTransport()
	}
	if o.TrustedPeer == nil {
		o.TrustedPeer = func(string) bool { return false }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Upgrades == nil {
		o.Upgrades = DefaultUpgrades
	}
	for _, u := range o.Upgrades {
		if strings.EqualFold(u, "h2c") {
			return nil, errors.New("gateway: h2c upgrades are never forwarded")
		}
	}
	g := &Gateway{
		methods: o.Authenticators, limiter: o.Sessions.limiter(o.Limiter), decider: o.Decider, bans: o.Bans, trusted: o.TrustedPeer,
		private: o.PrivateCookie, meter: o.Meter, upgrades: o.Upgrades, open: o.Sessions, clock: o.Clock, log: o.Logger,
	}
	buffers := NewBufferPool()
	unauthorized := apierror.ErrUnauthorized
	for _, m := range o.Authenticators {
		unauthorized = unauthorized.AddHeader("WWW-Authenticate", m.Challenge())
	}
	g.noCreds = func() *apierror.Error { return unauthorized }
	if o.NoCredentials != nil {
		g.noCreds = o.NoCredentials
	}
	for _, cr := range routes {
		u, err := url.Parse(cr.Upstream)
		if err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", cr.Path, err)
		}
		rt := &route{
			prefix:     cr.Path,
			folded:     foldPath(cr.Path),
			host:       strings.ToLower(cr.Host),
			methods:    cr.Methods,
			scopes:     cr.Scopes,
			public:     cr.Public,
			strip:      cr.StripPrefix,
			sign:       cr.SignResponse || o.SignAll,
			units:      cr.UnitCost(),
			unitsPerMB: cr.WebSocketUnitsPerMB,
			upstream:   u,
		}
		transport := o.Transport
		if cr.Timeout > 0 {
			transport = o.Transport.Clone()
			transport.ResponseHeaderTimeout = cr.Timeout
		}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite:        g.rewriter(rt),
			ModifyResponse: g.modifyResponse,
			Transport:      transport,
			BufferPool:     buffers,
			ErrorHandler:   g.proxyError,
			ErrorLog:       slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		}
		g.routes = append(g.routes, rt)
	}
	if o.Sign != nil && !o.SignAll && slices.ContainsFunc(routes, func(cr config.Route) bool { return cr.SignResponse }) {
		g.signed = o.Sign(http.HandlerFunc(g.serveHTTP))
	}
	// Longest prefix first; among equals, host-specific before any-host.
	slices.SortStableFunc(g.routes, func(a, b *route) int {
		if d := len(b.prefix) - len(a.prefix); d != 0 {
			return d
		}
		return len(b.host) - len(a.host)
	})
	return g, nil
}

var (
	errNoRoute  = apierror.New(http.StatusNotFound, apierror.NotFound, "no route for this path")
	errIPDenied = apierror.New(http.StatusForbidden, apierror.Forbidden,
		"requests from this IP address are not allowed for this credential").WithReason(apierror.ReasonIPNotAllowed)
	errScope = apierror.New(http.StatusForbidden, apierror.InsufficientScope, "the credential lacks a scope this route requires")
)

// match returns the route for r, or an error: 404 when no route's path and
// host match, 405 when some do but not for this method. r's path is
// canonical (httpx.CanonicalTarget, or the decision API's rebuild): it is
// matched as it is, case-sensitively, by prefix (by whole segments for a
// route that strips its prefix, see wholeSegments); the method as
// methodMatches says. The host is matched without its port
// and trailing dot, case-insensitively, as DNS names are.
func (g *Gateway) match(r *http.Request) (*route, error) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	var allow []string
	var shadow *route // a longer route the path matches only as a folding upstream reads it (shadow.go)
	for _, rt := range g.routes {
		if rt.host != "" && !strings.EqualFold(rt.host, host) {
			continue
		}
		if !strings.HasPrefix(r.URL.Path, rt.prefix) {
			if shadow == nil && foldedHasPrefix(r.URL.Path, rt.folded) {
				shadow = rt
			}
			continue
		}
		if rt.strip && !wholeSegments(r.URL.Path, rt.prefix) {
			continue
		}
		if rt.methods == nil || slices.ContainsFunc(rt.methods, func(m string) bool { return methodMatches(m, r.Method) }) {
			if shadow != nil && looser(rt, shadow) {
				return nil, errShadowed(rt, shadow)
			}
			return rt, nil
		}
		allow = append(allow, rt.methods...)
	}
	if allow != nil {
		slices.Sort(allow)
		return nil, apierror.New(http.StatusMethodNotAllowed, apierror.MethodNotAllowed, "method not allowed on this route").
			WithHeader("Allow", strings.Join(slices.Compact(allow), ", "))
	}
	return nil, errNoRoute
}

// methodMatches reports whether a request's method is the route method m
// (upper case, see config), as upstreams read methods: in any case (Django
// and Werkzeug upper-case REQUEST_METHOD, so "post" is POST to them), and
// HEAD as GET (RFC 9110 section 9.3.2; routers run a GET handler for it).
// Otherwise a method a scoped route lists, spelled "post" or sent as HEAD,
// would fall through to a broader route and reach that very handler.
func methodMatches(m, method string) bool {
	return strings.EqualFold(m, method) || (m == http.MethodGet && strings.EqualFold(method, http.MethodHead))
}

// wholeSegments reports whether prefix, a prefix of path, ends where a
// segment of path does. A route that strips its prefix matches only then:
// "/s1" stripped from "/s1kyt/score" or "/s1../kyt/score" would leave
// "/kyt/score" or "/../kyt/score", a path of another route's upstream that
// the route never matched (RFC 3986 section 3.3: "/" ends a segment).
func wholeSegments(path, prefix string) bool {
	return strings.HasSuffix(prefix, "/") || len(path) == len(prefix) || path[len(prefix)] == '/'
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.signed != nil {
		if rt, _ := g.match(r); rt != nil && rt.sign {
			g.signed.ServeHTTP(w, r)
			return
		}
	}
	g.serveHTTP(w, r)
}

// serveHTTP is ServeHTTP without the signing of signed routes.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if g.meter != nil {
		g.serveMetered(w, r)
		return
	}
	if _, err := g.serve(w, r); err != nil {
		apierror.Write(w, r, err)
	}
}

// serve answers r; it returns the matched route, and the refusal, if any,
// which it has not written.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) (*route, error) {
	rt, r, end, err := g.admit(w, r)
	if err != nil {
		return rt, err
	}
	if end != nil {
		defer end() // the session is over when the proxy returns
	}
	rt.proxy.ServeHTTP(w, r)
	return rt, nil
}

// admit decides r: it returns the matched route and, when r is admitted
// (charged), the request to forward and what to call once the proxy has
// returned (nil but for an upgrade: see Sessions.open); otherwise the
// refusal, which it has not written, with the route when one matched.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request) (*route, *http.Request, func(), error) {
	rt, err := g.match(r)
	if err != nil {
		return nil, nil, nil, err
	}
	info := reqinfo.From(r.Context())
	info.Route = rt.prefix
	r = g.open.mark(r) // an upgrade to proxy: its session's slot is taken before it is charged
	if !rt.public {
		if g.decider != nil {
			p, err := g.decider.Decide(w, r, rt.prefix)
			info.Principal = p
			if err != nil {
				return rt, nil, nil, err
			}
		} else if err := g.decide(w, r, rt); err != nil {
			return rt, nil, nil, err
		}
	}
	r, end, err := g.open.open(r)
	if err != nil {
		return rt, nil, nil, err
	}
	return rt, r, end, nil
}

// decide runs the pipeline's decision on r, for a non-public route:
// authenticate, authorize (bans, IP allowlist, scopes), limit. It records the
// principal in the request's reqinfo.Info as soon as it is known.
func (g *Gateway) decide(w http.ResponseWriter, r *http.Request, rt *route) error {
	info := reqinfo.From(r.Context())
	ctx := r.Context()
	if err := g.bans.checkAddr(ctx, info.ClientIP); err != nil {
		return err
	}
	p, err := g.authenticate(r)
	if err != nil {
		g.bans.failed(ctx, info.ClientIP, err)
		return err
	}
	info.Principal = p
	if err := g.authorize(w, r, rt, p); err != nil {
		if undo := info.Undo; undo != nil { // the request never reaches the upstream
			info.Undo = nil
			undo(context.WithoutCancel(ctx))
		}
		return err
	}
	return nil
}

// authorize runs the checks of an authenticated request: bans, IP
// allowlist, scopes, limits.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, rt *route, p *authn.Principal) error {
	info := reqinfo.From(r.Context())
	if err := g.bans.checkPrincipal(r.Context(), p); err != nil {
		return err
	}
	if !p.IPAllowlist.Contains(info.ClientIP) {
		return errIPDenied
	}
	if !p.HasScopes(rt.scopes) {
		if p.Method == authn.MethodBearer { // RFC 6750 §3.1
			return errScope.WithHeader("WWW-Authenticate",
				`Bearer realm="tollgate", error="insufficient_scope", scope="`+strings.Join(rt.scopes, " ")+`"`)
		}
		return errScope
	}
	if g.limiter != nil {
		if err := g.limiter.Limit(w, r, p, rt.units); err != nil {
			return err
		}
	}
	return nil
}

// Decision is the outcome of Authorize for an admitted request.
type Decision struct {
	// Route is the matched route's path prefix.
	Route string
	// Units is what the request was charged.
	Units int64
	// Principal is the caller; nil on a public route.
	Principal *authn.Principal
}

// Authorize decides r as ServeHTTP would, without forwarding it: the
// decision API of the auth service (forward-auth, Envoy ext_authz, gateway
// nodes) runs it on a request rebuilt from what its caller saw. It sets the
// headers for the client (RateLimit-*) on w and returns the decision, or
// the refusal, which it has not written. The principal, once known, is in
// the request's reqinfo.Info even when the request is refused.
func (g *Gateway) Authorize(w http.ResponseWriter, r *http.Request) (Decision, error) {
	rt, err := g.match(r)
	if err != nil {
		return Decision{}, err
	}
	info := reqinfo.From(r.Context())
	info.Route = rt.prefix
	if rt.public {
		return Decision{Route: rt.prefix}, nil
	}
	if err := g.decide(w, r, rt); err != nil {
		return Decision{Route: rt.prefix}, err
	}
	return Decision{Route: rt.prefix, Units: rt.units, Principal: info.Principal}, nil
}

// authenticate evaluates exactly one credential: that of the first method,
// by priority, whose credential the request carries.
func (g *Gateway) authenticate(r *http.Request) (*authn.Principal, error) {
	for _, m := range g.methods {
		p, err := m.Authenticate(r)
		if errors.Is(err, authn.ErrAbsent) {
			continue
		}
		return p, err
	}
	return nil, g.noCreds()
}

// rewriter builds the outbound request: upstream URL and the canonical path
// that was matched, the headers of the header policy (package headerpolicy:
// credentials and forged identity or forwarding headers removed), caller
// context and forwarding headers added.
func (g *Gateway) rewriter(rt *route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		in, out := pr.In, pr.Out
		if rt.strip {
			out.URL.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(in.URL.Path, rt.prefix), "/")
			out.URL.RawPath = ""
			if raw := in.URL.RawPath; strings.HasPrefix(raw, rt.prefix) {
				// The path's escapes, as the client sent them; the
				// prefix, canonical, is the same in both forms.
				out.URL.RawPath = "/" + strings.TrimPrefix(strings.TrimPrefix(raw, rt.prefix), "/")
			}
		}
		pr.SetURL(rt.upstream)

		h := out.Header
		trusted := g.trusted(in.RemoteAddr)
		headerpolicy.StripInbound(h, trusted)
		if !rt.public {
			// A Bearer or SIWX credential on an authenticated route is
			// for Tollgate, whether or not it was the one evaluated.
			headerpolicy.StripAuthorization(h)
		}
		if rt.sign {
			// A signature covers the bytes sent; a client whose HTTP
			// library decodes a gzip body transparently would be left
			// with other bytes. Without the client's Accept-Encoding,
			// the transport asks for gzip itself and decodes the answer:
			// the client gets, and the signature covers, the plain body.
			delete(h, "Accept-Encoding")
		}
		if _, ok := h["Upgrade"]; ok && !g.upgradeAllowed(h["Upgrade"]) {
			// ReverseProxy re-added Connection and Upgrade for the
			// upgrade it saw; without them the request is a plain one,
			// and a 101 from the upstream is refused.
			delete(h, "Upgrade")
			delete(h, "Connection")
			delete(h, "Http2-Settings")
		}
		if c, ok := h["Cookie"]; ok && g.private != nil {
			if c, ok = dropCookies(c, g.private); ok {
				h["Cookie"] = c
			} else {
				delete(h, "Cookie")
			}
		}
		info := reqinfo.From(in.Context())
		// One backing array for the values set here: one allocation.
		vals := make([]string, 0, 8)
		set := func(k, v string) {
			vals = append(vals, v)
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
		if p := info.Principal; p != nil {
			set(HeaderOrg, p.OrgID)
			if p.AppID != "" {
				set(HeaderApp, p.AppID)
			}
			set(HeaderCredential, p.CredentialID)
			if len(p.Scopes) > 0 {
				set(HeaderScopes, strings.Join(p.Scopes, " "))
			}
		}
		set(HeaderRequestID, info.ID)
		setForwarded(set, in, trusted)
	}
}

// upgradeAllowed reports whether the Upgrade field values vs name exactly
// one protocol, and one of the gateway's upgrades.
func (g *Gateway) upgradeAllowed(vs []string) bool {
	if len(vs) != 1 {
		return false
	}
	v := strings.TrimSpace(vs[0])
	for _, u := range g.upgrades {
		if strings.EqualFold(v, u) {
			return true
		}
	}
	return false
}

// setForwarded sets X-Forwarded-For, -Host and -Proto on the outbound
// headers through set (ReverseProxy has removed the inbound ones). What a
// trusted proxy in front said is kept, and the chain extended; what anyone
// else wrote is replaced by what Tollgate saw.
func setForwarded(set func(k, v string), in *http.Request, trustedPeer bool) {
	peer := in.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	prior := in.Header.Values("X-Forwarded-For")
	if trustedPeer && len(prior) > 0 {
		set("X-Forwarded-For", strings.Join(prior, ", ")+", "+peer)
	} else {
		set("X-Forwarded-For", peer)
	}
	host := in.Host
	if v := in.Header.Get("X-Forwarded-Host"); trustedPeer && v != "" {
		host = v
	}
	set("X-Forwarded-Host", host)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if v := in.Header.Get("X-Forwarded-Proto"); trustedPeer && (v == "http" || v == "https") {
		proto = v
	}
	set("X-Forwarded-Proto", proto)
}

// errNotWebSocket refuses a 101 that is not the upstream's WebSocket
// handshake.
var errNotWebSocket = errors.New("gateway: the upstream switched protocols without the WebSocket handshake's Sec-WebSocket-Accept")

// websocketGUID is RFC 6455 section 1.3's.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// websocketAccept is the Sec-WebSocket-Accept that answers key (RFC 6455
// section 4.2.2).
func websocketAccept(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID)) //nolint:gosec // G401: RFC 6455 names SHA-1; no secret
	return base64.StdEncoding.EncodeToString(h[:])
}

// modifyResponse removes the upstream's X-Request-Id: the response already
// carries Tollgate's, which the upstream received, and ReverseProxy would
// add the upstream's copy beside it; and any Set-Cookie of a private
// cookie. A 101 to WebSocket must carry the Sec-WebSocket-Accept of the
// request's key (RFC 6455 section 4.1): a switch without it (an upstream
// that answers 101 to anything, or whose status a client controls) would
// leave the client a raw connection to the upstream, whose later requests
// Tollgate would neither route nor check. It is refused with 502.
func (g *Gateway) modifyResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols && strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		key := ""
		if res.Request != nil {
			key = res.Request.Header.Get("Sec-WebSocket-Key")
		}
		if key == "" || res.Header.Get("Sec-WebSocket-Accept") != websocketAccept(key) {
			return errNotWebSocket
		}
	}
	res.Header.Del(HeaderRequestID)
	if g.private != nil {
		dropSetCookies(res.Header, g.private)
	}
	return nil
}

// errShuttingDown answers a request whose upstream exchange a shutdown cut
// short. The request was charged when it was admitted, and is metered with
// this status.
var errShuttingDown = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable,
	"the gateway is shutting down: the upstream did not answer in time; the request may have reached it")

// proxyError answers a failed upstream exchange. A request whose context a
// shutdown ended (the server's base context cancelled with cause
// http.ErrServerClosed) gets 503 SERVICE_UNAVAILABLE; one whose client went
// away gets nothing, and is metered as 499.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		apierror.Write(w, r, err) // 413
	case httpx.BodyTimedOut(w):
		// The client's body came too slowly (the transport's error may be
		// the request's context, which net/http cancels on the read error).
		apierror.Write(w, r, apierror.New(http.StatusRequestTimeout, apierror.RequestTimeout,
			"request body not received in time").Wrap(err))
	case r.Context().Err() != nil && errors.Is(context.Cause(r.Context()), http.ErrServerClosed):
		// The server is shutting down and cut the exchange short
		// (server.shutdown_timeout); the client is still there.
		apierror.Write(w, r, errShuttingDown.Wrap(err))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody is listening for an answer.
		reqinfo.From(r.Context()).Err = err
		w.WriteHeader(StatusNoResponse)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		apierror.Write(w, r, apierror.New(http.StatusGatewayTimeout, apierror.GatewayTimeout, "upstream timed out").Wrap(err))
	default:
		apierror.Write(w, r, apierror.New(http.StatusBadGateway, apierror.BadGateway, "upstream unavailable").Wrap(err))
	}
}
