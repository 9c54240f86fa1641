// Package config is Tollgate's typed configuration: loaded from a YAML file,
// overridden by environment variables, given defaults and validated before
// anything starts.
//
// Every setting can be overridden by an environment variable named TOLLGATE_
// followed by its YAML path in upper case, with underscores between the parts:
//
//	server.listen              TOLLGATE_SERVER_LISTEN=0.0.0.0:8443
//	storage.sqlite.path        TOLLGATE_STORAGE_SQLITE_PATH=/var/lib/tollgate/tollgate.db
//	server.trusted_proxies     TOLLGATE_SERVER_TRUSTED_PROXIES=10.0.0.0/8,192.168.0.0/16
//	routes[0].upstream         TOLLGATE_ROUTES_0_UPSTREAM=http://10.0.0.5:9000
//
// Lists of values are comma-separated. Elements of lists of objects (routes,
// plans) are addressed by index; an index past the end of the file's list adds
// an element. Durations use Go's syntax (90s, 15m, 720h).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable Tollgate reads.
const EnvPrefix = "TOLLGATE_"

// Config is the whole configuration. Build one with Load or Dev; the zero value
// is not valid.
type Config struct {
	Server  Server  `yaml:"server" envPrefix:"SERVER_"`
	Admin   Admin   `yaml:"admin" envPrefix:"ADMIN_"`
	Storage Storage `yaml:"storage" envPrefix:"STORAGE_"`
	Secrets Secrets `yaml:"secrets" envPrefix:"SECRETS_"`
	Auth    Auth    `yaml:"auth" envPrefix:"AUTH_"`
	Routes  []Route `yaml:"routes" envPrefix:"ROUTES"`
	Plans   []Plan  `yaml:"plans" envPrefix:"PLANS"`
	// DefaultPlan is the plan of organizations that have none assigned.
	DefaultPlan string `yaml:"default_plan" env:"DEFAULT_PLAN"`
	Usage       Usage  `yaml:"usage" envPrefix:"USAGE_"`
	X402        X402   `yaml:"x402" envPrefix:"X402_"`
	// ResponseSigning configures signed responses.
	ResponseSigning ResponseSigning `yaml:"response_signing" envPrefix:"RESPONSE_SIGNING_"`
	// Webhooks configures webhook deliveries.
	Webhooks Webhooks `yaml:"webhooks" envPrefix:"WEBHOOKS_"`
	// Counters chooses where the hot counters live: rate limits, quotas,
	// replay nonces, bans and the cache invalidations between nodes.
	Counters Counters `yaml:"counters" envPrefix:"COUNTERS_"`
	// Role is what this node does: "all" (default) decides and proxies
	// in-process; "auth" runs only the auth & billing service (the control
	// plane, the decision API, forward-auth and Envoy ext_authz);
	// "gateway" proxies, asking an auth service (AuthService.URL) for each
	// decision. `tollgate serve --role` overrides it.
	Role string `yaml:"role" env:"ROLE"`
	// AuthService configures the decision API of the auth role and how a
	// gateway-role node reaches it.
	AuthService AuthService `yaml:"auth_service" envPrefix:"AUTH_SERVICE_"`
	// Dashboard says where the web dashboard is served: on an origin of its
	// own, or not at all (see Dashboard).
	Dashboard Dashboard `yaml:"dashboard" envPrefix:"DASHBOARD_"`
	Log       Log       `yaml:"log" envPrefix:"LOG_"`

	// Dev is set by `tollgate serve --dev`; it is not read from files.
	Dev bool `yaml:"-" env:"-"`
	// Derived says which settings were filled in from others because the
	// file and the environment left them empty. It is not read from files.
	Derived Derived `yaml:"-" env:"-"`
}

// Derived says which settings Load filled in from other settings. A
// derived server.public_url comes from the node's own server.listen, so it
// differs from node to node: cluster mode refuses it (see Validate).
type Derived struct {
	PublicURL bool // server.public_url, from server.listen
	Issuer    bool // auth.issuer, from server.public_url
	Audience  bool // auth.audience, from server.public_url
}

