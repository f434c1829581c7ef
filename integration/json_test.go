package integration

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
)

// The one JSON style of docs/cli.md: snake_case names, durations in *_ms,
// null for unset times, the fleet's state as "state".

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// requireJSONStyle decodes stdout as one JSON value and checks every key in
// it, at any depth, and every time. It returns the value.
func requireJSONStyle(t *testing.T, stdout string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &v), "one JSON value: %q", stdout)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				require.Regexp(t, snakeKey, k, "%s: key %q is not snake_case in %s", path, k, stdout)
				require.False(t, strings.HasSuffix(k, "_ns"), "%s: %q: durations are *_ms in %s", path, k, stdout)
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path+"[]", e)
			}
		case string:
			require.NotContains(t, v, "0001-01-01", "%s: an unset time is null in %s", path, stdout)
		}
	}
	walk("$", v)
	return v
}

func sortedKeys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "an object: %v", v)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestCLIFleetJSONStyle runs every fleet command with --output json against
// `gust dev` and holds each to the one style: scale and cancel in
// snake_case, status with its state, times in ms and nulls, list with the
// fleet's state (a cancelled fleet never "completed"), and a relaunch of a
// finished fleet that says how it ended instead of "started". The Web UI
// shows the workflow's input with the same names.
func TestCLIFleetJSONStyle(t *testing.T) {
	d := itest.StartDev(t, "--ephemeral", "--ui-port", "0", "--cloud-capacity", "m5.large=20", "--cloud-boot", "100ms", "--launch-rate", "50")
	defer d.Stop(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return gust(t, append(append([]string{"fleet"}, args...), "--address", d.Address)...)
	}

	// --on-lost fail: a fleet that ends at its target, so that launching
	// it again below joins a finished fleet (a maintained one never ends).
	stdout, stderr, code := run("launch", "--min", "2", "--target", "3", "-t", "m5.large", "--fleet-id", "js-done", "--on-lost", "fail", "--wait", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	res := requireJSONStyle(t, stdout).(map[string]any)
	require.Equal(t, "fulfilled", res["state"])
	require.Equal(t, "default", res["tenant"], "the tenant is named")

	// 17 instances are left: a target of 40 keeps the fleet filling.
	stdout, stderr, code = run("launch", "--min", "2", "--target", "40", "-t", "m5.large", "--fleet-id", "js-fill", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	launched := requireJSONStyle(t, stdout)
	require.Equal(t, []string{"fleet_id", "joined", "run_id", "state", "tenant"}, sortedKeys(t, launched))
	require.Equal(t, "validating", launched.(map[string]any)["state"], "a new fleet's first phase, not \"started\"")
	require.Equal(t, false, launched.(map[string]any)["joined"])

	var status map[string]any
	itest.WaitFor(t, 60*time.Second, "js-fill to reach its minimum", func() bool {
		stdout, _, code := run("status", "js-fill", "--output", "json")
		if code != 0 {
			return false
		}
		status = requireJSONStyle(t, stdout).(map[string]any)
		return status["min_reached_at"] != nil && status["launched"].(float64) >= 10
	})
	require.Equal(t, "filling", status["state"])
	require.NotContains(t, status, "phase")
	require.Contains(t, status, "target_reached_at")
	require.Nil(t, status["target_reached_at"], "not reached: null")
	require.Positive(t, status["time_to_min_ms"])
	require.Equal(t, "default", status["tenant"])

	stdout, stderr, code = run("scale", "js-fill", "--target", "30", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	scaled := requireJSONStyle(t, stdout)
	require.Equal(t, []string{"launched", "previous_target", "target"}, sortedKeys(t, scaled))
	require.EqualValues(t, 40, scaled.(map[string]any)["previous_target"])
	require.EqualValues(t, 30, scaled.(map[string]any)["target"])

	stdout, stderr, code = run("cancel", "js-fill", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	cancelled := requireJSONStyle(t, stdout)
	require.Equal(t, []string{"kept", "terminated"}, sortedKeys(t, cancelled))
	require.Positive(t, cancelled.(map[string]any)["terminated"])
	require.EqualValues(t, 0, cancelled.(map[string]any)["kept"])

	stdout, stderr, code = run("list", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	rows := requireJSONStyle(t, stdout).([]any)
	states := map[string]any{}
	for _, r := range rows {
		require.Equal(t, []string{"fleet_id", "instance_type", "min", "started", "state", "target", "tenant"}, sortedKeys(t, r))
		states[r.(map[string]any)["fleet_id"].(string)] = r.(map[string]any)["state"]
	}
	require.Equal(t, map[string]any{"js-done": "fulfilled", "js-fill": "cancelled"}, states)
	stdout, _, code = run("list")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, "STATE")
	require.Contains(t, stdout, "cancelled")
	require.NotContains(t, stdout, "completed")

	// Launching a finished fleet again joins it and says how it ended.
	stdout, stderr, code = run("launch", "--min", "2", "--target", "3", "-t", "m5.large", "--fleet-id", "js-done")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	require.Contains(t, stdout, "already ended")
	require.Contains(t, stdout, "fulfilled")
	require.NotContains(t, stdout, "started")
	stdout, _, code = run("launch", "--min", "2", "--target", "3", "-t", "m5.large", "--fleet-id", "js-done", "--output", "json")
	require.Equal(t, 0, code)
	again := requireJSONStyle(t, stdout).(map[string]any)
	require.Equal(t, true, again["joined"])
	require.Equal(t, "fulfilled", again["state"])
	stdout, _, code = run("launch", "--min", "2", "--target", "40", "-t", "m5.large", "--fleet-id", "js-fill", "--output", "json")
	require.Equal(t, 1, code, "a cancelled fleet did not reach its target")
	require.Equal(t, "cancelled", requireJSONStyle(t, stdout).(map[string]any)["state"])

	// What the Web UI shows: the workflow's input and its activities'
	// inputs, in the same snake_case.
	c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	it := c.GetWorkflowHistory(context.Background(), "js-done", "", false, 0)
	var inputs []string
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			inputs = append(inputs, string(a.GetInput().GetPayloads()[0].GetData()))
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			inputs = append(inputs, string(a.GetInput().GetPayloads()[0].GetData()))
		}
	}
	require.Greater(t, len(inputs), 2)
	require.Contains(t, inputs[0], `"fleet_id":"js-done"`)
	require.Contains(t, inputs[0], `"instance_type":"m5.large"`)
	for _, in := range inputs {
		requireJSONKeysSnake(t, in)
	}
}

// requireJSONKeysSnake checks the keys of a payload, which may hold
// Duration fields in *_ns.
func requireJSONKeysSnake(t *testing.T, data string) {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(data), &v))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "tags" {
					continue // instance tags are the user's
				}
				require.Regexp(t, snakeKey, k, "in %s", data)
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
}

// TestCLIBenchFleetJSON: `gust bench fleet --output json` prints one
// object, in the style of the other commands, and its progress on stderr.
func TestCLIBenchFleetJSON(t *testing.T) {
	stdout, stderr, code := gust(t, "bench", "fleet", "--min", "2", "--target", "3", "--launch-rate", "100", "--boot", "10ms", "--large", "0", "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(stdout), "\n")+1, "one line: %q", stdout)
	res := requireJSONStyle(t, stdout).(map[string]any)
	for _, k := range []string{"min", "target", "launch_rate_per_s", "boot_ms", "runs", "time_to_min_ratio", "time_to_target_ratio", "peak_rss_bytes"} {
		require.Contains(t, res, k)
	}
	var names []string
	for _, r := range res["runs"].([]any) {
		run := r.(map[string]any)
		names = append(names, run["name"].(string))
		require.Positive(t, run["time_to_min_ms"])
		require.Positive(t, run["time_to_target_ms"])
	}
	require.Equal(t, []string{"burst", "no-burst"}, names)
	require.Contains(t, stderr, "burst vs no-burst", "progress goes to stderr")
}
