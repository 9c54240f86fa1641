// Package metrics exposes Tollgate's Prometheus metrics.
//
// A Metrics holds its own registry: nothing is registered with the
// client library's global default registry, so that several gateways (or
// tests) in one process never share or collide on series. Besides the Go
// runtime and process collectors, it exports, all in namespace tollgate:
//
//	requests_total{route,status,auth_method}   counter
//	request_duration_seconds{route}             histogram
//	auth_failures_total{code,reason}            counter
//	limiter_decisions_total{outcome}            counter
//	websocket_bytes_total{direction}            counter ("in": from the client)
//	usage_events_queued                         gauge
//	usage_events_dropped_total                  counter
//	usage_events_written_total                  counter
//	usage_events_failed_total                   counter
//	usage_events_omitted_total                  counter (left out of the sampled request log)
//	counters_unavailable                        gauge (1 while Redis is unreachable)
//	counters_outages_total                      counter
//	counters_fallback_decisions_total           counter (fail-open decisions)
//	connections_open{listener}                  gauge
//	connections_refused_total{listener,reason}  counter (per_address, total)
//	accept_errors_total{listener}               counter
//	send_timeouts_total{listener}               counter
//	request_body_timeouts_total{listener}       counter
//
// The listener label names one of the node's listeners (see Listener).
// An empty route or auth method is exported as "none". Label values come
// from the configuration (routes), fixed code sets (statuses, error codes,
// reasons, auth methods) and the caller; never from raw request input, so
// the number of series stays bounded.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate/tollgate/internal/apierror"
	"github.com/tollgate/tollgate/internal/store"
)

// Namespace prefixes the name of every Tollgate metric.
const Namespace = "tollgate"

// Outcomes of a limiter decision, the values of the outcome label of
// limiter_decisions_total. Their series exist, at 0, from New on.
const (
	OutcomeAdmitted       = "admitted"
	OutcomeRateLimited    = "rate_limited"
	OutcomeQuotaExhausted = "quota_exhausted"
)

// none stands for an empty label value.
const none = "none"

// scrapeTimeout bounds one scrape of Handler; Prometheus' default scrape
// timeout is 10s as well.
const scrapeTimeout = 10 * time.Second

// Metrics records Tollgate's metrics in a registry of its own. Create one
// with New; the zero value is not usable. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	admitted     prometheus.Counter
	rateLimited  prometheus.Counter
	quotaOut     prometheus.Counter
	wsIn, wsOut  prometheus.Counter

	// The listeners' metrics, created by the first call to Listener.
	listenersOnce sync.Once
	connRefused   *prometheus.CounterVec
	acceptErrors  *prometheus.CounterVec
	sendTimeouts  *prometheus.CounterVec
	bodyTimeouts  *prometheus.CounterVec

	// statusText[s-minStatus] is strconv.Itoa(s), so that the status label
	// costs no allocation.
	statusText []string
}

const minStatus, maxStatus = 100, 599

// New returns a Metrics with a new registry holding the Go runtime and
// process collectors and the metrics listed in the package documentation,
// except the usage_events_* ones, which WatchUsageQueue adds.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "requests_total",
			Help:      "Requests and WebSocket sessions seen by the gateway, by matched route, response status (101 for a WebSocket session) and authentication method.",
		}, []string{"route", "status", "auth_method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "request_duration_seconds",
			Help:      "Time from a request's arrival to the end of its response, by matched route. WebSocket sessions are not included.",
			// From half a millisecond (a request refused by the gateway
			// itself) to 10 seconds (a slow upstream).
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "auth_failures_total",
			Help:      "Requests refused with 401, or with 403 for another reason than an exhausted quota, by error code and reason.",
		}, []string{"code", "reason"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "limiter_decisions_total",
			Help:      "Rate-limit and quota decisions, by outcome.",
		}, []string{"outcome"}),
		statusText: make([]string, maxStatus-minStatus+1),
	}
	ws := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace,
		Name:      "websocket_bytes_total",
		Help:      "Bytes carried by ended WebSocket sessions, by direction: in from the client, out to the client.",
	}, []string{"direction"})
	m.admitted = m.decisions.WithLabelValues(OutcomeAdmitted)
	m.rateLimited = m.decisions.WithLabelValues(OutcomeRateLimited)
	m.quotaOut = m.decisions.WithLabelValues(OutcomeQuotaExhausted)
	m.wsIn = ws.WithLabelValues("in")
	m.wsOut = ws.WithLabelValues("out")
	for i := range m.statusText {
		m.statusText[i] = strconv.Itoa(minStatus + i)
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.authFailures, m.decisions, ws,
	)
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// ErrorLog is nil: collection errors are not logged, they are
		// counted in promhttp_metric_handler_errors_total.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
		Timeout:       scrapeTimeout,
	})
	return m
}

