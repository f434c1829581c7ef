package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
)

func TestPingWorkflowWaitsThenAnswers(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Platform
	env.RegisterActivity(a)
	var calledAt time.Time
	env.OnActivity(a.Ping, mock.Anything, activities.PingInput{Message: "hi"}).
		Run(func(mock.Arguments) { calledAt = env.Now() }).
		Return(activities.PingResult{Message: "hi", Worker: "w1"}, nil).Once()

	start := env.Now()
	env.ExecuteWorkflow(PingWorkflow, PingInput{Message: "hi", Wait: time.Hour})

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var out PingResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, "hi", out.Message)
	require.Equal(t, "w1", out.Worker)
	// The activity runs only after the durable timer fired.
	require.GreaterOrEqual(t, calledAt.Sub(start), time.Hour)
	env.AssertExpectations(t)
}

func TestPingWorkflowRejectsNegativeWait(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(PingWorkflow, PingInput{Wait: -time.Second})
	require.Error(t, env.GetWorkflowError())
	require.Contains(t, env.GetWorkflowError().Error(), "wait must not be negative")
}
