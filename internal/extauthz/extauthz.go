// Package extauthz exposes Tollgate's authorization decision to Envoy as an
// ext_authz v3 gRPC service (envoy.service.auth.v3.Authorization).
//
// The decision itself is made by Tollgate's HTTP forward-auth handler; this
// package only translates. For each CheckRequest it builds the request the
// forward-auth handler expects, runs the handler in memory and turns its
// answer into a CheckResponse:
//
//   - The request has the original method, request-target, Host and headers
//     (pseudo-headers such as :path are dropped; Content-Length and
//     Transfer-Encoding come from the body), the original body when Envoy sent
//     one (raw_body, else body; more than Options.MaxBody bytes is refused with
//     413 PAYLOAD_TOO_LARGE), and X-Forwarded-Method, X-Forwarded-Uri,
//     X-Forwarded-Host and X-Forwarded-Proto describing it. X-Forwarded-For is
//     the address of Envoy's downstream peer (attributes.source); an
//     x-forwarded-for header of the CheckRequest is ignored unless
//     Options.TrustForwardedFor, and then extended with that peer. The
//     request comes from 127.0.0.1, so Tollgate must count loopback among its
//     trusted proxies for the handler to believe X-Forwarded-For. Both header
//     encodings are accepted: the headers map and, with Envoy's
//     encode_raw_headers, header_map.
//   - A 200 allows the request: CheckResponse.status OK, and an ok_response
//     that sets every X-Tollgate-* and X-Request-Id header of the answer on
//     the upstream request (overwriting what the client sent), adds its
//     RateLimit* and X-RateLimit* headers to the response to the client, and
//     applies Tollgate's header policy (package headerpolicy) as removals
//     from the upstream request: the credentials meant for Tollgate
//     (X-API-KEY, the request signature headers, SIGN-IN-WITH-X, x402
//     payments, and Authorization when it carries a Bearer or SIWX
//     credential or is sent twice), method and path overrides, forwarding
//     headers spelled with "_" (or another byte but letters, digits and
//     "-") and, unless Options.TrustForwardedFor, every forwarding header
//     but X-Forwarded-For, -Proto and -Host, which Envoy sets itself
//     (X-Real-IP, Forwarded, X-Forwarded-Prefix…), and every identity
//     header the client sent
//     that the answer did not set, in any spelling, so that none can be
//     forged. The handler has refused already what it could not make safe
//     this way (a path Envoy would forward unnormalized, an identity
//     header spelled with "_").
//   - Any other status denies it: status UNAUTHENTICATED for 401,
//     RESOURCE_EXHAUSTED for 429, UNAVAILABLE for 5xx, PERMISSION_DENIED
//     otherwise, and a denied_response that Envoy sends to the client as is:
//     the HTTP status, the answer's headers (hop-by-hop ones and
//     Content-Length excepted) and its body, Tollgate's JSON error.
//   - A handler that panics is logged and answered with 500 INTERNAL_ERROR. A
//     CheckRequest without HTTP attributes, or whose downstream address is
//     not an IP address (and no trusted x-forwarded-for stands in for it), is
//     an InvalidArgument gRPC error, which Envoy treats as a failure of the
//     authorization service.
//
// # Envoy configuration
//
// Add the ext_authz filter before the router and point it at the Tollgate
// auth service over HTTP/2:
//
//	http_filters:
//	- name: envoy.filters.http.ext_authz
//	  typed_config:
//	    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
//	    transport_api_version: V3
//	    failure_mode_allow: false     # no Tollgate, no access
//	    status_on_error: {code: 503}  # instead of 403 when Tollgate is down
//	    grpc_service:
//	      envoy_grpc: {cluster_name: tollgate_auth}
//	      timeout: 2s
//	    with_request_body:            # signed requests cover the body
//	      max_request_bytes: 1048576  # at most Options.MaxBody
//	      allow_partial_message: true # larger unsigned uploads still pass
//	      pack_as_bytes: true         # the exact bytes, as raw_body
//	- name: envoy.filters.http.router
//	  typed_config:
//	    "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
//
//	clusters:
//	- name: tollgate_auth
//	  type: STRICT_DNS
//	  typed_extension_protocol_options:
//	    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
//	      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
//	      explicit_http_config: {http2_protocol_options: {}}
//	  load_assignment:
//	    cluster_name: tollgate_auth
//	    endpoints:
//	    - lb_endpoints:
//	      - endpoint:
//	          address:
//	            socket_address: {address: tollgate, port_value: 9191}
//
// With allow_partial_message false, Envoy itself refuses bodies over
// max_request_bytes with 413; with true, it sends their first
// max_request_bytes bytes, which is enough to decide every request but a
// signed one, whose signature then fails. Keep max_request_bytes at or below
// Options.MaxBody, and below the gRPC server's receive limit (4 MiB unless
// changed with grpc.MaxRecvMsgSize).
package extauthz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/headerpolicy"
)

