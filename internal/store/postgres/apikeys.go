package postgres

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	keySelect = `SELECT ` + sqlstore.APIKeyColumns + ` FROM api_keys`
	keyInsert = `INSERT INTO api_keys (` + sqlstore.APIKeyColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
	keyUpdate = `UPDATE api_keys SET app_id = $1, name = $2, scopes = $3, ip_allowlist = $4, expires_at = $5, updated_at = $6,
		created_by = $7, last_used_at = $8, revoked_at = $9, signing_secret = $10, signature_required = $11, plan = $12 WHERE id = $13`
	keyByID       = keySelect + ` WHERE id = $1`
	keyByIDForUpd = keyByID + ` FOR UPDATE`
	keyByHash     = keySelect + ` WHERE hash = $1`
	keysOfOrg     = keySelect + ` WHERE org_id = $1 ORDER BY created_at DESC, id DESC`
	// keyTouch moves last_used_at forward only, for the keys given as
	// parallel arrays of IDs and times.
	keyTouch = `UPDATE api_keys AS k SET last_used_at = t.at
		FROM unnest($1::text[], $2::bigint[]) AS t (id, at)
		WHERE k.id = t.id AND (k.last_used_at IS NULL OR k.last_used_at < t.at)`
	// keysLock locks keys in ID order (bytewise, as Go sorts them; see
	// TouchAPIKeys).
	keysLock = `SELECT id FROM api_keys WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
)

func getKey(ctx context.Context, q querier, query, id string) (store.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(q.QueryRow(ctx, query, id))
	return k, wrapErr(err, "api key "+quote(id))
}

// CreateAPIKey creates an API key.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, keyInsert, sqlstore.APIKeyValues(k)...); err != nil {
			return wrapErr(err, "api key "+quote(k.ID))
		}
		return s.writeAudit(ctx, tx, a, k.ID)
	})
}

// GetAPIKey returns the API key with the given ID.
func (s *Store) GetAPIKey(ctx context.Context, id string) (store.APIKey, error) {
	return getKey(ctx, s.pool, keyByID, id)
}

// GetAPIKeyByHash returns the API key whose hash is hash.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(s.pool.QueryRow(ctx, keyByHash, sqlstore.Blob(hash)))
	return k, wrapErr(err, "api key by hash")
}

// ListAPIKeys lists an organization's keys, newest first, revoked ones
// included.
func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanAPIKey, keysOfOrg, orgID)
	return out, wrapErr(err, "list api keys")
}

// UpdateAPIKey updates an API key; ID, OrgID, Prefix, Hash and CreatedAt
// cannot change.
func (s *Store) UpdateAPIKey(ctx context.Context, id string, fn func(store.APIKey) (store.APIKey, error), a store.AuditEntry) (store.APIKey, error) {
	return update(ctx, s, rowUpdate[store.APIKey]{
		Get: func(ctx context.Context, q querier) (store.APIKey, error) {
			return getKey(ctx, q, keyByIDForUpd, id)
		},
		Keep: sqlstore.KeepAPIKey,
		Put: func(ctx context.Context, q querier, k store.APIKey) error {
			_, err := q.Exec(ctx, keyUpdate, k.AppID, k.Name, sqlstore.JSONList(k.Scopes), sqlstore.JSONList(k.IPAllowlist),
				sqlstore.Micros(k.ExpiresAt), sqlstore.Micros(k.UpdatedAt), k.CreatedBy, sqlstore.Micros(k.LastUsedAt),
				sqlstore.Micros(k.RevokedAt), sqlstore.NullBlob(k.SigningSecret), k.SignatureRequired, k.Plan, k.ID)
			return wrapErr(err, "api key "+quote(k.ID))
		},
	}, fn, a)
}

// TouchAPIKeys moves the keys' LastUsedAt forward to the given times, in one
// transaction. Earlier times and unknown IDs are ignored. The keys are
// locked in ID order first, so that two batches touching the same keys
// cannot deadlock.
func (s *Store) TouchAPIKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	ids := slices.Sorted(maps.Keys(lastUsed))
	ids = slices.DeleteFunc(ids, func(id string) bool { return lastUsed[id].IsZero() })
	if len(ids) == 0 {
		return nil
	}
	ats := make([]int64, len(ids))
	for i, id := range ids {
		ats[i] = lastUsed[id].UnixMicro()
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, keysLock, ids); err != nil {
			return wrapErr(err, "touch api keys")
		}
		_, err := tx.Exec(ctx, keyTouch, ids, ats)
		return wrapErr(err, "touch api keys")
	})
}
