package sqlstore

import "context"

// RowUpdate describes one read-modify-write of a row of type T, for Update,
// through Q: what the backend's transactions have in common with its pools.
type RowUpdate[T, Q any] struct {
	// Get reads the row (store.ErrNotFound when there is none). A backend
	// whose writers run concurrently also locks it until the transaction
	// ends.
	Get func(ctx context.Context, q Q) (T, error)
	// Keep copies the fields an update may not change from old into
	// updated.
	Keep func(old, updated T) T
	// Put writes the updated row.
	Put func(ctx context.Context, q Q, v T) error
}

// Update runs the read-modify-write described by r in one transaction,
// which inTx begins, runs its function in, and commits unless the function
// fails: it reads the row, passes it to fn, restores the immutable fields,
// writes the result and the audit entry (audit), and returns the row as
// stored. If fn fails, nothing is written and fn's error is returned as it
// is.
func Update[T, Q any](ctx context.Context, inTx func(func(q Q) error) error, r RowUpdate[T, Q],
	fn func(T) (T, error), audit func(q Q) error,
) (T, error) {
	var stored T
	err := inTx(func(q Q) error {
		old, err := r.Get(ctx, q)
		if err != nil {
			return err
		}
		updated, err := fn(old)
		if err != nil {
			return err
		}
		if err := r.Put(ctx, q, r.Keep(old, updated)); err != nil {
			return err
		}
		if err := audit(q); err != nil {
			return err
		}
		stored, err = r.Get(ctx, q)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return stored, nil
}
