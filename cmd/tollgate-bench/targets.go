package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Workloads.
const (
	workloadGet    = "GET"         // GET of a small JSON document, with an X-API-KEY header
	workloadBearer = "GET Bearer"  // the same GET with a JWT in Authorization instead
	workloadSigned = "signed POST" // POST of a body, HMAC-signed per request
)

// goalTarget is the configuration the throughput and CPU goals are set for.
const goalTarget = "tollgate-apikey"

// Goals for goalTarget against the bare proxy (BENCHMARKS.md).
const (
	goalThroughput = 0.90 // at least this share of the bare proxy's req/s
	goalCPU        = 1.20 // at most this multiple of its CPU per request
)

// target is one server under one workload.
type target struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Workload    string        `json:"workload"`
	Baseline    string        `json:"baseline,omitempty"` // the bare proxy under the same workload
	Direct      string        `json:"direct,omitempty"`   // the backend under the same workload
	Rounds      []measurement `json:"rounds"`

	server  *process      // whose CPU is the server's; the backend's for direct targets
	node    *tollgateNode // the Tollgate node measured; nil for the baselines
	redis   *benchRedis   // the node's Redis, whose commands are counted; or nil
	url     string
	script  string // "get" or "signed"
	headers []string
	args    []string
}

// fleet is the servers of a run.
type fleet struct {
	backend, proxy *process
	tg             *tollgateNode // in-process counters
	tgRedis        *tollgateNode // counters in Redis; nil when Redis is skipped
	redis          *benchRedis   // tgRedis's Redis
}

// defineTargets lists what is measured, baselines first. Every baseline
// gets the very request its Tollgate targets get, credentials included
// (which it forwards unread): a Bearer token is an 800-byte header that any
// proxy must read, and it would be unfair to charge that to Tollgate alone.
func defineTargets(f fleet, bodySize int) []*target {
	backend, proxy, tg := f.backend, f.proxy, f.tg
	body := strconv.Itoa(bodySize)
	signedArgs := []string{"/v1/data", tg.signingKey, tg.signingSecret, body}
	bearerHeader := []string{"Authorization: Bearer " + tg.bearer}
	get := func(p *process, path string, h []string) (string, []string) { return "http://" + p.addr + path, h }
	ts := []*target{
		{Name: "direct", Description: "the backend itself, no proxy", Workload: workloadGet, server: backend},
		{Name: "bare-proxy", Description: "httputil.ReverseProxy with Tollgate's transport and buffer pool", Workload: workloadGet,
			Direct: "direct", server: proxy},
		{Name: "tollgate-open", Description: "Tollgate, public route: no authentication, metered", Workload: workloadGet,
			Baseline: "bare-proxy", Direct: "direct", node: tg},
		{Name: goalTarget, Description: "Tollgate, API key + rate limit + quota + usage metering, SQLite", Workload: workloadGet,
			Baseline: "bare-proxy", Direct: "direct", node: tg},
	}
	if f.tgRedis != nil {
		ts = append(ts, &target{Name: redisTarget,
			Description: "Tollgate, as " + goalTarget + " with the rate limit and quota in Redis (one script per request), SQLite", Workload: workloadGet,
			Baseline: "bare-proxy", Direct: "direct", node: f.tgRedis, redis: f.redis})
	}
	ts = append(ts, []*target{
		{Name: "bare-proxy-bearer", Description: "httputil.ReverseProxy, GET with the Bearer token (forwarded unread)", Workload: workloadBearer,
			server: proxy},
		{Name: "tollgate-jwt", Description: "Tollgate, OAuth 2.0 JWT Bearer + limits + metering, SQLite", Workload: workloadBearer,
			Baseline: "bare-proxy-bearer", node: tg},
		{Name: "direct-signed", Description: "the backend itself, signed POST (signature ignored)", Workload: workloadSigned,
			server: backend},
		{Name: "bare-proxy-signed", Description: "httputil.ReverseProxy, signed POST (signature forwarded unread)", Workload: workloadSigned,
			Direct: "direct-signed", server: proxy},
		{Name: "tollgate-hmac", Description: "Tollgate, HMAC-signed API key (1 KiB body, replay cache) + limits + metering", Workload: workloadSigned,
			Baseline: "bare-proxy-signed", Direct: "direct-signed", node: tg},
	}...)
	for _, t := range ts {
		if t.node != nil {
			t.server = t.node.process
		}
		path := "/v1/data"
		if t.Name == "tollgate-open" {
			path = "/open/data"
		}
		switch t.Workload {
		case workloadGet:
			t.script = "get"
			t.url, t.headers = get(t.server, path, []string{"X-API-KEY: " + apiKeyFor(t, tg)})
		case workloadBearer:
			t.script = "get"
			t.url, t.headers = get(t.server, path, bearerHeader)
		case workloadSigned:
			t.script, t.url, t.args = "signed", "http://"+t.server.addr, signedArgs
		}
	}
	return ts
}

