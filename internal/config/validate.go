package config

import (
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/evm"
	"github.com/tollgate/tollgate/internal/reqtarget"
)

// ControlPlaneAudience is the "aud" of dashboard session tokens. API access
// tokens must name another audience, so that neither is accepted as the other.
const ControlPlaneAudience = "urn:tollgate:control-plane"

// ReservedPrefixes are paths that Tollgate serves itself; routes may not
// claim them.
var ReservedPrefixes = []string{"/api/", "/oauth/", "/.well-known/", "/x402/", "/dashboard/", "/healthz", "/readyz"}

// IsReserved reports whether path belongs to Tollgate itself.
func IsReserved(path string) bool {
	for _, p := range ReservedPrefixes {
		if strings.HasPrefix(path, p) || path+"/" == p {
			return true
		}
	}
	return false
}

var (
	scopeRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
	methodRE = regexp.MustCompile(`^[A-Z]{1,16}$`)
	planRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// upgradeRE is an RFC 9110 protocol: a token, optionally "/" version.
	upgradeRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+(/[A-Za-z0-9!#$%&'*+.^_|~-]+)?$`)
)

// ValidScope reports whether s is a well-formed scope name, such as
// "webhook.read" or "kyt.write".
func ValidScope(s string) bool { return scopeRE.MatchString(s) }

// ClusterMode reports whether c is a node that shares its store with
// others (storage.type postgres) and signs or checks tokens (role all or
// auth; gateway-role nodes ask an auth node). Such nodes must agree on
// server.public_url, auth.issuer and auth.audience.
func (c *Config) ClusterMode() bool {
	return c.Storage.Type == "postgres" && c.Role != "gateway"
}

// Warnings returns what c holds that is accepted but deprecated or
// ignored, a sentence each saying what to do instead; nil when nothing.
func (c *Config) Warnings() []string {
	var w []string
	if c.Webhooks.MaxFailures != 0 {
		w = append(w, fmt.Sprintf("webhooks.max_failures (%d) is deprecated and ignored: an endpoint is disabled once it "+
			"has been failing continuously for webhooks.disable_after (%v), however many attempts failed; remove it",
			c.Webhooks.MaxFailures, c.Webhooks.DisableAfter))
	}
	return w
}

// Validate reports every problem in c at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	s := c.Server
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		bad("server.listen %q: %v", s.Listen, err)
	}
	hasCert, hasKey := s.TLS.CertFile != "", s.TLS.KeyFile != ""
	if hasCert != hasKey {
		bad("server.tls: cert_file and key_file go together")
	}
	if !hasCert && !s.InsecureHTTP {
		bad("server: no TLS configured; set server.tls.cert_file and server.tls.key_file, or server.insecure_http: true for local development only")
	}
	if hasCert && s.InsecureHTTP {
		bad("server: insecure_http and tls are exclusive")
	}
	if v := s.TLS.MinVersion; v != "1.2" && v != "1.3" {
		bad("server.tls.min_version %q: must be 1.2 or 1.3", v)
	}
	if s.HSTSMaxAge < 0 {
		bad("server.hsts_max_age must not be negative")
	}
	if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("server.public_url %q: must be an absolute http(s) URL", s.PublicURL)
	}
	if _, err := clientip.NewResolver(s.TrustedProxies); err != nil {
		bad("server.trusted_proxies: %v", err)
	}
	if s.MaxBodyBytes <= 0 || s.MaxAPIBodyBytes <= 0 {
		bad("server.max_body_bytes and server.max_api_body_bytes must be positive")
	}
	if s.ReadHeaderTimeout <= 0 || s.IdleTimeout <= 0 || s.ShutdownTimeout <= 0 {
		bad("server timeouts must be positive")
	}
	for _, u := range s.Upgrades {
		switch {
		case strings.EqualFold(u, "h2c"):
			bad("server.upgrades: h2c is never forwarded (it would hand the client an HTTP/2 connection to the upstream that Tollgate does not see)")
		case !upgradeRE.MatchString(u):
			bad("server.upgrades: %q is not a protocol name (RFC 9110 section 7.8), such as websocket", u)
		}
	}
	if s.BodyTimeout <= 0 || s.SendTimeout <= 0 {
		bad("server.body_timeout and server.send_timeout must be positive")
	}
	if s.MinBodyRate < 0 {
		bad("server.min_body_rate must not be negative (0: no extension of body_timeout)")
	}
	if s.MaxConnectionsPerIP < 0 || s.MaxConnections < 0 || c.AuthService.MaxConnectionsPerIP < 0 {
		bad("server.max_connections_per_ip, server.max_connections and auth_service.max_connections_per_ip must not be negative (0: no limit)")
	}

	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			bad("admin.listen %q: %v", c.Admin.Listen, err)
		}
		if c.Admin.Listen == s.Listen && !strings.HasSuffix(s.Listen, ":0") {
			bad("admin.listen must differ from server.listen")
		}
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < 32 {
		bad("admin.token must be at least 32 characters")
	}
	if h := c.Admin.TokenSHA256; h != "" && !sha256RE.MatchString(h) {
		bad("admin.token_sha256 must be 64 lowercase hex digits")
	}

	switch c.Storage.Type {
	case "sqlite":
		if c.Storage.SQLite.Path == "" {
			bad("storage.sqlite.path is required")
		}
	case "postgres":
		if u, err := url.Parse(c.Storage.Postgres.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("storage.postgres.url: must be a postgres:// URL")
		}
		if sc := c.Storage.Postgres.Schema; sc != "" && !identRE.MatchString(sc) {
			bad("storage.postgres.schema %q: must be a lower-case SQL identifier", sc)
		}
	default:
		bad("storage.type %q: supported types are: sqlite, postgres", c.Storage.Type)
	}
	c.validateCluster(bad)

	a := c.Auth
	if a.SessionTTL < time.Minute || a.SessionTTL > 24*time.Hour {
		bad("auth.session_ttl %v: must be between 1m and 24h", a.SessionTTL)
	}
	if a.RefreshTTL < a.SessionTTL {
		bad("auth.refresh_ttl must not be shorter than auth.session_ttl")
	}
	if a.APIKeyCacheTTL < 0 || a.APIKeyCacheSize <= 0 {
		bad("auth.apikey_cache_ttl must not be negative and auth.apikey_cache_size must be positive")
	}
	if a.AccessTokenTTL < time.Minute || a.AccessTokenTTL > 7*24*time.Hour {
		bad("auth.access_token_ttl %v: must be between 1m and 168h", a.AccessTokenTTL)
	}
	if a.Leeway < 0 || a.Leeway > 5*time.Minute {
		bad("auth.leeway %v: must be between 0 and 5m", a.Leeway)
	}
	if a.TokenCacheTTL < 0 || a.TokenCacheSize <= 0 {
		bad("auth.token_cache_ttl must not be negative and auth.token_cache_size must be positive")
	}
	if a.SignatureWindow < 10*time.Second || a.SignatureWindow > time.Hour {
		bad("auth.signature_window %v: must be between 10s and 1h", a.SignatureWindow)
	}
	if a.ReplayMaxPerCredential < 1 || a.ReplayMaxPerCredential > 10_000_000 {
		bad("auth.replay_max_per_credential %d: must be between 1 and 10000000", a.ReplayMaxPerCredential)
	}
	if a.Audience == ControlPlaneAudience {
		bad("auth.audience %q is reserved for dashboard sessions", a.Audience)
	}
	if a.SessionCacheTTL < 0 || a.SessionCacheTTL > 5*time.Minute {
		bad("auth.session_cache_ttl %v: must be between 0 and 5m", a.SessionCacheTTL)
	}
	if a.RefreshReuseGrace < 0 || a.RefreshReuseGrace > time.Minute {
		bad("auth.refresh_reuse_grace %v: must be between 0 and 1m", a.RefreshReuseGrace)
	}
	l := a.Login
	if l.MaxFailuresPerIP <= 0 || l.MaxFailuresPerIPAccount <= 0 || l.MaxRegistrationsPerIP <= 0 || l.MaxFailuresPerAccount < 0 {
		bad("auth.login limits must be positive")
	}
	if l.Window <= 0 || l.Window > 24*time.Hour {
		bad("auth.login.window %v: must be between 1s and 24h", l.Window)
	}
	if l.BackoffBase <= 0 || l.BackoffMax < l.BackoffBase || l.BackoffMax > 24*time.Hour {
		bad("auth.login.backoff_base %v and backoff_max %v: need 0 < backoff_base <= backoff_max <= 24h", l.BackoffBase, l.BackoffMax)
	}

	c.validateRoutes(bad)
	c.validateDashboard(bad)
	c.validatePlans(bad)
	c.validateX402(bad)

	u := c.Usage
	if u.Buffer < 1 || u.Buffer > 10_000_000 {
		bad("usage.buffer %d: must be between 1 and 10000000", u.Buffer)
	}
	if u.BatchSize < 1 || u.BatchSize > 100_000 {
		bad("usage.batch_size %d: must be between 1 and 100000", u.BatchSize)
	}
	if u.FlushInterval < 10*time.Millisecond || u.FlushInterval > time.Minute {
		bad("usage.flush_interval %v: must be between 10ms and 1m", u.FlushInterval)
	}
	if u.QuotaFlushInterval < 10*time.Millisecond || u.QuotaFlushInterval > time.Minute {
		bad("usage.quota_flush_interval %v: must be between 10ms and 1m", u.QuotaFlushInterval)
	}
	if u.RequestLogRetention < time.Hour {
		bad("usage.request_log_retention %v: must be at least 1h", u.RequestLogRetention)
	}
	if u.HourlyRetention < 24*time.Hour {
		bad("usage.hourly_retention %v: must be at least 24h", u.HourlyRetention)
	}

	rs := c.ResponseSigning
	if rs.MaxBodyBytes < 1024 || rs.MaxBodyBytes > 64<<20 {
		bad("response_signing.max_body_bytes %d: must be between 1024 and 67108864", rs.MaxBodyBytes)
	}
	if rs.RetiredKeyGrace < time.Hour {
		bad("response_signing.retired_key_grace %v: must be at least 1h", rs.RetiredKeyGrace)
	}
	wh := c.Webhooks
	for _, cidr := range wh.AllowedCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad("webhooks.allowed_cidrs: %q is not a CIDR prefix", cidr)
		}
	}
	if wh.AttemptTimeout < time.Second || wh.AttemptTimeout > 2*time.Minute {
		bad("webhooks.attempt_timeout %v: must be between 1s and 2m", wh.AttemptTimeout)
	}
	if d := wh.DisableAfter; d != 0 && (d < time.Hour || d > 30*24*time.Hour) {
		bad("webhooks.disable_after %v: must be between 1h and 720h, or 0 to never disable failing endpoints", d)
	}
	if wh.SecretGrace < 0 || wh.SecretGrace > 30*24*time.Hour {
		bad("webhooks.secret_grace %v: must be between 0 and 720h", wh.SecretGrace)
	}
	if wh.Retention < 24*time.Hour {
		bad("webhooks.retention %v: must be at least 24h", wh.Retention)
	}
	if wh.Workers < 1 || wh.Workers > 256 {
		bad("webhooks.workers %d: must be between 1 and 256", wh.Workers)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: must be debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("log.format %q: must be json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

func (c *Config) validateRoutes(bad func(string, ...any)) {
	seen := map[string]bool{}
	for i, r := range c.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		if !strings.HasPrefix(r.Path, "/") || strings.ContainsAny(r.Path, "?#* ") {
			bad("%s.path %q: must start with / and contain no query, fragment, space or wildcard", at, r.Path)
		} else if t, err := reqtarget.Parse(r.Path); err != nil || t.Path != r.Path || t.RawPath != r.Path {
			// Requests are matched on their canonical path: a route
			// that is not canonical would match nothing, or not what
			// it says.
			want := ""
			if err == nil {
				want = fmt.Sprintf(" (did you mean %q?)", t.Path)
			}
			bad("%s.path %q: must be a canonical path: no dot segment, repeated slash, percent-encoding, backslash or semicolon%s", at, r.Path, want)
		} else if IsReserved(r.Path) || r.Path == "/api" || r.Path == "/oauth" {
			bad("%s.path %q: reserved for Tollgate itself (%s)", at, r.Path, strings.Join(ReservedPrefixes, ", "))
		}
		u, err := url.Parse(r.Upstream)
		switch {
		case r.Upstream == "":
			bad("%s.upstream is required", at)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("%s.upstream %q: must be an absolute http(s) URL", at, r.Upstream)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("%s.upstream %q: must not carry a query, fragment or user info", at, r.Upstream)
		}
		if units := r.UnitCost(); units < 0 || units > 1_000_000 {
			bad("%s.units %d: must be between 0 and 1000000", at, units)
		}
		for _, m := range r.Methods {
			if !methodRE.MatchString(m) {
				bad("%s.methods: %q is not an upper-case HTTP method", at, m)
			}
		}
		for _, sc := range r.Scopes {
			if !ValidScope(sc) {
				bad("%s.scopes: %q is not a valid scope", at, sc)
			}
		}
		if r.Public && len(r.Scopes) > 0 {
			bad("%s: a public route cannot require scopes", at)
		}
		if r.Timeout < 0 {
			bad("%s.timeout must not be negative", at)
		}
		if r.WebSocketUnitsPerMB < 0 || r.WebSocketUnitsPerMB > 1_000_000 {
			bad("%s.websocket_units_per_mb %d: must be between 0 and 1000000", at, r.WebSocketUnitsPerMB)
		}
		key := strings.ToLower(r.Host) + " " + r.Path + " " + strings.Join(r.Methods, ",")
		if seen[key] {
			bad("%s: duplicate of an earlier route (host %q, path %q)", at, r.Host, r.Path)
		}
		seen[key] = true
	}
}

func (c *Config) validatePlans(bad func(string, ...any)) {
	names := map[string]bool{}
	for i, p := range c.Plans {
		at := fmt.Sprintf("plans[%d]", i)
		if !planRE.MatchString(p.Name) {
			bad("%s.name %q: lowercase letters, digits, - and _, at most 32", at, p.Name)
		}
		if names[p.Name] {
			bad("%s.name %q: duplicate", at, p.Name)
		}
		names[p.Name] = true
		if p.Rate.RequestsPerSecond < 0 || p.Rate.Burst < 0 {
			bad("%s.rate must not be negative", at)
		}
		if p.Rate.RequestsPerSecond > 0 && p.Rate.Burst == 0 {
			bad("%s.rate.burst must be at least 1 when requests_per_second is set", at)
		}
		if p.Quota.Units < 0 {
			bad("%s.quota.units must not be negative", at)
		}
		switch p.Quota.Period {
		case "hour", "day", "month":
		case "":
			if p.Quota.Units > 0 {
				bad("%s.quota.period is required with quota.units (hour, day or month)", at)
			}
		default:
			bad("%s.quota.period %q: must be hour, day or month", at, p.Quota.Period)
		}
	}
	if c.DefaultPlan != "" && !names[c.DefaultPlan] {
		bad("default_plan %q is not one of the plans", c.DefaultPlan)
	}
}

// headerNameRE is an HTTP field name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[-!#$%&'*+.^_`|~0-9A-Za-z]+$")

// caip2RE is a CAIP-2 chain ID: namespace ":" reference.
var caip2RE = regexp.MustCompile(`^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$`)

func (c *Config) validateX402(bad func(string, ...any)) {
	x := c.X402
	if !x.Enabled {
		return
	}
	evmNetwork := strings.HasPrefix(x.Network, "eip155:")
	if !caip2RE.MatchString(x.Network) {
		bad("x402.network %q: a CAIP-2 chain ID is required, such as eip155:8453", x.Network)
	}
	if evmNetwork {
		for _, f := range []struct{ key, value string }{{"asset", x.Asset}, {"pay_to", x.PayTo}} {
			if _, err := evm.ParseAddress(f.value); err != nil {
				bad("x402.%s %q: an EVM address is required (0x and 40 hex digits, EIP-55 if mixed case)", f.key, f.value)
			}
		}
		if x.AssetName == "" || x.AssetVersion == "" {
			bad("x402.asset_name and x402.asset_version are required: the token's EIP-712 domain (USDC on Base: \"USD Coin\", \"2\")")
		}
	} else if x.Asset == "" || x.PayTo == "" {
		bad("x402.asset and x402.pay_to are required")
	}
	if x.MaxTimeout < 5*time.Second || x.MaxTimeout > time.Hour {
		bad("x402.max_timeout %v: must be between 5s and 1h", x.MaxTimeout)
	}
	f := x.Facilitator
	switch u, err := url.Parse(f.URL); {
	case f.URL == FacilitatorLocal:
		if !evmNetwork {
			bad("x402.facilitator.url local: the built-in facilitator knows EVM networks (eip155:…) only")
		}
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		bad("x402.facilitator.url %q: an http(s) URL without query or fragment, or \"local\"", f.URL)
	case !evmNetwork:
		bad("x402.network %q: payments are taken on EVM networks (eip155:…) only, as EIP-3009 authorizations; Solana wallets may still sign in (x402.siwx.chains)", x.Network)
	}
	if name, value, ok := strings.Cut(f.AuthHeader, ":"); f.AuthHeader != "" && (!ok || !headerNameRE.MatchString(strings.TrimSpace(name)) || strings.TrimSpace(value) == "") {
		bad("x402.facilitator.auth_header: must be \"Name: value\"")
	}
	if f.Timeout < time.Second || f.Timeout > 2*time.Minute {
		bad("x402.facilitator.timeout %v: must be between 1s and 2m", f.Timeout)
	}
	if len(x.Offers) == 0 {
		bad("x402.offers: at least one offer is required")
	}
	plans := map[string]bool{}
	for _, p := range c.Plans {
		plans[p.Name] = true
	}
	offered := map[string]bool{}
	for i, o := range x.Offers {
		at := fmt.Sprintf("x402.offers[%d]", i)
		if !plans[o.Plan] {
			bad("%s.plan %q is not one of the plans", at, o.Plan)
		}
		if offered[o.Plan] {
			bad("%s.plan %q: offered twice", at, o.Plan)
		}
		offered[o.Plan] = true
		if !validPrice(o.Price) {
			bad("%s.price %q: a positive integer in the asset's atomic units, below 2^256", at, o.Price)
		}
		if o.Duration < time.Minute {
			bad("%s.duration %v: must be at least 1m", at, o.Duration)
		}
	}
	w := x.SIWX
	if w.Domain == "" {
		bad("x402.siwx.domain is required (default: the host of server.public_url)")
	}
	if u, err := url.Parse(w.URI); err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		bad("x402.siwx.uri %q: an absolute URI without user, query or fragment is required", w.URI)
	}
	for _, ch := range w.Chains {
		if !caip2RE.MatchString(ch) || (!strings.HasPrefix(ch, "eip155:") && !strings.HasPrefix(ch, "solana:")) {
			bad("x402.siwx.chains: %q is not a CAIP-2 chain of EVM (eip155:…) or Solana (solana:…)", ch)
		}
	}
	if w.MaxLifetime < time.Minute || w.MaxLifetime > 30*24*time.Hour {
		bad("x402.siwx.max_lifetime %v: must be between 1m and 720h", w.MaxLifetime)
	}
	if w.CacheSize <= 0 {
		bad("x402.siwx.cache_size must be positive")
	}
}

