package server

import (
	"context"
	"errors"
	"time"

	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/store"

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
	o := gateway.SessionsOptions{
		Counters: c, Max: ws.MaxSessionsPerCredential, Lease: ws.SessionLease, Clock: s.clock, Logger: s.log,
	}
	if s.store != nil {
		o.Recheck = s.recheckSession
	}
	s.sessions = gateway.NewSessions(o)
}

// recheckSession reads again whether a session of p, opened at opened, may
// go on: after the bus's Resync, when a revocation's message may have been
// lost. It checks what revocations change in the store: the organization
// disabled or gone, the API key revoked or expired, the app deleted, the
// token revoked, the app's tokens revoked after the session opened (its
// token was issued before), the wallet's subscription over.
func (s *Server) recheckSession(ctx context.Context, p *authn.Principal, opened time.Time) (bool, error) {
	gone := func(err error) (bool, error) {
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	org, err := s.store.GetOrganization(ctx, p.OrgID)
	if err != nil {
		return gone(err)
	}
	if org.Disabled() {
		return false, nil
	}
	now := s.clock.Now()
	switch p.Method {
	case authn.MethodAPIKey:
		k, err := s.store.GetAPIKey(ctx, p.CredentialID)
		if err != nil {
			return gone(err)
		}
		return k.Status(now) == store.KeyActive, nil
	case authn.MethodBearer:
		app, err := s.store.GetAppByClientID(ctx, p.CredentialID)
		if err != nil {
			return gone(err)
		}
		if app.TokensNotBefore.After(opened) {
			return false, nil
		}
		if p.TokenID != "" {
			revoked, err := s.store.AccessTokenRevoked(ctx, p.TokenID)
			return !revoked, err
		}
	case authn.MethodSIWX:
		sub, err := s.store.GetSubscription(ctx, p.CredentialID)
		if err != nil {
			return gone(err)
		}
		return sub.Active(now), nil
	}
	return true, nil
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
