package accounts

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/validate"
)

// MaxReasonLength bounds the reason an operator gives for disabling an
// organization.
const MaxReasonLength = 200

// errSameStatus stops an update that would change nothing.
var errSameStatus = errors.New("accounts: organization already in that state")

// SetOrgDisabled disables (disable true, with the operator's reason, which is
// required) or enables an organization, by ID or slug, audited as
// org.disable or org.enable. Disabling refuses at once, on every node (its
// message goes through Options.Broadcast), every API key, app token, wallet
// subscription and user login of the organization, and ends its open
// WebSocket sessions; nothing is deleted, and enabling restores them all.
// Setting the state it already has changes nothing (no audit entry) and
// returns the organization as it is.
func (s *Service) SetOrgDisabled(ctx context.Context, ref string, disable bool, reason string, actor store.Actor) (store.Organization, error) {
	action, msg := "org.enable", authn.MsgOrgEnabled
	var details map[string]string
	if disable {
		r, err := validate.Name("reason", reason, MaxReasonLength)
		if err != nil {
			return store.Organization{}, err
		}
		reason, action, msg, details = r, "org.disable", authn.MsgOrgDisabled, map[string]string{"reason": r}
	}
	org, err := s.FindOrganization(ctx, ref)
	if err != nil {
		return store.Organization{}, err
	}
	now := s.o.Clock.Now()
	updated, err := s.store.UpdateOrganization(ctx, org.ID, func(o store.Organization) (store.Organization, error) {
		if o.Disabled() == disable {
			return o, errSameStatus
		}
		o.DisabledAt, o.DisabledReason = now, reason
		if !disable {
			o.DisabledAt, o.DisabledReason = time.Time{}, ""
		}
		o.UpdatedAt = now
		return o, nil
	}, actor.Entry(org.ID, action, "organization", org.ID, details))
	switch {
	case errors.Is(err, errSameStatus):
		updated, err = s.store.GetOrganization(ctx, org.ID)
		if err != nil {
			return store.Organization{}, err
		}
	case errors.Is(err, store.ErrNotFound):
		return store.Organization{}, errNoOrg
	case err != nil:
		return store.Organization{}, err
	}
	// Sent even when nothing changed: a node that missed the first message
	// (its subscription was down) hears it now.
	if s.o.Broadcast != nil {
		s.o.Broadcast(msg + org.ID)
	}
	return updated, nil
}

// checkOrg refuses the users of a disabled organization.
func (s *Service) checkOrg(ctx context.Context, orgID string) error {
	org, err := s.store.GetOrganization(ctx, orgID)
	if errors.Is(err, store.ErrNotFound) {
		return apierror.New(http.StatusUnauthorized, apierror.InvalidToken, "no such organization")
	}
	if err != nil {
		return err
	}
	if org.Disabled() {
		return apierror.ErrOrgDisabled
	}
	return nil
}
