package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// The tests in this file pin the fleet rules that live outside decide: how
// launch, reserve and terminate errors are handled, the update validators,
// a backoff carried over by continue-as-new, and what a fleet reports when
// its cleanup fails. Each would pass against a fleet that broke its rule
// only if the rule were dead code.

func newRulesEnv(t *testing.T, cloud *fake.Compute) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Accounts: providers.OneAccount(cloud)})
	// Wall time, on a shared machine; the workflow time is skipped.
	env.SetTestTimeout(2 * time.Minute)
	return env
}

func fleetTags() map[string]string { return map[string]string{providers.FleetTagKey: "fleet-1"} }

// runCalls returns the Run inputs whose ClientToken starts with prefix,
// dry runs (PrepareFleet's checks) aside.
func runCalls(cloud *fake.Compute, prefix string) []providers.RunInput {
	var out []providers.RunInput
	for _, c := range cloud.Calls() {
		if in, ok := c.Input.(providers.RunInput); ok && c.Method == fake.MethodRun && !in.DryRun && strings.HasPrefix(in.ClientToken, prefix) {
			out = append(out, in)
		}
	}
	return out
}

// failedFleet returns the FleetResult a failed fleet carries and its error.
func failedFleet(t *testing.T, env *testsuite.TestWorkflowEnvironment) (FleetResult, error) {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %v", err)
	require.Equal(t, ErrTypeFleetFailed, appErr.Type())
	var res FleetResult
	require.NoError(t, appErr.Details(&res))
	return res, err
}

func TestFleetFailsWhenInstancesAreTerminatedOutsideGust(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	cloud.PendingDescribes = 3 // booting for three counts: the fleet cannot be fulfilled before the callback
	env := newRulesEnv(t, cloud)
	env.RegisterDelayedCallback(func() {
		ids := cloud.Live(fleetTags())
		require.Len(t, ids, 5)
		cloud.SetState(providers.StateTerminated, ids[0], ids[1])
	}, 700*time.Millisecond)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(5, 5))

	res, err := failedFleet(t, env)
	require.Equal(t, PhaseFailed, res.State)
	const reason = "2 of 5 instances are not running and none is pending: they were terminated outside gust"
	require.Equal(t, reason, res.Message)
	require.Equal(t, 1, strings.Count(err.Error(), reason), "the reason is said once: %v", err)
	require.Empty(t, cloud.Live(fleetTags()), "a failed fleet terminates what is left")
}

func TestFleetFailsOnAPermanentFillError(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	cloud.FailRun = func(in providers.RunInput, _ int) error {
		if strings.HasPrefix(in.ClientToken, "fill-") {
			return providers.NewInvalidError(errors.New("InvalidParameterValue: scripted"))
		}
		return nil
	}
	env := newRulesEnv(t, cloud)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(2, 10))

	res, err := failedFleet(t, env)
	require.Equal(t, PhaseFailed, res.State)
	require.Contains(t, res.Message, "scripted")
	require.Equal(t, 1, strings.Count(err.Error(), "InvalidParameterValue: scripted"), "the reason is said once: %v", err)
	require.Equal(t, 2, res.BurstLaunched)
	// The rounds started together with the failing one; none after it.
	require.LessOrEqual(t, len(runCalls(cloud, "fill-")), 2)
	require.Empty(t, cloud.Live(fleetTags()), "a failed fleet terminates what it launched")
}

func TestFleetReserveErrorThatIsNotCapacityFailsTheFleet(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	cloud.FailNext(fake.MethodReserve, providers.NewInvalidError(errors.New("InvalidParameterValue: scripted")))
	env := newRulesEnv(t, cloud)
	in := fleetInput(2, 4)
	in.CapacityPolicy = CapacityPolicyWait
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)

	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want the reservation's error, got %v", err)
	require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	require.Equal(t, 1, cloud.CallCount(fake.MethodReserve), "not retried as if capacity were short")
	require.Empty(t, runCalls(cloud, ""))
}

func TestFleetStopsUsingAReservationThatCannotDeliver(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	cloud.FailRun = func(in providers.RunInput, _ int) error {
		if in.ReservationID != "" {
			return providers.NewInsufficientCapacityError(errors.New("ReservationCapacityExceeded: scripted"))
		}
		return nil
	}
	env := newRulesEnv(t, cloud)
	in := fleetInput(10, 10)
	in.Burst = false
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseFulfilled, res.State)
	require.Len(t, cloud.Live(fleetTags()), 10)
	reserved := 0
	for _, in := range runCalls(cloud, "fill-") {
		if in.ReservationID != "" {
			reserved++
		}
	}
	// decide starts both reserved rounds at once; after they fail, no
	// round uses the reservation again.
	require.Equal(t, 2, reserved)
	require.Len(t, cloud.Reservations(), 1)
}

