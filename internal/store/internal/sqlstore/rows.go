package sqlstore

import (
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
)

// The rows of the tables, as both backends read and write them. For each
// table: its column list (which the backends' SQL selects and inserts), the
// scanner that reads a row of those columns in that order, the values an
// INSERT writes into them in that order, and, for the tables with an Update
// method, the fields an update may not change.

// RowScanner is what a single row (*sql.Row, pgx.Row) and a result set
// (*sql.Rows, pgx.Rows) have in common.
type RowScanner interface {
	Scan(dest ...any) error
}

// ScanAll scans every row of rows with scan, and returns what it scanned,
// never nil, or the first error of scan or rows. It does not close rows.
func ScanAll[T any, R interface {
	RowScanner
	Next() bool
	Err() error
}](rows R, scan func(RowScanner) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ScanID reads a row of one text column.
func ScanID(r RowScanner) (id string, err error) {
	err = r.Scan(&id)
	return id, err
}

// --- Organizations ---

// OrgColumns are the columns of organizations.
const OrgColumns = `id, name, slug, plan, disabled_at, disabled_reason, created_at, updated_at`

// ScanOrg reads a row of OrgColumns.
func ScanOrg(r RowScanner) (store.Organization, error) {
	var o store.Organization
	err := r.Scan(&o.ID, &o.Name, &o.Slug, &o.Plan, TimeCol(&o.DisabledAt), &o.DisabledReason,
		TimeCol(&o.CreatedAt), TimeCol(&o.UpdatedAt))
	return o, err
}

// OrgValues returns the values of OrgColumns for o.
func OrgValues(o store.Organization) []any {
	return []any{o.ID, o.Name, o.Slug, o.Plan, Micros(o.DisabledAt), OrgReason(o),
		Micros(o.CreatedAt), Micros(o.UpdatedAt)}
}

// OrgReason is the disabled_reason stored for o: its reason while it is
// disabled, "" once enabled, so that no stale reason outlives the state.
func OrgReason(o store.Organization) string {
	if !o.Disabled() {
		return ""
	}
	return o.DisabledReason
}

// KeepOrg returns o with the fields of old that an update may not change:
// ID and CreatedAt.
func KeepOrg(old, o store.Organization) store.Organization {
	o.ID, o.CreatedAt = old.ID, old.CreatedAt
	return o
}

// --- Users ---

// UserColumns are the columns of users.
const UserColumns = `id, org_id, email, password_hash, role, status, created_at, updated_at, last_login_at`

// ScanUser reads a row of UserColumns.
func ScanUser(r RowScanner) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.OrgID, &u.Email, &u.PasswordHash, &u.Role, &u.Status,
		TimeCol(&u.CreatedAt), TimeCol(&u.UpdatedAt), TimeCol(&u.LastLoginAt))
	return u, err
}

// UserValues returns the values of UserColumns for u, its email normalized.
func UserValues(u store.User) []any {
	return []any{u.ID, u.OrgID, NormalizeEmail(u.Email), u.PasswordHash, string(u.Role), string(u.Status),
		Micros(u.CreatedAt), Micros(u.UpdatedAt), Micros(u.LastLoginAt)}
}

// KeepUser returns u with the fields of old that an update may not change:
// ID, OrgID, Email and CreatedAt.
func KeepUser(old, u store.User) store.User {
	u.ID, u.OrgID, u.Email, u.CreatedAt = old.ID, old.OrgID, old.Email, old.CreatedAt
	return u
}

// NormalizeEmail is how emails are stored and looked up.
func NormalizeEmail(email string) string { return strings.ToLower(email) }

// --- Apps ---

// AppColumns are the columns of apps.
const AppColumns = `id, org_id, name, environment, client_id, secret_hash, allowed_scopes, ip_allowlist, tokens_not_before, created_at, updated_at`

// ScanApp reads a row of AppColumns.
func ScanApp(r RowScanner) (store.App, error) {
	var a store.App
	err := r.Scan(&a.ID, &a.OrgID, &a.Name, &a.Environment, &a.ClientID, BlobCol(&a.SecretHash),
		ListCol(&a.AllowedScopes), ListCol(&a.IPAllowlist), TimeCol(&a.TokensNotBefore), TimeCol(&a.CreatedAt), TimeCol(&a.UpdatedAt))
	return a, err
}

