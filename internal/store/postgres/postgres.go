// Package postgres implements store.Store on PostgreSQL (15 or later), using
// the pgx driver and its connection pool (github.com/jackc/pgx/v5/pgxpool). It
// is the store of cluster mode: every node points at the same database.
//
// Open applies the schema migrations embedded from migrations/ (goose, one
// transaction per migration). They are the PostgreSQL twins of the sqlite
// package's, file for file: the same versions and names, the same tables,
// columns, keys and indexes. Several nodes may start at once: the migrations
// run under a session-level advisory lock on the schema, so one node migrates
// and the others wait and find nothing left to do. WithSchema puts the tables
// in a schema of their own, created if missing, by setting every connection's
// search_path.
//
// Values are stored as in the sqlite package (both encode and decode them
// with sqlstore), so that both backends read back exactly the same: times as
// BIGINT unix microseconds (NULL when zero), string lists as JSONB arrays,
// audit details as a JSONB object, hashes and sealed secrets as BYTEA with
// UNIQUE indexes where they identify. The IDs and names that lists are
// ordered and paged by are COLLATE "C", so that they sort bytewise, as SQLite
// sorts them, whatever the database's collation.
//
// SQLite runs one writer at a time; PostgreSQL runs writers concurrently, so
// every transaction that reads before it writes says what it relies on:
//
//   - read-modify-write updates (the Update methods, refresh-token rotation,
//     webhook attempts) lock their row with SELECT … FOR UPDATE;
//   - what only has to stay in place until the commit (an endpoint that a
//     delivery is queued for, the delivery a redelivery repeats) is locked
//     with FOR KEY SHARE, which keeps it from being deleted;
//   - what has no row to lock yet (a usage batch ID, a wallet's first
//     purchase) is serialized with a transaction-level advisory lock on its
//     key;
//   - claims of webhook deliveries lock the deliveries they take with
//     FOR UPDATE SKIP LOCKED, so that concurrent claims take different ones;
//   - counters (rollups, quota counts, consecutive failures) change in a
//     single INSERT … ON CONFLICT or UPDATE, and statements that lock many
//     rows lock them in key order.
//
// Transactions run at READ COMMITTED. Deadlocks and serialization failures
// (SQLSTATE 40P01, 40001), which the lock order above makes rare, are retried
// a bounded number of times: the transactions have no effect outside the
// database, and update funcs may run more than once.
//
// All SQL lives in this package, next to the methods of the table it serves
// (orgs.go, users.go, apps.go, apikeys.go, plans.go, signingkeys.go,
// refreshtokens.go, revokedtokens.go, audit.go, usage.go, quota.go,
// subscriptions.go, webhooks.go and webhook_deliveries.go), except the
// tables' column lists. Those, and what does not depend on the database (the
// column encoders and scanners, the request-log chunks, the usage
// arithmetic, the rules of webhooks and subscriptions), are shared with the
// sqlite package, in internal/store/internal/sqlstore. Every value is a query
// parameter; the only names put into SQL text are the schema name of
// WithSchema, quoted as an identifier.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Advisory lock classes: the first key of the two-key advisory locks this
// package takes, so that they do not collide with other users' locks on the
// database. The second key is a hashtext of what is locked.
const (
	lockMigrate  int32 = 0x74676d01 // the schema being migrated (session lock)
	lockBatch    int32 = 0x74676d02 // a usage batch ID (transaction lock)
	lockPurchase int32 = 0x74676d03 // a wallet buying (transaction lock)
)

// maxIdentifierLen is the longest identifier PostgreSQL keeps whole
// (NAMEDATALEN - 1 bytes); it truncates longer ones.
const maxIdentifierLen = 63

// txAttempts bounds how many times a transaction (or a single statement)
// that failed with a deadlock or a serialization failure is run.
const txAttempts = 8

