package worker

import (
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/gust-dev/gust/workflows"
)

// Metrics is a Prometheus registry fed by the SDK's metrics handler. gust's
// own metrics (gust_* names, emitted by activities through
// activity.GetMetricsHandler) flow through the same handler, and
// gust_fleets_in_flight is read from the workflows at each scrape, so one
// /metrics endpoint serves them all. Every metric has a HELP text
// (HelpTexts), the SDK's included.
type Metrics struct {
	Handler client.MetricsHandler
	HTTP    http.Handler
	closer  func() error
	reg     *prometheus.Registry
}

// Register adds c's series to what HTTP serves: gust dev serves its local
// cloud's there, on the operator's listener.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// MetricFleetsInFlight is the gauge of the fleets whose workflow this
// worker holds, labelled phase (see workflows.FleetsInFlight); summed over
// the workers it counts every fleet in flight.
const MetricFleetsInFlight = "gust_fleets_in_flight"

// latencyBuckets are the histogram buckets, in seconds, of every timer:
// the SDK's latencies and gust's invocation latency and queue wait, which
// range from milliseconds (a warm invocation) to minutes (an invocation
// queued behind a full concurrency limit).
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewMetrics builds a fresh registry; pass Handler to client.Options and
// serve HTTP on the metrics port.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}), fleetsCollector{})
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer: reg,
		// Histograms, not summaries: they aggregate across workers.
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: latencyBuckets,
	})
	sanitize := sdktally.PrometheusSanitizeOptions
	// Names and label names must follow Prometheus' rules, but label
	// values may be any text: the SDK's options would turn the gust-launch
	// task queue into gust_launch, a queue that does not exist.
	sanitize.ValueCharacters = tally.ValidCharacters{Ranges: []tally.SanitizeRange{{' ', unicode.MaxRune}}}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitize,
		// tally's own bookkeeping, of no use to an operator.
		OmitCardinalityMetrics: true,
	}, time.Second)
	scope = sdktally.NewPrometheusNamingScope(scope)
	return &Metrics{
		Handler: sdktally.NewMetricsHandler(scope),
		HTTP:    promhttp.HandlerFor(helpGatherer{reg}, promhttp.HandlerOpts{}),
		closer:  closer.Close,
		reg:     reg,
	}
}

// Close flushes and stops the reporter.
func (m *Metrics) Close() error { return m.closer() }

// fleetsCollector exports workflows.FleetsInFlight at each scrape, every
// phase included, so a phase without fleets reads 0 rather than nothing.
type fleetsCollector struct{}

var fleetsDesc = prometheus.NewDesc(MetricFleetsInFlight, HelpTexts[MetricFleetsInFlight], []string{"phase"}, nil)

var fleetPhases = []string{
	workflows.PhaseValidating, workflows.PhaseReserving, workflows.PhaseBursting, workflows.PhaseFilling,
	workflows.PhaseFulfilled, workflows.PhaseInsufficientCapacity, workflows.PhaseCancelled, workflows.PhaseFailed,
}

func (fleetsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- fleetsDesc }

func (fleetsCollector) Collect(ch chan<- prometheus.Metric) {
	n := workflows.FleetsInFlight()
	for _, p := range fleetPhases {
		ch <- prometheus.MustNewConstMetric(fleetsDesc, prometheus.GaugeValue, float64(n[p]), p)
	}
}

// helpGatherer replaces the HELP text the tally reporter gives every
// metric ("<name> counter") with the one in HelpTexts.
type helpGatherer struct{ prometheus.Gatherer }

func (g helpGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.Gatherer.Gather()
	for _, mf := range mfs {
		if h, ok := helpFor(mf.GetName()); ok {
			mf.Help = &h
		}
	}
	return mfs, err
}

// helpFor looks a family up in HelpTexts by its name, or by the name
// before the Prometheus naming scope added _total or _seconds.
func helpFor(family string) (string, bool) {
	for _, name := range []string{family, strings.TrimSuffix(family, "_total"), strings.TrimSuffix(family, "_seconds")} {
		if h, ok := HelpTexts[name]; ok {
			return h, true
		}
	}
	return "", false
}
