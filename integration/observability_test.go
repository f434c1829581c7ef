package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/workflows"
)

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

// seriesValue is the value of the first series of family whose labels
// include every one of labels; -1 if there is none.
func seriesValue(body, family string, labels ...string) float64 {
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
			v, _ := strconv.ParseFloat(l[strings.LastIndex(l, " ")+1:], 64)
			return v
		}
	}
	return -1
}

// TestWorkerMetricsAndProgressLogs runs `gust worker --log-level info` as a
// process, has it launch a fleet whose burst the cloud throttles and run a
// function, and scrapes its /metrics and the cloud's: the new series are
// there with their labels, every family explains itself in its HELP, the
// task_queue label is the queue's real name, and the worker logged the
// fleet's progress and the throttles.
func TestWorkerMetricsAndProgressLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	code := itest.EchoHandler(t)
	s, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 100}}
		// One RunInstances at a time, two a second: the burst's parallel
		// chunks are throttled, then retried.
		cfg.EC2.RequestBucket = 1
		cfg.EC2.RequestRefill = 2
	})

	_, stderr, rc := gust(t, "worker", "--address", s.FrontendAddress(), "--log-level", "verbose")
	require.Equal(t, 2, rc, stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	require.Contains(t, stderr, "--log-level")

	metricsPort := itest.FreePort(t)
	cmd := exec.Command(itest.GustBinary(t), "worker", "--address", s.FrontendAddress(), "--endpoint", cloud.Endpoint(),
		"--metrics-port", strconv.Itoa(metricsPort), "--log-level", "info")
	cmd.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+platformCredentialsFile(t, cloud.Endpoint()), "AWS_PROFILE=gust-platform")
	logs := &itest.SyncBuffer{}
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	workerMetrics := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"

	res := itest.RunFleet(ctx, t, c, workflows.LaunchFleetInput{
		FleetID: "observed", InstanceType: "m5.large", Min: 4, Target: 4, Burst: true,
		Tuning: workflows.FleetTuning{BurstChunk: 1},
	})
	require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)
	deployFn(ctx, t, c, "acme", "echo", code)
	for range 2 {
		_, err := itest.InvokeFn(ctx, c, "acme", "echo", "cust-1", `{}`)
		require.NoError(t, err)
	}

	var body string
	itest.WaitFor(t, 30*time.Second, "the worker's metrics never showed the work", func() bool {
		body = httpGet(t, workerMetrics)
		return seriesValue(body, "gust_function_invocations_total", `function="echo"`, `outcome="ok"`) == 2
	})
	require.Greater(t, seriesValue(body, "gust_cloud_throttled_total", `api="EC2.RunInstances"`, `reason="rate"`), 0.0, body)
	require.Equal(t, 4.0, seriesValue(body, "gust_fleet_instances_launched_total", `path="burst"`), body)
	require.Equal(t, 2.0, seriesValue(body, "gust_function_invocations_total", `tenant="acme"`, `function="echo"`, `outcome="ok"`), body)
	require.Equal(t, 1.0, seriesValue(body, "gust_function_cold_starts_total", `tenant="acme"`, `function="echo"`), body)
	require.Equal(t, 2.0, seriesValue(body, "gust_function_queue_wait_seconds_count", `function="echo"`), body)
	require.GreaterOrEqual(t, seriesValue(body, "gust_function_queue_wait_seconds_bucket", `function="echo"`, `le="+Inf"`), 2.0, body)
	require.Equal(t, 0.0, seriesValue(body, "gust_fleets_in_flight", `phase="filling"`), "the fleet has ended")
	require.NotContains(t, body, `subtenant=`, "the sub-tenant label is opt-in")
	require.Contains(t, body, `task_queue="`+workflows.LaunchTaskQueue+`"`)
	require.Contains(t, body, `task_queue="`+workflows.TaskQueue+`"`)
	require.NotContains(t, body, `task_queue="gust_launch"`)
	helps := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# HELP (\S+) (.*)$`).FindAllStringSubmatch(body, -1) {
		helps[m[1]] = m[2]
	}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(body, -1) {
		require.NotEmpty(t, helps[m[1]], "no HELP for %s", m[1])
		require.NotRegexp(t, `^\S+ (counter|gauge|histogram|summary)$`, helps[m[1]], "the HELP of %s does not explain it", m[1])
	}
	require.Contains(t, helps, "temporal_activity_execution_latency_seconds", "the SDK's metrics are served too")

	// The worker logged the fleet's progress at info.
	out := logs.String()
	for _, want := range []string{"fleet phase changed", "To=bursting", "To=fulfilled", "cloud call throttled", "API=EC2.RunInstances"} {
		require.Contains(t, out, want)
	}

	// The cloud counts its environments itself, for an operator's metrics
	// listener (gust dev's and gust cloud's --metrics-port): never on the
	// cloud's own port, where any tenant could list every tenant's
	// functions.
	resp, err := http.Get(cloud.Endpoint() + "/metrics")
	require.NoError(t, err)
	public, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NotContains(t, string(public), "gust_lambda_environments", "the cloud's port serves no metrics")
	require.NotContains(t, string(public), `tenant="acme"`)
	reg := prometheus.NewRegistry()
	reg.MustRegister(cloud.Collector())
	operator := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer operator.Close()
	cloudBody := httpGet(t, operator.URL+"/metrics")
	require.Equal(t, 1.0, seriesValue(cloudBody, "gust_lambda_environments", `function="echo"`, `state="idle"`, `tenant="acme"`), cloudBody)
	require.Regexp(t, `(?m)^# HELP gust_lambda_environments \S+ \S+`, cloudBody)
}

