package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/gust-dev/gust/providers"
)

// gust's own metrics. They go through the worker's SDK metrics handler, so
// `gust worker --metrics-port` serves them beside the SDK's, with the
// Prometheus naming the handler applies: counters get a _total suffix,
// timers are histograms in seconds with a _seconds suffix. Every one also
// carries the SDK's labels of the activity that recorded it (namespace,
// task_queue, activity_type, workflow_type). worker.HelpTexts explains
// each.
const (
	// MetricInstancesLaunched counts instances launched, labelled
	// path=burst or path=fill.
	MetricInstancesLaunched = "gust_fleet_instances_launched"
	// MetricInvocations counts function invocations, labelled tenant,
	// function and outcome (ok, function_error or error), and subtenant
	// when Functions.SubTenantMetrics is set.
	MetricInvocations = "gust_function_invocations"
	// MetricColdStarts counts invocations that started a new environment,
	// labelled like MetricInvocations but for outcome.
	MetricColdStarts = "gust_function_cold_starts"
	// MetricInvokeLatency is the provider-level invocation latency.
	MetricInvokeLatency = "gust_function_invoke_latency"
	// MetricQueueWait is how long an invocation that ran waited in the
	// durable queue: from its invoke activity's first schedule to the
	// start of the attempt that got an environment.
	MetricQueueWait = "gust_function_queue_wait"
	// MetricThrottled counts cloud calls refused for a rate or a
	// concurrency limit, labelled api (the SDK's service and operation,
	// like EC2.RunInstances) and reason (rate: Throttled, such as EC2's
	// RequestLimitExceeded; concurrency: TooManyRequests, a function's
	// concurrency limit).
	MetricThrottled = "gust_cloud_throttled"
)

func countLaunched(ctx context.Context, path string, n int) {
	if !activity.IsActivity(ctx) || n == 0 {
		return
	}
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{"path": path}).Counter(MetricInstancesLaunched).Inc(int64(n))
}

// recordInvocation records one attempt of in that started at start and
// ended with outcome: ok or function_error (the function ran) or error (it
// did not).
func (f *Functions) recordInvocation(ctx context.Context, in InvokeFunctionInput, outcome string, coldStart bool, start time.Time) {
	if !activity.IsActivity(ctx) {
		return
	}
	tags := map[string]string{"tenant": providers.TenantOrDefault(in.Tenant), "function": in.Function}
	if f.SubTenantMetrics {
		tags["subtenant"] = in.SubTenant
	}
	h := activity.GetMetricsHandler(ctx).WithTags(tags)
	h.WithTags(map[string]string{"outcome": outcome}).Counter(MetricInvocations).Inc(1)
	if outcome == "error" {
		return
	}
	if coldStart {
		h.Counter(MetricColdStarts).Inc(1)
	}
	h.Timer(MetricInvokeLatency).Record(time.Since(start))
	if scheduled := activity.GetInfo(ctx).ScheduledTime; !scheduled.IsZero() && start.After(scheduled) {
		h.Timer(MetricQueueWait).Record(start.Sub(scheduled))
	}
}

// MeterAccounts returns a that counts (MetricThrottled) and logs every
// throttled call of a tenant's Compute: the provider boundary, where the
// cloud's error codes have already become typed errors.
func MeterAccounts(a providers.Accounts) providers.Accounts { return meteredAccounts{a} }

// MeterFunctions is MeterAccounts for the function provider.
func MeterFunctions(f providers.Functions) providers.Functions { return meteredFunctions{f} }

type meteredAccounts struct{ providers.Accounts }

func (m meteredAccounts) Compute(ctx context.Context, tenant string) (providers.Compute, error) {
	c, err := m.Accounts.Compute(ctx, tenant)
	if err != nil {
		return nil, meter(ctx, "accounts.Compute", err)
	}
	return meteredCompute{c}, nil
}

type meteredCompute struct{ c providers.Compute }

var _ providers.Compute = meteredCompute{}

func (m meteredCompute) Reserve(ctx context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	r, err := m.c.Reserve(ctx, in)
	return r, meter(ctx, "compute.Reserve", err)
}

func (m meteredCompute) CancelReservation(ctx context.Context, id string) error {
	return meter(ctx, "compute.CancelReservation", m.c.CancelReservation(ctx, id))
}

