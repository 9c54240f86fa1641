package redis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/testsvc"
)

// TestCluster runs the Store on a Redis Cluster: the one
// TOLLGATE_TEST_REDIS_CLUSTER_URL names (in the form of
// goredis.ParseClusterURL: redis://host:port?addr=host2:port&addr=...), or
// else three masters it starts itself from this machine's redis-server. It
// checks what a single server cannot: Take's keys in one slot by their hash
// tag, bans published from scripts on any master reaching every node, and
// the bans of every master loaded at start.
func TestCluster(t *testing.T) {
	url := os.Getenv("TOLLGATE_TEST_REDIS_CLUSTER_URL")
	if url == "" {
		url = startCluster(t)
	}
	prefix := testsvc.Name("tgtest:") + ":"
	var offset atomic.Int64
	open := func() *Store {
		s, err := Open(ctx, url, WithCluster(true), WithPrefix(prefix), WithLogger(quiet),
			WithClockOffset(func() time.Duration { return time.Duration(offset.Load()) }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	n1, n2 := open(), open()
	t.Cleanup(func() { // after the stores are closed
		admin, err := goredis.ParseClusterURL(url)
		if err != nil {
			t.Error(err)
			return
		}
		c := goredis.NewClusterClient(admin)
		defer c.Close()
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			iter := m.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
			for iter.Next(ctx) {
				k := iter.Val()
				if ttl, err := m.PTTL(ctx, k).Result(); err == nil && ttl == -1 {
					t.Errorf("key %q has no TTL", k)
				}
				if err := m.Del(ctx, k).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		})
		if err != nil {
			t.Error(err)
		}
	})

	// Take across nodes, over many organizations (so many slots): exact.
	a := counters.Allowance{Rate: 1.0 / 60, Burst: 8, Quota: 5, PeriodEnd: time.Now().Add(time.Hour)}
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for org := range 20 {
		for _, s := range []*Store{n1, n2} {
			for range 5 {
				wg.Go(func() {
					d, err := s.Take(ctx, fmt.Sprint("rate:{org_", org, "}"), fmt.Sprint("quota:{org_", org, "}:2026-12"), 1, a)
					if err != nil {
						t.Error(err)
						return
					}
					if d.Outcome == counters.Admitted {
						admitted.Add(1)
					}
				})
			}
		}
	}
	wg.Wait()
	if n := admitted.Load(); n != 20*5 {
		t.Fatalf("admitted %d of 200 requests from 2 nodes over 20 organizations with a quota of 5 each", n)
	}
	// Keys without a common hash tag are refused, not decided wrongly.
	if _, err := n1.Take(ctx, "rate:org_a", "quota:org_b", 1, a); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("Take of keys in two slots: err = %v, want CROSSSLOT", err)
	}

	// Bans from scripts on every master reach the other node.
	for i := range 50 {
		if err := n1.Ban(ctx, fmt.Sprint("ip:", i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "50 bans on the other node", func() bool { return n2.BanLen() == 50 })
	// A node started afterwards loads them from every master.
	n3 := open()
	if n := n3.BanLen(); n != 50 {
		t.Fatalf("a new node loaded %d bans, want 50", n)
	}
	offset.Add(int64(time.Hour + time.Second))
	for _, s := range []*Store{n1, n2, n3} {
		if d, _ := s.Banned(ctx, "ip:7"); d != 0 {
			t.Fatalf("a ban outlived its hour: %v", d)
		}
	}

	// The Bus.
	got := make(chan string, 10)
	defer n3.Subscribe(func(m string) { got <- m })()
	if err := n1.Publish(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-got:
			if m == "hello" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a message from another node not received")
		}
	}
}

// startCluster starts a Redis Cluster of three masters on free loopback
// ports, for the test's duration, and returns its URL. Without
// redis-server and redis-cli the test is skipped, or fails under CI=true.
func startCluster(t *testing.T) string {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server and redis-cli are needed to start a Redis Cluster; CI=true requires them")
		}
		t.Skip("redis-server or redis-cli not installed: skipping the Redis Cluster test (or set TOLLGATE_TEST_REDIS_CLUSTER_URL)")
	}
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		dir := t.TempDir()
		cmd := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "no")
		log, err := os.Create(filepath.Join(dir, "redis.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = log.Close() })
		addrs = append(addrs, addr)
	}
	for _, a := range addrs {
		waitFor(t, "redis-server at "+a, func() bool {
			c := goredis.NewClient(&goredis.Options{Addr: a})
			defer c.Close()
			return c.Ping(ctx).Err() == nil
		})
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		waitFor(t, "cluster_state:ok at "+a, func() bool {
			c := goredis.NewClient(&goredis.Options{Addr: a})
			defer c.Close()
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}
