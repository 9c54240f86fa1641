// Package logging builds Tollgate's structured logger: JSON (or text) lines
// through log/slog, written through a buffer that is flushed every few
// hundred milliseconds and on Close, so that an access-log line per request
// does not cost a system call per request. A Throttle paces the lines a
// client or an outage could repeat thousands of times a second.
package logging

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// FlushInterval is how often buffered log lines are written out.
const FlushInterval = 200 * time.Millisecond

// Writer is a buffered, periodically flushed io.Writer. It is safe for
// concurrent use.
type Writer struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewWriter buffers writes to out and flushes them every interval.
func NewWriter(out io.Writer, interval time.Duration) *Writer {
	w := &Writer{buf: bufio.NewWriterSize(out, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

// Close stops the flushing loop and flushes once more.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop); <-w.done })
	return w.Flush()
}

// ParseLevel parses a level name: "debug", "info", "warn" or "error".
func ParseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, fmt.Errorf("logging: level %q: %w", level, err)
	}
	return lv, nil
}

// New returns a logger of the given level ("debug", "info", "warn",
// "error") and format ("json" or "text") writing to w.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("logging: format %q: want json or text", format)
	}
}
