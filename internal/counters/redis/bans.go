package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
)

const (
	// healthInterval is how long the subscription may stay silent before
	// it is pinged; silent as long again after the ping, it is reconnected.
	healthInterval = 15 * time.Second
	// The backoff between failed attempts to resubscribe.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// banMirror is a node's copy of the bans: their ends on the store's clock,
// in microseconds, as the ban keys hold them. Banned reads that clock
// without a round trip: from the server's TIME, read when the subscription
// is (re)established and every resyncEvery after, advanced by the node's
// monotonic clock since, plus the clock offset. A ban travels with its end,
// not its remaining time, so delivery delays do not lengthen it. Expired
// bans are swept whenever the map has doubled since the last sweep.
type banMirror struct {
	offset func() time.Duration
	clock  atomic.Pointer[serverClock]
	n      atomic.Int64 // len(until): Banned takes no lock while there are no bans

	mu     sync.RWMutex
	until  map[string]int64
	sweepN int
}

// serverClock is a reading of the server's TIME (without the offset), in
// microseconds, and the node's monotonic instant it corresponds to.
type serverClock struct {
	us int64
	at time.Time
}

// resyncEvery is how often the mirror's clock is read again from the
// server, bounding the drift of the node's clock (some milliseconds).
const resyncEvery = 5 * time.Minute

// now reads the store's clock, in microseconds.
func (m *banMirror) now() int64 {
	c := m.clock.Load()
	if c == nil { // not read yet: the node's clock will do
		c = &serverClock{us: time.Now().UnixMicro(), at: time.Now()}
	}
	now := c.us + int64(time.Since(c.at)/time.Microsecond)
	if m.offset != nil {
		now += int64(m.offset() / time.Microsecond)
	}
	return now
}

// syncClock reads the server's TIME through c, taking the midpoint of the
// round trip as the instant it was read.
func (m *banMirror) syncClock(ctx context.Context, c goredis.Cmdable) error {
	before := time.Now()
	t, err := c.Time(ctx).Result()
	if err != nil {
		return err
	}
	rtt := time.Since(before)
	m.clock.Store(&serverClock{us: t.UnixMicro(), at: before.Add(rtt / 2)})
	return nil
}

// add extends the ban of key to at least end, on the store's clock, and
// reports whether it did.
func (m *banMirror) add(key string, end int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = make(map[string]int64)
	}
	if cur, ok := m.until[key]; ok && cur >= end {
		return false
	}
	m.until[key] = end
	if len(m.until) > m.sweepN {
		now := m.now()
		for k, until := range m.until {
			if until <= now {
				delete(m.until, k)
			}
		}
		m.sweepN = max(64, 2*len(m.until))
	}
	m.n.Store(int64(len(m.until)))
	return true
}

// mirror adds a ban to the mirror and tells the watchers (WatchBans) of a
// ban that is new or longer.
func (s *Store) mirror(key string, end int64) {
	if s.bans.add(key, end) {
		s.banWatch.Notify(key)
	}
}

func (m *banMirror) remaining(key string) time.Duration {
	if m.n.Load() == 0 {
		return 0
	}
	m.mu.RLock()
	until, ok := m.until[key]
	m.mu.RUnlock()
	if !ok {
		return 0
	}
	return time.Duration(max(0, until-m.now())) * time.Microsecond
}

// Ban implements counters.Store: one script sets the ban key, extending
// only, and publishes the ban for every node to mirror; this node mirrors
// it at once. ttl is rounded up to the millisecond.
func (s *Store) Ban(ctx context.Context, key string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: Ban ttl %v is not positive", ttl)
	}
	v, err := s.eval(ctx, banScript, "ban", []string{s.banPrefix + key},
		s.offsetUS(), millisUp(ttl), s.banChannel, key)
	if err != nil {
		return err
	}
	end, err := asInt(v)
	if err != nil {
		return err
	}
	s.mirror(key, end)
	return nil
}

// Banned implements counters.Store from the node's mirror of the bans,
// without a round trip; it never returns an error. See the package
// documentation for how the mirror is kept.
func (s *Store) Banned(_ context.Context, key string) (time.Duration, error) {
	return s.bans.remaining(key), nil
}

// BanLen returns the number of bans the node's mirror holds, for tests and
// metrics. Expired bans count until they are swept.
func (s *Store) BanLen() int { return int(s.bans.n.Load()) }

// Publish implements counters.Bus: one PUBLISH on prefix+"bus".
func (s *Store) Publish(ctx context.Context, msg string) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	if err := s.client.Publish(ctx, s.busChannel, msg).Err(); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	return nil
}

// Subscribe implements counters.Bus. The messages of every node reach this
// one through the Store's single subscription; this node's subscribers
// receive counters.Resync whenever it has been re-established. A message
// published just before Subscribe, still on its way, may be delivered too.
// After Close, fn is never called.
func (s *Store) Subscribe(fn func(msg string)) (cancel func()) {
	return s.local.Subscribe(fn)
}

