package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	rtInsert = `INSERT INTO refresh_tokens (` + sqlstore.RefreshTokenColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	rtByHash = `SELECT ` + sqlstore.RefreshTokenColumns + ` FROM refresh_tokens WHERE hash = $1`
	// rtByHashForUpd locks the token being rotated, so that concurrent
	// rotations of one token run one after the other: the second finds it
	// used.
	rtByHashForUpd = rtByHash + ` FOR UPDATE`
	// rtUse marks a token used only if it is still unused and unrevoked, and
	// no token of its family is revoked: a revoked family never grows.
	rtUse = `UPDATE refresh_tokens SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.family_id = $4 AND f.revoked_at IS NOT NULL)`
	// rtFamily summarizes a family: its tokens, user and first revocation.
	rtFamily       = `SELECT COUNT(*), COALESCE(MIN(user_id), ''), MIN(revoked_at) FROM refresh_tokens WHERE family_id = $1`
	rtRevokeFamily = `UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`
	rtRevokeUser   = `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL`
)

func getRefreshToken(ctx context.Context, q querier, query string, hash []byte) (store.RefreshToken, error) {
	t, err := sqlstore.ScanRefreshToken(q.QueryRow(ctx, query, sqlstore.Blob(hash)))
	return t, wrapErr(err, "refresh token by hash")
}

func insertRefreshToken(ctx context.Context, q querier, t store.RefreshToken) error {
	_, err := q.Exec(ctx, rtInsert, sqlstore.RefreshTokenValues(t)...)
	return wrapErr(err, "refresh token "+quote(t.ID))
}

// CreateRefreshToken stores a refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	return s.retry(ctx, func() error { return insertRefreshToken(ctx, s.pool, t) })
}

// GetRefreshTokenByHash returns the refresh token whose hash is hash.
func (s *Store) GetRefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error) {
	return getRefreshToken(ctx, s.pool, rtByHash, hash)
}

// RotateRefreshToken marks the token with oldHash used at `at` (now if zero)
// by `by` and stores next, in one transaction, and returns the old token as
// stored (with UsedAt and UsedBy set). If the old token was already used or
// revoked, or its family is revoked, it writes nothing and returns it as it
// is with store.ErrTokenUsed. next must have the old token's FamilyID and
// UserID.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash []byte, next store.RefreshToken, at time.Time, by []byte) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		old, err = getRefreshToken(ctx, tx, rtByHashForUpd, oldHash)
		if err != nil {
			return err
		}
		if err := sqlstore.CheckRotation(old, next); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		usedAt := s.orNow(at)
		n, err := execAffected(ctx, tx, rtUse, sqlstore.Micros(usedAt), sqlstore.NullBlob(by), old.ID, old.FamilyID)
		if err != nil {
			return wrapErr(err, "refresh token "+quote(old.ID))
		}
		if n == 0 {
			return fmt.Errorf("postgres: %w", sqlstore.TokenUsed(old.ID))
		}
		if err := insertRefreshToken(ctx, tx, next); err != nil {
			return err
		}
		old, err = getRefreshToken(ctx, tx, rtByHash, oldHash)
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
	_, err := s.exec(ctx, rtRevokeFamily, sqlstore.Micros(s.orNow(at)), familyID)
	return wrapErr(err, "revoke refresh token family "+quote(familyID))
}

// RevokeUserRefreshTokens revokes, at `at` (now if zero), every token of the
// user that is not revoked yet.
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error {
	_, err := s.exec(ctx, rtRevokeUser, sqlstore.Micros(s.orNow(at)), userID)
	return wrapErr(err, "revoke refresh tokens of user "+quote(userID))
}

// GetRefreshFamily returns the family familyID, store.ErrNotFound when it has
// no token.
func (s *Store) GetRefreshFamily(ctx context.Context, familyID string) (store.RefreshFamily, error) {
	f := store.RefreshFamily{ID: familyID}
	var n int64
	err := s.pool.QueryRow(ctx, rtFamily, familyID).Scan(&n, &f.UserID, sqlstore.TimeCol(&f.RevokedAt))
	if err == nil && n == 0 {
		err = pgx.ErrNoRows
	}
	return f, wrapErr(err, "refresh token family "+quote(familyID))
}
