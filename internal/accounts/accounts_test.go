package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/clock"
	"github.com/tollgate/tollgate/internal/config"
	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
	"github.com/tollgate/tollgate/internal/events"
	"github.com/tollgate/tollgate/internal/password"
	"github.com/tollgate/tollgate/internal/reqinfo"
	"github.com/tollgate/tollgate/internal/secretbox"
	"github.com/tollgate/tollgate/internal/store"
	"github.com/tollgate/tollgate/internal/store/postgres"
	"github.com/tollgate/tollgate/internal/store/sqlite"
	"github.com/tollgate/tollgate/internal/testsvc"
	"github.com/tollgate/tollgate/internal/tokens"
)

const (
	davePassword = "correct horse battery"
	wrongPW      = "wrong password!"
)

var (
	ipA = netip.MustParseAddr("192.0.2.1")
	ipB = netip.MustParseAddr("198.51.100.7")
)

// countingStore counts the reads of session state.
type countingStore struct {
	store.Store
	familyReads atomic.Int64
}

func (c *countingStore) GetRefreshFamily(ctx context.Context, id string) (store.RefreshFamily, error) {
	c.familyReads.Add(1)
	return c.Store.GetRefreshFamily(ctx, id)
}

// harness is a store, a clock, and the services of the nodes on them.
type harness struct {
	t     *testing.T
	st    *countingStore
	clock *clock.Fake
	kr    *tokens.Keyring
	hash  *password.Hasher
	ctr   counters.Store
	user  store.User

	mu     sync.Mutex
	alerts []map[string]any
}

// newHarness returns a harness on a fresh SQLite store.
func newHarness(t *testing.T) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHarnessOn(t, st, clk)
}

// newPostgresHarness returns a harness on a schema of the test PostgreSQL.
func newPostgresHarness(t *testing.T) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	url, schema := testsvc.PostgresSchema(t)
	st, err := postgres.Open(context.Background(), url, postgres.WithSchema(schema), postgres.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHarnessOn(t, st, clk)
}

func newHarnessOn(t *testing.T, st store.Store, clk *clock.Fake) *harness {
	t.Helper()
	ctx := context.Background()
	key, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := secretbox.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	box, err := secretbox.New(parsed)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := tokens.LoadKeyring(ctx, st, box, clk)
	if err != nil {
		t.Fatal(err)
	}
	// Cheap argon2id parameters: the tests verify many passwords at once.
	hasher, err := password.NewHasher(password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: &countingStore{Store: st}, clock: clk, kr: kr, hash: hasher, ctr: memory.New(clk)}
	_, h.user, err = h.node(nil).CreateActiveAccount(ctx, "Dave Co", "dave@example.com", davePassword, store.Actor{Type: store.ActorCLI})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// node returns a Service on the harness's store and counters, as one node
// (or the CLI, without broadcast) would have.
func (h *harness) node(broadcast func(string)) *Service {
	return New(h.st, Options{
		Clock: h.clock, Hasher: h.hash, Counters: h.ctr, Keyring: h.kr, Issuer: "https://tollgate.test",
		SessionTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour, SessionCacheTTL: 30 * time.Second,
		RefreshReuseGrace: 5 * time.Second, Login: config.Default().Auth.Login, Broadcast: broadcast,
		Events: func(_ context.Context, _ string, typ string, data any) {
			if typ == events.SecurityAlert {
				h.mu.Lock()
				h.alerts = append(h.alerts, data.(map[string]any))
				h.mu.Unlock()
			}
		},
	})
}

func (h *harness) alertCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.alerts)
}

// client returns a context as the request of a client with that User-Agent
// carries.
func client(userAgent string) context.Context {
	return reqinfo.With(context.Background(), &reqinfo.Info{UserAgent: userAgent})
}

func wantStatus(t *testing.T, what string, err error, status int, code apierror.Code) *apierror.Error {
	t.Helper()
	var e *apierror.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("%s: err = %v, want %d %s", what, err, status, code)
	}
	return e
}

