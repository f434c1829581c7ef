package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// eventsOn is an activities.EventWatcher whose tenant's events always
// arrive.
type eventsOn struct{}

func (eventsOn) Watch(string) bool                      { return true }
func (eventsOn) Learn(string, string, string, []string) {}

// eventsEnv is a test environment whose fleet activities run on cloud, an
// unlimited m5.large pool, with the tenant's events flowing (eventsOn).
func eventsEnv() (*testsuite.TestWorkflowEnvironment, *fake.Compute) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	accounts := fake.NewAccounts()
	cloud := accounts.Add("")
	cloud.SetCapacity("m5.large", fake.Unlimited)
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Accounts: accounts, Events: eventsOn{}})
	env.SetTestTimeout(30 * time.Second)
	return env, cloud
}

// signalRunningAfter signals, after d, an InstanceEventsSignal that says
// the fleet's 10 live instances run, less the first lost of them (their
// events lost).
func signalRunningAfter(t *testing.T, env *testsuite.TestWorkflowEnvironment, cloud *fake.Compute, d time.Duration, lost int) {
	env.RegisterDelayedCallback(func() {
		var evs []InstanceEvent
		for _, id := range cloud.Live(nil) {
			evs = append(evs, InstanceEvent{ID: id, State: providers.StateRunning})
		}
		require.Len(t, evs, 10)
		var origin string
		for _, inst := range cloud.Instances() {
			origin = inst.Tags[activities.FleetRunTagKey]
		}
		env.SignalWorkflow(InstanceEventsSignal, InstanceEventsInput{RunTag: origin, Events: evs[lost:]})
	}, d)
}

// fulfilled runs the fleet of in to its end and returns its result,
// which must be fulfilled.
func fulfilled(t *testing.T, env *testsuite.TestWorkflowEnvironment, in LaunchFleetInput) FleetResult {
	env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseFulfilled, res.State)
	return res
}

// TestFastStart: a new fleet (fleetLocalReserve) checks its offerings and
// reserves the minimum as local activities, in its first workflow task;
// the check also says the events arrive, so it takes no reconciling count
// while it launches (the next is an hour away) and reaches min on the
// states the events gave; its one count is the settled count its end
// waits for. On fleetEventsFirst it reserves with an activity and ends on
// the events without any count. On fleetFastStart, whose
// histories must replay, it takes one count at the start (which says the
// events arrive) and no more, since a launch's answer triggers none while
// events arrive. On versionOfferings' version 1 it still checks with an
// activity and counts after each launch.
func TestFastStart(t *testing.T) {
	for _, tc := range []struct {
		name         string
		version      workflow.Version
		local        bool // PrepareFleet is a local activity
		localReserve bool // and so is ReserveOfferings
		reconciles   func(n int) bool
	}{
		{"local reserve", fleetLocalReserve, true, true, func(n int) bool { return n == 1 }},
		{"events first", fleetEventsFirst, true, false, func(n int) bool { return n == 0 }},
		{"fast start", fleetFastStart, true, false, func(n int) bool { return n == 1 }},
		{"version 1", 1, false, false, func(n int) bool { return n > 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, cloud := eventsEnv()
			cloud.PendingDescribes = 1 << 30 // only the events say running
			env.OnGetVersion(versionOfferings, workflow.DefaultVersion, fleetLocalReserve).Return(tc.version)
			var mu sync.Mutex
			started := map[string]int{}
			env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				mu.Lock()
				defer mu.Unlock()
				started[info.ActivityType.Name]++
			})
			env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []interface{}) {
				mu.Lock()
				defer mu.Unlock()
				started["local "+info.ActivityType.Name]++
			})
			if tc.version < fleetEventsFirst {
				// The fill's launches answer after the first count has come
				// back, so the count after them is the one a launch's
				// answer triggers (or, on fleetFastStart, would). Left to
				// the scheduler, a fill could answer while the first count
				// was out, when there is no wait to end, and version 1
				// then counted once. The listener runs before the workflow
				// takes the count's result, and the fill's result is
				// handled after it.
				counted := make(chan struct{})
				var once sync.Once
				env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
					if info.ActivityType.Name == "ReconcileFleet" {
						once.Do(func() { close(counted) })
					}
				})
				cloud.FailRun = func(in providers.RunInput, _ int) error {
					if strings.HasPrefix(in.ClientToken, "fill-") {
						<-counted
						mu.Lock()
						defer mu.Unlock()
						started["gated fill"]++
					}
					return nil
				}
			}
			signalRunningAfter(t, env, cloud, time.Minute, 0)
			in := fleetInput(5, 10)
			in.Tuning.ReconcileInterval = time.Hour
			res := fulfilled(t, env, in)
			require.InDelta(t, 60000, res.TimeToMinMS, 1000, "min through the events")

			mu.Lock()
			defer mu.Unlock()
			// ranOnce: the activity ran once, as a local activity or as a
			// regular one, and never the other way.
			ranOnce := func(activity string, local bool) {
				as, not := activity, "local "+activity
				if local {
					as, not = not, as
				}
				require.Equal(t, 1, started[as], "started %v", started)
				require.Zero(t, started[not], "started %v", started)
			}
			ranOnce("PrepareFleet", tc.local)
			ranOnce("ReserveOfferings", tc.localReserve)
			if tc.version < fleetEventsFirst {
				require.Positive(t, started["gated fill"], "no fill launch waited for the first count (started %v)", started)
			}
			require.True(t, tc.reconciles(started["ReconcileFleet"]), "%d reconciling counts (started %v)", started["ReconcileFleet"], started)
		})
	}
}

