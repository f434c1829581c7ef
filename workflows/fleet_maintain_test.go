package workflows

import (
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// Fleets of offerings: maintenance, replacement, instant fallback and
// reservations across offerings, through the real activities on the fake
// cloud. The one-type suite variant does not apply (these features are
// behind versionOfferings), so each test returns at once there.

// status queries the running fleet.
func (s *FleetSuite) status() FleetStatus {
	v, err := s.env.QueryWorkflow(StatusQuery)
	s.Require().NoError(err)
	var st FleetStatus
	s.Require().NoError(v.Get(&st))
	return st
}

// cancelAt cancels the fleet (terminating it) after d.
func (s *FleetSuite) cancelAt(d time.Duration, check func(FleetStatus)) {
	s.env.RegisterDelayedCallback(func() {
		if check != nil {
			check(s.status())
		}
		s.env.UpdateWorkflow(CancelUpdate, "cancel", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { s.Fail("cancel rejected", err) },
			OnComplete: func(any, error) {},
		}, CancelInput{})
	}, d)
}

// maintained is a fleet of one offering per zone that maintains its target.
func (s *FleetSuite) maintained(minimum, target int) LaunchFleetInput {
	in := s.input(minimum, target)
	in.OnLost = OnLostReplace
	return in
}

func (s *FleetSuite) TestMaintainedFleetStaysFulfilledAndReplacesLost() {
	if s.oneType {
		return
	}
	var lost []string
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(PhaseFulfilled, st.Phase, "a maintained fleet is fulfilled without completing")
		s.Equal(10, st.Running)
		ids := s.cloud.Live(nil)
		lost = ids[:3]
		s.cloud.SetState(providers.StateTerminated, lost...) // outside gust
	}, 2*time.Minute)
	s.cancelAt(5*time.Minute, func(st FleetStatus) {
		s.Equal(PhaseFulfilled, st.Phase)
		s.Equal(3, st.Replaced)
		s.Equal(10, st.Running)
		s.Equal(10, st.Launched)
		s.Len(s.cloud.Live(nil), 10, "the lost instances were replaced, and nothing more")
		v, err := s.env.QueryWorkflow(InstancesQuery)
		s.Require().NoError(err)
		var ids []string
		s.Require().NoError(v.Get(&ids))
		s.ElementsMatch(s.cloud.Live(nil), ids, "the instances query lists what the fleet holds")
		for _, id := range lost {
			s.NotContains(s.cloud.Live(nil), id)
		}
	})
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, s.maintained(5, 10))
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res FleetResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(PhaseCancelled, res.State)
	s.Equal(3, res.Replaced)
	s.Empty(s.cloud.Live(nil), "the cancel terminated everything, replacements included")
}

func (s *FleetSuite) TestSpotReclaimIsReplacedInSpot() {
	if s.oneType {
		return
	}
	in := s.maintained(4, 8)
	in.OnDemandBase, in.SpotShare = 2, 100 // 2 on-demand, 6 spot
	var reclaimed []string
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(PhaseFulfilled, st.Phase)
		s.Equal(2, st.OnDemandUnits)
		s.Equal(6, st.SpotUnits)
		for _, inst := range s.cloud.Instances() {
			if inst.Market == providers.MarketSpot && len(reclaimed) < 2 {
				reclaimed = append(reclaimed, inst.ID)
			}
		}
		s.cloud.Interrupt(reclaimed...)
	}, 2*time.Minute)
	s.cancelAt(6*time.Minute, func(st FleetStatus) {
		s.Equal(2, st.Replaced)
		s.Equal(6, st.SpotUnits, "reclaimed spot is replaced with spot")
		s.Equal(2, st.OnDemandUnits)
		s.Equal(8, st.Running)
	})
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	s.Require().NoError(s.env.GetWorkflowError())
}

func (s *FleetSuite) TestFallbackSkipsAnOfferingWithoutCapacity() {
	if s.oneType {
		return
	}
	in := s.input(4, 12)
	in.InstanceType, in.Zones = "", nil
	in.Offerings = []Offering{{InstanceType: "m5.large", Zone: "us-east-1a"}, {InstanceType: "c5.large", Zone: "us-east-1a"}}
	s.cloud.SetCapacity("c5.large", fake.Unlimited)
	s.cloud.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 4) // the minimum fits, the fill does not
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.requireExact(res, 12)
	types := map[string]int{}
	for _, id := range res.InstanceIDs {
		inst, _ := s.cloud.Instance(id)
		types[inst.InstanceType]++
	}
	s.Equal(map[string]int{"m5.large": 4, "c5.large": 8}, types)
	// No fleet-wide backoff: the fill went straight to the next offering.
	s.Less(res.TimeToTargetMS, int64(5000))
}

func (s *FleetSuite) TestMinimumReservedAcrossOfferingsAllOrNothing() {
	if s.oneType {
		return
	}
	in := s.input(10, 10)
	in.InstanceType, in.Zones = "", nil
	in.Offerings = []Offering{{InstanceType: "m5.large", Zone: "us-east-1a"}, {InstanceType: "c5.large", Zone: "us-east-1b", Weight: 2}}
	s.cloud.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 4)
	s.cloud.SetOfferingCapacity("c5.large", "us-east-1b", providers.MarketOnDemand, 2) // 4 + 2×2 = 8 units < 10
	res := s.run(in)
	s.Equal(PhaseInsufficientCapacity, res.State)
	s.Zero(s.launches(), "nothing is launched without the minimum")
	s.Zero(s.activeReservations(), "every reservation made for the minimum is released")

	s.SetupTest()
	s.cloud.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 4)
	s.cloud.SetOfferingCapacity("c5.large", "us-east-1b", providers.MarketOnDemand, 3) // 4 + 3×2 = 10
	res = s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(10, res.Units)
	s.Equal(10, res.BurstLaunched)
	s.Zero(s.activeReservations())
}

func (s *FleetSuite) TestEventsMarkMinWithoutWaitingForACount() {
	if s.oneType {
		return
	}
	in := s.input(5, 5)
	in.Tuning.PollInterval = time.Hour // only events can tell it early
	in.Tuning.IdlePollInterval = time.Hour
	s.env.RegisterDelayedCallback(func() {
		var evs []InstanceEvent
		for _, id := range s.cloud.Live(nil) {
			evs = append(evs, InstanceEvent{ID: id, State: providers.StateRunning})
		}
		s.Require().Len(evs, 5)
		st := s.status()
		s.Nil(st.MinReachedAt, "not yet: the first count saw them pending")
		s.env.SignalWorkflow(InstanceEventsSignal, InstanceEventsInput{RunTag: "other-launch", Events: evs})
		s.env.SignalWorkflow(InstanceEventsSignal, InstanceEventsInput{RunTag: s.origin(), Events: evs})
	}, time.Minute)
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.InDelta(60000, res.TimeToMinMS, 1000, "min was seen through the events, not the hourly count")
}

// origin is the fleet's run tag, read from its instances.
func (s *FleetSuite) origin() string {
	for _, inst := range s.cloud.Instances() {
		return inst.Tags[activities.FleetRunTagKey]
	}
	return ""
}

// TestOnLostFail: with OnLostFail, instances terminated outside gust before
// the target runs fail the fleet after the grace, which terminates the
// rest: the behaviour of every fleet before maintained fleets.
func (s *FleetSuite) TestOnLostFail() {
	s.cloud.PendingDescribes = 1 << 30 // booting until the test says so
	s.env.RegisterDelayedCallback(func() {
		live := s.cloud.Live(nil)
		s.Require().Len(live, 5)
		s.cloud.SetState(providers.StateTerminated, live[:2]...)
		s.cloud.SetState(providers.StateRunning, live[2:]...)
	}, 5*time.Second)
	in := s.input(5, 5)
	in.OnLost = "" // the default
	s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "failed")
	s.Empty(s.cloud.Live(nil), "a failed fleet terminates what it launched")
}

// launches counts the Run calls that were not dry runs.
func (s *FleetSuite) launches() int {
	n := 0
	for _, c := range s.cloud.Calls() {
		if in, ok := c.Input.(providers.RunInput); c.Method == fake.MethodRun && (!ok || !in.DryRun) {
			n++
		}
	}
	return n
}