// retryAfter reads the Retry-After of a refusal.
func retryAfter(t *testing.T, e *apierror.Error) time.Duration {
	t.Helper()
	n, err := strconv.Atoi(e.Header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("Retry-After %q: %v", e.Header.Get("Retry-After"), err)
	}
	return time.Duration(n) * time.Second
}

func (h *harness) login(s *Service, ip netip.Addr) TokenPair {
	h.t.Helper()
	p, err := s.Login(client("browser"), "dave@example.com", davePassword, ip)
	if err != nil {
		h.t.Fatalf("login from %v: %v", ip, err)
	}
	return p
}

// Failed logins from other addresses, however many, never stop the owner
// from their own address; the guessing address is delayed, with a
// Retry-After that grows, and its right password is refused like a wrong
// one while it is delayed.
func TestLoginFailuresElsewhereNeverLockTheOwnerOut(t *testing.T) {
	h := newHarness(t)
	s := h.node(nil)
	ctx := context.Background()
	for i := range 30 {
		_, err := s.Login(ctx, "dave@example.com", wrongPW, ipA)
		if i < 6 {
			wantStatus(t, fmt.Sprintf("wrong password %d from A", i+1), err, 401, apierror.InvalidCredentials)
		} else {
			wantStatus(t, fmt.Sprintf("attempt %d from A", i+1), err, 429, apierror.RateLimited)
		}
	}
	// And from many addresses, each within its free failures.
	for i := range 50 {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		for range 5 {
			_, err := s.Login(ctx, "Dave@Example.com ", wrongPW, ip)
			wantStatus(t, "wrong password from "+ip.String(), err, 401, apierror.InvalidCredentials)
		}
	}
	if _, err := s.Login(ctx, "dave@example.com", davePassword, ipB); err != nil {
		t.Fatalf("the owner from address B: %v", err)
	}
	// Address A, delayed: the right password is no oracle.
	_, errRight := s.Login(ctx, "dave@example.com", davePassword, ipA)
	_, errWrong := s.Login(ctx, "dave@example.com", wrongPW, ipA)
	right := wantStatus(t, "right password from A while delayed", errRight, 429, apierror.RateLimited)
	wrong := wantStatus(t, "wrong password from A while delayed", errWrong, 429, apierror.RateLimited)
	if right.Message != wrong.Message || retryAfter(t, right) != retryAfter(t, wrong) || retryAfter(t, right) <= 0 {
		t.Fatalf("answers differ: %+v / %+v", right, wrong)
	}
}

func TestLoginRetryAfterGrows(t *testing.T) {
	h := newHarness(t)
	s := h.node(nil)
	ctx := context.Background()
	for range 6 {
		_, err := s.Login(ctx, "dave@example.com", wrongPW, ipA)
		wantStatus(t, "free failure", err, 401, apierror.InvalidCredentials)
	}
	var prev time.Duration
	for i := range 8 {
		_, err := s.Login(ctx, "dave@example.com", davePassword, ipA)
		e := wantStatus(t, fmt.Sprintf("attempt during delay %d", i+1), err, 429, apierror.RateLimited)
		if retryAfter(t, e) <= prev {
			t.Fatalf("delay %d: Retry-After %v after %v", i+1, retryAfter(t, e), prev)
		}
		prev = retryAfter(t, e)
		h.clock.Advance(retryAfter(t, e))
		_, err = s.Login(ctx, "dave@example.com", wrongPW, ipA)
		wantStatus(t, fmt.Sprintf("wrong password after delay %d", i+1), err, 401, apierror.InvalidCredentials)
	}
	// Quiet for the window after the last delay: all forgotten.
	_, err := s.Login(ctx, "dave@example.com", wrongPW, ipA)
	e := wantStatus(t, "during the last delay", err, 429, apierror.RateLimited)
	h.clock.Advance(retryAfter(t, e) + config.Default().Auth.Login.Window)
	if _, err := s.Login(ctx, "dave@example.com", davePassword, ipA); err != nil {
		t.Fatalf("after a quiet window: %v", err)
	}
}

