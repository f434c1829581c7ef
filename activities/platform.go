// Package activities holds gust's Temporal activities. Each domain is a
// struct holding the provider clients its methods need; workflows call the
// methods through a nil pointer so names type-check.
package activities

import (
	"context"
	"fmt"
	"os"

	"go.temporal.io/sdk/activity"
)

// Platform answers the platform's own health checks.
type Platform struct{}

// PingInput is what PingWorkflow sends to a worker.
type PingInput struct {
	Message string `json:"message"`
}

// PingResult names the worker that answered.
type PingResult struct {
	Message string `json:"message"`
	Worker  string `json:"worker"`
}

// Ping echoes the message with the answering worker's identity.
func (*Platform) Ping(ctx context.Context, in PingInput) (PingResult, error) {
	host, _ := os.Hostname()
	worker := fmt.Sprintf("%d@%s", os.Getpid(), host)
	activity.GetLogger(ctx).Debug("ping", "worker", worker)
	return PingResult{Message: in.Message, Worker: worker}, nil
}
