// Package credentials manages organizations' API keys — issuing, listing,
// editing and revoking them — and authenticates the requests that present one
// in the X-API-KEY header.
//
// Keys are shown once, at creation; the store keeps only their SHA-256 hash.
// Authentication goes through an in-memory cache so that a known key costs a
// map lookup rather than a database query. Every change made through this
// service (edit, revoke) drops the key from the cache at once; changes made
// by another process are seen within the cache TTL.
package credentials

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/tollgate/tollgate/internal/events"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/apikey"
	"github.com/tollgate/tollgate/internal/authn"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/ids"
	"github.com/tollgate/tollgate/internal/ipallow"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/validate"
)

// Store is the part of the store the service uses.
type Store interface {
	CreateAPIKey(ctx context.Context, k store.APIKey, a store.AuditEntry) error
	GetAPIKey(ctx context.Context, id string) (store.APIKey, error)
	GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error)
	UpdateAPIKey(ctx context.Context, id string, update func(store.APIKey) (store.APIKey, error), a store.AuditEntry) (store.APIKey, error)
	TouchAPIKeys(ctx context.Context, lastUsed map[string]time.Time) error
	GetApp(ctx context.Context, id string) (store.App, error)
	// GetOrganization reads a key's organization, whose status is cached
	// with the key.
	GetOrganization(ctx context.Context, id string) (store.Organization, error)
}

// Sealer encrypts signing secrets at rest; *secretbox.Box implements it.
type Sealer interface {
	Seal(plaintext, associatedData []byte) ([]byte, error)
	Open(sealed, associatedData []byte) ([]byte, error)
}

// Options configure a Service. Zero values take the defaults noted.
type Options struct {
	// Sealer encrypts keys' HMAC signing secrets; without one, keys cannot
	// have signing secrets.
	Sealer    Sealer
	Clock     clock.Clock   // default clock.System{}
	CacheTTL  time.Duration // default 30s
	CacheSize int           // default 100000
	Logger    *slog.Logger  // default: discard
	// Events reports apikey.created and apikey.revoked; nil reports
	// nothing.
	Events events.Func
	// Broadcast, when set, tells the other nodes of a cluster that a key
	// changed (a message for their Apply); this node drops its own cache
	// entry regardless. It must not block for long.
	Broadcast func(msg string)
	// StoreOutageGrace is how long past CacheTTL a cached key keeps being
	// used when the store cannot be read; 0: none.
	StoreOutageGrace time.Duration
}

// Service is safe for concurrent use. Call Close to write the last uses.
type Service struct {
	store     Store
	events    events.Func
	broadcast func(string)
	grace     time.Duration
	sealer    Sealer
	clock     clock.Clock
	log       *slog.Logger
	cache     *cache
	flight    singleflight.Group
	// drops counts invalidations, so that a load that raced with one
	// does not cache what it read (see load).
	drops atomic.Uint64

	// pending holds uses not yet written whose cache entry is gone.
	pendingMu sync.Mutex
	pending   map[string]time.Time
}

// New returns a Service on st.
func New(st Store, o Options) *Service {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store:     st,
		events:    o.Events,
		broadcast: o.Broadcast,
		grace:     max(0, o.StoreOutageGrace),
		sealer:    o.Sealer,
		clock:     o.Clock,
		log:       o.Logger,
		cache:     newCache(o.CacheTTL, o.CacheSize),
		pending:   map[string]time.Time{},
	}
}

// Limits on what a key may carry.
const (
	MaxNameLength = 64
	// MaxLifetime bounds an explicit expiry; keys may also never expire.
	MaxLifetime = 10 * 365 * 24 * time.Hour
)

// CreateInput describes a new key.
type CreateInput struct {
	Name        string
	AppID       string    // optional: ties the key to one of the org's apps
	ExpiresAt   time.Time // zero: never expires
	Scopes      []string
	IPAllowlist ipallow.List
	// SigningSecret gives the key an HMAC secret to sign requests with.
	SigningSecret bool
	// SignatureRequired refuses the key's unsigned requests; it needs
	// SigningSecret.
	SignatureRequired bool
}

// Created is a new key together with its secrets, which exist nowhere else:
// show them once and forget them.
type Created struct {
	Key    store.APIKey
	Secret string
	// SigningSecret is the HMAC request-signing secret, "" when the key has
	// none.
	SigningSecret string
}