// Logins racing from one address get no more guesses than the free ones
// and the one that starts the delay.
func TestLoginConcurrentGuesses(t *testing.T) {
	h := newHarness(t)
	s := h.node(nil)
	var verified, throttled atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := s.Login(context.Background(), "dave@example.com", wrongPW, ipA)
			switch apierror.From(err).Status {
			case http.StatusUnauthorized:
				verified.Add(1)
			case http.StatusTooManyRequests:
				throttled.Add(1)
			}
		})
	}
	wg.Wait()
	if verified.Load() != 6 || throttled.Load() != 34 {
		t.Fatalf("40 racing guesses: %d verified, %d throttled; want 6 and 34", verified.Load(), throttled.Load())
	}
}

// Logging out refuses the session's access tokens at once, on this node
// and, through the bus, on another.
func TestLogoutEndsAccessTokens(t *testing.T) {
	h := newHarness(t)
	bus := memory.NewBus()
	t.Cleanup(bus.Close)
	publish := func(msg string) { _ = bus.Publish(context.Background(), msg) }
	a, b := h.node(publish), h.node(publish)
	for _, n := range []*Service{a, b} {
		cancel := bus.Subscribe(func(msg string) { n.Apply(msg) })
		t.Cleanup(cancel)
	}
	ctx := context.Background()
	p := h.login(a, ipA)
	other := h.login(a, ipA) // another session of the same user
	for _, n := range []*Service{a, b} {
		if _, err := n.Authenticate(ctx, p.AccessToken); err != nil {
			t.Fatalf("before logout: %v", err)
		}
	}
	if err := a.Logout(ctx, p.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err := a.Authenticate(ctx, p.AccessToken)
	wantStatus(t, "same node after logout", err, 401, apierror.InvalidToken)
	waitFor(t, "the other node refuses the token", func() bool {
		_, err := b.Authenticate(ctx, p.AccessToken)
		return apierror.From(err).Status == 401
	})
	if _, err := b.Authenticate(ctx, other.AccessToken); err != nil {
		t.Fatalf("another session of the user: %v", err)
	}
	// The refresh token of the ended session raises no alarm.
	_, err = a.Refresh(client("browser"), p.RefreshToken, ipA)
	wantStatus(t, "refresh after logout", err, 401, apierror.InvalidToken)
	if n := h.alertCount(); n != 0 {
		t.Fatalf("%d security alerts after a logout", n)
	}
}

// Without the bus (a lost message), another node sees the end of a session
// within the session cache TTL.
func TestSessionCacheTTL(t *testing.T) {
	h := newHarness(t)
	a, b := h.node(nil), h.node(nil)
	ctx := context.Background()
	p := h.login(a, ipA)
	for range 10 {
		if _, err := b.Authenticate(ctx, p.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.st.familyReads.Load(); n != 1 {
		t.Fatalf("10 requests read the session %d times, want 1", n)
	}
	if err := a.Logout(ctx, p.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, p.AccessToken); err != nil {
		t.Fatalf("within the TTL, without the bus: %v", err)
	}
	h.clock.Advance(30 * time.Second)
	_, err := b.Authenticate(ctx, p.AccessToken)
	wantStatus(t, "after the TTL", err, 401, apierror.InvalidToken)
}

// A new password or a disabled user ends the user's sessions at once, even
// when changed by another process without the bus (the CLI): the cached
// session is checked again once the user record has changed.
func TestOperatorEndsSessions(t *testing.T) {
	h := newHarness(t)
	srv, cli := h.node(nil), h.node(nil)
	ctx := context.Background()
	p := h.login(srv, ipA)
	if _, err := srv.Authenticate(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Millisecond)
	if _, err := cli.SetPassword(ctx, "dave@example.com", "a brand new passphrase", store.Actor{Type: store.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	_, err := srv.Authenticate(ctx, p.AccessToken)
	wantStatus(t, "after a new password", err, 401, apierror.InvalidToken)
	_, err = srv.Refresh(client("browser"), p.RefreshToken, ipA)
	wantStatus(t, "refresh after a new password", err, 401, apierror.InvalidToken)

	p2, err := srv.Login(client("browser"), "dave@example.com", "a brand new passphrase", ipA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Authenticate(ctx, p2.AccessToken); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Millisecond)
	if _, err := cli.SetStatus(ctx, "dave@example.com", store.UserDisabled, store.Actor{Type: store.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	_, err = srv.Authenticate(ctx, p2.AccessToken)
	wantStatus(t, "disabled user", err, 403, apierror.Forbidden)
	if _, err := cli.SetStatus(ctx, "dave@example.com", store.UserActive, store.Actor{Type: store.ActorCLI}); err != nil {
		t.Fatal(err)
	}
	_, err = srv.Authenticate(ctx, p2.AccessToken)
	wantStatus(t, "re-activated user, old session", err, 401, apierror.InvalidToken)
	if n := h.alertCount(); n != 0 {
		t.Fatalf("%d security alerts", n)
	}
}

// Refresh-token reuse ends the session's access tokens at once, the new
// ones included.
func TestReuseEndsAccessTokens(t *testing.T) {
	h := newHarness(t)
	s := h.node(nil)
	ctx := client("browser")
	first := h.login(s, ipA)
	second, err := s.Refresh(ctx, first.RefreshToken, ipA)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{first.AccessToken, second.AccessToken} {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	// The thief, elsewhere, presents the spent token.
	_, err = s.Refresh(client("curl/8.5.0"), first.RefreshToken, ipB)
	wantStatus(t, "reuse", err, 401, apierror.InvalidToken)
	if n := h.alertCount(); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}
	for i, tok := range []string{first.AccessToken, second.AccessToken} {
		_, err := s.Authenticate(ctx, tok)
		wantStatus(t, fmt.Sprintf("access token %d after reuse", i+1), err, 401, apierror.InvalidToken)
	}
	_, err = s.Refresh(ctx, second.RefreshToken, ipA)
	wantStatus(t, "the live refresh token after reuse", err, 401, apierror.InvalidToken)
}

// Tabs of one browser refreshing one token at once: every refresh gets a
// pair of the same session, no alert is raised, the session stays live.
func TestConcurrentRefreshesOfOneClient(t *testing.T) {
	testConcurrentRefreshes(t, newHarness(t))
}

// The same on PostgreSQL, where the rotations race in separate
// connections.
func TestConcurrentRefreshesOfOneClientPostgres(t *testing.T) {
	testConcurrentRefreshes(t, newPostgresHarness(t))
}

func testConcurrentRefreshes(t *testing.T, h *harness) {
	s := h.node(nil)
	first := h.login(s, ipA)
	const n = 12
	pairs := make([]TokenPair, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			pairs[i], errs[i] = s.Refresh(client("browser"), first.RefreshToken, ipA)
		})
	}
	close(start)
	wg.Wait()
	ctx := context.Background()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("refresh %d: %v", i, errs[i])
		}
		sess, err := s.Authenticate(ctx, pairs[i].AccessToken)
		if err != nil {
			t.Fatalf("access token of refresh %d: %v", i, err)
		}
		if first, err := s.Authenticate(ctx, first.AccessToken); err != nil || first.SessionID != sess.SessionID {
			t.Fatalf("refresh %d: session %s, first %+v, %v", i, sess.SessionID, first, err)
		}
	}
	if a := h.alertCount(); a != 0 {
		t.Fatalf("%d false reuse alerts", a)
	}
	// Each new refresh token rotates on its own.
	for i := range n {
		if _, err := s.Refresh(client("browser"), pairs[i].RefreshToken, ipA); err != nil {
			t.Fatalf("rotating the token of refresh %d: %v", i, err)
		}
	}
}

// The grace is for the same client only, and only for a few seconds.
func TestRefreshGraceBounds(t *testing.T) {
	tests := []struct {
		name  string
		ua    string
		ip    netip.Addr
		after time.Duration
		reuse bool
	}{
		{"same client at once", "browser", ipA, 0, false},
		{"same client within the grace", "browser", ipA, 5 * time.Second, false},
		{"same client after the grace", "browser", ipA, 5*time.Second + time.Millisecond, true},
		{"another address", "browser", ipB, 0, true},
		{"the same address as IPv4-mapped IPv6", "browser", netip.MustParseAddr("::ffff:192.0.2.1"), 0, false},
		{"another User-Agent", "curl/8.5.0", ipA, 0, true},
		{"no User-Agent", "", ipA, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			s := h.node(nil)
			first := h.login(s, ipA)
			second, err := s.Refresh(client("browser"), first.RefreshToken, ipA)
			if err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(tt.after)
			_, err = s.Refresh(client(tt.ua), first.RefreshToken, tt.ip)
			_, liveErr := s.Authenticate(context.Background(), second.AccessToken)
			if tt.reuse {
				wantStatus(t, "replay", err, 401, apierror.InvalidToken)
				if h.alertCount() != 1 || liveErr == nil {
					t.Fatalf("alerts %d, session %v: want the session revoked with an alert", h.alertCount(), liveErr)
				}
				return
			}
			if err != nil || liveErr != nil || h.alertCount() != 0 {
				t.Fatalf("replay: %v; session: %v; alerts %d", err, liveErr, h.alertCount())
			}
		})
	}
}

// A token presented again within the grace of a session that has ended
// since (logout, reuse elsewhere) gets nothing.
func TestRefreshGraceAfterTheSessionEnded(t *testing.T) {
	h := newHarness(t)
	s := h.node(nil)
	first := h.login(s, ipA)
	second, err := s.Refresh(client("browser"), first.RefreshToken, ipA)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(context.Background(), second.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refresh(client("browser"), first.RefreshToken, ipA)
	wantStatus(t, "within the grace, after logout", err, 401, apierror.InvalidToken)
	fam, err := h.st.GetRefreshFamily(context.Background(), mustSession(t, s, first.AccessToken))
	if err != nil || fam.RevokedAt.IsZero() {
		t.Fatalf("family %+v, %v", fam, err)
	}
}

func mustSession(t *testing.T, s *Service, access string) string {
	t.Helper()
	var c SessionClaims
	if err := s.verifier.Verify(access, &c); err != nil {
		t.Fatal(err)
	}
	return c.SessionID
}

// A read of a session racing with its end never puts the ended session
// back into the cache.
func TestSessionCacheGeneration(t *testing.T) {
	c := newSessionCache(time.Minute)
	gen := c.generation()
	c.drop("fam_1") // the session ends while its state is being read
	c.put("fam_1", sessionEntry{userID: "usr_1"}, gen)
	if _, ok := c.get("fam_1"); ok {
		t.Fatal("a read older than a drop was cached")
	}
	gen = c.generation()
	c.put("fam_1", sessionEntry{userID: "usr_1"}, gen)
	c.put("fam_2", sessionEntry{userID: "usr_2"}, gen)
	c.dropUser("usr_1")
	if _, ok := c.get("fam_1"); ok {
		t.Fatal("dropUser kept the user's session")
	}
	if _, ok := c.get("fam_2"); !ok {
		t.Fatal("dropUser dropped another user's session")
	}
	c.purge()
	if _, ok := c.get("fam_2"); ok {
		t.Fatal("purge kept a session")
	}
	off := newSessionCache(0)
	off.put("fam_1", sessionEntry{}, off.generation())
	if _, ok := off.get("fam_1"); ok {
		t.Fatal("a cache with a zero TTL remembered a session")
	}
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
