package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate/tollgate/internal/apierror"
)

// seen is what the fake handler received.
type seen struct {
	Method, RequestURI, Path, RawQuery, Host, RemoteAddr, Proto string
	ContentLength                                               int64
	Header                                                      http.Header
	Body                                                        string
}

// fake is a forward-auth handler that records its request and answers with
// answer.
type fake struct {
	mu     sync.Mutex
	calls  []seen
	answer http.HandlerFunc
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	f.calls = append(f.calls, seen{
		Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto, ContentLength: r.ContentLength,
		Header: r.Header.Clone(), Body: string(b),
	})
	f.mu.Unlock()
	f.answer(w, r)
}

func (f *fake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// last returns the only request the handler received.
func (f *fake) last(t *testing.T) seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 1 {
		t.Fatalf("handler called %d times, want 1", len(f.calls))
	}
	return f.calls[0]
}

// start serves New(h, o) on a loopback port and returns a client of it.
func start(t *testing.T, h http.Handler, o Options) authv3.AuthorizationClient {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	New(h, o).Register(g)
	done := make(chan error, 1)
	go func() { done <- g.Serve(l) }()
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		g.Stop()
		if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return authv3.NewAuthorizationClient(cc)
}

func check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

// checkRequest is a CheckRequest as Envoy sends it, from 203.0.113.7:41234.
func checkRequest(method, path string, headers map[string]string, body []byte) *authv3.CheckRequest {
	h := map[string]string{":authority": "api.example.com", ":method": method, ":path": path, ":scheme": "https"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: peer("203.0.113.7"),
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "envoy-id", Method: method, Path: path, Host: "api.example.com", Scheme: "https",
			Protocol: "HTTP/1.1", Headers: h, RawBody: body, Size: int64(len(body)),
		}},
	}}
}

func peer(ip string) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41234}},
	}}}
}

