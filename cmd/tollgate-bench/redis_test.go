package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testsvc"
)

// infoSample is an answer of INFO commandstats stats cpu from Redis 7.
const infoSample = "# Commandstats\r\n" +
	"cmdstat_evalsha:calls=854161,usec=9376155,usec_per_call=10.98,rejected_calls=0,failed_calls=36\r\n" +
	"cmdstat_eval:calls=37,usec=4072,usec_per_call=110.05,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_client|setname:calls=185,usec=187,usec_per_call=1.01,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=12,usec=1200,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n" +
	"\r\n# Stats\r\ntotal_commands_processed:5157090\r\ntotal_reads_processed:991260\r\ntotal_writes_processed:992297\r\n" +
	"\r\n# CPU\r\n" +
	"used_cpu_sys:12.500000\r\nused_cpu_user:30.250000\r\nused_cpu_sys_children:0.001000\r\n"

func TestParseStats(t *testing.T) {
	s, err := parseStats(infoSample)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"evalsha": 854161, "eval": 37, "client|setname": 185, "info": 12}
	if len(s.calls) != len(want) {
		t.Errorf("calls %v, want %v", s.calls, want)
	}
	for k, v := range want {
		if s.calls[k] != v {
			t.Errorf("%s: %d calls, want %d", k, s.calls[k], v)
		}
	}
	if s.cpu != 42750*time.Millisecond || s.replies != 992297 {
		t.Errorf("cpu %s, replies %d; want 42.75s, 992297", s.cpu, s.replies)
	}
	if _, err := parseStats("cmdstat_get:usec=3\r\n"); err == nil {
		t.Error("no error for a cmdstat line without calls")
	}
	if _, err := parseStats("cmdstat_get:calls=x,usec=3\r\n"); err == nil {
		t.Error("no error for a bad calls value")
	}
	if _, err := parseStats("total_writes_processed:many\r\n"); err == nil {
		t.Error("no error for a bad total_writes_processed")
	}
	if s, err := parseStats("# Commandstats\r\n"); err != nil || len(s.calls) != 0 || s.replies != 0 {
		t.Errorf("empty section: %v, %v", s, err)
	}
}