// AppValues returns the values of AppColumns for app.
func AppValues(app store.App) []any {
	return []any{app.ID, app.OrgID, app.Name, app.Environment, app.ClientID,
		Blob(app.SecretHash), JSONList(app.AllowedScopes), JSONList(app.IPAllowlist),
		Micros(app.TokensNotBefore), Micros(app.CreatedAt), Micros(app.UpdatedAt)}
}

// KeepApp returns app with the fields of old that an update may not change:
// ID, OrgID, ClientID and CreatedAt.
func KeepApp(old, app store.App) store.App {
	app.ID, app.OrgID, app.ClientID, app.CreatedAt = old.ID, old.OrgID, old.ClientID, old.CreatedAt
	return app
}

// --- API keys ---

// APIKeyColumns are the columns of api_keys.
const APIKeyColumns = `id, org_id, app_id, name, prefix, hash, scopes, ip_allowlist, expires_at, created_at, updated_at, created_by, last_used_at, revoked_at, signing_secret, signature_required, plan` //nolint:gosec // G101: column names, not a credential

// ScanAPIKey reads a row of APIKeyColumns.
func ScanAPIKey(r RowScanner) (store.APIKey, error) {
	var k store.APIKey
	err := r.Scan(&k.ID, &k.OrgID, &k.AppID, &k.Name, &k.Prefix, BlobCol(&k.Hash),
		ListCol(&k.Scopes), ListCol(&k.IPAllowlist), TimeCol(&k.ExpiresAt), TimeCol(&k.CreatedAt),
		TimeCol(&k.UpdatedAt), &k.CreatedBy, TimeCol(&k.LastUsedAt), TimeCol(&k.RevokedAt),
		BlobCol(&k.SigningSecret), &k.SignatureRequired, &k.Plan)
	return k, err
}

// APIKeyValues returns the values of APIKeyColumns for k.
func APIKeyValues(k store.APIKey) []any {
	return []any{k.ID, k.OrgID, k.AppID, k.Name, k.Prefix, Blob(k.Hash),
		JSONList(k.Scopes), JSONList(k.IPAllowlist), Micros(k.ExpiresAt), Micros(k.CreatedAt),
		Micros(k.UpdatedAt), k.CreatedBy, Micros(k.LastUsedAt), Micros(k.RevokedAt),
		NullBlob(k.SigningSecret), k.SignatureRequired, k.Plan}
}

// KeepAPIKey returns k with the fields of old that an update may not
// change: ID, OrgID, Prefix, Hash and CreatedAt.
func KeepAPIKey(old, k store.APIKey) store.APIKey {
	k.ID, k.OrgID, k.Prefix, k.Hash, k.CreatedAt = old.ID, old.OrgID, old.Prefix, old.Hash, old.CreatedAt
	return k
}

// --- Plans ---

// PlanColumns are the columns of plans.
const PlanColumns = `name, requests_per_second, burst, quota_units, quota_period, updated_at`

// ScanPlan reads a row of PlanColumns.
func ScanPlan(r RowScanner) (store.Plan, error) {
	var p store.Plan
	err := r.Scan(&p.Name, &p.RequestsPerSecond, &p.Burst, &p.QuotaUnits, &p.QuotaPeriod, TimeCol(&p.UpdatedAt))
	return p, err
}

// PlanValues returns the values of PlanColumns for p.
func PlanValues(p store.Plan) []any {
	return []any{p.Name, p.RequestsPerSecond, p.Burst, p.QuotaUnits, p.QuotaPeriod, Micros(p.UpdatedAt)}
}

// --- Signing keys ---

// SigningKeyColumns are the columns of signing_keys.
const SigningKeyColumns = `id, algorithm, private_key, created_at, retired_at`

// ScanSigningKey reads a row of SigningKeyColumns.
func ScanSigningKey(r RowScanner) (store.SigningKey, error) {
	var k store.SigningKey
	err := r.Scan(&k.ID, &k.Algorithm, BlobCol(&k.PrivateKey), TimeCol(&k.CreatedAt), TimeCol(&k.RetiredAt))
	return k, err
}

