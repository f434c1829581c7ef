package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/workflows"
)

// TestLaunchRateHasOneOwner: the launch rate is the platform's, set on the
// launch queue by gust dev and gust fleet set-rate. A gust worker started
// with another --launch-rate warns and does not change it: the server's
// effective rate stays the platform's. Before, each worker's value changed
// the whole platform's rate (5/s plus one worker at 50 gave 8.9/s).
func TestLaunchRateHasOneOwner(t *testing.T) {
	state := t.TempDir()
	d := itest.StartDev(t, "--state-dir", state, "--ui-port", "0", "--launch-rate", "5")
	defer d.Stop(t)
	setRate := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, code := gust(t, append([]string{"fleet", "set-rate", "-o", "json", "--address", d.Address}, args...)...)
		require.Equal(t, 0, code, stderr)
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		return r
	}
	r := setRate()
	require.Equal(t, 5.0, r["launch_rate"])
	require.Equal(t, "task_queue", r["source"])

	// A worker that asks for 50/s.
	cmd := exec.Command(itest.GustBinary(t), "worker", "--address", d.Address, "--endpoint", d.Cloud, "--launch-rate", "50", "--metrics-port", "0")
	cmd.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+state+"/platform-credentials", "AWS_PROFILE=gust-platform")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	itest.WaitFor(t, 60*time.Second, "the worker starts", func() bool { return strings.Contains(stdout.String(), "gust worker polling") })
	require.Contains(t, stderr.String(), "the platform's launch rate is 5/s")
	require.Contains(t, stderr.String(), "--launch-rate 50 is ignored")
	require.Contains(t, stdout.String(), "launch rate 5/s (the platform's)")

	// The server applies the platform's rate, whatever the worker asks.
	c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	effective := func() float32 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: "default", TaskQueue: &taskqueuepb.TaskQueue{Name: workflows.LaunchTaskQueue},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY, ReportConfig: true,
		})
		require.NoError(t, err)
		require.Equal(t, enumspb.RATE_LIMIT_SOURCE_API, resp.GetEffectiveRateLimit().GetRateLimitSource())
		return resp.GetEffectiveRateLimit().GetRequestsPerSecond() * workflows.FillBatchSize
	}
	require.InDelta(t, 5, effective(), 0.01)

	// set-rate changes it for everyone; fleet list shows it.
	r = setRate("20")
	require.Equal(t, 20.0, r["launch_rate"])
	require.InDelta(t, 20, effective(), 0.01)
	out, _, code := gust(t, "fleet", "list", "--address", d.Address)
	require.Equal(t, 0, code)
	require.Contains(t, out, "Launch rate: 20 instances/s for every worker")

	_, stderrSet, code := gust(t, "fleet", "set-rate", "fast", "--address", d.Address)
	require.Equal(t, 2, code)
	require.Contains(t, stderrSet, "want a positive number")
}
