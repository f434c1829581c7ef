package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
)

// TestCLIFleetLaunchRejectsAnUnknownInstanceType: a type the cloud does
// not offer is a usage error (exit 2, one line) and nothing starts: no
// fleet workflow, no reservation, no instance. Before, the launch exited 0
// and the fleet failed later.
func TestCLIFleetLaunchRejectsAnUnknownInstanceType(t *testing.T) {
	state := t.TempDir()
	d := itest.StartDev(t, "--state-dir", state, "--ui-port", "0", "--cloud-capacity", "m5.large=10")
	defer d.Stop(t)

	stdout, stderr, code := gust(t, "fleet", "launch", "--min", "1", "--target", "2", "-t", "m9.huge", "--fleet-id", "huge",
		"--address", d.Address, "--endpoint", d.Cloud, "--state-dir", state)
	require.Equal(t, 2, code, "stdout=%s stderr=%s", stdout, stderr)
	require.Contains(t, stderr, "instance type m9.huge is not offered by the cloud at "+d.Cloud)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)

	c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{})
	require.NoError(t, err)
	for _, e := range resp.GetExecutions() {
		require.NotContains(t, e.GetExecution().GetWorkflowId(), "huge", "a workflow started for the rejected fleet")
	}

	// A type the cloud offers passes the same check.
	stdout, stderr, code = gust(t, "fleet", "launch", "--min", "1", "--target", "2", "-t", "m5.large", "--fleet-id", "fits",
		"--address", d.Address, "--endpoint", d.Cloud, "--state-dir", state, "--wait", "--timeout", "60s")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	require.NotContains(t, stderr, "not checked")
}
