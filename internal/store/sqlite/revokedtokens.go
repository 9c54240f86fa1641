package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	revokedInsert = `INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (jti) DO NOTHING`
	revokedExists = `SELECT 1 FROM revoked_tokens WHERE jti = ?`
	revokedPurge  = `DELETE FROM revoked_tokens WHERE expires_at < ?`
)

// RevokeAccessToken records a revoked access token and its audit entry; a
// token already recorded is left as it is, without an audit entry.
func (s *Store) RevokeAccessToken(ctx context.Context, t store.RevokedToken, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := execAffected(ctx, tx, revokedInsert, t.JTI, t.ClientID, sqlstore.Micros(t.ExpiresAt),
			sqlstore.Micros(s.orNow(t.RevokedAt)))
		if err != nil || n == 0 {
			return wrapErr(err, "revoked token "+quote(t.JTI))
		}
		return s.writeAudit(ctx, tx, a, "")
	})
}

// AccessTokenRevoked reports whether the token with this jti was revoked.
func (s *Store) AccessTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.reader.QueryRowContext(ctx, revokedExists, jti).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrapErr(err, "revoked token "+quote(jti))
}

// PurgeRevokedTokens deletes the revoked tokens that expired before the
// given time.
func (s *Store) PurgeRevokedTokens(ctx context.Context, expiredBefore time.Time) (int64, error) {
	n, err := execAffected(ctx, s.writer, revokedPurge, sqlstore.Micros(expiredBefore))
	return n, wrapErr(err, "purge revoked tokens")
}
