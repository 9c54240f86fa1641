package store

// Actor is who performs an action, as recorded in the audit log.
type Actor struct {
	Type ActorType
	ID   string // user ID for ActorUser, "" otherwise
	IP   string // client IP when the action came through HTTP
}

// Entry returns an audit entry of this actor for action on a target.
// details may be nil.
func (a Actor) Entry(orgID, action, targetType, targetID string, details map[string]string) AuditEntry {
	return AuditEntry{
		OrgID:      orgID,
		ActorType:  a.Type,
		ActorID:    a.ID,
		Action:     action,
		TargetType: targetType,
		TargetID:   targetID,
		IP:         a.IP,
		Details:    details,
	}
}
