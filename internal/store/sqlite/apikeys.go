package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	keySelect = `SELECT ` + sqlstore.APIKeyColumns + ` FROM api_keys`
	keyInsert = `INSERT INTO api_keys (` + sqlstore.APIKeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	keyUpdate = `UPDATE api_keys SET app_id = ?, name = ?, scopes = ?, ip_allowlist = ?, expires_at = ?, updated_at = ?, created_by = ?, last_used_at = ?, revoked_at = ?, signing_secret = ?, signature_required = ?, plan = ? WHERE id = ?`
	keyByID   = keySelect + ` WHERE id = ?`
	keyByHash = keySelect + ` WHERE hash = ?`
	keysOfOrg = keySelect + ` WHERE org_id = ? ORDER BY created_at DESC, id DESC`
	// keyTouch moves last_used_at forward only.
	keyTouch = `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
)

func getKey(ctx context.Context, q querier, id string) (store.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(q.QueryRowContext(ctx, keyByID, id))
	return k, wrapErr(err, "api key "+quote(id))
}

// CreateAPIKey creates an API key.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, keyInsert, sqlstore.APIKeyValues(k)...); err != nil {
			return wrapErr(err, "api key "+quote(k.ID))
		}
		return s.writeAudit(ctx, tx, a, k.ID)
	})
}

// GetAPIKey returns the API key with the given ID.
func (s *Store) GetAPIKey(ctx context.Context, id string) (store.APIKey, error) {
	return getKey(ctx, s.reader, id)
}

// GetAPIKeyByHash returns the API key whose hash is hash.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash []byte) (store.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(s.reader.QueryRowContext(ctx, keyByHash, sqlstore.Blob(hash)))
	return k, wrapErr(err, "api key by hash")
}

// ListAPIKeys lists an organization's keys, newest first, revoked ones
// included.
func (s *Store) ListAPIKeys(ctx context.Context, orgID string) ([]store.APIKey, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanAPIKey, keysOfOrg, orgID)
	return out, wrapErr(err, "list api keys")
}

// UpdateAPIKey updates an API key; ID, OrgID, Prefix, Hash and CreatedAt
// cannot change.
func (s *Store) UpdateAPIKey(ctx context.Context, id string, fn func(store.APIKey) (store.APIKey, error), a store.AuditEntry) (store.APIKey, error) {
	return update(ctx, s, rowUpdate[store.APIKey]{
		Get: func(ctx context.Context, q querier) (store.APIKey, error) {
			return getKey(ctx, q, id)
		},
		Keep: sqlstore.KeepAPIKey,
		Put: func(ctx context.Context, q querier, k store.APIKey) error {
			_, err := q.ExecContext(ctx, keyUpdate, k.AppID, k.Name, sqlstore.JSONList(k.Scopes), sqlstore.JSONList(k.IPAllowlist),
				sqlstore.Micros(k.ExpiresAt), sqlstore.Micros(k.UpdatedAt), k.CreatedBy, sqlstore.Micros(k.LastUsedAt),
				sqlstore.Micros(k.RevokedAt), sqlstore.NullBlob(k.SigningSecret), k.SignatureRequired, k.Plan, k.ID)
			return wrapErr(err, "api key "+quote(k.ID))
		},
	}, fn, a)
}

// TouchAPIKeys moves the keys' LastUsedAt forward to the given times, in one
// transaction. Earlier times and unknown IDs are ignored.
func (s *Store) TouchAPIKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, keyTouch)
		if err != nil {
			return wrapErr(err, "touch api keys")
		}
		defer stmt.Close()
		for id, at := range lastUsed {
			if at.IsZero() {
				continue
			}
			if _, err := stmt.ExecContext(ctx, at.UnixMicro(), id, at.UnixMicro()); err != nil {
				return wrapErr(err, "touch api key "+quote(id))
			}
		}
		return nil
	})
}
