package redis

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/counterstest"
	"github.com/tollgate/tollgate/internal/testsvc"
)

var ctx = context.Background()

var quiet = slog.New(slog.DiscardHandler)

// backend is the Redis state one test shares between its stores: a fresh
// prefix, one clock offset, and an admin client. Its cleanup checks that
// every key written has a TTL, then deletes them all.
type backend struct {
	url    string
	prefix string
	offset atomic.Int64 // nanoseconds
	admin  *goredis.Client
}

func newClient(t testing.TB, url string) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return goredis.NewClient(opt)
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	url := testsvc.RedisURL(t)
	b := &backend{url: url, prefix: testsvc.Name("tgtest:") + ":", admin: newClient(t, url)}
	t.Cleanup(func() {
		for _, k := range b.keys(t) {
			if ttl, err := b.admin.PTTL(ctx, k).Result(); err == nil && ttl == -1 {
				t.Errorf("key %q has no TTL", k)
			}
		}
		b.deleteAll(t)
		_ = b.admin.Close()
	})
	return b
}

// keys returns every key under the backend's prefix.
func (b *backend) keys(t testing.TB) []string {
	t.Helper()
	var keys []string
	iter := b.admin.Scan(ctx, 0, globEscape(b.prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

func (b *backend) deleteAll(t testing.TB) {
	t.Helper()
	keys := b.keys(t)
	for len(keys) > 0 {
		n := min(len(keys), 500)
		if err := b.admin.Del(ctx, keys[:n]...).Err(); err != nil {
			t.Error(err)
		}
		keys = keys[n:]
	}
}

// store returns a Store on the backend with a client of its own, as a node.
func (b *backend) store(t testing.TB, opts ...Option) *Store {
	t.Helper()
	c := newClient(t, b.url)
	opts = append([]Option{
		WithPrefix(b.prefix),
		WithLogger(quiet),
		WithClockOffset(func() time.Duration { return time.Duration(b.offset.Load()) }),
	}, opts...)
	s, err := New(c, opts...)
	if err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		_ = c.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	var cur *backend
	counterstest.RunTests(t, counterstest.Harness{
		New: func(t *testing.T) counters.Store {
			cur = newBackend(t)
			return cur.store(t)
		},
		Advance: func(_ *testing.T, d time.Duration) { cur.offset.Add(int64(d)) },
		Now: func(t *testing.T) time.Time {
			now, err := cur.admin.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			return now.Add(time.Duration(cur.offset.Load()))
		},
		NewPeer: func(t *testing.T, _ counters.Store) counters.Store { return cur.store(t) },
	})
}

func TestBusConformance(t *testing.T) {
	counterstest.RunBusTests(t, func(t *testing.T) counters.Bus { return newBackend(t).store(t) })
}

// TestOneCommandPerOperation checks that every operation that decides is
// one command on a warm script cache: one round trip.
func TestOneCommandPerOperation(t *testing.T) {
	s := newBackend(t).store(t)
	end := time.Now().Add(time.Hour)
	a := counters.Allowance{Rate: 1000, Burst: 1000, Quota: 1 << 40, PeriodEnd: end}
	l := counters.Limit{Max: 1000, Window: time.Minute}
	backoff := counters.Backoff{Free: 5, Base: time.Second, Max: time.Minute, Window: time.Minute}
	ops := []struct {
		name string
		op   func(i int) error
	}{
		{"Take", func(i int) error {
			_, err := s.Take(ctx, "rate:{org_1}", "quota:{org_1}:2026-12", int64(i%3), a)
			return err
		}},
		{"Take rate only", func(int) error {
			_, err := s.Take(ctx, "rate:{org_2}", "", 1, counters.Allowance{Rate: 1, Burst: 1})
			return err
		}},
		{"RecordAttempt", func(int) error { _, err := s.RecordAttempt(ctx, "k", l); return err }},
		{"CheckAttempt", func(int) error { _, err := s.CheckAttempt(ctx, "k", l); return err }},
		{"ResetAttempts", func(int) error { return s.ResetAttempts(ctx, "k") }},
		{"Fail", func(i int) error { _, err := s.Fail(ctx, fmt.Sprint("f", i), backoff); return err }},
		{"Forgive", func(i int) error { return s.Forgive(ctx, fmt.Sprint("f", i)) }},
		{"MarkSeen", func(i int) error {
			_, err := s.MarkSeen(ctx, "key_1", fmt.Sprint("sig", i), time.Minute, 100)
			return err
		}},
		{"QuotaUsed", func(int) error { _, err := s.QuotaUsed(ctx, "quota:{org_1}:2026-12"); return err }},
		{"SetQuotaUsed", func(i int) error { return s.SetQuotaUsed(ctx, "quota:{org_3}", int64(i), end) }},
		{"Ban", func(int) error { return s.Ban(ctx, "ip", time.Minute) }},
		{"Publish", func(int) error { return s.Publish(ctx, "x") }},
	}
	for _, o := range ops {
		if err := o.op(0); err != nil { // loads the script
			t.Fatalf("%s: %v", o.name, err)
		}
		for i := range 20 {
			before := s.Commands()
			if err := o.op(i); err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			if n := s.Commands() - before; n != 1 {
				t.Fatalf("%s sent %d commands, want 1", o.name, n)
			}
		}
	}
	before := s.Commands()
	for range 10 {
		if _, err := s.Banned(ctx, "ip"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Commands() - before; n != 0 {
		t.Fatalf("Banned sent %d commands, want none", n)
	}
	// A pipeline counts each of its commands (once its connection is
	// made: a new connection's handshake is counted too).
	for i := range 3 {
		before = s.Commands()
		pipe := s.client.Pipeline()
		pipe.Time(ctx)
		pipe.Time(ctx)
		pipe.Time(ctx)
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n := s.Commands() - before; i > 0 && n != 3 {
			t.Fatalf("a pipeline of 3 counted %d", n)
		}
	}
}

// TestTakeAfterScriptFlush checks the fallback to EVAL when Redis has lost
// the script (restart, SCRIPT FLUSH): two commands, then one again.
func TestTakeAfterScriptFlush(t *testing.T) {
	b := newBackend(t)
	s := b.store(t)
	a := counters.Allowance{Rate: 10, Burst: 10}
	if _, err := s.Take(ctx, "r", "", 1, a); err != nil {
		t.Fatal(err)
	}
	// SCRIPT FLUSH would disturb other users of the server: a fresh script,
	// never loaded, shows the same path.
	saved := takeScript
	defer func() { takeScript = saved }()
	takeScript = goredis.NewScript(takeLua + "\n-- " + b.prefix)
	before := s.Commands()
	d, err := s.Take(ctx, "r", "", 1, a)
	if err != nil || d.Outcome != counters.Admitted || d.RateRemaining != 8 {
		t.Fatalf("Take with an unloaded script = %+v, %v", d, err)
	}
	if n := s.Commands() - before; n != 2 {
		t.Fatalf("Take with an unloaded script sent %d commands, want 2 (EVALSHA, EVAL)", n)
	}
	before = s.Commands()
	if _, err := s.Take(ctx, "r", "", 1, a); err != nil {
		t.Fatal(err)
	}
	if n := s.Commands() - before; n != 1 {
		t.Fatalf("Take once loaded sent %d commands, want 1", n)
	}
}

// TestConcurrentTakesAcrossNodes runs Takes from three Stores with a client
// each, as three nodes: the quota and the rate admit exactly their due.
func TestConcurrentTakesAcrossNodes(t *testing.T) {
	b := newBackend(t)
	nodes := []*Store{b.store(t), b.store(t), b.store(t)}
	const q, perNode = 100, 150
	run := func(a counters.Allowance, rateKey, quotaKey string) map[counters.LimitOutcome]int {
		var (
			mu     sync.Mutex
			counts = map[counters.LimitOutcome]int{}
			wg     sync.WaitGroup
		)
		start := make(chan struct{})
		for _, s := range nodes {
			for range perNode {
				wg.Go(func() {
					<-start
					d, err := s.Take(ctx, rateKey, quotaKey, 1, a)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					counts[d.Outcome]++
					mu.Unlock()
				})
			}
		}
		close(start)
		wg.Wait()
		return counts
	}
	end := time.Now().Add(time.Hour)
	got := run(counters.Allowance{Quota: q, PeriodEnd: end}, "", "quota:{org}")
	if got[counters.Admitted] != q || got[counters.QuotaExhausted] != 3*perNode-q {
		t.Fatalf("%d Takes from 3 nodes against a quota of %d: %v", 3*perNode, q, got)
	}
	for _, s := range nodes {
		if n, err := s.QuotaUsed(ctx, "quota:{org}"); err != nil || n != q {
			t.Fatalf("QuotaUsed = %d, %v; want %d", n, err, q)
		}
	}
	got = run(counters.Allowance{Rate: 1.0 / 60, Burst: 40, Quota: 25, PeriodEnd: end}, "rate:{org2}", "quota:{org2}")
	if got[counters.Admitted] != 25 || got[counters.QuotaExhausted] != 3*perNode-25 {
		t.Fatalf("rate and quota from 3 nodes: %v", got)
	}
	got = run(counters.Allowance{Rate: 1.0 / 60, Burst: 40}, "rate:{org3}", "")
	if got[counters.Admitted] != 40 || got[counters.RateLimited] != 3*perNode-40 {
		t.Fatalf("rate from 3 nodes: %v", got)
	}
}

// TestKeysArePrefixedAndExpire writes every kind of state and checks the
// keys: the prefix and a namespace before the caller's key, hash tags left
// intact, a TTL on each, no longer than the state it holds.
func TestKeysArePrefixedAndExpire(t *testing.T) {
	b := newBackend(t)
	s := b.store(t)
	now := time.Now()
	a := counters.Allowance{Rate: 1, Burst: 10, Quota: 100, PeriodEnd: now.Add(time.Hour)}
	if _, err := s.Take(ctx, "rate:{org_1}", "quota:{org_1}:2026-12", 3, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordAttempt(ctx, "login:ip", counters.Limit{Max: 5, Window: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkSeen(ctx, "key_1", "sig", 5*time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuotaUsed(ctx, "quota:{org_2}:2026-12", 7, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Ban(ctx, "ip:1", 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	// Nothing at all for a free request, a zero count, a period that is over.
	if _, err := s.Take(ctx, "x", "quota:none", 0, counters.Allowance{Quota: 1, PeriodEnd: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Take(ctx, "x", "quota:over", 1, counters.Allowance{Quota: 1, PeriodEnd: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuotaUsed(ctx, "quota:zero", 0, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := b.prefix
	want := map[string]time.Duration{ // key: its state's lifetime
		p + "att:login:ip":                2 * time.Minute, // one attempt: one interval
		p + "ban:ip:1":                    30 * time.Minute,
		p + "quota:quota:{org_1}:2026-12": time.Hour,
		p + "quota:quota:{org_2}:2026-12": 2 * time.Hour,
		p + "rate:rate:{org_1}":           time.Second,
		p + "replay:key_1":                5 * time.Minute,
	}
	keys := b.keys(t)
	if len(keys) != len(want) {
		t.Fatalf("keys written: %q", keys)
	}
	for _, k := range keys {
		life, ok := want[k]
		if !ok {
			t.Fatalf("unexpected key %q among %q", k, keys)
		}
		ttl, err := b.admin.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > life+time.Second || ttl < life-10*time.Second {
			t.Fatalf("key %q: PTTL %v, want about %v", k, ttl, life)
		}
	}
	if n, err := b.admin.Exists(ctx, "rate:{org_1}", "quota:{org_1}:2026-12", "ban:ip:1").Result(); err != nil || n != 0 {
		t.Fatalf("keys written without the prefix: %d, %v", n, err)
	}
}

// TestTakeExtremeAllowances takes the extremes of what Allowance accepts
// through the scripts' doubles: no error, no negative field, a TTL on
// every key (checked by the cleanup).
func TestTakeExtremeAllowances(t *testing.T) {
	s := newBackend(t).store(t)
	for _, a := range []counters.Allowance{
		{Rate: 1e-300, Burst: math.MaxInt},
		{Rate: 1e-300, Burst: 1},
		{Rate: 1e12, Burst: math.MaxInt},
		{Rate: math.MaxFloat64, Burst: 1},
		{Quota: math.MaxInt64, PeriodEnd: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Quota: 1, PeriodEnd: time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)},
		{Rate: 1e-300, Burst: math.MaxInt, Quota: math.MaxInt64, PeriodEnd: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		key := fmt.Sprint(a)
		for i := range 3 {
			for _, units := range []int64{0, 1, math.MaxInt64} {
				d, err := s.Take(ctx, key, key, units, a)
				if err != nil || d.Outcome == 0 || d.RetryAfter < 0 || d.RateReset < 0 || d.RateRemaining < 0 || d.QuotaRemaining < 0 || d.QuotaUsed < 0 {
					t.Fatalf("%+v, request %d of %d units = %+v, %v", a, i+1, units, d, err)
				}
			}
		}
	}
	if err := s.SetQuotaUsed(ctx, "q", math.MaxInt64, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.QuotaUsed(ctx, "q"); err != nil || n != maxExact {
		t.Fatalf("QuotaUsed after SetQuotaUsed(MaxInt64) = %d, %v; want %d", n, err, int64(maxExact))
	}
	for _, ttl := range []time.Duration{1, math.MaxInt64} {
		if _, err := s.MarkSeen(ctx, "key_1", fmt.Sprint("sig", ttl), ttl, math.MaxInt); err != nil {
			t.Fatalf("MarkSeen ttl %v: %v", ttl, err)
		}
		if err := s.Ban(ctx, fmt.Sprint("ip", ttl), ttl); err != nil {
			t.Fatalf("Ban ttl %v: %v", ttl, err)
		}
	}
	if d, _ := s.Banned(ctx, fmt.Sprint("ip", time.Duration(math.MaxInt64))); d < 99*365*24*time.Hour {
		t.Fatalf("Banned after the longest ban = %v", d)
	}
}

func TestPrefixWithBracesRejected(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	for _, p := range []string{"a{b:", "}", "{x}:"} {
		if s, err := New(c, WithPrefix(p)); err == nil {
			s.Close()
			t.Fatalf("New with prefix %q: no error", p)
		}
	}
}

func TestGlobEscape(t *testing.T) {
	if got, want := globEscape(`a*b?c[d]e\f:`), `a\*b\?c\[d\]e\\f:`; got != want {
		t.Fatalf("globEscape = %q, want %q", got, want)
	}
}

func TestOpen(t *testing.T) {
	b := newBackend(t)
	s, err := Open(ctx, b.url, WithPrefix(b.prefix), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Prefix() != b.prefix {
		t.Fatalf("Prefix() = %q", s.Prefix())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping after Close of a Store that owns its client: no error")
	}
	if err := s.Publish(ctx, "x"); err == nil {
		t.Fatal("Publish after Close: no error")
	}

	for _, c := range []struct {
		url     string
		cluster bool
	}{
		{"redis://user:s3cret@127.0.0.1:notaport/0", false},
		{"http://user:s3cret@127.0.0.1:6379", false},
		{"redis://user:s3cret@127.0.0.1:notaport", true},
		{"http://user:s3cret@127.0.0.1:6379", true},
	} {
		_, err := Open(ctx, c.url, WithCluster(c.cluster), WithLogger(quiet))
		if err == nil {
			t.Fatalf("Open(%q, cluster %v): no error", c.url, c.cluster)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Open(%q): the error shows the password: %v", c.url, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := Open(ctx, "redis://127.0.0.1:1/0?dialer_retries=1&max_retries=-1", WithLogger(quiet)); err == nil {
		t.Fatal("Open of a closed port: no error")
	}
}

// TestBusAcrossNodes publishes through each of two nodes: every subscriber
// of both receives everything.
func TestBusAcrossNodes(t *testing.T) {
	b := newBackend(t)
	n1, n2 := b.store(t), b.store(t)
	var mu sync.Mutex
	got := map[string][]string{}
	for name, n := range map[string]*Store{"n1": n1, "n2": n2} {
		defer n.Subscribe(func(msg string) {
			mu.Lock()
			got[name] = append(got[name], msg)
			mu.Unlock()
		})()
	}
	if err := n1.Publish(ctx, "from n1"); err != nil {
		t.Fatal(err)
	}
	if err := n2.Publish(ctx, "from n2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both messages on both nodes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["n1"]) == 2 && len(got["n2"]) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"n1", "n2"} {
		if !slices.Equal(got[name], []string{"from n1", "from n2"}) {
			t.Fatalf("%s received %q", name, got[name])
		}
	}
}

// TestResubscribes kills the subscription's connection: the Store
// reconnects, its subscribers receive Resync, and bans and messages flow
// again, including a ban set while it was away.
func TestResubscribes(t *testing.T) {
	b := newBackend(t)
	name := testsvc.Name("tgtest")
	opt, err := goredis.ParseURL(b.url)
	if err != nil {
		t.Fatal(err)
	}
	opt.ClientName = name
	c := goredis.NewClient(opt)
	defer c.Close()
	s, err := New(c, WithPrefix(b.prefix), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := b.store(t)

	var mu sync.Mutex
	var msgs []string
	defer s.Subscribe(func(msg string) {
		mu.Lock()
		msgs = append(msgs, msg)
		mu.Unlock()
	})()
	received := func(want string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(msgs, want)
		}
	}

	// Find the subscription's connection by its client name and kill it.
	list, err := b.admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && !strings.Contains(line, " sub=0 ") {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					id = v
				}
			}
		}
	}
	if id == "" {
		t.Fatalf("no subscription connection named %s in:\n%s", name, list)
	}
	if err := b.admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
		t.Fatal(err)
	}
	// A ban set about now, through another node, is seen either way: by
	// its message or by the reload.
	if err := other.Ban(ctx, "while-away", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Resync after the reconnection", received(counters.Resync))
	waitFor(t, "a ban set about the reconnection", func() bool {
		d, _ := s.Banned(ctx, "while-away")
		return d > 0
	})
	if err := other.Publish(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a message after the reconnection", received("after"))
	if err := other.Ban(ctx, "after", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a ban after the reconnection", func() bool {
		d, _ := s.Banned(ctx, "after")
		return d > 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkTake decides requests against a rate and a quota on the real
// Redis, through one client: DistinctOrgs spreads them over 10,000
// organizations, HotKey sends them all to one; from GOMAXPROCS goroutines,
// and from 16 times as many (/c16), as a node serving many requests at once
// would. Every decision is one command (cmds/op).
func BenchmarkTake(b *testing.B) {
	be := newBackend(b)
	s := be.store(b)
	a := counters.Allowance{Rate: 1e6, Burst: 1000, Quota: 1 << 50, PeriodEnd: time.Now().Add(time.Hour)}
	const orgs = 10_000
	rateKeys, quotaKeys := make([]string, orgs), make([]string, orgs)
	for i := range orgs {
		rateKeys[i], quotaKeys[i] = fmt.Sprint("rate:{org-", i, "}"), fmt.Sprint("quota:{org-", i, "}:2026-01")
	}
	for _, c := range []struct {
		name     string
		orgs     int
		parallel int
	}{{"DistinctOrgs", orgs, 1}, {"HotKey", 1, 1}, {"DistinctOrgs/c16", orgs, 16}, {"HotKey/c16", 1, 16}} {
		b.Run(c.name, func(b *testing.B) {
			var goroutines atomic.Int64
			before := s.Commands()
			b.SetParallelism(c.parallel)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(goroutines.Add(1)) * 7919
				for pb.Next() {
					i = (i + 1) % c.orgs
					if _, err := s.Take(ctx, rateKeys[i], quotaKeys[i], 1, a); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(s.Commands()-before)/float64(b.N), "cmds/op")
		})
	}
}

// pipelineCounter counts the pipelines a client sends and the scripts run
// (EVALSHA and EVAL), alone or in pipelines; connection handshakes aside.
type pipelineCounter struct{ pipelines, scripts atomic.Int64 }

func isScript(c goredis.Cmder) bool { return c.Name() == "evalsha" || c.Name() == "eval" }

func (*pipelineCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (p *pipelineCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if isScript(cmd) {
			p.scripts.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (p *pipelineCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if isScript(c) {
				n++
			}
		}
		if n > 0 {
			p.pipelines.Add(1)
			p.scripts.Add(int64(n))
		}
		return next(ctx, cmds)
	}
}

// Concurrent Takes on one node share pipelines (fewer writes than
// decisions) and stay exact; each is still one command.
func TestConcurrentTakesArePipelined(t *testing.T) {
	b := newBackend(t)
	c := newClient(t, b.url)
	defer c.Close()
	var pc pipelineCounter
	c.AddHook(&pc)
	s, err := New(c, WithPrefix(b.prefix), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Take(ctx, "", "quota:{warm}", 1, counters.Allowance{Quota: 1, PeriodEnd: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err) // the script loaded (another test may have flushed it)
	}
	warm := pc.scripts.Load()
	const q, n = 300, 1000
	a := counters.Allowance{Quota: q, PeriodEnd: time.Now().Add(time.Hour)}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			d, err := s.Take(ctx, "", "quota:{org}", 1, a)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Outcome == counters.Admitted {
				admitted.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if admitted.Load() != q {
		t.Fatalf("%d admitted of %d concurrent Takes against a quota of %d", admitted.Load(), n, q)
	}
	if got := pc.scripts.Load() - warm; got != n {
		t.Errorf("%d scripts run for %d Takes, want one each", got, n)
	}
	t.Logf("%d concurrent Takes went out in %d pipelines", n, pc.pipelines.Load())
}
