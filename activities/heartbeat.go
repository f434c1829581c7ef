package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatEvery is how often keepAlive heartbeats. Workflows give the
// activities that use it a heartbeat timeout of a few seconds
// (workflows' launch and control options), so a worker killed in the middle
// of a cloud call is noticed in seconds, not after the start-to-close
// timeout, and the call is retried elsewhere with the same client token.
const heartbeatEvery = time.Second

// recordHeartbeat is activity.RecordHeartbeat; tests count its calls, since
// the SDK itself forwards at most one heartbeat per throttle interval.
var recordHeartbeat = activity.RecordHeartbeat

// keepAlive heartbeats in the background while fn runs: a single cloud call
// (RunInstances, a paginated DescribeInstances) cannot heartbeat itself.
// Outside an activity it just runs fn.
func keepAlive[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	return keepAliveWith(ctx, nil, fn)
}

// keepAliveWith is keepAlive for an activity that keeps heartbeat details:
// each heartbeat carries details (nil for none). The server replaces an
// attempt's details with every heartbeat it receives, empty ones
// included, so such an activity must never heartbeat without them.
func keepAliveWith[T any](ctx context.Context, details any, fn func() (T, error)) (T, error) {
	if !activity.IsActivity(ctx) {
		return fn()
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				recordHeartbeat(ctx, details)
			}
		}
	}()
	defer func() { close(done); <-stopped }()
	return fn()
}
