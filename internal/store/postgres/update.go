package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
)

// rowUpdate describes one read-modify-write of a row, for update.
type rowUpdate[T any] struct {
	// get reads the row and locks it until the transaction ends (SELECT …
	// FOR UPDATE), or fails with store.ErrNotFound when there is none.
	get func(ctx context.Context, q querier) (T, error)
	// keep copies the fields an update may not change from old into updated.
	keep func(old, updated T) T
	// put writes the updated row.
	put func(ctx context.Context, q querier, v T) error
}

// update runs the read-modify-write described by r in one transaction: it
// reads and locks the row, passes it to fn, restores the immutable fields,
// writes the result and the audit entry, and returns the row as stored. The
// row lock makes concurrent updates of one row run one after the other, each
// fn getting the row as the previous one left it, as SQLite's single writer
// does. If fn fails, nothing is written and fn's error is returned as it is.
func update[T any](ctx context.Context, s *Store, r rowUpdate[T], fn func(T) (T, error), a store.AuditEntry) (T, error) {
	var stored T
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := r.get(ctx, tx)
		if err != nil {
			return err
		}
		updated, err := fn(old)
		if err != nil {
			return err
		}
		if err := r.put(ctx, tx, r.keep(old, updated)); err != nil {
			return err
		}
		if err := s.writeAudit(ctx, tx, a, ""); err != nil {
			return err
		}
		stored, err = r.get(ctx, tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return stored, nil
}