// Server configures the public listener (data plane and control-plane API).
type Server struct {
	// Listen is the host:port of the public listener.
	Listen string `yaml:"listen" env:"LISTEN"`
	// InsecureHTTP serves plain HTTP without TLS. Local development only.
	InsecureHTTP bool `yaml:"insecure_http" env:"INSECURE_HTTP"`
	TLS          TLS  `yaml:"tls" envPrefix:"TLS_"`
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header sent
	// on every HTTPS response; 0 disables the header.
	HSTSMaxAge time.Duration `yaml:"hsts_max_age" env:"HSTS_MAX_AGE"`
	// HSTSIncludeSubdomains adds includeSubDomains to the HSTS header.
	HSTSIncludeSubdomains bool `yaml:"hsts_include_subdomains" env:"HSTS_INCLUDE_SUBDOMAINS"`
	// PublicURL is the externally visible base URL (https://api.example.com):
	// the default token issuer and audience. Default: derived from Listen
	// ("https://" + Listen), which cluster mode (storage.type postgres)
	// refuses: every node must have the same one.
	PublicURL string `yaml:"public_url" env:"PUBLIC_URL"`
	// TrustedProxies are the addresses or CIDR prefixes of proxies whose
	// X-Forwarded-For entries are believed. Empty: nobody's.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES"`
	// MaxBodyBytes bounds every request body, proxied or not.
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"MAX_BODY_BYTES"`
	// MaxAPIBodyBytes bounds control-plane JSON bodies.
	MaxAPIBodyBytes int64 `yaml:"max_api_body_bytes" env:"MAX_API_BODY_BYTES"`
	// ReadHeaderTimeout bounds the reading of a request's headers (and of
	// a TLS handshake) on every listener, from the first byte.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout" env:"READ_HEADER_TIMEOUT"`
	// IdleTimeout closes a keep-alive connection left idle that long.
	IdleTimeout time.Duration `yaml:"idle_timeout" env:"IDLE_TIMEOUT"`
	// BodyTimeout is the time a request body has to arrive, counted from
	// the end of its headers, on every HTTP listener (public, admin,
	// decision API); MinBodyRate extends it. A body cut is answered 408
	// REQUEST_TIMEOUT. Must be positive.
	BodyTimeout time.Duration `yaml:"body_timeout" env:"BODY_TIMEOUT"`
	// MinBodyRate, in bytes per second, extends BodyTimeout by one second
	// for every MinBodyRate bytes of body received, as Apache's
	// mod_reqtimeout MinRate does. 0: no extension, the whole body must
	// arrive within BodyTimeout.
	MinBodyRate int64 `yaml:"min_body_rate" env:"MIN_BODY_RATE"`
	// SendTimeout bounds each write to a client on every listener: a
	// client that reads nothing of its response for that long has its
	// connection closed (nginx's send_timeout). Must be positive.
	SendTimeout time.Duration `yaml:"send_timeout" env:"SEND_TIMEOUT"`
	// MaxConnectionsPerIP bounds the connections open from one client
	// address (IPv6: one /64) on the public and admin listeners; peers in
	// TrustedProxies are exempt. The address is the TCP peer's. Over the
	// limit a connection is closed at once. 0: no limit.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" env:"MAX_CONNECTIONS_PER_IP"`
	// MaxConnections bounds the public listener's open connections, from
	// everyone; over it a connection is closed at once. 0: no limit (the
	// process's file-descriptor limit is then the bound).
	MaxConnections int `yaml:"max_connections" env:"MAX_CONNECTIONS"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// in-flight requests; those still running then are cancelled, and
	// still metered (see server.Server.Shutdown).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT"`
	// Upgrades are the protocols a client may upgrade a connection to
	// through the gateway (the Upgrade header, RFC 9110 section 7.8).
	// Another upgrade is forwarded as a plain request. Default
	// [websocket]; h2c is never allowed.
	Upgrades []string `yaml:"upgrades" env:"UPGRADES"`
}

// TLS names the certificate and key files of the public listener.
type TLS struct {
	CertFile string `yaml:"cert_file" env:"CERT_FILE"`
	KeyFile  string `yaml:"key_file" env:"KEY_FILE"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version" env:"MIN_VERSION"`
}

// Admin configures the operator's listener: the admin API.
type Admin struct {
	// Listen is the host:port of the admin listener; "" disables it. Keep it
	// on a private interface.
	Listen string `yaml:"listen" env:"LISTEN"`
	// Token is the bearer token of the admin API. Prefer the environment
	// (TOLLGATE_ADMIN_TOKEN) or TokenSHA256 to a token written in a file.
	Token string `yaml:"token" env:"TOKEN"`
	// TokenSHA256 is the hex SHA-256 of the admin token, for configuration
	// files that must not hold the token itself.
	TokenSHA256 string `yaml:"token_sha256" env:"TOKEN_SHA256"`
	// Pprof serves Go's runtime profiles under /admin/debug/pprof/, behind
	// the admin token, for profiling a node under real load.
	Pprof bool `yaml:"pprof" env:"PPROF"`
}

// Storage chooses the durable store.
type Storage struct {
	// Type is "sqlite" (the embedded default) or "postgres" (cluster mode:
	// every node points at the same database).
	Type     string   `yaml:"type" env:"TYPE"`
	SQLite   SQLite   `yaml:"sqlite" envPrefix:"SQLITE_"`
	Postgres Postgres `yaml:"postgres" envPrefix:"POSTGRES_"`
}

// Postgres configures the PostgreSQL store.
type Postgres struct {
	// URL is the connection URL, postgres://user:password@host:5432/db
	// ?sslmode=verify-full; pool settings go in its query (pool_max_conns).
	// Prefer the environment (TOLLGATE_STORAGE_POSTGRES_URL) for a URL
	// with a password.
	URL string `yaml:"url" env:"URL"`
	// Schema, when set, is the schema Tollgate's tables live in (created
	// if missing); default: the connection's search_path.
	Schema string `yaml:"schema" env:"SCHEMA"`
}

