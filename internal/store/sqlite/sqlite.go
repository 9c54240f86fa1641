// Package sqlite implements store.Store on an SQLite database file, using the
// pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode, so that readers never wait for a writer and
// several processes (the server and the tollgate command) can share one file.
// A Store holds two connection pools on the file:
//
//   - a writer with a single connection whose transactions start with
//     BEGIN IMMEDIATE: writes from this process queue in the pool, writes
//     from other processes wait for the file lock up to the busy timeout
//     (10 s), and a transaction that has read a row can never lose a race to
//     upgrade to a write lock;
//   - a reader pool of query_only connections for everything that only reads.
//
// Open applies the schema migrations embedded from migrations/ (goose, one
// transaction per migration). Times are stored as INTEGER unix microseconds
// (NULL when zero), string lists as JSON arrays, audit details as a JSON
// object, hashes as BLOBs with UNIQUE indexes.
//
// All SQL lives in this package, next to the methods of the table it serves
// (orgs.go, users.go, apps.go, apikeys.go, plans.go, signingkeys.go,
// refreshtokens.go, revokedtokens.go, audit.go, usage.go, quota.go,
// subscriptions.go, webhooks.go and webhook_deliveries.go), except the
// tables' column lists. Those, and what does not depend on the database (the
// column encoders and scanners, the request-log chunks, the usage
// arithmetic, the rules of webhooks and subscriptions), are shared with the
// postgres package, in internal/store/internal/sqlstore.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/internal/sqlstore"
)

// busyTimeoutMillis is how long a connection waits for another connection
// (in this or another process) to release the write lock.
const busyTimeoutMillis = 10000

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a store.Store on an SQLite file. It is safe for concurrent use by
// many goroutines, and several Stores (in one or several processes) may use
// the same file at once.
type Store struct {
	writer *sql.DB // one connection, BEGIN IMMEDIATE
	reader *sql.DB // query_only pool
	clock  clock.Clock
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

// Open opens (creating it if needed, mode 0600) the SQLite database at path
// and brings its schema up to date. path must name a file in an existing
// directory; in-memory databases and URIs are refused. Open creates no
// directory.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	s := &Store{clock: clock.System{}}
	for _, opt := range opts {
		opt(s)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}

	base := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" +
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMillis) +
		"&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)"

	var err error
	s.writer, err = openDB(ctx, base+"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate", 1)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, s.writer); err != nil {
		_ = s.writer.Close()
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	s.reader, err = openDB(ctx, base+"&_pragma=query_only(1)", max(4, runtime.NumCPU()))
	if err != nil {
		_ = s.writer.Close()
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	return s, nil
}

// checkPath refuses what SQLite would take for something other than a plain
// file: the in-memory database, the temporary database ("") and URIs.
func checkPath(path string) error {
	switch {
	case path == "":
		return errors.New("sqlite: empty database path")
	case path == ":memory:", strings.HasPrefix(path, "file:"):
		return fmt.Errorf("sqlite: database path %q is not a file path", path)
	}
	return nil
}

// createFile creates the database file with mode 0600 if it does not exist,
// so that SQLite does not create it with the umask's broader default. It
// fails if the directory does not exist.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("sqlite: create database file: %w", err)
	}
	return f.Close()
}

func openDB(ctx context.Context, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := pingRetry(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// pingRetry opens a first connection, which applies the DSN's pragmas. On a
// fresh file another process may be switching the file to WAL at the same
// moment; SQLite then reports SQLITE_BUSY at once rather than through the
// busy handler (to avoid a deadlock), so pingRetry tries again for up to the
// busy timeout.
func pingRetry(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeoutMillis * time.Millisecond)
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLITE_BUSY or one of its extended codes.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// migrate applies the embedded migrations. Two processes opening a fresh (or
// outdated) file at the same moment may both decide to apply a migration; the
// second one's transaction then fails (the first one's changes are already
// there) and is rolled back, so migrate tries again, from where the others
// got to. Each failed attempt means another process applied a migration,
// so one attempt per migration, and one more, always suffice.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	attempts := len(files) + 1
	for i := 1; ; i++ {
		p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
			goose.WithDisableGlobalRegistry(true),
			goose.WithLogger(goose.NopLogger()),
		)
		if err != nil {
			return err
		}
		_, err = p.Up(ctx)
		if err == nil || i == attempts || ctx.Err() != nil {
			return err
		}
	}
}

// Ping checks that both pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := s.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping reader: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// querier is what *sql.DB and *sql.Tx have in common, so that the same read
// helpers serve plain reads (on the reader pool) and reads inside a write
// transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it if fn
// returns nil. fn's error is returned unchanged.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// queryAll runs a query and scans every row with scan. The result is never
// nil.
func queryAll[T any](ctx context.Context, q querier, scan func(sqlstore.RowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.ScanAll(rows, scan)
}

// execAffected runs a statement and returns the number of rows it affected.
func execAffected(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// wrapErr turns driver errors into the store's sentinels where one applies,
// adding what (e.g. `api key "key_..."`) as context. sql.ErrNoRows becomes
// store.ErrNotFound, unique and primary-key violations store.ErrAlreadyExists,
// and a foreign-key violation (the referenced organization or user does not
// exist) store.ErrNotFound. Other errors are wrapped as they are.
func wrapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w (%w)", what, store.ErrAlreadyExists, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("sqlite: %s: referenced object: %w (%w)", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
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
