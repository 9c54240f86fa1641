package controlapi

import (
	"encoding/json"
	"github.com/tollgate/tollgate/internal/httpx"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/store"
)

// APIKey is the public view of an API key: never its secret or hash.
type APIKey struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Prefix      string   `json:"prefix"`
	AppID       string   `json:"app_id,omitempty"`
	Scopes      []string `json:"scopes"`
	IPAllowlist []string `json:"ip_allowlist"`
	Status      string   `json:"status"`
	// HasSigningSecret tells that the key can sign requests (HMAC).
	HasSigningSecret  bool `json:"has_signing_secret"`
	SignatureRequired bool `json:"signature_required"`
	// Plan is the key's own plan, overriding the organization's; set by
	// the operator (`tollgate apikey set-plan`).
	Plan       string     `json:"plan,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// APIKeyView renders k as of now.
func APIKeyView(k store.APIKey, now time.Time) APIKey {
	return APIKey{
		ID:                k.ID,
		Name:              k.Name,
		Prefix:            k.Prefix,
		AppID:             k.AppID,
		Scopes:            nonNil(k.Scopes),
		IPAllowlist:       nonNil(k.IPAllowlist),
		Status:            k.Status(now),
		HasSigningSecret:  len(k.SigningSecret) > 0,
		SignatureRequired: k.SignatureRequired,
		Plan:              k.Plan,
		CreatedAt:         ts(k.CreatedAt),
		ExpiresAt:         optTime(k.ExpiresAt),
		LastUsedAt:        optTime(k.LastUsedAt),
		RevokedAt:         optTime(k.RevokedAt),
	}
}

// CreatedAPIKey is the answer to a key creation: the only time the key itself
// is ever shown.
type CreatedAPIKey struct {
	APIKey
	Key string `json:"key"`
	// SigningSecret is the HMAC request-signing secret, when asked for.
	SigningSecret string `json:"signing_secret,omitempty"`
	Warning       string `json:"warning"`
}

// ShownOnce is the warning that goes with every secret.
const ShownOnce = "Store this secret now: it is shown only once and cannot be recovered."

// User is the public view of a user.
type User struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"organization_id"`
	Email       string     `json:"email"`
	Role        string     `json:"role"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// UserView renders u.
func UserView(u store.User) User {
	return User{
		ID: u.ID, OrgID: u.OrgID, Email: u.Email, Role: string(u.Role), Status: string(u.Status),
		CreatedAt: ts(u.CreatedAt), LastLoginAt: optTime(u.LastLoginAt),
	}
}

// Organization is the public view of an organization.
type Organization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
	Plan string `json:"plan,omitempty"`
	// Status is "active", or "disabled" by an operator (see
	// DisabledReason and DisabledAt).
	Status         string     `json:"status"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Organization statuses, as Organization.Status shows them.
const (
	OrgActive   = "active"
	OrgDisabled = "disabled"
)

// OrganizationView renders o.
func OrganizationView(o store.Organization) Organization {
	v := Organization{ID: o.ID, Name: o.Name, Slug: o.Slug, Plan: o.Plan, Status: OrgActive, CreatedAt: ts(o.CreatedAt)}
	if o.Disabled() {
		t := ts(o.DisabledAt)
		v.Status, v.DisabledReason, v.DisabledAt = OrgDisabled, o.DisabledReason, &t
	}
	return v
}

// AuditEntry is the public view of an audit entry.
type AuditEntry struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	ActorType  string            `json:"actor_type"`
	ActorID    string            `json:"actor_id,omitempty"`
	Action     string            `json:"action"`
	TargetType string            `json:"target_type"`
	TargetID   string            `json:"target_id"`
	IP         string            `json:"ip,omitempty"`
	Details    map[string]string `json:"details,omitempty"`
}

func auditView(a store.AuditEntry) AuditEntry {
	return AuditEntry{
		ID: a.ID, Time: ts(a.Time), ActorType: string(a.ActorType), ActorID: a.ActorID, Action: a.Action,
		TargetType: a.TargetType, TargetID: a.TargetID, IP: a.IP, Details: a.Details,
	}
}

// List wraps a collection.
type List[T any] struct {
	Data []T `json:"data"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ts renders times as the store keeps them (UTC, microseconds), so a value
// reads the same when it is created and when it is fetched again.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ts(t)
	return &t
}

// Optional is a request field that distinguishes absent, null and a value
// (httpx.Optional).
type Optional[T any] = httpx.Optional[T]

// Allowlist is an IP allowlist request field: a JSON array of addresses and
// CIDR prefixes, or one comma-separated string.
type Allowlist struct{ ipallow.List }

// UnmarshalJSON reports a bad entry as a BAD_REQUEST on ip_allowlist.
func (a *Allowlist) UnmarshalJSON(b []byte) error {
	if err := a.List.UnmarshalJSON(b); err != nil {
		return apierror.Invalid("ip_allowlist", "%s", err.Error())
	}
	return nil
}

// Timestamp is an RFC 3339 request field.
type Timestamp struct{ time.Time }

// UnmarshalJSON reports a bad timestamp as a BAD_REQUEST.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return apierror.Invalid("", "timestamps must be RFC 3339 strings such as 2027-01-31T00:00:00Z")
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return apierror.Invalid("", "%q is not an RFC 3339 timestamp such as 2027-01-31T00:00:00Z", s)
	}
	t.Time = v.UTC()
	return nil
}
