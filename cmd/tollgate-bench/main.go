// Command tollgate-bench measures Tollgate against a bare reverse proxy and
// the backend itself, in one run on one machine, with wrk as the load
// generator.
//
// It starts a fast backend, a bare httputil.ReverseProxy with the transport
// Tollgate uses, and a Tollgate node on its embedded SQLite store; drives
// each target with wrk for the same time and connections, alternating the
// targets over several rounds; reads the CPU time each server process used
// from /proc; and prints requests per second, p50/p99 latency, CPU
// microseconds per request, and every ratio against the bare proxy and the
// direct backend. The results are written as JSON too.
//
// A second Tollgate node, with its counters in Redis (-redis-url) under a
// key prefix of its own, serves the tollgate-apikey-redis target; the
// harness counts the round trips and commands its Redis serves during that
// target's measured windows (INFO commandstats and stats; upper bounds on a
// Redis others use too) and deletes the node's keys at the end. When
// Redis does not answer, that target is skipped with a note, or, under
// CI=true, the run fails.
//
//	tollgate-bench -tollgate bin/tollgate [-duration 10s] [-rounds 2] [-out bench-results.json] [-redis-url redis://127.0.0.1:6379/0]
//
// The backend and the bare proxy are this same binary, started as
// `tollgate-bench backend` and `tollgate-bench proxy`, so that each is a
// process of its own with its own CPU account.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "backend":
		err = runBackend(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "proxy":
		err = runProxy(os.Args[2:])
	default:
		err = runBench(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tollgate-bench:", err)
		os.Exit(1)
	}
}

// settings are the run's parameters, recorded in the results.
type settings struct {
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Rounds      int    `json:"rounds"`
	Connections int    `json:"connections"`
	Threads     int    `json:"threads"`
	BodyBytes   int    `json:"signed_body_bytes"`
	Only        string `json:"only,omitempty"`
	RedisURL    string `json:"redis_url,omitempty"` // of the Redis target, without its password
	RedisPrefix string `json:"redis_prefix,omitempty"`
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("tollgate-bench", flag.ExitOnError)
	tollgateBin := fs.String("tollgate", "bin/tollgate", "the tollgate binary to measure")
	duration := fs.Duration("duration", 6*time.Second, "measured time per target and round")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each measurement")
	rounds := fs.Int("rounds", 5, "rounds; each runs every target once, in turn")
	conns := fs.Int("connections", 64, "wrk connections")
	threads := fs.Int("threads", 2, "wrk threads")
	bodySize := fs.Int("body", 1024, "body size of the signed POST workload")
	out := fs.String("out", "bench-results.json", "write the results as JSON here")
	onlyFlag := fs.String("only", "", "measure only targets whose name matches this regexp (and their baselines)")
	profile := fs.String("profile", "", "save a CPU and an allocation profile of Tollgate, in round 1, into this directory")
	profileTarget := fs.String("profile-target", goalTarget, "the target -profile profiles")
	redisURL := fs.String("redis-url", redisURLDefault(), "the Redis of the "+redisTarget+" target (default: $TOLLGATE_BENCH_REDIS_URL, else "+
		defaultRedisURL+"); the target is skipped when it does not answer, unless CI=true")
	_ = fs.Parse(args)
	if *rounds < 1 || *duration < time.Second {
		return fmt.Errorf("need -rounds ≥ 1 and -duration ≥ 1s")
	}
	only := regexp.MustCompile("")
	if *onlyFlag != "" {
		re, err := regexp.Compile(*onlyFlag)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		only = re
	}
	// A signal stops the run between two measurements, so that the
	// servers are stopped and the Redis keys deleted; a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(*tollgateBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("tollgate binary: %w (build it: make build)", err)
	}
	wrk, err := findWrk()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tollgate-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	scripts, err := writeScripts(dir)
	if err != nil {
		return err
	}

	backend, err := startPrinter("backend", filepath.Join(dir, "backend.log"), self, "backend")
	if err != nil {
		return err
	}
	defer backend.stop()
	proxy, err := startPrinter("proxy", filepath.Join(dir, "proxy.log"), self, "proxy", "-upstream", "http://"+backend.addr)
	if err != nil {
		return err
	}
	defer proxy.stop()
	tg, err := startTollgate("tollgate", bin, dir, backend.addr, "")
	if err != nil {
		return err
	}
	defer tg.stop()
	f := fleet{backend: backend, proxy: proxy, tg: tg}
	var skips []skipped
	if only.MatchString(redisTarget) {
		stopRedis, skip, err := startRedisNode(&f, bin, filepath.Join(dir, "redis"), *redisURL)
		if err != nil {
			return err
		}
		defer stopRedis()
		skips = append(skips, skip...)
	}

	targets := selectTargets(defineTargets(f, *bodySize), only)
	if *profile != "" && !isTollgate(targets, *profileTarget) {
		return fmt.Errorf("-profile-target %s: not a Tollgate target of this run", *profileTarget)
	}
	b := &bench{
		wrk: wrk, scripts: scripts, backend: backend,
		duration: *duration, warmup: *warmup, conns: *conns, threads: *threads,
	}
	fmt.Printf("tollgate-bench: %d targets × %d rounds × (%s + %s warm-up), wrk -t%d -c%d, %d CPUs\n",
		len(targets), *rounds, *duration, *warmup, *threads, *conns, runtime.NumCPU())
	for round := 1; round <= *rounds; round++ {
		// Odd rounds run the targets in order, even rounds backwards, so a
		// drift of the machine's speed during the run favours none.
		order := slices.Clone(targets)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, t := range order {
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			var prof *profiler
			if *profile != "" && round == 1 && t.Name == *profileTarget {
				prof = startProfile(t.node, *profile, *warmup+*duration)
			}
			m, err := b.measure(t)
			if err != nil {
				if ctx.Err() != nil {
					return errors.New("interrupted")
				}
				return fmt.Errorf("%s, round %d: %w", t.Name, round, err)
			}
			if prof != nil {
				if err := prof.finish(); err != nil {
					return err
				}
			}
			t.Rounds = append(t.Rounds, m)
			printRound(round, t.Name, m)
		}
	}
	s := settings{
		Duration: duration.String(), Warmup: warmup.String(), Rounds: *rounds,
		Connections: *conns, Threads: *threads, BodyBytes: *bodySize, Only: *onlyFlag,
	}
	if f.redis != nil {
		s.RedisURL, s.RedisPrefix = redactURL(f.redis.url), f.redis.prefix
	}
	res := summarize(targets, s, wrk)
	res.Skipped = append(res.Skipped, skips...)
	if f.redis != nil {
		res.Machine.Redis = f.redis.version
	}
	fmt.Println()
	printTable(os.Stdout, res)
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(raw, '\n'), 0o644); err != nil { //nolint:gosec // results, not secrets
		return err
	}
	fmt.Printf("\nresults written to %s\n", *out)
	return nil
}