// Handler returns the HTTP handler that serves the registry in the
// Prometheus exposition formats. A collector that fails leaves its series
// out of the scrape (and is counted in promhttp_metric_handler_errors_total)
// instead of failing it; a scrape that takes longer than 10 seconds is
// answered with 503. Every call returns the same handler.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveRequest records one ended request or WebSocket session: it counts
// it in requests_total, observes its latency in request_duration_seconds
// (not for WebSocket sessions, whose length says nothing about the gateway),
// adds a WebSocket session's bytes to websocket_bytes_total, and counts an
// authentication or authorization failure in auth_failures_total.
//
// reason is the refusal's reason (apierror.Error.Reason), "" when none; it
// keeps 403 responses for an exhausted quota out of auth_failures_total.
// ObserveRequest does not allocate once the event's series exist.
func (m *Metrics) ObserveRequest(e *store.UsageEvent, reason string) {
	route := e.Route
	if route == "" {
		route = none
	}
	auth := e.AuthMethod
	if auth == "" {
		auth = none
	}
	m.requests.WithLabelValues(route, m.status(e.Status), auth).Inc()
	if e.WebSocket {
		if e.RequestBytes > 0 {
			m.wsIn.Add(float64(e.RequestBytes))
		}
		if e.ResponseBytes > 0 {
			m.wsOut.Add(float64(e.ResponseBytes))
		}
	} else {
		m.duration.WithLabelValues(route).Observe(e.Latency.Seconds())
	}
	if e.ErrorCode != "" && (e.Status == http.StatusUnauthorized ||
		(e.Status == http.StatusForbidden && reason != apierror.ReasonQuotaExhausted)) {
		if reason == "" {
			reason = none
		}
		m.authFailures.WithLabelValues(e.ErrorCode, reason).Inc()
	}
}

// status returns s in decimal.
func (m *Metrics) status(s int) string {
	if s >= minStatus && s <= maxStatus {
		return m.statusText[s-minStatus]
	}
	return strconv.Itoa(s)
}

// ObserveLimit counts one limiter decision in limiter_decisions_total.
// outcome is OutcomeAdmitted, OutcomeRateLimited or OutcomeQuotaExhausted;
// any other value gets a series of its own.
func (m *Metrics) ObserveLimit(outcome string) {
	switch outcome {
	case OutcomeAdmitted:
		m.admitted.Inc()
	case OutcomeRateLimited:
		m.rateLimited.Inc()
	case OutcomeQuotaExhausted:
		m.quotaOut.Inc()
	default:
		m.decisions.WithLabelValues(outcome).Inc()
	}
}

// UsageQueue is the state of the usage-event queue (*usage.Recorder): see
// package usage for what each count means. The methods are called at every
// scrape, possibly concurrently; they must be cheap and safe for concurrent
// use, and the counts but Depth must never decrease.
type UsageQueue interface {
	Depth() int
	Dropped() uint64
	Written() uint64
	Failed() uint64
	Omitted() uint64
}

// WatchUsageQueue exports the state of the usage-event queue: its depth as
// the gauge usage_events_queued, and the counters usage_events_dropped_total,
// usage_events_written_total, usage_events_failed_total and
// usage_events_omitted_total.
//
// Call it once: a second call panics, the metrics being registered already.
func (m *Metrics) WatchUsageQueue(q UsageQueue) {
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: name, Help: help,
		}, func() float64 { return float64(f()) })
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace,
			Name:      "usage_events_queued",
			Help:      "Usage events waiting to be written to the store, in the queue or in the totals of events left out of the request log.",
		}, func() float64 { return float64(q.Depth()) }),
		counter("usage_events_dropped_total",
			"Usage events dropped: recorded after the recorder had stopped, or of no organization and left out of the sampled request log.", q.Dropped),
		counter("usage_events_written_total",
			"Usage events written to the store, with their request-log entry or in the totals of the rollups.", q.Written),
		counter("usage_events_failed_total",
			"Usage events given up after failed writes to the store.", q.Failed),
		counter("usage_events_omitted_total",
			"Usage events left out of the request log, which is sampled under overload; their units, requests and errors are in the rollups.", q.Omitted),
	)
}