// SigningKeyValues returns the values of SigningKeyColumns for k.
func SigningKeyValues(k store.SigningKey) []any {
	return []any{k.ID, k.Algorithm, Blob(k.PrivateKey), Micros(k.CreatedAt), Micros(k.RetiredAt)}
}

// --- Refresh tokens ---

// RefreshTokenColumns are the columns of refresh_tokens.
const RefreshTokenColumns = `id, family_id, user_id, hash, created_at, expires_at, used_at, revoked_at, used_by` //nolint:gosec // G101: column names, not a credential

// ScanRefreshToken reads a row of RefreshTokenColumns.
func ScanRefreshToken(r RowScanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := r.Scan(&t.ID, &t.FamilyID, &t.UserID, BlobCol(&t.Hash), TimeCol(&t.CreatedAt),
		TimeCol(&t.ExpiresAt), TimeCol(&t.UsedAt), TimeCol(&t.RevokedAt), BlobCol(&t.UsedBy))
	return t, err
}

// RefreshTokenValues returns the values of RefreshTokenColumns for t.
func RefreshTokenValues(t store.RefreshToken) []any {
	return []any{t.ID, t.FamilyID, t.UserID, Blob(t.Hash), Micros(t.CreatedAt),
		Micros(t.ExpiresAt), Micros(t.UsedAt), Micros(t.RevokedAt), NullBlob(t.UsedBy)}
}

// --- Audit log ---

// AuditColumns are the columns of audit_log.
const AuditColumns = `id, time, org_id, actor_type, actor_id, action, target_type, target_id, ip, details`

// ScanAudit reads a row of AuditColumns.
func ScanAudit(r RowScanner) (store.AuditEntry, error) {
	var a store.AuditEntry
	err := r.Scan(&a.ID, TimeCol(&a.Time), &a.OrgID, &a.ActorType, &a.ActorID, &a.Action,
		&a.TargetType, &a.TargetID, &a.IP, ObjectCol(&a.Details))
	return a, err
}

// AuditValues returns the values of AuditColumns for a.
func AuditValues(a store.AuditEntry) []any {
	return []any{a.ID, Micros(a.Time), a.OrgID, string(a.ActorType), a.ActorID,
		a.Action, a.TargetType, a.TargetID, a.IP, JSONObject(a.Details)}
}

// --- Subscriptions and payments ---

// SubscriptionColumns are the columns of subscriptions.
const SubscriptionColumns = `wallet, org_id, plan, started_at, expires_at, created_at, updated_at`

// ScanSubscription reads a row of SubscriptionColumns.
func ScanSubscription(r RowScanner) (store.Subscription, error) {
	var s store.Subscription
	err := r.Scan(&s.Wallet, &s.OrgID, &s.Plan, TimeCol(&s.StartedAt), TimeCol(&s.ExpiresAt),
		TimeCol(&s.CreatedAt), TimeCol(&s.UpdatedAt))
	return s, err
}

// SubscriptionValues returns the values of SubscriptionColumns for sub.
func SubscriptionValues(sub store.Subscription) []any {
	return []any{sub.Wallet, sub.OrgID, sub.Plan, Micros(sub.StartedAt),
		Micros(sub.ExpiresAt), Micros(sub.CreatedAt), Micros(sub.UpdatedAt)}
}

// PaymentColumns are the columns of payments.
const PaymentColumns = `id, authorization_key, wallet, plan, network, asset, amount, pay_to, transaction_ref, facilitator, time`

// ScanPayment reads a row of PaymentColumns.
func ScanPayment(r RowScanner) (store.Payment, error) {
	var p store.Payment
	err := r.Scan(&p.ID, &p.Authorization, &p.Wallet, &p.Plan, &p.Network, &p.Asset, &p.Amount,
		&p.PayTo, &p.Transaction, &p.Facilitator, TimeCol(&p.Time))
	return p, err
}

// PaymentValues returns the values of PaymentColumns for p.
func PaymentValues(p store.Payment) []any {
	return []any{p.ID, p.Authorization, p.Wallet, p.Plan, p.Network,
		p.Asset, p.Amount, p.PayTo, p.Transaction, p.Facilitator, Micros(p.Time)}
}

// --- Webhooks ---

// EndpointColumns are the columns of webhook_endpoints.
const EndpointColumns = `id, org_id, url, description, event_types, secret, previous_secret, previous_secret_expires_at,
		disabled, disabled_reason, disabled_at, created_at, updated_at, ` + HealthColumns