// startRedisNode connects to the Redis at redisURL and starts, in dir, the
// Tollgate node of the Redis target on it, adding both to f. It returns
// what stops the node and then deletes its keys. A Redis that does not
// answer skips the target (with a note, returned) unless CI=true, under
// which it is an error.
func startRedisNode(f *fleet, bin, dir, redisURL string) (stop func(), skip []skipped, err error) {
	r, err := connectRedis(redisURL)
	switch {
	case errors.Is(err, errRedisUnreachable) && os.Getenv("CI") == "true":
		return nil, nil, fmt.Errorf("%w; CI=true requires it for the %s target", err, redisTarget)
	case errors.Is(err, errRedisUnreachable):
		fmt.Printf("tollgate-bench: skipping %s: %v\n", redisTarget, err)
		return func() {}, []skipped{{redisTarget, err.Error() + " (start Redis, or point -redis-url or TOLLGATE_BENCH_REDIS_URL at one)"}}, nil
	case err != nil:
		return nil, nil, err
	}
	node, err := startTollgate(redisTarget, bin, dir, f.backend.addr, r.countersYAML())
	if err != nil {
		r.cleanUp()
		return nil, nil, err
	}
	f.tgRedis, f.redis = node, r
	return func() { node.stop(); r.cleanUp() }, nil, nil
}

// printRound prints one measurement as it is made.
func printRound(round int, name string, m measurement) {
	fmt.Printf("  round %d  %-21s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  server %6.1f µs/req",
		round, name, m.RPS, ms(m.P50US), ms(m.P99US), m.ServerCPUUSPerReq)
	if m.RedisCommandsPerReq > 0 {
		fmt.Printf("  redis %.2f round trips, %.2f commands/req", m.RedisRoundTripsPerReq, m.RedisCommandsPerReq)
	}
	fmt.Println()
}

func ms(us float64) float64 { return us / 1000 }

func selectTargets(all []*target, re *regexp.Regexp) []*target {
	keep := map[string]bool{}
	for _, t := range all {
		if re.MatchString(t.Name) {
			keep[t.Name], keep[t.Baseline], keep[t.Direct] = true, true, true
		}
	}
	var out []*target
	for _, t := range all {
		if keep[t.Name] {
			out = append(out, t)
		}
	}
	return out
}

// isTollgate reports whether the target called name is among targets and
// measures a Tollgate node.
func isTollgate(targets []*target, name string) bool {
	for _, t := range targets {
		if t.Name == name {
			return t.node != nil
		}
	}
	return false
}

// oneLine shortens a command's output to its first line.
func oneLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