func TestRedisStatsSince(t *testing.T) {
	before := redisStats{calls: map[string]int64{"evalsha": 100, "eval": 1, "get": 5, "info": 3}, replies: 500, cpu: time.Second}
	// 1,001 scripts, each running a GET inside Redis; 7 PEXPIREs of their
	// own; and the reply to the harness's INFO that read before.
	after := redisStats{calls: map[string]int64{"evalsha": 1100, "eval": 2, "get": 1006, "info": 4, "pexpire": 7}, replies: 500 + 1001 + 7 + 1, cpu: 1200 * time.Millisecond}
	u, err := after.since(before)
	if err != nil {
		t.Fatal(err)
	}
	// INFO is the harness's own: not counted.
	if u.roundTrips != 1008 || u.scripts != 1001 || u.commands != 1001+1001+7 || u.cpu != 200*time.Millisecond {
		t.Errorf("use %+v", u)
	}
	var m measurement
	m.Requests = 1000
	m.setRedis(u)
	if math.Abs(m.RedisRoundTripsPerReq-1.008) > 1e-9 || math.Abs(m.RedisScriptsPerReq-1.001) > 1e-9 ||
		math.Abs(m.RedisCommandsPerReq-2.009) > 1e-9 || m.RedisCPUUSPerReq != 200 {
		t.Errorf("per request %+v", m)
	}
	if u, err := before.since(before); err != nil || u != (redisUse{}) {
		t.Errorf("nothing done: %+v, %v", u, err)
	}
	for name, s := range map[string]redisStats{
		"calls reset":    {calls: map[string]int64{"evalsha": 50}, replies: 600, cpu: 2 * time.Second},
		"a command gone": {calls: map[string]int64{"evalsha": 2000, "eval": 2, "info": 4}, replies: 600, cpu: 2 * time.Second},
		"replies reset":  {calls: after.calls, replies: 10, cpu: 2 * time.Second},
		"CPU time reset": {calls: after.calls, replies: 600, cpu: time.Millisecond},
	} {
		if _, err := s.since(before); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{
		"tgbench-0a1b2c:": "tgbench-0a1b2c:",
		`a*b?c[d]e\f^`:    `a\*b\?c\[d\]e\\f\^`,
	} {
		if got := escapeGlob(in); got != want {
			t.Errorf("escapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	if got := redactURL("redis://user:hunter2@127.0.0.1:6379/0"); strings.Contains(got, "hunter2") {
		t.Errorf("password printed: %s", got)
	}
}

func TestRedisURLDefault(t *testing.T) {
	t.Setenv("TOLLGATE_BENCH_REDIS_URL", "")
	if got := redisURLDefault(); got != defaultRedisURL {
		t.Errorf("default %q", got)
	}
	t.Setenv("TOLLGATE_BENCH_REDIS_URL", "redis://10.0.0.1:6380/2")
	if got := redisURLDefault(); got != "redis://10.0.0.1:6380/2" {
		t.Errorf("from the environment: %q", got)
	}
}

// The Redis target is the goal target's workload on its own node, with that
// node's API key; without Redis it is not defined at all.
func TestDefineTargetsRedis(t *testing.T) {
	tg := &tollgateNode{process: &process{name: "tollgate", addr: "127.0.0.1:3"}, apiKey: "key-memory", bearer: "jwt"}
	rtg := &tollgateNode{process: &process{name: redisTarget, addr: "127.0.0.1:4"}, apiKey: "key-redis"}
	f := fleet{backend: &process{addr: "127.0.0.1:1"}, proxy: &process{addr: "127.0.0.1:2"}, tg: tg}
	byName := func(ts []*target) map[string]*target {
		m := map[string]*target{}
		for _, t := range ts {
			m[t.Name] = t
		}
		return m
	}
	if _, ok := byName(defineTargets(f, 1024))[redisTarget]; ok {
		t.Error("a Redis target without Redis")
	}
	f.tgRedis, f.redis = rtg, &benchRedis{prefix: "tgbench-x:"}
	ts := byName(defineTargets(f, 1024))
	r, g := ts[redisTarget], ts[goalTarget]
	if r == nil || g == nil {
		t.Fatal("targets missing")
	}
	if r.Baseline != "bare-proxy" || r.Direct != "direct" || r.Workload != g.Workload || r.script != g.script {
		t.Errorf("redis target %+v, goal target %+v", r, g)
	}
	if r.url != "http://127.0.0.1:4/v1/data" || r.server != rtg.process || r.redis != f.redis {
		t.Errorf("redis target served by %s at %s", r.server.name, r.url)
	}
	if len(r.headers) != 1 || r.headers[0] != "X-API-KEY: key-redis" || g.headers[0] != "X-API-KEY: key-memory" {
		t.Errorf("headers %v / %v", r.headers, g.headers)
	}
	if ts["bare-proxy"].headers[0] != "X-API-KEY: key-memory" || ts["bare-proxy"].node != nil {
		t.Errorf("baseline %+v", ts["bare-proxy"])
	}
	if !isTollgate(defineTargets(f, 1024), redisTarget) || isTollgate(defineTargets(f, 1024), "bare-proxy") {
		t.Error("isTollgate")
	}
}

// The Redis row is reported with its ratios and its Redis figures, and not
// judged.
func TestSummarizeAndPrintRedisRow(t *testing.T) {
	targets := []*target{
		{Name: "direct", Rounds: []measurement{{RPS: 40000, ServerCPUUSPerReq: 20}, {RPS: 40000, ServerCPUUSPerReq: 20}}},
		{Name: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 10000, ServerCPUUSPerReq: 100}, {RPS: 10000, ServerCPUUSPerReq: 100}}},
		{Name: goalTarget, Baseline: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 9500, ServerCPUUSPerReq: 110}, {RPS: 9500, ServerCPUUSPerReq: 110}}},
		{Name: redisTarget, Workload: workloadGet, Baseline: "bare-proxy", Direct: "direct", Rounds: []measurement{
			{RPS: 8000, ServerCPUUSPerReq: 120, RedisRoundTripsPerReq: 1.02, RedisScriptsPerReq: 1, RedisCommandsPerReq: 6.1, RedisCPUUSPerReq: 9},
			{RPS: 8000, ServerCPUUSPerReq: 120}, // statistics reset in this round: no Redis figures
		}},
	}
	res := summarize(targets, settings{}, "/nonexistent/wrk")
	r := res.Targets[3]
	if math.Abs(r.VsBaseline-0.8) > 1e-9 || math.Abs(r.CPUVsBaseline-1.2) > 1e-9 {
		t.Errorf("ratios %+v", r)
	}
	if r.Median.RedisRoundTripsPerReq != 1.02 || r.Median.RedisScriptsPerReq != 1 || r.Median.RedisCommandsPerReq != 6.1 || r.Median.RedisCPUUSPerReq != 9 {
		t.Errorf("redis median %+v", r.Median)
	}
	if res.Targets[2].Median.RedisCommandsPerReq != 0 {
		t.Errorf("redis figures on %s", goalTarget)
	}
	for _, g := range res.Goals {
		if g.Target != goalTarget {
			t.Errorf("goal judged for %s", g.Target)
		}
	}
	if len(res.Goals) != 2 {
		t.Errorf("goals %+v", res.Goals)
	}
	res.Skipped = append(res.Skipped, skipped{"tollgate-x", "why"})
	var buf bytes.Buffer
	printTable(&buf, res)
	out := buf.String()
	var row string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, redisTarget+" ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 10 || f[6] != "0.80" || f[7] != "1.20" || f[9] != "1.02" {
		t.Errorf("row %q", row)
	}
	if !strings.Contains(out, "redis: "+redisTarget+", per request: 1.02 writes (Redis wr: socket writes of replies; a pipeline of decisions is one), 1.00 scripts (EVALSHA/EVAL: one round trip each), 6.10 commands run") ||
		!strings.Contains(out, "Upper bounds") || !strings.Contains(out, "skipped: tollgate-x: why") {
		t.Errorf("table:\n%s", out)
	}
}

