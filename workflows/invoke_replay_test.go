package workflows

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestInvokeReplaysHistoriesFromBeforeTheGateway replays invocations
// recorded by the gust of before the gateway (no MaxQueueWait,
// EventRetries, DryRun, LogTail or Qualifier in any input) with today's
// InvokeWorkflow: a local and a regular activity, a function error, an
// Event, a not-found function, and, in each activity mode, an invocation
// that waited in the queue (five TooManyRequests before it ran). A change
// to the commands the workflow makes for such inputs fails here with a
// nondeterminism error; it needs a workflow.GetVersion.
//
// The histories were recorded with `gust dev --ephemeral` and `gust fn
// invoke` at the commit before issue 8, and exported with
// client.GetWorkflowHistory as protojson, gzipped.
func TestInvokeReplaysHistoriesFromBeforeTheGateway(t *testing.T) {
	files, err := filepath.Glob("testdata/invoke-pre-gateway-*.json.gz")
	require.NoError(t, err)
	require.Len(t, files, 7)
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
			replayer.RegisterWorkflow(InvokeWorkflow)
			require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))

			// The control: a workflow that starts with a timer instead
			// does not replay these histories, so the replay checks.
			changed := worker.NewWorkflowReplayer()
			changed.RegisterWorkflowWithOptions(func(ctx workflow.Context, in InvokeInput) (InvokeResult, error) {
				if err := workflow.Sleep(ctx, time.Second); err != nil {
					return InvokeResult{}, err
				}
				return InvokeWorkflow(ctx, in)
			}, workflow.RegisterOptions{Name: "InvokeWorkflow"})
			require.Error(t, changed.ReplayWorkflowHistory(nil, history))
		})
	}
}
