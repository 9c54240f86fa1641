// Package sqlstore holds what the two SQL backends of store.Store, the
// sqlite and postgres packages, have in common: the code that does not
// depend on the database they talk to, written once so that both store and
// read back exactly the same values and apply exactly the same rules.
//
// It holds:
//
//   - the column encoders and decoders (columns.go): times as unix
//     microseconds (NULL when zero), string lists and audit details as JSON,
//     byte slices as BLOB/BYTEA. The decoders are sql.Scanners, which both
//     database/sql (SQLite) and pgx (PostgreSQL) scan into;
//   - the rows (rows.go): each table's column list, the scanner that reads
//     those columns, the values an INSERT writes into them and the fields
//     an update may not change; and the loop that scans a result set;
//   - the request-log chunk codec (chunk.go) and the usage arithmetic
//     (usage.go): a batch split into chunks and summed into rollup rows,
//     the filtering and paging of the entries chunks hold, and the cutting
//     of chunks by a purge;
//   - the rules of the webhook outbox (webhooks.go: required fields, claim
//     leases, what an attempt makes of its delivery) and of subscriptions
//     (subscriptions.go: a wallet's first purchase, extension), and the
//     other checks and defaults of arguments (checks.go), with the same
//     messages in both backends;
//   - the read-modify-write of the Update methods (update.go), over either
//     backend's transactions.
//
// What differs by SQL dialect or driver stays in each backend: the SQL text
// (placeholders, locking clauses, upserts), transactions and retries, and
// the translation of driver errors. Errors of this package carry no backend
// prefix; the backends add theirs ("sqlite: ", "postgres: ").
//
// It is internal to the store directory: only the backends import it.
package sqlstore