// validPrice reports whether s is a positive decimal integer below 2^256,
// without sign or leading zeros.
func validPrice(s string) bool {
	if s == "" || s[0] == '0' || len(s) > 78 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, ok := new(big.Int).SetString(s, 10)
	return ok && n.BitLen() <= 256
}

// identRE is a plain, lower-case SQL identifier.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) validateCluster(bad func(string, ...any)) {
	if c.ClusterMode() && c.Derived.PublicURL {
		bad("server.public_url is required with storage.type postgres (cluster mode): the tokens one node signs must pass on "+
			"every other, and an issuer and audience derived from this node's server.listen (%s) differ from node to node; "+
			"set server.public_url to the URL clients use, the load balancer's, on every node (README: \"Two nodes on "+
			"PostgreSQL and Redis\")", c.Server.PublicURL)
	}
	switch c.Counters.Type {
	case "memory":
	case "redis":
		if u, err := url.Parse(c.Counters.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("counters.redis.url: must be a redis:// or rediss:// URL")
		}
		if p := c.Counters.Redis.Prefix; p == "" || strings.ContainsAny(p, "{}") {
			bad("counters.redis.prefix %q: must be non-empty and without { or }", p)
		}
	default:
		bad("counters.type %q: supported types are: memory, redis", c.Counters.Type)
	}
	if m := c.Counters.FailureMode; m != "closed" && m != "open" {
		bad("counters.failure_mode %q: must be closed or open", m)
	}
	a := c.AuthService
	for name, addr := range map[string]string{"auth_service.listen": a.Listen, "auth_service.grpc_listen": a.GRPCListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q: %v", name, addr, err)
		}
	}
	if a.Token != "" && len(a.Token) < 32 {
		bad("auth_service.token must be at least 32 characters")
	}
	if h := a.TokenSHA256; h != "" && !sha256RE.MatchString(h) {
		bad("auth_service.token_sha256 must be 64 lowercase hex digits")
	}
	if a.Timeout <= 0 || a.DecisionCacheTTL < 0 || a.DecisionCacheSize <= 0 {
		bad("auth_service.timeout and decision_cache_size must be positive, decision_cache_ttl not negative")
	}
	switch c.Role {
	case "all":
	case "auth":
		if a.Listen == "" && a.GRPCListen == "" {
			bad("role auth: set auth_service.listen or auth_service.grpc_listen")
		}
	case "gateway":
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("role gateway: auth_service.url must be the http(s) URL of the auth service")
		}
		signed := c.ResponseSigning.All
		for _, r := range c.Routes {
			signed = signed || r.SignResponse
		}
		if signed {
			bad("role gateway: gateway nodes do not sign responses; serve sign_response routes from role all nodes")
		}
	default:
		bad("role %q: must be all, auth or gateway", c.Role)
	}
	if ws := c.Auth.WebSocket; ws.MaxSessionsPerCredential < 0 {
		bad("auth.websocket.max_sessions_per_credential must not be negative (0: no cap)")
	}
	if l := c.Auth.WebSocket.SessionLease; l < 3*time.Second || l > 10*time.Minute {
		bad("auth.websocket.session_lease must be between 3s and 10m")
	}
	if b := c.Auth.Bans; b.MaxFailures < 0 || (b.MaxFailures > 0 && (b.Window <= 0 || b.Duration <= 0)) {
		bad("auth.bans: max_failures must not be negative; with it, window and duration must be positive")
	}
	if c.Auth.StoreOutageGrace < 0 || c.Usage.RetryFor < 0 {
		bad("auth.store_outage_grace and usage.retry_for must not be negative")
	}
}