// HealthColumns are the columns of webhook_endpoints that hold its
// store.WebhookHealth, last of EndpointColumns.
const HealthColumns = `consecutive_failures, failing_since, last_success_at, last_failure_at, last_failure_status, last_failure_error`

// ScanEndpoint reads a row of EndpointColumns.
func ScanEndpoint(r RowScanner) (store.WebhookEndpoint, error) {
	var e store.WebhookEndpoint
	h := &e.Health
	err := r.Scan(&e.ID, &e.OrgID, &e.URL, &e.Description, ListCol(&e.EventTypes), BlobCol(&e.Secret),
		BlobCol(&e.PreviousSecret), TimeCol(&e.PreviousSecretExpiresAt), &e.Disabled, &e.DisabledReason,
		TimeCol(&e.DisabledAt), TimeCol(&e.CreatedAt), TimeCol(&e.UpdatedAt),
		&h.ConsecutiveFailures, TimeCol(&h.FailingSince), TimeCol(&h.LastSuccessAt), TimeCol(&h.LastFailureAt),
		&h.LastFailureStatus, &h.LastFailureError)
	return e, err
}

// EndpointValues returns the values of EndpointColumns for e, its event
// types as EventTypes stores them.
func EndpointValues(e store.WebhookEndpoint) []any {
	return append([]any{e.ID, e.OrgID, e.URL, e.Description, EventTypes(e.EventTypes),
		Blob(e.Secret), NullBlob(e.PreviousSecret), Micros(e.PreviousSecretExpiresAt), e.Disabled, e.DisabledReason,
		Micros(e.DisabledAt), Micros(e.CreatedAt), Micros(e.UpdatedAt)}, HealthValues(e.Health)...)
}

// HealthValues returns the values of HealthColumns for h.
func HealthValues(h store.WebhookHealth) []any {
	return []any{h.ConsecutiveFailures, Micros(h.FailingSince), Micros(h.LastSuccessAt), Micros(h.LastFailureAt),
		h.LastFailureStatus, h.LastFailureError}
}

// KeepEndpoint returns e with the fields of old that an update may not
// change: ID, OrgID and CreatedAt.
func KeepEndpoint(old, e store.WebhookEndpoint) store.WebhookEndpoint {
	e.ID, e.OrgID, e.CreatedAt = old.ID, old.OrgID, old.CreatedAt
	return e
}

// DeliveryColumns are the columns of a delivery with its event: of
// webhook_deliveries AS d joined with webhook_events AS ev.
const DeliveryColumns = `d.id, d.event_id, d.endpoint_id, d.org_id, ev.type, ev.payload, ev.created_at, d.status,
		d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.finished_at,
		d.redelivery_of`

// ScanDelivery reads a row of DeliveryColumns.
func ScanDelivery(r RowScanner) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := r.Scan(&d.ID, &d.EventID, &d.EndpointID, &d.OrgID, &d.EventType, BlobCol(&d.Payload),
		TimeCol(&d.EventCreatedAt), &d.Status, &d.Attempts, TimeCol(&d.NextAttemptAt), TimeCol(&d.LastAttemptAt),
		&d.LastStatusCode, &d.LastError, TimeCol(&d.CreatedAt), TimeCol(&d.FinishedAt), &d.RedeliveryOf)
	return d, err
}

// AttemptColumns are the columns of webhook_attempts.
const AttemptColumns = `delivery_id, n, at, duration, status_code, error, succeeded`

// ScanAttempt reads a row of AttemptColumns.
func ScanAttempt(r RowScanner) (store.WebhookAttempt, error) {
	var a store.WebhookAttempt
	var us int64
	err := r.Scan(&a.DeliveryID, &a.N, TimeCol(&a.At), &us, &a.StatusCode, &a.Error, &a.Succeeded)
	a.Duration = time.Duration(us) * time.Microsecond
	return a, err
}

// AttemptValues returns the values of AttemptColumns for at.
func AttemptValues(at store.WebhookAttempt) []any {
	return []any{at.DeliveryID, at.N, Micros(at.At), at.Duration.Microseconds(),
		at.StatusCode, at.Error, at.Succeeded}
}