// apiKeyFor is the API key t sends: its node's own, or, for a baseline
// (which forwards it unread), that of tg.
func apiKeyFor(t *target, tg *tollgateNode) string {
	if t.node != nil {
		return t.node.apiKey
	}
	return tg.apiKey
}

// measurement is one target measured once.
type measurement struct {
	Requests           int64   `json:"requests"`
	Failed             int64   `json:"failed"` // socket errors, timeouts and non-2xx/3xx answers
	RPS                float64 `json:"rps"`
	MeanUS             float64 `json:"latency_mean_us"`
	P50US              float64 `json:"latency_p50_us"`
	P90US              float64 `json:"latency_p90_us"`
	P99US              float64 `json:"latency_p99_us"`
	ServerCPUUSPerReq  float64 `json:"server_cpu_us_per_req"`
	BackendCPUUSPerReq float64 `json:"backend_cpu_us_per_req"`
	WrkCPUUSPerReq     float64 `json:"wrk_cpu_us_per_req"`
	// What the Redis of a target with Redis counters did over the measured
	// window (the load and the settle time after it), per request (INFO
	// commandstats, stats and cpu, read before and after):
	//   - round trips: replies Redis wrote (total_writes_processed, less the
	//     harness's own INFO), one per round trip, a pipeline's counted once;
	//   - scripts: EVALSHA and EVAL calls; a limiter decision is one;
	//   - commands: every command Redis ran, INFO excepted, those the
	//     scripts run inside Redis included (a decision's EVALSHA runs
	//     several), so more than the round trips;
	//   - CPU: Redis's own, which "server_cpu_us_per_req" leaves out.
	// Redis counts server-wide: on a Redis others use at the same time,
	// these are upper bounds. Zero (left out) for other targets.
	RedisRoundTripsPerReq float64 `json:"redis_round_trips_per_req,omitempty"`
	RedisScriptsPerReq    float64 `json:"redis_scripts_per_req,omitempty"`
	RedisCommandsPerReq   float64 `json:"redis_commands_per_req,omitempty"`
	RedisCPUUSPerReq      float64 `json:"redis_cpu_us_per_req,omitempty"`
}

// setRedis sets the Redis figures from what Redis did for m's requests.
func (m *measurement) setRedis(u redisUse) {
	n := float64(m.Requests)
	m.RedisRoundTripsPerReq = float64(u.roundTrips) / n
	m.RedisScriptsPerReq = float64(u.scripts) / n
	m.RedisCommandsPerReq = float64(u.commands) / n
	m.RedisCPUUSPerReq = float64(u.cpu.Microseconds()) / n
}

type bench struct {
	wrk      string
	scripts  map[string]string
	backend  *process
	duration time.Duration
	warmup   time.Duration
	conns    int
	threads  int
}

