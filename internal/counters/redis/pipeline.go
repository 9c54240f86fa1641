package redis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// takeBatcher sends the Take scripts of concurrent requests together. A
// decision is still one command, EVALSHA, answered in one round trip; but
// the decisions waiting when a sender is free go out in one pipeline: one
// write and one read for all of them, on the client and on Redis, instead of
// one of each per request. Under load those system calls are most of what a
// decision costs; without concurrency nothing changes, since a lone decision
// is sent at once, alone.
type takeBatcher struct {
	client goredis.UniversalClient
	queue  chan *takeCall
	stop   <-chan struct{} // closed by Store.Close
}

// takeCall is one decision waiting for its reply.
type takeCall struct {
	keys []string
	args []any
	v    any
	err  error
	done chan struct{}
}

const (
	// takeSenders is the number of pipelines in flight at once.
	takeSenders = 4
	// maxTakeBatch bounds a pipeline.
	maxTakeBatch = 128
)

func newTakeBatcher(client goredis.UniversalClient, stop <-chan struct{}) *takeBatcher {
	b := &takeBatcher{client: client, queue: make(chan *takeCall, takeSenders*maxTakeBatch), stop: stop}
	for range takeSenders {
		go b.run()
	}
	return b
}

// do runs the Take script on keys and args, in a pipeline with whatever
// other decisions are waiting.
func (b *takeBatcher) do(ctx context.Context, keys []string, args ...any) (any, error) {
	c := &takeCall{keys: keys, args: args, done: make(chan struct{})}
	select {
	case b.queue <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stop:
		return nil, ErrClosed
	}
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		// The decision may still be applied; the caller refuses the
		// request either way, as when a lone command is cut short.
		return nil, ctx.Err()
	}
}

// run sends batches until the Store is closed.
func (b *takeBatcher) run() {
	batch := make([]*takeCall, 0, maxTakeBatch)
	for {
		select {
		case <-b.stop:
			return
		case c := <-b.queue:
			batch = append(batch[:0], c)
		}
	fill:
		for len(batch) < maxTakeBatch {
			select {
			case c := <-b.queue:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		b.send(batch)
		clear(batch)
	}
}

// send runs a batch and hands each call its reply. The pipeline does not
// use the requests' contexts: one request giving up must not cut the
// others' decisions short; the client's own timeouts bound it.
func (b *takeBatcher) send(batch []*takeCall) {
	ctx := context.Background()
	if len(batch) == 1 {
		c := batch[0]
		c.v, c.err = takeScript.Run(ctx, b.client, c.keys, c.args...).Result()
		close(c.done)
		return
	}
	pipe := b.client.Pipeline()
	cmds := make([]*goredis.Cmd, len(batch))
	for i, c := range batch {
		cmds[i] = takeScript.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command's error is read below
	for i, c := range batch {
		c.v, c.err = cmds[i].Result()
		if c.err != nil && goredis.HasErrorPrefix(c.err, "NOSCRIPT") {
			// Redis lost its scripts (a restart, SCRIPT FLUSH): the
			// script itself, once, which loads it again.
			c.v, c.err = takeScript.Eval(ctx, b.client, c.keys, c.args...).Result()
		}
		close(c.done)
	}
}