func TestFleetResumesABackoffAcrossContinueAsNew(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env := newRulesEnv(t, cloud)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var firstRound time.Time
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "LaunchFill" && firstRound.IsZero() {
			firstRound = env.Now()
		}
	})
	in := fleetInput(1, 5)
	in.Resume = &FleetState{
		Origin: "run-0", StartedAt: start.Add(-time.Minute), Phase: PhaseFilling, Target: 5,
		BurstDone: true, Backoff: 16 * time.Second, BackoffUntil: start.Add(20 * time.Second),
	}
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseFulfilled, res.State)
	require.Len(t, cloud.Live(fleetTags()), 5)
	require.False(t, firstRound.Before(start.Add(20*time.Second)),
		"a fill round started at %s, during the backoff the previous run handed over", firstRound.Sub(start))
}

func TestFleetRejectsAScaleBelowMin(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env := newRulesEnv(t, cloud)
	in := fleetInput(5, 10)
	in.Burst = false
	in.Tuning.MaxFillInFlight = 1
	var rejected error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ScaleUpdate, "scale-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected = err },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, ScaleInput{Target: 4})
	}, 0)
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	require.ErrorContains(t, rejected, "min 5")
}

func TestFleetRejectsACancelDuringAFailedFleetsCleanup(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	cloud.FailRun = func(in providers.RunInput, _ int) error {
		if strings.HasPrefix(in.ClientToken, "fill-") {
			return providers.NewInvalidError(errors.New("InvalidParameterValue: scripted"))
		}
		return nil
	}
	// The final sweep is throttled twice: the fleet stays in cleanup
	// (phase failed) for 3 s of workflow time.
	throttled := providers.NewThrottledError(errors.New("RequestLimitExceeded: scripted"))
	cloud.FailNext(fake.MethodTerminate, throttled)
	cloud.FailNext(fake.MethodTerminate, throttled)
	env := newRulesEnv(t, cloud)
	var rejected error
	accepted := false
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(CancelUpdate, "cancel-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { rejected = err },
			OnAccept:   func() { accepted = true },
			OnComplete: func(any, error) {},
		}, CancelInput{})
	}, 500*time.Millisecond)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(2, 10))
	res, _ := failedFleet(t, env)
	require.Equal(t, PhaseFailed, res.State)
	require.False(t, accepted, "a failed fleet accepted a cancel")
	require.ErrorContains(t, rejected, "already failed")
	require.Empty(t, cloud.Live(fleetTags()))
}

// TestFleetCancelWhoseSweepFailsIsNotClean: a cancel whose TerminateFleet
// fails for good answers with an error, and the fleet's result says so and
// keeps the ids of the instances still running.
func TestFleetCancelWhoseSweepFailsIsNotClean(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", 3) // the burst of 3 fits; the fill backs off
	cloud.FailNext(fake.MethodTerminate, providers.NewInvalidError(errors.New("UnauthorizedOperation: scripted")))
	env := newRulesEnv(t, cloud)
	var cancelErr error
	completed := false
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(CancelUpdate, "cancel-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("cancel rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { completed, cancelErr = true, err },
		}, CancelInput{})
	}, 3*time.Second)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(3, 10))
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))

	require.True(t, completed)
	require.ErrorContains(t, cancelErr, "not all of its instances could be terminated")
	require.Equal(t, PhaseCancelled, res.State)
	require.Contains(t, res.Message, "could not terminate the fleet's 3 instances")
	require.Contains(t, res.Message, "UnauthorizedOperation: scripted")
	live := cloud.Live(fleetTags())
	require.Len(t, live, 3, "the instances still run")
	require.ElementsMatch(t, live, res.InstanceIDs, "the result lists the instances still running")
}

func TestFleetScaleKeepsTheMemoTargetCurrent(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env := newRulesEnv(t, cloud)
	env.OnUpsertMemo(map[string]any{MemoTarget: 12}).Return(nil).Once()
	in := fleetInput(5, 10)
	in.Burst = false
	in.Tuning.MaxFillInFlight = 1
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(ScaleUpdate, "scale-1", t, ScaleInput{Target: 12})
	}, 0)
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 12, res.Target)
	env.AssertExpectations(t)
}

