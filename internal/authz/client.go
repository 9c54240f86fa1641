package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/headerpolicy"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// Token is the decision API's shared secret; "" sends none.
	Token string
	// Timeout bounds one call. Default 2 s.
	Timeout time.Duration
	// CacheTTL is how long a decision the auth service marked cacheable is
	// reused; 0 disables the cache. CacheSize bounds it (default 100000).
	CacheTTL  time.Duration
	CacheSize int
	// Transport carries the calls; default: a pooled transport of its own.
	Transport http.RoundTripper
}

// Client asks an auth service for decisions: it is the gateway.Decider of a
// gateway-role node, the usage.Sink its usage events go to and the
// gateway.Limiter that charges after the fact. A decision costs one HTTP
// round trip on a kept-alive connection, unless the decision cache has it:
// only decisions that no counter took part in are cached (an unlimited plan,
// a public route, a refusal for scope or address), never a signed request's,
// so rate limits and quotas stay exact while the cache saves the hop for
// the rest.
type Client struct {
	base      string
	token     string
	http      *http.Client
	cache     *expirable.LRU[[32]byte, *cached]
	transport http.RoundTripper
}

// cached is a reusable decision.
type cached struct {
	principal *authn.Principal
	header    http.Header // for the client
	err       *apierror.Error
}

// NewClient returns a Client of the decision API at baseURL
// (http://auth.internal:8090).
func NewClient(baseURL string, o ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("authz: auth service URL %q is not an absolute http(s) URL", baseURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.Transport == nil {
		t := gateway.NewTransport()
		t.MaxIdleConnsPerHost = 4096
		o.Transport = t
	}
	c := &Client{
		base:      strings.TrimSuffix(u.String(), "/"),
		token:     o.Token,
		http:      &http.Client{Transport: o.Transport, Timeout: o.Timeout, CheckRedirect: noRedirect},
		transport: o.Transport,
	}
	if o.CacheTTL > 0 {
		c.cache = expirable.NewLRU[[32]byte, *cached](o.CacheSize, nil, o.CacheTTL)
	}
	return c, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

var errAuthDown = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "auth service unavailable")

// maxDecisionBody bounds a decision's answer (a 402's payment requirements
// are the largest).
const maxDecisionBody = 256 << 10

// Decide implements gateway.Decider. A refusal comes with the caller's
// principal when the auth service knew it, for metering.
func (c *Client) Decide(w http.ResponseWriter, r *http.Request, route string) (*authn.Principal, error) {
	info := reqinfo.From(r.Context())
	isSigned := signed(r.Header)
	var key [32]byte
	if c.cache != nil && !isSigned {
		key = cacheKey(r, route, info)
		if e, ok := c.cache.Get(key); ok {
			return e.apply(w)
		}
	}
	var body []byte
	if isSigned && r.Body != nil && r.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err // 413 past the server's limit
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.base+PathDecide, bytes.NewReader(body))
	if err != nil {
		return nil, errAuthDown.Wrap(err)
	}
	h := req.Header
	for k, vs := range r.Header {
		// What this node forwards upstream (see headerpolicy.StripInbound),
		// and the credentials as the gateway reads them.
		switch c := headerpolicy.Classify(k); {
		case c == headerpolicy.Other, c == headerpolicy.ClassCredential && headerpolicy.Canonical(k):
			h[k] = vs
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	h.Set("X-Forwarded-Method", r.Method)
	h.Set("X-Forwarded-Uri", originForm(r.RequestURI))
	h.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
	if info.ClientIP.IsValid() {
		h.Set("X-Forwarded-For", info.ClientIP.String())
	}
	if info.ID != "" {
		h.Set(gateway.HeaderRequestID, info.ID)
	}
	if c.token != "" {
		h.Set(HeaderServiceToken, c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, err
		}
		return nil, errAuthDown.Wrap(err)
	}
	defer func() { _ = res.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxDecisionBody))
	if err != nil {
		return nil, errAuthDown.Wrap(err)
	}
	e := decode(res, raw)
	if c.cache != nil && !isSigned && res.Header.Get(HeaderCacheable) == "1" {
		c.cache.Add(key, e)
	}
	return e.apply(w)
}

// originForm returns a request target in origin form (RFC 9112 section
// 3.2.1): an absolute-form target ("http://host/p?q", which servers must
// accept) loses its scheme and authority; the rest is as the client sent
// it, which a request signature may cover.
func originForm(target string) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	rest := target
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		if rest[i] == '?' {
			return "/" + rest[i:]
		}
		return rest[i:]
	}
	return "/"
}

// decode turns the auth service's answer into a decision.
func decode(res *http.Response, raw []byte) *cached {
	clientHeader := http.Header{}
	for k, vs := range res.Header {
		switch {
		case strings.HasPrefix(k, "X-Tollgate-"), k == "Content-Type", k == "Content-Length", k == "Date",
			k == "Cache-Control", k == "X-Content-Type-Options", k == gateway.HeaderRequestID, k == "Connection":
			continue
		}
		clientHeader[k] = vs
	}
	if res.StatusCode == http.StatusOK {
		p := principalFrom(res.Header)
		return &cached{principal: p, header: clientHeader}
	}
	ae := refusal(res.StatusCode, raw)
	ae.Header = clientHeader
	return &cached{principal: principalFrom(res.Header), err: ae}
}