// Against the real Redis: the harness reads its statistics and deletes the
// keys under its prefix, and only those.
func TestBenchRedis(t *testing.T) {
	r, err := connectRedis(testsvc.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.client.Close() }()
	if !strings.HasPrefix(r.prefix, "tgbench-") || r.version == "" {
		t.Errorf("prefix %q, version %q", r.prefix, r.version)
	}
	ctx := context.Background()
	other := testsvc.Name("tgbench-other-") + ":k"
	if err := r.client.Set(ctx, other, "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	defer r.client.Del(ctx, other)
	before, err := r.stats()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1234 {
		if err := r.client.Set(ctx, fmt.Sprintf("%srate:{org_%d}", r.prefix, i), "1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A script is one round trip, and each of its calls one command.
	for range 100 {
		if err := r.client.Eval(ctx, "redis.call('TIME'); redis.call('TIME'); return 1", nil).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := r.stats()
	if err != nil {
		t.Fatal(err)
	}
	u, err := after.since(before)
	if err != nil {
		t.Fatal(err)
	}
	// Others may use the Redis too: at least, not exactly.
	if u.roundTrips < 1334 || u.scripts < 100 || u.commands < 1234+3*100 || after.calls["set"]-before.calls["set"] < 1234 {
		t.Errorf("%+v, %d SETs counted for 1234 SETs and 100 scripts of 2 calls", u, after.calls["set"]-before.calls["set"])
	}
	n, err := r.deleteKeys()
	if err != nil || n != 1234 {
		t.Errorf("deleted %d keys (%v), want 1234", n, err)
	}
	if left, _ := r.client.Keys(ctx, escapeGlob(r.prefix)+"*").Result(); len(left) != 0 {
		t.Errorf("left %d keys", len(left))
	}
	if v, _ := r.client.Get(ctx, other).Result(); v != "1" {
		t.Error("a key of someone else was deleted")
	}
}

func TestConnectRedisUnreachable(t *testing.T) {
	_, err := connectRedis("redis://127.0.0.1:1/0")
	if !errors.Is(err, errRedisUnreachable) {
		t.Errorf("error %v, want errRedisUnreachable", err)
	}
	if _, err := connectRedis("http://127.0.0.1/"); err == nil || errors.Is(err, errRedisUnreachable) {
		t.Errorf("bad URL: %v", err)
	}
}