// TestEventsFirstEndsOnlyOnKnownStates: on fleetEventsFirst a fleet ends
// on its events only when they gave every live instance its state. With
// one instance's event lost, it waits for the reconciling count, one
// ReconcileInterval after the start.
func TestEventsFirstEndsOnlyOnKnownStates(t *testing.T) {
	env, cloud := eventsEnv()
	var mu sync.Mutex
	reconciles := 0
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		mu.Lock()
		defer mu.Unlock()
		if info.ActivityType.Name == "ReconcileFleet" {
			reconciles++
		}
	})
	signalRunningAfter(t, env, cloud, time.Minute, 1) // one event lost
	in := fleetInput(5, 10)
	in.Tuning.ReconcileInterval = 10 * time.Minute
	res := fulfilled(t, env, in)
	require.GreaterOrEqual(t, res.TimeToTargetMS, (10 * time.Minute).Milliseconds(), "ended before the count that knows the last state")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, reconciles, "the one count one interval after the start")
}

// TestEventsFleetEndsOnASettledCount: burst chunk 0 launches, its
// response is lost, and every retry is throttled until the chunk gives up;
// its instances exist, tagged, but no launch reported them, and the fill
// makes up for them. Events then say every instance runs, orphans too. On
// fleetLocalReserve the fleet does not end on those events: it asks for a
// count with every launch settled, which finds the orphans, adopts them
// and terminates the surplus, so nothing is left running that the fleet
// does not report. On fleetEventsFirst it ended on the events and left the
// orphans running: the control shows the test sees the difference.
func TestEventsFleetEndsOnASettledCount(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version workflow.Version
		leaked  int
	}{
		{"settled end", fleetLocalReserve, 0},
		{"events first (control)", fleetEventsFirst, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, cloud := eventsEnv()
			cloud.PendingDescribes = 0
			env.OnGetVersion(versionOfferings, workflow.DefaultVersion, fleetLocalReserve).Return(tc.version)
			cloud.LoseResponse("burst-0-", 1)
			cloud.FailRun = func(in providers.RunInput, attempt int) error {
				if strings.HasPrefix(in.ClientToken, "burst-0-") && attempt > 0 {
					return providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)"))
				}
				return nil
			}
			// After the chunk gave up (15 minutes) and the fill landed:
			// every live instance runs, as the events say.
			env.RegisterDelayedCallback(func() {
				var evs []InstanceEvent
				for _, id := range cloud.Live(nil) {
					evs = append(evs, InstanceEvent{ID: id, State: providers.StateRunning})
				}
				var origin string
				for _, inst := range cloud.Instances() {
					origin = inst.Tags[activities.FleetRunTagKey]
				}
				env.SignalWorkflow(InstanceEventsSignal, InstanceEventsInput{RunTag: origin, Events: evs})
			}, 20*time.Minute)
			in := fleetInput(10, 10)
			in.Tuning.BurstChunk = 5
			in.Tuning.ReconcileInterval = 24 * time.Hour
			res := fulfilled(t, env, in)
			require.Len(t, res.InstanceIDs, 10)
			live := cloud.Live(nil)
			require.Len(t, live, 10+tc.leaked, "live instances: %v, the fleet's: %v", live, res.InstanceIDs)
			if tc.leaked == 0 {
				require.ElementsMatch(t, res.InstanceIDs, live, "exactly the fleet's instances run")
				require.Equal(t, 5, res.Adopted, "the lost chunk's instances were found by their tags")
				require.Equal(t, 5, res.Terminated, "and the surplus terminated")
			}
		})
	}
}
