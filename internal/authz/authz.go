// Package authz is the auth & billing service's decision API: the gateway's
// decision (authenticate, authorize, limit) offered to proxies that forward
// traffic themselves.
//
// One handler serves, on a listener of its own:
//
//   - /forward-auth for Traefik ForwardAuth, Caddy forward_auth and Envoy
//     ext_authz (package extauthz turns a CheckRequest into this call): 200
//     with the X-Tollgate-* context headers to copy upstream, or the refusal
//     (401, 402, 403, 404, 429, 503…) with its JSON error body and headers;
//   - /forward-auth/nginx for nginx auth_request, which only understands 2xx,
//     401 and 403: every refusal is a 401 carrying the real status in
//     X-Tollgate-Status and the JSON body in X-Tollgate-Error, for the
//     error_page location of the README's nginx configuration to answer;
//   - /v1/decide for gateway-role Tollgate nodes (Client), which meter the
//     request themselves once it is answered and so are not metered here;
//   - POST /v1/usage and POST /v1/charge, by which gateway-role nodes hand
//     in their usage events and after-the-fact charges.
//
// The original request is described by the caller in X-Forwarded-Method,
// X-Forwarded-Uri, X-Forwarded-Host, X-Forwarded-Proto and X-Forwarded-For
// (nginx's X-Original-Method and X-Original-URI are accepted too), with the
// original headers (the credentials) and, for a signed request, its body.
// The caller is a proxy by definition: the right-most X-Forwarded-For entry
// is the peer it saw, and entries left of it are believed only through
// server.trusted_proxies, as on the public listener. A request with a body
// whose body the caller does not pass on (nginx auth_request) cannot have
// its HMAC signature verified: it is refused with the signature's error.
//
// Callers present the shared secret in X-Tollgate-Service-Token; it is
// compared in constant time with the configured hash. Without one, the API
// trusts its network.
package authz

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/headerpolicy"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/reqtarget"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/usage"
)

// Headers of the decision API, besides the gateway's X-Tollgate-* context.
const (
	// HeaderServiceToken carries the shared secret of the decision API.
	HeaderServiceToken = "X-Tollgate-Service-Token" //nolint:gosec // G101: a header name
	// HeaderMethod is the authentication method of an admitted request.
	HeaderMethod = "X-Tollgate-Method"
	// HeaderPlan is the credential's own plan, when it has one.
	HeaderPlan = "X-Tollgate-Plan"
	// HeaderExpires is when the credential stops admitting requests, in
	// Unix seconds (rounded down), absent when never: a gateway node
	// closes the WebSocket sessions opened with it then.
	HeaderExpires = "X-Tollgate-Expires"
	// HeaderTokenID is the presented token's ID (an access token's jti),
	// by which a revocation closes its sessions.
	HeaderTokenID = "X-Tollgate-Token-Id"
	// HeaderRoute is the matched route's path prefix.
	HeaderRoute = "X-Tollgate-Route"
	// HeaderUnits is what the admitted request was charged.
	HeaderUnits = "X-Tollgate-Units"
	// HeaderCacheable marks a /v1/decide answer that no counter took part
	// in, which a gateway node may reuse for its decision cache's TTL.
	HeaderCacheable = "X-Tollgate-Cacheable"
	// HeaderStatus and HeaderError carry a refusal's status and JSON body
	// on /forward-auth/nginx.
	HeaderStatus = "X-Tollgate-Status"
	HeaderError  = "X-Tollgate-Error"
)

// Paths of the decision API.
const (
	PathForwardAuth = "/forward-auth"
	PathNginx       = "/forward-auth/nginx"
	PathDecide      = "/v1/decide"
	PathUsage       = "/v1/usage"
	PathCharge      = "/v1/charge"
)

// Charger adds units charged after the fact; *limits.Limiter is one.
type Charger interface {
	Charge(ctx context.Context, p *authn.Principal, units int64) error
}

// Options configure the decision API.
type Options struct {
	// Gateway decides.
	Gateway *gateway.Gateway
	// TokenSHA256 is the SHA-256 of the shared secret; TokenSet false
	// accepts every caller.
	TokenSHA256 [32]byte
	TokenSet    bool
	// ClientIP resolves the client's address from the caller's peer (the
	// right-most X-Forwarded-For entry) and the entries left of it.
	ClientIP func(peer string, xff []string) netip.Addr
	// Meter is told of each forward-auth decision (not of /v1/decide,
	// whose caller meters).
	Meter gateway.Meter
	// Usage stores the usage batches of gateway nodes; Charger takes their
	// charges. Nil refuses those calls.
	Usage   usage.Sink
	Charger Charger
	// MaxBody bounds the bodies of /v1/usage and /v1/charge.
	MaxBody int64
	Clock   clock.Clock // default clock.System{}
}

