package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	appSelect = `SELECT ` + sqlstore.AppColumns + ` FROM apps`
	appInsert = `INSERT INTO apps (` + sqlstore.AppColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	appUpdate = `UPDATE apps SET name = $1, environment = $2, secret_hash = $3, allowed_scopes = $4, ip_allowlist = $5,
		tokens_not_before = $6, updated_at = $7 WHERE id = $8`
	appByID       = appSelect + ` WHERE id = $1`
	appByIDForUpd = appByID + ` FOR UPDATE`
	appByClientID = appSelect + ` WHERE client_id = $1`
	appsOfOrg     = appSelect + ` WHERE org_id = $1 ORDER BY created_at, id`
	appDelete     = `DELETE FROM apps WHERE id = $1`
	// appRevokeKeys revokes an app's active keys, returning their IDs.
	appRevokeKeys = `UPDATE api_keys SET revoked_at = $1 WHERE app_id = $2 AND revoked_at IS NULL RETURNING id`
)

func getApp(ctx context.Context, q querier, query, arg string) (store.App, error) {
	a, err := sqlstore.ScanApp(q.QueryRow(ctx, query, arg))
	return a, wrapErr(err, "app "+quote(arg))
}

// CreateApp creates an app.
func (s *Store) CreateApp(ctx context.Context, app store.App, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, appInsert, sqlstore.AppValues(app)...); err != nil {
			return wrapErr(err, "app "+quote(app.ID))
		}
		return s.writeAudit(ctx, tx, a, app.ID)
	})
}

// GetApp returns the app with the given ID.
func (s *Store) GetApp(ctx context.Context, id string) (store.App, error) {
	return getApp(ctx, s.pool, appByID, id)
}

// GetAppByClientID returns the app with the given OAuth client ID.
func (s *Store) GetAppByClientID(ctx context.Context, clientID string) (store.App, error) {
	return getApp(ctx, s.pool, appByClientID, clientID)
}

// ListApps lists an organization's apps, oldest first.
func (s *Store) ListApps(ctx context.Context, orgID string) ([]store.App, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanApp, appsOfOrg, orgID)
	return out, wrapErr(err, "list apps")
}

// UpdateApp updates an app; ID, OrgID, ClientID and CreatedAt cannot change.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(store.App) (store.App, error), a store.AuditEntry) (store.App, error) {
	return update(ctx, s, rowUpdate[store.App]{
		Get: func(ctx context.Context, q querier) (store.App, error) {
			return getApp(ctx, q, appByIDForUpd, id)
		},
		Keep: sqlstore.KeepApp,
		Put: func(ctx context.Context, q querier, app store.App) error {
			_, err := q.Exec(ctx, appUpdate, app.Name, app.Environment, sqlstore.Blob(app.SecretHash),
				sqlstore.JSONList(app.AllowedScopes), sqlstore.JSONList(app.IPAllowlist),
				sqlstore.Micros(app.TokensNotBefore), sqlstore.Micros(app.UpdatedAt), app.ID)
			return wrapErr(err, "app "+quote(app.ID))
		},
	}, fn, a)
}

// DeleteApp deletes an app and revokes, at the given time, its keys that are
// not revoked yet (a zero at means now); the keys keep their AppID as
// history. It returns the IDs of the keys it revoked.
func (s *Store) DeleteApp(ctx context.Context, id string, at time.Time, a store.AuditEntry) ([]string, error) {
	var revoked []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n, err := execAffected(ctx, tx, appDelete, id)
		if err == nil && n == 0 {
			err = pgx.ErrNoRows
		}
		if err != nil {
			return wrapErr(err, "app "+quote(id))
		}
		revoked, err = queryAll(ctx, tx, sqlstore.ScanID, appRevokeKeys, sqlstore.Micros(s.orNow(at)), id)
		if err != nil {
			return wrapErr(err, "revoke keys of app "+quote(id))
		}
		return s.writeAudit(ctx, tx, a, "")
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}
