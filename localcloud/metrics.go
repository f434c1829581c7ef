package localcloud

import "github.com/prometheus/client_golang/prometheus"

// Collector is the cloud's Prometheus collector (lambda.MetricEnvironments:
// the environments by tenant, function and state). It is served on an
// operator's metrics listener (gust dev's and gust cloud's --metrics-port,
// 127.0.0.1 by default), never on the cloud's own port: tenants reach
// that port with their keys, and the series name every tenant and its
// functions, which no tenant may list.
func (s *Server) Collector() prometheus.Collector { return s.lambda.Collector() }
