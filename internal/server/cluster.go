package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/tollgate/tollgate/internal/adminapi"
	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authz"
	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/connguard"
	"github.com/tollgate/tollgate/internal/counters/failover"
	"github.com/tollgate/tollgate/internal/counters/memory"
	redisctr "github.com/tollgate/tollgate/internal/counters/redis"
	"github.com/tollgate/tollgate/internal/dashboard"
	"github.com/tollgate/tollgate/internal/extauthz"
	"github.com/tollgate/tollgate/internal/gateway"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/metrics"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/usage"
)

// Roles of a node (config.Config.Role).
const (
	RoleAll     = "all"
	RoleAuth    = "auth"
	RoleGateway = "gateway"
)

// publishTimeout bounds the broadcast of one cache invalidation.
const publishTimeout = 2 * time.Second

// buildCounters opens the hot-counter store the configuration names and the
// bus that carries cache invalidations between nodes.
func (s *Server) buildCounters(ctx context.Context) error {
	c := s.cfg.Counters
	switch c.Type {
	case "redis":
		rs, err := redisctr.Open(ctx, c.Redis.URL,
			redisctr.WithPrefix(c.Redis.Prefix), redisctr.WithCluster(c.Redis.Cluster), redisctr.WithLogger(s.log))
		if err != nil {
			return fmt.Errorf("server: counters: %w", err)
		}
		s.redis = rs
		s.closers = append(s.closers, rs.Close)
		fo, err := failover.New(rs, failover.Options{
			Open: c.FailureMode == "open", Local: memory.New(s.clock), Logger: s.log,
		})
		if err != nil {
			return err
		}
		s.failover = fo
		s.counters, s.bus = fo, rs
	default:
		s.counters = memory.New(s.clock)
		s.bus = memory.NewBus()
	}
	return nil
}

// broadcast tells every node (this one included) of a cache invalidation.
// A failure is logged: the other nodes then see the change when their cache
// entries expire (auth.apikey_cache_ttl, auth.token_cache_ttl,
// auth.session_cache_ttl).
func (s *Server) broadcast(msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := s.bus.Publish(ctx, msg); err != nil {
		s.log.Warn("cache invalidation not broadcast; other nodes see the change within their cache TTL", "error", err)
	}
}

// applyInvalidation carries out a message of the bus: every cache, and the
// register of open sessions, takes the messages that concern it (an
// organization's concern them all).
func (s *Server) applyInvalidation(msg string) {
	s.keys.Apply(msg)
	s.oauth.Apply(msg)
	s.accounts.Apply(msg)
	if s.signIn != nil {
		s.signIn.Apply(msg)
	}
	s.endSessions(msg)
}

// buildAuthService builds the decision API's listeners: HTTP (forward-auth,
// /v1/decide) and Envoy ext_authz over gRPC.
func (s *Server) buildAuthService(resolver *clientip.Resolver, ids *httpx.IDGenerator, accessLog httpx.AccessLogger) error {
	a := s.cfg.AuthService
	if a.Listen == "" && a.GRPCListen == "" {
		return nil
	}
	tokenHash, tokenSet := adminapi.TokenHash(a.Token, a.TokenSHA256)
	if !tokenSet {
		s.log.Warn("the decision API has no token (auth_service.token / TOLLGATE_AUTH_SERVICE_TOKEN): it trusts its network")
	}
	api := authz.New(authz.Options{
		Gateway: s.gateway, TokenSHA256: tokenHash, TokenSet: tokenSet,
		ClientIP: resolver.ClientIP,
		Meter: func(e *store.UsageEvent, reason string) {
			s.metrics.ObserveRequest(e, reason)
			s.usage.Record(*e)
		},
		Usage: s.store, Charger: s.limiter, Clock: s.clock,
	})
	if a.Listen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", s.healthz)
		mux.HandleFunc("GET /readyz", s.readyz)
		mux.Handle("/", api)
		var bodyDeadline httpx.Middleware
		s.authGuard, bodyDeadline = s.listenerGuard(listenerAuth, resolver, a.MaxConnectionsPerIP, 0)
		s.authSrv = &http.Server{
			Handler: httpx.Chain(mux,
				s.handlers.Track,
				httpx.Recover(s.log),
				httpx.RequestInfo(ids, func(r *http.Request) netip.Addr { return resolver.ClientIP(r.RemoteAddr, nil) }, s.clock, accessLog),
				bodyDeadline,
				httpx.LimitBody(s.cfg.Server.MaxBodyBytes),
			),
			ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout,
			IdleTimeout:       s.cfg.Server.IdleTimeout,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		}
	}
	if a.GRPCListen != "" {
		// ext_authz requests reach the handler through the same request
		// pipeline (IDs, access log), with the token checked from the
		// gRPC metadata instead.
		inner := httpx.Chain(api.Forward(),
			s.handlers.Track,
			httpx.Recover(s.log),
			httpx.RequestInfo(ids, func(r *http.Request) netip.Addr { return resolver.ClientIP(r.RemoteAddr, nil) }, s.clock, accessLog),
		)
		ext := extauthz.New(inner, extauthz.Options{MaxBody: s.cfg.Server.MaxBodyBytes, Logger: s.log})
		s.grpcGuard, _ = s.listenerGuard(listenerGRPC, resolver, a.MaxConnectionsPerIP, 0)
		s.grpcSrv = grpc.NewServer(
			// The token is checked when a stream opens, before its
			// message is read: a caller without it cannot hold
			// streams open by sending half a message.
			grpc.InTapHandle(grpcTap(tokenHash, tokenSet)),
			grpc.UnaryInterceptor(grpcToken(tokenHash, tokenSet)),
			// As net/http's HTTP/2 server: grpc-go's default is no
			// bound, and each stream holds memory until its message
			// arrives.
			grpc.MaxConcurrentStreams(maxGRPCStreams),
			// As for HTTP: the handshake and the HTTP/2 preface within
			// read_header_timeout, and no connection idle past idle_timeout.
			grpc.ConnectionTimeout(s.cfg.Server.ReadHeaderTimeout),
			grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.Server.IdleTimeout}),
		)
		ext.Register(s.grpcSrv)
	}
	return nil
}

