package worker

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := New(nil, Options{Functions: fake.NewFunctions()})
	require.ErrorContains(t, err, "compute")
	_, err = New(nil, Options{Compute: fake.NewCompute(), Functions: fake.NewFunctions(), LaunchRate: -1})
	require.ErrorContains(t, err, "launch rate")
}

// TestMetricsServeGustCounters follows a launch through the SDK metrics
// handler that `gust worker` installs to its Prometheus endpoint.
func TestMetricsServeGustCounters(t *testing.T) {
	m := NewMetrics()
	defer m.Close()

	compute := fake.NewCompute()
	compute.SetCapacity("m5.large", 10)
	var s testsuite.WorkflowTestSuite
	s.SetMetricsHandler(m.Handler)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Fleet{Accounts: providers.OneAccount(compute)})
	_, err := env.ExecuteActivity((&activities.Fleet{}).LaunchBurstChunk, activities.LaunchInput{
		FleetID: "f1", InstanceType: "m5.large", MinCount: 3, MaxCount: 3, ClientToken: "f1-burst-0",
	})
	require.NoError(t, err)
	require.NoError(t, m.Close()) // flush the reporter

	rec := httptest.NewRecorder()
	m.HTTP.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, activities.MetricInstancesLaunched) && strings.Contains(l, `path="burst"`) {
			line = l
		}
	}
	require.NotEmpty(t, line, "no %s sample in:\n%s", activities.MetricInstancesLaunched, body)
	require.True(t, strings.HasSuffix(line, " 3"), "want 3 instances counted, got %q", line)
}