// Handler is the decision API.
type Handler struct {
	o   Options
	mux *http.ServeMux
}

// New returns the decision API's handler.
func New(o Options) *Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = 8 << 20
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.mux.Handle(PathForwardAuth, h.decider(modeForward))
	h.mux.Handle(PathNginx, h.decider(modeNginx))
	h.mux.Handle(PathDecide, h.decider(modeDecide))
	h.mux.Handle("POST "+PathUsage, apierror.HandlerFunc(h.serveUsage))
	h.mux.Handle("POST "+PathCharge, apierror.HandlerFunc(h.serveCharge))
	return h
}

var errToken = apierror.New(http.StatusUnauthorized, apierror.Unauthorized, "missing or wrong X-Tollgate-Service-Token")

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.TokenSet {
		sum := sha256.Sum256([]byte(r.Header.Get(HeaderServiceToken)))
		if subtle.ConstantTimeCompare(sum[:], h.o.TokenSHA256[:]) != 1 {
			apierror.Write(w, r, errToken)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// Forward returns the forward-auth decision without the service-token check
// and whatever the request's path, for callers authenticated otherwise that
// describe the original request in the X-Forwarded-* headers: the ext_authz
// gRPC service, which checks its metadata.
func (h *Handler) Forward() http.Handler { return h.decider(modeForward) }

type mode int

const (
	modeForward mode = iota
	modeNginx
	modeDecide
)

func (h *Handler) decider(m mode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.decide(w, r, m)
	})
}

var (
	errBadForward = apierror.New(http.StatusBadRequest, apierror.BadRequest,
		"X-Forwarded-Uri (or X-Original-URI) must be the original request-target, starting with /")
	errNonCanonical = apierror.New(http.StatusBadRequest, apierror.BadRequest,
		"the request target has dot segments or repeated slashes, which the proxy would forward unchanged").
		WithReason(apierror.ReasonNonCanonicalPath)
)

// errForged refuses a request carrying a header no client may send (see
// headerpolicy.Forged): the proxy would pass it on to the upstream.
func errForged(name string) *apierror.Error {
	return apierror.New(http.StatusBadRequest, apierror.BadRequest,
		"the request carries "+name+", a header only Tollgate sets").WithReason(apierror.ReasonForgedHeader)
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request, m mode) {
	orig, err := h.rebuild(r, m)
	if err != nil {
		if m == modeNginx {
			h.writeNginx(w, r, apierror.From(err))
		} else {
			apierror.Write(w, r, err)
		}
		return
	}
	info := reqinfo.From(r.Context())
	start := h.o.Clock.Now()
	rec := httpx.NewRecorder(w)
	d, err := h.o.Gateway.Authorize(rec, orig)
	hd := w.Header()
	// Rebuilt requests are never answered from a cache between Tollgate and
	// its caller.
	hd.Set("Cache-Control", "no-store")
	if err != nil {
		e := apierror.From(err)
		if m == modeDecide {
			if cacheableRefusal(e) && !signed(orig.Header) {
				hd.Set(HeaderCacheable, "1")
			}
			// A gateway node meters the refusal under the caller, when
			// known (a scope or limit refusal).
			if p := info.Principal; p != nil {
				setPrincipal(hd, p)
			}
		}
		if m == modeNginx {
			h.writeNginx(rec, r, e)
		} else {
			apierror.Write(rec, r, e)
		}
	} else {
		if p := d.Principal; p != nil {
			setPrincipal(hd, p)
		}
		hd.Set(HeaderRoute, d.Route)
		if d.Units != 0 {
			hd.Set(HeaderUnits, strconv.FormatInt(d.Units, 10))
		}
		hd.Set(gateway.HeaderRequestID, info.ID)
		if m == modeDecide && hd.Get("RateLimit-Policy") == "" && !signed(orig.Header) {
			hd.Set(HeaderCacheable, "1")
		}
		rec.WriteHeader(http.StatusOK)
	}
	if m != modeDecide && h.o.Meter != nil {
		e := store.UsageEvent{
			ID: info.ID, Time: start, Method: orig.Method, Route: info.Route, Path: orig.URL.Path,
			Status: rec.Status(), ErrorCode: info.ErrorCode, ClientIP: info.ClientIP.String(), UserAgent: orig.UserAgent(),
		}
		if p := info.Principal; p != nil {
			e.OrgID, e.AppID, e.CredentialID, e.AuthMethod = p.OrgID, p.AppID, p.CredentialID, string(p.Method)
		}
		if err == nil {
			e.Units = d.Units
		}
		h.o.Meter(&e, info.Reason)
	}
}

