package webhooks

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/netguard"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/whsig"
)

// Store is the part of the store the service uses; store.Store implements
// it.
type Store interface {
	CreateWebhookEndpoint(ctx context.Context, e store.WebhookEndpoint, a store.AuditEntry) error
	GetWebhookEndpoint(ctx context.Context, id string) (store.WebhookEndpoint, error)
	ListWebhookEndpoints(ctx context.Context, orgID string) ([]store.WebhookEndpoint, error)
	UpdateWebhookEndpoint(ctx context.Context, id string, update func(store.WebhookEndpoint) (store.WebhookEndpoint, error), a store.AuditEntry) (store.WebhookEndpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, id string, at time.Time, a store.AuditEntry) error
	EnqueueWebhookEvent(ctx context.Context, ev store.WebhookEvent) (int, error)
	ClaimWebhookDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.WebhookDelivery, error)
	RecordWebhookAttempt(ctx context.Context, at store.WebhookAttempt, next time.Time, health func(store.WebhookHealth) store.WebhookHealth) (store.WebhookDelivery, store.WebhookEndpoint, error)
	WebhookBacklog(ctx context.Context, endpointID string) (store.WebhookBacklog, error)
	GetWebhookDelivery(ctx context.Context, id string) (store.WebhookDelivery, error)
	ListWebhookDeliveries(ctx context.Context, f store.WebhookDeliveryFilter) ([]store.WebhookDelivery, error)
	ListWebhookAttempts(ctx context.Context, deliveryID string) ([]store.WebhookAttempt, error)
	RedeliverWebhook(ctx context.Context, deliveryID string, at time.Time, a store.AuditEntry) (store.WebhookDelivery, error)
	PurgeWebhookDeliveries(ctx context.Context, finishedBefore time.Time) (int64, error)
}

// Sealer encrypts webhook secrets at rest; *secretbox.Box implements it.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Defaults of Options.
const (
	DefaultAttemptTimeout = 15 * time.Second
	DefaultSecretGrace    = 24 * time.Hour
	DefaultRetention      = 30 * 24 * time.Hour
	DefaultJitter         = 0.2
	DefaultWorkers        = 8
	DefaultPollInterval   = time.Second
	// DefaultLeaseMargin is what the default lease adds to AttemptTimeout:
	// time to open the secrets and record the attempt.
	DefaultLeaseMargin = 30 * time.Second
	// DefaultMaxEndpoints is the default of Options.MaxEndpoints.
	DefaultMaxEndpoints = 20
)

// DefaultSchedule returns the default retry schedule: the delays after
// each failed attempt, as Svix's, about 27 hours in all. It returns a new
// slice on each call.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
}

// Limits on what an endpoint may hold.
const (
	// MaxDescriptionLength is the longest description, in characters.
	MaxDescriptionLength = 256
	// MaxPayloadSize is the largest event payload Emit accepts, in bytes.
	MaxPayloadSize = 256 << 10
)

