// Package testsvc finds the real services that tests of the cluster backends
// run against: PostgreSQL and Redis. A test asks for one; when the service
// does not answer, the test is skipped with a message saying how to provide
// it, except under CI=true, where a missing service fails the test: CI must
// never pass by skipping what it is meant to test.
//
// The addresses come from TOLLGATE_TEST_POSTGRES_URL and
// TOLLGATE_TEST_REDIS_URL, defaulting to the local services
// (postgres://postgres@127.0.0.1:5432/test, redis://127.0.0.1:6379/0).
// Tests must isolate themselves (a schema, a key prefix of their own) and
// clean up: the services are shared.
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

// Defaults of the service addresses.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// PostgresURL returns the URL of the test PostgreSQL server, or skips (fails
// under CI=true) when it does not accept connections.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return find(t, "PostgreSQL", "TOLLGATE_TEST_POSTGRES_URL", DefaultPostgresURL, "5432")
}

// RedisURL returns the URL of the test Redis server, or skips (fails under
// CI=true) when it does not accept connections.
func RedisURL(t testing.TB) string {
	t.Helper()
	return find(t, "Redis", "TOLLGATE_TEST_REDIS_URL", DefaultRedisURL, "6379")
}

// Name returns a fresh name for a test's schema or key prefix: prefix
// followed by 12 random hex digits, lower case, valid as an SQL identifier.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func find(t testing.TB, service, env, def, defPort string) string {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		raw = def
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s=%q: %v", env, raw, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), defPort)
	}
	conn, err := net.DialTimeout("tcp", host, 2*time.Second) //nolint:gosec // G704: the test service the developer named
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not reachable at %s (%v); CI=true requires it", service, host, err)
		}
		t.Skipf("%s is not reachable at %s (%v): start it or set %s to run this test", service, host, err, env)
	}
	_ = conn.Close()
	return raw
}

// PostgresSchema returns the test PostgreSQL's URL and a fresh schema name
// (see PostgresURL), and drops the schema, whatever it holds, when the test
// ends. The schema itself is created by whoever opens the store in it.
func PostgresSchema(t testing.TB) (url, schema string) {
	t.Helper()
	url = PostgresURL(t)
	schema = Name("tg_test_")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return url, schema
}

// RedisPrefix returns the test Redis's URL and a fresh key prefix (see
// RedisURL), and deletes every key under the prefix when the test ends.
func RedisPrefix(t testing.TB) (url, prefix string) {
	t.Helper()
	url = RedisURL(t)
	prefix = Name("tgtest") + ":"
	t.Cleanup(func() {
		opt, err := goredis.ParseURL(url)
		if err != nil {
			t.Errorf("delete keys %s*: %v", prefix, err)
			return
		}
		rdb := goredis.NewClient(opt)
		defer func() { _ = rdb.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator() // the prefix has no glob characters
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("delete keys %s*: %v", prefix, err)
		}
	})
	return url, prefix
}