// headerSet renders header options as "key: value [action]" lines, in order.
func headerSet(opts []*corev3.HeaderValueOption) []string {
	var s []string
	for _, o := range opts {
		a := "overwrite"
		if o.GetAppendAction() == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			a = "append"
		} else if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			a = o.GetAppendAction().String()
		}
		s = append(s, o.GetHeader().GetKey()+": "+o.GetHeader().GetValue()+" ["+a+"]")
	}
	return s
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// (a) A 200 allows the request; the handler saw the original request.
func TestAllow(t *testing.T) {
	f := &fake{answer: func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("X-Tollgate-Org", "org_1")
		h.Set("X-Tollgate-App", "app_1")
		h.Set("X-Tollgate-Credential", "key_1")
		h.Set("X-Tollgate-Scopes", "read write")
		h.Set("X-Request-Id", "req_1")
		h.Set("RateLimit-Policy", `"burst";q=10;w=2`)
		h.Set("RateLimit", `"burst";r=9;t=2`)
		h.Add("X-RateLimit-Remaining", "9")
		h.Add("X-RateLimit-Remaining", "99")
		h.Set("Cache-Control", "no-store") // for neither
		w.WriteHeader(http.StatusOK)
	}}
	c := start(t, f, Options{})
	body := []byte(`{"amount":1}`)
	res := check(t, c, checkRequest("POST", "/v1/things?q=a%20b&x=1", map[string]string{
		"x-api-key":                      "tg_live_secret",
		"authorization":                  "Bearer eyJ.x.y",
		"content-digest":                 "sha-256=:abc=:",
		"signature":                      "sig1=:xyz=:",
		"signature-input":                `sig1=("@method");created=1`,
		"user-agent":                     "curl/8",
		"content-length":                 "12",
		"x-tollgate-org":                 "org_forged",
		"x-tollgate-scopes":              "admin",
		"x-tollgate-other":               "forged too",
		"x-forwarded-host":               "evil.example",
		"x-forwarded-uri":                "/admin",
		"x-forwarded-proto":              "http",
		"x-forwarded-method":             "GET",
		"x-forwarded-for":                "198.51.100.9",
		"x-request-id":                   "envoy-id",
		"x-envoy-expected-rq-timeout-ms": "15000",
	}, body))

	got := f.last(t)
	if got.Method != "POST" || got.RequestURI != "/v1/things?q=a%20b&x=1" || got.Path != "/v1/things" ||
		got.RawQuery != "q=a%20b&x=1" || got.Host != "api.example.com" || got.RemoteAddr != "127.0.0.1:0" ||
		got.Proto != "HTTP/1.1" || got.Body != string(body) || got.ContentLength != int64(len(body)) {
		t.Errorf("handler saw %+v", got)
	}
	for k, want := range map[string]string{
		"X-Forwarded-Method": "POST",
		"X-Forwarded-Uri":    "/v1/things?q=a%20b&x=1",
		"X-Forwarded-Host":   "api.example.com",
		"X-Forwarded-Proto":  "https",
		"X-Forwarded-For":    "203.0.113.7",
		"X-Api-Key":          "tg_live_secret",
		"Authorization":      "Bearer eyJ.x.y",
		"Content-Digest":     "sha-256=:abc=:",
		"Signature":          "sig1=:xyz=:",
		"Signature-Input":    `sig1=("@method");created=1`,
		"User-Agent":         "curl/8",
		"X-Request-Id":       "envoy-id",
	} {
		if v := got.Header.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("handler saw %s: %q, want %q", k, v, want)
		}
	}
	for k := range got.Header {
		if strings.HasPrefix(k, ":") || k == "Host" || k == "Content-Length" {
			t.Errorf("handler saw header %q", k)
		}
	}

	if res.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("status %v", res.GetStatus())
	}
	ok := res.GetOkResponse()
	if ok == nil {
		t.Fatalf("no ok_response: %v", res)
	}
	equal(t, "upstream headers", headerSet(ok.GetHeaders()), []string{
		"x-request-id: req_1 [overwrite]",
		"x-tollgate-app: app_1 [overwrite]",
		"x-tollgate-credential: key_1 [overwrite]",
		"x-tollgate-org: org_1 [overwrite]",
		"x-tollgate-scopes: read write [overwrite]",
	})
	equal(t, "client headers", headerSet(ok.GetResponseHeadersToAdd()), []string{
		`ratelimit: "burst";r=9;t=2 [overwrite]`,
		`ratelimit-policy: "burst";q=10;w=2 [overwrite]`,
		"x-ratelimit-remaining: 9 [overwrite]",
		"x-ratelimit-remaining: 99 [append]",
	})
	equal(t, "headers to remove", ok.GetHeadersToRemove(), []string{
		"authorization", "payment-signature", "sign-in-with-x", "signature", "signature-input",
		"x-api-key", "x-forwarded-method", "x-forwarded-uri", "x-nonce", "x-payment", "x-signature", "x-timestamp",
		"x-tollgate-other",
	})
	if res.GetDeniedResponse() != nil {
		t.Errorf("denied_response in an OK: %v", res.GetDeniedResponse())
	}
}

// Authorization is removed only when it carries a credential for Tollgate;
// X-Tollgate-* headers the handler did not set are removed.
func TestAllowRemovals(t *testing.T) {
	f := &fake{answer: func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Authorization")             // changes nothing outside the handler
		w.Header().Set("X-Tollgate-Org", "org_1") // App, Credential, Scopes left unset
	}}
	c := start(t, f, Options{})
	for _, tc := range []struct {
		auth   string
		remove bool
	}{
		{"Bearer x", true}, {"bearer x", true}, {"SIWX eyJ", true}, {"siwx eyJ", true},
		{"Basic dXNlcjpwdw==", false}, {"Digest x", false}, {"", false},
		{"Bearer\tx", true}, {"Basic x, Bearer y", true},
	} {
		h := map[string]string{}
		if tc.auth != "" {
			h["authorization"] = tc.auth
		}
		ok := check(t, c, checkRequest("GET", "/", h, nil)).GetOkResponse()
		want := []string{"payment-signature", "sign-in-with-x", "signature", "signature-input", "x-api-key", "x-nonce",
			"x-payment", "x-signature", "x-timestamp", "x-tollgate-app", "x-tollgate-credential", "x-tollgate-scopes"}
		if tc.remove {
			want = append([]string{"authorization"}, want...)
		}
		equal(t, "headers to remove, Authorization: "+tc.auth, ok.GetHeadersToRemove(), want)
	}
}