// Options configure a Service. Store is required; the other zero values
// take the defaults noted.
type Options struct {
	Store Store
	// Sealer seals endpoints' secrets; *secretbox.Box. Without one, the
	// Service only records events (Emit and the read-only methods): the
	// CLI's, whose events the server's dispatcher delivers.
	Sealer Sealer
	Clock  clock.Clock // default clock.System{}
	// Policy says which URLs endpoints may have and which addresses
	// deliveries may connect to. The zero Policy is the strict one: https
	// to public addresses only.
	Policy netguard.Policy
	// RootCAs verify receivers' certificates; nil: the system's roots.
	// Tests set it to their server's certificate.
	RootCAs *x509.CertPool
	Logger  *slog.Logger // default: discard

	// AttemptTimeout bounds each delivery attempt, from dialing to the
	// answer's headers and the part of its body read. Default 15s.
	AttemptTimeout time.Duration
	// DisableAfter is how long an endpoint must have been failing,
	// continuously, before the dispatcher disables it (see the package
	// doc). Default DefaultDisableAfter (72h); a negative value means
	// never: failing endpoints stay enabled.
	DisableAfter time.Duration
	// SecretGrace is how long a rotated-out secret keeps signing beside
	// the new one. Default 24h; a negative value means no grace: the old
	// secret stops signing at once.
	SecretGrace time.Duration
	// Retention is how long finished deliveries (and then their events)
	// are kept in the delivery log before Run purges them. Default 30 days.
	Retention time.Duration
	// Schedule are the delays before the attempts after the first: the
	// delivery is attempted again Schedule[n-1] after its attempt n
	// failed, and given up after attempt len(Schedule)+1. Every delay must
	// be positive. Nil or empty: DefaultSchedule().
	Schedule []time.Duration
	// Jitter varies each delay at random by up to ±Jitter of it, a
	// fraction below 1. Zero means DefaultJitter (0.2); a negative value
	// means no jitter.
	Jitter float64
	// Workers is how many attempts are made at once. Default 8.
	Workers int
	// BatchSize is the most deliveries one claim takes; at most, and by
	// default, Workers. Run claims no more than it has idle workers, so
	// that a claimed delivery is attempted at once.
	BatchSize int
	// PollInterval is how long Run waits before claiming again when no
	// delivery was due. Default 1s.
	PollInterval time.Duration
	// Lease is how long a claimed delivery is kept from other claims: it
	// must cover an attempt and its recording. It must exceed
	// AttemptTimeout; default AttemptTimeout + 30s.
	Lease time.Duration
	// MaxEndpoints is how many endpoints an organization may have.
	// Default 20.
	MaxEndpoints int
}

// Service manages webhook endpoints, emits events and delivers them. It is
// safe for concurrent use. Build it with New.
type Service struct {
	o Options
	// gap is the longest quiet time within a failing run (runGap).
	gap    time.Duration
	store  Store
	sealer Sealer
	clock  clock.Clock
	log    *slog.Logger
	client *http.Client
}

