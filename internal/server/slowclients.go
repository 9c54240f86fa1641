package server

import (
	"net/http"

	"github.com/tollgate/tollgate/internal/clientip"
	"github.com/tollgate/tollgate/internal/connguard"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/logging"
	"github.com/tollgate/tollgate/internal/reqinfo"
)

// Names of the listeners, in logs and in the listener label of metrics.
const (
	listenerPublic = "public"
	listenerAdmin  = "admin"
	listenerAuth   = "auth_service"
	listenerGRPC   = "auth_service_grpc"
	// listenerDashboard is the dashboard's own listener (dashboard.listen).
	listenerDashboard = "dashboard"
)

// listenerGuard returns what protects the listener called name from slow
// and greedy clients (README, Security notes): the guard of its connections
// — at most perIP open from one address (peers in server.trusted_proxies
// exempt) and total in all, 0 meaning no limit; server.send_timeout on every
// write — and, for an HTTP listener, the middleware that bounds the time of
// request bodies (server.body_timeout, server.min_body_rate) and of each
// write of an HTTP/2 response (server.send_timeout per stream: a stream
// whose flow-control window stays shut writes nothing to the connection,
// which the guard's deadline would never see). Both report to
// the listener's metrics and to the log, at most one line per second for
// each kind of event.
func (s *Server) listenerGuard(name string, resolver *clientip.Resolver, perIP, total int) (*connguard.Guard, httpx.Middleware) {
	cfg := s.cfg.Server
	var g *connguard.Guard
	m := s.metrics.Listener(name, func() int { return g.Open() })
	g = connguard.New(connguard.Options{
		Name: name, MaxPerAddr: perIP, MaxTotal: total, Exempt: resolver.TrustsAddr,
		SendTimeout: cfg.SendTimeout, Observer: m, Logger: s.log, Clock: s.clock,
	})
	throttle := &logging.Throttle{}
	bodyDeadline := httpx.BodyDeadline(httpx.BodyDeadlineOptions{
		Timeout: cfg.BodyTimeout, MinRate: cfg.MinBodyRate,
		OnTimeout: func(r *http.Request, cut httpx.SlowBody) {
			m.BodyTimeout()
			ok, suppressed := throttle.Allow(s.clock.Now())
			if !ok {
				return
			}
			info := reqinfo.From(r.Context())
			s.log.Info("request body too slow: cut",
				"listener", name, "request_id", info.ID, "client_ip", info.ClientIP.String(),
				"method", r.Method, "path", r.URL.Path, "content_length", r.ContentLength,
				"received_bytes", cut.Received, "elapsed_ms", cut.Elapsed.Milliseconds(), "answered_408", cut.Answered,
				"cuts_not_logged", suppressed)
		},
	})
	sendThrottle := &logging.Throttle{}
	sendDeadline := httpx.SendDeadline(cfg.SendTimeout, func(r *http.Request) {
		m.SendTimeout()
		if ok, suppressed := sendThrottle.Allow(s.clock.Now()); ok {
			info := reqinfo.From(r.Context())
			s.log.Info("HTTP/2 response not read in time: stream reset",
				"listener", name, "request_id", info.ID, "client_ip", info.ClientIP.String(),
				"send_timeout", cfg.SendTimeout.String(), "cuts_not_logged", suppressed)
		}
	})
	return g, func(next http.Handler) http.Handler { return bodyDeadline(sendDeadline(next)) }
}
