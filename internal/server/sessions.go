package server

import (
	"context"

	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/gateway"
)

// buildSessions builds the register of WebSocket sessions on the node's
// counters: its cap holds across the nodes sharing them (Redis), per node
// otherwise. A gateway-role node without counters of its own caps per node.
func (s *Server) buildSessions() {
	c := s.counters
	if c == nil {
		c = memory.New(s.clock)
	}
	ws := s.cfg.Auth.WebSocket
	s.sessions = gateway.NewSessions(gateway.SessionsOptions{
		Counters: c, Max: ws.MaxSessionsPerCredential, Lease: ws.SessionLease, Clock: s.clock, Logger: s.log,
	})
}

// runSessions renews the sessions' slots, and closes the sessions of what
// is banned on any node, until ctx ends. On a node without a store (the
// gateway role), the invalidation bus, when it has one, closes the
// sessions of revoked credentials and disabled organizations too (on the
// others applyInvalidation does).
func (s *Server) runSessions(ctx context.Context) {
	if s.counters != nil {
		stop := s.counters.WatchBans(func(key string) { s.sessions.Banned(key, s.counters) })
		defer stop()
	}
	if s.store == nil && s.bus != nil {
		stop := s.bus.Subscribe(s.endSessions)
		defer stop()
	}
	s.sessions.Run(ctx)
	<-ctx.Done()
}

// endSessions closes the sessions a message of the bus ends.
func (s *Server) endSessions(msg string) { s.sessions.End(msg) }
