package worker

import (
	"context"
	"fmt"
	"math"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/workflows"
)

// The launch rate has one owner: the gust-launch task queue's own
// configuration (UpdateTaskQueueConfig), which the Temporal server applies
// across every worker and which takes precedence over the rate a worker
// asks for when it polls. `gust dev` and `gust fleet set-rate` set it; a
// `gust worker` sets it only where nobody has, and otherwise warns if it
// was started with another value. Before, each worker's
// TaskQueueActivitiesPerSecond changed the whole platform's rate, to
// whichever worker polled last.

// LaunchRateSource says where the rate in effect comes from.
type LaunchRateSource string

const (
	// LaunchRateSet: set on the task queue (gust dev, gust fleet set-rate,
	// or the first gust worker).
	LaunchRateSet LaunchRateSource = "task_queue"
	// LaunchRateWorker: only workers' poll requests set it (a server
	// without the task queue configuration API, or before anyone set it).
	LaunchRateWorker LaunchRateSource = "worker"
	// LaunchRateNone: no rate: the server's default applies.
	LaunchRateNone LaunchRateSource = "none"
)

// LaunchRate is the fill path's launch rate in effect, in instances per
// second, and where it comes from.
type LaunchRate struct {
	Rate   float64          `json:"launch_rate"`
	Source LaunchRateSource `json:"source"`
}

// CurrentLaunchRate asks the server for the launch queue's rate in effect.
func CurrentLaunchRate(ctx context.Context, c client.Client, namespace string) (LaunchRate, error) {
	resp, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: workflows.LaunchTaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportConfig:  true,
	})
	if err != nil {
		return LaunchRate{}, fmt.Errorf("describing task queue %s: %w", workflows.LaunchTaskQueue, err)
	}
	if q := resp.GetConfig().GetQueueRateLimit().GetRateLimit(); q != nil {
		return LaunchRate{Rate: roundRate(float64(q.GetRequestsPerSecond()) * workflows.FillBatchSize), Source: LaunchRateSet}, nil
	}
	eff := resp.GetEffectiveRateLimit()
	if eff.GetRateLimitSource() == enumspb.RATE_LIMIT_SOURCE_WORKER {
		return LaunchRate{Rate: roundRate(float64(eff.GetRequestsPerSecond()) * workflows.FillBatchSize), Source: LaunchRateWorker}, nil
	}
	return LaunchRate{Source: LaunchRateNone}, nil
}

// SetLaunchRate sets the launch queue's rate to rate instances per second
// for every worker: the queue's activity rate is rate / FillBatchSize fill
// rounds per second.
func SetLaunchRate(ctx context.Context, c client.Client, namespace string, rate float64, reason string) error {
	if rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		return fmt.Errorf("launch rate must be a positive number, got %v", rate)
	}
	_, err := c.WorkflowService().UpdateTaskQueueConfig(ctx, &workflowservice.UpdateTaskQueueConfigRequest{
		Namespace:     namespace,
		Identity:      "gust",
		TaskQueue:     workflows.LaunchTaskQueue,
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		UpdateQueueRateLimit: &workflowservice.UpdateTaskQueueConfigRequest_RateLimitUpdate{
			RateLimit: &taskqueuepb.RateLimit{RequestsPerSecond: float32(rate / workflows.FillBatchSize)},
			Reason:    reason,
		},
	})
	if err != nil {
		return fmt.Errorf("setting the launch rate on task queue %s: %w", workflows.LaunchTaskQueue, err)
	}
	return nil
}

// ClaimLaunchRate is what a starting worker does with its --launch-rate:
// where the queue has no rate of its own it sets rate (the first worker
// owns it), and where it has one it keeps it and reports a conflict when
// asked is true (the value was given explicitly) and differs. It returns
// the rate in effect afterwards.
func ClaimLaunchRate(ctx context.Context, c client.Client, namespace string, rate float64, asked bool) (LaunchRate, bool, error) {
	cur, err := CurrentLaunchRate(ctx, c, namespace)
	if err != nil {
		return LaunchRate{}, false, err
	}
	if cur.Source == LaunchRateSet {
		return cur, asked && math.Abs(cur.Rate-rate) > 1e-6, nil
	}
	if err := SetLaunchRate(ctx, c, namespace, rate, "the first gust worker's --launch-rate"); err != nil {
		return LaunchRate{}, false, err
	}
	return LaunchRate{Rate: rate, Source: LaunchRateSet}, false, nil
}

// roundRate drops the float32 noise of the server's numbers.
func roundRate(r float64) float64 { return math.Round(r*1000) / 1000 }