// A client's forwarding headers other than those Envoy sets itself would
// tell the upstream another client address or base URL: they are removed,
// unless the clients come through trusted proxies (TrustForwardedFor).
func TestAllowRemovesClientForwarding(t *testing.T) {
	for _, trust := range []bool{false, true} {
		f := &fake{answer: func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Tollgate-Org", "org_1") }}
		c := start(t, f, Options{TrustForwardedFor: trust})
		ok := check(t, c, checkRequest("GET", "/", map[string]string{
			"x-real-ip": "6.6.6.6", "forwarded": "for=6.6.6.6", "x-forwarded-prefix": "/admin", "x-forwarded-port": "8443",
			"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https", "x-forwarded-host": "api.example.com",
		}, nil)).GetOkResponse()
		removed := map[string]bool{}
		for _, k := range ok.GetHeadersToRemove() {
			removed[k] = true
		}
		for _, k := range []string{"x-real-ip", "forwarded", "x-forwarded-prefix", "x-forwarded-port"} {
			if removed[k] == trust {
				t.Errorf("TrustForwardedFor %v: %s removed: %v", trust, k, removed[k])
			}
		}
		for _, k := range []string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"} {
			if removed[k] {
				t.Errorf("TrustForwardedFor %v: %s, which Envoy sets, removed", trust, k)
			}
		}
	}
}

// (b), (c), (d): refusals become denials carrying the status, headers and
// body; the gRPC status says what kind.
func TestDeny(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     *apierror.Error
		grpc    code.Code
		headers []string // besides the ones apierror.Write sets
	}{
		{
			"401", apierror.New(http.StatusUnauthorized, apierror.Unauthorized, "authentication required").
				AddHeader("WWW-Authenticate", `Bearer realm="tollgate"`).AddHeader("WWW-Authenticate", `ApiKey realm="tollgate"`),
			code.Code_UNAUTHENTICATED,
			[]string{`www-authenticate: Bearer realm="tollgate" [overwrite]`, `www-authenticate: ApiKey realm="tollgate" [append]`},
		},
		{
			"429", apierror.New(http.StatusTooManyRequests, apierror.RateLimited, "slow down").WithRetryAfter(1500*time.Millisecond).
				WithHeader("RateLimit", `"burst";r=0;t=2`),
			code.Code_RESOURCE_EXHAUSTED,
			[]string{`ratelimit: "burst";r=0;t=2 [overwrite]`, "retry-after: 2 [overwrite]"},
		},
		{
			"402", apierror.New(http.StatusPaymentRequired, apierror.PaymentRequired, "payment required").
				WithHeader("Payment-Required", "e30=").WithExtra("x402Version", 2),
			code.Code_PERMISSION_DENIED,
			[]string{"payment-required: e30= [overwrite]"},
		},
		{
			"403", apierror.ErrForbidden.WithReason(apierror.ReasonIPNotAllowed),
			code.Code_PERMISSION_DENIED, nil,
		},
		{
			"503", apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "try later").WithHeader("Retry-After", "5"),
			code.Code_UNAVAILABLE,
			[]string{"retry-after: 5 [overwrite]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			f := &fake{answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "close") // hop-by-hop: not passed on
				w.Header().Set("Transfer-Encoding", "chunked")
				apierror.Write(w, r, tc.err)
			}}
			c := start(t, f, Options{})
			res := check(t, c, checkRequest("GET", "/v1/x", map[string]string{"x-api-key": "k"}, nil))
			f.last(t)
			if got := code.Code(res.GetStatus().GetCode()); got != tc.grpc {
				t.Errorf("gRPC status %v, want %v", got, tc.grpc)
			}
			d := res.GetDeniedResponse()
			if d == nil || res.GetOkResponse() != nil {
				t.Fatalf("response %v", res)
			}
			if int(d.GetStatus().GetCode()) != tc.err.Status {
				t.Errorf("HTTP status %d, want %d", d.GetStatus().GetCode(), tc.err.Status)
			}
			wantHeaders := append([]string{
				"cache-control: no-store [overwrite]",
				"content-type: application/json [overwrite]",
				"x-content-type-options: nosniff [overwrite]",
			}, tc.headers...)
			slices.Sort(wantHeaders)
			gotHeaders := headerSet(d.GetHeaders())
			if !slices.IsSortedFunc(gotHeaders, func(a, b string) int { return strings.Compare(strings.Split(a, ":")[0], strings.Split(b, ":")[0]) }) {
				t.Errorf("headers out of order: %q", gotHeaders)
			}
			slices.Sort(gotHeaders)
			equal(t, "denied headers", gotHeaders, wantHeaders)

			rec := newRecorder()
			apierror.Write(rec, &http.Request{}, tc.err)
			want.Write(rec.body.Bytes())
			if d.GetBody() != want.String() {
				t.Errorf("body %q, want %q", d.GetBody(), want.String())
			}
			var b struct{ Error struct{ Code string } }
			if err := json.Unmarshal([]byte(d.GetBody()), &b); err != nil || b.Error.Code != string(tc.err.Code) {
				t.Errorf("body %q: code %q (%v)", d.GetBody(), b.Error.Code, err)
			}
		})
	}
}