// Counters chooses the hot-counter store.
type Counters struct {
	// Type is "memory" (default: one node) or "redis" (every node shares
	// the same counters; required for exact limits across nodes).
	Type  string `yaml:"type" env:"TYPE"`
	Redis Redis  `yaml:"redis" envPrefix:"REDIS_"`
	// FailureMode says what a request gets while Redis is unreachable:
	// "closed" (default) refuses it with 503 SERVICE_UNAVAILABLE;
	// "open" decides it with this node's own in-memory limits until Redis
	// is back. Either way the outage is logged, shown by /readyz and
	// counted in tollgate_counters_fallback_total.
	FailureMode string `yaml:"failure_mode" env:"FAILURE_MODE"`
}

// Redis configures the Redis counters.
type Redis struct {
	// URL is redis://[user:password@]host:6379/0 or rediss:// for TLS.
	// With Cluster, list the other seed nodes as addr parameters:
	// redis://host1:6379?addr=host2:6379&addr=host3:6379.
	URL string `yaml:"url" env:"URL"`
	// Cluster connects to a Redis Cluster. Every key of one organization
	// carries its ID as a hash tag, so each decision stays one script on
	// one shard.
	Cluster bool `yaml:"cluster" env:"CLUSTER"`
	// Prefix starts every key Tollgate writes (default "tollgate:"), so
	// that several deployments can share one Redis.
	Prefix string `yaml:"prefix" env:"PREFIX"`
}

// AuthService configures the auth & billing service's decision API.
type AuthService struct {
	// Listen is the host:port of the decision API (roles auth and all):
	// HTTP forward-auth for nginx, Traefik and Caddy, and the decision
	// endpoint gateway-role nodes call. "" disables it. Keep it on a
	// private network.
	Listen string `yaml:"listen" env:"LISTEN"`
	// GRPCListen is the host:port of the Envoy ext_authz v3 gRPC service;
	// "" disables it.
	GRPCListen string `yaml:"grpc_listen" env:"GRPC_LISTEN"`
	// Token is the shared secret callers of the decision API present
	// (Authorization: Bearer, or gRPC metadata authorization). Prefer the
	// environment (TOLLGATE_AUTH_SERVICE_TOKEN) or TokenSHA256. Empty: the
	// API trusts its network (a warning is logged).
	Token string `yaml:"token" env:"TOKEN"`
	// TokenSHA256 is the hex SHA-256 of Token, for the auth side's files.
	TokenSHA256 string `yaml:"token_sha256" env:"TOKEN_SHA256"`
	// URL is the decision API a gateway-role node asks, e.g.
	// http://auth.internal:8090.
	URL string `yaml:"url" env:"URL"`
	// Timeout bounds one decision round trip of a gateway-role node.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT"`
	// DecisionCacheTTL is how long a gateway-role node reuses a decision
	// that no counter takes part in (an unlimited plan, a public route, a
	// refusal for scope or IP); decisions that consume a rate or quota are
	// never cached. 0 disables the cache.
	DecisionCacheTTL time.Duration `yaml:"decision_cache_ttl" env:"DECISION_CACHE_TTL"`
	// DecisionCacheSize bounds the cached decisions.
	DecisionCacheSize int `yaml:"decision_cache_size" env:"DECISION_CACHE_SIZE"`
	// MaxConnectionsPerIP bounds the connections open from one peer
	// address (IPv6: one /64) on the decision API's listeners, HTTP and
	// gRPC; peers in server.trusted_proxies are exempt. 0 (default): no
	// limit, since every caller of the decision API is a proxy (nginx,
	// Envoy, gateway-role nodes) carrying many clients' requests.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" env:"MAX_CONNECTIONS_PER_IP"`
}

// SQLite configures the embedded store.
type SQLite struct {
	// Path of the database file; its directory is created if missing.
	Path string `yaml:"path" env:"PATH"`
}

// Secrets configures encryption at rest of the secrets Tollgate must read
// back (token signing keys, later HMAC and webhook secrets).
type Secrets struct {
	// MasterKey is a 32-byte key, base64 or hex. Prefer the environment
	// (TOLLGATE_SECRETS_MASTER_KEY).
	MasterKey string `yaml:"master_key" env:"MASTER_KEY"`
	// MasterKeyFile holds the master key. Outside development mode one of
	// MasterKey and MasterKeyFile is required; `serve --dev` creates
	// master.key next to the SQLite database.
	MasterKeyFile string `yaml:"master_key_file" env:"MASTER_KEY_FILE"`
	// PreviousMasterKeys are former master keys, base64 or hex: values they
	// sealed still open, and are sealed again under MasterKey by
	// `tollgate secrets reseal`. Keep them until the reseal has run.
	PreviousMasterKeys []string `yaml:"previous_master_keys" env:"PREVIOUS_MASTER_KEYS"`
}