// New returns a Service with o's defaults filled in. It fails when Store or
// Sealer is missing, or an option is out of range (a non-positive delay in
// Schedule, Jitter of 1 or more, Lease not above AttemptTimeout).
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("webhooks: a store is required")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.DisableAfter == 0 {
		o.DisableAfter = DefaultDisableAfter
	}
	switch {
	case o.SecretGrace == 0:
		o.SecretGrace = DefaultSecretGrace
	case o.SecretGrace < 0:
		o.SecretGrace = 0
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if len(o.Schedule) == 0 {
		o.Schedule = DefaultSchedule()
	} else {
		o.Schedule = slices.Clone(o.Schedule)
	}
	for i, d := range o.Schedule {
		if d <= 0 {
			return nil, fmt.Errorf("webhooks: retry delay %d is %v; delays must be positive", i+1, d)
		}
	}
	switch {
	case o.Jitter == 0:
		o.Jitter = DefaultJitter
	case o.Jitter < 0:
		o.Jitter = 0
	case o.Jitter >= 1:
		return nil, fmt.Errorf("webhooks: jitter %v must be below 1", o.Jitter)
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.BatchSize <= 0 || o.BatchSize > o.Workers {
		o.BatchSize = o.Workers
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Lease <= 0 {
		o.Lease = o.AttemptTimeout + DefaultLeaseMargin
	}
	if o.Lease <= o.AttemptTimeout {
		return nil, fmt.Errorf("webhooks: lease %v must be longer than the attempt timeout %v", o.Lease, o.AttemptTimeout)
	}
	if o.MaxEndpoints <= 0 {
		o.MaxEndpoints = DefaultMaxEndpoints
	}
	return &Service{
		o:      o,
		gap:    runGap(o),
		store:  o.Store,
		sealer: o.Sealer,
		clock:  o.Clock,
		log:    o.Logger,
		client: o.Policy.Client(o.AttemptTimeout, o.RootCAs),
	}, nil
}

// Audit actions and target types of the changes the service makes.
const (
	actionCreate    = "webhook.create"
	actionUpdate    = "webhook.update"
	actionDelete    = "webhook.delete"
	actionRotate    = "webhook.rotate_secret"
	actionDisable   = "webhook.disable"
	actionRedeliver = "webhook.redeliver"

	targetEndpoint = "webhook_endpoint"
	targetDelivery = "webhook_delivery"
)

// Disabled reasons, in WebhookEndpoint.DisabledReason and the views.
const (
	// ReasonFailures: the dispatcher disabled the endpoint after it had
	// been failing for Options.DisableAfter.
	ReasonFailures = "failures"
	// ReasonOperator: someone disabled it through Update.
	ReasonOperator = "operator"
)

// Errors of the service, as API errors. Compare with errors.Is.
var (
	// ErrEndpointNotFound: no endpoint of this ID in the organization.
	ErrEndpointNotFound = apierror.New(http.StatusNotFound, apierror.NotFound, "no such webhook endpoint")
	// ErrDeliveryNotFound: no delivery of this ID in the organization.
	ErrDeliveryNotFound = apierror.New(http.StatusNotFound, apierror.NotFound, "no such webhook delivery")
	// errNoOrg guards against a caller that lost the organization: an
	// empty one would list every organization's objects.
	errNoOrg = errors.New("webhooks: no organization given")
)

// secretAD is the associated data that binds an endpoint's sealed secrets,
// current and previous, to the endpoint.
func secretAD(endpointID string) []byte { return []byte("webhook_secret:" + endpointID) }

// Input describes a new endpoint.
type Input struct {
	// URL receives the deliveries; see the package doc for what is
	// allowed.
	URL string
	// EventTypes are the event types delivered (see EventTypes), or "*"
	// for all of them; at least one. They are deduplicated and sorted,
	// and "*" with others is just "*".
	EventTypes []string
	// Description is a note of at most MaxDescriptionLength characters.
	Description string
}

// Patch changes some fields of an endpoint; nil fields are left alone.
type Patch struct {
	URL         *string
	EventTypes  *[]string
	Description *string
	// Enabled true enables the endpoint and ends its failing run (it is
	// healthy until an attempt fails, and then has Options.DisableAfter
	// again); false disables it with the reason "operator" (an endpoint
	// disabled already keeps its reason). Enabling an enabled endpoint
	// changes nothing.
	Enabled *bool
}

// Create registers an endpoint for the organization, with a new secret,
// which is returned here and never again. An organization may have
// Options.MaxEndpoints endpoints: beyond, Create fails with 409 CONFLICT.
func (s *Service) Create(ctx context.Context, orgID string, in Input, actor store.Actor) (Endpoint, string, error) {
	if orgID == "" {
		return Endpoint{}, "", errNoOrg
	}
	u, err := checkURL(s.o.Policy, in.URL)
	if err != nil {
		return Endpoint{}, "", err
	}
	types, err := checkEventTypes(in.EventTypes)
	if err != nil {
		return Endpoint{}, "", err
	}
	desc, err := checkDescription(in.Description)
	if err != nil {
		return Endpoint{}, "", err
	}
	existing, err := s.store.ListWebhookEndpoints(ctx, orgID)
	if err != nil {
		return Endpoint{}, "", err
	}
	if len(existing) >= s.o.MaxEndpoints {
		return Endpoint{}, "", apierror.New(http.StatusConflict, apierror.Conflict,
			fmt.Sprintf("an organization may have at most %d webhook endpoints; delete one first", s.o.MaxEndpoints))
	}
	id := ids.New(ids.WebhookEndpoint)
	secret, sealed, err := s.newSecret(id)
	if err != nil {
		return Endpoint{}, "", err
	}
	now := s.clock.Now()
	e := store.WebhookEndpoint{
		ID:          id,
		OrgID:       orgID,
		URL:         u,
		Description: desc,
		EventTypes:  types,
		Secret:      sealed,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	details := map[string]string{"url": u, "event_types": strings.Join(types, " ")}
	if err := s.store.CreateWebhookEndpoint(ctx, e, actor.Entry(orgID, actionCreate, targetEndpoint, id, details)); err != nil {
		return Endpoint{}, "", fmt.Errorf("webhooks: create endpoint: %w", err)
	}
	return endpointView(e, store.WebhookBacklog{}, now, s.o.DisableAfter), secret, nil
}

var errNoSealer = errors.New("webhooks: no sealer: this Service only records events")

// newSecret makes a secret for endpoint id and seals it.
func (s *Service) newSecret(id string) (secret string, sealed []byte, err error) {
	secret, err = whsig.NewSecret()
	if err != nil {
		return "", nil, err
	}
	if s.sealer == nil {
		return "", nil, errNoSealer
	}
	sealed, err = s.sealer.Seal([]byte(secret), secretAD(id))
	if err != nil {
		return "", nil, fmt.Errorf("webhooks: seal secret: %w", err)
	}
	return secret, sealed, nil
}

// List returns the organization's endpoints, oldest first.
func (s *Service) List(ctx context.Context, orgID string) ([]Endpoint, error) {
	if orgID == "" {
		return nil, errNoOrg
	}
	es, err := s.store.ListWebhookEndpoints(ctx, orgID)
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, 0, len(es))
	for _, e := range es {
		v, err := s.view(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns one of the organization's endpoints.
func (s *Service) Get(ctx context.Context, orgID, id string) (Endpoint, error) {
	e, err := s.endpoint(ctx, orgID, id)
	if err != nil {
		return Endpoint{}, err
	}
	return s.view(ctx, e)
}

// view renders e with its backlog.
func (s *Service) view(ctx context.Context, e store.WebhookEndpoint) (Endpoint, error) {
	b, err := s.store.WebhookBacklog(ctx, e.ID)
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhooks: backlog of endpoint %s: %w", e.ID, err)
	}
	return endpointView(e, b, s.clock.Now(), s.o.DisableAfter), nil
}

// endpoint reads one of the organization's endpoints; another
// organization's is ErrEndpointNotFound.
func (s *Service) endpoint(ctx context.Context, orgID, id string) (store.WebhookEndpoint, error) {
	e, err := s.store.GetWebhookEndpoint(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (e.OrgID != orgID || orgID == "")) {
		return store.WebhookEndpoint{}, ErrEndpointNotFound
	}
	return e, err
}

// Update changes an endpoint of the organization as p says; at least one
// field must be set.
func (s *Service) Update(ctx context.Context, orgID, id string, p Patch, actor store.Actor) (Endpoint, error) {
	details := map[string]string{}
	var (
		u, desc string
		types   []string
		err     error
	)
	if p.URL != nil {
		if u, err = checkURL(s.o.Policy, *p.URL); err != nil {
			return Endpoint{}, err
		}
		details["url"] = u
	}
	if p.EventTypes != nil {
		if types, err = checkEventTypes(*p.EventTypes); err != nil {
			return Endpoint{}, err
		}
		details["event_types"] = strings.Join(types, " ")
	}
	if p.Description != nil {
		if desc, err = checkDescription(*p.Description); err != nil {
			return Endpoint{}, err
		}
		details["description"] = desc
	}
	if p.Enabled != nil {
		details["enabled"] = fmt.Sprint(*p.Enabled)
	}
	if len(details) == 0 {
		return Endpoint{}, apierror.Invalid("", "nothing to change: give url, event_types, description or enabled")
	}
	now := s.clock.Now()
	e, err := s.update(ctx, orgID, id, func(e store.WebhookEndpoint) store.WebhookEndpoint {
		if p.URL != nil {
			e.URL = u
		}
		if p.EventTypes != nil {
			e.EventTypes = types
		}
		if p.Description != nil {
			e.Description = desc
		}
		switch {
		case p.Enabled == nil:
		case *p.Enabled:
			if e.Disabled {
				e.Disabled, e.DisabledReason, e.DisabledAt = false, "", time.Time{}
				e.Health.FailingSince, e.Health.ConsecutiveFailures = time.Time{}, 0
			}
		case !e.Disabled:
			e.Disabled, e.DisabledReason, e.DisabledAt = true, ReasonOperator, now
		}
		e.UpdatedAt = now
		return e
	}, actor.Entry(orgID, actionUpdate, targetEndpoint, id, details))
	if err != nil {
		return Endpoint{}, err
	}
	return s.view(ctx, e)
}

// update applies change to one of the organization's endpoints.
func (s *Service) update(ctx context.Context, orgID, id string, change func(store.WebhookEndpoint) store.WebhookEndpoint, a store.AuditEntry) (store.WebhookEndpoint, error) {
	if orgID == "" {
		return store.WebhookEndpoint{}, ErrEndpointNotFound
	}
	e, err := s.store.UpdateWebhookEndpoint(ctx, id, func(e store.WebhookEndpoint) (store.WebhookEndpoint, error) {
		if e.OrgID != orgID {
			return e, ErrEndpointNotFound
		}
		return change(e), nil
	}, a)
	if errors.Is(err, store.ErrNotFound) {
		return store.WebhookEndpoint{}, ErrEndpointNotFound
	}
	return e, err
}

// Delete deletes one of the organization's endpoints. Its pending
// deliveries fail ("endpoint deleted"); its delivery log stays until
// purged.
func (s *Service) Delete(ctx context.Context, orgID, id string, actor store.Actor) error {
	e, err := s.endpoint(ctx, orgID, id)
	if err != nil {
		return err
	}
	err = s.store.DeleteWebhookEndpoint(ctx, id, s.clock.Now(),
		actor.Entry(orgID, actionDelete, targetEndpoint, id, map[string]string{"url": e.URL}))
	if errors.Is(err, store.ErrNotFound) {
		return ErrEndpointNotFound
	}
	return err
}

// RotateSecret gives one of the organization's endpoints a new secret,
// returned here and never again. The secret it replaces keeps signing
// deliveries beside the new one until previousExpiresAt, Options.SecretGrace
// from now (zero when there is no grace). Rotating again during a grace
// makes the current secret the previous one, with a new grace, and drops
// the one before it at once.
func (s *Service) RotateSecret(ctx context.Context, orgID, id string, actor store.Actor) (secret string, previousExpiresAt time.Time, err error) {
	secret, sealed, err := s.newSecret(id)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.clock.Now()
	if s.o.SecretGrace > 0 {
		previousExpiresAt = now.Add(s.o.SecretGrace)
	}
	details := map[string]string{}
	if !previousExpiresAt.IsZero() {
		details["previous_secret_expires_at"] = previousExpiresAt.UTC().Format(time.RFC3339)
	}
	_, err = s.update(ctx, orgID, id, func(e store.WebhookEndpoint) store.WebhookEndpoint {
		if previousExpiresAt.IsZero() {
			e.PreviousSecret, e.PreviousSecretExpiresAt = nil, time.Time{}
		} else {
			// The same associated data seals both, so the sealed
			// current secret moves as it is.
			e.PreviousSecret, e.PreviousSecretExpiresAt = e.Secret, previousExpiresAt
		}
		e.Secret = sealed
		e.UpdatedAt = now
		return e
	}, actor.Entry(orgID, actionRotate, targetEndpoint, id, details))
	if err != nil {
		return "", time.Time{}, err
	}
	return secret, previousExpiresAt, nil
}

// checkURL checks an endpoint URL against p and returns it in its
// canonical form; a refusal is a 400 on "url" that says why.
func checkURL(p netguard.Policy, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", apierror.Invalid("url", "url is required")
	}
	u, err := p.CheckURL(raw)
	if err != nil {
		return "", apierror.Invalid("url", "%s", err.Error()).Wrap(err)
	}
	return u.String(), nil
}

// checkEventTypes validates event types against the subscribable ones and
// returns them sorted and deduplicated, or just "*" when it is among them.
func checkEventTypes(types []string) ([]string, error) {
	if len(types) == 0 {
		return nil, apierror.Invalid("event_types", `event_types must list at least one event type, or "*" for all`)
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		switch {
		case t == AllEvents:
			return []string{AllEvents}, nil
		case subscribable(t):
			out = append(out, t)
		default:
			return nil, apierror.Invalid("event_types", "%q is not an event type; use %s, or \"*\" for all",
				truncate(t, 64), strings.Join(EventTypes(), ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkDescription trims a description and checks its length and
// characters.
func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if !utf8.ValidString(d) {
		return "", apierror.Invalid("description", "description must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLength {
		return "", apierror.Invalid("description", "description must be at most %d characters", MaxDescriptionLength)
	}
	for _, r := range d {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return "", apierror.Invalid("description", "description must not contain control characters")
		}
	}
	return d, nil
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
