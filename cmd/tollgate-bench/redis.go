package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// redisTarget is Tollgate in the goal target's configuration, with its
// counters in Redis.
const redisTarget = "tollgate-apikey-redis"

// defaultRedisURL is where the harness looks for Redis unless
// TOLLGATE_BENCH_REDIS_URL or -redis-url says otherwise.
const defaultRedisURL = "redis://127.0.0.1:6379/0"

// redisTimeout bounds each of the harness's own Redis calls.
const redisTimeout = 5 * time.Second

// redisURLDefault is -redis-url's default: TOLLGATE_BENCH_REDIS_URL, or
// the local Redis.
func redisURLDefault() string {
	if u := os.Getenv("TOLLGATE_BENCH_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedisURL
}

// redactURL returns u without its password, for printing.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// benchRedis is the Redis the Redis target's node uses, as the harness sees
// it: to count what the node asks of it, and to delete the node's keys.
type benchRedis struct {
	url     string
	prefix  string // of every key the node writes; fresh for each run
	version string
	client  *goredis.Client
}

// errRedisUnreachable marks a Redis that does not answer, as opposed to a
// URL that is wrong.
var errRedisUnreachable = errors.New("redis not reachable")

// connectRedis connects to the Redis at rawURL and picks a fresh key prefix.
// A Redis that does not answer is an error wrapping errRedisUnreachable.
func connectRedis(rawURL string) (*benchRedis, error) {
	opt, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("-redis-url %s: %w", redactURL(rawURL), err)
	}
	opt.DialTimeout = 2 * time.Second
	// The harness reports the errors itself; go-redis would log each
	// failed dial too.
	goredis.SetLogger(&logging.VoidLogger{})
	c := goredis.NewClient(opt)
	r := &benchRedis{url: rawURL, prefix: "tgbench-" + randomHex(6) + ":", client: c}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("%w at %s: %w", errRedisUnreachable, redactURL(rawURL), err)
	}
	raw, err := c.Info(ctx, "server").Result()
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis INFO server: %w", err)
	}
	r.version = parseInfo(raw)["redis_version"]
	return r, nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// countersYAML is the counters section of the node's configuration.
func (r *benchRedis) countersYAML() string {
	return fmt.Sprintf("counters:\n  type: redis\n  redis:\n    url: %q\n    prefix: %q\n", r.url, r.prefix)
}

// stats reads the statistics the measured window is the difference of.
func (r *benchRedis) stats() (redisStats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	raw, err := r.client.Info(ctx, "commandstats", "stats", "cpu").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("redis INFO: %w", err)
	}
	return parseStats(raw)
}

// deleteKeys deletes every key under the prefix (SCAN, then DEL by
// batches) and returns how many it deleted.
func (r *benchRedis) deleteKeys() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	var batch []string
	del := func() error {
		if len(batch) == 0 {
			return nil
		}
		d, err := r.client.Del(ctx, batch...).Result()
		n += int(d)
		batch = batch[:0]
		return err
	}
	it := r.client.Scan(ctx, 0, escapeGlob(r.prefix)+"*", 1000).Iterator()
	for it.Next(ctx) {
		if batch = append(batch, it.Val()); len(batch) == 500 {
			if err := del(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return n, err
	}
	return n, del()
}

// cleanUp deletes the run's keys, saying so, and closes the client.
func (r *benchRedis) cleanUp() {
	n, err := r.deleteKeys()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tollgate-bench: deleting the Redis keys %s*: %v (they expire with their TTLs)\n", r.prefix, err)
	} else {
		fmt.Printf("redis: deleted %d keys under %s\n", n, r.prefix)
	}
	_ = r.client.Close()
}

// escapeGlob escapes the characters special to a Redis MATCH pattern.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\^`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// redisStats are the counters of INFO commandstats, stats and cpu at one
// moment. Redis keeps them server-wide, for all its clients.
type redisStats struct {
	// calls are the calls of each command ("evalsha", "client|setname"),
	// those a script makes (redis.call) included.
	calls map[string]int64
	// replies is total_writes_processed: how many times Redis wrote replies
	// to a client, which is once per round trip (a pipeline's replies, or
	// a script's, go out at once).
	replies int64
	cpu     time.Duration // used_cpu_user + used_cpu_sys, all of Redis's threads
}

// parseInfo returns the "key:value" lines of an INFO answer.
func parseInfo(raw string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(raw, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// parseStats reads an answer of INFO commandstats stats cpu: the calls of
// every command from the cmdstat_<name> lines ("cmdstat_evalsha:calls=12,
// usec=…"), the replies written and the CPU time. A missing figure is 0.
func parseStats(raw string) (redisStats, error) {
	s := redisStats{calls: map[string]int64{}}
	info := parseInfo(raw)
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		calls, err := infoField(v, "calls")
		if err != nil {
			return redisStats{}, fmt.Errorf("INFO commandstats %s: %w", k, err)
		}
		s.calls[name] = calls
	}
	if v, ok := info["total_writes_processed"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return redisStats{}, fmt.Errorf("INFO stats total_writes_processed: %w", err)
		}
		s.replies = n
	}
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		if v, ok := info[k]; ok {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return redisStats{}, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			s.cpu += time.Duration(sec * float64(time.Second))
		}
	}
	return s, nil
}

// infoField returns the integer field name of a "k=v,k=v" INFO value.
func infoField(v, name string) (int64, error) {
	for _, f := range strings.Split(v, ",") {
		if k, val, ok := strings.Cut(f, "="); ok && k == name {
			return strconv.ParseInt(val, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in %q", name, v)
}

// scriptCommands run a Lua script: a decision of the Redis counters is one.
var scriptCommands = []string{"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"}

// redisUse is what Redis did between two readings of its statistics, the
// harness's own first reading excepted.
type redisUse struct {
	roundTrips int64 // replies written
	scripts    int64 // scripts run (scriptCommands)
	commands   int64 // commands run, the scripts' own calls included; INFO excepted
	cpu        time.Duration
}

// since returns what Redis did from before to s. Statistics that went
// backwards (CONFIG RESETSTAT, a restart) are an error.
func (s redisStats) since(before redisStats) (redisUse, error) {
	for name, n := range before.calls {
		if s.calls[name] < n {
			return redisUse{}, fmt.Errorf("redis: %s calls went from %d to %d (statistics reset?)", name, n, s.calls[name])
		}
	}
	if s.replies < before.replies || s.cpu < before.cpu {
		return redisUse{}, fmt.Errorf("redis: replies or CPU time went backwards (statistics reset, or a restart?)")
	}
	// The reply to the INFO that read before went out after it.
	u := redisUse{roundTrips: max(0, s.replies-before.replies-1), cpu: s.cpu - before.cpu}
	for name, n := range s.calls {
		if name != "info" {
			u.commands += n - before.calls[name]
		}
	}
	for _, name := range scriptCommands {
		u.scripts += s.calls[name] - before.calls[name]
	}
	return u, nil
}
