package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"testing"
	"time"
)

func TestCPUTimeOfThisProcess(t *testing.T) {
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ { // burn CPU
		_ = math.Sqrt(float64(x))
	}
	after, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before || after-before < 30*time.Millisecond {
		t.Errorf("cpu time %s → %s after 100ms of work", before, after)
	}
	if _, err := cpuTime(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func TestMedian(t *testing.T) {
	ms := []measurement{{Requests: 10, RPS: 300, P99US: 5}, {Requests: 20, RPS: 100, P99US: 9}, {Requests: 30, RPS: 200, P99US: 7}}
	m := median(ms)
	if m.RPS != 200 || m.P99US != 7 || m.Requests != 60 {
		t.Errorf("odd: %+v", m)
	}
	if m := median(ms[:2]); m.RPS != 200 || m.P99US != 7 {
		t.Errorf("even: %+v", m)
	}
}

func TestSummarizeRatiosAndGoals(t *testing.T) {
	targets := []*target{
		{Name: "direct", Rounds: []measurement{{RPS: 40000, ServerCPUUSPerReq: 20}}},
		{Name: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 10000, ServerCPUUSPerReq: 100}}},
		{Name: goalTarget, Baseline: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 9500, ServerCPUUSPerReq: 125}}},
	}
	res := summarize(targets, settings{}, "/nonexistent/wrk")
	g := res.Targets[2]
	if math.Abs(g.VsBaseline-0.95) > 1e-9 || math.Abs(g.CPUVsBaseline-1.25) > 1e-9 || math.Abs(g.VsDirect-0.2375) > 1e-9 {
		t.Errorf("ratios %+v", g)
	}
	if len(res.Goals) != 2 || !res.Goals[0].Met || res.Goals[1].Met {
		t.Errorf("goals %+v", res.Goals)
	}
}

// Ratios pair each round with the same round of the baseline: a machine
// twice as fast in round 2 does not move them.
func TestRatiosArePaired(t *testing.T) {
	targets := []*target{
		{Name: "bare-proxy", Rounds: []measurement{{RPS: 10000, ServerCPUUSPerReq: 100}, {RPS: 20000, ServerCPUUSPerReq: 50}, {RPS: 20000, ServerCPUUSPerReq: 50}}},
		{Name: goalTarget, Baseline: "bare-proxy", Rounds: []measurement{{RPS: 9000, ServerCPUUSPerReq: 110}, {RPS: 18000, ServerCPUUSPerReq: 55}, {RPS: 9000, ServerCPUUSPerReq: 110}}},
	}
	g := summarize(targets, settings{}, "/nonexistent/wrk").Targets[1]
	if math.Abs(g.VsBaseline-0.9) > 1e-9 || math.Abs(g.CPUVsBaseline-1.1) > 1e-9 {
		t.Errorf("paired ratios %.3f %.3f, want 0.900 1.100", g.VsBaseline, g.CPUVsBaseline)
	}
}

func TestSelectTargetsKeepsBaselines(t *testing.T) {
	all := []*target{{Name: "direct"}, {Name: "bare-proxy", Direct: "direct"},
		{Name: "tollgate-jwt", Baseline: "bare-proxy", Direct: "direct"}, {Name: "tollgate-hmac"}}
	var names []string
	for _, tg := range selectTargets(all, regexp.MustCompile("jwt")) {
		names = append(names, tg.Name)
	}
	if len(names) != 3 || names[2] != "tollgate-jwt" {
		t.Errorf("selected %v", names)
	}
}

// TestSummarizeGoalsAmongManyTargets: with the goal target behind several
// others (as in a full run), the goals are still judged. They were once lost
// when a pointer into the growing summary slice went stale.
func TestSummarizeGoalsAmongManyTargets(t *testing.T) {
	targets := []*target{
		{Name: "direct", Rounds: []measurement{{RPS: 40000, ServerCPUUSPerReq: 20}}},
		{Name: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 10000, ServerCPUUSPerReq: 100}}},
		{Name: "tollgate-open", Baseline: "bare-proxy", Rounds: []measurement{{RPS: 9900, ServerCPUUSPerReq: 101}}},
		{Name: goalTarget, Baseline: "bare-proxy", Direct: "direct", Rounds: []measurement{{RPS: 9500, ServerCPUUSPerReq: 110}}},
	}
	for i := range 6 {
		targets = append(targets, &target{Name: fmt.Sprintf("other-%d", i), Baseline: "bare-proxy", Rounds: []measurement{{RPS: 1, ServerCPUUSPerReq: 1}}})
	}
	res := summarize(targets, settings{}, "/nonexistent/wrk")
	if len(res.Goals) != 2 || !res.Goals[0].Met || !res.Goals[1].Met || math.Abs(res.Goals[1].Got-1.1) > 1e-9 {
		t.Errorf("goals %+v", res.Goals)
	}
}
