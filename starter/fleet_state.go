package main

import (
	"context"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/workflows"
)

// A fleet's state is one of the workflows.Phase constants wherever gust
// shows it: `fleet status`, `fleet list` and `fleet launch` all name it
// "state". Two more values describe a workflow someone ended from outside
// gust, which leaves no result to read the state from.
const (
	// stateTerminated is a fleet whose workflow was terminated (the Web UI,
	// `temporal workflow terminate`): it cleaned nothing up.
	stateTerminated = "terminated"
	// stateTimedOut is a fleet whose workflow hit an execution timeout.
	stateTimedOut = "timed_out"
)

// stateQueryTimeout bounds the status query that reads a running fleet's
// state: the answer comes from a worker, and without one the query would
// wait for the caller's whole deadline.
const stateQueryTimeout = 3 * time.Second

// fleetState returns the state of fleet wfID, whose latest run has status
// st: a running fleet's phase (from its status query), a closed fleet's
// result state (fulfilled, insufficient_capacity, cancelled, failed), or
// stateTerminated or stateTimedOut. It is "" when the state cannot be read:
// the query of a running fleet got no answer in stateQueryTimeout.
func fleetState(ctx context.Context, cl client.Client, wfID string, st enumspb.WorkflowExecutionStatus) string {
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return stateTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return stateTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		ctx, cancel := context.WithTimeout(ctx, stateQueryTimeout)
		defer cancel()
		s, err := queryFleet(ctx, cl, wfID)
		if err != nil {
			return ""
		}
		return s.Phase
	}
	// Completed, failed or cancelled (the cancel update completes the
	// workflow; a cancellation from the Web UI cancels it): the result,
	// or the details of its failure, say which.
	res, err := fleetOutcome(ctx, cl, wfID)
	if err != nil {
		return ""
	}
	return res.State
}

// fleetStates reads the states of many fleets, a few at a time, each as
// fleetState does; states[i] belongs to ids[i].
func fleetStates(ctx context.Context, cl client.Client, ids []string, statuses []enumspb.WorkflowExecutionStatus) []string {
	states := make([]string, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			states[i] = fleetState(ctx, cl, ids[i], statuses[i])
		}()
	}
	wg.Wait()
	return states
}

// launchedState is the state `fleet launch` reports for the fleet it
// started or joined (run): validating for a new fleet (the phase every
// fleet starts in), else what fleetState reads. runID is the run started
// or joined, the last one of a joined fleet that has already ended
// (closed).
func launchedState(ctx context.Context, cl client.Client, wfID string, run client.WorkflowRun, joined bool) (state, runID string, closed bool) {
	if !joined {
		return workflows.PhaseValidating, run.GetRunID(), false
	}
	d, err := cl.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		return "", run.GetRunID(), false
	}
	info := d.GetWorkflowExecutionInfo()
	st := info.GetStatus()
	return fleetState(ctx, cl, wfID, st), info.GetExecution().GetRunId(), st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// optString is s, or nil (JSON null) when s is empty.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