// maxGRPCStreams bounds the concurrent streams of one connection to the
// ext_authz listener: 250, net/http's HTTP/2 default.
const maxGRPCStreams = 250

var errGRPCToken = status.Error(codes.Unauthenticated, "missing or wrong x-tollgate-service-token")

// grpcTokenOK reports whether md carries the decision API's token
// (x-tollgate-service-token, which Envoy sends from grpc_service's
// initial_metadata), compared in constant time; always when no token is set.
func grpcTokenOK(md metadata.MD, hash [32]byte, set bool) bool {
	if !set {
		return true
	}
	var got string
	if v := md.Get("x-tollgate-service-token"); len(v) == 1 {
		got = v[0]
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], hash[:]) == 1
}

// grpcTap refuses a stream without the token as soon as its headers arrive.
func grpcTap(hash [32]byte, set bool) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if !grpcTokenOK(info.Header, hash, set) {
			return nil, errGRPCToken
		}
		return ctx, nil
	}
}

// grpcToken checks the token in the metadata of each call, as grpcTap does
// when the stream opens.
func grpcToken(hash [32]byte, set bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if !grpcTokenOK(md, hash, set) {
			return nil, errGRPCToken
		}
		return next(ctx, req)
	}
}

// buildEdge builds a gateway-role node: the gateway, deciding through the
// auth service, and its usage sent there; no store, no control plane.
func (s *Server) buildEdge() error {
	cfg := s.cfg
	a := cfg.AuthService
	client, err := authz.NewClient(a.URL, authz.ClientOptions{
		Token: a.Token, Timeout: a.Timeout, CacheTTL: a.DecisionCacheTTL, CacheSize: a.DecisionCacheSize,
	})
	if err != nil {
		return err
	}
	s.edge = client
	resolver, err := clientip.NewResolver(cfg.Server.TrustedProxies)
	if err != nil {
		return fmt.Errorf("server: trusted_proxies: %w", err)
	}
	s.metrics = metrics.New()
	u := cfg.Usage
	s.usage = usage.New(client, usage.Options{
		Buffer: u.Buffer, BatchSize: u.BatchSize, FlushInterval: u.FlushInterval, Logger: s.log, Clock: s.clock,
		RetryFor: u.RetryFor,
	})
	s.metrics.WatchUsageQueue(s.usage)
	if cfg.Counters.Type == "redis" {
		// Shared counters: the cap of WebSocket sessions holds across
		// nodes, and bans and revocations close them here too.
		if err := s.buildCounters(context.Background()); err != nil {
			return err
		}
	}
	s.buildSessions()
	gw, err := gateway.New(cfg.Routes, gateway.Options{
		Decider: client, Limiter: client, TrustedPeer: resolver.TrustsPeer, Sessions: s.sessions,
		Meter: func(e *store.UsageEvent, reason string) {
			s.metrics.ObserveRequest(e, reason)
			s.usage.Record(*e)
		},
		Upgrades:      cfg.Server.Upgrades,
		PrivateCookie: dashboard.IsCookie, // the auth nodes' dashboard may share a host name with this node
		Clock:         s.clock, Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.gateway = gw
	return s.buildListeners(resolver, nil, gw, nil)
}

// readiness reports what /readyz says: an error makes it 503.
func (s *Server) readiness(ctx context.Context) (map[string]string, error) {
	st := map[string]string{"status": "ready", "role": s.cfg.Role}
	if s.store != nil {
		if err := s.store.Ping(ctx); err != nil {
			return st, apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "store unreachable").Wrap(err)
		}
		st["store"] = "ok"
	}
	if s.failover != nil {
		switch {
		case !s.failover.Down():
			st["counters"] = "ok"
		case s.cfg.Counters.FailureMode == "open":
			st["counters"] = "unreachable: limits are per node (fail-open)"
		default:
			return st, apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable,
				"counter store unreachable (fail-closed)")
		}
	}
	if s.edge != nil {
		if err := s.edge.Ping(ctx); err != nil {
			return st, apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "auth service unreachable").Wrap(err)
		}
		st["auth_service"] = "ok"
	}
	return st, nil
}

// listen binds addr, guarded by g, when the listener is wanted, or returns
// nil.
func listen(wanted bool, addr, name string, g *connguard.Guard) (net.Listener, error) {
	if !wanted {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: %s listen: %w", name, err)
	}
	return g.Listen(ln), nil
}

var errNoRole = errors.New("server: unknown role")
