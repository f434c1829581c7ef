package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// PingWorkflow is the platform's smoke test: a durable timer followed by one
// activity. `gust demo` runs it first to show the platform is alive, and the
// integration tests use it to prove history survives a server restart.
func PingWorkflow(ctx workflow.Context, in PingInput) (PingResult, error) {
	if in.Wait < 0 {
		return PingResult{}, temporal.NewNonRetryableApplicationError("wait must not be negative", providers.ErrTypeInvalid, errors.New("negative wait"))
	}
	started := workflow.Now(ctx)
	if in.Wait > 0 {
		timer := workflow.NewTimerWithOptions(ctx, in.Wait, workflow.TimerOptions{Summary: "ping delay"})
		if err := timer.Get(ctx, nil); err != nil {
			return PingResult{}, err
		}
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		Summary:             "answer ping",
	})
	var a *activities.Platform
	var out activities.PingResult
	if err := workflow.ExecuteActivity(ctx, a.Ping, activities.PingInput{Message: in.Message}).Get(ctx, &out); err != nil {
		return PingResult{}, err
	}
	return PingResult{Message: out.Message, Worker: out.Worker, Started: started, Ended: workflow.Now(ctx)}, nil
}
