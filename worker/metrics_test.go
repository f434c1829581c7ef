package worker

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
	"github.com/gust-dev/gust/workflows"
)

// scrape serves m's /metrics once.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.HTTP.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

// sample returns the value of the one series of family whose labels
// include every one of labels, "" if there is none.
func sample(body, family string, labels ...string) string {
	for _, l := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(l, "{")
		if !ok || name != family {
			continue
		}
		all := true
		for _, want := range labels {
			all = all && strings.Contains(rest, want)
		}
		if all {
			return l[strings.LastIndex(l, " ")+1:]
		}
	}
	return ""
}

// TestMetricsAfterRealWork runs a throttled fill round and two
// invocations through the activities as a worker registers them, then
// scrapes /metrics: the new series are there with their labels, and every
// family has a HELP text that explains it (not the tally reporter's
// "<name> counter").
func TestMetricsAfterRealWork(t *testing.T) {
	for _, subTenantLabel := range []bool{false, true} {
		m := NewMetrics()
		var s testsuite.WorkflowTestSuite
		s.SetMetricsHandler(m.Handler)

		compute := fake.NewCompute()
		compute.SetCapacity("m5.large", 10)
		compute.FailNext(fake.MethodRun, providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)")))
		fns := fake.NewFunctions()
		_, err := fns.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "echo", Zip: []byte("zip"), Tenancy: providers.TenancyPerTenant})
		require.NoError(t, err)

		// As worker.New wires them.
		// The SDK tags everything with the task queue's name, as here.
		m.Handler.WithTags(map[string]string{"task_queue": workflows.LaunchTaskQueue}).Counter("queue_probe").Inc(1)

		opts := Options{Accounts: activities.MeterAccounts(providers.OneAccount(compute)), Functions: activities.MeterFunctions(fns), SubTenantMetrics: subTenantLabel}
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(&activities.Fleet{Accounts: opts.Accounts})
		env.RegisterActivity(&activities.Functions{Functions: opts.Functions, SubTenantMetrics: opts.SubTenantMetrics})
		_, err = env.ExecuteActivity((&activities.Fleet{}).LaunchFill, activities.LaunchInput{
			FleetID: "f1", InstanceType: "m5.large", MinCount: 1, MaxCount: 3, ClientToken: "f1-fill-0",
		})
		require.ErrorContains(t, err, "Throttled")
		for range 2 {
			_, err = env.ExecuteActivity((&activities.Functions{}).InvokeFunction, activities.InvokeFunctionInput{
				RequestID: "r", Tenant: "acme", Function: "echo", SubTenant: "cust-1", Payload: []byte(`{}`),
			})
			require.NoError(t, err)
		}
		require.NoError(t, m.Close()) // flush the reporter
		body := scrape(t, m)

		require.Equal(t, "1", sample(body, "gust_cloud_throttled_total", `api="compute.Run"`, `reason="rate"`), body)
		require.Equal(t, "2", sample(body, "gust_function_invocations_total", `tenant="acme"`, `function="echo"`, `outcome="ok"`), body)
		require.Equal(t, "1", sample(body, "gust_function_cold_starts_total", `function="echo"`), body)
		require.Equal(t, "2", sample(body, "gust_function_queue_wait_seconds_count", `function="echo"`), body)
		require.NotEmpty(t, sample(body, "gust_function_queue_wait_seconds_bucket", `le="600"`), "queue wait is a histogram")
		require.Equal(t, subTenantLabel, strings.Contains(body, `subtenant="cust-1"`), "the subtenant label is opt-in")
		for _, phase := range []string{"validating", "reserving", "bursting", "filling"} {
			require.NotEmpty(t, sample(body, "gust_fleets_in_flight", `phase="`+phase+`"`), body)
		}

		// The queue's real name, not the sanitized one the SDK's options
		// would make of it (gust_launch).
		require.Contains(t, body, `task_queue="`+workflows.LaunchTaskQueue+`"`)

		help := regexp.MustCompile(`(?m)^# HELP (\S+) (.*)$`)
		families := regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(body, -1)
		helps := map[string]string{}
		for _, h := range help.FindAllStringSubmatch(body, -1) {
			helps[h[1]] = h[2]
		}
		for _, f := range families {
			if f[1] == "queue_probe_total" {
				continue
			}
			h := helps[f[1]]
			require.NotEmpty(t, h, "no HELP for %s", f[1])
			require.NotRegexp(t, `^\S+ (counter|gauge|histogram|summary)$`, h, "HELP of %s does not explain it", f[1])
		}
		for _, name := range []string{"gust_cloud_throttled_total", "gust_function_queue_wait_seconds", "gust_fleets_in_flight", "gust_function_invocations_total"} {
			require.Contains(t, helps, name)
		}
	}
}
