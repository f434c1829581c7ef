package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// invokeRetryPolicy retries the invoke step while the function's concurrency
// limits are full (TooManyRequests) or the provider is briefly unavailable,
// backing off from 100ms to at most 5s, until the invocation's deadline
// (the activity's ScheduleToClose timeout) runs out. This is gust's durable
// queue: a waiting invocation holds no environment and no worker slot
// between attempts. The function's own errors and bad requests are final.
var invokeRetryPolicy = &temporal.RetryPolicy{
	InitialInterval:    activities.QueueRetryInitialInterval,
	BackoffCoefficient: 2,
	MaximumInterval:    activities.QueueRetryMaxInterval,
	// The permanent types (a function error, a bad request...) and
	// NotFound: an unknown function stays unknown while the invocation
	// waits.
	NonRetryableErrorTypes: providers.NonRetryableErrorTypes(providers.ErrTypeNotFound),
}

// InvokeWorkflow runs one invocation of a function for a sub-tenant: it
// validates the input in workflow code (no activity, so a bad request costs
// nothing), then one invoke step resolves the sub-tenant's environment and
// runs the function there, waiting out concurrency limits until the
// deadline.
//
// It succeeds with the function's payload, or with InvokeResult.FunctionError
// when the function itself failed. It fails with a non-retryable
// ApplicationError of type InvalidRequest, NotFound, Unsupported or
// DeadlineExceeded when gust could not run the invocation.
//
// The gateway's options (see InvokeInput) add: a bound on the wait in the
// queue (MaxQueueWait, failing with QueueTimeout), retries of a function
// error with timers in between (EventRetries), a dry run that only looks
// the function up (DryRun), and the log's tail in the result (LogTail).
// Each is off at its zero value, and then the workflow issues exactly the
// commands it did before they existed (one invoke step), so histories of
// earlier inputs replay unchanged without a workflow.GetVersion.
func InvokeWorkflow(ctx workflow.Context, in InvokeInput) (InvokeResult, error) {
	inv := &invocation{in: in}
	if err := inv.setup(); err != nil {
		return InvokeResult{}, err
	}
	if in.DryRun {
		return inv.dryRun(ctx)
	}
	res, err := inv.run(ctx)
	// Lambda's retries of a failed event: a function error, not a failure
	// of gust, is retried after a durable timer. With EventRetries 0 the
	// loop never runs, so no command is added.
	for attempt := 1; attempt <= in.EventRetries && err == nil && res.FunctionError != nil; attempt++ {
		delay := inv.retryDelay << (attempt - 1)
		if err := workflow.Sleep(ctx, delay); err != nil {
			return InvokeResult{}, err
		}
		res, err = inv.run(ctx)
		res.Attempts = attempt + 1
	}
	if err == nil && in.EventRetries > 0 && res.Attempts == 0 {
		res.Attempts = 1
	}
	return res, err
}

type invocation struct {
	in         InvokeInput
	deadline   time.Duration // never zero after setup
	mode       ActivityMode  // never ActivityModeDefault after setup
	retryDelay time.Duration // never zero after setup
}

func (v *invocation) setup() error {
	if err := v.in.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), providers.ErrTypeInvalid, nil)
	}
	v.deadline = v.in.Deadline
	if v.deadline == 0 {
		v.deadline = DefaultInvokeDeadline
	}
	// A nil payload arrives as JSON null (the converter's encoding of an
	// empty json.RawMessage), so both mean "no payload", sent as {}.
	if p := bytes.TrimSpace(v.in.Payload); len(p) == 0 || bytes.Equal(p, []byte("null")) {
		v.in.Payload = json.RawMessage("{}")
	}
	v.mode = v.in.ActivityMode
	if v.mode == ActivityModeDefault {
		v.mode = DefaultInvokeActivityMode
	}
	v.retryDelay = v.in.EventRetryDelay
	if v.retryDelay == 0 {
		v.retryDelay = DefaultEventRetryDelay
	}
	return nil
}

// execute runs one step as a local or a regular activity, as the mode says.
func (v *invocation) execute(ctx workflow.Context, timeout time.Duration, summary string, fn any, args ...any) workflow.Future {
	if v.mode == ActivityModeLocal {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: timeout,
			RetryPolicy:            invokeRetryPolicy,
			Summary:                summary,
		})
		return workflow.ExecuteLocalActivity(ctx, fn, args...)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: timeout,
		StartToCloseTimeout:    timeout,
		RetryPolicy:            invokeRetryPolicy,
		Summary:                summary,
	})
	return workflow.ExecuteActivity(ctx, fn, args...)
}

