package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	sigInsert  = `INSERT INTO signing_keys (` + sqlstore.SigningKeyColumns + `) VALUES ($1, $2, $3, $4, $5)`
	sigOrdered = `SELECT ` + sqlstore.SigningKeyColumns + ` FROM signing_keys ORDER BY created_at, id`
	// sigRetire sets retired_at unless it is set already; it matches the
	// key either way, so that no row affected means no such key.
	sigRetire = `UPDATE signing_keys SET retired_at = coalesce(retired_at, $1) WHERE id = $2`
	sigDelete = `DELETE FROM signing_keys WHERE id = $1`
	sigReseal = `UPDATE signing_keys SET private_key = $1 WHERE id = $2`
)

// CreateSigningKey stores a signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.exec(ctx, sigInsert, sqlstore.SigningKeyValues(k)...)
	return wrapErr(err, "signing key "+quote(k.ID))
}

// ListSigningKeys lists all signing keys, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	out, err := queryAll(ctx, s.pool, sqlstore.ScanSigningKey, sigOrdered)
	return out, wrapErr(err, "list signing keys")
}

// RetireSigningKey sets RetiredAt to at (now if zero) on a key that is not
// retired yet; a key already retired keeps its time. An unknown ID is
// store.ErrNotFound.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	return s.affectOne(ctx, "signing key "+quote(id), sigRetire, sqlstore.Micros(s.orNow(at)), id)
}

// ResealSigningKey replaces a key's sealed private key. An unknown ID is
// store.ErrNotFound.
func (s *Store) ResealSigningKey(ctx context.Context, id string, sealed []byte) error {
	return s.affectOne(ctx, "signing key "+quote(id), sigReseal, sqlstore.Blob(sealed), id)
}

// DeleteSigningKey removes a signing key. An unknown ID is store.ErrNotFound.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return s.affectOne(ctx, "signing key "+quote(id), sigDelete, id)
}

// affectOne runs a statement on one row, what: no row affected is
// store.ErrNotFound.
func (s *Store) affectOne(ctx context.Context, what, query string, args ...any) error {
	n, err := s.exec(ctx, query, args...)
	if err == nil && n == 0 {
		err = pgx.ErrNoRows
	}
	return wrapErr(err, what)
}
