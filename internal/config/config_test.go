package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// The configuration given in the foundation issue must be accepted as written.
func TestLoadIssueExample(t *testing.T) {
	cfg, err := Load("testdata/issue2.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Server.InsecureHTTP = true
	want.Server.PublicURL = "http://127.0.0.1:8080"
	want.Auth.Issuer = "http://127.0.0.1:8080"
	want.Auth.Audience = "http://127.0.0.1:8080"
	want.Derived = Derived{PublicURL: true, Issuer: true, Audience: true}
	want.Routes = []Route{{Path: "/v1/", Upstream: "http://127.0.0.1:9000", Units: ptr[int64](1)}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Server.HSTSMaxAge; got != 720*time.Hour {
		t.Errorf("hsts_max_age = %v", got)
	}
	// max_failures_per_account, the former name, is read as
	// max_failures_per_ip_account.
	if got := cfg.Auth.Login; got.MaxFailuresPerIPAccount != 3 || got.MaxFailuresPerIP != 20 || got.Window != 30*time.Minute ||
		got.BackoffBase != time.Second || got.BackoffMax != 15*time.Minute {
		t.Errorf("login = %+v (defaults must survive a partial section)", got)
	}
	if got := cfg.Routes[2].UnitCost(); got != 0 {
		t.Errorf("explicit units: 0 = %d", got)
	}
	if got := cfg.Routes[1].UnitCost(); got != 1 {
		t.Errorf("default units = %d", got)
	}
	if cfg.Plans[0].Quota.Units != 10000 || cfg.Plans[0].Rate.Burst != 10 || cfg.DefaultPlan != "free" {
		t.Errorf("plans = %+v", cfg.Plans)
	}
	if cfg.Log.AccessLog {
		t.Error("access_log: false ignored")
	}
	if cfg.Auth.Issuer != "https://auth.example.com/" {
		t.Errorf("issuer = %q", cfg.Auth.Issuer)
	}
}

func TestEnvOverrides(t *testing.T) {
	environ := []string{
		"TOLLGATE_SERVER_LISTEN=0.0.0.0:9999",
		"TOLLGATE_STORAGE_SQLITE_PATH=/tmp/x.db",
		"TOLLGATE_SERVER_TRUSTED_PROXIES=10.0.0.0/8,192.168.1.1",
		"TOLLGATE_ROUTES_0_UPSTREAM=http://10.1.1.1:9000",
		"TOLLGATE_ROUTES_1_PATH=/v2/",
		"TOLLGATE_ROUTES_1_UPSTREAM=http://10.1.1.2:9000",
		"TOLLGATE_ROUTES_1_UNITS=5",
		"TOLLGATE_AUTH_SESSION_TTL=5m",
		"TOLLGATE_AUTH_LOGIN_WINDOW=1h",
		"TOLLGATE_AUTH_LOGIN_MAX_FAILURES_PER_IP_ACCOUNT=7",
		"TOLLGATE_AUTH_LOGIN_BACKOFF_MAX=1h",
		"TOLLGATE_AUTH_SESSION_CACHE_TTL=10s",
		"TOLLGATE_AUTH_REFRESH_REUSE_GRACE=0s",
		"TOLLGATE_ADMIN_TOKEN=0123456789abcdef0123456789abcdef",
		"UNRELATED=1",
	}
	cfg, err := Load("testdata/issue2.yaml", environ)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Server.Listen, "0.0.0.0:9999"},
		{"sqlite path", cfg.Storage.SQLite.Path, "/tmp/x.db"},
		{"trusted proxies", strings.Join(cfg.Server.TrustedProxies, " "), "10.0.0.0/8 192.168.1.1"},
		{"route 0 upstream", cfg.Routes[0].Upstream, "http://10.1.1.1:9000"},
		{"route 0 path kept", cfg.Routes[0].Path, "/v1/"},
		{"route 1 added", cfg.Routes[1].Path, "/v2/"},
		{"route 1 units", cfg.Routes[1].UnitCost(), int64(5)},
		{"session ttl", cfg.Auth.SessionTTL, 5 * time.Minute},
		{"login window", cfg.Auth.Login.Window, time.Hour},
		{"login per ip and account", cfg.Auth.Login.MaxFailuresPerIPAccount, 7},
		{"login backoff max", cfg.Auth.Login.BackoffMax, time.Hour},
		{"session cache ttl", cfg.Auth.SessionCacheTTL, 10 * time.Second},
		{"refresh reuse grace", cfg.Auth.RefreshReuseGrace, 0 * time.Second},
		{"admin token", cfg.Admin.Token, "0123456789abcdef0123456789abcdef"},
		{"public url follows listen", cfg.Server.PublicURL, "http://0.0.0.0:9999"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	base := "server: {listen: 127.0.0.1:8080, insecure_http: true}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", base + "routes: [{path: /v1/, upstream: http://a, unit: 1}]", "field unit not found"},
		{"no tls", "server: {listen: 127.0.0.1:8080}", "no TLS configured"},
		{"cert without key", "server: {listen: 127.0.0.1:8080, tls: {cert_file: a}}", "cert_file and key_file go together"},
		{"bad tls version", "server: {listen: 127.0.0.1:8080, tls: {cert_file: a, key_file: b, min_version: '1.1'}}", "must be 1.2 or 1.3"},
		{"reserved route", base + "routes: [{path: /api/v1/, upstream: http://a}]", "reserved"},
		{"relative route", base + "routes: [{path: v1/, upstream: http://a}]", "must start with /"},
		{"bad upstream", base + "routes: [{path: /v1/, upstream: 'ftp://a'}]", "absolute http(s) URL"},
		{"missing upstream", base + "routes: [{path: /v1/}]", "upstream is required"},
		{"negative units", base + "routes: [{path: /v1/, upstream: http://a, units: -1}]", "between 0 and 1000000"},
		{"bad scope", base + "routes: [{path: /v1/, upstream: http://a, scopes: ['Bad Scope']}]", "not a valid scope"},
		{"duplicate route", base + "routes: [{path: /v1/, upstream: http://a}, {path: /v1/, upstream: http://b}]", "duplicate"},
		{"bad proxy", "server: {listen: 127.0.0.1:8080, insecure_http: true, trusted_proxies: [nope]}", "not an IP address"},
		{"proxy host bits", "server: {listen: 127.0.0.1:8080, insecure_http: true, trusted_proxies: [10.0.0.1/8]}", "did you mean 10.0.0.0/8"},
		{"bad storage", base + "storage: {type: mongo}", "supported types are: sqlite, postgres"},
		{"postgres without url", base + "storage: {type: postgres}", "storage.postgres.url"},
		{"bad postgres schema", base + "storage: {type: postgres, postgres: {url: 'postgres://h/db', schema: 'A;drop'}}", "storage.postgres.schema"},
		{"bad counters", base + "counters: {type: memcached}", "supported types are: memory, redis"},
		{"redis without url", base + "counters: {type: redis}", "counters.redis.url"},
		{"redis prefix braces", base + "counters: {type: redis, redis: {url: 'redis://h:6379', prefix: '{x}'}}", "counters.redis.prefix"},
		{"bad failure mode", base + "counters: {failure_mode: maybe}", "counters.failure_mode"},
		{"bad role", base + "role: edge", "role \"edge\""},
		{"auth role without listener", base + "role: auth", "auth_service.listen"},
		{"gateway role without url", base + "role: gateway", "auth_service.url"},
		{"gateway role signing", base + "role: gateway\nauth_service: {url: 'http://a:1'}\nroutes: [{path: /v1/, upstream: http://a, sign_response: true}]", "do not sign responses"},
		{"short service token", base + "auth_service: {listen: 127.0.0.1:1, token: short}", "auth_service.token"},
		{"bad auth listen", base + "auth_service: {listen: nowhere}", "auth_service.listen"},
		{"bans without window", base + "auth: {bans: {max_failures: 5, window: 0s}}", "auth.bans"},
		{"negative session cap", base + "auth: {websocket: {max_sessions_per_credential: -1}}", "max_sessions_per_credential"},
		{"short session lease", base + "auth: {websocket: {session_lease: 1s}}", "session_lease"},
		{"long session lease", base + "auth: {websocket: {session_lease: 1h}}", "session_lease"},
		{"negative grace", base + "auth: {store_outage_grace: -1s}", "store_outage_grace"},
		{"login limit zero", base + "auth: {login: {max_failures_per_ip_account: 0}}", "auth.login limits"},
		{"login ip limit zero", base + "auth: {login: {max_failures_per_ip: 0}}", "auth.login limits"},
		{"login old name negative", base + "auth: {login: {max_failures_per_account: -1}}", "auth.login limits"},
		{"login window zero", base + "auth: {login: {window: 0s}}", "auth.login.window"},
		{"login window long", base + "auth: {login: {window: 25h}}", "auth.login.window"},
		{"backoff base zero", base + "auth: {login: {backoff_base: 0s}}", "auth.login.backoff_base"},
		{"backoff max below base", base + "auth: {login: {backoff_base: 1m, backoff_max: 30s}}", "auth.login.backoff_base"},
		{"backoff max long", base + "auth: {login: {backoff_max: 48h}}", "auth.login.backoff_base"},
		{"session cache ttl", base + "auth: {session_cache_ttl: 10m}", "auth.session_cache_ttl"},
		{"negative session cache ttl", base + "auth: {session_cache_ttl: -1s}", "auth.session_cache_ttl"},
		{"refresh grace", base + "auth: {refresh_reuse_grace: 2m}", "auth.refresh_reuse_grace"},
		{"negative refresh grace", base + "auth: {refresh_reuse_grace: -1s}", "auth.refresh_reuse_grace"},
		{"no replay share", base + "auth: {replay_max_per_credential: 0}", "auth.replay_max_per_credential"},
		{"huge replay share", base + "auth: {replay_max_per_credential: 20000000}", "auth.replay_max_per_credential"},
		{"unknown default plan", base + "default_plan: gold", "not one of the plans"},
		{"quota without period", base + "plans: [{name: free, quota: {units: 10}}]", "period is required"},
		{"short admin token", base + "admin: {listen: 127.0.0.1:9090, token: short}", "at least 32"},
		{"bad level", base + "log: {level: loud}", "log.level"},
		{"tiny signed body", base + "response_signing: {max_body_bytes: 10}", "response_signing.max_body_bytes"},
		{"short key grace", base + "response_signing: {retired_key_grace: 1m}", "response_signing.retired_key_grace"},
		{"bad webhook cidr", base + "webhooks: {allowed_cidrs: [10.0.0.0]}", "not a CIDR prefix"},
		{"webhook timeout", base + "webhooks: {attempt_timeout: 10m}", "webhooks.attempt_timeout"},
		{"webhook disable_after too short", base + "webhooks: {disable_after: 30m}", "webhooks.disable_after"},
		{"webhook disable_after too long", base + "webhooks: {disable_after: 1000h}", "webhooks.disable_after"},
		{"webhook disable_after negative", base + "webhooks: {disable_after: -1h}", "webhooks.disable_after"},
		{"cluster without public_url", base + "storage: {type: postgres, postgres: {url: 'postgres://h/db'}}", "server.public_url is required with storage.type postgres"},
		{"webhook grace", base + "webhooks: {secret_grace: -1h}", "webhooks.secret_grace"},
		{"webhook retention", base + "webhooks: {retention: 1h}", "webhooks.retention"},
		{"webhook workers", base + "webhooks: {workers: 0}", "webhooks.workers"},
		{"no body timeout", "server: {listen: 127.0.0.1:8080, insecure_http: true, body_timeout: 0s}", "server.body_timeout"},
		{"negative send timeout", "server: {listen: 127.0.0.1:8080, insecure_http: true, send_timeout: -1s}", "server.send_timeout"},
		{"negative body rate", "server: {listen: 127.0.0.1:8080, insecure_http: true, min_body_rate: -1}", "server.min_body_rate"},
		{"negative per-ip limit", "server: {listen: 127.0.0.1:8080, insecure_http: true, max_connections_per_ip: -1}", "max_connections_per_ip"},
		{"negative connection cap", "server: {listen: 127.0.0.1:8080, insecure_http: true, max_connections: -5}", "server.max_connections"},
		{"negative decision api limit", base + "auth_service: {max_connections_per_ip: -1}", "auth_service.max_connections_per_ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// The slow-client defaults (README, Security notes), and their environment
// variables.
func TestSlowClientSettings(t *testing.T) {
	base := "server: {listen: 127.0.0.1:8080, insecure_http: true}\n"
	cfg, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Server
	if s.BodyTimeout != 20*time.Second || s.MinBodyRate != 500 || s.SendTimeout != time.Minute ||
		s.MaxConnectionsPerIP != 256 || s.MaxConnections != 0 || cfg.AuthService.MaxConnectionsPerIP != 0 ||
		s.ReadHeaderTimeout != 10*time.Second {
		t.Errorf("defaults: %+v, auth_service.max_connections_per_ip %d", s, cfg.AuthService.MaxConnectionsPerIP)
	}
	cfg, err = Parse([]byte(base), []string{
		"TOLLGATE_SERVER_BODY_TIMEOUT=5s", "TOLLGATE_SERVER_MIN_BODY_RATE=0", "TOLLGATE_SERVER_SEND_TIMEOUT=30s",
		"TOLLGATE_SERVER_MAX_CONNECTIONS_PER_IP=0", "TOLLGATE_SERVER_MAX_CONNECTIONS=10000",
		"TOLLGATE_AUTH_SERVICE_MAX_CONNECTIONS_PER_IP=64",
	})
	if err != nil {
		t.Fatal(err)
	}
	s = cfg.Server
	if s.BodyTimeout != 5*time.Second || s.MinBodyRate != 0 || s.SendTimeout != 30*time.Second ||
		s.MaxConnectionsPerIP != 0 || s.MaxConnections != 10000 || cfg.AuthService.MaxConnectionsPerIP != 64 {
		t.Errorf("from the environment: %+v, auth_service.max_connections_per_ip %d", s, cfg.AuthService.MaxConnectionsPerIP)
	}
}

func TestBadEnvValue(t *testing.T) {
	_, err := Load("testdata/issue2.yaml", []string{"TOLLGATE_SERVER_SHUTDOWN_TIMEOUT=soon"})
	if err == nil || !strings.Contains(err.Error(), "ShutdownTimeout") {
		t.Fatalf("err = %v", err)
	}
}

func TestDev(t *testing.T) {
	cfg, err := Dev("/tmp/data", "http://127.0.0.1:4567", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Dev || !cfg.Server.InsecureHTTP || cfg.Storage.SQLite.Path != "/tmp/data/tollgate.db" ||
		cfg.Routes[0].Upstream != "http://127.0.0.1:4567" || cfg.Admin.Listen == "" {
		t.Errorf("dev config = %+v", cfg)
	}
	if !cfg.Webhooks.AllowPrivateNetworks || !cfg.Webhooks.AllowHTTP {
		t.Errorf("dev webhooks = %+v, want local http receivers allowed", cfg.Webhooks)
	}
	if d := Default(); d.Webhooks.AllowPrivateNetworks || d.Webhooks.AllowHTTP {
		t.Errorf("default webhooks = %+v, want the strict policy", d.Webhooks)
	}
}

func TestIsReserved(t *testing.T) {
	for path, want := range map[string]bool{
		"/api/v1/apikeys": true, "/oauth/token": true, "/.well-known/jwks.json": true,
		"/healthz": true, "/readyz": true, "/dashboard/": true, "/v1/": false, "/apiary": false, "/": false,
	} {
		if got := IsReserved(path); got != want {
			t.Errorf("IsReserved(%q) = %v", path, got)
		}
	}
}

// x402YAML is a valid x402 configuration on Base Sepolia with the built-in
// facilitator; tests replace parts of it.
const x402YAML = `server: {listen: 127.0.0.1:8080, insecure_http: true, public_url: "https://api.example.com"}
plans: [{name: pro, rate: {requests_per_second: 10, burst: 20}, quota: {units: 100000, period: month}}]
x402:
  enabled: true
  network: eip155:84532
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
  asset_name: USDC
  asset_version: "2"
  pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
  facilitator: {url: local}
  offers: [{plan: pro, price: "1000000", duration: 720h, description: "Pro, 30 days"}]
`

func TestX402Defaults(t *testing.T) {
	cfg, err := Parse([]byte(x402YAML), []string{"TOLLGATE_X402_FACILITATOR_AUTH_HEADER=Authorization: Bearer s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	x := cfg.X402
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"siwx domain from public_url", x.SIWX.Domain, "api.example.com"},
		{"siwx uri from public_url", x.SIWX.URI, "https://api.example.com"},
		{"siwx chains from network", x.SIWX.Chains, []string{"eip155:84532"}},
		{"siwx max lifetime", x.SIWX.MaxLifetime, 24 * time.Hour},
		{"max timeout", x.MaxTimeout, time.Minute},
		{"facilitator timeout", x.Facilitator.Timeout, 10 * time.Second},
		{"auth header from the environment", x.Facilitator.AuthHeader, "Authorization: Bearer s3cret"},
		{"offer", x.Offers[0], Offer{Plan: "pro", Price: "1000000", Duration: 720 * time.Hour, Description: "Pro, 30 days"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if off, err := Parse([]byte(strings.Replace(x402YAML, "enabled: true", "enabled: false", 1)), nil); err != nil || off.X402.SIWX.Domain != "" {
		t.Errorf("disabled: %v, siwx domain %q; want no error and nothing derived", err, off.X402.SIWX.Domain)
	}
}

func TestX402ValidationErrors(t *testing.T) {
	tests := []struct{ name, old, new, want string }{
		{"bad network", "network: eip155:84532", "network: base-sepolia", "CAIP-2 chain ID"},
		{"bad asset", `asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"`, `asset: "0x036cbd53842c5426634e7929541eC2318f3dCF7e"`, "x402.asset"},
		{"bad pay_to", `pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"`, `pay_to: "0x2096"`, "x402.pay_to"},
		{"no domain name", "asset_name: USDC", "asset_name: ''", "asset_name and x402.asset_version"},
		{"local off EVM", "network: eip155:84532", "network: solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "EVM networks"},
		{"bad facilitator", "facilitator: {url: local}", "facilitator: {url: 'ftp://f'}", "an http(s) URL"},
		{"facilitator with query", "facilitator: {url: local}", "facilitator: {url: 'https://f.example/?k=1'}", "without query"},
		{"bad auth header", "facilitator: {url: local}", "facilitator: {url: local, auth_header: 'Bearer x'}", `"Name: value"`},
		{"unknown plan", "plan: pro, price", "plan: gold, price", "not one of the plans"},
		{"zero price", `price: "1000000"`, `price: "0"`, "positive integer"},
		{"decimal price", `price: "1000000"`, `price: "1.5"`, "positive integer"},
		{"huge price", `price: "1000000"`, `price: "` + strings.Repeat("9", 78) + `"`, "below 2^256"},
		{"short duration", "duration: 720h", "duration: 30s", "at least 1m"},
		{"no offers", "offers: [{plan: pro, price: \"1000000\", duration: 720h, description: \"Pro, 30 days\"}]", "offers: []", "at least one offer"},
		{"bad chain", "offers:", "siwx: {chains: [bitcoin:000000000019d6689c085ae165831e93]}\n  offers:", "not a CAIP-2 chain of EVM"},
		{"uri with query", "offers:", "siwx: {uri: 'https://api.example.com/?a=1'}\n  offers:", "without user, query or fragment"},
		{"long lifetime", "offers:", "siwx: {max_lifetime: 1000h}\n  offers:", "max_lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(x402YAML, tt.old, tt.new, 1)
			if y == x402YAML {
				t.Fatalf("%q not in the base configuration", tt.old)
			}
			_, err := Parse([]byte(y), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	// Payments are EIP-3009 authorizations, through any facilitator.
	y := strings.NewReplacer("network: eip155:84532", "network: solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
		"facilitator: {url: local}", "facilitator: {url: 'https://f.example'}").Replace(x402YAML)
	if _, err := Parse([]byte(y), nil); err == nil || !strings.Contains(err.Error(), "payments are taken on EVM networks") {
		t.Errorf("remote facilitator on Solana: %v", err)
	}
}

// A cluster node's configuration, and the role given by the environment (as
// `serve --role` does).
func TestClusterConfig(t *testing.T) {
	yaml := `server: {listen: 127.0.0.1:8080, insecure_http: true, public_url: "https://api.example.com"}
storage: {type: postgres, postgres: {url: "postgres://tollgate@db:5432/tollgate", schema: tollgate}}
counters: {type: redis, redis: {url: "rediss://cache:6380/1", cluster: true}, failure_mode: open}
auth_service: {listen: 127.0.0.1:8091, grpc_listen: 127.0.0.1:8092, url: "http://auth:8091"}
`
	cfg, err := Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Role != "all" || cfg.Counters.Redis.Prefix != "tollgate:" || cfg.AuthService.DecisionCacheTTL != time.Second ||
		cfg.Auth.StoreOutageGrace != 5*time.Minute || cfg.Auth.Bans.MaxFailures != 100 || cfg.Usage.RetryFor != 10*time.Minute {
		t.Errorf("defaults: %+v %+v %+v", cfg.Counters, cfg.AuthService, cfg.Auth.Bans)
	}
	for _, role := range []string{"auth", "gateway"} {
		cfg, err := Parse([]byte(yaml), []string{"TOLLGATE_ROLE=" + role, "TOLLGATE_AUTH_SERVICE_TOKEN=" + strings.Repeat("x", 32)})
		if err != nil || cfg.Role != role || cfg.AuthService.Token == "" {
			t.Errorf("role %s: %v %q", role, err, cfg.Role)
		}
	}
}

// Cluster mode (storage.type postgres) needs server.public_url set: derived
// from each node's own listen address, the issuer and audience of its
// tokens would differ from node to node. The environment may set it; a
// gateway-role node, which signs and checks no token, needs none.
func TestClusterPublicURL(t *testing.T) {
	yaml := `server: {listen: 127.0.0.1:8080, insecure_http: true}
storage: {type: postgres, postgres: {url: "postgres://tollgate@db:5432/tollgate"}}
auth_service: {url: "http://auth:8091"}
`
	_, err := Parse([]byte(yaml), nil)
	if err == nil || !strings.Contains(err.Error(), "server.public_url is required with storage.type postgres (cluster mode)") ||
		!strings.Contains(err.Error(), "http://127.0.0.1:8080") || !strings.Contains(err.Error(), "Two nodes on PostgreSQL and Redis") {
		t.Errorf("derived public_url in cluster mode: %v", err)
	}
	// Explicit issuer and audience do not make up for it: the OAuth
	// metadata, SIWX and the dashboard derive from public_url too.
	if _, err := Parse([]byte(yaml), []string{"TOLLGATE_AUTH_ISSUER=https://a", "TOLLGATE_AUTH_AUDIENCE=https://a"}); err == nil {
		t.Error("derived public_url with explicit issuer and audience: accepted")
	}
	cfg, err := Parse([]byte(yaml), []string{"TOLLGATE_SERVER_PUBLIC_URL=https://api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Derived != (Derived{Issuer: true, Audience: true}) || cfg.Auth.Issuer != "https://api.example.com" ||
		cfg.Auth.Audience != "https://api.example.com" || !cfg.ClusterMode() {
		t.Errorf("public_url from the environment: %+v, issuer %q, audience %q", cfg.Derived, cfg.Auth.Issuer, cfg.Auth.Audience)
	}
	cfg, err = Parse([]byte(yaml), []string{"TOLLGATE_ROLE=gateway"})
	if err != nil || cfg.ClusterMode() {
		t.Errorf("gateway role without public_url: %v, cluster mode %v", err, cfg.ClusterMode())
	}
	// SQLite: one node, the derived URL is fine.
	cfg, err = Parse([]byte("server: {listen: 127.0.0.1:8080, insecure_http: true}\n"), nil)
	if err != nil || cfg.ClusterMode() || !cfg.Derived.PublicURL {
		t.Errorf("sqlite: %v, cluster mode %v, derived %+v", err, cfg.ClusterMode(), cfg.Derived)
	}
}

// webhooks.max_failures, retired, still loads, with a warning that names
// its successor; webhooks.disable_after defaults to 72h, and 0 is never.
func TestWebhooksDisableAfter(t *testing.T) {
	base := "server: {listen: 127.0.0.1:8080, insecure_http: true}\n"
	cfg, err := Parse([]byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Webhooks.DisableAfter != 72*time.Hour || cfg.Warnings() != nil {
		t.Errorf("defaults: disable_after %v, warnings %q", cfg.Webhooks.DisableAfter, cfg.Warnings())
	}
	cfg, err = Parse([]byte(base+"webhooks: {max_failures: 50, disable_after: 0s}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Warnings()
	if cfg.Webhooks.DisableAfter != 0 || len(w) != 1 || !strings.Contains(w[0], "webhooks.max_failures (50) is deprecated and ignored") ||
		!strings.Contains(w[0], "webhooks.disable_after") {
		t.Errorf("max_failures: disable_after %v, warnings %q", cfg.Webhooks.DisableAfter, w)
	}
	cfg, err = Parse([]byte(base), []string{"TOLLGATE_WEBHOOKS_MAX_FAILURES=5", "TOLLGATE_WEBHOOKS_DISABLE_AFTER=120h"})
	if err != nil || cfg.Webhooks.DisableAfter != 120*time.Hour || len(cfg.Warnings()) != 1 {
		t.Errorf("from the environment: %v, %v, %q", err, cfg.Webhooks.DisableAfter, cfg.Warnings())
	}
}
