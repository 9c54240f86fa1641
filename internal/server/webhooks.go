package server

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/httpx"
	"github.com/tollgate/tollgate/internal/limits"
	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/webhooks"
)

// Scopes an OAuth token needs on /api/v1/webhooks.
const (
	ScopeWebhookRead  = "webhook.read"
	ScopeWebhookWrite = "webhook.write"
)

// eventTimeout bounds the recording of one event in the outbox.
const eventTimeout = 5 * time.Second

// buildWebhooks builds the webhook outbox and its dispatcher.
func (s *Server) buildWebhooks(box webhooks.Sealer) error {
	w := s.cfg.Webhooks
	policy := netguard.Policy{AllowPrivate: w.AllowPrivateNetworks, AllowHTTP: w.AllowHTTP}
	for _, c := range w.AllowedCIDRs {
		policy.AllowedCIDRs = append(policy.AllowedCIDRs, netip.MustParsePrefix(c)) // validated by config
	}
	if w.AllowPrivateNetworks || w.AllowHTTP {
		s.log.Warn("webhooks: private networks or plain http allowed as endpoints; for development only",
			"allow_private_networks", w.AllowPrivateNetworks, "allow_http", w.AllowHTTP)
	}
	svc, err := webhooks.New(webhooks.Options{
		Store: s.store, Sealer: box, Clock: s.clock, Policy: policy, Logger: s.log,
		AttemptTimeout: w.AttemptTimeout, DisableAfter: disableAfter(w.DisableAfter), SecretGrace: secretGrace(w.SecretGrace),
		Retention: w.Retention, Workers: w.Workers,
	})
	if err != nil {
		return err
	}
	s.webhooks = svc
	return nil
}

// secretGrace maps the configured grace to webhooks.Options', where zero
// means the default and a negative grace none.
func secretGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// disableAfter maps webhooks.disable_after to webhooks.Options', where zero
// means the default and a negative value never: in the configuration, 0
// is never.
func disableAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// emit is the events.Func of every service: it records the event in the
// webhook outbox, whatever becomes of the request that caused it.
func (s *Server) emit(ctx context.Context, orgID, eventType string, data any) {
	if s.webhooks == nil || orgID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	if _, err := s.webhooks.Emit(ctx, orgID, eventType, data); err != nil {
		s.log.Error("webhook event not recorded", "type", eventType, "org_id", orgID, "error", err)
	}
}

var _ events.Func = (*Server)(nil).emit

// quotaEvent reports a quota crossing as quota.threshold or quota.exhausted.
func (s *Server) quotaEvent(c limits.QuotaCrossing) {
	typ := events.QuotaThreshold
	if c.Exhausted {
		typ = events.QuotaExhausted
	}
	data := map[string]any{
		"plan": c.Plan, "period": c.Period, "period_end": c.PeriodEnd.UTC(),
		"units_used": c.Used, "units_limit": c.Quota, "percent": c.Used * 100 / c.Quota,
	}
	if c.CredentialID != "" {
		data["credential_id"] = c.CredentialID
	}
	s.emit(context.Background(), c.OrgID, typ, data)
}

var errWebhookRole = apierror.New(http.StatusForbidden, apierror.Forbidden,
	"only an owner or admin of the organization may change its webhooks").WithReason("role")

// authorizeWebhooks admits a dashboard session (any member reads, owners
// and admins write) or an OAuth access token with the webhook.read or
// webhook.write scope (INSUFFICIENT_SCOPE otherwise).
func (s *Server) authorizeWebhooks(r *http.Request, write bool) (webhooks.Caller, error) {
	token, ok := httpx.BearerToken(r)
	if !ok {
		return webhooks.Caller{}, apierror.ErrUnauthorized.WithHeader("WWW-Authenticate", `Bearer realm="tollgate"`)
	}
	ip := reqinfo.From(r.Context()).ClientIP
	if sess, err := s.accounts.Authenticate(r.Context(), token); err == nil {
		if write && sess.User.Role != store.RoleOwner && sess.User.Role != store.RoleAdmin {
			return webhooks.Caller{}, errWebhookRole
		}
		return webhooks.Caller{OrgID: sess.User.OrgID, Actor: store.Actor{Type: store.ActorUser, ID: sess.User.ID, IP: ip.String()}}, nil
	} else if !isUnauthorized(err) {
		return webhooks.Caller{}, err
	}
	p, err := s.oauth.Authenticate(r)
	if err != nil {
		return webhooks.Caller{}, err
	}
	if !p.IPAllowlist.Contains(ip) {
		return webhooks.Caller{}, apierror.New(http.StatusForbidden, apierror.Forbidden,
			"requests from this IP address are not allowed for this credential").WithReason(apierror.ReasonIPNotAllowed)
	}
	need := ScopeWebhookRead
	if write {
		need = ScopeWebhookWrite
	}
	// webhook.write includes reading.
	allowed := p.HasScopes([]string{need}) || (need == ScopeWebhookRead && p.HasScopes([]string{ScopeWebhookWrite}))
	if !allowed {
		return webhooks.Caller{}, apierror.New(http.StatusForbidden, apierror.InsufficientScope,
			"this token lacks the "+need+" scope").
			WithHeader("WWW-Authenticate", `Bearer realm="tollgate", error="insufficient_scope", scope="`+need+`"`)
	}
	return webhooks.Caller{OrgID: p.OrgID, Actor: store.Actor{Type: store.ActorApp, ID: p.AppID, IP: ip.String()}}, nil
}

// isUnauthorized reports whether err is a 401: the token is not a
// dashboard session, and may be an OAuth token.
func isUnauthorized(err error) bool {
	return apierror.From(err).Status == http.StatusUnauthorized
}
