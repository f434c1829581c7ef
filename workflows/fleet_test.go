package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

type FleetSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// accounts holds one account, the suite tenant's, whose cloud is
	// cloud: an activity that did not carry the fleet's tenant would act
	// for another and fail.
	accounts *fake.Accounts
	cloud    *fake.Compute
	// tenant is the tenant every fleet of the suite launches for.
	tenant string
	// oneType runs the fleets on the path of fleets started before
	// offerings existed (versionOfferings at its default version).
	oneType bool
}

func TestFleetSuite(t *testing.T) { suite.Run(t, new(FleetSuite)) }

// TestFleetSuiteForTenant runs every fleet test again for a tenant other
// than the default one.
func TestFleetSuiteForTenant(t *testing.T) { suite.Run(t, &FleetSuite{tenant: "acme"}) }

// TestFleetSuiteOneType runs every fleet test again on the one-type path
// that chains of runs started before offerings keep.
func TestFleetSuiteOneType(t *testing.T) { suite.Run(t, &FleetSuite{oneType: true}) }

func (s *FleetSuite) SetupTest() {
	s.useCloud(fake.Unlimited)
}

// useCloud gives the suite's tenant a new cloud with capacity m5.large
// instances of open capacity (fake.Unlimited for no limit), whose instances
// are described pending twice before they are running, and a new test
// environment.
func (s *FleetSuite) useCloud(capacity int) {
	s.accounts = fake.NewAccounts()
	s.cloud = s.accounts.Add(s.tenant)
	s.cloud.SetCapacity("m5.large", capacity)
	s.cloud.PendingDescribes = 2
	s.env = s.newEnv()
}

func (s *FleetSuite) newEnv() *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Accounts: s.accounts})
	env.SetTestTimeout(30 * time.Second)
	if s.oneType {
		env.OnGetVersion(versionOfferings, workflow.DefaultVersion, fleetLocalReserve).Return(workflow.DefaultVersion)
	}
	return env
}

// input is fleetInput for the suite's tenant.
func (s *FleetSuite) input(minimum, target int) LaunchFleetInput {
	in := fleetInput(minimum, target)
	in.Tenant = s.tenant
	return in
}

func fleetInput(minimum, target int) LaunchFleetInput {
	return LaunchFleetInput{
		FleetID:      "fleet-1",
		InstanceType: "m5.large",
		Zones:        []string{"us-east-1a", "us-east-1b"},
		Tags:         map[string]string{"team": "infra"},
		Min:          minimum,
		Target:       target,
		Burst:        true,
		// The suite's fleets end when their target runs, as every fleet
		// did before maintained fleets; fleet_maintain_test.go covers
		// OnLostReplace.
		OnLost: OnLostFail,
	}
}

func (s *FleetSuite) run(in LaunchFleetInput) FleetResult {
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res FleetResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

// requireExact checks the fleet's instances are exactly the cloud's live
// instances: no duplicate, no leak.
func (s *FleetSuite) requireExact(res FleetResult, want int) {
	s.Require().Len(res.InstanceIDs, want)
	ids := slices.Clone(res.InstanceIDs)
	slices.Sort(ids)
	s.Require().Len(slices.Compact(ids), want, "duplicate instance ids")
	live := s.cloud.Live(nil)
	slices.Sort(live)
	s.Require().Equal(ids, live, "fleet and cloud disagree")
	s.Require().Zero(s.activeReservations(), "a reservation was left behind")
}

// activeReservations counts the cloud's reservations that are not cancelled.
func (s *FleetSuite) activeReservations() int {
	n := 0
	for _, r := range s.cloud.Reservations() {
		if r.State == "active" {
			n++
		}
	}
	return n
}

// terminated returns the ids of the cloud's terminated instances, in launch
// order.
func (s *FleetSuite) terminated() []string {
	ids := []string{}
	for _, in := range s.cloud.Instances() {
		if in.State == providers.StateTerminated {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

func (s *FleetSuite) TestBurstThenFill() {
	res := s.run(s.input(200, 230))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(230, res.Running)
	s.Equal(200, res.BurstLaunched)
	s.Equal(30, res.FillLaunched)
	s.requireExact(res, 230)
	// max(100, ceil(200/5)) = 100 per chunk: two chunks, each called once.
	s.Len(s.cloud.RunTokens("burst-"), 2)
	s.Len(s.cloud.RunTokens("fill-"), 6) // 30 instances, FillBatchSize 5
	s.Positive(res.TimeToMinMS)
	s.GreaterOrEqual(res.TimeToTargetMS, res.TimeToMinMS)
	// Every instance carries the fleet tags and the user's.
	for _, id := range res.InstanceIDs {
		inst, ok := s.cloud.Instance(id)
		s.Require().True(ok, id)
		tags := inst.Tags
		s.Equal("fleet-1", tags[providers.FleetTagKey])
		s.Equal("infra", tags["team"])
		s.NotEmpty(tags[activities.FleetRunTagKey])
	}
	for tok := range s.cloud.RunTokens("") {
		s.LessOrEqual(len(tok), 64, "EC2 client tokens are at most 64 characters")
	}
}

func (s *FleetSuite) TestNoBurstFillsFromTheReservation() {
	in := s.input(10, 20)
	in.Burst = false
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.Zero(res.BurstLaunched)
	s.Equal(20, res.FillLaunched)
	s.Empty(s.cloud.RunTokens("burst-"))
	s.requireExact(res, 20)
	// The first 10 came from the reservation, which was then released.
	s.Equal(10, s.cloud.ReservedLaunches())
	s.Equal(1, s.cloud.CallCount(fake.MethodReserve))
	s.Equal(1, s.cloud.CallCount(fake.MethodCancelReservation))
	s.Len(s.cloud.Reservations(), 1)
}

func (s *FleetSuite) TestInsufficientCapacityFailPolicy() {
	s.useCloud(50) // the minimum is 100
	res := s.run(s.input(100, 200))
	s.Equal(PhaseInsufficientCapacity, res.State)
	s.Zero(res.Running)
	s.NotNil(res.InstanceIDs)
	s.Empty(res.InstanceIDs)
	s.Zero(res.TimeToMinMS)
	if s.oneType {
		s.Equal(1, s.cloud.CallCount(fake.MethodReserve))
	} // a fleet of offerings also asks for parts of the minimum, and releases them
	s.Zero(s.launches(), "nothing may be launched when the minimum is not available")
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestInsufficientCapacityWaitPolicyRecovers() {
	s.useCloud(0)
	s.env.RegisterDelayedCallback(func() { s.cloud.SetCapacity("m5.large", fake.Unlimited) }, 14*time.Second)
	in := s.input(20, 30)
	in.CapacityPolicy = CapacityPolicyWait
	in.WaitTimeout = time.Hour
	start := s.env.Now()
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	if s.oneType {
		s.Equal(5, s.cloud.CallCount(fake.MethodReserve))
	}
	s.requireExact(res, 30)
	// Backoff 1s+2s+4s+8s on durable timers, skipped by the test clock.
	s.GreaterOrEqual(s.env.Now().Sub(start), 15*time.Second)
	s.GreaterOrEqual(res.TimeToMinMS, int64(15000))
}

func (s *FleetSuite) TestInsufficientCapacityWaitPolicyGivesUp() {
	s.useCloud(0)
	in := s.input(20, 30)
	in.CapacityPolicy = CapacityPolicyWait
	in.WaitTimeout = 2 * time.Minute
	res := s.run(in)
	s.Equal(PhaseInsufficientCapacity, res.State)
	s.Zero(s.launches())
	// 1+2+4+8+16+30+30+29 s: eight retries after the first attempt (a
	// fleet of offerings makes several calls per attempt).
	if s.oneType {
		s.Equal(9, s.cloud.CallCount(fake.MethodReserve))
	} else {
		s.GreaterOrEqual(s.cloud.CallCount(fake.MethodReserve), 9)
	}
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestPartlyFailedBurstFallsThroughToFill() {
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "burst-1-") {
			return providers.NewInsufficientCapacityError(errors.New("chunk refused (scripted)"))
		}
		return nil
	}
	res := s.run(s.input(300, 300))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(200, res.BurstLaunched)
	s.Equal(100, res.BurstFailed)
	s.Equal(100, res.FillLaunched)
	s.requireExact(res, 300)
	for tok, n := range s.cloud.RunTokens("burst-") {
		s.Equal(1, n, "burst chunk %s re-sent", tok)
	}
}

func (s *FleetSuite) TestThrottledChunkRetriesAloneWithTheSameToken() {
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "burst-0-") && attempt < 3 {
			return providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)"))
		}
		if strings.HasPrefix(in.ClientToken, "fill-2-") && attempt < 2 {
			return providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)"))
		}
		return nil
	}
	res := s.run(s.input(300, 310))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(300, res.BurstLaunched)
	s.Zero(res.BurstFailed)
	s.requireExact(res, 310)
	calls := s.cloud.RunTokens("burst-")
	s.Len(calls, 3)
	for tok, n := range calls {
		if strings.HasPrefix(tok, "burst-0-") {
			s.Equal(4, n, "the throttled chunk retries with its own token")
		} else {
			s.Equal(1, n, "chunk %s must not be re-sent because another was throttled", tok)
		}
	}
	for tok, n := range s.cloud.RunTokens("fill-2-") {
		s.Equal(3, n, tok)
	}
}

func (s *FleetSuite) TestRetriedLaunchesNeverDuplicate() {
	// The cloud launches, then the response is lost: the activity fails and
	// Temporal retries it with the same ClientToken.
	s.cloud.LoseResponse("burst-0-", 1)
	s.cloud.LoseResponse("fill-1-", 1)
	res := s.run(s.input(150, 160))
	s.Equal(PhaseFulfilled, res.State)
	s.requireExact(res, 160)
	for tok, n := range s.cloud.RunTokens("burst-0-") {
		s.Equal(2, n, tok)
	}
	for tok, n := range s.cloud.RunTokens("fill-1-") {
		s.Equal(2, n, tok)
	}
	s.Len(s.cloud.Instances(), 160, "the cloud created exactly target instances")
}

func (s *FleetSuite) TestLaunchWhoseResponseIsLostForGoodIsAdopted() {
	// Burst chunk 0 launches, its response is lost, and every retry is
	// throttled until the chunk's schedule-to-close timeout gives up on
	// it. Its 100 instances exist, tagged, but no launch reported them; the
	// fill path launches 100 more to reach the target.
	s.cloud.LoseResponse("burst-0-", 1)
	// Everything runs at once, so the count that finds the orphans also
	// finds the target running: the fleet must not call itself fulfilled
	// while it is still adopting.
	s.cloud.PendingDescribes = 0
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "burst-0-") && attempt > 0 {
			return providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)"))
		}
		return nil
	}
	res := s.run(s.input(200, 230))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(100, res.BurstFailed)
	s.Equal(100, res.Adopted, "the lost chunk's instances were found by their tags")
	s.Equal(130, res.FillLaunched)
	s.Equal(100, res.Terminated, "the extra 100 were terminated, as in a scale down")
	s.Len(s.cloud.Instances(), 330)
	// The fleet's instances are exactly the cloud's live ones: nothing leaked.
	s.requireExact(res, 230)
}

// stuckFleet leaves the fleet filling: capacity for min plus 5.
func (s *FleetSuite) stuckFleet() {
	s.useCloud(15)
}

func (s *FleetSuite) TestScaleUp() {
	s.env.RegisterDelayedCallback(func() {
		var st FleetStatus
		v, err := s.env.QueryWorkflow(StatusQuery)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&st))
		s.Equal(20, st.Target)
		s.env.UpdateWorkflow(ScaleUpdate, "up", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("scale rejected", err) },
			OnComplete: func(v any, err error) {
				s.NoError(err)
				s.Equal(ScaleResult{PreviousTarget: 20, Target: 35, Launched: v.(ScaleResult).Launched}, v)
			},
		}, ScaleInput{Target: 35})
	}, 100*time.Millisecond)
	res := s.run(s.input(10, 20))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(35, res.Target)
	s.requireExact(res, 35)
}

func (s *FleetSuite) TestScaleDownTerminatesNewest() {
	s.stuckFleet()
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(ScaleUpdate, "too-low", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { s.ErrorContains(err, "min") },
			OnAccept:   func() { s.Fail("scale below min accepted") },
			OnComplete: func(any, error) {},
		}, ScaleInput{Target: 5})
		s.env.UpdateWorkflow(ScaleUpdate, "down", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { s.Fail("scale rejected", err) },
			OnComplete: func(v any, err error) {
				s.NoError(err)
				s.Equal(ScaleResult{PreviousTarget: 20, Target: 12, Launched: 12}, v)
			},
		}, ScaleInput{Target: 12})
	}, time.Minute)
	res := s.run(s.input(10, 20))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(12, res.Target)
	s.Equal(3, res.Terminated)
	s.requireExact(res, 12)
	// The newest three (the last fill round's) went.
	all := s.cloud.Instances()
	s.Require().Len(all, 15)
	s.Equal([]string{all[12].ID, all[13].ID, all[14].ID}, s.terminated())
}

func (s *FleetSuite) TestScaleDownIsNotUndoneByAStaleDescribe() {
	s.stuckFleet()
	// Terminated instances go on being described as running for a while.
	s.cloud.StaleDescribes = 3
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(ScaleUpdate, "down", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { s.Fail("scale rejected", err) },
			OnComplete: func(any, error) {},
		}, ScaleInput{Target: 12})
	}, time.Minute)
	res := s.run(s.input(10, 20))
	s.Equal(PhaseFulfilled, res.State)
	s.Zero(res.Adopted, "the fleet's own terminated instances are not orphans")
	s.Equal(3, res.Terminated)
	s.requireExact(res, 12)
}

func (s *FleetSuite) TestCancelTerminatesEverything() {
	s.stuckFleet()
	var got CancelResult
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(CancelUpdate, "cancel", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { s.Fail("cancel rejected", err) },
			OnComplete: func(v any, err error) { s.NoError(err); got = v.(CancelResult) },
		}, CancelInput{})
	}, time.Minute)
	res := s.run(s.input(10, 20))
	s.Equal(PhaseCancelled, res.State)
	s.Empty(res.InstanceIDs)
	s.Equal(CancelResult{Terminated: 15}, got)
	s.Empty(s.cloud.Live(nil))
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestCancelKeep() {
	s.stuckFleet()
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(CancelSignal, CancelInput{Keep: true})
	}, time.Minute)
	res := s.run(s.input(10, 20))
	s.Equal(PhaseCancelled, res.State)
	s.requireExact(res, 15)
	s.Empty(s.terminated())
}

func (s *FleetSuite) TestCancelDuringBurst() {
	// A throttled chunk keeps the burst open; the cancel must wait for the
	// chunks that launched and terminate their instances.
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "burst-1-") {
			return providers.NewThrottledError(errors.New("RequestLimitExceeded (scripted)"))
		}
		return nil
	}
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(CancelSignal, CancelInput{})
	}, 30*time.Second)
	res := s.run(s.input(200, 200))
	s.Equal(PhaseCancelled, res.State)
	s.Empty(s.cloud.Live(nil))
	s.Len(s.terminated(), 100)
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestWorkflowCancellationCleansUp() {
	s.stuckFleet()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Minute)
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, s.input(10, 20))
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	s.Require().ErrorAs(err, &canceled)
	var res FleetResult
	s.Require().NoError(canceled.Details(&res))
	s.Equal(PhaseCancelled, res.State)
	s.Empty(s.cloud.Live(nil))
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestStatusQuery() {
	s.stuckFleet()
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(StatusQuery)
		s.Require().NoError(err)
		var st FleetStatus
		s.Require().NoError(v.Get(&st))
		s.Equal(PhaseFilling, st.Phase)
		s.Equal(15, st.Launched)
		s.Equal(15, st.Running)
		s.Equal(10, st.BurstLaunched)
		s.Equal(5, st.FillLaunched)
		s.Positive(st.CapacityRetries)
		s.Positive(st.TimeToMinMS)
		s.Zero(st.TimeToTargetMS)
		s.NotNil(st.MinReachedAt)
		s.Nil(st.TargetReachedAt)
		s.env.SignalWorkflow(CancelSignal, CancelInput{Keep: true})
	}, time.Minute)
	s.run(s.input(10, 20))
}

func (s *FleetSuite) TestFillTimeout() {
	s.stuckFleet()
	in := s.input(10, 20)
	in.FillTimeout = 10 * time.Minute
	res := s.run(in)
	s.Equal(PhaseInsufficientCapacity, res.State)
	s.requireExact(res, 15)
	s.Equal(15, res.Running)
}

func (s *FleetSuite) TestContinueAsNewCarriesState() {
	in := s.input(10, 60)
	in.Tuning.ContinueAsNewAfter = 6
	in.Tuning.MaxFillInFlight = 2
	var runs int
	var origin string
	for {
		s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
		s.Require().True(s.env.IsWorkflowCompleted())
		err := s.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) {
			s.Require().NoError(err)
			break
		}
		runs++
		s.Require().Less(runs, 50, "the fleet makes no progress across runs")
		var next LaunchFleetInput
		s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
		s.Require().NotNil(next.Resume)
		if origin == "" {
			origin = next.Resume.Origin
		}
		s.Equal(origin, next.Resume.Origin, "the token origin survives continue-as-new")
		s.Equal(runs-1, next.Resume.Runs)
		s.Len(next.Resume.InstanceIDs, next.Resume.BurstLaunched+next.Resume.FillLaunched)
		in = next
		s.env = s.newEnv() // the next run, on the same cloud
	}
	var res FleetResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(runs, res.Runs)
	s.GreaterOrEqual(runs, 2)
	s.requireExact(res, 60)
	s.Len(s.cloud.Instances(), 60)
	for tok, n := range s.cloud.RunTokens("") {
		s.Equal(1, n, tok)
	}
	s.Positive(res.TimeToMinMS)
}

func (s *FleetSuite) TestInvalidRequestLaunchesNothing() {
	for name, mutate := range map[string]func(*LaunchFleetInput){
		"min above target": func(in *LaunchFleetInput) { in.Min, in.Target = 20, 10 },
		"zero min":         func(in *LaunchFleetInput) { in.Min = 0 },
		"huge target":      func(in *LaunchFleetInput) { in.Target = MaxFleetSize + 1 },
		"unknown type":     func(in *LaunchFleetInput) { in.InstanceType = "x9.huge" },
		"reserved tag":     func(in *LaunchFleetInput) { in.Tags["gust:owner"] = "me" },
		"bad policy":       func(in *LaunchFleetInput) { in.CapacityPolicy = "hope" },
		"bad zone":         func(in *LaunchFleetInput) { in.Zones = []string{"US East"} },
	} {
		s.Run(name, func() {
			s.useCloud(fake.Unlimited)
			in := s.input(5, 10)
			mutate(&in)
			s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
			err := s.env.GetWorkflowError()
			var appErr *temporal.ApplicationError
			s.Require().ErrorAs(err, &appErr)
			s.Equal(providers.ErrTypeInvalid, appErr.Type())
			s.True(appErr.NonRetryable())
			s.Zero(s.cloud.CallCount(fake.MethodReserve))
			s.Zero(s.cloud.CallCount(fake.MethodRun))
		})
	}
}

func TestLaunchFleetInputValidate(t *testing.T) {
	ok := fleetInput(1, 1)
	require.NoError(t, ok.Validate())
	ok.Tags[providers.FleetTagKey] = ok.FleetID
	require.NoError(t, ok.Validate())

	bad := fleetInput(0, 100001)
	bad.FleetID = ""
	bad.InstanceType = "M5 Large"
	bad.Zones = []string{"us-east-1a", "us-east-1a"}
	bad.Tags = map[string]string{"aws:x": "1", "gust:fleet-id": "other"}
	bad.CapacityPolicy = "later"
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"fleet id", "instance type", "min 0", "target 100001", "listed twice", "aws:", "gust:fleet-id", "capacity policy"} {
		require.Contains(t, err.Error(), want)
	}
	require.NotContains(t, err.Error(), "\n", "one-line errors")

	require.Error(t, ScaleInput{Target: 4}.Validate(5))
	require.NoError(t, ScaleInput{Target: 5}.Validate(5))
	require.Error(t, ScaleInput{Target: MaxFleetSize + 1}.Validate(5))
}

func TestFleetTokenAndChunks(t *testing.T) {
	a := fleetToken("fleet-1", "run-a", "burst-0")
	require.Equal(t, a, fleetToken("fleet-1", "run-a", "burst-0"))
	require.NotEqual(t, a, fleetToken("fleet-1", "run-b", "burst-0"))
	require.NotEqual(t, a, fleetToken("fleet-1", "run-a", "burst-1"))
	require.NotEqual(t, a, fleetToken("fleet-2", "run-a", "burst-0"))
	require.LessOrEqual(t, len(fleetToken(strings.Repeat("f", 128), strings.Repeat("r", 64), "fill-2147483647")), 64)

	for _, c := range []struct{ min, want int }{{1, 100}, {200, 100}, {1000, 200}, {4999, 1000}, {100000, 1000}} {
		require.Equal(t, c.want, burstChunkSize(c.min, 0), "min %d", c.min)
	}
	require.Equal(t, 7, burstChunkSize(1000, 7))
}

func (s *FleetSuite) TestRejectedLaunchFailsAndCleansUp() {
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if strings.HasPrefix(in.ClientToken, "burst-1-") {
			return providers.NewInvalidError(errors.New("InvalidAMIID.Malformed (scripted)"))
		}
		return nil
	}
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, s.input(200, 250))
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Equal(ErrTypeFleetFailed, appErr.Type())
	var res FleetResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(PhaseFailed, res.State)
	s.Contains(res.Message, "InvalidAMIID")
	s.Empty(s.cloud.Live(nil), "a failed fleet leaves nothing behind")
	s.Zero(s.activeReservations())
	s.Empty(s.cloud.RunTokens("fill-"))
}

// TestFleetAgainstSharedFake runs a fleet on a cloud whose instances are
// running at once and checks the capacity bookkeeping.
func TestFleetAgainstSharedFake(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	cloud := fake.NewCompute()
	cloud.SetCapacity("m5.large", 1000)
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Accounts: providers.OneAccount(cloud)})
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(120, 157))
	require.NoError(t, env.GetWorkflowError())
	var res FleetResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, PhaseFulfilled, res.State)
	require.Equal(t, 157, res.Running)
	require.Len(t, cloud.Live(map[string]string{providers.FleetTagKey: "fleet-1"}), 157)
	require.Equal(t, 1000-157, cloud.Capacity("m5.large"), "the reservation's remainder went back to the pool")
}

