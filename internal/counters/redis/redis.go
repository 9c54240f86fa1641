// Package redis implements counters.Store and counters.Bus on Redis (7 or
// later), standalone or Redis Cluster: the hot counters and the
// invalidation bus of a cluster of Tollgate nodes.
//
// Every operation that decides is one Lua script, that is one round trip
// (EVALSHA, falling back to EVAL once after a script flush): the attempt
// throttles (GCRA), the backoff of failures (Fail, Forgive), the replay
// cache (a sorted set per owner, bounded by the caller), Take (GCRA rate and
// quota in one script), QuotaUsed, SetQuotaUsed, Ban and AcquireSlot
// (RenewSlots pipelines one script per slot). The scripts read the
// store's clock from the server (TIME), never from the node, so that every
// node agrees; the rate is GCRA in integer microseconds. Every key written
// has a TTL: nothing outlives the state it holds.
//
// Keys are the store's prefix (WithPrefix, "tollgate:" by default) and a
// namespace ("att:", "fail:", "replay:", "rate:", "quota:", "ban:", "slot:") before the
// caller's key, which is otherwise left intact. In Redis Cluster the two
// keys of Take must hash to the same slot: callers put what they share (the
// organization) in a hash tag, e.g. "rate:{org_1}" and "quota:{org_1}:2026-12";
// the prefix contains no braces, so the caller's tag is the key's.
//
// Each Store also holds one pub/sub subscription (standalone or cluster,
// plain PUBLISH/SUBSCRIBE), on two channels: prefix+"bus", the Bus, and
// prefix+"bans", over which every node mirrors the bans in memory so that
// Banned costs no round trip (and WatchBans hears of every ban). On every
// (re)subscription the Store reloads the bans (SCAN of the ban keys) and,
// after a reconnection, delivers
// counters.Resync to its Bus subscribers, since messages published while it
// was away are lost.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/internal/counters"
	"github.com/tollgate/tollgate/internal/counters/memory"
)

// DefaultPrefix is the prefix of every key and channel a Store uses unless
// WithPrefix says otherwise.
const DefaultPrefix = "tollgate:"

// startTimeout bounds New's first subscription and load of the bans.
const startTimeout = 10 * time.Second

// ErrClosed is returned by the operations of a closed Store that need its
// subscription (Publish).
var ErrClosed = errors.New("redis: store closed")

// Store implements counters.Store and counters.Bus on a Redis client. It is
// safe for concurrent use. Close it to stop its subscription.
type Store struct {
	client    goredis.UniversalClient
	ownClient bool // made by Open: Close closes it
	prefix    string
	log       *slog.Logger
	offset    func() time.Duration
	commands  atomic.Uint64

	banPrefix  string // of the ban keys
	banWatch   memory.Watchers
	banChannel string // bans to mirror: "<remaining µs> <key>"
	busChannel string

	bans  banMirror
	local *memory.Bus  // the Bus subscribers of this node
	takes *takeBatcher // pipelines the Takes of concurrent requests

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the subscription goroutine ends
	closed sync.Once

	psMu     sync.Mutex
	ps       *goredis.PubSub // the current subscription; nil between
	psClosed bool
}

// Option configures a Store.
type Option func(*options)

type options struct {
	prefix  string
	log     *slog.Logger
	offset  func() time.Duration
	cluster bool
}

// WithPrefix sets the prefix of every key and channel the Store uses
// (default DefaultPrefix). It must not contain '{' or '}', which would make
// a hash tag of it. Stores sharing state must share the prefix.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithLogger sets where the Store logs the loss and recovery of its
// subscription (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClockOffset adds offset() to the store's clock, the server's TIME,
// for tests to move time without sleeping: every script receives it as an
// argument, and the ban mirror adds it to the node's monotonic clock.
// offset must never decrease (keys must not outlive the server's TTLs);
// Stores sharing state must share it.
func WithClockOffset(offset func() time.Duration) Option {
	return func(o *options) { o.offset = offset }
}