// DefaultMaxBody is the default of Options.MaxBody: 1 MiB.
const DefaultMaxBody = 1 << 20

// RemoteAddr is the http.Request.RemoteAddr of every request given to the
// handler: the handler is to treat the caller as a trusted proxy.
const RemoteAddr = "127.0.0.1:0"

// maxResponseBody caps the body of the handler's answer kept for a denial;
// Tollgate's JSON errors are far smaller.
const maxResponseBody = 1 << 20

// Options configure a Server.
type Options struct {
	// MaxBody is the largest request body, in bytes, that the handler is
	// given; a larger one is refused with 413. Default (0 or less):
	// DefaultMaxBody.
	MaxBody int64
	// TrustForwardedFor keeps the x-forwarded-for header that Envoy
	// received and appends Envoy's downstream peer to it, and leaves the
	// request's other forwarding headers (X-Real-IP, Forwarded,
	// X-Forwarded-Prefix…) to the upstream. Set it only when every client
	// reaches Envoy through proxies that Tollgate trusts and that append
	// to X-Forwarded-For; otherwise clients could choose their own
	// address. Default: the header is replaced by the peer, and the others
	// but X-Forwarded-Proto and -Host (Envoy's) are removed upstream.
	TrustForwardedFor bool
	// Logger receives the panics of the handler. Default: discard.
	Logger *slog.Logger
}

// Server is an Envoy ext_authz v3 authorization service backed by an HTTP
// forward-auth handler. It is safe for concurrent use.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	h        http.Handler
	maxBody  int64
	trustXFF bool
	log      *slog.Logger
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// New returns a Server that asks h, Tollgate's forward-auth handler, for
// every decision.
func New(h http.Handler, o Options) *Server {
	s := &Server{h: h, maxBody: o.MaxBody, trustXFF: o.TrustForwardedFor, log: o.Logger}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Register registers s on g as the envoy.service.auth.v3.Authorization
// service.
func (s *Server) Register(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, s)
}

// Check implements authv3.AuthorizationServer: it runs the handler on the
// request described by req and converts its answer (see the package
// documentation).
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	hr := req.GetAttributes().GetRequest().GetHttp()
	if hr == nil {
		return nil, status.Error(codes.InvalidArgument, "no attributes.request.http in the CheckRequest")
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	in := requestHeaders(hr)
	xff, err := s.forwardedFor(req.GetAttributes().GetSource(), in)
	if err != nil {
		return nil, err
	}
	// The handler gets a copy: what it does to its request's headers must
	// not change which of them are removed.
	r, denial := s.buildRequest(ctx, hr, in.Clone(), xff)
	if denial != nil {
		rec := newRecorder()
		apierror.Write(rec, (&http.Request{}).WithContext(ctx), denial)
		return convert(rec, in, s.trustXFF), nil
	}
	return convert(s.serve(r), in, s.trustXFF), nil
}

// serve runs the handler on r, turning a panic into a 500.
func (s *Server) serve(r *http.Request) (rec *recorder) {
	rec = newRecorder()
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			s.log.WarnContext(r.Context(), "extauthz: handler aborted", "method", r.Method, "uri", r.RequestURI)
		} else {
			s.log.ErrorContext(r.Context(), "extauthz: handler panicked",
				"method", r.Method, "uri", r.RequestURI, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
		rec = newRecorder()
		apierror.Write(rec, r, apierror.New(http.StatusInternalServerError, apierror.Internal, "internal error"))
	}()
	s.h.ServeHTTP(rec, r)
	rec.finish()
	return rec
}