// cacheableRefusal reports whether a refusal depends on nothing but the
// credential and the route: no counter, no store outage, no clock.
func cacheableRefusal(e *apierror.Error) bool {
	switch {
	case e.Status == http.StatusNotFound, e.Status == http.StatusMethodNotAllowed:
		return true
	case e.Code == apierror.InsufficientScope, e.Reason == apierror.ReasonIPNotAllowed:
		return true
	}
	return false
}

// writeNginx answers a refusal for nginx auth_request: 401, with the real
// status and body in headers, and the body as it is.
func (h *Handler) writeNginx(w http.ResponseWriter, r *http.Request, e *apierror.Error) {
	hd := w.Header()
	hd.Set(HeaderStatus, strconv.Itoa(e.Status))
	hd.Set(HeaderError, string(apierror.Encode(r, e)))
	as401 := *e
	as401.Status = http.StatusUnauthorized
	apierror.Write(w, r, &as401)
}

// setPrincipal sets the context headers of an admitted request.
func setPrincipal(h http.Header, p *authn.Principal) {
	h.Set(gateway.HeaderOrg, p.OrgID)
	if p.AppID != "" {
		h.Set(gateway.HeaderApp, p.AppID)
	}
	h.Set(gateway.HeaderCredential, p.CredentialID)
	if len(p.Scopes) > 0 {
		h.Set(gateway.HeaderScopes, strings.Join(p.Scopes, " "))
	}
	h.Set(HeaderMethod, string(p.Method))
	if p.Plan != "" {
		h.Set(HeaderPlan, p.Plan)
	}
	if !p.ExpiresAt.IsZero() {
		h.Set(HeaderExpires, strconv.FormatInt(p.ExpiresAt.Unix(), 10))
	}
	if p.TokenID != "" {
		h.Set(HeaderTokenID, p.TokenID)
	}
}

// signed reports whether h carries a credential of single use, never
// cached: a request signature or a SIGN-IN-WITH-X proof.
func signed(h http.Header) bool {
	return h.Get("Signature") != "" || h.Get("Signature-Input") != "" || h.Get("X-Signature") != "" ||
		h.Get("Sign-In-With-X") != ""
}

// hopHeaders are not part of the original request's end-to-end headers.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Content-Length",
}

