package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/workflows"
)

// gust runs the binary to completion and returns stdout, stderr and the
// exit code.
func gust(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	bin := itest.GustBinary(t) // built once, before the command's own clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestCLIUsageErrorsExit2WithOneLine(t *testing.T) {
	closed := "127.0.0.1:" + strconv.Itoa(itest.FreePort(t)) // nothing listens: must fail before dialling
	for _, args := range [][]string{
		{"--bogus"},
		{"nosuchcommand"},
		{"dev", "--bogus"},
		{"dev", "--port", "70000"},
		{"dev", "--cloud-capacity", "m5.large=lots"},
		{"dev", "--launch-rate", "-1"},
		{"dev", "--cloud-cgroup", "/nonexistent"},
		{"dev", "--cloud-cgroup", "/sys/fs/cgroup", "--cloud-no-memory-limits"},
		{"worker", "--address", "no-port-here"},
		{"worker", "--endpoint", "ftp://x"},
		{"worker", "--tenant", "a/b"},
		{"worker", "--tenant", "acme", "--endpoint", "http://127.0.0.1:4566"},
		{"fleet", "launch", "--min", "0", "--target", "1", "-t", "m5.large", "--address", closed},
		{"fleet", "launch", "--min", "5", "--target", "3", "-t", "m5.large", "--address", closed},
		{"fleet", "launch", "--min", "1", "--target", "100001", "-t", "m5.large", "--address", closed},
		{"fleet", "launch", "--min", "1", "--target", "2", "-t", "not a type", "--address", closed},
		{"fleet", "launch", "--target", "2", "-t", "m5.large", "--address", closed},
		{"fleet", "launch", "--min", "1", "--target", "2", "-t", "m5.large", "--output", "yaml", "--address", closed},
		{"fleet", "status", "--address", closed},
		{"fleet", "scale", "f1", "--address", closed},
		{"fleet", "bogus"},
		{"fleet", "list", "--codec-key-file", "/nonexistent/codec.key", "--address", closed},
		{"fn", "deploy", "f", "--tenant", "acme", "--egress", "a b.example.com", "--address", closed},
		{"fn", "deploy", "f", "--tenant", "acme", "--egress", "none,example.com", "--address", closed},
		{"fn", "deploy", "f", "--tenant", "acme", "--ephemeral-storage", "100", "--address", closed},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gust(t, args...)
			require.Equal(t, 2, code, "stdout=%q stderr=%q", stdout, stderr)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			require.True(t, strings.HasPrefix(last, "gust: "), "stderr=%q", stderr)
		})
	}
}

func TestCLIDevPortInUseExit2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, stderr, code := gust(t, "dev", "--ephemeral", "--port", strconv.Itoa(port), "--ui-port", "0", "--cloud-port", "0", "--gateway-port", "0")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--port "+strconv.Itoa(port)+" is not available")
}

// TestCLIDevRestartKeepsHistory runs the binary: `gust dev` serves the Web
// UI and Temporal, stops cleanly on SIGTERM, refuses a second instance on
// the same state, and after a restart finishes a workflow started before it.
func TestCLIDevRestartKeepsHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	state := t.TempDir()
	d := itest.StartDev(t, "--state-dir", state)
	for _, want := range []string{d.Address, d.UI, d.Cloud, state} {
		require.Contains(t, d.Stdout(), want)
	}

	// The Web UI serves its app and reaches Temporal through its API.
	for path, want := range map[string]string{"/": "<!doctype html>", "/api/v1/namespaces": `"default"`} {
		resp, err := http.Get(d.UI + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, strings.ToLower(string(body)), want, path)
	}

	// A second gust dev on the same state is refused, with the reason.
	_, stderr, code := gust(t, "dev", "--state-dir", state, "--port", strconv.Itoa(itest.FreePort(t)), "--ui-port", "0", "--cloud-port", "0", "--gateway-port", "0")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "in use by another process")

	c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cli-restart", TaskQueue: workflows.TaskQueue},
		workflows.PingWorkflow, workflows.PingInput{Message: "survivor", Wait: 5 * time.Second})
	require.NoError(t, err)
	itest.WaitFor(t, 20*time.Second, "workflow never reached its timer", func() bool {
		desc, err := c.DescribeWorkflowExecution(ctx, "cli-restart", "")
		return err == nil && desc.GetWorkflowExecutionInfo().GetHistoryLength() >= 5
	})
	c.Close()
	d.Stop(t)

	d = itest.StartDev(t, "--state-dir", state)
	c, err = client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	var res workflows.PingResult
	require.NoError(t, c.GetWorkflow(ctx, "cli-restart", run.GetRunID()).Get(ctx, &res))
	require.Equal(t, "survivor", res.Message)
	desc, err := c.DescribeWorkflowExecution(ctx, "cli-restart", run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	d.Stop(t)
}