// Auth configures dashboard sessions, login protection and the API key cache.
type Auth struct {
	// Issuer is the "iss" of tokens Tollgate signs. Default: Server.PublicURL.
	Issuer string `yaml:"issuer" env:"ISSUER"`
	// SessionTTL is the lifetime of a dashboard access token.
	SessionTTL time.Duration `yaml:"session_ttl" env:"SESSION_TTL"`
	// RefreshTTL is the lifetime of a refresh token.
	RefreshTTL time.Duration `yaml:"refresh_ttl" env:"REFRESH_TTL"`
	// APIKeyCacheTTL is how long a verified API key is trusted from memory
	// before it is read again. Revocations through the API or the dashboard
	// take effect at once on this node regardless.
	APIKeyCacheTTL time.Duration `yaml:"apikey_cache_ttl" env:"APIKEY_CACHE_TTL"`
	// APIKeyCacheSize bounds the number of cached API keys.
	APIKeyCacheSize int `yaml:"apikey_cache_size" env:"APIKEY_CACHE_SIZE"`
	// Audience is the "aud" of OAuth 2.0 access tokens, the identifier of
	// the API they grant access to. Default: Server.PublicURL.
	Audience string `yaml:"audience" env:"AUDIENCE"`
	// AccessTokenTTL is the lifetime of an OAuth 2.0 access token.
	AccessTokenTTL time.Duration `yaml:"access_token_ttl" env:"ACCESS_TOKEN_TTL"`
	// Leeway is the clock skew tolerated when checking a token's exp, nbf
	// and iat.
	Leeway time.Duration `yaml:"leeway" env:"LEEWAY"`
	// TokenCacheTTL is how long a verified access token is trusted from
	// memory before its app and revocation are read again. Revocations and
	// app changes made through this node take effect at once regardless.
	TokenCacheTTL time.Duration `yaml:"token_cache_ttl" env:"TOKEN_CACHE_TTL"`
	// TokenCacheSize bounds the number of cached access tokens.
	TokenCacheSize int `yaml:"token_cache_size" env:"TOKEN_CACHE_SIZE"`
	// StoreOutageGrace is how long past their cache TTL cached API keys
	// and organization plans keep being used while the store cannot be
	// read (a PostgreSQL outage). New credentials, logins and changes
	// fail with 503 meanwhile. 0: no grace.
	StoreOutageGrace time.Duration `yaml:"store_outage_grace" env:"STORE_OUTAGE_GRACE"`
	// SignatureWindow is how far a signed request's timestamp may be from
	// the server's clock, either way (5 minutes by default).
	SignatureWindow time.Duration `yaml:"signature_window" env:"SIGNATURE_WINDOW"`
	// SessionCacheTTL is how long this node trusts, from memory, that a
	// dashboard session (a refresh-token family) has not been revoked.
	// Logouts, refresh-token reuse, disabled users and password resets
	// made through any node apply at once regardless (the invalidation
	// bus); the TTL bounds what a lost bus message can delay. 0: the store
	// is read on every request.
	SessionCacheTTL time.Duration `yaml:"session_cache_ttl" env:"SESSION_CACHE_TTL"`
	// RefreshReuseGrace is how long after a refresh token was rotated the
	// same client (same address and User-Agent) may present it again and
	// get a new token of the same session, as two browser tabs refreshing
	// at once do, instead of the session being revoked for reuse. 0: no
	// grace.
	RefreshReuseGrace time.Duration `yaml:"refresh_reuse_grace" env:"REFRESH_REUSE_GRACE"`
	// ReplayMaxPerCredential bounds the entries one credential (an API key,
	// a wallet) holds in the replay cache: its signed requests within twice
	// SignatureWindow, and its SIGN-IN-WITH-X proofs within their lifetime.
	// Past it, its signed requests get 429 RATE_LIMITED (reason
	// replay_cache_full) until its oldest entry expires; other credentials
	// are not affected. The default, 60000, is 100 signed requests a second
	// with the default window.
	ReplayMaxPerCredential int `yaml:"replay_max_per_credential" env:"REPLAY_MAX_PER_CREDENTIAL"`
	// Login slows down the guessing of passwords, OAuth client secrets and
	// the admin token (see Login).
	Login Login `yaml:"login" envPrefix:"LOGIN_"`
	// Bans configures the automatic temporary bans of client addresses
	// that keep presenting bad credentials to the gateway.
	Bans Bans `yaml:"bans" envPrefix:"BANS_"`
	// WebSocket bounds the WebSocket (upgraded) sessions a credential may
	// hold open through the gateway.
	WebSocket WebSocket `yaml:"websocket" envPrefix:"WEBSOCKET_"`
}

// WebSocket configures the sessions of upgraded connections (WebSocket)
// proxied by the gateway: how many one credential (an API key, an OAuth
// client, a wallet) may hold open at once across every node sharing the
// counters. A session is closed when its credential is revoked, expires or
// is banned, or its organization is disabled or banned.
type WebSocket struct {
	// MaxSessionsPerCredential is the cap; past it an upgrade is refused
	// with 429 RATE_LIMITED, reason too_many_sessions. 0: no cap.
	MaxSessionsPerCredential int `yaml:"max_sessions_per_credential" env:"MAX_SESSIONS_PER_CREDENTIAL"`
	// SessionLease is how long a session's slot in the shared counters
	// outlives the node that holds it: nodes renew their slots every third
	// of it, so the slots of a node that dies free themselves within it.
	// Between 3s and 10m.
	SessionLease time.Duration `yaml:"session_lease" env:"SESSION_LEASE"`
}