// settle is how long after the load the server's CPU is still counted: the
// usage recorder and the quota flusher write what the load left behind
// within their one-second intervals.
const settle = 1500 * time.Millisecond

func (b *bench) measure(t *target) (measurement, error) {
	run := wrkRun{
		bin: b.wrk, threads: b.threads, connections: b.conns, url: t.url,
		script: b.scripts[t.script], headers: t.headers, args: t.args,
	}
	if b.warmup > 0 {
		run.duration = b.warmup
		if _, _, err := run.run(); err != nil {
			return measurement{}, err
		}
	}
	run.duration = b.duration
	var rs0 redisStats
	if t.redis != nil {
		var err error
		if rs0, err = t.redis.stats(); err != nil {
			return measurement{}, err
		}
	}
	s0, err := cpuTime(t.server.pid())
	if err != nil {
		return measurement{}, err
	}
	b0, err := cpuTime(b.backend.pid())
	if err != nil {
		return measurement{}, err
	}
	r, wrkCPU, err := run.run()
	if err != nil {
		return measurement{}, err
	}
	time.Sleep(settle)
	s1, err := cpuTime(t.server.pid())
	if err != nil {
		return measurement{}, err
	}
	b1, err := cpuTime(b.backend.pid())
	if err != nil {
		return measurement{}, err
	}
	if r.Requests == 0 {
		return measurement{}, fmt.Errorf("no request completed")
	}
	if f := r.failed(); f*1000 > r.Requests { // more than 0.1%: the numbers would lie
		return measurement{}, fmt.Errorf("%d of %d requests failed (non-2xx or socket errors); see the logs", f, r.Requests)
	}
	n := float64(r.Requests)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	m := measurement{
		Requests: r.Requests, Failed: r.failed(),
		RPS:    n / (float64(r.DurationUS) / 1e6),
		MeanUS: r.LatencyUS.Mean, P50US: float64(r.LatencyUS.P50), P90US: float64(r.LatencyUS.P90), P99US: float64(r.LatencyUS.P99),
		ServerCPUUSPerReq:  us(s1 - s0),
		BackendCPUUSPerReq: us(b1 - b0),
		WrkCPUUSPerReq:     us(wrkCPU),
	}
	if t.server == b.backend {
		m.BackendCPUUSPerReq = m.ServerCPUUSPerReq
	}
	if t.redis != nil {
		if err := measureRedis(&m, t, rs0); err != nil {
			return measurement{}, err
		}
	}
	return m, nil
}

// measureRedis reads t's Redis statistics at the end of the measured window
// and sets m's Redis figures from those at its start, before. Statistics
// reset during the window leave the figures unset, with a warning.
func measureRedis(m *measurement, t *target, before redisStats) error {
	after, err := t.redis.stats()
	if err != nil {
		return err
	}
	u, err := after.since(before)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tollgate-bench: %s: no Redis figures for this round: %v\n", t.Name, err)
		return nil
	}
	m.setRedis(u)
	return nil
}

// --- results ---

type results struct {
	Started  string    `json:"started"`
	Machine  machine   `json:"machine"`
	Settings settings  `json:"settings"`
	Targets  []summary `json:"targets"`
	Goals    []goal    `json:"goals"`
	Skipped  []skipped `json:"skipped"`
}

type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Wrk    string `json:"wrk"`
	Redis  string `json:"redis,omitempty"` // the version of the Redis target's Redis
}

// summary is a target's median over the rounds, and its ratios.
type summary struct {
	target
	Median measurement `json:"median"`
	// VsBaseline is req/s against the bare proxy under the same workload.
	VsBaseline float64 `json:"throughput_vs_bare_proxy,omitempty"`
	// CPUVsBaseline is server CPU per request against the bare proxy's.
	CPUVsBaseline float64 `json:"cpu_per_req_vs_bare_proxy,omitempty"`
	// VsDirect is req/s against the backend under the same workload.
	VsDirect float64 `json:"throughput_vs_direct,omitempty"`
}