// requestHeaders returns the headers Envoy sent, canonicalized: from
// header_map when it has entries (encode_raw_headers), else from headers.
// Pseudo-headers and entries that are not valid HTTP headers are dropped.
func requestHeaders(hr *authv3.AttributeContext_HttpRequest) http.Header {
	h := make(http.Header)
	add := func(k, v string) {
		if strings.HasPrefix(k, ":") || !validName(k) || !validValue(v) {
			return
		}
		h.Add(k, v)
	}
	if hm := hr.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		for _, hv := range hm {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			add(hv.GetKey(), v)
		}
		return h
	}
	// A map has no order; sorting keeps the request the handler sees
	// reproducible.
	for _, k := range slices.Sorted(maps.Keys(hr.GetHeaders())) {
		add(k, hr.GetHeaders()[k])
	}
	return h
}

// forwardedFor returns the X-Forwarded-For value for the handler: Envoy's
// downstream peer, appended to the x-forwarded-for of the request when that
// is trusted.
func (s *Server) forwardedFor(src *authv3.AttributeContext_Peer, in http.Header) (string, error) {
	var prior string
	if s.trustXFF {
		prior = strings.Join(in.Values("X-Forwarded-For"), ", ")
	}
	peer, err := netip.ParseAddr(src.GetAddress().GetSocketAddress().GetAddress())
	switch {
	case err == nil && prior != "":
		return prior + ", " + peer.Unmap().WithZone("").String(), nil
	case err == nil:
		return peer.Unmap().WithZone("").String(), nil
	case prior != "":
		// A peer that is not an IP address (a Unix socket): the trusted
		// header alone says who the client is.
		return prior, nil
	default:
		return "", status.Error(codes.InvalidArgument, "attributes.source.address is not an IP address")
	}
}

// buildRequest makes the handler's request, or the refusal of a request that
// no HTTP server would accept.
func (s *Server) buildRequest(ctx context.Context, hr *authv3.AttributeContext_HttpRequest, h http.Header, xff string) (*http.Request, *apierror.Error) {
	method, target, host := hr.GetMethod(), hr.GetPath(), hr.GetHost()
	if !validName(method) {
		return nil, apierror.Invalid("method", "invalid request method")
	}
	if target == "" || !validValue(target) || strings.ContainsAny(target, " \t") {
		return nil, apierror.Invalid("path", "invalid request target")
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, apierror.Invalid("path", "invalid request target")
	}
	if !validValue(host) || strings.ContainsAny(host, " \t/\\?#@") {
		return nil, apierror.Invalid("host", "invalid host")
	}
	body := hr.GetRawBody()
	if len(body) == 0 && hr.GetBody() != "" {
		body = []byte(hr.GetBody())
	}
	if int64(len(body)) > s.maxBody {
		return nil, apierror.From(&http.MaxBytesError{Limit: s.maxBody})
	}
	proto := "http"
	if strings.EqualFold(hr.GetScheme(), "https") {
		proto = "https"
	}

	h.Del("Host")
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("X-Forwarded-Method", method)
	h.Set("X-Forwarded-Uri", target)
	h.Set("X-Forwarded-Host", host)
	h.Set("X-Forwarded-Proto", proto)
	h.Set("X-Forwarded-For", xff)

	r := (&http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RemoteAddr: RemoteAddr,
		RequestURI: target,
	}).WithContext(ctx)
	switch p := hr.GetProtocol(); p {
	case "HTTP/2", "HTTP/3":
		r.Proto, r.ProtoMajor, r.ProtoMinor = p, int(p[5]-'0'), 0
	case "HTTP/1.0":
		r.Proto, r.ProtoMinor = p, 0
	}
	if len(body) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return r, nil
}

// convert turns the handler's answer into a CheckResponse; in is the
// original request's headers, trustFwd Options.TrustForwardedFor.
func convert(rec *recorder, in http.Header, trustFwd bool) *authv3.CheckResponse {
	if rec.status == http.StatusOK {
		return allow(rec.header, in, trustFwd)
	}
	return deny(rec)
}

