package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// gust's own metrics. They go through the worker's SDK metrics handler, so
// `gust worker --metrics-port` serves them beside the SDK's (with the
// Prometheus naming the handler applies: counters get a _total suffix).
const (
	// MetricInstancesLaunched counts instances launched, tagged path=burst
	// or path=fill.
	MetricInstancesLaunched = "gust_fleet_instances_launched"
	// MetricInvocations counts function invocations, tagged outcome=ok,
	// function_error or error.
	MetricInvocations = "gust_function_invocations"
	// MetricColdStarts counts invocations that started a new environment.
	MetricColdStarts = "gust_function_cold_starts"
	// MetricInvokeLatency is the provider-level invocation latency.
	MetricInvokeLatency = "gust_function_invoke_latency"
)

func countLaunched(ctx context.Context, path string, n int) {
	if !activity.IsActivity(ctx) || n == 0 {
		return
	}
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{"path": path}).Counter(MetricInstancesLaunched).Inc(int64(n))
}

func recordInvocation(ctx context.Context, outcome string, coldStart bool, d time.Duration) {
	if !activity.IsActivity(ctx) {
		return
	}
	h := activity.GetMetricsHandler(ctx)
	h.WithTags(map[string]string{"outcome": outcome}).Counter(MetricInvocations).Inc(1)
	if coldStart {
		h.Counter(MetricColdStarts).Inc(1)
	}
	h.Timer(MetricInvokeLatency).Record(d)
}