// WatchCounters exports the health of the shared counter store: down as the
// gauge counters_unavailable (1 while unreachable), and outages and
// fallbacks as the counters counters_outages_total and
// counters_fallback_decisions_total (decisions made with this node's own
// counters in fail-open mode). The functions are called at every scrape.
//
// Call it once: a second call panics.
func (m *Metrics) WatchCounters(down func() bool, outages, fallbacks func() uint64) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "counters_unavailable",
			Help: "1 while the shared counter store (Redis) is unreachable.",
		}, func() float64 {
			if down() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "counters_outages_total",
			Help: "Times the shared counter store became unreachable.",
		}, func() float64 { return float64(outages()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "counters_fallback_decisions_total",
			Help: "Counter operations decided by this node alone while the shared store was unreachable (fail-open).",
		}, func() float64 { return float64(fallbacks()) }),
	)
}

// ListenerMetrics are the metrics of one listener. Its methods are safe for
// concurrent use and do not allocate.
type ListenerMetrics struct {
	refusedPerAddr, refusedTotal         prometheus.Counter
	acceptErrors, sendTimeouts, timeouts prometheus.Counter
}

// Reasons of connections_refused_total (connguard.RefusedPerAddr and
// connguard.RefusedTotal).
const (
	RefusedPerAddr = "per_address"
	RefusedTotal   = "total"
)

// Listener returns the metrics of the listener called name ("public",
// "admin", "auth_service", "auth_service_grpc"), with its series at 0, and
// exports open, when not nil, as the gauge connections_open{listener=name};
// open is called at every scrape. Call it once per name: a second call with
// a gauge panics, it being registered already.
func (m *Metrics) Listener(name string, open func() int) *ListenerMetrics {
	m.listenersOnce.Do(func() {
		vec := func(metric, help string, labels ...string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: metric, Help: help}, labels)
		}
		m.connRefused = vec("connections_refused_total",
			"Connections closed as soon as accepted, by listener and reason: per_address (max_connections_per_ip) or total (max_connections).",
			"listener", "reason")
		m.acceptErrors = vec("accept_errors_total",
			"Errors accepting connections (EMFILE: out of file descriptors), by listener.", "listener")
		m.sendTimeouts = vec("send_timeouts_total",
			"Connections closed because a write to the client outlasted server.send_timeout (a client not reading its response), by listener.",
			"listener")
		m.bodyTimeouts = vec("request_body_timeouts_total",
			"Requests whose body did not arrive within server.body_timeout and server.min_body_rate, by listener.", "listener")
		m.reg.MustRegister(m.connRefused, m.acceptErrors, m.sendTimeouts, m.bodyTimeouts)
	})
	if open != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "connections_open",
			Help:        "Connections open on a listener.",
			ConstLabels: prometheus.Labels{"listener": name},
		}, func() float64 { return float64(open()) }))
	}
	return &ListenerMetrics{
		refusedPerAddr: m.connRefused.WithLabelValues(name, RefusedPerAddr),
		refusedTotal:   m.connRefused.WithLabelValues(name, RefusedTotal),
		acceptErrors:   m.acceptErrors.WithLabelValues(name),
		sendTimeouts:   m.sendTimeouts.WithLabelValues(name),
		timeouts:       m.bodyTimeouts.WithLabelValues(name),
	}
}

// Refused counts a connection refused for reason (RefusedPerAddr or
// RefusedTotal; any other value counts as RefusedTotal).
func (l *ListenerMetrics) Refused(reason string) {
	if reason == RefusedPerAddr {
		l.refusedPerAddr.Inc()
		return
	}
	l.refusedTotal.Inc()
}

// AcceptError counts an error of the listener's Accept.
func (l *ListenerMetrics) AcceptError() { l.acceptErrors.Inc() }

// SendTimeout counts a connection closed for a write that outlasted the
// send timeout.
func (l *ListenerMetrics) SendTimeout() { l.sendTimeouts.Inc() }

// BodyTimeout counts a request whose body was cut for arriving too slowly.
func (l *ListenerMetrics) BodyTimeout() { l.timeouts.Inc() }
