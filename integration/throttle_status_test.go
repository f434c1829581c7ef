package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/integration/itest"
)

// TestCLIFleetStatusShowsThrottledLaunches: a burst larger than the
// cloud's RunInstances resource bucket (1000 instances, refilling at 2 a
// second, as on AWS) has chunks the cloud throttles and Temporal retries.
// `gust fleet status` shows them, with the last error and the next
// attempt, in text and JSON; before, it showed no message and nothing
// pending.
func TestCLIFleetStatusShowsThrottledLaunches(t *testing.T) {
	d := itest.StartDev(t, "--ephemeral", "--ui-port", "0", "--cloud-capacity", "m5.large=2000")
	defer d.Stop(t)
	stdout, stderr, code := gust(t, "fleet", "launch", "--min", "1500", "--target", "1500", "-t", "m5.large",
		"--fleet-id", "throttled", "--address", d.Address, "--endpoint", d.Cloud)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)

	type retry struct {
		Activity      string     `json:"activity"`
		Attempt       int        `json:"attempt"`
		Throttled     bool       `json:"throttled"`
		LastError     string     `json:"last_error"`
		NextAttemptAt *time.Time `json:"next_attempt_at"`
	}
	var got []retry
	itest.WaitFor(t, 60*time.Second, "a throttled burst chunk in fleet status", func() bool {
		out, _, code := gust(t, "fleet", "status", "throttled", "-o", "json", "--address", d.Address)
		if code != 0 {
			return false
		}
		var st struct {
			Retrying []retry `json:"retrying"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &st), out)
		got = st.Retrying
		for _, r := range got {
			if r.Throttled && r.Attempt > 1 {
				return true
			}
		}
		return false
	})
	var r retry
	for _, x := range got {
		if x.Throttled {
			r = x
		}
	}
	require.Equal(t, "LaunchBurstChunk", r.Activity)
	require.Contains(t, r.LastError, "RequestLimitExceeded")

	text, _, code := gust(t, "fleet", "status", "throttled", "--address", d.Address)
	require.Equal(t, 0, code)
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "Retrying") {
			line = l
		}
	}
	require.Contains(t, line, "throttled", text)
	require.Contains(t, line, "RequestLimitExceeded", text)

	_, _, code = gust(t, "fleet", "cancel", "throttled", "--address", d.Address)
	require.Equal(t, 0, code)
}
