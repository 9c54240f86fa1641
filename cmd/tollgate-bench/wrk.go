package main

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed lua/*.lua
var luaFS embed.FS

// findWrk returns the path of wrk, installing Debian's package when it is
// missing and the harness may (root with apt-get).
func findWrk() (string, error) {
	if p, err := exec.LookPath("wrk"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return "", fmt.Errorf("wrk not found: install it (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)")
	}
	fmt.Fprintln(os.Stderr, "wrk not found: installing Debian's package (apt-get install wrk)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "wrk"}} {
		cmd := exec.Command("apt-get", args...) //nolint:gosec // G204: fixed arguments
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return exec.LookPath("wrk")
}

// writeScripts writes each workload script, with the reporting code
// appended, into dir and returns their paths by name ("get", "signed").
func writeScripts(dir string) (map[string]string, error) {
	report, err := luaFS.ReadFile("lua/report.lua")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, name := range []string{"get", "signed"} {
		src, err := luaFS.ReadFile("lua/" + name + ".lua")
		if err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name+".lua")
		if err := os.WriteFile(p, append(append(src, '\n'), report...), 0o600); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	return paths, nil
}

// wrkResult is what report.lua prints.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"`
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	LatencyUS struct {
		Mean float64 `json:"mean"`
		P50  int64   `json:"p50"`
		P90  int64   `json:"p90"`
		P99  int64   `json:"p99"`
		Max  int64   `json:"max"`
	} `json:"latency_us"`
}

func (r wrkResult) failed() int64 {
	e := r.Errors
	return e.Connect + e.Read + e.Write + e.Status + e.Timeout
}

// wrkRun is one invocation of wrk.
type wrkRun struct {
	bin         string
	threads     int
	connections int
	duration    time.Duration
	url         string
	script      string
	headers     []string
	args        []string // after "--", to the script's init
}

// run runs wrk to the end and returns its report and the CPU time it used.
func (w wrkRun) run() (wrkResult, time.Duration, error) {
	args := []string{
		"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.connections),
		"-d", strconv.Itoa(max(1, int(w.duration.Round(time.Second)/time.Second))) + "s",
		"--timeout", "5s", "--latency", "-s", w.script,
	}
	for _, h := range w.headers {
		args = append(args, "-H", h)
	}
	// The scripts get their arguments and, last, an ID unique to this
	// invocation, which keeps per-request nonces unique across runs.
	args = append(args, w.url, "--")
	args = append(append(args, w.args...), strconv.FormatInt(time.Now().UnixNano(), 36))
	cmd := exec.Command(w.bin, args...) //nolint:gosec // G204: wrk, found on PATH, with the harness's own arguments
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return wrkResult{}, 0, fmt.Errorf("wrk: %w\n%s%s", err, out.Bytes(), errOut.Bytes())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "TOLLGATE-BENCH "); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return wrkResult{}, 0, fmt.Errorf("wrk report %q: %w", rest, err)
			}
			return r, cpu, nil
		}
	}
	return wrkResult{}, 0, fmt.Errorf("wrk printed no report:\n%s%s", out.Bytes(), errOut.Bytes())
}