func (m meteredCompute) ListReservations(ctx context.Context, tags map[string]string) ([]providers.Reservation, error) {
	out, err := m.c.ListReservations(ctx, tags)
	return out, meter(ctx, "compute.ListReservations", err)
}

func (m meteredCompute) Run(ctx context.Context, in providers.RunInput) ([]providers.Instance, error) {
	out, err := m.c.Run(ctx, in)
	return out, meter(ctx, "compute.Run", err)
}

func (m meteredCompute) Describe(ctx context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	out, err := m.c.Describe(ctx, f)
	return out, meter(ctx, "compute.Describe", err)
}

func (m meteredCompute) Terminate(ctx context.Context, ids []string) error {
	return meter(ctx, "compute.Terminate", m.c.Terminate(ctx, ids))
}

func (m meteredCompute) InstanceTypes(ctx context.Context) ([]string, error) {
	out, err := m.c.InstanceTypes(ctx)
	return out, meter(ctx, "compute.InstanceTypes", err)
}

func (m meteredCompute) LaunchFleet(ctx context.Context, in providers.FleetLaunchInput) (providers.FleetLaunchResult, error) {
	out, err := m.c.LaunchFleet(ctx, in)
	return out, meter(ctx, "compute.LaunchFleet", err)
}

func (m meteredCompute) DescribeOfferings(ctx context.Context, offerings []providers.Offering) ([]providers.OfferingInfo, error) {
	out, err := m.c.DescribeOfferings(ctx, offerings)
	return out, meter(ctx, "compute.DescribeOfferings", err)
}

func (m meteredCompute) Subnets(ctx context.Context, ids []string) ([]providers.Subnet, error) {
	out, err := m.c.Subnets(ctx, ids)
	return out, meter(ctx, "compute.Subnets", err)
}

type meteredFunctions struct{ f providers.Functions }

var _ providers.Functions = meteredFunctions{}

func (m meteredFunctions) Deploy(ctx context.Context, spec providers.FunctionSpec) (providers.Function, error) {
	out, err := m.f.Deploy(ctx, spec)
	return out, meter(ctx, "functions.Deploy", err)
}

func (m meteredFunctions) Get(ctx context.Context, tenant, name string) (providers.Function, error) {
	out, err := m.f.Get(ctx, tenant, name)
	return out, meter(ctx, "functions.Get", err)
}

func (m meteredFunctions) List(ctx context.Context, tenant string) ([]providers.Function, error) {
	out, err := m.f.List(ctx, tenant)
	return out, meter(ctx, "functions.List", err)
}

func (m meteredFunctions) Delete(ctx context.Context, tenant, name string) error {
	return meter(ctx, "functions.Delete", m.f.Delete(ctx, tenant, name))
}

func (m meteredFunctions) Invoke(ctx context.Context, in providers.InvokeInput) (providers.InvokeResult, error) {
	out, err := m.f.Invoke(ctx, in)
	return out, meter(ctx, "functions.Invoke", err)
}

func (m meteredFunctions) Environments(ctx context.Context, tenant, name string) ([]providers.Environment, error) {
	out, err := m.f.Environments(ctx, tenant, name)
	return out, meter(ctx, "functions.Environments", err)
}

func (m meteredFunctions) Logs(ctx context.Context, tenant, name, subTenant string) (string, error) {
	out, err := m.f.Logs(ctx, tenant, name, subTenant)
	return out, meter(ctx, "functions.Logs", err)
}

// meter counts and logs err if the cloud throttled the call, and returns
// it unchanged. method names the provider method, the api label when the
// error does not name the SDK operation (a fake, an extension endpoint).
func meter(ctx context.Context, method string, err error) error {
	if err == nil || !activity.IsActivity(ctx) {
		return err
	}
	var reason string
	switch {
	case providers.IsThrottled(err):
		reason = "rate"
	case providers.IsTooManyRequests(err):
		reason = "concurrency"
	default:
		return err
	}
	api := method
	// smithy.OperationError, without importing the SDK here.
	var op interface {
		Service() string
		Operation() string
	}
	if errors.As(err, &op) {
		api = op.Service() + "." + op.Operation()
	}
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{"api": api, "reason": reason}).Counter(MetricThrottled).Inc(1)
	info := activity.GetInfo(ctx)
	activity.GetLogger(ctx).Info("cloud call throttled; the activity retries with backoff",
		"API", api, "Reason", reason, "Attempt", info.Attempt, "Error", err)
	return err
}
