package workflows

import (
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// TestTenThousand runs a 10,000-instance fleet through continue-as-new on
// the fake cloud: exact count, no token used twice.
func (s *FleetSuite) TestTenThousand() {
	if testing.Short() {
		s.T().Skip("slow")
	}
	in := s.input(1000, 10000)
	runs := 0
	for {
		s.env.SetTestTimeout(5 * time.Minute)
		s.env.ExecuteWorkflow(LaunchFleetWorkflow, in)
		err := s.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) {
			s.Require().NoError(err)
			break
		}
		runs++
		s.Require().Less(runs, 100)
		var next LaunchFleetInput
		s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
		in = next
		s.env = s.newEnv()
	}
	var res FleetResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(PhaseFulfilled, res.State)
	s.requireExact(res, 10000)
	s.Len(s.cloud.Instances(), 10000)
	for tok, n := range s.cloud.RunTokens("") {
		s.Equal(1, n, tok)
	}
	s.T().Logf("runs %d, burst chunks %d, fill rounds %d", res.Runs, len(s.cloud.RunTokens("burst-")), res.FillRounds)
}
