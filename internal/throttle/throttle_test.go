package throttle

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
)

var (
	ctx   = context.Background()
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("198.51.100.7")
)

// policy is the default auth.login.
var policy = FromConfig(config.Default().Auth.Login)

func newGuard(t *testing.T) (*Guard, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return New(memory.New(clk), "test", policy), clk
}

func TestFromConfig(t *testing.T) {
	l := config.Login{MaxFailuresPerIP: 20, MaxFailuresPerIPAccount: 5, Window: time.Hour, BackoffBase: time.Second, BackoffMax: time.Minute}
	p := FromConfig(l)
	want := Policy{
		PerAddress: counters.Backoff{Free: 20, Base: time.Second, Max: time.Minute, Window: time.Hour},
		PerAccount: counters.Backoff{Free: 5, Base: time.Second, Max: time.Minute, Window: time.Hour},
	}
	if p != want {
		t.Fatalf("FromConfig = %+v, want %+v", p, want)
	}
	for _, b := range []counters.Backoff{policy.PerAddress, policy.PerAccount} {
		if err := b.Validate(); err != nil {
			t.Errorf("default policy: %v", err)
		}
	}
}

func TestAddress(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":    "2001:db8:1:2::/64",
		"2001:db8:1:3::1":         "2001:db8:1:3::/64",
		"fe80::1%eth0":            "fe80::/64",
		"::1":                     "::/64",
		"2001:db8::ffff:c000:201": "2001:db8::/64",
	}
	for in, want := range tests {
		if got := Address(netip.MustParseAddr(in)); got != want {
			t.Errorf("Address(%s) = %s, want %s", in, got, want)
		}
	}
	if got := Address(netip.Addr{}); got != "unknown" {
		t.Errorf("Address(zero) = %s", got)
	}
}

// Keys stay short whatever the identifier, and differ by identifier.
func TestKeys(t *testing.T) {
	g, _ := newGuard(t)
	_, a := g.keys(addrA, strings.Repeat("x", 1<<16))
	_, b := g.keys(addrA, "y")
	if len(a) > 100 || a == b {
		t.Fatalf("keys %q and %q", a, b)
	}
	if _, c := g.keys(addrA, ""); c != "" {
		t.Fatalf("key of no identifier: %q", c)
	}
}

// High-entropy secrets: wrong ones are counted per address and per address
// and identifier; past the free failures the address is delayed, with a
// delay that doubles; another address is not.
func TestFailedSecrets(t *testing.T) {
	g, clk := newGuard(t)
	free := policy.PerAccount.Free
	for i := range free + 1 {
		if d, err := g.Failed(ctx, addrA, "client_1"); err != nil || d != 0 {
			t.Fatalf("failure %d: %v, %v", i+1, d, err)
		}
	}
	// Failure free+1 started a delay of Base: the next is refused.
	d, err := g.Failed(ctx, addrA, "client_1")
	if err != nil || d != policy.PerAccount.Base {
		t.Fatalf("failure during the delay: %v, %v; want %v", d, err, policy.PerAccount.Base)
	}
	// Another address is not delayed, for the same client or another.
	if d, _ := g.Failed(ctx, addrB, "client_1"); d != 0 {
		t.Fatalf("address B delayed by address A: %v", d)
	}
	// The delays double.
	prev := policy.PerAccount.Base
	for range 5 {
		clk.Advance(prev)
		if d, err := g.Failed(ctx, addrA, "client_1"); err != nil || d != 0 {
			t.Fatalf("failure after the delay: %v, %v", d, err)
		}
		d, _ := g.Failed(ctx, addrA, "client_1")
		if d != 2*prev {
			t.Fatalf("delay %v after a delay of %v, want %v", d, prev, 2*prev)
		}
		prev = d
	}
	// Many identifiers from one address: the address's own count delays it.
	g2, _ := newGuard(t)
	for i := range policy.PerAddress.Free + 1 {
		if d, _ := g2.Failed(ctx, addrA, fmt.Sprint("client_", i)); d != 0 {
			t.Fatalf("failure %d across clients: delayed %v", i+1, d)
		}
	}
	if d, _ := g2.Failed(ctx, addrA, "client_new"); d != policy.PerAddress.Base {
		t.Fatalf("address past its free failures: %v", d)
	}
	if d, _ := g2.Failed(ctx, addrB, "client_new"); d != 0 {
		t.Fatalf("address B: %v", d)
	}
}

