package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	userSelect     = `SELECT ` + sqlstore.UserColumns + ` FROM users`
	userInsert     = `INSERT INTO users (` + sqlstore.UserColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	userUpdate     = `UPDATE users SET password_hash = $1, role = $2, status = $3, updated_at = $4, last_login_at = $5 WHERE id = $6`
	userByID       = userSelect + ` WHERE id = $1`
	userByIDForUpd = userByID + ` FOR UPDATE`
	userByEmail    = userSelect + ` WHERE email = $1`
	// ListUsers joins the conditions of the filter's non-empty fields.
	userOfOrg    = `org_id = ?`
	userOfStatus = `status = ?`
	userOrder    = ` ORDER BY created_at, id`
	userLogin    = `UPDATE users SET last_login_at = $1 WHERE id = $2`
)

func getUser(ctx context.Context, q querier, query, arg string) (store.User, error) {
	u, err := sqlstore.ScanUser(q.QueryRow(ctx, query, arg))
	return u, wrapErr(err, "user "+quote(arg))
}

func insertUser(ctx context.Context, q querier, u store.User) error {
	_, err := q.Exec(ctx, userInsert, sqlstore.UserValues(u)...)
	return wrapErr(err, "user "+quote(u.ID))
}

// CreateUser creates a user. The email is stored lower-cased.
func (s *Store) CreateUser(ctx context.Context, u store.User, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, a, u.ID)
	})
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getUser(ctx, s.pool, userByID, id)
}

// GetUserByEmail returns the user with the given email, in any case.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	return getUser(ctx, s.pool, userByEmail, sqlstore.NormalizeEmail(email))
}

// ListUsers lists the users matching f, oldest first.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter) ([]store.User, error) {
	var w where
	if f.OrgID != "" {
		w.add(userOfOrg, f.OrgID)
	}
	if f.Status != "" {
		w.add(userOfStatus, string(f.Status))
	}
	out, err := queryAll(ctx, s.pool, sqlstore.ScanUser, userSelect+w.String()+userOrder, w.args...)
	return out, wrapErr(err, "list users")
}

// UpdateUser updates a user; ID, OrgID, Email and CreatedAt cannot change.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(store.User) (store.User, error), a store.AuditEntry) (store.User, error) {
	return update(ctx, s, rowUpdate[store.User]{
		Get: func(ctx context.Context, q querier) (store.User, error) {
			return getUser(ctx, q, userByIDForUpd, id)
		},
		Keep: sqlstore.KeepUser,
		Put: func(ctx context.Context, q querier, u store.User) error {
			_, err := q.Exec(ctx, userUpdate, u.PasswordHash, string(u.Role), string(u.Status),
				sqlstore.Micros(u.UpdatedAt), sqlstore.Micros(u.LastLoginAt), u.ID)
			return wrapErr(err, "user "+quote(u.ID))
		},
	}, fn, a)
}

// RecordLogin sets the user's LastLoginAt to at.
func (s *Store) RecordLogin(ctx context.Context, userID string, at time.Time) error {
	n, err := s.exec(ctx, userLogin, sqlstore.Micros(at), userID)
	if err == nil && n == 0 {
		err = pgx.ErrNoRows
	}
	return wrapErr(err, "user "+quote(userID))
}