// TestFleetDecidesAgainAfterReleasingTheReservation: once a no-burst
// fleet's reservation is used up and released, the next round (from open
// capacity) starts at once, not when the next running count comes back.
// Counts are made to take 3 s of workflow time, so a loop that waits for
// the next change after the release starts the round 3 s late.
func TestFleetDecidesAgainAfterReleasingTheReservation(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env := newRulesEnv(t, cloud)
	var a *activities.Fleet
	real := &activities.Fleet{Accounts: providers.OneAccount(cloud)}
	env.OnActivity(a.CountRunning, mock.Anything, mock.Anything).Return(real.CountRunning).After(3 * time.Second)
	env.OnActivity(a.ReconcileFleet, mock.Anything, mock.Anything).Return(real.ReconcileFleet).After(3 * time.Second)
	var released, openRound time.Time
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		switch info.ActivityType.Name {
		case "ReleaseReservation":
			released = env.Now()
		case "LaunchFill":
			var in activities.LaunchInput
			if args.Get(&in) == nil && in.ReservationID == "" && openRound.IsZero() {
				openRound = env.Now()
			}
		case "LaunchOfferings": // a fleet of offerings' open-capacity round
			if openRound.IsZero() {
				openRound = env.Now()
			}
		}
	})
	in := fleetInput(5, 10)
	in.Burst = false
	in.Tuning.MaxFillInFlight = 1
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseFulfilled, res.State)
	require.False(t, released.IsZero())
	require.False(t, openRound.IsZero())
	require.Less(t, openRound.Sub(released), time.Second, "the open-capacity round waited for the next count")
}

// TestFleetCancelledWithKeepCountsWhatItKeeps: instances that boot after
// the last poll and are kept by a cancel are reported running, not at the
// older poll's count.
func TestFleetCancelledWithKeepCountsWhatItKeeps(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", 3) // the burst of 3 fits; the fill backs off
	cloud.PendingDescribes = 1 << 30 // every poll sees them booting...
	env := newRulesEnv(t, cloud)
	env.RegisterDelayedCallback(func() {
		// ...until they boot, just before the cancel.
		cloud.SetState(providers.StateRunning, cloud.Live(fleetTags())...)
		env.SignalWorkflow(CancelSignal, CancelInput{Keep: true})
	}, 3*time.Second)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(3, 10))
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseCancelled, res.State)
	require.Len(t, cloud.Live(fleetTags()), 3, "the kept instances still run")
	require.Equal(t, 3, res.Running, "the result reports the kept instances running")
	require.Equal(t, 3, res.Kept)
	v, err := env.QueryWorkflow(StatusQuery)
	require.NoError(t, err)
	var st FleetStatus
	require.NoError(t, v.Get(&st))
	require.Equal(t, 3, st.Running)
	require.Equal(t, 0, st.Pending)
	require.Equal(t, 3, st.Kept)
}

// TestFleetScaleDownDropsQueuedFillRounds: fill rounds still queued behind
// the rate limiter when a scale down makes them surplus are cancelled
// before they launch, not launched and then terminated.
func TestFleetScaleDownDropsQueuedFillRounds(t *testing.T) {
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env := newRulesEnv(t, cloud)
	var a *activities.Fleet
	real := &activities.Fleet{Accounts: providers.OneAccount(cloud)}
	// The rate limiter holds every fill round for a minute; one cancelled
	// meanwhile never reaches a worker.
	// (The test environment does not cancel a running activity's context,
	// so the listener keeps the cancelled ids.)
	var mu sync.Mutex
	cancelled := map[string]bool{}
	env.SetOnActivityCanceledListener(func(info *activity.Info) {
		mu.Lock()
		defer mu.Unlock()
		cancelled[info.ActivityID] = true
	})
	queued := func(ctx context.Context, in activities.LaunchInput) (activities.LaunchResult, error) {
		mu.Lock()
		gone := cancelled[activity.GetInfo(ctx).ActivityID]
		mu.Unlock()
		if gone {
			return activities.LaunchResult{}, temporal.NewCanceledError()
		}
		return real.LaunchFill(ctx, in)
	}
	env.OnActivity(a.LaunchFill, mock.Anything, mock.Anything).Return(queued).After(time.Minute)
	env.OnActivity(a.LaunchOfferings, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.LaunchOfferingsInput) (activities.LaunchOfferingsResult, error) {
			mu.Lock()
			gone := cancelled[activity.GetInfo(ctx).ActivityID]
			mu.Unlock()
			if gone {
				return activities.LaunchOfferingsResult{}, temporal.NewCanceledError()
			}
			return real.LaunchOfferings(ctx, in)
		}).After(time.Minute)
	var scaled ScaleResult
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(ScaleUpdate, "scale-1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("scale rejected: %v", err) },
			OnAccept:   func() {},
			OnComplete: func(r any, err error) { require.NoError(t, err); scaled = r.(ScaleResult) },
		}, ScaleInput{Target: 12})
	}, 5*time.Second)
	in := fleetInput(10, 40)
	in.Tuning.MaxFillInFlight = 6 // six rounds of 5 queue for the 30 above min
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 12, scaled.Target)
	require.Equal(t, PhaseFulfilled, res.State)
	require.Len(t, cloud.Live(fleetTags()), 12)
	require.Len(t, res.InstanceIDs, 12)
	// 10 (burst) + 30 queued; 12 needed: the five newest rounds are
	// dropped, the oldest launches 5 and 3 of them are terminated.
	require.Len(t, runCalls(cloud, "fill-"), 1, "surplus rounds launched")
	require.Equal(t, 3, res.Terminated)
}