// Store is a store.Store on a PostgreSQL database. It is safe for concurrent
// use by many goroutines, and several Stores (in one or several processes)
// may use the same database and schema at once.
type Store struct {
	pool   *pgxpool.Pool
	clock  clock.Clock
	schema string
}

// Option configures Open.
type Option func(*Store)

// WithClock sets the clock the store uses for the values it fills in itself,
// such as an audit entry's Time when the caller left it zero. The default is
// clock.System{}; a nil c keeps the default.
func WithClock(c clock.Clock) Option {
	return func(s *Store) {
		if c != nil {
			s.clock = c
		}
	}
}

// WithSchema keeps the store's tables in the schema name: every connection
// sets its search_path to it, and Open creates it if it does not exist. The
// name is an identifier of any characters (quoted as needed), of at most 63
// bytes. The default, "", uses the search_path the URL or the server gives.
func WithSchema(name string) Option {
	return func(s *Store) { s.schema = name }
}

// Open connects to the PostgreSQL database at url (postgres://user:password@
// host:5432/db?sslmode=verify-full; the pool settings pgxpool reads, such as
// pool_max_conns, go in the query), checks that it answers, and brings its
// schema up to date. An empty url is refused, rather than left to pgx's
// defaults (the PG* environment variables, then a local server).
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("postgres: empty database URL")
	}
	s := &Store{clock: clock.System{}}
	for _, opt := range opts {
		opt(s)
	}
	if len(s.schema) > maxIdentifierLen || strings.ContainsRune(s.schema, 0) {
		return nil, fmt.Errorf("postgres: schema name %q is not a PostgreSQL identifier (at most %d bytes, no NUL)", s.schema, maxIdentifierLen)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if s.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{s.schema}.Sanitize()
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, s.pool, s.schema); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	return s, nil
}

// migrate creates the schema if one is given and applies the embedded
// migrations, through database/sql on the pool. Several nodes may start at
// once: it holds an advisory lock on the schema while it migrates, on a
// connection of its own (outside the pool, which may have a single
// connection, and which goose needs), so that one node migrates while the
// others wait, then find nothing left to do. The lock is per schema: stores
// in different schemas of one database migrate independently. (goose's own
// Postgres session locker polls every few seconds, and checks for pending
// migrations, creating its version table, before it locks.)
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) (err error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		// Closing the session releases its lock in any case.
		err = errors.Join(err, conn.Close(context.WithoutCancel(ctx)))
	}()
	key := schema
	if key == "" {
		if err := conn.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&key); err != nil {
			return fmt.Errorf("current schema: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, lockMigrate, key); err != nil {
		return fmt.Errorf("lock schema %q for migrations: %w", key, err)
	}
	if schema != "" {
		// Looked up first: CREATE SCHEMA IF NOT EXISTS needs the CREATE
		// privilege on the database even when the schema exists, which a
		// user given a schema made for it may not have.
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema %q: %w", schema, err)
		}
		if !exists {
			if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %q: %w", schema, err)
			}
		}
	}

	db := stdlib.OpenDBFromPool(pool)
	defer func() { _ = db.Close() }() // leaves the pool open
	p, err := newMigrationProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, lockMigrate, key); err != nil {
		return fmt.Errorf("unlock schema %q after migrations: %w", key, err)
	}
	return nil
}

// newMigrationProvider returns the goose provider of the embedded
// migrations.
func newMigrationProvider(db *sql.DB) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for the connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common, so that the same
// helpers serve plain statements and statements inside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a READ COMMITTED transaction and commits it if fn returns
// nil; fn's error is returned unchanged. A transaction that fails with a
// deadlock or a serialization failure is run again, up to txAttempts times,
// so fn must have no effect outside the transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error { return s.tryTx(ctx, fn) })
}