// Bans configures automatic bans: MaxFailures failed authentications (an
// invalid key, signature or token) from one address within Window ban it
// for Duration, on every node sharing the counters. The admin API bans
// addresses, credentials and organizations by hand.
type Bans struct {
	// MaxFailures is the threshold; 0 disables automatic bans.
	MaxFailures int           `yaml:"max_failures" env:"MAX_FAILURES"`
	Window      time.Duration `yaml:"window" env:"WINDOW"`
	Duration    time.Duration `yaml:"duration" env:"DURATION"`
}

// Login slows down the guessing of credentials at the control plane: the
// passwords of dashboard and API logins, OAuth client secrets at the token,
// revocation and introspection endpoints, and the admin token. Failures are
// counted per client address (an IPv6 client by its /64) and per address
// and account (or client ID), never per account alone, so that failures
// from other addresses never lock the rightful owner out. Past the free
// failures of a count, each further failure delays that address's next
// attempt by BackoffBase, doubling up to BackoffMax; attempts during the
// delay are answered 429 with Retry-After. Passwords are checked against
// the delay before they are verified; a high-entropy secret (client secret,
// admin token) is verified first and, when right, always admitted.
// Failures are forgotten Window after the later of the latest failure and
// the end of its delay. Login also bounds sign-ups.
type Login struct {
	// MaxFailuresPerIP is the number of failures one client address may
	// make, whatever the account, before its attempts are delayed.
	MaxFailuresPerIP int `yaml:"max_failures_per_ip" env:"MAX_FAILURES_PER_IP"`
	// MaxFailuresPerIPAccount is the number of failures one client address
	// may make for one account (or client ID) before its attempts on it are
	// delayed.
	MaxFailuresPerIPAccount int `yaml:"max_failures_per_ip_account" env:"MAX_FAILURES_PER_IP_ACCOUNT"`
	// MaxFailuresPerAccount is the former name of MaxFailuresPerIPAccount:
	// when set (positive) it is read as MaxFailuresPerIPAccount. Failures
	// are no longer counted per account alone. 0: unset.
	MaxFailuresPerAccount int `yaml:"max_failures_per_account" env:"MAX_FAILURES_PER_ACCOUNT"`
	// Window is the quiet time after which failures are forgotten, counted
	// from the later of the latest failure and the end of its delay; it is
	// also the period of MaxRegistrationsPerIP.
	Window time.Duration `yaml:"window" env:"WINDOW"`
	// BackoffBase is the first delay past the free failures; each further
	// failure doubles it.
	BackoffBase time.Duration `yaml:"backoff_base" env:"BACKOFF_BASE"`
	// BackoffMax is the longest delay.
	BackoffMax time.Duration `yaml:"backoff_max" env:"BACKOFF_MAX"`
	// MaxRegistrationsPerIP bounds sign-ups from one client IP per Window.
	MaxRegistrationsPerIP int `yaml:"max_registrations_per_ip" env:"MAX_REGISTRATIONS_PER_IP"`
}

// Route sends requests whose path starts with Path to Upstream.
type Route struct {
	// Path is a prefix: "/v1/" matches /v1/anything. The longest matching
	// prefix wins.
	Path string `yaml:"path" env:"PATH"`
	// Upstream is the backend's base URL (http or https).
	Upstream string `yaml:"upstream" env:"UPSTREAM"`
	// Units is what one request costs against the quota. Default 1.
	Units *int64 `yaml:"units" env:"UNITS"`
	// Host, when set, restricts the route to requests for that host.
	Host string `yaml:"host" env:"HOST"`
	// Methods, when set, restricts the route to these HTTP methods.
	Methods []string `yaml:"methods" env:"METHODS"`
	// Scopes are required of the credential, all of them.
	Scopes []string `yaml:"scopes" env:"SCOPES"`
	// Public routes need no credentials.
	Public bool `yaml:"public" env:"PUBLIC"`
	// StripPrefix removes Path from the request path before forwarding.
	StripPrefix bool `yaml:"strip_prefix" env:"STRIP_PREFIX"`
	// Timeout bounds the wait for the upstream's response headers; 0: none.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT"`
	// WebSocketUnitsPerMB is charged, when a WebSocket session on the route
	// ends, for every started megabyte (10^6 bytes) it carried in either
	// direction; Units is charged once, at the handshake. 0: bytes are free.
	WebSocketUnitsPerMB int64 `yaml:"websocket_units_per_mb" env:"WEBSOCKET_UNITS_PER_MB"`
	// SignResponse signs this route's responses, the gateway's errors
	// included (see ResponseSigning).
	SignResponse bool `yaml:"sign_response" env:"SIGN_RESPONSE"`
}

// UnitCost returns the route's units, 1 when unset.
func (r Route) UnitCost() int64 {
	if r.Units == nil {
		return 1
	}
	return *r.Units
}

// Plan is a named allowance of requests and units.
type Plan struct {
	Name  string    `yaml:"name" env:"NAME"`
	Rate  PlanRate  `yaml:"rate" envPrefix:"RATE_"`
	Quota PlanQuota `yaml:"quota" envPrefix:"QUOTA_"`
}

