package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/workflows"
)

// fulfilledPollInterval is how often `fleet launch --wait` asks a
// maintained fleet whether it has reached its target.
const fulfilledPollInterval = 400 * time.Millisecond

// waitVerdict is what one status of a maintained fleet means to
// `fleet launch --wait`.
type waitVerdict int

const (
	// waitOn: the fleet is still on its way to the target.
	waitOn waitVerdict = iota
	// waitFulfilled: the target runs. The workflow goes on maintaining it,
	// so the wait ends here, with the status as the result.
	waitFulfilled
	// waitForResult: the fleet ended (or is ending) short of a maintained
	// target; its workflow's result says how, as it does without
	// maintenance.
	waitForResult
)

// maintainedVerdict decides the wait from a maintained fleet's state.
func maintainedVerdict(state string) waitVerdict {
	switch state {
	case workflows.PhaseFulfilled:
		return waitFulfilled
	case workflows.PhaseInsufficientCapacity, workflows.PhaseCancelled, workflows.PhaseFailed:
		return waitForResult
	}
	return waitOn
}

// awaitFleet waits, for `fleet launch --wait`, until fleet wfID is done
// and returns its outcome. A fleet with OnLostFail is done when its
// workflow ends (fleetOutcome). A maintained fleet's workflow goes on after
// reaching its target, so it is done when its status says fulfilled, or
// when the workflow ends, whichever comes first; maintaining reports the
// former, whose result is built from the status (statusResult). Errors are
// fleetOutcome's: ctx's deadline and lost connections are errors, never a
// failed fleet. A status query that fails is asked again at the next tick;
// ctx bounds the wait.
func awaitFleet(ctx context.Context, cl client.Client, wfID string, maintained bool) (res workflows.FleetResult, maintaining bool, err error) {
	if !maintained {
		res, err = fleetOutcome(ctx, cl, wfID)
		return res, false, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		res workflows.FleetResult
		err error
	}
	closed := make(chan outcome, 1) // buffered: the goroutine never blocks after we return
	go func() {
		res, err := fleetOutcome(ctx, cl, wfID)
		closed <- outcome{res, err}
	}()
	tick := time.NewTicker(fulfilledPollInterval)
	defer tick.Stop()
	ending := false // a terminal state was seen: only the result is awaited
	for {
		select {
		case o := <-closed:
			return o.res, false, o.err
		case <-tick.C:
		}
		if ending {
			continue
		}
		st, err := queryFleet(ctx, cl, wfID)
		if err != nil {
			continue
		}
		switch maintainedVerdict(st.Phase) {
		case waitFulfilled:
			res := statusResult(st)
			if v, err := cl.QueryWorkflow(ctx, wfID, "", workflows.InstancesQuery); err == nil {
				// A worker from before the query answers an error: the
				// result then lists no ids, as the status has none.
				_ = v.Get(&res.InstanceIDs)
			}
			if res.InstanceIDs == nil {
				res.InstanceIDs = []string{}
			}
			return res, true, nil
		case waitForResult:
			ending = true
		}
	}
}

// statusResult shapes a live status like a FleetResult, for a maintained
// fleet that reached its target and for --timeout. The status carries no
// instance ids: InstanceIDs is empty (awaitFleet asks a fulfilled
// maintained fleet for them with workflows.InstancesQuery).
func statusResult(st workflows.FleetStatus) workflows.FleetResult {
	return workflows.FleetResult{
		FleetID:        st.FleetID,
		State:          st.Phase,
		Min:            st.Min,
		Target:         st.Target,
		Running:        st.Running,
		InstanceIDs:    []string{},
		TimeToMinMS:    st.TimeToMinMS,
		TimeToTargetMS: st.TimeToTargetMS,
		Launched:       st.Launched,
		BurstLaunched:  st.BurstLaunched,
		BurstFailed:    st.BurstFailed,
		FillLaunched:   st.FillLaunched,
		FillRounds:     st.FillRounds,
		Adopted:        st.Adopted,
		Terminated:     st.Terminated,
		Kept:           st.Kept,
		Burst:          st.Burst,
		Runs:           st.Runs,
		HistoryEvents:  st.HistoryLength,
		Message:        st.Message,
		Tenant:         st.Tenant,
		Units:          st.Units,
		Replaced:       st.Replaced,
	}
}

// maintainingMessage says that a fulfilled maintained fleet goes on, and
// how to end it.
func maintainingMessage(fleetID, tenant string) string {
	return fmt.Sprintf("the fleet keeps maintaining its target, replacing lost instances, until `gust fleet cancel %s%s`", fleetID, tenantArg(tenant))
}

// joinMessages joins two messages of a result with "; ", either may be
// empty.
func joinMessages(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
