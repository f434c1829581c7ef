// Package workflows holds gust's Temporal workflow definitions and their
// message contracts (the *_api.go files). Workflow code here must stay
// deterministic: no time.Now, go, chan, select, rand or map ranging.
package workflows

// Task queues. Their names are part of the deployment contract between
// starters, workflows and every `gust worker`: never rename them.
const (
	// TaskQueue carries every workflow and every activity that must not be
	// slowed by the platform launch rate limiter, including the burst.
	TaskQueue = "gust"
	// LaunchTaskQueue carries only the fill path's RunInstances activities.
	// Workers set TaskQueueActivitiesPerSecond on it, which the Temporal
	// server enforces across all workers: this queue is the platform's launch
	// rate limiter.
	LaunchTaskQueue = "gust-launch"
)

// FillBatchSize is the most instances one fill activity asks for
// (RunInstances MinCount=1, MaxCount=FillBatchSize). Workers convert
// --launch-rate (instances per second) into the queue's activity rate as
// launchRate / FillBatchSize, so the server-enforced activity rate bounds
// the instance rate.
const FillBatchSize = 5
