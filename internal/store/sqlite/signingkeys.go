package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	sigInsert  = `INSERT INTO signing_keys (` + sqlstore.SigningKeyColumns + `) VALUES (?, ?, ?, ?, ?)`
	sigOrdered = `SELECT ` + sqlstore.SigningKeyColumns + ` FROM signing_keys ORDER BY created_at, id`
	sigExists  = `SELECT 1 FROM signing_keys WHERE id = ?`
	sigRetire  = `UPDATE signing_keys SET retired_at = ? WHERE id = ? AND retired_at IS NULL`
	sigDelete  = `DELETE FROM signing_keys WHERE id = ?`
	sigReseal  = `UPDATE signing_keys SET private_key = ? WHERE id = ?`
)

// CreateSigningKey stores a signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.writer.ExecContext(ctx, sigInsert, sqlstore.SigningKeyValues(k)...)
	return wrapErr(err, "signing key "+quote(k.ID))
}

// ListSigningKeys lists all signing keys, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	out, err := queryAll(ctx, s.reader, sqlstore.ScanSigningKey, sigOrdered)
	return out, wrapErr(err, "list signing keys")
}

// RetireSigningKey sets RetiredAt to at (now if zero) on a key that is not
// retired yet; a key already retired keeps its time. An unknown ID is
// store.ErrNotFound.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, sigExists, id).Scan(&one); err != nil {
			return wrapErr(err, "signing key "+quote(id))
		}
		_, err := tx.ExecContext(ctx, sigRetire, sqlstore.Micros(s.orNow(at)), id)
		return wrapErr(err, "signing key "+quote(id))
	})
}

// ResealSigningKey replaces a key's sealed private key. An unknown ID is
// store.ErrNotFound.
func (s *Store) ResealSigningKey(ctx context.Context, id string, sealed []byte) error {
	n, err := execAffected(ctx, s.writer, sigReseal, sqlstore.Blob(sealed), id)
	if err == nil && n == 0 {
		err = sql.ErrNoRows
	}
	return wrapErr(err, "signing key "+quote(id))
}

// DeleteSigningKey removes a signing key. An unknown ID is store.ErrNotFound.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	n, err := execAffected(ctx, s.writer, sigDelete, id)
	if err == nil && n == 0 {
		err = sql.ErrNoRows
	}
	return wrapErr(err, "signing key "+quote(id))
}
