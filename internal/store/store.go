// Package store defines Tollgate's durable state: organizations, users, apps,
// API keys, plans, signing keys, refresh tokens, subscriptions, usage, the
// webhook outbox and the audit log.
//
// The Store interface is implemented by the sqlite package (the embedded
// default) and by later backends; every implementation must pass the
// conformance suite in package storetest unchanged.
//
// Values are plain structs. A zero time.Time means "not set" (never expires,
// never used, not revoked). Implementations keep times at microsecond precision
// in UTC, so a value read back equals the value written after
// t.UTC().Truncate(time.Microsecond). Slices read back are never nil.
//
// Every method that changes a credential or an account takes an AuditEntry and
// writes it in the same transaction as the change, so that no change happens
// without its audit record. The store fills in the entry's ID and Time when they
// are empty, and TargetID when the method creates the target.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no object matched.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a unique field (ID, email, slug, client ID, key hash)
	// is already taken.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrTokenUsed: a refresh token was presented after it had been used or
	// revoked (see RotateRefreshToken).
	ErrTokenUsed = errors.New("store: refresh token already used")
	// ErrConflict: the object is not in the state the change requires, such
	// as a webhook attempt recorded for a delivery that has moved on, or a
	// pending delivery redelivered (see RecordWebhookAttempt and
	// RedeliverWebhook).
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable: the database could not be reached (a network failure,
	// a restart); the same call may succeed later. Errors that wrap it
	// report Unavailable() true, which the HTTP layer answers with 503.
	ErrUnavailable error = unavailableError{}
)

type unavailableError struct{}

func (unavailableError) Error() string     { return "store: unavailable" }
func (unavailableError) Unavailable() bool { return true }