// Passwords: the attempt is counted before it is verified; an address in
// its delay is refused unverified with a growing Retry-After; failures from
// address A never delay address B for the same account; a right password
// gives its count back.
func TestPasswordAttempts(t *testing.T) {
	g, clk := newGuard(t)
	const acct = "dave@example.com"
	free := policy.PerAccount.Free
	for i := range free + 1 {
		if d, err := g.Begin(ctx, addrA, acct); err != nil || d != 0 {
			t.Fatalf("attempt %d: %v, %v", i+1, d, err)
		}
	}
	prev := time.Duration(0)
	for i := range 6 {
		d, err := g.Begin(ctx, addrA, acct)
		if err != nil || d <= prev {
			t.Fatalf("attempt during delay %d: Retry-After %v after %v, %v", i+1, d, prev, err)
		}
		clk.Advance(d)
		if d, err := g.Begin(ctx, addrA, acct); err != nil || d != 0 {
			t.Fatalf("attempt after delay %d: %v, %v", i+1, d, err)
		}
		prev = d
	}
	// The owner, from another address, is never delayed by A.
	if d, err := g.Begin(ctx, addrB, acct); err != nil || d != 0 {
		t.Fatalf("owner from address B: %v, %v", d, err)
	}
	if err := g.Succeeded(ctx, addrB, acct); err != nil {
		t.Fatal(err)
	}
	// A refused attempt is not counted: address A's delay does not grow
	// while it waits.
	d1, _ := g.Begin(ctx, addrA, acct)
	d2, _ := g.Begin(ctx, addrA, acct)
	if d1 <= 0 || d2 != d1 {
		t.Fatalf("Retry-After %v then %v without time passing", d1, d2)
	}
}

func TestSucceededGivesBack(t *testing.T) {
	g, _ := newGuard(t)
	const acct = "erin@example.com"
	for range policy.PerAccount.Free {
		if d, _ := g.Begin(ctx, addrA, acct); d != 0 {
			t.Fatal("free attempt delayed")
		}
	}
	// The attempt that starts the delay is right: its count is given back,
	// and the next attempt goes through at once.
	if d, _ := g.Begin(ctx, addrA, acct); d != 0 {
		t.Fatal("attempt free+1 delayed")
	}
	if err := g.Succeeded(ctx, addrA, acct); err != nil {
		t.Fatal(err)
	}
	if d, _ := g.Begin(ctx, addrA, acct); d != 0 {
		t.Fatalf("attempt after a right one delayed %v", d)
	}
}

// An address delayed for one account is refused for it before anything
// else is counted: its count across accounts is given back.
func TestBeginGivesBackTheAddressCount(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := policy
	p.PerAddress.Free = 7
	p.PerAccount.Free = 2
	g := New(memory.New(clk), "test", p)
	for range 3 {
		g.Begin(ctx, addrA, "a")
	}
	for i := range 10 {
		if d, _ := g.Begin(ctx, addrA, "a"); d == 0 {
			t.Fatalf("refusal %d: not delayed", i+1)
		}
	}
	// 3 counted for the address, 4 more free before its delay.
	for i := range 5 {
		if d, _ := g.Begin(ctx, addrA, fmt.Sprint("other", i)); d != 0 {
			t.Fatalf("attempt %d on other accounts delayed %v: refused attempts were counted", i+1, d)
		}
	}
}

// Attempts racing from one address get no more than the free ones and the
// one that starts the delay.
func TestConcurrentAttempts(t *testing.T) {
	g, _ := newGuard(t)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if d, err := g.Begin(ctx, addrA, "frank@example.com"); err == nil && d == 0 {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n, want := admitted.Load(), int64(policy.PerAccount.Free+1); n != want {
		t.Fatalf("%d of 100 racing attempts admitted, want %d", n, want)
	}
}

// maxFailures returns the most failures one key admits within span under
// b, over the strategies that spend the free failures and k delays, then
// wait until the key is forgotten.
func maxFailures(t *testing.T, b counters.Backoff, span time.Duration) (best, bestK int) {
	t.Helper()
	for k := 0; k <= 24; k++ {
		clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		s := memory.New(clk)
		end := clk.Now().Add(span)
		n, inCycle := 0, 0
		for clk.Now().Before(end) {
			d, err := s.Fail(ctx, "k", b)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed {
				clk.Advance(d.RetryAfter)
				continue
			}
			n++
			inCycle++
			if inCycle == b.Free+k+1 {
				// Wait until the key is forgotten, then start again.
				clk.Advance(d.RetryAfter + b.Window)
				inCycle = 0
			}
		}
		if n > best {
			best, bestK = n, k
		}
	}
	return best, bestK
}

// The bounds the README states for the default auth.login: at most 30
// failures per address and 15 per address and account in any 15 minutes,
// 120 and 60 in an hour, 2,400 and 1,050 in a day.
func TestDocumentedBounds(t *testing.T) {
	for _, tt := range []struct {
		name   string
		b      counters.Backoff
		span   time.Duration
		atMost int
	}{
		{"per address, 15m", policy.PerAddress, 15 * time.Minute, 30},
		{"per address and account, 15m", policy.PerAccount, 15 * time.Minute, 15},
		{"per address, 1h", policy.PerAddress, time.Hour, 120},
		{"per address and account, 1h", policy.PerAccount, time.Hour, 60},
		{"per address, 24h", policy.PerAddress, 24 * time.Hour, 2400},
		{"per address and account, 24h", policy.PerAccount, 24 * time.Hour, 1050},
	} {
		got, k := maxFailures(t, tt.b, tt.span)
		t.Logf("%s: at most %d failures (free failures and %d delays per cycle)", tt.name, got, k)
		if got > tt.atMost {
			t.Errorf("%s: %d failures possible, the README says at most %d", tt.name, got, tt.atMost)
		}
	}
}
