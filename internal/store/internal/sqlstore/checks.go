package sqlstore

import (
	"fmt"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/store"
)

// Audit limits: ListAudit returns DefaultAuditLimit entries when the filter
// does not say, and never more than MaxAuditLimit.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// CompleteAudit returns a with its ID and Time filled in when empty (a new
// ID, clk's current time), and its TargetID with targetID when empty
// (targetID is the ID of the object the calling method creates, or "").
func CompleteAudit(a store.AuditEntry, clk clock.Clock, targetID string) store.AuditEntry {
	if a.ID == "" {
		a.ID = ids.New(ids.Audit)
	}
	if a.Time.IsZero() {
		a.Time = clk.Now()
	}
	if a.TargetID == "" {
		a.TargetID = targetID
	}
	return a
}

// OrgOwner returns the owner of a new organization org: owner, its OrgID
// set to org.ID when empty. Any other OrgID than org.ID is an error.
func OrgOwner(org store.Organization, owner store.User) (store.User, error) {
	if owner.OrgID == "" {
		owner.OrgID = org.ID
	}
	if owner.OrgID != org.ID {
		return owner, fmt.Errorf("owner %q belongs to organization %q, not %q", owner.ID, owner.OrgID, org.ID)
	}
	return owner, nil
}

// TokenUsed is the error of a refresh token that was used or revoked
// already: store.ErrTokenUsed.
func TokenUsed(id string) error {
	return fmt.Errorf("refresh token %q: %w", id, store.ErrTokenUsed)
}

// CheckRotation refuses to rotate the refresh token old into next when old
// was used or revoked already (TokenUsed), or when next is not of old's
// family and user.
func CheckRotation(old, next store.RefreshToken) error {
	if !old.UsedAt.IsZero() || !old.RevokedAt.IsZero() {
		return TokenUsed(old.ID)
	}
	if next.FamilyID != old.FamilyID || next.UserID != old.UserID {
		return fmt.Errorf("refresh token %q: next token %q is of family %q and user %q, want %q and %q",
			old.ID, next.ID, next.FamilyID, next.UserID, old.FamilyID, old.UserID)
	}
	return nil
}
