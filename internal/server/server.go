// Package server assembles a Tollgate node from its configuration: it opens
// the store, loads the master key and signing keys, builds the services, the
// gateway and the APIs, and runs the public and admin listeners until it is
// told to stop, then drains them.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/internal/accounts"
	"github.com/tollgate/tollgate/internal/adminapi"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/authz"
	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/connguard"
	"github.com/tollgate/tollgate/internal/controlapi"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/failover"
	redisctr "github.com/tollgate/tollgate/internal/counters/redis"
	"github.com/tollgate/tollgate/internal/credentials"
	"github.com/tollgate/tollgate/internal/dashboard"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/oauth"
	"github.com/tollgate/tollgate/internal/password"
	"github.com/tollgate/tollgate/internal/respsign"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/siwx"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/subscriptions"
	"github.com/tollgate/tollgate/internal/tlsconfig"
	"github.com/tollgate/tollgate/internal/tokens"
	"github.com/tollgate/tollgate/internal/usage"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// Intervals of the background work.
const (
	// LastUsedFlushInterval is how often API keys' last-use times are written.
	LastUsedFlushInterval = 10 * time.Second
	// KeyReloadInterval is how often the signing keys are read again, so
	// that a rotation by the CLI or another node is picked up.
	KeyReloadInterval = time.Minute
	// PurgeInterval is how often expired revocations and retired signing
	// keys past use are deleted.
	PurgeInterval = time.Hour
	// DefaultHandlerGrace is Options.HandlerGrace's default.
	DefaultHandlerGrace = 5 * time.Second
)

// Options are the parts of a Server that are not configuration.
type Options struct {
	Logger *slog.Logger // default: discard
	Clock  clock.Clock  // default: clock.System{}
	// AccessLog writes the access log when log.access_log is on; default:
	// through Logger. The CLI gives a httpx.JSONAccessLog for the JSON
	// format, which formats a line several times faster than slog.
	AccessLog httpx.AccessLogger
	// HandlerGrace bounds each of the two waits of Shutdown for the
	// handlers still running once server.shutdown_timeout has passed (see
	// Shutdown). Default DefaultHandlerGrace.
	HandlerGrace time.Duration
}

// Server is one Tollgate node.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	clock    clock.Clock
	store    store.Store
	counters counters.Store
	keyring  *tokens.Keyring
	// respKeys sign responses; nil when no response is signed.
	respKeys *respsign.Keyring
	webhooks *webhooks.Service
	accounts *accounts.Service
	keys     *credentials.Service
	oauth    *oauth.Service
	limiter  *limits.Limiter
	gateway  *gateway.Gateway
	sessions *gateway.Sessions // the open WebSocket sessions
	// Set when x402 is enabled.
	catalog *subscriptions.Catalog
	signIn  *subscriptions.SignIn
	shop    *subscriptions.Shop
	usage   *usage.Recorder
	metrics *metrics.Metrics

	accessLog httpx.AccessLogger

	// Cluster mode: the Redis counters behind the failover policy, the
	// bus of cache invalidations, what to close at the end.
	redis    *redisctr.Store
	failover *failover.Store
	bus      counters.Bus
	closers  []func() error
	// edge asks the auth service, on a gateway-role node.
	edge *authz.Client

	public, admin     *http.Server
	publicLn, adminLn net.Listener
	// The dashboard on an origin of its own (dashboard.go): its handler,
	// and its listener when it has one.
	dashboard http.Handler
	dashSrv   *http.Server
	dashLn    net.Listener
	// The connection guards of the listeners (see listenerGuard).
	publicGuard, adminGuard, authGuard, grpcGuard, dashGuard *connguard.Guard
	// The decision API (auth_service.listen and grpc_listen).
	authSrv    *http.Server
	authLn     net.Listener
	grpcSrv    *grpc.Server
	grpcLn     net.Listener
	baseCtx    context.Context
	baseCancel context.CancelCauseFunc
	draining   atomic.Bool
	bg         sync.WaitGroup
	stopBG     context.CancelFunc

	// handlers counts the requests being served on every listener;
	// handlerGrace bounds Shutdown's waits for them.
	handlers     httpx.InFlight
	handlerGrace time.Duration
}

