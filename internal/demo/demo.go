// Package demo is the backend that `tollgate serve --dev` puts behind the
// gateway so a newcomer has something to call: it answers with what the
// gateway told it about the caller, echoes requests, and echoes WebSocket
// messages. It is a real HTTP server on a loopback port, so requests to it
// cross the same proxy path as requests to a real upstream.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Handler serves the demo API under /v1/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hello", hello)
	mux.HandleFunc("/v1/echo", echo)
	mux.HandleFunc("GET /v1/ws", wsEcho)
	mux.HandleFunc("GET /v1/stream", stream)
	mux.HandleFunc("GET /v1/kyt/score", kytScore)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error": "the demo upstream has /v1/hello, /v1/echo, /v1/stream, /v1/ws and /v1/kyt/score",
		})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func hello(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"message":      "Hello from the Tollgate demo upstream.",
		"organization": r.Header.Get("X-Tollgate-Org"),
		"app":          r.Header.Get("X-Tollgate-App"),
		"credential":   r.Header.Get("X-Tollgate-Credential"),
		"scopes":       r.Header.Get("X-Tollgate-Scopes"),
		"request_id":   r.Header.Get("X-Request-Id"),
		"time":         time.Now().UTC().Format(time.RFC3339),
	})
}

// kytScore stands for a scoped endpoint (KYT needs kyt.read).
func kytScore(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"address":    r.URL.Query().Get("address"),
		"risk_score": 12,
		"risk_level": "low",
		"scopes":     r.Header.Get("X-Tollgate-Scopes"),
	})
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	headers := map[string]string{}
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		headers[k] = strings.Join(r.Header[k], ", ")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"method":  r.Method,
		"path":    r.URL.Path,
		"query":   r.URL.RawQuery,
		"headers": headers,
		"body":    string(body),
	})
}

func stream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := 1; i <= 5; i++ {
		if _, err := fmt.Fprintf(w, "data: tick %d\n\n", i); err != nil {
			return
		}
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func wsEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer func() { _ = c.CloseNow() }()
	c.SetReadLimit(1 << 20) // messages up to 1 MiB
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
}

// Server is the demo upstream running on a loopback port.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start serves the demo upstream on 127.0.0.1 at a free port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	s := &Server{srv: &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the upstream's base URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }
