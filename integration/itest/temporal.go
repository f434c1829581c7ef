package itest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/gust-dev/gust/workflows"
)

// QuietLogger is a Temporal SDK logger that discards everything: the
// tests' clients would otherwise fill their output.
func QuietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// RunFleet runs LaunchFleetWorkflow with in, its workflow id the fleet's
// id, and waits for its result.
func RunFleet(ctx context.Context, t testing.TB, c client.Client, in workflows.LaunchFleetInput) workflows.FleetResult {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
	require.NoError(t, err)
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// InvokeFn invokes the tenant's function name for the sub-tenant sub with
// payload through InvokeWorkflow, with a new request id, and waits for its
// result. It asks for an eager start, which the SDK uses only when a worker
// of c itself polls the task queue.
func InvokeFn(ctx context.Context, c client.Client, tenant, name, sub, payload string) (workflows.InvokeResult, error) {
	in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: tenant, Function: name, SubTenant: sub, Payload: json.RawMessage(payload)}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.InvokeWorkflowID(tenant, name, in.RequestID), TaskQueue: workflows.TaskQueue, EnableEagerStart: true,
	}, workflows.InvokeWorkflow, in)
	if err != nil {
		return workflows.InvokeResult{}, err
	}
	var res workflows.InvokeResult
	err = run.Get(ctx, &res)
	return res, err
}

// HistoryLength is the number of events in the history of workflow id's
// latest run; it fails the test if there are none.
func HistoryLength(ctx context.Context, t testing.TB, c client.Client, id string) int {
	t.Helper()
	n := 0
	for it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); it.HasNext(); n++ {
		_, err := it.Next()
		require.NoError(t, err)
	}
	require.Positive(t, n)
	return n
}

// FleetStatus asks a running fleet for its status (workflows.StatusQuery).
func FleetStatus(ctx context.Context, c client.Client, fleetID string) (workflows.FleetStatus, error) {
	v, err := c.QueryWorkflow(ctx, fleetID, "", workflows.StatusQuery)
	if err != nil {
		return workflows.FleetStatus{}, err
	}
	var st workflows.FleetStatus
	return st, v.Get(&st)
}