// subscribe subscribes to the Store's channels, waits for the
// confirmations and loads the bans.
func (s *Store) subscribe(ctx context.Context) (*goredis.PubSub, error) {
	ps := s.client.Subscribe(ctx, s.banChannel, s.busChannel)
	s.psMu.Lock()
	if s.psClosed {
		s.psMu.Unlock()
		_ = ps.Close()
		return nil, ErrClosed
	}
	s.ps = ps
	s.psMu.Unlock()
	for confirmed := 0; confirmed < 2; {
		timeout := startTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		if timeout <= 0 {
			s.dropPubSub(ps)
			return nil, context.DeadlineExceeded
		}
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			s.dropPubSub(ps)
			return nil, err
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				confirmed++
			}
		case *goredis.Message:
			s.handle(m)
		}
	}
	if err := s.loadBans(ctx); err != nil {
		s.dropPubSub(ps)
		return nil, fmt.Errorf("loading the bans: %w", err)
	}
	return ps, nil
}

func (s *Store) dropPubSub(ps *goredis.PubSub) {
	s.psMu.Lock()
	if s.ps == ps {
		s.ps = nil
	}
	s.psMu.Unlock()
	_ = ps.Close()
}

// run receives from ps until it fails, then subscribes again, with backoff,
// and tells the Bus subscribers to resync; until Close.
func (s *Store) run(ps *goredis.PubSub) {
	defer close(s.done)
	for {
		err := s.receive(ps)
		s.dropPubSub(ps)
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("counters: Redis subscription lost, reconnecting", "channel", s.busChannel, "err", err)
		for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
			ctx, cancel := context.WithTimeout(s.ctx, startTimeout)
			ps, err = s.subscribe(ctx)
			cancel()
			if err == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("counters: Redis subscription failed", "channel", s.busChannel, "err", err, "retry_in", backoff)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		s.log.Info("counters: Redis subscription restored", "channel", s.busChannel)
		_ = s.local.Publish(s.ctx, counters.Resync)
	}
}

// receive handles the messages of ps until it fails.
func (s *Store) receive(ps *goredis.PubSub) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, healthInterval)
		if err != nil {
			if s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				if err := ps.Ping(s.ctx); err != nil {
					return err
				}
				pinged = true
				continue
			}
			return err
		}
		pinged = false
		if c := s.bans.clock.Load(); c == nil || time.Since(c.at) > resyncEvery {
			if err := s.bans.syncClock(s.ctx, s.client); err != nil {
				s.log.Warn("counters: reading the Redis clock", "err", err)
			}
		}
		switch m := msg.(type) {
		case *goredis.Message:
			s.handle(m)
		case *goredis.Subscription:
			// go-redis resubscribed on a new connection by itself:
			// messages may have been lost meanwhile.
			if m.Kind == "subscribe" && m.Channel == s.busChannel {
				if err := s.loadBans(s.ctx); err != nil {
					return fmt.Errorf("loading the bans: %w", err)
				}
				_ = s.local.Publish(s.ctx, counters.Resync)
			}
		}
	}
}

// handle applies a message of the subscription.
func (s *Store) handle(m *goredis.Message) {
	switch m.Channel {
	case s.busChannel:
		_ = s.local.Publish(s.ctx, m.Payload)
	case s.banChannel:
		end, key, ok := strings.Cut(m.Payload, " ")
		us, err := strconv.ParseInt(end, 10, 64)
		if !ok || err != nil {
			s.log.Warn("counters: malformed ban message", "channel", m.Channel)
			return
		}
		s.mirror(key, us)
	}
}

// loadBans reads the server's clock and mirrors every ban key, SCANning
// every master.
func (s *Store) loadBans(ctx context.Context) error {
	if err := s.bans.syncClock(ctx, s.client); err != nil {
		return err
	}
	pattern := globEscape(s.banPrefix) + "*"
	return s.forEachNode(ctx, func(ctx context.Context, c goredis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := s.loadBanKeys(ctx, c, keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
}

// loadBanKeys mirrors the ban keys of one node, read in one pipeline.
func (s *Store) loadBanKeys(ctx context.Context, c goredis.Cmdable, keys []string) error {
	pipe := c.Pipeline()
	gets := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return err
	}
	for i, g := range gets {
		if end, err := g.Int64(); err == nil { // else expired since SCAN
			s.mirror(strings.TrimPrefix(keys[i], s.banPrefix), end)
		}
	}
	return nil
}

// forEachNode calls fn for every master of a cluster (or shard of a ring)
// at once, or for the client itself.
func (s *Store) forEachNode(ctx context.Context, fn func(context.Context, goredis.Cmdable) error) error {
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return fn(ctx, n) })
	case *goredis.Ring:
		return c.ForEachShard(ctx, func(ctx context.Context, n *goredis.Client) error { return fn(ctx, n) })
	}
	return fn(ctx, s.client)
}

// globEscape escapes the glob metacharacters of SCAN's MATCH in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