// SigningSecretPrefix starts every signing secret, so that secret scanners
// recognise one; the whole string, prefix included, is the HMAC key.
const SigningSecretPrefix = "tgs_"

// signingSecretLength is the length of a signing secret: the prefix and 43
// base62 characters (256 bits).
const signingSecretLength = len(SigningSecretPrefix) + 43

func signingAD(keyID string) []byte { return []byte("apikey_signing:" + keyID) }

var errNoSealer = errors.New("credentials: no master key to seal signing secrets")

// Create issues a new key for the organization.
func (s *Service) Create(ctx context.Context, orgID string, in CreateInput, actor store.Actor) (Created, error) {
	now := s.clock.Now()
	name, err := validate.Name("name", in.Name, MaxNameLength)
	if err != nil {
		return Created{}, err
	}
	scopes, err := validate.Scopes("scopes", in.Scopes)
	if err != nil {
		return Created{}, err
	}
	if err := checkExpiry(in.ExpiresAt, now); err != nil {
		return Created{}, err
	}
	if in.AppID != "" {
		app, err := s.store.GetApp(ctx, in.AppID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && app.OrgID != orgID) {
			return Created{}, apierror.Invalid("app_id", "no such app in this organization")
		}
		if err != nil {
			return Created{}, err
		}
	}
	if in.SignatureRequired && !in.SigningSecret {
		return Created{}, apierror.Invalid("signature_required", "signature_required needs signing_secret: true")
	}
	secret, err := apikey.Generate()
	if err != nil {
		return Created{}, err
	}
	h := apikey.Hash(secret)
	k := store.APIKey{
		ID:          ids.New(ids.APIKey),
		OrgID:       orgID,
		AppID:       in.AppID,
		Name:        name,
		Prefix:      apikey.DisplayPrefix(secret),
		Hash:        h[:],
		Scopes:      scopes,
		IPAllowlist: in.IPAllowlist.Strings(),
		ExpiresAt:   in.ExpiresAt,
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   actorName(actor),
	}
	var signing string
	if in.SigningSecret {
		if signing, k.SigningSecret, err = s.newSigningSecret(k.ID); err != nil {
			return Created{}, err
		}
		k.SignatureRequired = in.SignatureRequired
	}
	details := map[string]string{"name": name, "prefix": k.Prefix}
	if in.SigningSecret {
		details["signing_secret"] = "yes"
		details["signature_required"] = fmt.Sprint(in.SignatureRequired)
	}
	if err := s.store.CreateAPIKey(ctx, k, actor.Entry(orgID, "apikey.create", "apikey", k.ID, details)); err != nil {
		return Created{}, fmt.Errorf("credentials: create key: %w", err)
	}
	s.invalidate(h[:]) // a cached "no such key" would hide the new key
	s.report(ctx, events.APIKeyCreated, k)
	return Created{Key: k, Secret: secret, SigningSecret: signing}, nil
}

