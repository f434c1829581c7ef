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
	InitialInterval:    100 * time.Millisecond,
	BackoffCoefficient: 2,
	MaximumInterval:    5 * time.Second,
	NonRetryableErrorTypes: []string{
		providers.ErrTypeFunctionError,
		providers.ErrTypeInvalid,
		providers.ErrTypeNotFound,
		providers.ErrTypeUnsupported,
	},
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
func InvokeWorkflow(ctx workflow.Context, in InvokeInput) (InvokeResult, error) {
	inv := &invocation{in: in}
	if err := inv.setup(); err != nil {
		return InvokeResult{}, err
	}
	return inv.run(ctx)
}

type invocation struct {
	in       InvokeInput
	deadline time.Duration // never zero after setup
	mode     ActivityMode  // never ActivityModeDefault after setup
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
	return nil
}

func (v *invocation) run(ctx workflow.Context) (InvokeResult, error) {
	var a *activities.Functions
	req := activities.InvokeFunctionInput{
		RequestID: v.in.RequestID,
		Tenant:    v.in.Tenant,
		Function:  v.in.Function,
		SubTenant: v.in.SubTenant,
		Payload:   v.in.Payload,
		Async:     v.in.Async,
	}
	var f workflow.Future
	if v.mode == ActivityModeLocal {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			ScheduleToCloseTimeout: v.deadline,
			RetryPolicy:            invokeRetryPolicy,
			Summary:                "invoke " + v.in.Function,
		})
		f = workflow.ExecuteLocalActivity(ctx, a.InvokeFunction, req)
	} else {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			ScheduleToCloseTimeout: v.deadline,
			StartToCloseTimeout:    v.deadline,
			RetryPolicy:            invokeRetryPolicy,
			Summary:                "invoke " + v.in.Function,
		})
		f = workflow.ExecuteActivity(ctx, a.InvokeFunction, req)
	}
	var out activities.InvokeFunctionResult
	if err := f.Get(ctx, &out); err != nil {
		return v.failed(err)
	}
	return InvokeResult{
		Payload:       out.Payload,
		EnvironmentID: out.EnvironmentID,
		ColdStart:     out.ColdStart,
		DurationMS:    out.DurationMS,
	}, nil
}

// failed maps the invoke step's error: a function error becomes the result;
// a final provider error is returned with its type at the top of the
// failure, so starters need not unwrap the ActivityError; and a retryable
// error that outlived the deadline becomes DeadlineExceeded.
func (v *invocation) failed(err error) (InvokeResult, error) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case providers.ErrTypeFunctionError:
			res := InvokeResult{FunctionError: &FunctionErrorInfo{Type: "Unhandled", Message: appErr.Message()}}
			var d providers.FunctionError
			var ran activities.InvokeFunctionResult
			switch {
			case !appErr.HasDetails():
			case appErr.Details(&d, &ran) == nil:
				res.EnvironmentID, res.ColdStart, res.DurationMS = ran.EnvironmentID, ran.ColdStart, ran.DurationMS
				fallthrough
			case appErr.Details(&d) == nil:
				res.FunctionError = &FunctionErrorInfo{Type: d.Type, Message: d.Message}
			}
			return res, nil
		case providers.ErrTypeInvalid, providers.ErrTypeNotFound, providers.ErrTypeUnsupported:
			return InvokeResult{}, temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil)
		}
		if appErr.NonRetryable() {
			return InvokeResult{}, err
		}
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
