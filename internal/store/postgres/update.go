package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// rowUpdate describes one read-modify-write of a row, for update. Its Get
// reads the row and locks it until the transaction ends (SELECT … FOR
// UPDATE), or fails with store.ErrNotFound when there is none.
type rowUpdate[T any] = sqlstore.RowUpdate[T, querier]

// update runs the read-modify-write described by r in one transaction (see
// sqlstore.Update): it reads and locks the row, passes it to fn, restores the
// immutable fields, writes the result and the audit entry, and returns the
// row as stored. The row lock makes concurrent updates of one row run one
// after the other, each fn getting the row as the previous one left it, as
// SQLite's single writer does. If fn fails, nothing is written and fn's error
// is returned as it is.
func update[T any](ctx context.Context, s *Store, r rowUpdate[T], fn func(T) (T, error), a store.AuditEntry) (T, error) {
	inTx := func(body func(querier) error) error {
		return s.inTx(ctx, func(tx pgx.Tx) error { return body(tx) })
	}
	return sqlstore.Update(ctx, inTx, r, fn, func(q querier) error { return s.writeAudit(ctx, q, a, "") })
}