// keyEvent is an API key as events describe it: never its secrets.
type keyEvent struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	AppID     string     `json:"app_id,omitempty"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// report reports eventType about k.
func (s *Service) report(ctx context.Context, eventType string, k store.APIKey) {
	if s.events == nil {
		return
	}
	v := keyEvent{ID: k.ID, Name: k.Name, Prefix: k.Prefix, AppID: k.AppID, Scopes: k.Scopes, CreatedAt: k.CreatedAt.UTC(), CreatedBy: k.CreatedBy}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if !k.ExpiresAt.IsZero() {
		t := k.ExpiresAt.UTC()
		v.ExpiresAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt.UTC()
		v.RevokedAt = &t
	}
	s.events(ctx, k.OrgID, eventType, map[string]any{"api_key": v})
}

// Resealer is a Sealer that tells which values a previous master key sealed;
// *secretbox.Box implements it.
type Resealer interface {
	Sealer
	NeedsReseal(sealed []byte) bool
}

// ResealSecrets seals again, under the primary master key, the signing
// secrets of the organizations' keys that a previous master key sealed. It
// returns how many it resealed; each is audited as apikey.reseal.
func (s *Service) ResealSecrets(ctx context.Context, box Resealer, orgIDs []string, actor store.Actor) (int, error) {
	n := 0
	for _, org := range orgIDs {
		keys, err := s.store.ListAPIKeys(ctx, org)
		if err != nil {
			return n, err
		}
		for _, k := range keys {
			if len(k.SigningSecret) == 0 || !box.NeedsReseal(k.SigningSecret) {
				continue
			}
			_, err := s.store.UpdateAPIKey(ctx, k.ID, func(k store.APIKey) (store.APIKey, error) {
				plain, err := box.Open(k.SigningSecret, signingAD(k.ID))
				if err != nil {
					return k, fmt.Errorf("credentials: open signing secret of key %s (is its master key in previous_master_keys?): %w", k.ID, err)
				}
				k.SigningSecret, err = box.Seal(plain, signingAD(k.ID))
				return k, err
			}, actor.Entry(org, "apikey.reseal", "apikey", k.ID, nil))
			if err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// newSigningSecret makes a signing secret for key id and seals it.
func (s *Service) newSigningSecret(id string) (secret string, sealed []byte, err error) {
	if s.sealer == nil {
		return "", nil, errNoSealer
	}
	b := make([]byte, signingSecretLength)
	copy(b, SigningSecretPrefix)
	if err := apikey.RandomBase62(b[len(SigningSecretPrefix):]); err != nil {
		return "", nil, err
	}
	sealed, err = s.sealer.Seal(b, signingAD(id))
	if err != nil {
		return "", nil, fmt.Errorf("credentials: seal signing secret: %w", err)
	}
	return string(b), sealed, nil
}

func actorName(a store.Actor) string {
	if a.ID != "" {
		return a.ID
	}
	return string(a.Type)
}

func checkExpiry(t, now time.Time) error {
	if t.IsZero() {
		return nil
	}
	if !t.After(now) {
		return apierror.Invalid("expires_at", "expires_at must be in the future")
	}
	if t.Sub(now) > MaxLifetime {
		return apierror.Invalid("expires_at", "expires_at must be within 10 years; omit it for a key that never expires")
	}
	return nil
}

var errNoKey = apierror.New(http.StatusNotFound, apierror.NotFound, "no such API key")

// Get returns one of the organization's keys.
func (s *Service) Get(ctx context.Context, orgID, id string) (store.APIKey, error) {
	k, err := s.store.GetAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && k.OrgID != orgID) {
		return store.APIKey{}, errNoKey
	}
	return k, err
}

// List returns the organization's keys, newest first, revoked ones included.
func (s *Service) List(ctx context.Context, orgID string) ([]store.APIKey, error) {
	return s.store.ListAPIKeys(ctx, orgID)
}

// Patch changes some fields of a key; nil fields are left alone.
type Patch struct {
	Name        *string
	ExpiresAt   *time.Time // pointer to the zero time: never expires
	Scopes      *[]string
	IPAllowlist *ipallow.List
	// SignatureRequired needs a key with a signing secret.
	SignatureRequired *bool
}

// Update edits an active key of the organization.
func (s *Service) Update(ctx context.Context, orgID, id string, p Patch, actor store.Actor) (store.APIKey, error) {
	now := s.clock.Now()
	details := map[string]string{}
	var name string
	var scopes []string
	var err error
	if p.Name != nil {
		if name, err = validate.Name("name", *p.Name, MaxNameLength); err != nil {
			return store.APIKey{}, err
		}
		details["name"] = name
	}
	if p.Scopes != nil {
		if scopes, err = validate.Scopes("scopes", *p.Scopes); err != nil {
			return store.APIKey{}, err
		}
		details["scopes"] = fmt.Sprint(scopes)
	}
	if p.ExpiresAt != nil {
		if err := checkExpiry(*p.ExpiresAt, now); err != nil {
			return store.APIKey{}, err
		}
		details["expires_at"] = formatTime(*p.ExpiresAt)
	}
	if p.IPAllowlist != nil {
		details["ip_allowlist"] = p.IPAllowlist.String()
	}
	if p.SignatureRequired != nil {
		details["signature_required"] = fmt.Sprint(*p.SignatureRequired)
	}
	if len(details) == 0 {
		return store.APIKey{}, apierror.Invalid("", "nothing to change: give name, expires_at, scopes, ip_allowlist or signature_required")
	}
	k, err := s.store.UpdateAPIKey(ctx, id, func(k store.APIKey) (store.APIKey, error) {
		if k.OrgID != orgID {
			return k, errNoKey
		}
		if !k.RevokedAt.IsZero() {
			return k, apierror.New(http.StatusConflict, apierror.Conflict, "a revoked key cannot be edited")
		}
		if p.Name != nil {
			k.Name = name
		}
		if p.Scopes != nil {
			k.Scopes = scopes
		}
		if p.ExpiresAt != nil {
			k.ExpiresAt = *p.ExpiresAt
		}
		if p.IPAllowlist != nil {
			k.IPAllowlist = p.IPAllowlist.Strings()
		}
		if p.SignatureRequired != nil {
			if *p.SignatureRequired && len(k.SigningSecret) == 0 {
				return k, apierror.Invalid("signature_required", "this key has no signing secret; create a key with signing_secret: true")
			}
			k.SignatureRequired = *p.SignatureRequired
		}
		k.UpdatedAt = now
		return k, nil
	}, actor.Entry(orgID, "apikey.update", "apikey", id, details))
	if errors.Is(err, store.ErrNotFound) {
		return store.APIKey{}, errNoKey
	}
	if err != nil {
		return store.APIKey{}, err
	}
	s.invalidate(k.Hash)
	if p.ExpiresAt != nil || p.Scopes != nil || p.IPAllowlist != nil || p.SignatureRequired != nil {
		// What the key may do changed: its open sessions end, to
		// reconnect under the new terms.
		s.InvalidateKeys([]string{k.ID})
	}
	return k, nil
}

// Revoke revokes one of the organization's keys at once. Revoking a revoked
// key changes nothing and is not an error.
func (s *Service) Revoke(ctx context.Context, orgID, id string, actor store.Actor) (store.APIKey, error) {
	now := s.clock.Now()
	k, err := s.store.UpdateAPIKey(ctx, id, func(k store.APIKey) (store.APIKey, error) {
		if k.OrgID != orgID {
			return k, errNoKey
		}
		if !k.RevokedAt.IsZero() {
			return k, errAlreadyRevoked
		}
		k.RevokedAt = now
		k.UpdatedAt = now
		return k, nil
	}, actor.Entry(orgID, "apikey.revoke", "apikey", id, nil))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.APIKey{}, errNoKey
	case errors.Is(err, errAlreadyRevoked):
		return s.Get(ctx, orgID, id)
	case err != nil:
		return store.APIKey{}, err
	}
	s.invalidate(k.Hash)
	s.InvalidateKeys([]string{k.ID}) // ends the key's open sessions on every node
	s.report(ctx, events.APIKeyRevoked, k)
	return k, nil
}

var errAlreadyRevoked = errors.New("already revoked")

// Invalidate drops a key from the cache by its hash, so that the next request
// with it reads the store. Call it when a key changes outside this service.
func (s *Service) Invalidate(hash []byte) { s.invalidate(hash) }

// InvalidateKeys drops keys from the cache by their IDs, such as the keys
// revoked with their app, on this node and, through Broadcast, on the others.
// Its message (KeyIDsOfMessage) also ends the keys' open sessions.
func (s *Service) InvalidateKeys(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.dropKeys(ids)
	if s.broadcast != nil {
		s.broadcast(msgKeyIDs + strings.Join(ids, ","))
	}
}

// Messages of Broadcast and Apply.
const (
	msgKeyHash = "apikey:"     // + hex SHA-256 of the key
	msgKeyIDs  = "apikey-ids:" // + comma-separated key IDs
)

// KeyIDsOfMessage returns the key IDs of an InvalidateKeys message: keys
// revoked, or whose scopes, allowlist or expiry changed, whose open
// sessions must end.
func KeyIDsOfMessage(msg string) ([]string, bool) {
	ids, ok := strings.CutPrefix(msg, msgKeyIDs)
	if !ok {
		return nil, false
	}
	return strings.Split(ids, ","), true
}

// Apply carries out a message another node broadcast, or the counters.Resync
// message "*", which drops the whole cache (messages may have been missed).
// An organization's message (authn.MsgOrgDisabled, authn.MsgOrgEnabled)
// drops its keys, so that its next request reads its status again; Apply
// reports false for it, as it is every cache's business.
// It reports whether the message was this service's.
func (s *Service) Apply(msg string) bool {
	if org, ok := authn.OrgOfMessage(msg); ok {
		s.dropOrg(org)
		return false
	}
	switch {
	case msg == "*":
		var all [][32]byte
		s.cache.each(func(h [32]byte, _ *entry) { all = append(all, h) })
		for _, h := range all {
			s.drop(h)
		}
		return true
	case strings.HasPrefix(msg, msgKeyHash):
		var h [32]byte
		if b, err := hex.DecodeString(msg[len(msgKeyHash):]); err == nil && copy(h[:], b) == len(h) {
			s.drop(h)
		}
		return true
	case strings.HasPrefix(msg, msgKeyIDs):
		s.dropKeys(strings.Split(msg[len(msgKeyIDs):], ","))
		return true
	}
	return false
}

// dropOrg drops the cached keys of an organization.
func (s *Service) dropOrg(orgID string) {
	s.drops.Add(1) // also when nothing is cached: a load may be under way
	var hashes [][32]byte
	s.cache.each(func(h [32]byte, e *entry) {
		if e.principal != nil && e.principal.OrgID == orgID {
			hashes = append(hashes, h)
		}
	})
	for _, h := range hashes {
		s.drop(h)
	}
}

func (s *Service) dropKeys(ids []string) {
	s.drops.Add(1)
	var hashes [][32]byte
	s.cache.each(func(h [32]byte, e *entry) {
		if e.keyID != "" && slices.Contains(ids, e.keyID) {
			hashes = append(hashes, h)
		}
	})
	for _, h := range hashes {
		if e := s.cache.remove(h); e != nil {
			s.keepPending(e)
		}
	}
}

func (s *Service) invalidate(hash []byte) {
	var h [32]byte
	if copy(h[:], hash) != len(h) {
		return
	}
	s.drop(h)
	if s.broadcast != nil {
		s.broadcast(msgKeyHash + hex.EncodeToString(h[:]))
	}
}

func (s *Service) drop(h [32]byte) {
	s.drops.Add(1)
	if e := s.cache.remove(h); e != nil {
		s.keepPending(e)
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// Errors of Lookup, as the gateway answers them.
var (
	ErrInvalidKey = apierror.New(http.StatusUnauthorized, apierror.InvalidCredentials, "invalid API key")
	ErrExpiredKey = apierror.New(http.StatusUnauthorized, apierror.ExpiredToken, "API key expired")
	errStoreDown  = apierror.New(http.StatusServiceUnavailable, apierror.ServiceUnavailable, "credential store unavailable")
)

// Key is what the gateway needs of a verified API key.
type Key struct {
	Principal *authn.Principal
	// SigningSecret is the key's HMAC secret in clear, nil when it has
	// none. It is shared: never modify it.
	SigningSecret     []byte
	SignatureRequired bool
}

// Lookup returns what the gateway needs of a presented API key: its
// principal and signing secret. It returns ErrInvalidKey for a malformed,
// unknown or revoked key, ErrExpiredKey for an expired one,
// apierror.ErrOrgDisabled for a key of a disabled organization (the status
// is read with the key and cached with it: no cost per request), and
// records the use for the key's "last used" time.
func (s *Service) Lookup(ctx context.Context, presented string) (Key, error) {
	if !apikey.Valid(presented) {
		return Key{}, ErrInvalidKey // no store lookup for garbage
	}
	h := apikey.Hash(presented)
	now := s.clock.Now()
	e := s.cache.get(h, now)
	if e == nil {
		var err error
		if e, err = s.load(ctx, h, now); err != nil {
			// A store outage: a key known valid a little while ago
			// keeps working for the grace.
			if e = s.cache.stale(h, now, s.grace); e == nil || e.principal == nil {
				return Key{}, errStoreDown.Wrap(err)
			}
		}
	}
	switch {
	case e.principal == nil || e.revoked:
		return Key{}, ErrInvalidKey
	case !e.expiresAt.IsZero() && !now.Before(e.expiresAt):
		return Key{}, ErrExpiredKey
	case e.orgDisabled:
		return Key{}, apierror.ErrOrgDisabled
	}
	e.lastUsed.Store(now.UnixNano())
	return Key{Principal: e.principal, SigningSecret: e.signingSecret, SignatureRequired: e.signatureRequired}, nil
}

// load reads a key from the store into the cache; concurrent loads of the
// same key share one query.
func (s *Service) load(ctx context.Context, h [32]byte, now time.Time) (*entry, error) {
	v, err, _ := s.flight.Do(string(h[:]), func() (any, error) {
		drops := s.drops.Load()
		k, err := s.store.GetAPIKeyByHash(ctx, h[:])
		e := &entry{fetched: now}
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		case subtle.ConstantTimeCompare(k.Hash, h[:]) != 1:
			return nil, errors.New("credentials: store returned a key with another hash")
		default:
			allow, err := ipallow.Parse(k.IPAllowlist)
			if err != nil {
				return nil, fmt.Errorf("credentials: key %s has a corrupt allowlist: %w", k.ID, err)
			}
			if len(k.SigningSecret) > 0 {
				if s.sealer == nil {
					return nil, fmt.Errorf("credentials: key %s has a signing secret: %w", k.ID, errNoSealer)
				}
				secret, err := s.sealer.Open(k.SigningSecret, signingAD(k.ID))
				if err != nil {
					return nil, fmt.Errorf("credentials: open signing secret of key %s (wrong master key?): %w", k.ID, err)
				}
				e.signingSecret = secret
				e.signatureRequired = k.SignatureRequired
			}
			org, err := s.store.GetOrganization(ctx, k.OrgID)
			switch {
			case errors.Is(err, store.ErrNotFound):
				e.revoked = true // an organization gone takes its keys with it
			case err != nil:
				return nil, err
			}
			e.orgDisabled = org.Disabled()
			e.keyID = k.ID
			e.expiresAt = k.ExpiresAt
			e.revoked = e.revoked || !k.RevokedAt.IsZero()
			e.principal = &authn.Principal{
				OrgID:        k.OrgID,
				AppID:        k.AppID,
				CredentialID: k.ID,
				Method:       authn.MethodAPIKey,
				Scopes:       k.Scopes,
				IPAllowlist:  allow,
				Plan:         k.Plan,
				ExpiresAt:    k.ExpiresAt,
			}
		}
		if s.drops.Load() != drops {
			// An invalidation came while the store was read: what was
			// read may predate it. Serve it this once, cache it not.
			return e, nil
		}
		for _, d := range s.cache.put(h, e) {
			s.keepPending(d)
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

func (s *Service) keepPending(e *entry) {
	if e.keyID == "" {
		return
	}
	if ns := e.lastUsed.Swap(0); ns != 0 {
		s.pendingMu.Lock()
		if t := time.Unix(0, ns); t.After(s.pending[e.keyID]) {
			s.pending[e.keyID] = t
		}
		s.pendingMu.Unlock()
	}
}

// FlushLastUsed writes the uses recorded since the last flush to the store.
// On failure the uses are kept for the next flush.
func (s *Service) FlushLastUsed(ctx context.Context) error {
	batch := map[string]time.Time{}
	s.cache.each(func(_ [32]byte, e *entry) {
		if e.keyID == "" {
			return
		}
		if ns := e.lastUsed.Swap(0); ns != 0 {
			batch[e.keyID] = time.Unix(0, ns)
		}
	})
	s.pendingMu.Lock()
	for id, t := range s.pending {
		if t.After(batch[id]) {
			batch[id] = t
		}
	}
	clear(s.pending)
	s.pendingMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := s.store.TouchAPIKeys(ctx, batch); err != nil {
		s.pendingMu.Lock()
		for id, t := range batch {
			if t.After(s.pending[id]) {
				s.pending[id] = t
			}
		}
		s.pendingMu.Unlock()
		return fmt.Errorf("credentials: record last use of %d keys: %w", len(batch), err)
	}
	return nil
}

// RunFlusher writes last uses every interval until ctx ends, then once more.
func (s *Service) RunFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.FlushLastUsed(ctx); err != nil {
				s.log.Warn("flush last use of API keys", "error", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := s.FlushLastUsed(fctx); err != nil {
				s.log.Error("final flush of API key last use", "error", err)
			}
			cancel()
			return
		}
	}
}

// pendingSnapshot is for tests.
func (s *Service) pendingSnapshot() map[string]time.Time {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	return maps.Clone(s.pending)
}
