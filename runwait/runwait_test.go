package runwait

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// fakeRun is a run whose long poll can lose its wake-up: until the run
// closes, Get blocks; a Get already blocked when the run closes stays
// blocked (the lost wake-up) unless wakeUp is set, until its ctx ends. A
// Get that starts after the close returns the result at once, as the
// server answers a new poll on a closed run.
type fakeRun struct {
	client.WorkflowRun // panics if anything else is called

	mu       sync.Mutex
	status   enumspb.WorkflowExecutionStatus
	result   string
	err      error
	wakeUp   bool          // deliver the close to waiting polls
	closedCh chan struct{} // closed when the run closes and wakeUp is set

	gets      atomic.Int32
	describes atomic.Int32
	canceled  atomic.Int32 // Gets that ended by their ctx
}

func newFakeRun(wakeUp bool) *fakeRun {
	return &fakeRun{status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, wakeUp: wakeUp, closedCh: make(chan struct{})}
}

func (r *fakeRun) GetID() string    { return "wf" }
func (r *fakeRun) GetRunID() string { return "run" }

func (r *fakeRun) close(status enumspb.WorkflowExecutionStatus, result string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.result, r.err = status, result, err
	if r.wakeUp {
		close(r.closedCh)
	}
}

func (r *fakeRun) Get(ctx context.Context, valuePtr any) error {
	r.gets.Add(1)
	r.mu.Lock()
	running := r.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	r.mu.Unlock()
	if running {
		select {
		case <-r.closedCh:
		case <-ctx.Done():
			r.canceled.Add(1)
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	*(valuePtr.(*string)) = r.result
	return nil
}

func (r *fakeRun) DescribeWorkflowExecution(_ context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	r.describes.Add(1)
	if workflowID != "wf" || runID != "run" {
		return nil, errors.New("describe of the wrong run")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &workflowservice.DescribeWorkflowExecutionResponse{
		WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{Status: r.status},
	}, nil
}

// fast checks often, so the tests take milliseconds; no test asserts a
// duration, only that the wait ends with the right result.
var fast = Options{FirstCheck: time.Millisecond, MaxCheckInterval: 5 * time.Millisecond}

// testCtx bounds every test: a wait that never ends fails the test instead
// of hanging it. The fake's lost wake-up never ends by itself, so without
// the status checks these tests fail here, after 30 seconds.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// until waits for cond, or fails the test when ctx ends first.
func until(ctx context.Context, t *testing.T, what string, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			t.Errorf("gave up waiting for %s", what)
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

func TestGetReturnsWhenTheWakeUpIsLost(t *testing.T) {
	ctx := testCtx(t)
	run := newFakeRun(false)
	go func() {
		// Close only once the first poll is waiting, so its wake-up is
		// surely the one lost.
		if until(ctx, t, "the first poll", func() bool { return run.gets.Load() > 0 }) {
			run.close(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "done", nil)
		}
	}()
	var got string
	if err := GetWithOptions(ctx, run, run, &got, fast); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got != "done" {
		t.Fatalf("result %q, want %q", got, "done")
	}
	if run.canceled.Load() != 1 || run.gets.Load() != 2 {
		t.Fatalf("%d polls, %d canceled; want the stuck poll canceled and one more", run.gets.Load(), run.canceled.Load())
	}
}

func TestGetReturnsTheWorkflowErrorAfterALostWakeUp(t *testing.T) {
	ctx := testCtx(t)
	run := newFakeRun(false)
	wfErr := errors.New("workflow failed")
	go func() {
		if until(ctx, t, "the first poll", func() bool { return run.gets.Load() > 0 }) {
			run.close(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "", wfErr)
		}
	}()
	var got string
	if err := GetWithOptions(ctx, run, run, &got, fast); !errors.Is(err, wfErr) {
		t.Fatalf("Get: %v, want %v", err, wfErr)
	}
}

func TestGetUsesTheLongPollWhenItWakes(t *testing.T) {
	ctx := testCtx(t)
	run := newFakeRun(true)
	go func() {
		if until(ctx, t, "the first poll", func() bool { return run.gets.Load() > 0 }) {
			run.close(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "done", nil)
		}
	}()
	var got string
	// Checks far apart: the poll's own wake-up must be what returns.
	if err := GetWithOptions(ctx, run, run, &got, Options{FirstCheck: time.Hour}); err != nil || got != "done" {
		t.Fatalf("Get: %q, %v", got, err)
	}
	if run.gets.Load() != 1 || run.describes.Load() != 0 {
		t.Fatalf("%d polls and %d checks, want 1 poll and no check", run.gets.Load(), run.describes.Load())
	}
}

func TestGetKeepsWaitingWhileTheRunRuns(t *testing.T) {
	ctx := testCtx(t)
	run := newFakeRun(true)
	var got string
	errc := make(chan error, 1)
	go func() { errc <- GetWithOptions(ctx, run, run, &got, fast) }()
	// Let it check a few times: a running run must not restart the poll.
	until(ctx, t, "five checks", func() bool { return run.describes.Load() >= 5 })
	run.close(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "later", nil)
	if err := <-errc; err != nil || got != "later" {
		t.Fatalf("Get: %q, %v", got, err)
	}
	if run.canceled.Load() != 0 {
		t.Fatalf("%d polls canceled while the run was running", run.canceled.Load())
	}
}

func TestGetEndsWithItsContext(t *testing.T) {
	run := newFakeRun(false) // never closes
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		until(ctx, t, "two checks", func() bool { return run.describes.Load() >= 2 })
		cancel()
	}()
	var got string
	if err := GetWithOptions(ctx, run, run, &got, fast); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v, want context.Canceled", err)
	}
}

func TestDescribeErrorsAreNotClosed(t *testing.T) {
	d := describerFunc(func() (*workflowservice.DescribeWorkflowExecutionResponse, error) {
		return nil, errors.New("unavailable")
	})
	if c, _ := closed(context.Background(), d, "wf", "run"); c {
		t.Fatal("a failed check reads as closed")
	}
}

type describerFunc func() (*workflowservice.DescribeWorkflowExecutionResponse, error)

func (f describerFunc) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return f()
}