// rebuild returns the original request as the caller describes it, with its
// canonical path (package reqtarget), or the refusal of a request that
// cannot be decided on unambiguously. A proxy (modes forward and nginx)
// passes the client's request on as it is, so that a header Tollgate owns
// (headerpolicy.Forged) and a path the canonical form would rewrite are
// refused rather than decided on; a gateway-role node (modeDecide) forwards
// the canonical path itself and strips the headers, as this node does.
func (h *Handler) rebuild(r *http.Request, m mode) (*http.Request, error) {
	in := r.Header
	if name, forged := headerpolicy.Forged(in); forged {
		return nil, errForged(name)
	}
	fwdMethod, origMethod := in.Values("X-Forwarded-Method"), in.Values("X-Original-Method")
	if len(fwdMethod) > 1 || len(origMethod) > 1 || (len(fwdMethod) == 1 && len(origMethod) == 1 && fwdMethod[0] != origMethod[0]) {
		// A proxy that describes the request with X-Original-URI and
		// X-Original-Method (nginx's own example) passes the client's
		// headers on: an X-Forwarded-Method beside its own, or a
		// second one, is the client's word for another method.
		return nil, errForged("X-Forwarded-Method")
	}
	method := firstOf(in.Get("X-Forwarded-Method"), in.Get("X-Original-Method"), r.Method)
	uri := firstOf(in.Get("X-Forwarded-Uri"), in.Get("X-Original-Uri"))
	if uri == "" || uri[0] != '/' {
		return nil, errBadForward
	}
	t, err := reqtarget.Parse(uri)
	if err != nil {
		return nil, httpx.AmbiguousTarget(err)
	}
	if t.Normalized && m != modeDecide {
		return nil, errNonCanonical
	}
	u := &url.URL{Path: t.Path, RawQuery: t.RawQuery}
	if t.RawPath != t.Path {
		u.RawPath = t.RawPath
	}
	host := firstOf(in.Get("X-Forwarded-Host"), r.Host)
	if !validMethod(method) {
		return nil, apierror.Invalid("X-Forwarded-Method", "not an HTTP method")
	}

	var xff []string
	for _, v := range in.Values("X-Forwarded-For") {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				xff = append(xff, part)
			}
		}
	}
	info := reqinfo.From(r.Context())
	if n := len(xff); n > 0 && h.o.ClientIP != nil {
		peer := xff[n-1]
		if a, err := netip.ParseAddr(peer); err == nil {
			peer = netip.AddrPortFrom(a, 0).String()
		}
		if ip := h.o.ClientIP(peer, xff[:n-1]); ip.IsValid() {
			info.ClientIP = ip
		}
	}

	hd := in.Clone()
	for k := range hd {
		// What the proxy said about the request, and the service token:
		// not the client's.
		switch headerpolicy.Classify(k) {
		case headerpolicy.ClassIdentity, headerpolicy.ClassForwarding, headerpolicy.ClassOverride:
			delete(hd, k)
		}
	}
	for _, k := range hopHeaders {
		delete(hd, k)
	}
	orig := &http.Request{
		Method:     method,
		URL:        u,
		RequestURI: uri,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        hd,
		Host:          host,
		Body:          r.Body,
		ContentLength: r.ContentLength,
		GetBody:       r.GetBody,
		RemoteAddr:    netip.AddrPortFrom(info.ClientIP, 0).String(),
	}
	if orig.Body == nil {
		orig.Body = http.NoBody
	}
	if strings.EqualFold(in.Get("X-Forwarded-Proto"), "https") {
		// The original request came over TLS; what RFC 9421's @scheme
		// covers.
		orig.TLS = &tls.ConnectionState{}
	}
	return orig.WithContext(r.Context()), nil
}

func validMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// usageBatch is the body of POST /v1/usage: a batch of events, or of the
// totals of events left out of the request log (see package usage), never
// both.
type usageBatch struct {
	BatchID string             `json:"batch_id"`
	Events  []store.UsageEvent `json:"events,omitempty"`
	Totals  []store.UsageTotal `json:"totals,omitempty"`
}

var errNoSink = apierror.New(http.StatusNotFound, apierror.NotFound, "this service takes no usage")

func (h *Handler) serveUsage(w http.ResponseWriter, r *http.Request) error {
	if h.o.Usage == nil {
		return errNoSink
	}
	var b usageBatch
	if err := httpx.DecodeJSON(r, h.o.MaxBody, &b); err != nil {
		return err
	}
	if b.BatchID == "" || len(b.BatchID) > 64 {
		return apierror.Invalid("batch_id", "required, at most 64 characters")
	}
	var err error
	switch {
	case len(b.Events) > 0 && len(b.Totals) > 0:
		return apierror.Invalid("totals", "a batch holds events or totals, not both")
	case len(b.Events) > 0:
		err = h.o.Usage.RecordUsage(r.Context(), b.BatchID, b.Events)
	case len(b.Totals) > 0:
		err = h.o.Usage.RecordUsageTotals(r.Context(), b.BatchID, b.Totals)
	}
	if err != nil {
		return apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "usage not stored").Wrap(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// charge is the body of POST /v1/charge.
type charge struct {
	OrgID        string `json:"org_id"`
	AppID        string `json:"app_id,omitempty"`
	CredentialID string `json:"credential_id"`
	Method       string `json:"method"`
	Plan         string `json:"plan,omitempty"`
	Units        int64  `json:"units"`
}

func (h *Handler) serveCharge(w http.ResponseWriter, r *http.Request) error {
	if h.o.Charger == nil {
		return errNoSink
	}
	var c charge
	if err := httpx.DecodeJSON(r, h.o.MaxBody, &c); err != nil {
		return err
	}
	if c.OrgID == "" || c.Units <= 0 {
		return apierror.Invalid("units", "org_id and positive units are required")
	}
	p := &authn.Principal{OrgID: c.OrgID, AppID: c.AppID, CredentialID: c.CredentialID, Method: authn.Method(c.Method), Plan: c.Plan}
	if err := h.o.Charger.Charge(r.Context(), p, c.Units); err != nil {
		var ae *apierror.Error
		if errors.As(err, &ae) {
			return ae
		}
		return apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "charge not recorded").Wrap(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