// PlanRate is a token bucket: a sustained rate and a burst. Zero: unlimited.
type PlanRate struct {
	RequestsPerSecond float64 `yaml:"requests_per_second" env:"REQUESTS_PER_SECOND"`
	Burst             int     `yaml:"burst" env:"BURST"`
}

// PlanQuota is a number of units per calendar period (UTC). Zero units:
// unlimited.
type PlanQuota struct {
	Units  int64  `yaml:"units" env:"UNITS"`
	Period string `yaml:"period" env:"PERIOD"` // hour, day or month
}

// Usage configures metering: the request log, the usage rollups and the
// durable copy of quota counts.
type Usage struct {
	// Buffer bounds the usage events waiting to be written to the store.
	// Past half of it the request log is sampled, never waited for: the
	// events it leaves out are counted in the rollups' totals (metric
	// tollgate_usage_events_omitted_total and a log line); see package
	// usage.
	Buffer int `yaml:"buffer" env:"BUFFER"`
	// BatchSize is the most events written in one transaction.
	BatchSize int `yaml:"batch_size" env:"BATCH_SIZE"`
	// FlushInterval is the longest an event waits before it is written,
	// and how often the totals of events left out of a sampled request log
	// are written.
	FlushInterval time.Duration `yaml:"flush_interval" env:"FLUSH_INTERVAL"`
	// RequestLogRetention is how long request-log entries are kept.
	RequestLogRetention time.Duration `yaml:"request_log_retention" env:"REQUEST_LOG_RETENTION"`
	// HourlyRetention is how long hourly rollups are kept; daily and
	// monthly ones are kept for good.
	HourlyRetention time.Duration `yaml:"hourly_retention" env:"HOURLY_RETENTION"`
	// QuotaFlushInterval is how often quota counts are copied to the store.
	// After a crash, at most the units admitted within one interval are
	// missing from the count; a graceful shutdown loses none.
	QuotaFlushInterval time.Duration `yaml:"quota_flush_interval" env:"QUOTA_FLUSH_INTERVAL"`
	// RetryFor is how long a batch of usage events the store refuses is
	// retried (the queue meanwhile holds up to Buffer events) before it is
	// given up and counted in tollgate_usage_events_failed_total.
	RetryFor time.Duration `yaml:"retry_for" env:"RETRY_FOR"`
}

// X402 configures wallet subscriptions: plans sold for x402 payments, and
// sign-in with the paying wallet (SIWX). When enabled, a request
// without a valid credential on a route that needs one gets 402 Payment
// Required with the payment requirements, instead of 401.
type X402 struct {
	Enabled bool `yaml:"enabled" env:"ENABLED"`
	// Network is the CAIP-2 chain payments are made on, e.g. "eip155:8453"
	// (Base) or "eip155:84532" (Base Sepolia).
	Network string `yaml:"network" env:"NETWORK"`
	// Asset is the address of the EIP-3009 token paid with (USDC).
	Asset string `yaml:"asset" env:"ASSET"`
	// AssetName and AssetVersion are the token's EIP-712 domain name and
	// version, which payers sign under ("USD Coin" and "2" for USDC on
	// Base; "USDC" and "2" on Base Sepolia).
	AssetName    string `yaml:"asset_name" env:"ASSET_NAME"`
	AssetVersion string `yaml:"asset_version" env:"ASSET_VERSION"`
	// PayTo is the address that receives payments.
	PayTo string `yaml:"pay_to" env:"PAY_TO"`
	// MaxTimeout is the longest a payment authorization may take to settle
	// (maxTimeoutSeconds of the requirements).
	MaxTimeout time.Duration `yaml:"max_timeout" env:"MAX_TIMEOUT"`
	// Facilitator verifies and settles payments.
	Facilitator Facilitator `yaml:"facilitator" envPrefix:"FACILITATOR_"`
	// Offers are the subscriptions for sale.
	Offers []Offer `yaml:"offers" envPrefix:"OFFERS"`
	// SIWX configures wallet sign-in.
	SIWX SIWX `yaml:"siwx" envPrefix:"SIWX_"`
}

// Facilitator is the x402 facilitator payments go through.
type Facilitator struct {
	// URL is the facilitator's base URL (it serves /verify, /settle and
	// /supported), or "local": Tollgate's built-in facilitator, which
	// verifies EIP-3009 signatures offline and records settlements WITHOUT
	// moving funds. For development and tests only.
	URL string `yaml:"url" env:"URL"`
	// AuthHeader is sent with every call, as "Name: value" (for example
	// "Authorization: Bearer …"). A secret: set it from the environment.
	AuthHeader string `yaml:"auth_header" env:"AUTH_HEADER"`
	// Timeout bounds each call.
	Timeout time.Duration `yaml:"timeout" env:"TIMEOUT"`
}

// FacilitatorLocal is Facilitator.URL's value for the built-in facilitator.
const FacilitatorLocal = "local"

