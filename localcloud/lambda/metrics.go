package lambda

import (
	"github.com/prometheus/client_golang/prometheus"
)

// MetricEnvironments is the local cloud's gauge of execution environments,
// labelled tenant, function and state (starting, idle, busy or retired). The
// cloud exports it itself (localcloud serves /metrics): environments are
// the cloud's state, which a worker in another process cannot see, and on
// AWS there is nothing like them to count.
const MetricEnvironments = "gust_lambda_environments"

var environmentsDesc = prometheus.NewDesc(MetricEnvironments,
	"Execution environments of the local cloud's Lambda service, by the tenant and function they run and their state: "+
		"starting (its runtime not yet ready), idle (warm, waiting for an invocation), busy (running one) or "+
		"retired (of a replaced version, stopping once its invocation ends).",
	[]string{"tenant", "function", "state"}, nil)

// Collector returns a Prometheus collector of the service's environments,
// read from the pool at each scrape.
func (c *Cloud) Collector() prometheus.Collector { return envCollector{c.pool} }

type envCollector struct{ p *pool }

func (envCollector) Describe(ch chan<- *prometheus.Desc) { ch <- environmentsDesc }

func (ec envCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ tenant, function, state string }
	counts := map[key]int{}
	ec.p.mu.Lock()
	for _, e := range ec.p.all {
		state := e.state.String()
		if e.retired {
			state = "retired"
		}
		counts[key{e.fn.Tenant, e.fn.Name, state}]++
	}
	ec.p.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(environmentsDesc, prometheus.GaugeValue, float64(n), k.tenant, k.function, k.state)
	}
}