// envoyForwarding are the forwarding headers Envoy sets itself (with
// use_remote_address and, for X-Forwarded-Host, append_x_forwarded_host):
// its configuration decides what becomes of a client's.
var envoyForwarding = map[string]bool{"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true}

func allow(out, in http.Header, trustFwd bool) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	set := make(map[string]bool)
	for _, k := range sortedKeys(out) {
		lk := strings.ToLower(k)
		switch {
		case headerpolicy.Classify(k) == headerpolicy.ClassIdentity && headerpolicy.Canonical(k):
			ok.Headers = appendOptions(ok.Headers, lk, out[k])
			set[lk] = true
		case strings.HasPrefix(lk, "ratelimit") || strings.HasPrefix(lk, "x-ratelimit"):
			ok.ResponseHeadersToAdd = appendOptions(ok.ResponseHeadersToAdd, lk, out[k])
		}
	}
	// The header policy (package headerpolicy), as removals: Envoy
	// forwards the rest of the client's request as it is. The credentials
	// go whether or not they were sent: with allowed_headers, Envoy sends
	// only some of the request's headers.
	remove := headerpolicy.CredentialNames()
	for k := range in {
		lk := strings.ToLower(k)
		switch headerpolicy.Classify(k) {
		case headerpolicy.ClassCredential, headerpolicy.ClassOverride:
			remove = append(remove, lk)
		case headerpolicy.ClassIdentity:
			if !set[lk] {
				remove = append(remove, lk)
			}
		case headerpolicy.ClassForwarding:
			// A client's own (X-Real-IP, Forwarded, X-Forwarded-Prefix…)
			// would tell the upstream another address or base URL,
			// unless the clients come through trusted proxies.
			if !headerpolicy.Canonical(k) || (!trustFwd && !envoyForwarding[lk]) {
				remove = append(remove, lk)
			}
		}
	}
	for _, k := range []string{"x-tollgate-org", "x-tollgate-app", "x-tollgate-credential", "x-tollgate-scopes"} {
		if !set[k] {
			remove = append(remove, k)
		}
	}
	if len(in[headerpolicy.Authorization]) > 1 || headerpolicy.CarriesTollgateScheme(in) {
		remove = append(remove, "authorization")
	}
	slices.Sort(remove)
	ok.HeadersToRemove = slices.Compact(remove)
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// hopByHop are the response headers not passed on in a denial; Envoy sets
// Content-Length from the body.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

func deny(rec *recorder) *authv3.CheckResponse {
	c := code.Code_PERMISSION_DENIED
	switch {
	case rec.status == http.StatusUnauthorized:
		c = code.Code_UNAUTHENTICATED
	case rec.status == http.StatusTooManyRequests:
		c = code.Code_RESOURCE_EXHAUSTED
	case rec.status >= 500 && rec.status <= 599:
		c = code.Code_UNAVAILABLE
	}
	d := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(rec.status)}, //nolint:gosec // G115: 100..999, see recorder.WriteHeader
		Body:   strings.ToValidUTF8(rec.body.String(), "\uFFFD"),
	}
	for _, k := range sortedKeys(rec.header) {
		if hopByHop[http.CanonicalHeaderKey(k)] {
			continue
		}
		d.Headers = appendOptions(d.Headers, strings.ToLower(k), rec.header[k])
	}
	msg := fmt.Sprintf("denied: HTTP %d", rec.status)
	if t := http.StatusText(rec.status); t != "" {
		msg += " " + t
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(c), Message: msg},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

// appendOptions appends the values vs of header k to opts: the first
// replaces any header k, the others are added beside it. Names and values
// that are not valid in HTTP are dropped.
func appendOptions(opts []*corev3.HeaderValueOption, k string, vs []string) []*corev3.HeaderValueOption {
	if !validName(k) {
		return opts
	}
	action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	for _, v := range vs {
		if !validValue(v) {
			continue
		}
		opts = append(opts, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: strings.ToValidUTF8(v, "\uFFFD")},
			AppendAction: action,
		})
		action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
	}
	return opts
}

func sortedKeys(h http.Header) []string {
	ks := make([]string, 0, len(h))
	for k := range h {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// validName reports whether s is an HTTP token (RFC 9110 section 5.6.2),
// as header names and methods must be.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validValue reports whether s may be a header value: no control
// characters but horizontal tab.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// recorder is the in-memory http.ResponseWriter the handler answers into.
// Like net/http's, it sends the headers as they are at WriteHeader (or the
// first Write), ignores informational statuses and later WriteHeader calls,
// and panics on a status outside 100..999.
type recorder struct {
	h      http.Header // what the handler manipulates
	header http.Header // as sent
	status int         // 0 until sent
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{h: make(http.Header)} }

func (r *recorder) Header() http.Header { return r.h }

func (r *recorder) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if r.status != 0 || (code < 200 && code != http.StatusSwitchingProtocols) {
		return
	}
	r.status = code
	r.header = r.h.Clone()
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if room := maxResponseBody - r.body.Len(); room > 0 {
		r.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Flush implements http.Flusher; there is nothing to flush.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
}

// finish ends the answer of a handler that returned without writing: 200
// with the headers set.
func (r *recorder) finish() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
}
