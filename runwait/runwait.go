// Package runwait waits for a Temporal workflow run's result without the
// 20-second stall that a lost long-poll wake-up causes.
//
// # The stall
//
// WorkflowRun.Get long-polls GetWorkflowExecutionHistory with WaitNewEvent
// and the close-event filter. On the server (go.temporal.io/server v1.32,
// service/history/api/get_workflow_util.go GetOrPollWorkflowMutableState),
// that poll subscribes to the history service's event notifier and waits on
// a channel that holds ONE notification. Every state change of the run
// (activity task started or completed, workflow task scheduled or started,
// workflow completed) queues a notification, and the notifier's single
// goroutine (service/history/events/notifier.go
// dispatchHistoryEventNotification) hands each to every subscriber without
// blocking: when the subscriber's channel still holds an earlier
// notification that the poll's goroutine has not taken yet, the new one is
// silently dropped. Dropping a "still running" notification is harmless;
// dropping the close is not: the poll never learns the run closed, sleeps
// until its long-poll expiration (history.longPollExpirationInterval, 20
// s), answers "still running" with a page token, and only the SDK's next
// request sees the close. The caller waits 20.0x s for a run that finished
// in milliseconds. It takes a run's last state changes arriving within
// about a millisecond of each other (or queued behind one another and then
// dispatched back to back) while the poll's goroutine is not scheduled, so
// it hits a fraction of a percent of waits on a busy machine, more with
// regular activities (more state changes close together) than with local
// ones. A server with a log line at that drop showed it one for one: every
// 20 s wait was a dropped "Completed" notification, followed 20 s later by
// the poll expiring with the "Running" state it had (docs/benchmarks.md,
// "Waiting for results").
//
// gust cannot patch the server, and the gateway may talk to any Temporal
// cluster, so the fix is on the client: Get waits with WorkflowRun.Get as
// usual (one long poll, woken by the notifier in the normal case) and, while
// it waits, checks the run's status with DescribeWorkflowExecution (which
// reads the mutable state, no notifier involved) at growing intervals. If
// the run has closed while the long poll still waits, the wake-up was lost:
// Get cancels that poll and asks again, and a new poll on a closed run
// answers at once. A lost wake-up then costs at most one check interval
// (FirstCheck, doubling up to MaxCheckInterval), and a run that closes
// before FirstCheck (most invocations) costs no extra request at all.
//
// This package imports only the Temporal SDK's client and the API types,
// never the server.
package runwait

import (
	"context"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// Default check intervals. A run that closes within DefaultFirstCheck is
// never checked; a lost wake-up costs at most about DefaultMaxCheckInterval.
const (
	DefaultFirstCheck       = 100 * time.Millisecond
	DefaultMaxCheckInterval = time.Second
)

// Describer is the part of client.Client that Get needs besides the run.
type Describer interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

var _ Describer = client.Client(nil)

// Options tunes Get. The zero value uses the defaults.
type Options struct {
	// FirstCheck is how long Get relies on the long poll alone before it
	// first checks the run's status. Default DefaultFirstCheck.
	FirstCheck time.Duration
	// MaxCheckInterval caps the interval between checks, which doubles
	// from FirstCheck. It bounds what a lost wake-up costs, and each
	// check is one DescribeWorkflowExecution request. Default
	// DefaultMaxCheckInterval.
	MaxCheckInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.FirstCheck <= 0 {
		o.FirstCheck = DefaultFirstCheck
	}
	if o.MaxCheckInterval <= 0 {
		o.MaxCheckInterval = DefaultMaxCheckInterval
	}
	if o.MaxCheckInterval < o.FirstCheck {
		o.MaxCheckInterval = o.FirstCheck
	}
	return o
}

// Get waits for run's result and decodes it into valuePtr, exactly as
// run.Get(ctx, valuePtr) does (same data converter and codec, same errors,
// following continue-as-new), but without waiting out the server's
// long-poll expiration when the server loses the run's close notification.
// d is normally the client.Client that started or got the run.
//
// It returns run.Get's result: nil on success, the workflow's error
// (*temporal.WorkflowExecutionError and friends) when the run failed, or
// ctx's error when ctx ends first. Errors from the status checks are
// ignored: the long poll still runs, so a failing check only loses the
// protection, never the result.
func Get(ctx context.Context, d Describer, run client.WorkflowRun, valuePtr any) error {
	return GetWithOptions(ctx, d, run, valuePtr, Options{})
}

// GetWithOptions is Get with explicit check intervals.
func GetWithOptions(ctx context.Context, d Describer, run client.WorkflowRun, valuePtr any, opts Options) error {
	opts = opts.withDefaults()
	workflowID, runID := run.GetID(), run.GetRunID()
	interval := opts.FirstCheck
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		pollCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run.Get(pollCtx, valuePtr) }()

		lost := false
		for !lost {
			select {
			case err := <-done:
				cancel()
				return err
			case <-timer.C:
				var follow bool
				lost, follow = closed(ctx, d, workflowID, runID)
				if follow {
					// The run continued as new, and run.Get follows the
					// chain: from now on check the chain's latest run.
					runID = ""
				}
				interval = min(2*interval, opts.MaxCheckInterval)
				timer.Reset(interval)
			}
		}
		// The run has closed but the poll has not returned: its wake-up
		// was lost. Stop it, and wait for it to stop before asking again,
		// so only one Get ever writes valuePtr.
		cancel()
		if err := <-done; err == nil || ctx.Err() != nil {
			return err // it returned after all, or ctx ended
		}
		// A new poll on a closed run reads the close event at once.
	}
}

// closed reports whether the run (the latest run of workflowID when runID
// is empty) is closed, and whether it closed by continuing as new. Any
// error reads as "not closed".
func closed(ctx context.Context, d Describer, workflowID, runID string) (closed, continuedAsNew bool) {
	resp, err := d.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return false, false
	}
	switch resp.GetWorkflowExecutionInfo().GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
		enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
		enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return true, false
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return true, true
	}
	return false, false
}
