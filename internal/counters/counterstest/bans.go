package counterstest

import (
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/counters"
)

func runBanTests(t *testing.T, h Harness) {
	t.Run("BanThenBanned", func(t *testing.T) { testBan(t, h) })
	t.Run("BanExpiresAfterTTL", func(t *testing.T) { testBanExpires(t, h) })
	t.Run("BanExtendsNeverShortens", func(t *testing.T) { testBanExtends(t, h) })
	t.Run("BanKeysAreIndependent", func(t *testing.T) { testBanIndependent(t, h) })
	t.Run("BanConcurrentLongestWins", func(t *testing.T) { testBanConcurrent(t, h) })
	t.Run("BanRejectsNonPositiveTTL", func(t *testing.T) { testBanBadTTL(t, h) })
	t.Run("BansSeenAcrossNodes", func(t *testing.T) { testBanAcrossNodes(t, h) })
}

// peerWithin is how long a ban set through one node may take to be seen by
// another.
const peerWithin = 2 * time.Second

func ban(t *testing.T, s counters.Store, key string, ttl time.Duration) {
	t.Helper()
	if err := s.Ban(ctx, key, ttl); err != nil {
		t.Fatalf("Ban(%q, %v): %v", key, ttl, err)
	}
}

func banned(t *testing.T, s counters.Store, key string) time.Duration {
	t.Helper()
	d, err := s.Banned(ctx, key)
	if err != nil {
		t.Fatalf("Banned(%q): %v", key, err)
	}
	if d < 0 {
		t.Fatalf("Banned(%q) = %v, negative", key, d)
	}
	return d
}

// bannedNear checks that key is banned for want, within slack: never more
// than want plus the store's rounding to the millisecond.
func bannedNear(t *testing.T, s counters.Store, key string, want time.Duration) {
	t.Helper()
	d := banned(t, s, key)
	if d <= 0 || d < want-slack || d > want+time.Millisecond {
		t.Fatalf("Banned(%q) = %v, want %v", key, d, want)
	}
}

func notBanned(t *testing.T, s counters.Store, key string) {
	t.Helper()
	if d := banned(t, s, key); d != 0 {
		t.Fatalf("Banned(%q) = %v, want 0", key, d)
	}
}

// eventually polls cond until it holds or peerWithin has passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(peerWithin)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, peerWithin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testBan(t *testing.T, h Harness) {
	s := h.New(t)
	notBanned(t, s, "k")
	ban(t, s, "k", time.Hour)
	bannedNear(t, s, "k", time.Hour)
	// Seen at once by the store that set it, and again and again.
	for range 3 {
		bannedNear(t, s, "k", time.Hour)
	}
	ban(t, s, "short", 1500*time.Microsecond) // rounded up, never down
	if d := banned(t, s, "short"); d > 2*time.Millisecond {
		t.Fatalf("Banned after a ban of 1.5ms = %v", d)
	}
}

func testBanExpires(t *testing.T, h Harness) {
	s := h.New(t)
	ban(t, s, "k", 10*time.Minute)
	h.Advance(t, 6*time.Minute)
	bannedNear(t, s, "k", 4*time.Minute)
	h.Advance(t, 4*time.Minute+time.Second)
	notBanned(t, s, "k")
	// An expired ban is a fresh start.
	ban(t, s, "k", time.Minute)
	bannedNear(t, s, "k", time.Minute)
}

func testBanExtends(t *testing.T, h Harness) {
	s := h.New(t)
	ban(t, s, "k", 10*time.Minute)
	ban(t, s, "k", time.Hour)
	bannedNear(t, s, "k", time.Hour)
	ban(t, s, "k", time.Minute)
	bannedNear(t, s, "k", time.Hour)
	h.Advance(t, 10*time.Minute+time.Second)
	bannedNear(t, s, "k", 50*time.Minute-time.Second)
	ban(t, s, "k", 10*time.Minute)
	bannedNear(t, s, "k", 50*time.Minute-time.Second)
	h.Advance(t, 50*time.Minute)
	notBanned(t, s, "k")
}

func testBanIndependent(t *testing.T, h Harness) {
	s := h.New(t)
	ban(t, s, "a", time.Hour)
	notBanned(t, s, "b")
	notBanned(t, s, "A")
	// Bans share no keys with attempts, the replay cache or Take.
	l := counters.Limit{Max: 1, Window: time.Hour}
	if !record(t, s, "a", l).Allowed {
		t.Fatal("attempt under a limited because a is banned")
	}
	if markSeen(t, s, "a", "a", time.Hour, 10).Outcome != counters.Fresh {
		t.Fatal("a seen because it is banned")
	}
	q := counters.Allowance{Rate: 1, Burst: 1, Quota: 1, PeriodEnd: h.now(t).Add(time.Hour)}
	expect(t, "Take under a banned key", take(t, s, "a", "a", 1, q), counters.Admitted)
	record(t, s, "c", l)
	markSeen(t, s, "c", "c", time.Hour, 10)
	take(t, s, "c", "c", 1, q)
	notBanned(t, s, "c")
}

func testBanConcurrent(t *testing.T, h Harness) {
	s := h.New(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			if err := s.Ban(ctx, "k", time.Duration(i+1)*time.Minute); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	bannedNear(t, s, "k", 20*time.Minute)
}

func testBanBadTTL(t *testing.T, h Harness) {
	s := h.New(t)
	ban(t, s, "banned", time.Hour)
	for _, ttl := range []time.Duration{0, -time.Second} {
		for _, key := range []string{"k", "banned"} {
			if err := s.Ban(ctx, key, ttl); err == nil {
				t.Fatalf("Ban(%q) with ttl %v: no error", key, ttl)
			}
		}
	}
	notBanned(t, s, "k")
	bannedNear(t, s, "banned", time.Hour)
}

func testBanAcrossNodes(t *testing.T, h Harness) {
	if h.NewPeer == nil {
		t.Skip("the store has no peers: it is one node")
	}
	s := h.New(t)
	ban(t, s, "early", time.Hour)
	p := h.NewPeer(t, s)
	eventually(t, "a ban set before the peer started seen by the peer", func() bool {
		return banned(t, p, "early") > 0
	})
	bannedNear(t, p, "early", time.Hour)

	ban(t, s, "k", time.Hour)
	eventually(t, "a ban seen by the peer", func() bool { return banned(t, p, "k") > 0 })
	bannedNear(t, p, "k", time.Hour)
	ban(t, p, "j", time.Minute)
	eventually(t, "the peer's ban seen by the first", func() bool { return banned(t, s, "j") > 0 })
	bannedNear(t, s, "j", time.Minute)

	// An extension travels too; a shorter ban changes nothing anywhere.
	ban(t, p, "k", 2*time.Hour)
	eventually(t, "an extension seen by the first", func() bool { return banned(t, s, "k") > time.Hour+slack })
	ban(t, s, "k", time.Minute)
	bannedNear(t, s, "k", 2*time.Hour)
	bannedNear(t, p, "k", 2*time.Hour)
	notBanned(t, p, "other")

	h.Advance(t, 2*time.Hour+time.Second)
	for _, st := range []counters.Store{s, p} {
		for _, key := range []string{"early", "k", "j"} {
			notBanned(t, st, key)
		}
	}
}