// apply sets the decision's client headers on w and returns it.
func (e *cached) apply(w http.ResponseWriter) (*authn.Principal, error) {
	if e.err != nil {
		return e.principal, e.err
	}
	h := w.Header()
	for k, vs := range e.header {
		h[k] = vs
	}
	return e.principal, nil
}

// principalFrom reads the principal of an admitted request; nil on a public
// route.
func principalFrom(h http.Header) *authn.Principal {
	org := h.Get(gateway.HeaderOrg)
	if org == "" {
		return nil
	}
	p := &authn.Principal{
		OrgID: org, AppID: h.Get(gateway.HeaderApp), CredentialID: h.Get(gateway.HeaderCredential),
		Method: authn.Method(h.Get(HeaderMethod)), Plan: h.Get(HeaderPlan),
	}
	if s := h.Get(gateway.HeaderScopes); s != "" {
		p.Scopes = strings.Fields(s)
	}
	if sec, err := strconv.ParseInt(h.Get(HeaderExpires), 10, 64); err == nil && sec > 0 {
		p.ExpiresAt = time.Unix(sec, 0)
	}
	p.TokenID = h.Get(HeaderTokenID)
	return p
}

// refusal rebuilds the auth service's error from its body, so that the
// gateway answers it under its own request ID, with the same code, message,
// reason and extra members (x402's payment requirements).
func refusal(status int, raw []byte) *apierror.Error {
	var body map[string]json.RawMessage
	var be struct {
		Code    apierror.Code `json:"code"`
		Message string        `json:"message"`
		Reason  string        `json:"reason"`
		Field   string        `json:"field"`
	}
	if json.Unmarshal(raw, &body) != nil || json.Unmarshal(body["error"], &be) != nil || be.Code == "" {
		return errAuthDown.Wrap(fmt.Errorf("authz: auth service answered %d without an error body", status))
	}
	e := apierror.New(status, be.Code, be.Message).WithReason(be.Reason)
	e.Field = be.Field
	delete(body, "error")
	if len(body) > 0 {
		e.Extra = make(map[string]any, len(body))
		for k, v := range body {
			e.Extra[k] = v
		}
	}
	return e
}

// cacheKey names a decision: the route, the host, the method, the
// credentials and the client's address, hashed. The route is its path
// prefix, which routes of different hosts may share (a scoped one for
// admin.example.com, an open one for any host): the host, as the gateway
// matches it (without port and trailing dot, in any case), tells them apart.
func cacheKey(r *http.Request, route string, info *reqinfo.Info) [32]byte {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	h := sha256.New()
	for _, s := range []string{route, host, r.Method, info.ClientIP.String()} {
		_, _ = io.WriteString(h, s)
		_, _ = h.Write([]byte{0})
	}
	for _, k := range []string{gateway.HeaderAPIKey, "Authorization", "Sign-In-With-X", "Payment-Signature"} {
		for _, v := range r.Header.Values(k) {
			_, _ = io.WriteString(h, k+": "+v)
			_, _ = h.Write([]byte{0})
		}
		_, _ = h.Write([]byte{1})
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// RecordUsage implements usage.Sink: it hands a batch to the auth service,
// which stores it (idempotently, by batch ID).
func (c *Client) RecordUsage(ctx context.Context, batchID string, events []store.UsageEvent) error {
	return c.post(ctx, PathUsage, usageBatch{BatchID: batchID, Events: events})
}

// RecordUsageTotals implements usage.Sink: it hands a batch of the totals of
// events left out of the request log to the auth service, which stores it
// (idempotently, by batch ID). An auth service older than this node refuses
// it (400), and the batch is retried, then given up and counted: upgrade
// the auth nodes first.
func (c *Client) RecordUsageTotals(ctx context.Context, batchID string, totals []store.UsageTotal) error {
	return c.post(ctx, PathUsage, usageBatch{BatchID: batchID, Totals: totals})
}

// Charge implements the after-the-fact half of gateway.Limiter.
func (c *Client) Charge(ctx context.Context, p *authn.Principal, units int64) error {
	return c.post(ctx, PathCharge, charge{
		OrgID: p.OrgID, AppID: p.AppID, CredentialID: p.CredentialID, Method: string(p.Method), Plan: p.Plan, Units: units,
	})
}

// Limit implements gateway.Limiter; with the Client as the gateway's
// Decider it is never called.
func (c *Client) Limit(http.ResponseWriter, *http.Request, *authn.Principal, int64) error {
	return errors.New("authz: Client.Limit: decisions go through Decide")
}

func (c *Client) post(ctx context.Context, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b)) //nolint:gosec // G704: the configured auth service
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set(HeaderServiceToken, c.token)
	}
	res, err := c.http.Do(req) //nolint:gosec // G704: the configured auth service
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
		return fmt.Errorf("authz: %s answered %d: %s", path, res.StatusCode, bytes.TrimSpace(raw))
	}
	return nil
}

// Ping checks the auth service answers, for /readyz.
func (c *Client) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return err
	}
	res, err := c.http.Do(req) //nolint:gosec // G704: the configured auth service
	if err != nil {
		return err
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return errors.New("authz: auth service /healthz answered " + strconv.Itoa(res.StatusCode))
	}
	return nil
}
