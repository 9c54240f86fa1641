package sqlite

import (
	"context"
	"database/sql"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// rowUpdate describes one read-modify-write of a row, for update.
type rowUpdate[T any] = sqlstore.RowUpdate[T, querier]

// update runs the read-modify-write described by r in one write transaction
// (see sqlstore.Update): it reads the row, passes it to fn, restores the
// immutable fields, writes the result and the audit entry, and returns the
// row as stored. If fn fails, nothing is written and fn's error is returned
// as it is.
func update[T any](ctx context.Context, s *Store, r rowUpdate[T], fn func(T) (T, error), a store.AuditEntry) (T, error) {
	inTx := func(body func(querier) error) error {
		return s.inTx(ctx, func(tx *sql.Tx) error { return body(tx) })
	}
	return sqlstore.Update(ctx, inTx, r, fn, func(q querier) error { return s.writeAudit(ctx, q, a, "") })
}