// tryTx runs fn in one transaction.
func (s *Store) tryTx(ctx context.Context, fn func(tx pgx.Tx) error) (err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if err != nil {
			// Rolled back even when ctx is done, so that the connection
			// goes back to the pool clean.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// exec runs a single statement on the pool (its own transaction), retried
// like a transaction, and returns the number of rows it affected.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, query, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// retry runs fn until it succeeds, fails with an error that is not
// retryable, or has run txAttempts times, waiting a little, at random,
// between runs.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == txAttempts || !retryable(err) {
			return err
		}
		wait := time.Duration(attempt) * time.Millisecond
		wait += rand.N(wait) //nolint:gosec // G404: jitter, not a secret
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// retryable reports whether err is a deadlock or a serialization failure,
// after which the transaction may succeed if it is run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == sqlstateSerializationFailure || pe.Code == sqlstateDeadlockDetected)
}

// SQLSTATE codes the store handles.
const (
	sqlstateUniqueViolation      = "23505"
	sqlstateForeignKeyViolation  = "23503"
	sqlstateSerializationFailure = "40001"
	sqlstateDeadlockDetected     = "40P01"
)

// queryAll runs a query and scans every row with scan. The result is never
// nil.
func queryAll[T any](ctx context.Context, q querier, scan func(sqlstore.RowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.ScanAll(rows, scan)
}

// execAffected runs a statement and returns the number of rows it affected.
func execAffected(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	tag, err := q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// wrapErr turns driver errors into the store's sentinels where one applies,
// adding what (e.g. `api key "key_..."`) as context, as the sqlite package
// does: pgx.ErrNoRows becomes store.ErrNotFound, unique and primary-key
// violations store.ErrAlreadyExists, and a foreign-key violation (the
// referenced organization or user does not exist) store.ErrNotFound. Other
// errors are wrapped as they are.
func wrapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", what, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case sqlstateUniqueViolation:
			return fmt.Errorf("postgres: %s: %w (%w)", what, store.ErrAlreadyExists, err)
		case sqlstateForeignKeyViolation:
			return fmt.Errorf("postgres: %s: referenced object: %w (%w)", what, store.ErrNotFound, err)
		}
		if unavailableState(pe.Code) {
			return fmt.Errorf("postgres: %s: %w (%w)", what, store.ErrUnavailable, err)
		}
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if unreachable(err) {
		return fmt.Errorf("postgres: %s: %w (%w)", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// unreachable reports whether err is a failure to reach the server or to
// keep talking to it, rather than an answer from it.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, puddle.ErrClosedPool):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "failed to receive message") ||
		strings.Contains(msg, "failed to write")
}

// unavailableState reports whether a server's SQLSTATE means it cannot
// serve now: class 08 (connection exception), 57P01–57P03 (shutting down,
// cannot connect now).
func unavailableState(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
}

// orNow returns t, or the store clock's current time if t is zero. Methods
// that stamp a time given by the caller (revoke, retire, use) use it so that
// a zero time cannot silently mean "not revoked".
func (s *Store) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.clock.Now()
	}
	return t
}

// quote quotes an ID for an error message.
func quote(s string) string { return strconv.Quote(s) }

var _ store.Store = (*Store)(nil)

// where builds the WHERE clause of a query from the conditions a filter
// asks for, numbering their parameters.
type where struct {
	conds []string
	args  []any
}

// add adds the condition cond, whose placeholders are written "?", one for
// each of args in order.
func (w *where) add(cond string, args ...any) {
	var b strings.Builder
	for _, arg := range args {
		before, after, _ := strings.Cut(cond, "?")
		b.WriteString(before)
		b.WriteString(w.param(arg))
		cond = after
	}
	b.WriteString(cond)
	w.conds = append(w.conds, b.String())
}

// param adds an argument that is not part of a condition (a limit) and
// returns its placeholder.
func (w *where) param(arg any) string {
	w.args = append(w.args, arg)
	return "$" + strconv.Itoa(len(w.args))
}

// String returns " WHERE " and the conditions joined with AND, or "" when
// there are none.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