// dryRunTimeout bounds a dry run's lookup of the function.
const dryRunTimeout = 30 * time.Second

// dryRun looks the function up as the tenant and checks that this input
// could invoke it; nothing runs. It fails as a real invocation would:
// NotFound for an unknown function (another tenant's included) or a
// version it does not have, InvalidRequest for a sub-tenant the function's
// tenancy refuses.
func (v *invocation) dryRun(ctx workflow.Context) (InvokeResult, error) {
	var a *activities.Functions
	var fn activities.FunctionCheck
	err := v.execute(ctx, min(v.deadline, dryRunTimeout), "dry run "+v.in.Function,
		a.CheckFunction, v.in.Tenant, v.in.Function).Get(ctx, &fn)
	if err != nil {
		return v.failed(err)
	}
	if q := v.in.Qualifier; q != "" && q != "$LATEST" && q != fn.Version {
		return InvokeResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("function %s has no version %s", v.in.Function, q), providers.ErrTypeNotFound, nil)
	}
	if fn.Tenancy != providers.TenancyPerTenant {
		return InvokeResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("function %s does not have tenant isolation mode PER_TENANT: it cannot be invoked for a sub-tenant", v.in.Function),
			providers.ErrTypeInvalid, nil)
	}
	return InvokeResult{}, nil
}

// run is one invoke step: one attempt of the invocation, retried through
// the durable queue while concurrency limits are full.
func (v *invocation) run(ctx workflow.Context) (InvokeResult, error) {
	var a *activities.Functions
	req := activities.InvokeFunctionInput{
		RequestID: v.in.RequestID,
		Tenant:    v.in.Tenant,
		Function:  v.in.Function,
		SubTenant: v.in.SubTenant,
		Payload:   v.in.Payload,
		Async:     v.in.Async,
		LogTail:   v.in.LogTail && !v.in.Async,
		Qualifier: v.in.Qualifier,
	}
	if v.in.MaxQueueWait > 0 {
		// workflow.Now is the time of the current workflow task's start
		// event, so the deadline replays to the same instant.
		req.QueueDeadline = workflow.Now(ctx).Add(v.in.MaxQueueWait)
	}
	var out activities.InvokeFunctionResult
	if err := v.execute(ctx, v.deadline, "invoke "+v.in.Function, a.InvokeFunction, req).Get(ctx, &out); err != nil {
		return v.failed(err)
	}
	return InvokeResult{
		Payload:         out.Payload,
		EnvironmentID:   out.EnvironmentID,
		ColdStart:       out.ColdStart,
		DurationMS:      out.DurationMS,
		LogTail:         out.LogTail,
		ExecutedVersion: out.ExecutedVersion,
	}, nil
}

// failed maps the invoke step's error: a function error becomes the result;
// a final provider error is returned with its type at the top of the
// failure, so starters need not unwrap the ActivityError; and a retryable
// error that outlived the deadline becomes DeadlineExceeded.
func (v *invocation) failed(err error) (InvokeResult, error) {
	if fnErr, ran, ok := activities.DecodeFunctionError(err); ok {
		return InvokeResult{
			EnvironmentID:   ran.EnvironmentID,
			ColdStart:       ran.ColdStart,
			DurationMS:      ran.DurationMS,
			FunctionError:   &FunctionErrorInfo{Type: fnErr.Type, Message: fnErr.Message},
			LogTail:         ran.LogTail,
			ExecutedVersion: ran.ExecutedVersion,
		}, nil
	}
	if final, ok := surfaceError(err); ok {
		return InvokeResult{}, final
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return InvokeResult{}, err
	}
	if temporal.IsCanceledError(err) {
		return InvokeResult{}, err
	}
	// The retry policy has no attempt limit, so a retryable error ends only
	// when the deadline does.
	last := err
	if appErr != nil {
		last = errors.New(appErr.Message())
	}
	return InvokeResult{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("invocation of %s for sub-tenant %q did not complete within its %s deadline; last error: %v",
			v.in.Function, v.in.SubTenant, v.deadline, last),
		ErrTypeDeadlineExceeded, nil)
}