// (e) A body over MaxBody is refused with 413 without asking the handler; one
// at the limit is passed on, from raw_body or body.
func TestBodyLimit(t *testing.T) {
	f := &fake{answer: func(http.ResponseWriter, *http.Request) {}}
	c := start(t, f, Options{MaxBody: 16})

	res := check(t, c, checkRequest("POST", "/v1/upload", nil, bytes.Repeat([]byte("x"), 17)))
	d := res.GetDeniedResponse()
	if res.GetStatus().GetCode() != int32(code.Code_PERMISSION_DENIED) || d.GetStatus().GetCode() != http.StatusRequestEntityTooLarge {
		t.Fatalf("response %v", res)
	}
	var b struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &b); err != nil || b.Error.Code != "PAYLOAD_TOO_LARGE" || b.Error.Message != "request body exceeds 16 bytes" {
		t.Errorf("body %q (%v)", d.GetBody(), err)
	}
	if !slices.Contains(headerSet(d.GetHeaders()), "content-type: application/json [overwrite]") {
		t.Errorf("headers %q", headerSet(d.GetHeaders()))
	}
	if n := f.count(); n != 0 {
		t.Errorf("handler called %d times for an oversize body", n)
	}

	req := checkRequest("POST", "/v1/upload", nil, nil)
	req.Attributes.Request.Http.Body = strings.Repeat("é", 8) // 16 bytes, as a string
	if res := check(t, c, req); res.GetOkResponse() == nil {
		t.Fatalf("response %v", res)
	}
	if got := f.last(t); got.Body != strings.Repeat("é", 8) || got.ContentLength != 16 {
		t.Errorf("handler saw body %q, length %d", got.Body, got.ContentLength)
	}

	req.Attributes.Request.Http.Body = strings.Repeat("é", 9)
	if res := check(t, c, req); res.GetDeniedResponse().GetStatus().GetCode() != http.StatusRequestEntityTooLarge {
		t.Errorf("body as a string over the limit: %v", res)
	}
}