// Offer sells a plan for a price and a duration.
type Offer struct {
	// Plan is one of the configured plans; it names the offer too.
	Plan string `yaml:"plan" env:"PLAN"`
	// Price is in the asset's atomic units, as a decimal integer
	// ("1000000" is 1 USDC, which has 6 decimals).
	Price string `yaml:"price" env:"PRICE"`
	// Duration is added to the wallet's subscription per purchase.
	Duration    time.Duration `yaml:"duration" env:"DURATION"`
	Description string        `yaml:"description" env:"DESCRIPTION"`
}

// SIWX configures sign-in with a wallet: Authorization: SIWX
// base64(message).signature, an EIP-4361 message (or its Solana
// counterpart) signed by the subscribed wallet.
type SIWX struct {
	// Domain is what messages must name as their domain (host[:port]).
	// Default: the host of server.public_url.
	Domain string `yaml:"domain" env:"DOMAIN"`
	// URI is the origin messages' URI must start with. Default:
	// server.public_url.
	URI string `yaml:"uri" env:"URI"`
	// Chains are the CAIP-2 chains wallets may sign in on. Default: the
	// payment network.
	Chains []string `yaml:"chains" env:"CHAINS"`
	// MaxLifetime bounds Expiration Time - Issued At of a message.
	MaxLifetime time.Duration `yaml:"max_lifetime" env:"MAX_LIFETIME"`
	// CacheSize bounds the number of verified tokens kept in memory.
	CacheSize int `yaml:"cache_size" env:"CACHE_SIZE"`
}

// Log configures Tollgate's own logs (JSON lines on standard error).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level" env:"LEVEL"`
	// Format is json (default) or text.
	Format string `yaml:"format" env:"FORMAT"`
	// AccessLog writes one line per request.
	AccessLog bool `yaml:"access_log" env:"ACCESS_LOG"`
}

// Default returns the configuration used for every setting a file leaves out.
func Default() Config {
	return Config{
		Server: Server{
			Listen:            "127.0.0.1:8080",
			TLS:               TLS{MinVersion: "1.2"},
			HSTSMaxAge:        365 * 24 * time.Hour,
			MaxBodyBytes:      10 << 20,
			MaxAPIBodyBytes:   64 << 10,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   30 * time.Second,
			Upgrades:          []string{"websocket"},
			// Apache's mod_reqtimeout default: body=20,MinRate=500.
			BodyTimeout:         20 * time.Second,
			MinBodyRate:         500,
			SendTimeout:         60 * time.Second,
			MaxConnectionsPerIP: 256,
		},
		Storage:  Storage{Type: "sqlite", SQLite: SQLite{Path: "./tollgate.db"}},
		Counters: Counters{Type: "memory", FailureMode: "closed", Redis: Redis{Prefix: "tollgate:"}},
		Role:     "all",
		AuthService: AuthService{
			Timeout: 2 * time.Second, DecisionCacheTTL: time.Second, DecisionCacheSize: 100_000,
		},
		Auth: Auth{
			SessionTTL:       15 * time.Minute,
			RefreshTTL:       30 * 24 * time.Hour,
			APIKeyCacheTTL:   30 * time.Second,
			APIKeyCacheSize:  100_000,
			AccessTokenTTL:   24 * time.Hour,
			Leeway:           30 * time.Second,
			TokenCacheTTL:    30 * time.Second,
			TokenCacheSize:   100_000,
			SignatureWindow:  5 * time.Minute,
			StoreOutageGrace: 5 * time.Minute,
			Bans:             Bans{MaxFailures: 100, Window: time.Minute, Duration: 15 * time.Minute},
			WebSocket:        WebSocket{MaxSessionsPerCredential: 100, SessionLease: 30 * time.Second},
			Login: Login{
				MaxFailuresPerIP:        20,
				MaxFailuresPerIPAccount: 5,
				Window:                  15 * time.Minute,
				BackoffBase:             time.Second,
				BackoffMax:              15 * time.Minute,
				MaxRegistrationsPerIP:   10,
			},
			SessionCacheTTL:   30 * time.Second,
			RefreshReuseGrace: 5 * time.Second,
			// 100 signed requests a second over 2×SignatureWindow.
			ReplayMaxPerCredential: 60_000,
		},
		Usage: Usage{
			Buffer:              65536,
			BatchSize:           1000,
			FlushInterval:       time.Second,
			RequestLogRetention: 30 * 24 * time.Hour,
			HourlyRetention:     90 * 24 * time.Hour,
			QuotaFlushInterval:  time.Second,
			RetryFor:            10 * time.Minute,
		},
		X402: X402{
			MaxTimeout:  time.Minute,
			Facilitator: Facilitator{Timeout: 10 * time.Second},
			SIWX:        SIWX{MaxLifetime: 24 * time.Hour, CacheSize: 100_000},
		},
		ResponseSigning: ResponseSigning{MaxBodyBytes: 1 << 20, RetiredKeyGrace: 7 * 24 * time.Hour},
		Webhooks: Webhooks{
			AttemptTimeout: 15 * time.Second, DisableAfter: 72 * time.Hour, SecretGrace: 24 * time.Hour,
			Retention: 30 * 24 * time.Hour, Workers: 8,
		},
		Log: Log{Level: "info", Format: "json", AccessLog: true},
	}
}