// Open opens the store named by cfg.Storage, creating the SQLite file's
// directory when needed. The CLI uses it for commands that need no server.
func Open(ctx context.Context, cfg config.Config, clk clock.Clock) (store.Store, error) {
	switch cfg.Storage.Type {
	case "sqlite":
		if err := os.MkdirAll(filepath.Dir(cfg.Storage.SQLite.Path), 0o700); err != nil {
			return nil, fmt.Errorf("server: create data directory: %w", err)
		}
		return sqlite.Open(ctx, cfg.Storage.SQLite.Path, sqlite.WithClock(clk))
	case "postgres":
		opts := []postgres.Option{postgres.WithClock(clk)}
		if sc := cfg.Storage.Postgres.Schema; sc != "" {
			opts = append(opts, postgres.WithSchema(sc))
		}
		return postgres.Open(ctx, cfg.Storage.Postgres.URL, opts...)
	default:
		return nil, fmt.Errorf("server: unknown storage type %q", cfg.Storage.Type)
	}
}

// NewHasher returns the password hasher every Tollgate process uses.
func NewHasher() *password.Hasher {
	h, err := password.NewHasher(password.Default())
	if err != nil {
		panic(err) // the defaults are valid; a failure is a programming error
	}
	return h
}

// New builds a Server; Start runs it.
func New(ctx context.Context, cfg config.Config, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.HandlerGrace <= 0 {
		o.HandlerGrace = DefaultHandlerGrace
	}
	s := &Server{cfg: cfg, log: o.Logger, clock: o.Clock, accessLog: o.AccessLog, handlerGrace: o.HandlerGrace}
	s.baseCtx, s.baseCancel = context.WithCancelCause(context.Background())
	switch cfg.Role {
	case RoleGateway:
		if err := s.buildEdge(); err != nil {
			return nil, err
		}
		return s, nil
	case RoleAll, RoleAuth, "":
	default:
		return nil, fmt.Errorf("%w %q", errNoRole, cfg.Role)
	}
	st, err := Open(ctx, cfg, o.Clock)
	if err != nil {
		return nil, err
	}
	s.store = st
	if err := PinClusterSettings(ctx, st, cfg); err != nil {
		_ = s.Close()
		return nil, err
	}
	if err := s.build(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(ctx context.Context) error {
	cfg := s.cfg
	box, err := LoadMasterKey(cfg, s.log)
	if err != nil {
		return err
	}
	if s.keyring, err = tokens.LoadKeyring(ctx, s.store, box, s.clock); err != nil {
		return err
	}
	if err := s.buildWebhooks(box); err != nil {
		return err
	}
	var sign func(http.Handler) http.Handler
	if signsResponses(cfg) {
		if s.respKeys, err = respsign.LoadKeyring(ctx, s.store, box, s.clock); err != nil {
			return err
		}
		sign = (&respsign.Middleware{Keyring: s.respKeys, MaxBody: cfg.ResponseSigning.MaxBodyBytes}).Wrap
	}
	for _, p := range cfg.Plans {
		err := s.store.UpsertPlan(ctx, store.Plan{
			Name: p.Name, RequestsPerSecond: p.Rate.RequestsPerSecond, Burst: p.Rate.Burst,
			QuotaUnits: p.Quota.Units, QuotaPeriod: p.Quota.Period, UpdatedAt: s.clock.Now(),
		})
		if err != nil {
			return fmt.Errorf("server: store plan %s: %w", p.Name, err)
		}
	}
	if err := s.buildCounters(ctx); err != nil {
		return err
	}
	s.keys = credentials.New(s.store, credentials.Options{
		Sealer: box, Clock: s.clock, CacheTTL: cfg.Auth.APIKeyCacheTTL, CacheSize: cfg.Auth.APIKeyCacheSize, Logger: s.log,
		Events: s.emit, Broadcast: s.broadcast, StoreOutageGrace: cfg.Auth.StoreOutageGrace,
	})
	s.accounts = accounts.New(s.store, accounts.Options{
		Clock: s.clock, Hasher: NewHasher(), Counters: s.counters, Keyring: s.keyring,
		Issuer: cfg.Auth.Issuer, SessionTTL: cfg.Auth.SessionTTL, RefreshTTL: cfg.Auth.RefreshTTL,
		SessionCacheTTL: cfg.Auth.SessionCacheTTL, RefreshReuseGrace: cfg.Auth.RefreshReuseGrace,
		Login: cfg.Auth.Login, Logger: s.log, Events: s.emit, Broadcast: s.broadcast,
	})
	if cfg.Auth.Audience == accounts.Audience {
		return fmt.Errorf("server: auth.audience must not be %s", accounts.Audience)
	}
	s.oauth, err = oauth.New(s.store, oauth.Options{
		Clock: s.clock, Keyring: s.keyring, Counters: s.counters,
		Issuer: cfg.Auth.Issuer, Audience: cfg.Auth.Audience, TokenTTL: cfg.Auth.AccessTokenTTL, Leeway: cfg.Auth.Leeway,
		CacheTTL: cfg.Auth.TokenCacheTTL, CacheSize: cfg.Auth.TokenCacheSize, Limits: cfg.Auth.Login, MaxBody: cfg.Server.MaxAPIBodyBytes,
		Keys: s.keys, Logger: s.log, Events: s.emit, Broadcast: s.broadcast,
	})
	if err != nil {
		return err
	}
	resolver, err := clientip.NewResolver(cfg.Server.TrustedProxies)
	if err != nil {
		return fmt.Errorf("server: trusted_proxies: %w", err)
	}
	s.metrics = metrics.New()
	u := cfg.Usage
	s.usage = usage.New(s.store, usage.Options{
		Buffer: u.Buffer, BatchSize: u.BatchSize, FlushInterval: u.FlushInterval, Logger: s.log, Clock: s.clock,
		RetryFor: u.RetryFor,
	})
	s.metrics.WatchUsageQueue(s.usage)
	if s.failover != nil {
		s.metrics.WatchCounters(s.failover.Down, s.failover.Outages, s.failover.Fallbacks)
	}
	s.limiter = limits.New(limits.Options{
		Plans: cfg.Plans, DefaultPlan: cfg.DefaultPlan, Orgs: s.store, Quotas: s.store, Counters: s.counters, Clock: s.clock,
		StoreOutageGrace: cfg.Auth.StoreOutageGrace,
		OnDecision:       func(o counters.LimitOutcome) { s.metrics.ObserveLimit(outcomeLabel(o)) },
		OnQuota:          s.quotaEvent,
	})
	// The priority of the methods: SIWX (when x402 is enabled), API key, JWT.
	methods := []authn.Authenticator{
		gateway.APIKeyMethod{Keys: s.keys, Signatures: &gateway.SignatureChecker{
			Counters: s.counters, Clock: s.clock, Window: cfg.Auth.SignatureWindow, TrustedPeer: resolver.TrustsPeer,
			MaxPerCredential: cfg.Auth.ReplayMaxPerCredential,
		}},
		s.oauth,
	}
	var noCredentials func() *apierror.Error
	if cfg.X402.Enabled {
		if err := s.buildX402(box); err != nil {
			return err
		}
		methods = append([]authn.Authenticator{s.signIn}, methods...)
		noCredentials = s.catalog.PaymentRequired
	}
	b := cfg.Auth.Bans
	s.buildSessions()
	gw, err := gateway.New(cfg.Routes, gateway.Options{
		Sessions: s.sessions,
		Bans: &gateway.Bans{
			Counters: s.counters, MaxFailures: b.MaxFailures, Window: b.Window, Duration: b.Duration, Logger: s.log,
		},
		Authenticators: methods,
		NoCredentials:  noCredentials,
		Limiter:        s.limiter,
		TrustedPeer:    resolver.TrustsPeer,
		Meter: func(e *store.UsageEvent, reason string) {
			s.metrics.ObserveRequest(e, reason)
			s.usage.Record(*e)
		},
		Sign: sign, SignAll: cfg.ResponseSigning.All, Upgrades: cfg.Server.Upgrades,
		PrivateCookie: dashboard.IsCookie,
		Clock:         s.clock, Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.gateway = gw

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.Handle("/api/", controlapi.New(controlapi.Options{
		Accounts: s.accounts, Keys: s.keys, Apps: s.oauth, Audit: s.store, Orgs: s.store,
		Usage: s.store, Allowance: s.limiter,
		Clock: s.clock, MaxBody: cfg.Server.MaxAPIBodyBytes,
	}))
	hooks := webhooks.NewAPI(s.webhooks, s.authorizeWebhooks, cfg.Server.MaxAPIBodyBytes)
	mux.Handle("/api/v1/webhooks", hooks)
	mux.Handle("/api/v1/webhooks/", hooks)
	oauthHandler := s.oauth.Handler(cfg.Server.PublicURL)
	mux.Handle("/oauth/", oauthHandler)
	mux.Handle(oauth.MetadataPath, oauthHandler)
	if s.catalog != nil {
		mux.Handle("GET "+subscriptions.PricingPath, apierror.HandlerFunc(s.catalog.ServePricing))
		mux.Handle("POST "+subscriptions.PurchasePath, apierror.HandlerFunc(s.shop.ServePurchase))
	}
	if s.respKeys != nil {
		mux.Handle("GET "+respsign.WellKnownPath, s.respKeys)
	}
	if err := s.buildDashboard(box, mux); err != nil {
		return err
	}
	proxy := gw
	if cfg.Role == RoleAuth {
		proxy = nil // the auth service decides; it forwards nothing
	}
	if err := s.buildListeners(resolver, mux, proxy, sign); err != nil {
		return err
	}
	ids := httpx.NewIDGenerator()
	return s.buildAuthService(resolver, ids, s.accessLogger())
}

// accessLogger returns the access log, nil when it is off.
func (s *Server) accessLogger() httpx.AccessLogger {
	if !s.cfg.Log.AccessLog {
		return nil
	}
	if s.accessLog != nil {
		return s.accessLog
	}
	return httpx.SlogAccessLog(s.log)
}

// buildListeners builds the public listener, serving mux and, when gw is
// set, proxying every other path through it, and the admin listener.
func (s *Server) buildListeners(resolver *clientip.Resolver, mux *http.ServeMux, gw *gateway.Gateway, sign func(http.Handler) http.Handler) error {
	cfg := s.cfg
	clientIP := func(r *http.Request) netip.Addr {
		return resolver.ClientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
	}
	accessLog := s.accessLogger()
	ids := httpx.NewIDGenerator()

	if mux == nil {
		mux = http.NewServeMux()
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	var core http.Handler = mux
	if gw != nil {
		mux.Handle("/", gw)
		core = frontDoor(mux, gw)
	}
	if cfg.ResponseSigning.All && sign != nil {
		core = sign(core) // every response, the control plane's included
	}
	// chain is the middleware of an HTTP listener that faces clients: the
	// public one and the dashboard's own.
	chain := func(h http.Handler, bodyDeadline httpx.Middleware) http.Handler {
		return httpx.Chain(h,
			s.handlers.Track,
			httpx.Recover(s.log),
			httpx.RequestInfo(ids, clientIP, s.clock, accessLog),
			httpx.HSTS(cfg.Server.HSTSMaxAge, cfg.Server.HSTSIncludeSubdomains),
			httpx.CanonicalTarget(),
			bodyDeadline,
			httpx.LimitBody(cfg.Server.MaxBodyBytes),
		)
	}
	var bodyDeadline httpx.Middleware
	s.publicGuard, bodyDeadline = s.listenerGuard(listenerPublic, resolver, cfg.Server.MaxConnectionsPerIP, cfg.Server.MaxConnections)
	publicHandler := chain(s.wrapDashboard(core), bodyDeadline)

	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.public = &http.Server{
		Handler:           publicHandler,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errorLog,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	if cfg.Server.InsecureHTTP {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true) // h2c, for clients that ask for it
		s.public.Protocols = &p
	} else {
		cert, err := tls.LoadX509KeyPair(cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("server: tls: %w", err)
		}
		minVersion := uint16(tls.VersionTLS12)
		if cfg.Server.TLS.MinVersion == "1.3" {
			minVersion = tls.VersionTLS13
		}
		s.public.TLSConfig = tlsconfig.Server(minVersion, cert)
	}
	s.buildDashboardListener(resolver, chain)

	if cfg.Admin.Listen != "" {
		adminMux := http.NewServeMux()
		adminMux.HandleFunc("GET /healthz", s.healthz)
		adminMux.HandleFunc("GET /readyz", s.readyz)
		adminMux.Handle("GET /metrics", s.metrics.Handler())
		if s.store != nil {
			tokenHash, ok := adminapi.TokenHash(cfg.Admin.Token, cfg.Admin.TokenSHA256)
			if !ok {
				s.log.Warn("admin API has no token (admin.token / TOLLGATE_ADMIN_TOKEN): it refuses every request")
			}
			adminMux.Handle("/admin/", adminapi.New(adminapi.Options{
				TokenSHA256: tokenHash, Accounts: s.accounts, Keys: s.keys, Apps: s.oauth, Orgs: s.store,
				Counters: s.counters, Limits: cfg.Auth.Login, Clock: s.clock, MaxBody: cfg.Server.MaxAPIBodyBytes, Pprof: cfg.Admin.Pprof,
			}))
		}
		s.adminGuard, bodyDeadline = s.listenerGuard(listenerAdmin, resolver, cfg.Server.MaxConnectionsPerIP, 0)
		s.admin = &http.Server{
			Handler: httpx.Chain(adminMux,
				s.handlers.Track,
				httpx.Recover(s.log),
				httpx.RequestInfo(ids, func(r *http.Request) netip.Addr { return resolver.ClientIP(r.RemoteAddr, nil) }, s.clock, accessLog),
				bodyDeadline,
				httpx.LimitBody(cfg.Server.MaxAPIBodyBytes),
			),
			ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
			IdleTimeout:       cfg.Server.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errorLog,
		}
	}
	return nil
}

// Accounts returns the account service (for the development bootstrap).
func (s *Server) Accounts() *accounts.Service { return s.accounts }

// Keys returns the API key service (for the development bootstrap).
func (s *Server) Keys() *credentials.Service { return s.keys }

// Store returns the store.
func (s *Server) Store() store.Store { return s.store }

// Start binds the listeners and serves in the background.
func (s *Server) Start() error {
	var err error
	if s.publicLn, err = listen(true, s.cfg.Server.Listen, listenerPublic, s.publicGuard); err != nil {
		return err
	}
	if s.adminLn, err = listen(s.admin != nil, s.cfg.Admin.Listen, listenerAdmin, s.adminGuard); err == nil {
		if s.authLn, err = listen(s.authSrv != nil, s.cfg.AuthService.Listen, listenerAuth, s.authGuard); err == nil {
			if s.grpcLn, err = listen(s.grpcSrv != nil, s.cfg.AuthService.GRPCListen, listenerGRPC, s.grpcGuard); err == nil {
				s.dashLn, err = listen(s.dashSrv != nil, s.cfg.Dashboard.Listen, listenerDashboard, s.dashGuard)
			}
		}
	}
	if err != nil {
		for _, ln := range []net.Listener{s.publicLn, s.adminLn, s.authLn, s.grpcLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		return err
	}
	serve := func(name string, f func() error) {
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("listener stopped", "listener", name, "error", err)
		}
	}
	// Decide before serving: net/http amends the server's TLS settings once
	// Serve runs.
	scheme := "http"
	if s.public.TLSConfig != nil {
		scheme = "https"
		go serve("public", func() error { return s.public.ServeTLS(s.publicLn, "", "") })
	} else {
		go serve("public", func() error { return s.public.Serve(s.publicLn) })
	}
	s.serveDashboard(serve)
	if s.admin != nil {
		go serve("admin", func() error { return s.admin.Serve(s.adminLn) })
	}
	if s.authSrv != nil {
		go serve("auth_service", func() error { return s.authSrv.Serve(s.authLn) })
	}
	if s.grpcSrv != nil {
		go serve("auth_service grpc", func() error { return s.grpcSrv.Serve(s.grpcLn) })
	}
	bgCtx, stop := context.WithCancel(context.Background())
	s.stopBG = stop
	run := func(f func(ctx context.Context)) {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			f(bgCtx)
		}()
	}
	run(s.usage.Run)
	run(s.runSessions)
	if s.store != nil {
		// The invalidations of other nodes, from now on; a Resync drops
		// whatever may have been missed before.
		cancelSub := s.bus.Subscribe(s.applyInvalidation)
		run(func(ctx context.Context) { <-ctx.Done(); cancelSub() })
		run(func(ctx context.Context) {
			if err := s.webhooks.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("webhook dispatcher stopped", "error", err)
			}
		})
		run(func(ctx context.Context) { s.keys.RunFlusher(ctx, LastUsedFlushInterval) })
		run(func(ctx context.Context) { s.limiter.RunFlusher(ctx, s.cfg.Usage.QuotaFlushInterval, s.log) })
		run(s.maintain)
	}
	if s.failover != nil {
		run(s.failover.Run)
	}
	s.log.Info("tollgate listening", "role", s.cfg.Role, "public", scheme+"://"+s.Addr(), "admin", s.AdminAddr(),
		"auth_service", s.AuthAddr(), "auth_service_grpc", s.GRPCAddr(), "dashboard", s.DashboardURL(), "routes", len(s.cfg.Routes))
	return nil
}

// maintain reloads the signing keys every KeyReloadInterval and purges what
// has outlived its use every PurgeInterval, until ctx ends.
func (s *Server) maintain(ctx context.Context) {
	reload := time.NewTicker(KeyReloadInterval)
	defer reload.Stop()
	purge := time.NewTicker(PurgeInterval)
	defer purge.Stop()
	s.purge(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload.C:
			if err := s.keyring.Reload(ctx); err != nil {
				s.log.Warn("reload signing keys", "error", err)
			}
			if s.respKeys != nil {
				if err := s.respKeys.Reload(ctx); err != nil {
					s.log.Warn("reload response signing keys", "error", err)
				}
			}
		case <-purge.C:
			s.purge(ctx)
		}
	}
}

// purge deletes revocations of tokens that have expired anyway, and signing
// keys retired long enough ago that nothing they signed can still be valid:
// the longest token lifetime, the leeway, and a reload interval during which
// another node may have kept signing with the key.
func (s *Server) purge(ctx context.Context) {
	now := s.clock.Now()
	u := s.cfg.Usage
	if n, err := s.store.PurgeRequests(ctx, now.Add(-u.RequestLogRetention), now.Add(-u.HourlyRetention)); err != nil {
		s.log.Warn("purge request log", "error", err)
	} else if n > 0 {
		s.log.Info("purged request-log entries past retention", "count", n)
	}
	// A day's grace: a node whose clock lags still finds the count.
	if err := s.store.PurgeQuotaCounts(ctx, now.Add(-24*time.Hour)); err != nil {
		s.log.Warn("purge quota counts", "error", err)
	}
	if n, err := s.oauth.PurgeRevoked(ctx); err != nil {
		s.log.Warn("purge revoked tokens", "error", err)
	} else if n > 0 {
		s.log.Info("purged expired token revocations", "count", n)
	}
	a := s.cfg.Auth
	keep := max(a.AccessTokenTTL, a.SessionTTL) + a.Leeway + KeyReloadInterval + time.Minute
	deleted, err := s.keyring.Prune(ctx, keep)
	if err != nil {
		s.log.Warn("prune signing keys", "error", err)
	} else if len(deleted) > 0 {
		s.log.Info("deleted retired signing keys", "keys", deleted)
	}
	if s.respKeys != nil {
		// Published for the grace, and signing on other nodes until their
		// next reload.
		deleted, err := s.respKeys.Prune(ctx, s.cfg.ResponseSigning.RetiredKeyGrace+KeyReloadInterval)
		if err != nil {
			s.log.Warn("prune response signing keys", "error", err)
		} else if len(deleted) > 0 {
			s.log.Info("deleted retired response signing keys", "keys", deleted)
		}
	}
}

// signsResponses reports whether cfg signs any response.
func signsResponses(cfg config.Config) bool {
	if cfg.ResponseSigning.All {
		return true
	}
	for _, r := range cfg.Routes {
		if r.SignResponse {
			return true
		}
	}
	return false
}

// outcomeLabel names a limiter outcome in metrics.
func outcomeLabel(o counters.LimitOutcome) string {
	switch o {
	case counters.Admitted:
		return metrics.OutcomeAdmitted
	case counters.RateLimited:
		return metrics.OutcomeRateLimited
	case counters.QuotaExhausted:
		return metrics.OutcomeQuotaExhausted
	}
	return "unknown"
}

// Addr is the public listener's address (useful with port 0).
func (s *Server) Addr() string { return s.publicLn.Addr().String() }

// AuthAddr is the decision API's address, "" when it is disabled.
func (s *Server) AuthAddr() string {
	if s.authLn == nil {
		return ""
	}
	return s.authLn.Addr().String()
}

// GRPCAddr is the ext_authz gRPC listener's address, "" when it is disabled.
func (s *Server) GRPCAddr() string {
	if s.grpcLn == nil {
		return ""
	}
	return s.grpcLn.Addr().String()
}

// AdminAddr is the admin listener's address, "" when it is disabled.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Shutdown stops accepting requests, waits for in-flight ones until ctx
// ends, then cancels those still running, waits for every handler to
// return (each meters its request on its way out), writes pending state
// (quota counts, usage events, last-use times) and closes the store.
//
// The requests still running when ctx ends were charged when they were
// admitted: they are cancelled (the base context of the public and
// decision listeners ends with cause http.ErrServerClosed; the gateway
// answers 503, or cuts a response already started, and WebSocket sessions
// close), and their handlers are waited for, up to HandlerGrace. Those still
// running then (stuck writing to a client that does not read) have their
// connections closed and are waited for once more, up to HandlerGrace. Only
// then do the background workers stop, so that the final flushes of the
// quota counts and of the usage events both see every request: after a
// shutdown the two agree. A handler still running after both waits is given
// up, logged with the requests and units admitted that go unmetered.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	var wg sync.WaitGroup
	var errs [4]error
	if s.grpcSrv != nil {
		wg.Go(func() {
			stopped := make(chan struct{})
			go func() {
				s.grpcSrv.GracefulStop()
				close(stopped)
			}()
			select {
			case <-stopped:
			case <-ctx.Done():
				s.grpcSrv.Stop() // cancels the calls still running
				<-stopped
			}
		})
	}
	servers := []*http.Server{s.public, s.admin, s.authSrv, s.dashSrv}
	for i, srv := range servers {
		if srv == nil {
			continue
		}
		wg.Go(func() { errs[i] = srv.Shutdown(ctx) })
	}
	wg.Wait()
	s.baseCancel(http.ErrServerClosed) // the requests still running, and hijacked connections
	if !s.awaitHandlers("cancelled") {
		for _, srv := range servers {
			if srv != nil {
				_ = srv.Close() // unblocks writes to clients that do not read
			}
		}
		if !s.awaitHandlers("connections closed") {
			requests, units := int64(0), int64(0)
			if s.gateway != nil {
				requests, units = s.gateway.Unmetered()
			}
			s.log.Error("shutdown: handlers still running; the usage of their requests is lost",
				"handlers", s.handlers.Len(), "requests_unmetered", requests, "units_unmetered", units)
		}
	}
	// The background work ends last: the final flushes of quota counts,
	// usage events and last-use times see every request served.
	if s.stopBG != nil {
		s.stopBG()
		s.bg.Wait()
	}
	return errors.Join(errs[0], errs[1], errs[2], errs[3], s.close())
}

// awaitHandlers waits up to handlerGrace for every handler to return, and
// reports whether they have. When some have not, it logs how many, with
// what: the step of the shutdown they outlived.
func (s *Server) awaitHandlers(what string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), s.handlerGrace)
	defer cancel()
	if err := s.handlers.Wait(ctx); err != nil {
		s.log.Warn("shutdown: handlers still running", "after", what, "handlers", s.handlers.Len(), "waited", s.handlerGrace)
		return false
	}
	return true
}

