package workflows

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

type FleetSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	cloud *fakeCloud
}

func TestFleetSuite(t *testing.T) { suite.Run(t, new(FleetSuite)) }

func (s *FleetSuite) SetupTest() {
	s.cloud = newFakeCloud(-1)
	s.env = s.newEnv()
}

func (s *FleetSuite) newEnv() *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Compute: s.cloud})
	env.SetTestTimeout(30 * time.Second)
	return env
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
	live := s.cloud.live()
	slices.Sort(live)
	s.Require().Equal(ids, live, "fleet and cloud disagree")
	s.Require().Zero(s.cloud.activeReservations(), "a reservation was left behind")
}

func (s *FleetSuite) TestBurstThenFill() {
	res := s.run(fleetInput(200, 230))
	s.Equal(PhaseFulfilled, res.State)
	s.Equal(230, res.Running)
	s.Equal(200, res.BurstLaunched)
	s.Equal(30, res.FillLaunched)
	s.requireExact(res, 230)
	// max(100, ceil(200/5)) = 100 per chunk: two chunks, each called once.
	s.Len(s.cloud.calls("burst-"), 2)
	s.Len(s.cloud.calls("fill-"), 6) // 30 instances, FillBatchSize 5
	s.Positive(res.TimeToMinMS)
	s.GreaterOrEqual(res.TimeToTargetMS, res.TimeToMinMS)
	// Every instance carries the fleet tags and the user's.
	for _, id := range res.InstanceIDs {
		tags := s.cloud.instances[id].Tags
		s.Equal("fleet-1", tags[providers.FleetTagKey])
		s.Equal("infra", tags["team"])
		s.NotEmpty(tags[activities.FleetRunTagKey])
	}
	for tok := range s.cloud.runCalls {
		s.LessOrEqual(len(tok), 64, "EC2 client tokens are at most 64 characters")
	}
}

func (s *FleetSuite) TestNoBurstFillsFromTheReservation() {
	in := fleetInput(10, 20)
	in.Burst = false
	res := s.run(in)
	s.Equal(PhaseFulfilled, res.State)
	s.Zero(res.BurstLaunched)
	s.Equal(20, res.FillLaunched)
	s.Empty(s.cloud.calls("burst-"))
	s.requireExact(res, 20)
	// The first 10 came from the reservation, which was then released.
	s.Equal(10, s.cloud.reservedLaunches)
	s.Equal([]string{"cr-1"}, s.cloud.cancelled)
	s.Equal(1, s.cloud.reserveCalls)
}
