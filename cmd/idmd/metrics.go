package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/c3-pro/idm/idm"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/c3-pro/idm/auditlog"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are idmd's Prometheus metrics, on a registry of their own.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	resets      *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	panics      prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idm_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "idm_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idm_logins_total", Help: "Login attempts on POST /auth by outcome (success, failure, throttled).",
		}, []string{"outcome"}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idm_reset_events_total", Help: "Password-reset events (requested, issued, throttled, mail_sent, mail_failed, reset, invalid_link, dropped).",
		}, []string{"event"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "idm_store_errors_total", Help: "Store operations that failed (unreachable database, I/O errors), by operation.",
		}, []string{"op"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "idm_http_panics_total", Help: "Handler panics recovered into a 500 answer.",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.logins, m.resets, m.storeErrors, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"success", "failure", "throttled"} {
		m.logins.WithLabelValues(o) // export zeros from the start
	}
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	method = metricMethod(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// reset is the resetflow package's OnEvent hook.
func (m *metrics) reset(event string) { m.resets.WithLabelValues(event).Inc() }

// login is the auth package's OnLogin hook.
func (m *metrics) login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// metricsHandler serves GET /metrics (prom) and nothing else, the JSON
// 404 and 405 elsewhere. With a token, a scrape must carry
// "Authorization: Bearer <token>"; others get a 401. It runs on the metrics
// listener only: the counts (logins by outcome, reset links issued) tell
// which accounts exist, so they never reach the public listener.
func metricsHandler(prom http.Handler, token []byte) http.Handler {
	mux := idm.NewMux()
	if token == nil {
		mux.Handle("GET /metrics", prom)
		return mux
	}
	want := sha256.Sum256(token)
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		// Comparing digests keeps the comparison constant-time whatever
		// the length of what the client sent.
		sum := sha256.Sum256([]byte(got))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="idm-metrics"`)
			idm.WriteError(w, r, nil, idm.E(idm.ErrUnauthorized, "Authorization Required"))
			return
		}
		prom.ServeHTTP(w, r)
	}))
	return mux
}

// metricMethod bounds the method label: any client can send any method, and
// every label value is a series kept for the life of the process.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// auditLog exports the audit log's tree size and the age of its latest
// checkpoint (as this process knows them).
func (m *metrics) auditLog(l *auditlog.Log, now func() time.Time) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "idm_audit_log_checkpoint_size", Help: "Records covered by the audit log's latest checkpoint (its tree size).",
		}, func() float64 { size, _ := l.Stats(); return float64(size) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "idm_audit_log_checkpoint_age_seconds", Help: "Age of the audit log's latest checkpoint; 0 before the first.",
		}, func() float64 {
			_, at := l.Stats()
			if at.IsZero() {
				return 0
			}
			return now().Sub(at).Seconds()
		}),
	)
}