// ResponseSigning configures response signatures: X-Signature, the base64
// DER ECDSA secp256k1 signature of the SHA-256 of the body sent, and
// X-Signature-Key-Id; the public keys are published at
// /.well-known/response-signing-key.
type ResponseSigning struct {
	// All signs every response of the public listener; otherwise only the
	// routes with sign_response: true are signed.
	All bool `yaml:"all" env:"ALL"`
	// MaxBodyBytes is the largest body buffered to be signed; larger ones
	// stream through unsigned, with X-Signature-Status saying so.
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"MAX_BODY_BYTES"`
	// RetiredKeyGrace is how long a key retired by a rotation stays
	// published, for clients verifying responses it signed.
	RetiredKeyGrace time.Duration `yaml:"retired_key_grace" env:"RETIRED_KEY_GRACE"`
}

// Webhooks configures the delivery of webhook events.
type Webhooks struct {
	// AllowPrivateNetworks lets endpoints resolve to loopback, private,
	// link-local and other non-public addresses. For development and
	// tests: it opens the gateway's network to whoever may create a
	// webhook.
	AllowPrivateNetworks bool `yaml:"allow_private_networks" env:"ALLOW_PRIVATE_NETWORKS"`
	// AllowedCIDRs are non-public ranges endpoints may nevertheless use
	// (an internal receiver's subnet, say).
	AllowedCIDRs []string `yaml:"allowed_cidrs" env:"ALLOWED_CIDRS"`
	// AllowHTTP lets endpoints use plain http:// URLs. Development only.
	AllowHTTP bool `yaml:"allow_http" env:"ALLOW_HTTP"`
	// AttemptTimeout bounds each delivery attempt.
	AttemptTimeout time.Duration `yaml:"attempt_timeout" env:"ATTEMPT_TIMEOUT"`
	// DisableAfter is how long an endpoint must have been failing,
	// continuously (no successful attempt, and failed attempts spread over
	// the whole time), before it is disabled. 0: never disable endpoints.
	DisableAfter time.Duration `yaml:"disable_after" env:"DISABLE_AFTER"`
	// MaxFailures is deprecated and ignored: endpoints are disabled by
	// DisableAfter, how long they have been failing, not by a count of
	// failed attempts. It is still read, so that older files load, and
	// reported by Warnings.
	MaxFailures int `yaml:"max_failures" env:"MAX_FAILURES"`
	// SecretGrace is how long a rotated-out secret keeps signing.
	SecretGrace time.Duration `yaml:"secret_grace" env:"SECRET_GRACE"`
	// Retention is how long finished deliveries stay in the log.
	Retention time.Duration `yaml:"retention" env:"RETENTION"`
	// Workers is the number of deliveries sent at once by each node.
	Workers int `yaml:"workers" env:"WORKERS"`
}

// Load reads the YAML file at path (unknown keys are errors), applies the
// environment and validates the result. environ is os.Environ() in production.
func Load(path string, environ []string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Default()
	if err := decodeYAML(bytes.NewReader(data), &cfg); err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	return finish(cfg, environ)
}

// Parse is Load for configuration already in memory.
func Parse(data []byte, environ []string) (Config, error) {
	cfg := Default()
	if err := decodeYAML(bytes.NewReader(data), &cfg); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return finish(cfg, environ)
}

func decodeYAML(r io.Reader, cfg *Config) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func finish(cfg Config, environ []string) (Config, error) {
	if err := ApplyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	cfg.fillDerived()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ApplyEnv overrides cfg with the TOLLGATE_ variables found in environ
// ("KEY=value" strings).
func ApplyEnv(cfg *Config, environ []string) error {
	err := env.ParseWithOptions(cfg, env.Options{
		Prefix:      EnvPrefix,
		Environment: env.ToMap(environ),
	})
	if err != nil {
		return fmt.Errorf("config: environment: %w", err)
	}
	return nil
}

// fillDerived sets the defaults that depend on other settings.
func (c *Config) fillDerived() {
	if c.Server.PublicURL == "" {
		scheme := "https"
		if c.Server.InsecureHTTP {
			scheme = "http"
		}
		c.Server.PublicURL = scheme + "://" + c.Server.Listen
		c.Derived.PublicURL = true
	}
	if c.Auth.Issuer == "" {
		c.Auth.Issuer = c.Server.PublicURL
		c.Derived.Issuer = true
	}
	if c.Auth.Audience == "" {
		c.Auth.Audience = c.Server.PublicURL
		c.Derived.Audience = true
	}
	if x := &c.X402.SIWX; c.X402.Enabled {
		if u, err := url.Parse(c.Server.PublicURL); x.Domain == "" && err == nil {
			x.Domain = u.Host
		}
		if x.URI == "" {
			x.URI = c.Server.PublicURL
		}
		if len(x.Chains) == 0 && c.X402.Network != "" {
			x.Chains = []string{c.X402.Network}
		}
	}
	if c.Server.TLS.MinVersion == "" {
		c.Server.TLS.MinVersion = "1.2"
	}
	c.fillDashboard()
	if l := &c.Auth.Login; l.MaxFailuresPerAccount > 0 {
		l.MaxFailuresPerIPAccount = l.MaxFailuresPerAccount
	}
}
