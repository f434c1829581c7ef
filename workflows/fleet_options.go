package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/providers"
)

// Activity options of LaunchFleetWorkflow. Throttling (providers.ErrTypeThrottled)
// is always left to Temporal's retry with backoff, so a throttled call
// never fails or re-sends anything else; errors that no retry can fix
// (providers.IsPermanent) are non-retryable in every policy.

// launchNonRetryable are the launch errors the workflow handles itself:
// InsufficientCapacity falls through to the fill path (burst) or backs off
// on a durable timer (fill); NotFound (the reservation is gone) does the
// same and stops using the reservation; the others fail the fleet.
var launchNonRetryable = providers.NonRetryableErrorTypes(providers.ErrTypeInsufficientCapacity, providers.ErrTypeNotFound)

// launchHeartbeat is the heartbeat timeout of cloud calls that heartbeat
// in the background (activities.keepAlive, every second): a worker killed
// mid-call is detected after this long and the call retried elsewhere with
// the same client token, instead of after the start-to-close timeout.
const launchHeartbeat = 5 * time.Second

// burstOptions: a chunk on TaskQueue (no platform rate limit). A throttled
// chunk retries at 1s, 2s, 4s … 20s for up to 15 minutes, then its count
// falls through to the fill path.
func burstOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		StartToCloseTimeout:    time.Minute,
		HeartbeatTimeout:       launchHeartbeat,
		ScheduleToCloseTimeout: 15 * time.Minute,
		WaitForCancellation:    true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        20 * time.Second,
			NonRetryableErrorTypes: launchNonRetryable,
		},
		Summary: summary,
	}
}

// fillOptions: a fill round on LaunchTaskQueue, whose server-enforced rate is
// the platform launch rate limiter. No schedule-to-close timeout: waiting in
// the rate-limited queue is the point. Throttled rounds retry at 1s … 30s
// without limit.
//
// fairnessKey names the fleet to the queue's fair dispatch: fleets sharing
// the rate limiter are served round-robin by key, not first come first
// served, so no fleet waits at its min while another fills (it needs
// matching.enableFairness on the server; without it the key is ignored).
// The fleet's origin run id is the key: unique per fleet, unchanged by
// continue-as-new, and within the server's 64-byte limit.
func fillOptions(summary, fairnessKey string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		Priority:            temporal.Priority{FairnessKey: fairnessKey},
		TaskQueue:           LaunchTaskQueue,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    launchHeartbeat,
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: launchNonRetryable,
		},
		Summary: summary,
	}
}

// controlOptions: short cloud calls on TaskQueue (instance type check,
// reservation release), retried at 1s … 10s for up to 5 minutes.
func controlOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: providers.NonRetryableErrorTypes(),
		},
		Summary: summary,
	}
}

// prepareOptions: PrepareFleet as a local activity (fleetFastStart), with
// controlOptions' timeouts and retries.
func prepareOptions() workflow.LocalActivityOptions {
	o := controlOptions("")
	return workflow.LocalActivityOptions{
		StartToCloseTimeout:    o.StartToCloseTimeout,
		ScheduleToCloseTimeout: o.ScheduleToCloseTimeout,
		RetryPolicy:            o.RetryPolicy,
		Summary:                "check the offerings",
	}
}

// reserveOptions: like controlOptions, but InsufficientCapacity comes back
// to the workflow, which applies the capacity policy.
func reserveOptions(summary string) workflow.ActivityOptions {
	o := controlOptions(summary)
	o.RetryPolicy.NonRetryableErrorTypes = providers.NonRetryableErrorTypes(providers.ErrTypeInsufficientCapacity)
	// ReserveOfferings heartbeats the reservations it holds; the server
	// keeps a heartbeat's details only once it is sent, which the SDK does
	// within 0.8 × this, so a retry after a killed worker learns of all but
	// the last few seconds' reservations (and finds a dead worker in 5s,
	// not 30s).
	o.HeartbeatTimeout = launchHeartbeat
	return o
}

// reserveLocalOptions: ReserveOfferings as a local activity
// (fleetLocalReserve), with reserveOptions' timeouts and retries. No
// heartbeat: a local activity has none, and a run lost with its workflow
// task is found by its reservations' tag.
func reserveLocalOptions(summary string) workflow.LocalActivityOptions {
	o := reserveOptions(summary)
	return workflow.LocalActivityOptions{
		StartToCloseTimeout:    o.StartToCloseTimeout,
		ScheduleToCloseTimeout: o.ScheduleToCloseTimeout,
		RetryPolicy:            o.RetryPolicy,
		Summary:                summary,
	}
}

// countOptions: the running-count poll. It is abandoned, not awaited, when
// the workflow stops polling.
func countOptions() workflow.ActivityOptions {
	o := controlOptions("count running instances")
	o.ScheduleToCloseTimeout = 0
	o.HeartbeatTimeout = launchHeartbeat
	return o
}

// terminateOptions: terminations retry until they succeed; a fleet must
// not leak instances.
func terminateOptions(summary string) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: providers.NonRetryableErrorTypes(),
		},
		Summary: summary,
	}
}

// fleetToken is the EC2 ClientToken of one step of a fleet ("reserve-3",
// "burst-0", "fill-17"). It depends only on the fleet id, the first run id
// of the workflow chain (stable across continue-as-new, retries and
// replays) and the step, so a retried or replayed call is recognised by the
// cloud. EC2 tokens are at most 64 ASCII characters: the step plus a
// 96-bit hash stays well below.
func fleetToken(fleetID, origin, step string) string {
	sum := sha256.Sum256([]byte(fleetID + "\x00" + origin + "\x00" + step))
	return step + "-" + hex.EncodeToString(sum[:12])
}