// WithCluster makes Open connect to a Redis Cluster, parsing its URL with
// go-redis's ParseClusterURL: redis://host:port?addr=host2:port&addr=...
// (rediss:// for TLS). New ignores it.
func WithCluster(on bool) Option { return func(o *options) { o.cluster = on } }

// Open connects to the Redis at url (redis:// or rediss://, see
// go-redis's ParseURL; with WithCluster(true), the Redis Cluster of
// ParseClusterURL), checks that it answers and returns a Store on it. The
// Store owns the client: Close closes it.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := applyOptions(opts)
	var client goredis.UniversalClient
	if o.cluster {
		co, err := goredis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis: cluster URL: %w", redactURLError(err))
		}
		client = goredis.NewClusterClient(co)
	} else {
		opt, err := goredis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis: URL: %w", redactURLError(err))
		}
		client = goredis.NewClient(opt)
	}
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: ping: %w", err)
	}
	s, err := newStore(ctx, client, o)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	s.ownClient = true
	return s, nil
}

// redactURLError drops the URL, and the password it may hold, from an
// error of url.Parse.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// New returns a Store on client, which it does not own: Close leaves it
// open. It adds a hook to the client, counting its commands (Commands), and
// subscribes to the Store's channels, waiting (up to 10 seconds) for the
// subscription and the first load of the bans, so that the Store's Bus
// delivers everything published after New returns.
func New(client goredis.UniversalClient, opts ...Option) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return newStore(ctx, client, applyOptions(opts))
}

func applyOptions(opts []Option) options {
	o := options{prefix: DefaultPrefix}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func newStore(ctx context.Context, client goredis.UniversalClient, o options) (*Store, error) {
	if strings.ContainsAny(o.prefix, "{}") {
		return nil, fmt.Errorf("redis: prefix %q contains a brace", o.prefix)
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	s := &Store{
		client:     client,
		prefix:     o.prefix,
		log:        o.log,
		offset:     o.offset,
		banPrefix:  o.prefix + "ban:",
		banChannel: o.prefix + "bans",
		busChannel: o.prefix + "bus",
		local:      memory.NewBus(),
		done:       make(chan struct{}),
	}
	s.bans.offset = o.offset
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.takes = newTakeBatcher(client, s.ctx.Done())
	client.AddHook(commandCounter{&s.commands})
	ps, err := s.subscribe(ctx)
	if err != nil {
		s.cancel()
		s.local.Close()
		return nil, fmt.Errorf("redis: subscribing: %w", err)
	}
	go s.run(ps)
	return s, nil
}

// Close stops the Store's subscription and its Bus subscriptions, and
// closes the client if Open made it. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closed.Do(func() {
		s.cancel()
		s.psMu.Lock()
		s.psClosed = true
		if s.ps != nil {
			_ = s.ps.Close()
		}
		s.psMu.Unlock()
		<-s.done
		s.local.Close()
		if s.ownClient {
			err = s.client.Close()
		}
	})
	return err
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.client.Ping(ctx).Err()
}

// Commands returns the number of commands sent through the Store's client
// since New, a pipeline counting each of its commands. It counts every
// command of the client: those of any other user of it, the handshake of
// each new connection, the reloads of the bans (TIME, SCAN, GET) at start,
// on reconnection and every few minutes (TIME); not the traffic of the
// subscription itself (SUBSCRIBE, PING), which has a connection of its own.
// A warm Store sends one command per operation (two once after a script
// flush: EVALSHA, then EVAL), none for Banned.
func (s *Store) Commands() uint64 { return s.commands.Load() }

// Prefix returns the prefix of the Store's keys and channels.
func (s *Store) Prefix() string { return s.prefix }

// commandCounter is the go-redis hook behind Commands.
type commandCounter struct{ n *atomic.Uint64 }

func (h commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(uint64(len(cmds)))
		return next(ctx, cmds)
	}
}

// offsetUS is the clock offset in microseconds, the first argument of
// every script.
func (s *Store) offsetUS() int64 {
	if s.offset == nil {
		return 0
	}
	return int64(s.offset() / time.Microsecond)
}

var (
	_ counters.Store = (*Store)(nil)
	_ counters.Bus   = (*Store)(nil)
)
