package worker

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Metrics is a Prometheus registry fed by the SDK's metrics handler. gust's
// own metrics (gust_* names, emitted by activities through
// activity.GetMetricsHandler) flow through the same handler, so one
// /metrics endpoint serves both.
type Metrics struct {
	Handler client.MetricsHandler
	HTTP    http.Handler
	closer  func() error
}

// NewMetrics builds a fresh registry; pass Handler to client.Options and
// serve HTTP on the metrics port.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: reg})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	scope = sdktally.NewPrometheusNamingScope(scope)
	return &Metrics{
		Handler: sdktally.NewMetricsHandler(scope),
		HTTP:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		closer:  closer.Close,
	}
}

// Close flushes and stops the reporter.
func (m *Metrics) Close() error { return m.closer() }