// (f) With encode_raw_headers, Envoy sends header_map: repeated keys stay
// separate and raw_value wins over value.
func TestHeaderMap(t *testing.T) {
	f := &fake{answer: func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Tollgate-Org", "org_1") }}
	c := start(t, f, Options{})
	req := checkRequest("GET", "/v1/x", nil, nil)
	hr := req.Attributes.Request.Http
	hr.Headers = nil
	hr.Protocol = "HTTP/2"
	hv := func(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }
	hr.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		hv(":authority", "api.example.com"), hv(":path", "/v1/x"),
		hv("x-api-key", "tg_key"),
		hv("accept", "text/plain"), hv("accept", "application/json"),
		{Key: "x-plain", Value: "from value"},
		hv("bad header", "dropped"), hv("x-bad-value", "a\r\nInjected: 1"),
	}}
	res := check(t, c, req)
	if res.GetOkResponse() == nil {
		t.Fatalf("response %v", res)
	}
	got := f.last(t)
	equal(t, "Accept", got.Header.Values("Accept"), []string{"text/plain", "application/json"})
	equal(t, "X-Api-Key", got.Header.Values("X-Api-Key"), []string{"tg_key"})
	equal(t, "X-Plain", got.Header.Values("X-Plain"), []string{"from value"})
	if got.Proto != "HTTP/2" {
		t.Errorf("proto %q", got.Proto)
	}
	for k := range got.Header {
		if strings.HasPrefix(k, ":") || strings.Contains(k, " ") || k == "X-Bad-Value" || k == "Injected" {
			t.Errorf("handler saw header %q: %q", k, got.Header[k])
		}
	}
	if got.Header.Get("X-Forwarded-Host") != "api.example.com" || got.Header.Get("X-Forwarded-Uri") != "/v1/x" {
		t.Errorf("forwarded headers %v", got.Header)
	}
}

// (g) An x-forwarded-for of the CheckRequest is ignored unless
// TrustForwardedFor, and then extended with the downstream peer.
func TestForwardedFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trust bool
		xff   string
		peer  string
		want  string
	}{
		{"untrusted", false, "198.51.100.1, 10.0.0.1", "203.0.113.7", "203.0.113.7"},
		{"untrusted, none", false, "", "203.0.113.7", "203.0.113.7"},
		{"trusted", true, "198.51.100.1, 10.0.0.1", "203.0.113.7", "198.51.100.1, 10.0.0.1, 203.0.113.7"},
		{"trusted, none", true, "", "203.0.113.7", "203.0.113.7"},
		{"IPv6", false, "198.51.100.1", "2001:db8::7", "2001:db8::7"},
		{"IPv4-mapped", false, "", "::ffff:203.0.113.7", "203.0.113.7"},
		{"trusted, Unix socket", true, "198.51.100.1", "/run/envoy.sock", "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{answer: func(http.ResponseWriter, *http.Request) {}}
			c := start(t, f, Options{TrustForwardedFor: tc.trust})
			h := map[string]string{}
			if tc.xff != "" {
				h["x-forwarded-for"] = tc.xff
			}
			req := checkRequest("GET", "/", h, nil)
			req.Attributes.Source = peer(tc.peer)
			if res := check(t, c, req); res.GetOkResponse() == nil {
				t.Fatalf("response %v", res)
			}
			got := f.last(t)
			equal(t, "X-Forwarded-For", got.Header.Values("X-Forwarded-For"), []string{tc.want})
			if got.RemoteAddr != RemoteAddr {
				t.Errorf("RemoteAddr %q", got.RemoteAddr)
			}
		})
	}
}

// (h) A panic in the handler is logged and becomes a 500 denial.
func TestPanic(t *testing.T) {
	var logs syncBuffer
	f := &fake{answer: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Tollgate-Org", "org_1") // discarded with the answer
		panic("boom")
	}}
	c := start(t, f, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	res := check(t, c, checkRequest("GET", "/v1/x", nil, nil))
	d := res.GetDeniedResponse()
	if res.GetStatus().GetCode() != int32(code.Code_UNAVAILABLE) || d.GetStatus().GetCode() != http.StatusInternalServerError {
		t.Fatalf("response %v", res)
	}
	var b struct{ Error struct{ Code string } }
	if err := json.Unmarshal([]byte(d.GetBody()), &b); err != nil || b.Error.Code != "INTERNAL_ERROR" {
		t.Errorf("body %q (%v)", d.GetBody(), err)
	}
	for _, h := range d.GetHeaders() {
		if strings.HasPrefix(h.GetHeader().GetKey(), "x-tollgate-") {
			t.Errorf("header of the abandoned answer: %v", h)
		}
	}
	if s := logs.String(); !strings.Contains(s, "handler panicked") || !strings.Contains(s, "boom") || !strings.Contains(s, "level=ERROR") {
		t.Errorf("log: %s", s)
	}
}

