package main

import (
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gust-dev/gust/providers"
)

func appFailure(msg, typ string, cause *failurepb.Failure) *failurepb.Failure {
	return &failurepb.Failure{Message: msg, Cause: cause, FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
		ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: typ},
	}}
}

// TestRetryingShowsThrottledLaunches: a burst chunk the rate limiter keeps
// refusing shows with its attempt, its error and its next attempt; an
// activity on its first attempt does not.
func TestRetryingShowsThrottledLaunches(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pending := []*workflowpb.PendingActivityInfo{
		{ActivityType: &commonpb.ActivityType{Name: "CountRunning"}, Attempt: 1},
		{
			ActivityType:            &commonpb.ActivityType{Name: "LaunchBurstChunk"},
			Attempt:                 35,
			LastFailure:             appFailure("launching 1000 m5.large: RequestLimitExceeded: Request limit exceeded.", providers.ErrTypeThrottled, nil),
			NextAttemptScheduleTime: timestamppb.New(now.Add(20 * time.Second)),
		},
		{
			ActivityType: &commonpb.ActivityType{Name: "LaunchFill"},
			Attempt:      2,
			LastFailure:  appFailure("activity error", "", appFailure("InsufficientInstanceCapacity", providers.ErrTypeInsufficientCapacity, nil)),
		},
	}
	rs := retrying(pending)
	if len(rs) != 2 {
		t.Fatalf("got %d retrying activities, want 2: %+v", len(rs), rs)
	}
	b := rs[0]
	if b.Activity != "LaunchBurstChunk" || b.Attempt != 35 || !b.Throttled || !strings.Contains(b.LastError, "RequestLimitExceeded") {
		t.Errorf("burst chunk: %+v", b)
	}
	if b.NextAttemptAt == nil || !b.NextAttemptAt.Equal(now.Add(20*time.Second)) {
		t.Errorf("burst chunk next attempt: %v", b.NextAttemptAt)
	}
	if rs[1].Throttled || rs[1].NextAttemptAt != nil {
		t.Errorf("a capacity failure is not throttling, and a running attempt has no next attempt: %+v", rs[1])
	}
	got := retrySummary(rs, now)
	for _, want := range []string{"2 retrying (1 throttled)", "LaunchBurstChunk at attempt 35", "RequestLimitExceeded", "next attempt in 20s"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
	if retrySummary(nil, now) != "" {
		t.Error("no retries must print nothing")
	}
}
