package workflows

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
)

// TestFleetReplaysHistoriesFromBeforeTenants replays fleets recorded by the
// gust of before tenants (no Tenant in any input) with today's workflow: a
// fleet that reached its target, and one that filled, was scaled down and
// cancelled. A change to the commands the workflow makes for such a fleet
// fails here with a nondeterminism error; it needs a workflow.GetVersion.
//
// The histories were recorded with `gust dev` and `gust fleet launch/scale/
// cancel` at the commit before tenants, and exported with
// client.GetWorkflowHistory as the SDK's JSON, gzipped.
func TestFleetReplaysHistoriesFromBeforeTenants(t *testing.T) {
	files, err := filepath.Glob("testdata/fleet-pre-tenants-*.json.gz")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			zr, err := gzip.NewReader(f)
			require.NoError(t, err)
			history, err := client.HistoryFromJSON(zr, client.HistoryJSONOptions{})
			require.NoError(t, err)
			require.NotEmpty(t, history.Events)

			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflow(LaunchFleetWorkflow)
			require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))
		})
	}
}