// TestFnReadsStartNoWorkflows: gust fn list, envs and logs read the cloud
// as the tenant; run many times they leave the number of workflow
// executions where it was. fn logs tells stdout from stderr, shows a
// REPORT line per invocation, and with -o json prints one object per line.
func TestFnReadsStartNoWorkflows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	itest.GustBinary(t) // build before the platform starts
	code := itest.EchoHandler(t)
	p := startPlatform(t, 100)
	c := p.Client()
	deployFn(ctx, t, c, "acme", "echo", code)
	res, err := itest.InvokeFn(ctx, c, "acme", "echo", "cust 1", `{"stdout":"out-marker","stderr":"err-marker"}`)
	require.NoError(t, err)
	require.Nil(t, res.FunctionError)
	// The CLI finds the cloud and the tenant's key as it would beside a
	// gust dev: in its state directory.
	t.Setenv("GUST_ENDPOINT", p.Cloud().Endpoint())
	t.Setenv("GUST_STATE_DIR", filepath.Dir(p.RegistryFile()))

	// executions counts the namespace's executions once visibility has
	// caught up with a sentinel started after everything before it.
	executions := func() int64 {
		t.Helper()
		id := "sentinel-" + uuid.NewString()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.PingWorkflow, workflows.PingInput{Message: "count"})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil))
		var n int64
		itest.WaitFor(t, 30*time.Second, "visibility never listed the sentinel", func() bool {
			seen, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: "WorkflowId = '" + id + "'"})
			require.NoError(t, err)
			if seen.GetCount() != 1 {
				return false
			}
			all, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default"})
			require.NoError(t, err)
			n = all.GetCount()
			return true
		})
		return n
	}
	before := executions()
	const rounds = 5
	for range rounds {
		stdout, stderr, rc := gust(t, "fn", "list", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, `"name":"echo"`)
		stdout, stderr, rc = gust(t, "fn", "envs", "echo", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, `"subtenant":"cust 1"`)
		_, stderr, rc = gust(t, "fn", "logs", "echo", "--tenant", "acme", "--subtenant", "cust 1")
		require.Equal(t, 0, rc, stderr)
	}
	require.Equal(t, before+1, executions(), "%d reads started workflows; only the sentinel may count", 3*rounds)

	// Text: the function's stdout and Lambda's lines on stdout, its stderr
	// on stderr.
	stdout, stderr, rc := gust(t, "fn", "logs", "echo", "--tenant", "acme", "--subtenant", "cust 1")
	require.Equal(t, 0, rc, stderr)
	require.Contains(t, stdout, "out-marker")
	require.NotContains(t, stdout, "err-marker")
	require.Contains(t, stderr, "err-marker")
	require.Regexp(t, `(?m)^\S+Z env-\S+ REPORT RequestId: \S+\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB\tInit Duration: \d+\.\d\d ms\tTenantId: cust 1$`, stdout)

	// JSON: one object per line with the documented fields.
	stdout, stderr, rc = gust(t, "fn", "logs", "echo", "--tenant", "acme", "--subtenant", "cust 1", "-o", "json")
	require.Equal(t, 0, rc, stderr)
	streams := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		for _, k := range []string{"timestamp", "request_id", "tenant", "subtenant", "stream", "message"} {
			require.Contains(t, ev, k, sc.Text())
		}
		require.Equal(t, "acme", ev["tenant"])
		require.Equal(t, "cust 1", ev["subtenant"])
		msg := ev["message"].(string)
		if msg == "out-marker" || msg == "err-marker" || strings.HasPrefix(msg, "REPORT ") {
			streams[strings.Fields(msg)[0]] = ev["stream"].(string)
			require.NotEmpty(t, ev["request_id"], sc.Text())
		}
	}
	require.Equal(t, map[string]string{"out-marker": "stdout", "err-marker": "stderr", "REPORT": "platform"}, streams)

	// Another tenant's function is not found, as on every other path.
	_, stderr, rc = gust(t, "fn", "envs", "echo", "--tenant", "globex")
	require.Equal(t, 1, rc, stderr)
	require.Contains(t, stderr, "function echo not found for tenant globex")
	_, stderr, rc = gust(t, "fn", "list", "--tenant", "nobody")
	require.Equal(t, 2, rc, stderr)
	require.Contains(t, stderr, "not in the registry")
}