// A CheckRequest without HTTP attributes or a downstream address is an
// InvalidArgument; a request no HTTP server would accept is a 400 denial.
func TestInvalid(t *testing.T) {
	f := &fake{answer: func(http.ResponseWriter, *http.Request) {}}
	c := start(t, f, Options{})
	noSource := checkRequest("GET", "/", nil, nil)
	noSource.Attributes.Source = nil
	pipe := checkRequest("GET", "/", map[string]string{"x-forwarded-for": "198.51.100.1"}, nil)
	pipe.Attributes.Source = peer("/run/envoy.sock")
	for name, req := range map[string]*authv3.CheckRequest{
		"empty":         {},
		"no request":    {Attributes: &authv3.AttributeContext{Source: peer("203.0.113.7")}},
		"no http":       {Attributes: &authv3.AttributeContext{Source: peer("203.0.113.7"), Request: &authv3.AttributeContext_Request{}}},
		"no source":     noSource,
		"untrusted xff": pipe,
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := c.Check(ctx, req)
		cancel()
		if status.Code(err) != codes.InvalidArgument || res != nil {
			t.Errorf("%s: %v, %v", name, res, err)
		}
	}
	for name, mutate := range map[string]func(*authv3.AttributeContext_HttpRequest){
		"bad method":  func(h *authv3.AttributeContext_HttpRequest) { h.Method = "GE T" },
		"no method":   func(h *authv3.AttributeContext_HttpRequest) { h.Method = "" },
		"no path":     func(h *authv3.AttributeContext_HttpRequest) { h.Path = "" },
		"bad path":    func(h *authv3.AttributeContext_HttpRequest) { h.Path = "/%zz" },
		"relative":    func(h *authv3.AttributeContext_HttpRequest) { h.Path = "v1/x" },
		"bad host":    func(h *authv3.AttributeContext_HttpRequest) { h.Host = "a.example/b" },
		"control chr": func(h *authv3.AttributeContext_HttpRequest) { h.Path = "/a\x7f" },
	} {
		req := checkRequest("GET", "/", nil, nil)
		mutate(req.Attributes.Request.Http)
		res := check(t, c, req)
		d := res.GetDeniedResponse()
		var b struct{ Error struct{ Code string } }
		if d.GetStatus().GetCode() != http.StatusBadRequest || json.Unmarshal([]byte(d.GetBody()), &b) != nil || b.Error.Code != "BAD_REQUEST" {
			t.Errorf("%s: %v", name, res)
		}
	}
	if n := f.count(); n != 0 {
		t.Errorf("handler called %d times", n)
	}
}

// A handler that writes nothing allows; one that writes a body without a
// status allows too; headers changed after WriteHeader are not sent.
func TestRecorder(t *testing.T) {
	f := &fake{answer: func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/write":
			_, _ = w.Write([]byte("ok"))
			w.Header().Set("X-Tollgate-Org", "late")
		case "/informational":
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("X-Tollgate-Org", "org_1")
			w.WriteHeader(http.StatusForbidden)
			w.WriteHeader(http.StatusOK) // ignored
		case "/invalid":
			w.WriteHeader(42)
		}
	}}
	c := start(t, f, Options{})
	for path, want := range map[string]int{"/nothing": 200, "/write": 200, "/informational": 403, "/invalid": 500} {
		res := check(t, c, checkRequest("GET", path, nil, nil))
		if got := int(res.GetDeniedResponse().GetStatus().GetCode()); want == 200 && (res.GetOkResponse() == nil || len(res.GetOkResponse().GetHeaders()) != 0) || want != 200 && got != want {
			t.Errorf("%s: %v", path, res)
		}
	}
}