type goal struct {
	Target string  `json:"target"`
	What   string  `json:"what"`
	Want   string  `json:"want"`
	Got    float64 `json:"got"`
	Met    bool    `json:"met"`
}

type skipped struct {
	Target string `json:"target"`
	Why    string `json:"why"`
}

func summarize(targets []*target, s settings, wrkBin string) results {
	res := results{Started: time.Now().UTC().Format(time.RFC3339), Settings: s, Machine: describeMachine(wrkBin), Skipped: []skipped{}}
	// Allocated in full first: byName points into it.
	res.Targets = make([]summary, len(targets))
	byName := make(map[string]*summary, len(targets))
	for i, t := range targets {
		res.Targets[i] = summary{target: *t, Median: median(t.Rounds)}
		byName[t.Name] = &res.Targets[i]
	}
	// Ratios are paired: each round's measurement against the same round's
	// baseline, measured moments apart, then the median over the rounds.
	// On a shared machine whose speed drifts by ±15% over minutes, this is
	// far steadier than a ratio of medians.
	rps := func(m measurement) float64 { return m.RPS }
	cpu := func(m measurement) float64 { return m.ServerCPUUSPerReq }
	for i := range res.Targets {
		sm := &res.Targets[i]
		if b := byName[sm.Baseline]; b != nil {
			sm.VsBaseline = pairedRatio(sm.Rounds, b.Rounds, rps)
			sm.CPUVsBaseline = pairedRatio(sm.Rounds, b.Rounds, cpu)
		}
		if d := byName[sm.Direct]; d != nil {
			sm.VsDirect = pairedRatio(sm.Rounds, d.Rounds, rps)
		}
	}
	if g := byName[goalTarget]; g != nil && g.VsBaseline > 0 {
		res.Goals = append(res.Goals,
			goal{goalTarget, "throughput vs bare proxy", fmt.Sprintf("≥ %.2f", goalThroughput), g.VsBaseline, g.VsBaseline >= goalThroughput},
			goal{goalTarget, "CPU per request vs bare proxy", fmt.Sprintf("≤ %.2f", goalCPU), g.CPUVsBaseline, g.CPUVsBaseline <= goalCPU})
	}
	return res
}

// medianOf returns the median of v, which it sorts; 0 for none.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// pairedRatio is the median over the rounds of f(a)/f(b) in the same round.
func pairedRatio(a, b []measurement, f func(measurement) float64) float64 {
	var v []float64
	for i := range min(len(a), len(b)) {
		if d := f(b[i]); d > 0 {
			v = append(v, f(a[i])/d)
		}
	}
	return medianOf(v)
}

// median takes each field's median over the rounds independently; for the
// Redis figures, over the rounds that have them.
func median(ms []measurement) measurement {
	pick := func(f func(measurement) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		return medianOf(v)
	}
	pickSet := func(f func(measurement) float64) float64 {
		var v []float64
		for _, m := range ms {
			if x := f(m); x > 0 {
				v = append(v, x)
			}
		}
		return medianOf(v)
	}
	var req, failed int64
	for _, m := range ms {
		req += m.Requests
		failed += m.Failed
	}
	return measurement{
		Requests: req, Failed: failed,
		RPS:                pick(func(m measurement) float64 { return m.RPS }),
		MeanUS:             pick(func(m measurement) float64 { return m.MeanUS }),
		P50US:              pick(func(m measurement) float64 { return m.P50US }),
		P90US:              pick(func(m measurement) float64 { return m.P90US }),
		P99US:              pick(func(m measurement) float64 { return m.P99US }),
		ServerCPUUSPerReq:  pick(func(m measurement) float64 { return m.ServerCPUUSPerReq }),
		BackendCPUUSPerReq: pick(func(m measurement) float64 { return m.BackendCPUUSPerReq }),
		WrkCPUUSPerReq:     pick(func(m measurement) float64 { return m.WrkCPUUSPerReq }),

		RedisRoundTripsPerReq: pickSet(func(m measurement) float64 { return m.RedisRoundTripsPerReq }),
		RedisScriptsPerReq:    pickSet(func(m measurement) float64 { return m.RedisScriptsPerReq }),
		RedisCommandsPerReq:   pickSet(func(m measurement) float64 { return m.RedisCommandsPerReq }),
		RedisCPUUSPerReq:      pickSet(func(m measurement) float64 { return m.RedisCPUUSPerReq }),
	}
}