// Organization is a customer of the API platform. It owns users, apps and
// API keys, and is the unit that plans, quotas and usage apply to.
type Organization struct {
	ID   string
	Name string // display name, as entered
	// Slug is a unique, lowercase, URL-safe handle derived from the name,
	// used to address the organization from the CLI.
	Slug string
	Plan string // plan name; "" means the configured default plan
	// DisabledAt is when an operator disabled the organization; zero while
	// it is enabled. A disabled organization's API keys, apps' tokens,
	// wallet subscriptions and users' logins are all refused, and nothing
	// of it is deleted: enabling it (a zero DisabledAt) restores them.
	DisabledAt time.Time
	// DisabledReason is the operator's reason, kept for the record; ""
	// while enabled.
	DisabledReason string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Disabled reports whether an operator has disabled the organization.
func (o Organization) Disabled() bool { return !o.DisabledAt.IsZero() }

// UserStatus is the lifecycle state of a user account.
type UserStatus string

// User statuses. A registered user is pending until an operator activates it.
const (
	UserPending  UserStatus = "pending"
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// Role is a user's role inside its organization.
type Role string

// Roles, from most to least privileged.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// User is a person who logs in to manage an organization's credentials.
type User struct {
	ID           string
	OrgID        string
	Email        string // normalized to lower case; unique across the store
	PasswordHash string // argon2id, PHC string format
	Role         Role
	Status       UserStatus
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastLoginAt  time.Time
}

// App is one of an organization's applications (prod-main, test-dev, ...),
// holding OAuth 2.0 client credentials.
type App struct {
	ID            string
	OrgID         string
	Name          string
	Environment   string
	ClientID      string // unique across the store
	SecretHash    []byte // SHA-256 of the client secret
	AllowedScopes []string
	IPAllowlist   []string // canonical prefixes, see package ipallow
	// TokensNotBefore revokes every access token issued to the app before
	// it (set when the secret is rotated or all tokens are revoked). Zero:
	// none revoked this way.
	TokensNotBefore time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// RevokedToken records an access token revoked before its expiry (RFC 7009).
// It is kept until the token would have expired anyway, then purged.
type RevokedToken struct {
	JTI       string // the token's "jti"
	ClientID  string
	ExpiresAt time.Time
	RevokedAt time.Time
}

// APIKey is a long-lived credential presented in the X-API-KEY header. Only the
// SHA-256 hash of the key is stored; Prefix is the non-secret start of the key,
// kept for display.
type APIKey struct {
	ID          string
	OrgID       string
	AppID       string // "" when the key is not tied to an app
	Name        string
	Prefix      string
	Hash        []byte // SHA-256 of the full key; unique across the store
	Scopes      []string
	IPAllowlist []string // canonical prefixes, see package ipallow
	ExpiresAt   time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	CreatedBy   string // actor that created the key, e.g. a user ID or "cli"
	LastUsedAt  time.Time
	RevokedAt   time.Time
	// SigningSecret is the key's HMAC request-signing secret, sealed with the
	// master key (see package secretbox); empty when the key has none.
	SigningSecret []byte
	// SignatureRequired refuses the key's requests that are not signed.
	SignatureRequired bool
	// Plan overrides the organization's plan for this key's requests, which
	// then have their own rate and quota; "" uses the organization's plan.
	Plan string
}

// Key statuses as shown to users; see APIKey.Status.
const (
	KeyActive  = "active"
	KeyExpired = "expired"
	KeyRevoked = "revoked"
)

// Status returns KeyRevoked, KeyExpired or KeyActive as of now.
func (k APIKey) Status(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return KeyRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return KeyExpired
	default:
		return KeyActive
	}
}

// Plan is a named allowance: a request rate and a quota of units per period.
// Plans are defined in the configuration and mirrored into the store so that
// every node and every report sees the same definitions.
type Plan struct {
	Name              string
	RequestsPerSecond float64 // 0 means unlimited
	Burst             int
	QuotaUnits        int64  // 0 means unlimited
	QuotaPeriod       string // "hour", "day" or "month" (calendar, UTC)
	UpdatedAt         time.Time
}

// Subscription is a wallet's paid access, bought with x402 payments. A
// wallet's first purchase creates an organization of its own, as
// which its requests are authorized, limited and metered; the organization's
// plan is the plan last bought.
type Subscription struct {
	// Wallet is the account as "namespace:address", the namespace being the
	// CAIP-2 namespace of its chain family: "eip155:0x…" (EIP-55
	// checksummed) or "solana:…" (base58). A wallet signs in on any chain
	// of its family.
	Wallet string
	OrgID  string
	Plan   string
	// StartedAt is when the current unbroken run of purchases began.
	StartedAt time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Active reports whether the subscription is valid at t: t is before its
// expiry.
func (s Subscription) Active(t time.Time) bool { return t.Before(s.ExpiresAt) }

// Payment is a settled x402 payment for a subscription.
type Payment struct {
	ID string
	// Authorization identifies what the payer signed, so that the same
	// authorization never buys twice; for an EIP-3009 transfer it names
	// the network, asset, payer and nonce. Unique across payments.
	Authorization string
	Wallet        string
	Plan          string
	Network       string // CAIP-2 chain ID
	Asset         string // token address
	Amount        string // in the asset's atomic units, decimal
	PayTo         string
	Transaction   string // the facilitator's settlement reference
	Facilitator   string // "local", or the facilitator's URL
	Time          time.Time
}

// WebhookEndpoint is where an organization's events are delivered.
type WebhookEndpoint struct {
	ID          string // ids.WebhookEndpoint
	OrgID       string
	URL         string
	Description string
	// EventTypes are the event types delivered, non-empty; "*" means all.
	// The store keeps them sorted and without duplicates.
	EventTypes []string
	// Secret is the signing secret sealed by the master key (see package
	// secretbox); PreviousSecret is the one it replaced, still signing until
	// PreviousSecretExpiresAt (empty and zero when there is none).
	Secret                  []byte
	PreviousSecret          []byte
	PreviousSecretExpiresAt time.Time
	// Disabled endpoints get no deliveries of new events; their pending
	// deliveries wait, unclaimed, until they are enabled again (see
	// ClaimWebhookDeliveries for the exception of test deliveries).
	Disabled       bool
	DisabledReason string // e.g. "failures" or "operator"
	DisabledAt     time.Time
	// Health is how its recent attempts went: RecordWebhookAttempt keeps
	// it, an update may reset it.
	Health    WebhookHealth
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WebhookHealth is how an endpoint's recent delivery attempts went. The
// store keeps what the caller of RecordWebhookAttempt computes (package
// webhooks decides what counts as failing); its zero value is an endpoint
// never attempted.
type WebhookHealth struct {
	// FailingSince is when the endpoint's current run of failed attempts
	// began; zero while it is healthy.
	FailingSince time.Time
	// ConsecutiveFailures counts the failed attempts of that run.
	ConsecutiveFailures int
	// LastSuccessAt and LastFailureAt are the times of the latest
	// successful and failed attempts (zero: none yet).
	LastSuccessAt time.Time
	LastFailureAt time.Time
	// LastFailureStatus is the HTTP status of the latest failed attempt's
	// answer, 0 when none came; LastFailureError is its error text.
	LastFailureStatus int
	LastFailureError  string
}

// WebhookBacklog is what an endpoint has waiting in the outbox.
type WebhookBacklog struct {
	// Pending counts its pending deliveries.
	Pending int
	// NextAttemptAt is the earliest NextAttemptAt of those, zero when
	// there are none.
	NextAttemptAt time.Time
}

// ClusterSetting is a setting every node sharing the store must agree on,
// such as the issuer of the tokens they sign and accept: the first node
// that starts records it, the others compare theirs with it.
type ClusterSetting struct {
	// Name is the configuration key, such as "auth.issuer".
	Name  string
	Value string
	// RecordedAt is when it was recorded; RecordedBy says by what (the
	// node's listen address, or "cli").
	RecordedAt time.Time
	RecordedBy string
}

// WebhookEvent is something that happened, to be delivered to every enabled
// endpoint of its organization subscribed to its type. Its ID is the
// Standard Webhooks "webhook-id", the same for every delivery and attempt,
// by which receivers drop duplicates.
type WebhookEvent struct {
	ID        string // ids.WebhookEvent
	OrgID     string
	Type      string // e.g. "apikey.created"
	Payload   []byte // the exact JSON body delivered
	CreatedAt time.Time
	// Endpoint, when set, delivers the event to that endpoint only, whatever
	// its event types and even when it is disabled (a test delivery); it
	// must belong to OrgID.
	Endpoint string
}

// WebhookDeliveryStatus is the state of a webhook delivery.
type WebhookDeliveryStatus string

// Webhook delivery statuses. A delivery is pending until an attempt succeeds
// or the dispatcher gives up; succeeded and failed are final.
const (
	WebhookPending   WebhookDeliveryStatus = "pending"
	WebhookSucceeded WebhookDeliveryStatus = "succeeded"
	WebhookFailed    WebhookDeliveryStatus = "failed" // gave up, or the endpoint was deleted
)

// WebhookDelivery is one event's delivery to one endpoint: an entry of the
// outbox while pending, of the delivery log once finished.
type WebhookDelivery struct {
	ID         string // ids.WebhookDelivery
	EventID    string
	EndpointID string // kept after the endpoint is deleted
	OrgID      string
	// EventType, Payload and EventCreatedAt are the event's.
	EventType      string
	Payload        []byte
	EventCreatedAt time.Time
	Status         WebhookDeliveryStatus
	Attempts       int // attempts recorded so far
	// NextAttemptAt is, while the delivery is pending, when it is due, or
	// when its claim lease ends; zero once it is finished.
	NextAttemptAt  time.Time
	LastAttemptAt  time.Time
	LastStatusCode int    // 0 when no HTTP answer
	LastError      string // "" on success
	CreatedAt      time.Time
	FinishedAt     time.Time // when it succeeded or failed for good
	// RedeliveryOf is the ID of the delivery this one repeats, if any.
	RedeliveryOf string
}

// WebhookAttempt is one HTTP attempt of a delivery.
type WebhookAttempt struct {
	DeliveryID string
	N          int // 1, 2, …
	At         time.Time
	// Duration is kept at microsecond precision, like times.
	Duration   time.Duration
	StatusCode int    // 0 when no HTTP answer
	Error      string // "" when the endpoint answered 2xx
	Succeeded  bool
}

// WebhookDeliveryFilter selects webhook deliveries, newest first (by
// CreatedAt, then by ID descending). Zero fields match everything.
type WebhookDeliveryFilter struct {
	OrgID      string
	EndpointID string
	EventID    string
	Status     WebhookDeliveryStatus
	// Before is a page cursor, the ID of the previous page's last delivery:
	// only deliveries listed after it (older). An unknown ID is
	// ErrNotFound.
	Before string
	Limit  int // at most this many; 0 means 100; at most 1000
}

// UsageEvent is one metered request, or one WebSocket session, as the
// gateway saw it: admitted or refused, authenticated or not.
type UsageEvent struct {
	// ID is the request ID (X-Request-Id), required; unique, so that
	// recording an event twice counts it once.
	ID   string
	Time time.Time // when the request arrived; zero: the store's now
	// Who, when known: all "" for a request refused before authentication.
	OrgID        string
	AppID        string
	CredentialID string
	AuthMethod   string // e.g. "apikey", "bearer"; "" when unauthenticated
	Method       string // HTTP method
	Route        string // the matched route's path prefix; "" when none
	Path         string // request path, without the query
	Status       int    // response status; 101 for a WebSocket session
	ErrorCode    string // the error code sent, if the gateway refused it
	// Latency is kept at microsecond precision, like times.
	Latency time.Duration
	// RequestBytes and ResponseBytes are body bytes (for a WebSocket
	// session: bytes from and to the client over the whole session).
	RequestBytes  int64
	ResponseBytes int64
	// Units charged against the quota; 0 for a refused request.
	Units     int64
	ClientIP  string
	UserAgent string
	WebSocket bool
}

// Usage granularities: the buckets of the usage rollups.
const (
	GranularityHour  = "hour"
	GranularityDay   = "day"
	GranularityMonth = "month"
)

// BucketStart returns the start of the calendar hour, day or month (UTC)
// holding t: the bucket of granularity g (any other g is taken as month).
// Quota periods use the same calendar.
func BucketStart(g string, t time.Time) time.Time {
	t = t.UTC()
	switch g {
	case GranularityHour:
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, time.UTC)
	case GranularityDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
}

// AddBuckets moves the bucket start start of granularity g by n buckets.
func AddBuckets(g string, start time.Time, n int) time.Time {
	switch g {
	case GranularityHour:
		return start.Add(time.Duration(n) * time.Hour)
	case GranularityDay:
		return start.AddDate(0, 0, n)
	default:
		return start.AddDate(0, n, 0)
	}
}

// UsageQuery selects a usage series: the buckets of one granularity whose
// start is in [From, To), of one organization, optionally of one app and one
// credential. From and To are truncated to the granularity by the caller.
type UsageQuery struct {
	OrgID string // required
	// Granularity is GranularityHour, GranularityDay or GranularityMonth;
	// another is an error.
	Granularity  string
	From, To     time.Time
	AppID        string // "" matches every app
	CredentialID string // "" matches every credential
}

// UsagePoint is one bucket of a usage series. Errors are responses with a
// status of 400 or more. Omitted counts the requests of the bucket that are
// not in the request log, which sampled it under overload (see UsageTotal):
// they are counted in Units, Requests and Errors like the others.
type UsagePoint struct {
	Start    time.Time
	Units    int64
	Requests int64
	Errors   int64
	Omitted  int64
}

// UsageTotal sums requests of one organization, app and credential, in one
// calendar hour (UTC), that were left out of the request log: the log keeps
// a sample when events come faster than the store writes them (see package
// usage), while the rollups count every request. Requests are all omitted
// from the log; Errors of them had a status of 400 or more.
type UsageTotal struct {
	Hour         time.Time // the start of the hour (BucketStart(GranularityHour, t))
	OrgID        string    // required: requests of no organization have no rollups
	AppID        string
	CredentialID string
	Requests     int64
	Errors       int64
	Units        int64
}

// RequestFilter selects request-log entries of one organization, newest
// first. Zero fields match everything.
type RequestFilter struct {
	// OrgID selects the organization; "" selects the requests refused
	// before anyone was authenticated (for the operator).
	OrgID        string
	AppID        string
	CredentialID string
	// StatusMin and StatusMax bound the status, inclusive (e.g. 400–499);
	// 0 means unbounded.
	StatusMin, StatusMax int
	From                 time.Time // Time >= From
	To                   time.Time // Time < To
	// AfterTime and AfterID are a page cursor, the Time and ID of the
	// previous page's last entry: only entries strictly after that one in
	// the list order (Time descending, then ID descending).
	AfterTime time.Time
	AfterID   string
	Limit     int // at most this many; 0 means 100; a store may cap it, but not below 10000
}

// QuotaCount is the durable copy of one quota counter: the units used under
// Key in a period ending at PeriodEnd.
type QuotaCount struct {
	Key       string
	Used      int64
	PeriodEnd time.Time
}

// SigningKey is a private key used to sign tokens. PrivateKey is sealed with
// the master key (see package secretbox); the store never sees it in clear.
type SigningKey struct {
	ID         string // the JWT "kid"
	Algorithm  string // e.g. "RS256"
	PrivateKey []byte // sealed
	CreatedAt  time.Time
	// RetiredAt is when the key stopped signing new tokens; it stays
	// published until every token it signed has expired. Zero: in use.
	RetiredAt time.Time
}

// RefreshToken is one link of a refresh-token family. Presenting a token
// yields the next link; presenting a link a second time means it was stolen,
// and the whole family is revoked.
type RefreshToken struct {
	ID        string
	FamilyID  string
	UserID    string
	Hash      []byte // SHA-256 of the token; unique across the store
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // when it was exchanged for its successor
	// UsedBy is what the client that exchanged it was, as the caller of
	// RotateRefreshToken described it (an opaque digest); empty when unused.
	UsedBy    []byte
	RevokedAt time.Time
}

// RefreshFamily is a refresh-token family as a whole: a dashboard session.
// A family is revoked as soon as any of its tokens is: revoking a family
// may race with a rotation that adds a token to it, and the added token is
// then as dead as the others.
type RefreshFamily struct {
	ID     string
	UserID string
	// RevokedAt is the earliest revocation of any of its tokens; zero while
	// the family is live.
	RevokedAt time.Time
}

// ActorType says who performed an audited action.
type ActorType string

// Actor types.
const (
	ActorUser   ActorType = "user"   // a logged-in user, ActorID is the user ID
	ActorAdmin  ActorType = "admin"  // the operator through the admin API
	ActorCLI    ActorType = "cli"    // the operator through the tollgate command
	ActorApp    ActorType = "app"    // an OAuth client, ActorID is its client ID
	ActorSystem ActorType = "system" // Tollgate itself (start-up, dev mode)
	ActorAnon   ActorType = "anonymous"
)

// AuditEntry records who did what to which object, from where.
type AuditEntry struct {
	ID         string
	Time       time.Time
	OrgID      string // "" for actions outside any organization
	ActorType  ActorType
	ActorID    string
	Action     string // e.g. "apikey.create", "user.activate"
	TargetType string // e.g. "apikey", "user"
	TargetID   string
	IP         string // client IP, "" when not from a request
	// Details are small non-secret facts about the change, such as the fields
	// an update touched. Never put a secret here.
	Details map[string]string
}

// UserFilter selects users. Zero fields match everything.
type UserFilter struct {
	OrgID  string
	Status UserStatus
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	OrgID    string
	TargetID string
	// Actions selects entries with one of these actions ("session.refresh_reuse");
	// empty: any action.
	Actions []string
	Before  time.Time // only entries strictly older; zero: no bound
	Limit   int       // at most this many; 0 means 100
}

// Store is Tollgate's durable state. Implementations are safe for concurrent
// use by many goroutines and by several processes sharing the same database.
//
// Update methods take a function that receives the current value and returns
// the new one; it runs inside the transaction and may be called more than once,
// so it must not have side effects. If it returns an error, nothing is written
// and the error is returned as is. The returned value is the one stored.
type Store interface {
	// CreateOrganizationWithOwner creates an organization and its first user
	// in one transaction.
	CreateOrganizationWithOwner(ctx context.Context, org Organization, owner User, a AuditEntry) error
	GetOrganization(ctx context.Context, id string) (Organization, error)
	GetOrganizationBySlug(ctx context.Context, slug string) (Organization, error)
	ListOrganizations(ctx context.Context) ([]Organization, error)
	UpdateOrganization(ctx context.Context, id string, update func(Organization) (Organization, error), a AuditEntry) (Organization, error)

	CreateUser(ctx context.Context, u User, a AuditEntry) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail matches the email case-insensitively.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context, f UserFilter) ([]User, error)
	UpdateUser(ctx context.Context, id string, update func(User) (User, error), a AuditEntry) (User, error)
	// RecordLogin sets the user's LastLoginAt. It is not audited here; the
	// caller audits logins as it sees fit.
	RecordLogin(ctx context.Context, userID string, at time.Time) error

	CreateApp(ctx context.Context, app App, a AuditEntry) error
	GetApp(ctx context.Context, id string) (App, error)
	GetAppByClientID(ctx context.Context, clientID string) (App, error)
	ListApps(ctx context.Context, orgID string) ([]App, error)
	UpdateApp(ctx context.Context, id string, update func(App) (App, error), a AuditEntry) (App, error)
	// DeleteApp deletes the app and revokes, at the given time, every API key
	// tied to it that is not already revoked. It returns the IDs of the keys
	// it revoked.
	DeleteApp(ctx context.Context, id string, at time.Time, a AuditEntry) (revokedKeyIDs []string, err error)

	CreateAPIKey(ctx context.Context, k APIKey, a AuditEntry) error
	GetAPIKey(ctx context.Context, id string) (APIKey, error)
	GetAPIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// ListAPIKeys lists an organization's keys, newest first, revoked ones
	// included.
	ListAPIKeys(ctx context.Context, orgID string) ([]APIKey, error)
	UpdateAPIKey(ctx context.Context, id string, update func(APIKey) (APIKey, error), a AuditEntry) (APIKey, error)
	// TouchAPIKeys records last-use times in one batch. A time only ever moves
	// a key's LastUsedAt forward; unknown IDs are ignored.
	TouchAPIKeys(ctx context.Context, lastUsed map[string]time.Time) error

	// UpsertPlan creates or replaces a plan by name.
	UpsertPlan(ctx context.Context, p Plan) error
	GetPlan(ctx context.Context, name string) (Plan, error)
	// ListPlans lists plans ordered by name.
	ListPlans(ctx context.Context) ([]Plan, error)

	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys lists all signing keys, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey sets RetiredAt on a key that is not yet retired.
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	// ResealSigningKey replaces a key's sealed private key with the same key
	// sealed anew (master-key rotation).
	ResealSigningKey(ctx context.Context, id string, sealed []byte) error
	// DeleteSigningKey removes a key for good (once nothing it signed can
	// still be valid).
	DeleteSigningKey(ctx context.Context, id string) error

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken atomically marks the token with oldHash used at `at`
	// by `by` (stored as UsedBy) and stores next, which must belong to the
	// same family and user. If the old token was already used or revoked,
	// or its family is revoked (see RefreshFamily), it changes nothing and
	// returns the old token as stored with ErrTokenUsed, so that the caller
	// can tell reuse (UsedAt set, by whom) from an ended session. Of
	// concurrent rotations of one token exactly one succeeds; the others
	// get the token as the winner left it. An unknown hash returns
	// ErrNotFound. Expiry is the caller's business.
	RotateRefreshToken(ctx context.Context, oldHash []byte, next RefreshToken, at time.Time, by []byte) (old RefreshToken, err error)
	GetRefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// GetRefreshFamily returns the family familyID, ErrNotFound when it has
	// no token.
	GetRefreshFamily(ctx context.Context, familyID string) (RefreshFamily, error)
	// RevokeRefreshTokenFamily revokes every not yet revoked token of the
	// family at the given time.
	RevokeRefreshTokenFamily(ctx context.Context, familyID string, at time.Time) error
	// RevokeUserRefreshTokens revokes every refresh token of the user.
	RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error

	// RevokeAccessToken records a revoked access token. Revoking a token
	// already revoked changes nothing and is not an error (no audit entry
	// is written then).
	RevokeAccessToken(ctx context.Context, t RevokedToken, a AuditEntry) error
	// AccessTokenRevoked reports whether the token with this jti was revoked.
	AccessTokenRevoked(ctx context.Context, jti string) (bool, error)
	// PurgeRevokedTokens forgets revoked tokens that expired before the
	// given time and returns how many it removed.
	PurgeRevokedTokens(ctx context.Context, expiredBefore time.Time) (int64, error)

	// RecordUsage appends a batch of events to the request log and adds
	// them to the hourly, daily and monthly rollups (per organization, app
	// and credential; events without an organization go to the request log
	// only), all in one transaction. Buckets are calendar periods in UTC.
	//
	// batchID names the batch and is required. Recording a batch ID that is
	// already recorded changes nothing and is not an error, so a batch may
	// be retried after an uncertain failure, unchanged and under the same
	// ID. Events are not checked one by one: the caller gives every event
	// a unique ID and puts it in one batch only. Batch IDs are remembered
	// as long as the request log keeps the batch's entries.
	RecordUsage(ctx context.Context, batchID string, events []UsageEvent) error
	// RecordUsageTotals adds the totals of requests left out of the request
	// log to the hourly, daily and monthly rollups of their hour, and to
	// their omitted counts, all in one transaction. Totals of no
	// organization are refused. Like RecordUsage's, the batch is recorded
	// once under its required ID: recording an ID already recorded changes
	// nothing and is not an error. These batch IDs are remembered for as
	// long as the request log keeps its entries (see PurgeRequests).
	RecordUsageTotals(ctx context.Context, batchID string, totals []UsageTotal) error
	// UsageSeries returns the non-empty buckets of q, oldest first.
	UsageSeries(ctx context.Context, q UsageQuery) ([]UsagePoint, error)
	// ListRequests pages through the request log, newest first (by time,
	// then by ID descending).
	ListRequests(ctx context.Context, f RequestFilter) ([]UsageEvent, error)
	// PurgeRequests forgets request-log entries older than before (and the
	// IDs of RecordUsageTotals batches recorded before it), and hourly
	// rollups that started before hourlyBefore; it returns how many log
	// entries it removed. Daily and monthly rollups are kept.
	PurgeRequests(ctx context.Context, before, hourlyBefore time.Time) (int64, error)

	// SaveQuotaCounts stores quota counts, each raising the stored count of
	// its key to at least Used (never lowering it) and its PeriodEnd to at
	// least the one given. PeriodEnd is required.
	SaveQuotaCounts(ctx context.Context, counts []QuotaCount) error
	// GetQuotaCount returns the stored count of key, 0 when there is none.
	GetQuotaCount(ctx context.Context, key string) (int64, error)
	// PurgeQuotaCounts forgets counts of periods that ended before the given
	// time.
	PurgeQuotaCounts(ctx context.Context, endedBefore time.Time) error

	// Purchase records p and extends p.Wallet's subscription by d, in one
	// transaction: from its expiry while it is active at p.Time, from
	// p.Time otherwise, on the plan p.Plan. A wallet's first purchase creates
	// its subscription and its organization (named after the wallet, on
	// p.Plan); a later one also moves the organization to p.Plan. A payment
	// whose Authorization is recorded already is refused with
	// ErrAlreadyExists and changes nothing. The audit entry, whose OrgID and
	// TargetID are filled in when empty, goes with the change.
	Purchase(ctx context.Context, p Payment, d time.Duration, a AuditEntry) (Subscription, error)
	GetSubscription(ctx context.Context, wallet string) (Subscription, error)
	// ListSubscriptions lists every subscription, oldest first.
	ListSubscriptions(ctx context.Context) ([]Subscription, error)
	// ListPayments lists the payments of a wallet, newest first.
	ListPayments(ctx context.Context, wallet string) ([]Payment, error)

	// CreateWebhookEndpoint creates an endpoint. ID, OrgID, URL, EventTypes
	// and Secret are required; the organization must exist (ErrNotFound).
	CreateWebhookEndpoint(ctx context.Context, e WebhookEndpoint, a AuditEntry) error
	GetWebhookEndpoint(ctx context.Context, id string) (WebhookEndpoint, error)
	// ListWebhookEndpoints lists an organization's endpoints, oldest first;
	// orgID "" lists every organization's.
	ListWebhookEndpoints(ctx context.Context, orgID string) ([]WebhookEndpoint, error)
	// UpdateWebhookEndpoint updates an endpoint; ID, OrgID and CreatedAt
	// cannot change, and URL, EventTypes and Secret stay required.
	UpdateWebhookEndpoint(ctx context.Context, id string, update func(WebhookEndpoint) (WebhookEndpoint, error), a AuditEntry) (WebhookEndpoint, error)
	// DeleteWebhookEndpoint deletes an endpoint. Its pending deliveries fail
	// at the given time with LastError "endpoint deleted"; its deliveries and
	// their attempts stay in the delivery log, with their EndpointID.
	DeleteWebhookEndpoint(ctx context.Context, id string, at time.Time, a AuditEntry) error

	// EnqueueWebhookEvent stores ev and, in the same transaction, a pending
	// delivery due at ev.CreatedAt for every enabled endpoint of ev.OrgID
	// whose EventTypes hold ev.Type or "*" (or for ev.Endpoint only, when
	// set, even disabled; ErrNotFound if it is not an endpoint of
	// ev.OrgID). It returns how many deliveries it queued. An event whose
	// ID is stored already changes nothing and returns 0 (retries are
	// idempotent as long as the event is kept, see
	// PurgeWebhookDeliveries); an event no endpoint wants is stored all
	// the same. ID, OrgID and Type are required; a zero CreatedAt means
	// now.
	EnqueueWebhookEvent(ctx context.Context, ev WebhookEvent) (deliveries int, err error)
	// ClaimWebhookDeliveries claims up to limit pending deliveries due at
	// now (NextAttemptAt <= now), oldest NextAttemptAt first, whose endpoint
	// exists and is enabled, or is the one their event was addressed to
	// (a test delivery). It moves their NextAttemptAt to now+lease, so
	// that no other claim, from this process or another sharing the
	// database, returns them before the lease ends, and returns them as
	// claimed. A delivery whose attempt is not recorded before its lease
	// ends is claimed again: delivery is at least once. limit and lease
	// must be positive.
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookDelivery, error)
	// RecordWebhookAttempt records attempt at of a pending delivery whose
	// Attempts is at.N-1 (ErrConflict otherwise, and nothing changes), and
	// in the same transaction sets the delivery's Attempts and Last*
	// fields, and its status: succeeded if at.Succeeded, failed (the
	// dispatcher gave up) if next is zero, still pending and due at next
	// otherwise. Succeeded and failed deliveries get FinishedAt at.At. In
	// the same transaction it sets the endpoint's Health to what health
	// returns when given the Health stored (health may be called more than
	// once; nil leaves Health alone). It returns the delivery and endpoint
	// as stored, so that the caller can disable the endpoint.
	RecordWebhookAttempt(ctx context.Context, at WebhookAttempt, next time.Time, health func(WebhookHealth) WebhookHealth) (WebhookDelivery, WebhookEndpoint, error)
	// WebhookBacklog returns what endpoint endpointID has pending in the
	// outbox (nothing, for an endpoint that does not exist).
	WebhookBacklog(ctx context.Context, endpointID string) (WebhookBacklog, error)
	GetWebhookDelivery(ctx context.Context, id string) (WebhookDelivery, error)
	// ListWebhookDeliveries pages through the deliveries selected by f,
	// newest first.
	ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) ([]WebhookDelivery, error)
	// ListWebhookAttempts lists a delivery's attempts in order.
	ListWebhookAttempts(ctx context.Context, deliveryID string) ([]WebhookAttempt, error)
	// RedeliverWebhook queues a new delivery of a finished delivery's event
	// to the same endpoint, due at the given time, with RedeliveryOf set;
	// the original is left as it is. A pending original is ErrConflict; a
	// deleted endpoint ErrNotFound. The audit entry's TargetID is filled in
	// with the new delivery's ID when empty.
	RedeliverWebhook(ctx context.Context, deliveryID string, at time.Time, a AuditEntry) (WebhookDelivery, error)
	// PurgeWebhookDeliveries forgets the deliveries (and their attempts)
	// that finished before the given time, then the events created before
	// it that have no delivery left. It returns how many deliveries it
	// removed.
	PurgeWebhookDeliveries(ctx context.Context, finishedBefore time.Time) (int64, error)

	// PinClusterSetting records s unless a setting of its name is recorded
	// already, and returns the setting recorded (s, or the one found).
	// Nodes starting together agree: exactly one of them records its value.
	// Name is required; a zero RecordedAt means now.
	PinClusterSetting(ctx context.Context, s ClusterSetting) (ClusterSetting, error)
	// GetClusterSetting returns the setting recorded under name, or
	// ErrNotFound.
	GetClusterSetting(ctx context.Context, name string) (ClusterSetting, error)
	// SetClusterSetting records s, replacing any setting of its name, with
	// an audit entry.
	SetClusterSetting(ctx context.Context, s ClusterSetting, a AuditEntry) error

	// AppendAudit records an entry that goes with no other change, such as a
	// failed login.
	AppendAudit(ctx context.Context, a AuditEntry) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// Ping checks that the store is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