// Answers that are not valid in a protobuf string or an HTTP header are
// cleaned up rather than failing the RPC.
func TestInvalidAnswer(t *testing.T) {
	f := &fake{answer: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Bin", "\xff\xfe")
		w.Header()["Bad Name"] = []string{"x"}
		w.Header()["X-Split"] = []string{"a\r\nInjected: 1"}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("\xffnot utf-8"))
	}}
	c := start(t, f, Options{})
	d := check(t, c, checkRequest("GET", "/", nil, nil)).GetDeniedResponse()
	equal(t, "headers", headerSet(d.GetHeaders()), []string{"x-bin: \uFFFD [overwrite]"})
	if d.GetBody() != "\uFFFDnot utf-8" {
		t.Errorf("body %q", d.GetBody())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FuzzCheckRequest: whatever the CheckRequest, Check neither panics nor fails
// to answer, and its answer can be sent over gRPC.
func FuzzCheckRequest(f *testing.F) {
	f.Add("GET", "/v1/x?a=b", "api.example.com", "https", "x-api-key", "k", []byte(nil), "203.0.113.7", false, false)
	f.Add("POST", "/v1/x", "api.example.com", "http", "authorization", "Bearer t", []byte(`{"a":1}`), "2001:db8::1", true, false)
	f.Add("PUT", "*", "h:8080", "", ":path", "/x", []byte("panic"), "::ffff:10.0.0.1", false, true)
	f.Add("G\x00T", "/%zz", "a b", "HTTPS", "bad name", "v\r\nx", []byte("\xff\xfe"), "/run/sock", true, true)
	f.Add("DELETE", "http://h/a", "", "https", "x-forwarded-for", "1.2.3.4, bogus", bytes.Repeat([]byte("b"), 300), "fe80::1%eth0", true, false)

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.HasPrefix(b, []byte("panic")) {
			panic("fuzz")
		}
		for k, vs := range r.Header { // echo the request, cleaned or not
			w.Header()["X-Tollgate-"+k] = vs
			w.Header()["Ratelimit-"+k] = vs
		}
		w.Header().Set("X-Request-Id", r.RequestURI)
		switch len(b) % 4 {
		case 0:
			w.WriteHeader(http.StatusOK)
		case 1:
			w.WriteHeader(http.StatusUnauthorized)
		case 2:
			w.WriteHeader(600 + len(b)%400)
		}
		_, _ = w.Write(b)
	})
	s := New(h, Options{MaxBody: 256})
	if res, err := s.Check(context.Background(), nil); res != nil || status.Code(err) != codes.InvalidArgument {
		f.Fatalf("nil request: %v, %v", res, err)
	}

	f.Fuzz(func(t *testing.T, method, path, host, scheme, hname, hvalue string, body []byte, addr string, raw, headerMap bool) {
		hr := &authv3.AttributeContext_HttpRequest{Method: method, Path: path, Host: host, Scheme: scheme, Size: int64(len(body))}
		if headerMap {
			hr.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: hname, RawValue: []byte(hvalue)}, {Key: hname, Value: hvalue},
			}}
		} else {
			hr.Headers = map[string]string{hname: hvalue, "authorization": hvalue}
		}
		if raw {
			hr.RawBody = body
		} else {
			hr.Body = string(body)
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Source:  peer(addr),
			Request: &authv3.AttributeContext_Request{Http: hr},
		}}
		res, err := s.Check(context.Background(), req)
		if err != nil {
			// Only a missing client address is refused as an error: the
			// fuzzed x-forwarded-for is not trusted.
			if _, perr := netip.ParseAddr(addr); perr == nil || status.Code(err) != codes.InvalidArgument || res != nil {
				t.Fatalf("Check: %v, %v", res, err)
			}
			return
		}
		if res == nil {
			t.Fatal("nil response")
		}
		if _, err := proto.Marshal(res); err != nil {
			t.Fatalf("response cannot be sent: %v", err)
		}
		if c := res.GetStatus().GetCode(); c == int32(code.Code_OK) {
			if res.GetOkResponse() == nil {
				t.Fatalf("OK without ok_response: %v", res)
			}
		} else if d := res.GetDeniedResponse(); d == nil || d.GetStatus().GetCode() < 100 {
			t.Fatalf("status %d without a denial: %v", c, res)
		}
	})
}
