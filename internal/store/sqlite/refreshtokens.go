package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	rtInsert = `INSERT INTO refresh_tokens (` + sqlstore.RefreshTokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	rtByHash = `SELECT ` + sqlstore.RefreshTokenColumns + ` FROM refresh_tokens WHERE hash = ?`
	// rtUse marks a token used only if it is still unused and unrevoked, and
	// no token of its family is revoked, so that of two concurrent rotations
	// at most one can succeed, and a revoked family never grows.
	rtUse = `UPDATE refresh_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family_id = ? AND f.revoked_at IS NOT NULL)`
	// rtFamily summarizes a family: its tokens, user and first revocation.
	rtFamily       = `SELECT COUNT(*), COALESCE(MIN(user_id), ''), MIN(revoked_at) FROM refresh_tokens WHERE family_id = ?`
	rtRevokeFamily = `UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`
	rtRevokeUser   = `UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`
)

func getRefreshToken(ctx context.Context, q querier, hash []byte) (store.RefreshToken, error) {
	t, err := sqlstore.ScanRefreshToken(q.QueryRowContext(ctx, rtByHash, sqlstore.Blob(hash)))
	return t, wrapErr(err, "refresh token by hash")
}

func insertRefreshToken(ctx context.Context, q querier, t store.RefreshToken) error {
	_, err := q.ExecContext(ctx, rtInsert, sqlstore.RefreshTokenValues(t)...)
	return wrapErr(err, "refresh token "+quote(t.ID))
}

// CreateRefreshToken stores a refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return insertRefreshToken(ctx, s.writer, t)
}

// GetRefreshTokenByHash returns the refresh token whose hash is hash.
func (s *Store) GetRefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	return getRefreshToken(ctx, s.reader, hash)
}

// RotateRefreshToken marks the token with oldHash used at `at` (now if zero)
// by `by` and stores next, in one transaction, and returns the old token as
// stored (with UsedAt and UsedBy set). If the old token was already used or
// revoked, or its family is revoked, it writes nothing and returns it as it
// is with store.ErrTokenUsed. next must have the old token's FamilyID and
// UserID.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, at time.Time, by []byte) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = getRefreshToken(ctx, tx, oldHash)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckRotation(old, next); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		usedAt := s.orNow(at)
		n, err := execAffected(ctx, tx, rtUse, sqlstore.Micros(usedAt), sqlstore.NullBlob(by), old.ID, old.FamilyID)
		if err != nil {
			return wrapErr(err, "refresh token "+quote(old.ID))
		}
		if n == 0 {
			return fmt.Errorf("sqlite: %w", sqlstore.TokenUsed(old.ID))
		}
		if err := insertRefreshToken(ctx, tx, next); err != nil {
			return err
		}
		old, err = getRefreshToken(ctx, tx, oldHash)
		return err
	})
	switch {
	case err == nil:
		return old, nil
	case old.ID != "" && errors.Is(err, store.ErrTokenUsed):
		return old, err
	default:
		return store.RefreshToken{}, err
	}
}

// RevokeRefreshTokenFamily revokes, at `at` (now if zero), every token of the
// family that is not revoked yet.
func (s *Store) RevokeRefreshTokenFamily(ctx context.Context, familyID string, at time.Time) error {
	_, err := s.writer.ExecContext(ctx, rtRevokeFamily, sqlstore.Micros(s.orNow(at)), familyID)
	return wrapErr(err, "revoke refresh token family "+quote(familyID))
}

// RevokeUserRefreshTokens revokes, at `at` (now if zero), every token of the
// user that is not revoked yet.
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error {
	_, err := s.writer.ExecContext(ctx, rtRevokeUser, sqlstore.Micros(s.orNow(at)), userID)
	return wrapErr(err, "revoke refresh tokens of user "+quote(userID))
}

// GetRefreshFamily returns the family familyID, store.ErrNotFound when it has
// no token.
func (s *Store) GetRefreshFamily(ctx context.Context, familyID string) (store.RefreshFamily, error) {
	f := store.RefreshFamily{ID: familyID}
	var n int64
	err := s.reader.QueryRowContext(ctx, rtFamily, familyID).Scan(&n, &f.UserID, sqlstore.TimeCol(&f.RevokedAt))
	if err == nil && n == 0 {
		err = sql.ErrNoRows
	}
	return f, wrapErr(err, "refresh token family "+quote(familyID))
}