// Close releases a Server that was never started.
func (s *Server) Close() error {
	s.baseCancel(http.ErrServerClosed)
	return s.close()
}

// close closes the store and the counters.
func (s *Server) close() error {
	var errs []error
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Run starts the server and shuts it down gracefully when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(); err != nil {
		_ = s.Close()
		return err
	}
	<-ctx.Done()
	s.log.Info("shutting down", "grace", s.cfg.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	_ = httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		apierror.Write(w, r, apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st, err := s.readiness(ctx)
	if err != nil {
		apierror.Write(w, r, err)
		return
	}
	_ = httpx.WriteJSON(w, http.StatusOK, st)
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.keyring.JWKS())
}

// frontDoor sends proxied requests straight to the gateway, and Tollgate's
// own paths to mux. It spares the proxied requests the mux's pattern
// matching, which allocates several times per request; what each request
// reaches is the same as through mux alone, where the gateway is the
// catch-all "/": paths are canonical by now (httpx.CanonicalTarget), so mux
// would not redirect them.
func frontDoor(mux *http.ServeMux, gw http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || config.IsReserved(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		gw.ServeHTTP(w, r)
	})
}

// buildX402 builds wallet sign-in and the catalog of subscriptions. The
// nonces of sign-in challenges are MAC'd under a key derived from the master
// key, so that every node accepts the others'.
func (s *Server) buildX402(box *secretbox.Box) error {
	x := s.cfg.X402
	nonces, err := siwx.NewNonces(0, 0, box.DeriveKeys("siwx-challenge-nonce")...)
	if err != nil {
		return fmt.Errorf("server: x402.siwx: %w", err)
	}
	catalog, err := subscriptions.NewCatalog(s.cfg, s.clock, nonces)
	if err != nil {
		return err
	}
	verifier, err := siwx.New(siwx.Config{
		Domain: x.SIWX.Domain, URI: x.SIWX.URI, Chains: x.SIWX.Chains, MaxLifetime: x.SIWX.MaxLifetime,
		Clock: s.clock, CacheSize: x.SIWX.CacheSize, Nonces: nonces,
	})
	if err != nil {
		return fmt.Errorf("server: x402.siwx: %w", err)
	}
	signIn, err := subscriptions.NewSignIn(subscriptions.SignInOptions{
		Verify: subscriptions.VerifySIWX(verifier), VerifyHeader: subscriptions.VerifySIWXHeader(verifier),
		Replay: s.counters, ReplayMaxPerWallet: s.cfg.Auth.ReplayMaxPerCredential,
		Subscriptions: s.store, PaymentRequired: catalog.PaymentRequired, Clock: s.clock,
	})
	if err != nil {
		return err
	}
	var facilitator subscriptions.Facilitator
	if x.Facilitator.URL == config.FacilitatorLocal {
		s.log.Warn("x402: the local facilitator records payments WITHOUT moving funds; use it for development and tests only")
		facilitator = subscriptions.Local{Clock: s.clock, Logger: s.log}
	} else {
		remote, err := subscriptions.NewRemote(subscriptions.RemoteOptions{
			URL: x.Facilitator.URL, AuthHeader: x.Facilitator.AuthHeader, Timeout: x.Facilitator.Timeout,
		})
		if err != nil {
			return fmt.Errorf("server: x402.facilitator: %w", err)
		}
		s.checkFacilitator(remote, x.Network)
		facilitator = remote
	}
	s.catalog, s.signIn = catalog, signIn
	s.shop = &subscriptions.Shop{
		Catalog: catalog, Facilitator: facilitator, Purchases: s.store, SignIn: signIn, Logger: s.log,
		Events: s.emit, Subscriptions: s.store,
	}
	return nil
}

// checkFacilitator asks a remote facilitator whether it settles the
// network, and warns when it does not or cannot be asked: purchases would
// fail, but the API and its other credentials still work, so the gateway
// starts anyway.
func (s *Server) checkFacilitator(f *subscriptions.Remote, network string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kinds, err := f.Supported(ctx)
	switch {
	case err != nil:
		s.log.Warn("x402: the facilitator could not be asked what it supports; purchases may fail", "facilitator", f.Name(), "err", err)
	case !subscriptions.Supports(kinds, network):
		s.log.Warn("x402: the facilitator does not list the exact scheme on this network; purchases may fail", "facilitator", f.Name(), "network", network)
	default:
		s.log.Info("x402: facilitator ready", "facilitator", f.Name(), "network", network)
	}
}