// printTable prints the medians and ratios of every target, the Redis
// figures of the targets that have them, the goals and the skipped targets.
func printTable(w io.Writer, res results) {
	fmt.Fprintf(w, "%-21s %-12s %9s %8s %8s %10s %9s %9s %9s %9s\n",
		"target", "workload", "req/s", "p50 ms", "p99 ms", "µs CPU/req", "vs proxy", "CPU ×", "vs direct", "Redis wr")
	for _, t := range res.Targets {
		m := t.Median
		fmt.Fprintf(w, "%-21s %-12s %9.0f %8.2f %8.2f %10.1f %9s %9s %9s %9s\n",
			t.Name, t.Workload, m.RPS, ms(m.P50US), ms(m.P99US), m.ServerCPUUSPerReq,
			ratio(t.VsBaseline), ratio(t.CPUVsBaseline), ratio(t.VsDirect), ratio(m.RedisRoundTripsPerReq))
	}
	for _, t := range res.Targets {
		if m := t.Median; m.RedisCommandsPerReq > 0 {
			fmt.Fprintf(w, "redis: %s, per request: %.2f writes (Redis wr: socket writes of replies; a pipeline of decisions is one), %.2f scripts (EVALSHA/EVAL: one round trip each), "+
				"%.2f commands run (the scripts' own included), %.1f µs of Redis CPU (not in µs CPU/req). "+
				"Upper bounds: Redis counts for all its clients.\n",
				t.Name, m.RedisRoundTripsPerReq, m.RedisScriptsPerReq, m.RedisCommandsPerReq, m.RedisCPUUSPerReq)
		}
	}
	for _, g := range res.Goals {
		verdict := "MET"
		if !g.Met {
			verdict = "NOT MET"
		}
		fmt.Fprintf(w, "goal: %s %s %s: %.2f — %s\n", g.Target, g.What, g.Want, g.Got, verdict)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped: %s: %s\n", s.Target, s.Why)
	}
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func describeMachine(wrkBin string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	out, _ := exec.Command(wrkBin, "-v").CombinedOutput()
	m.Wrk = oneLine(out)
	return m
}

// --- profiles ---

// profiler fetches a CPU profile of Tollgate while a target runs, and an
// allocation profile after.
type profiler struct {
	node *tollgateNode
	dir  string
	done chan error
}

func startProfile(tg *tollgateNode, dir string, d time.Duration) *profiler {
	p := &profiler{node: tg, dir: dir, done: make(chan error, 1)}
	go func() {
		secs := max(1, int(d/time.Second))
		p.done <- p.fetch("debug/pprof/profile?seconds="+strconv.Itoa(secs), "cpu.pprof")
	}()
	return p
}

func (p *profiler) finish() error {
	if err := <-p.done; err != nil {
		return err
	}
	if err := p.fetch("debug/pprof/allocs", "allocs.pprof"); err != nil {
		return err
	}
	fmt.Printf("  profiles in %s (go tool pprof -top %s)\n", p.dir, filepath.Join(p.dir, "cpu.pprof"))
	return nil
}

func (p *profiler) fetch(path, file string) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil { //nolint:gosec // profiles are not secrets
		return err
	}
	req, _ := http.NewRequest("GET", "http://"+p.node.admin+"/admin/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+benchAdminToken)
	c := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("profile %s: %d %s", path, resp.StatusCode, raw)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
