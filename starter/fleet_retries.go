package main

import (
	"context"
	"fmt"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// retryingActivity is one of the fleet's activities that failed at least
// once and waits for, or runs, its next attempt: a burst chunk or fill
// round held back by the cloud's rate limiter shows here. The workflow
// itself cannot see these retries (Temporal's server runs them), so the
// CLI reads them from the workflow's pending activities, as `temporal
// workflow describe` does.
type retryingActivity struct {
	Activity string `json:"activity"`
	// Attempt is the attempt running or due next (1 is the first).
	Attempt int32 `json:"attempt"`
	// Throttled says the last attempt was refused by a rate limiter.
	Throttled bool   `json:"throttled"`
	LastError string `json:"last_error"`
	// NextAttemptAt is when the next attempt is due; null while an
	// attempt runs.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
}

// statusJSON is `gust fleet status --output json`: the fleet's status and
// the launches being retried.
type statusJSON struct {
	workflows.FleetStatus
	Retrying []retryingActivity `json:"retrying"`
}

// fleetRetries returns the fleet's retrying activities, oldest first.
func fleetRetries(ctx context.Context, cl client.Client, wfID string) ([]retryingActivity, error) {
	d, err := cl.DescribeWorkflowExecution(ctx, wfID, "")
	if err != nil {
		return nil, fmt.Errorf("describing fleet %s: %w", wfID, err)
	}
	return retrying(d.GetPendingActivities()), nil
}

// retrying keeps the pending activities that have failed before.
func retrying(pending []*workflowpb.PendingActivityInfo) []retryingActivity {
	out := []retryingActivity{}
	for _, p := range pending {
		f := p.GetLastFailure()
		if f == nil && p.GetAttempt() <= 1 {
			continue
		}
		r := retryingActivity{
			Activity:  p.GetActivityType().GetName(),
			Attempt:   p.GetAttempt(),
			LastError: oneLine(f.GetMessage()),
		}
		for c := f; c != nil; c = c.GetCause() {
			if c.GetApplicationFailureInfo().GetType() == providers.ErrTypeThrottled {
				r.Throttled = true
			}
		}
		if t := p.GetNextAttemptScheduleTime(); t != nil && t.IsValid() && !t.AsTime().IsZero() {
			at := t.AsTime()
			r.NextAttemptAt = &at
		}
		out = append(out, r)
	}
	return out
}

// retrySummary is the text status's line for the retries: how many, how
// many throttled, the latest error and the next attempt due.
func retrySummary(rs []retryingActivity, now time.Time) string {
	if len(rs) == 0 {
		return ""
	}
	throttled := 0
	var next *time.Time
	last := rs[0]
	for _, r := range rs {
		if r.Throttled {
			throttled++
		}
		if r.Attempt > last.Attempt {
			last = r
		}
		if r.NextAttemptAt != nil && (next == nil || r.NextAttemptAt.Before(*next)) {
			next = r.NextAttemptAt
		}
	}
	s := fmt.Sprintf("%d retrying (%d throttled), %s at attempt %d: %s", len(rs), throttled, last.Activity, last.Attempt, last.LastError)
	if next != nil {
		s += fmt.Sprintf("; next attempt in %s", next.Sub(now).Round(100*time.Millisecond).String())
	}
	return s
}
