package localcloud

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsPath is where the cloud serves its Prometheus metrics
// (lambda.MetricEnvironments). Like the health endpoint it is
// unauthenticated: it holds no secret, but it does name tenants and their
// functions, so the cloud's port should be reachable only by whom may know
// them (it listens on 127.0.0.1 unless told otherwise). No AWS API uses the
// path.
const MetricsPath = "/metrics"

// serveMetrics answers a scrape. The collectors read live state at each
// scrape, so a registry per scrape costs nothing worth keeping one for.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.lambda.Collector())
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
