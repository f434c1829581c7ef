package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/workflows"
)

// gustTimed runs the binary and also returns how long it took.
func gustTimed(t *testing.T, args ...string) (string, string, int, time.Duration) {
	t.Helper()
	itest.GustBinary(t) // built once, not on the clock
	start := time.Now()
	stdout, stderr, code := gust(t, args...)
	return stdout, stderr, code, time.Since(start)
}

// TestCLINoWorkerSaysSoInOneLine runs every command that needs a worker
// against a real embedded server that has none: each fails at once with
// one line naming the address and the task queue and how to start a
// worker, exits 1, stays within its deadline plus 2 s, and starts nothing.
func TestCLINoWorkerSaysSoInOneLine(t *testing.T) {
	srv, c := startServer(t)
	addr := srv.FrontendAddress()
	code := filepath.Join(t.TempDir(), "bootstrap")
	require.NoError(t, os.WriteFile(code, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	t.Setenv("GUST_STATE_DIR", t.TempDir()) // no codec key of this machine's gust dev

	for _, tc := range []struct {
		args     string
		deadline time.Duration // the command's own, or its default
	}{
		{"fleet launch --min 1 --target 1 -t m5.large --fleet-id nw --wait --timeout 3s", 3 * time.Second},
		{"fleet launch --min 1 --target 1 -t m5.large --fleet-id nw", 5 * time.Minute},
		{"fleet status nw", time.Minute},
		{"fleet scale nw --target 2", 5 * time.Minute},
		{"fleet cancel nw", 5 * time.Minute},
		{"fn deploy f --tenant acme --code " + code, 5 * time.Minute},
		{"fn invoke f --tenant acme --subtenant s --deadline 3s", 3 * time.Second},
		{"fn invoke f --tenant acme --subtenant s --async", 5 * time.Minute},
		// fn list, envs and logs read the cloud, not Temporal: they need
		// no worker (TestFnReadsStartNoWorkflows).
		{"fn delete f --tenant acme", 5 * time.Minute},
	} {
		t.Run(tc.args, func(t *testing.T) {
			stdout, stderr, rc, took := gustTimed(t, append(strings.Fields(tc.args), "--address", addr)...)
			require.Equal(t, 1, rc, "stdout=%q stderr=%q", stdout, stderr)
			require.Empty(t, stdout)
			// The error is the last line; notes from checks before it
			// (fleet launch's instance type) may precede it.
			require.Equal(t, `gust: no gust worker polls task queue "gust" on `+addr+"; start one with: gust worker --address "+addr, lastLine(stderr), stderr)
			require.Less(t, took, tc.deadline+2*time.Second)
		})
	}

	resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{})
	require.NoError(t, err)
	require.Empty(t, resp.GetExecutions(), "a refused command starts nothing")
}

// TestCLIDeadlinesHoldWithAStuckWorker: a worker polls but never gets a
// workflow through (it knows none of gust's). Each command with a deadline
// flag returns within it plus 2 s, exits 1 and says it timed out, with no
// transport error and no failure for a fleet that did not fail.
func TestCLIDeadlinesHoldWithAStuckWorker(t *testing.T) {
	srv, c := startServer(t)
	addr := srv.FrontendAddress()
	nothing := func(workflow.Context) error { return nil }
	for _, q := range []string{workflows.TaskQueue, workflows.LaunchTaskQueue} {
		w := sdkworker.New(c, q, sdkworker.Options{})
		w.RegisterWorkflowWithOptions(nothing, workflow.RegisterOptions{Name: "NotGust"})
		w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "NotGust"})
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
	}

	_, stderr, rc, took := gustTimed(t, "fn", "invoke", "f", "--tenant", "acme", "--subtenant", "s", "--deadline", "3s", "--address", addr)
	require.Equal(t, 1, rc, stderr)
	require.Less(t, took, 5*time.Second)
	require.Equal(t, "gust: fn invoke: no answer within --deadline 3s\n", stderr)

	stdout, stderr, rc, took := gustTimed(t, "fleet", "launch", "--min", "1", "--target", "1", "-t", "m5.large", "--fleet-id", "stuck",
		"--wait", "--timeout", "3s", "--address", addr)
	require.Equal(t, 1, rc, "stdout=%q stderr=%q", stdout, stderr)
	require.Less(t, took, 5*time.Second)
	require.NotRegexp(t, `fleet \S+ failed`, stdout+stderr, "the fleet did not fail")
	require.NotContains(t, stdout+stderr, "RST_STREAM")
	require.Contains(t, lastLine(stderr), "--timeout 3s", "it says, in one line, that it stopped waiting: %q", stderr)
}

// lastLine is the last line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