// TestCLIFleetLaunchJSON checks the fixed JSON contract of
// `gust fleet launch --wait --output json`, joining by fleet id, and the
// exit code of an unfulfilled fleet.
func TestCLIFleetLaunchJSON(t *testing.T) {
	d := itest.StartDev(t, "--ephemeral", "--ui-port", "0", "--cloud-capacity", "m5.large=40", "--cloud-boot", "200ms", "--launch-rate", "50")
	defer d.Stop(t)

	stdout, stderr, code := gust(t, "fleet", "launch", "--min", "10", "--target", "15", "-t", "m5.large",
		"--fleet-id", "cli-fleet", "--wait", "--output", "json", "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &res), "stdout must be one JSON object: %q", stdout)
	for _, key := range []string{"fleet_id", "state", "min", "target", "running", "instance_ids", "time_to_min_ms", "time_to_target_ms"} {
		require.Contains(t, res, key)
	}
	require.Equal(t, "cli-fleet", res["fleet_id"])
	require.Equal(t, "fulfilled", res["state"])
	require.EqualValues(t, 15, res["running"])
	require.Len(t, res["instance_ids"], 15)
	require.Positive(t, res["time_to_min_ms"])

	// The same fleet id again joins the finished fleet: nothing new launched.
	stdout2, _, code := gust(t, "fleet", "launch", "--min", "10", "--target", "15", "-t", "m5.large",
		"--fleet-id", "cli-fleet", "--wait", "--output", "json", "--address", d.Address)
	require.Equal(t, 0, code)
	var again map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout2)), &again))
	require.ElementsMatch(t, res["instance_ids"], again["instance_ids"])
	require.Len(t, fleetInstances(context.Background(), t, d.Cloud, "cli-fleet"), 15)

	stdout, _, code = gust(t, "fleet", "status", "cli-fleet", "--output", "json", "--address", d.Address)
	require.Equal(t, 0, code)
	require.Contains(t, stdout, `"state":"fulfilled"`)

	// Only 25 left: a minimum of 30 cannot be met.
	stdout, _, code = gust(t, "fleet", "launch", "--min", "30", "--target", "30", "-t", "m5.large",
		"--fleet-id", "too-big", "--wait", "--output", "json", "--address", d.Address)
	require.Equal(t, 1, code)
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &res))
	require.Equal(t, "insufficient_capacity", res["state"])
	require.Empty(t, allFleetInstances(context.Background(), t, d.Cloud, "too-big"))

	// A fleet asking for more than the 25 left stays open, filling; scaled
	// down to 10, it is fulfilled, and the listing shows the new target,
	// not the one it started with.
	stdout, stderr, code = gust(t, "fleet", "launch", "--min", "2", "--target", "40", "-t", "m5.large",
		"--fleet-id", "scaled", "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	itest.WaitFor(t, 30*time.Second, "scaled to fill what is left", func() bool {
		return len(fleetInstances(context.Background(), t, d.Cloud, "scaled")) >= 10
	})
	stdout, stderr, code = gust(t, "fleet", "scale", "scaled", "--target", "10", "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)

	stdout, _, code = gust(t, "fleet", "list", "--address", d.Address)
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "cli-fleet")
	require.Contains(t, stdout, "too-big")
	stdout, _, code = gust(t, "fleet", "list", "--output", "json", "--address", d.Address)
	require.Equal(t, 0, code)
	var rows []struct {
		FleetID string `json:"fleet_id"`
		Target  int    `json:"target"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &rows), "stdout=%s", stdout)
	targets := map[string]int{}
	for _, r := range rows {
		targets[r.FleetID] = r.Target
	}
	require.Equal(t, 10, targets["scaled"], "the listing shows the target a scale set")
	require.Equal(t, 15, targets["cli-fleet"])
}