func (s *FleetSuite) TestReservationGoneFillsFromOpenCapacity() {
	s.cloud.FailRun = func(in providers.RunInput, attempt int) error {
		if in.ReservationID != "" {
			return providers.NewNotFoundError(errors.New("InvalidCapacityReservationId.NotFound (scripted)"))
		}
		return nil
	}
	in := s.input(10, 20)
	in.Burst = false
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.Zero(s.cloud.ReservedLaunches())
	s.Len(res.InstanceIDs, 20)
	s.Len(s.cloud.Live(nil), 20)
}

// TestFleetForUnknownTenantFailsAtOnce: a tenant the worker cannot act for
// fails the fleet at its first activity, with nothing launched and no
// retries.
func (s *FleetSuite) TestFleetForUnknownTenantFailsAtOnce() {
	in := s.input(5, 10)
	in.Tenant = "nobody"
	start := s.env.Now()
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Require().ErrorContains(err, "tenant nobody")
	var res FleetResult
	s.Require().NoError(appErr.Details(&res))
	s.Equal(PhaseFailed, res.State)
	s.Equal("nobody", res.Tenant)
	s.Zero(s.cloud.CallCount(fake.MethodReserve))
	s.Zero(s.cloud.CallCount(fake.MethodRun))
	// Retried, the instance type check would go on for minutes (of the
	// test's skipped time) before failing.
	s.Less(s.env.Now().Sub(start), 10*time.Second, "the unknown tenant was retried")
}

func (s *FleetSuite) TestResultAndStatusNameTheTenant() {
	res := s.run(s.input(5, 5))
	s.Equal(s.tenant, res.Tenant)
}

func TestFleetWorkflowID(t *testing.T) {
	require.Equal(t, "web", FleetWorkflowID("", "web"))
	require.Equal(t, "web", FleetWorkflowID(providers.DefaultTenant, "web"), "--tenant default is the default fleet")
	require.Equal(t, "acme/web", FleetWorkflowID("acme", "web"))
	require.NotEqual(t, FleetWorkflowID("acme", "web"), FleetWorkflowID("globex", "web"))
	// No fleet id contains '/', so no default fleet can take a tenant's id.
	in := fleetInput(1, 1)
	in.FleetID = FleetWorkflowID("acme", "web")
	require.Error(t, in.Validate())
}

func TestLaunchFleetInputValidateTenant(t *testing.T) {
	in := fleetInput(1, 1)
	for _, ok := range []string{"", "default", "acme", "a_b-1"} {
		in.Tenant = ok
		require.NoError(t, in.Validate(), ok)
	}
	for _, bad := range []string{"../x", "-a", "a/b", "a b", strings.Repeat("t", 65)} {
		in.Tenant = bad
		require.ErrorContains(t, in.Validate(), "tenant id", bad)
	}
}

// TestTwoTenantsSameFleetName launches fleet-1 for the default tenant and
// for acme on the shared fake's accounts: each fleet is in its own account.
func TestTwoTenantsSameFleetName(t *testing.T) {
	accounts := fake.NewAccounts()
	accounts.Add(providers.DefaultTenant).SetCapacity("m5.large", 100)
	accounts.Add("acme").SetCapacity("m5.large", 100)
	for tenant, n := range map[string]int{"": 7, "acme": 11} {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestWorkflowEnvironment()
		env.RegisterWorkflow(LaunchFleetWorkflow)
		env.RegisterActivity(&activities.Fleet{Accounts: accounts})
		in := fleetInput(n, n)
		in.Tenant = tenant
		env.ExecuteWorkflow(LaunchFleetWorkflow, in)
		require.NoError(t, env.GetWorkflowError())
		var res FleetResult
		require.NoError(t, env.GetWorkflowResult(&res))
		require.Equal(t, PhaseFulfilled, res.State, tenant)
	}
	byTag := map[string]string{providers.FleetTagKey: "fleet-1"}
	require.Len(t, accounts.Add("").Live(byTag), 7)
	require.Len(t, accounts.Add("acme").Live(byTag), 11)
}
