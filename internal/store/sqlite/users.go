package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

const (
	userSelect  = `SELECT ` + sqlstore.UserColumns + ` FROM users`
	userInsert  = `INSERT INTO users (` + sqlstore.UserColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	userUpdate  = `UPDATE users SET password_hash = ?, role = ?, status = ?, updated_at = ?, last_login_at = ? WHERE id = ?`
	userByID    = userSelect + ` WHERE id = ?`
	userByEmail = userSelect + ` WHERE email = ?`
	// ListUsers joins the conditions of the filter's non-empty fields.
	userOfOrg    = `org_id = ?`
	userOfStatus = `status = ?`
	userOrder    = ` ORDER BY created_at, id`
	userLogin    = `UPDATE users SET last_login_at = ? WHERE id = ?`
)

func getUser(ctx context.Context, q querier, query, arg string) (store.User, error) {
	u, err := sqlstore.ScanUser(q.QueryRowContext(ctx, query, arg))
	return u, wrapErr(err, "user "+quote(arg))
}

func insertUser(ctx context.Context, q querier, u store.User) error {
	_, err := q.ExecContext(ctx, userInsert, sqlstore.UserValues(u)...)
	return wrapErr(err, "user "+quote(u.ID))
}

// CreateUser creates a user. The email is stored lower-cased.
func (s *Store) CreateUser(ctx context.Context, u store.User, a store.AuditEntry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, a, u.ID)
	})
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getUser(ctx, s.reader, userByID, id)
}

// GetUserByEmail returns the user with the given email, in any case.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	return getUser(ctx, s.reader, userByEmail, sqlstore.NormalizeEmail(email))
}

// ListUsers lists the users matching f, oldest first.
func (s *Store) ListUsers(ctx context.Context, f store.UserFilter) ([]store.User, error) {
	var where []string
	var args []any
	if f.OrgID != "" {
		where = append(where, userOfOrg)
		args = append(args, f.OrgID)
	}
	if f.Status != "" {
		where = append(where, userOfStatus)
		args = append(args, string(f.Status))
	}
	query := userSelect
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := queryAll(ctx, s.reader, sqlstore.ScanUser, query+userOrder, args...)
	return out, wrapErr(err, "list users")
}

// UpdateUser updates a user; ID, OrgID, Email and CreatedAt cannot change.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(store.User) (store.User, error), a store.AuditEntry) (store.User, error) {
	return update(ctx, s, rowUpdate[store.User]{
		Get: func(ctx context.Context, q querier) (store.User, error) {
			return getUser(ctx, q, userByID, id)
		},
		Keep: sqlstore.KeepUser,
		Put: func(ctx context.Context, q querier, u store.User) error {
			_, err := q.ExecContext(ctx, userUpdate, u.PasswordHash, string(u.Role), string(u.Status),
				sqlstore.Micros(u.UpdatedAt), sqlstore.Micros(u.LastLoginAt), u.ID)
			return wrapErr(err, "user "+quote(u.ID))
		},
	}, fn, a)
}

// RecordLogin sets the user's LastLoginAt to at.
func (s *Store) RecordLogin(ctx context.Context, userID string, at time.Time) error {
	n, err := execAffected(ctx, s.writer, userLogin, sqlstore.Micros(at), userID)
	if err == nil && n == 0 {
		err = sql.ErrNoRows
	}
	return wrapErr(err, "user "+quote(userID))
}
