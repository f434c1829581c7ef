package workflows

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// Tests of the InvokeInput fields the gateway uses: MaxQueueWait,
// EventRetries, DryRun and LogTail.

func queueTimeoutErr() error {
	return temporal.NewNonRetryableApplicationError("did not start before its queue deadline", activities.ErrTypeQueueTimeout, nil)
}

func TestInvokeWorkflowQueueTimeout(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			start := env.Now()
			var deadlines []time.Time
			record := func(args mock.Arguments) {
				deadlines = append(deadlines, args.Get(1).(activities.InvokeFunctionInput).QueueDeadline)
			}
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).Run(record).
				Return(activities.InvokeFunctionResult{}, activities.ProviderErrorf("invoking function",
					providers.NewTooManyRequestsError(errors.New("sub-tenant at its limit")))).Times(2)
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).Run(record).
				Return(activities.InvokeFunctionResult{}, queueTimeoutErr()).Once()
			in := validInvoke(mode)
			in.MaxQueueWait = 2 * time.Second

			env.ExecuteWorkflow(InvokeWorkflow, in)

			appErr := appError(t, env.GetWorkflowError())
			require.Equal(t, ErrTypeQueueTimeout, appErr.Type(), "the type is at the top of the failure")
			require.True(t, appErr.NonRetryable())
			require.Len(t, deadlines, 3, "not retried after QueueTimeout")
			for _, d := range deadlines {
				require.WithinDuration(t, start.Add(2*time.Second), d, time.Second, "every attempt carries the same absolute deadline")
				require.Equal(t, deadlines[0], d)
			}
			env.AssertExpectations(t)
		})
	}
}

func TestInvokeWorkflowNoQueueBoundByDefault(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.InvokeFunction, mock.Anything, mock.MatchedBy(func(in activities.InvokeFunctionInput) bool {
		return in.QueueDeadline.IsZero() && !in.LogTail
	})).Return(activities.InvokeFunctionResult{Payload: json.RawMessage(`1`)}, nil).Once()

	env.ExecuteWorkflow(InvokeWorkflow, validInvoke(ActivityModeDefault))

	var out InvokeResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Zero(t, out.Attempts)
	env.AssertExpectations(t)
}

func fnErr(msg string) error {
	return activities.ProviderErrorf("invoking function", &providers.FunctionError{Type: "EchoError", Message: msg})
}

func TestInvokeWorkflowEventRetries(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode)+"/all fail", func(t *testing.T) {
			env, a := newInvokeEnv()
			var at []time.Time
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { at = append(at, env.Now()) }).
				Return(activities.InvokeFunctionResult{}, fnErr("boom")).Times(3)
			in := validInvoke(mode)
			in.EventRetries = 2
			in.EventRetryDelay = 10 * time.Second

			env.ExecuteWorkflow(InvokeWorkflow, in)

			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.Equal(t, &FunctionErrorInfo{Type: "EchoError", Message: "boom"}, out.FunctionError)
			require.Equal(t, 3, out.Attempts)
			require.Len(t, at, 3)
			require.GreaterOrEqual(t, at[1].Sub(at[0]), 10*time.Second, "first retry after the delay")
			require.GreaterOrEqual(t, at[2].Sub(at[1]), 20*time.Second, "second retry after twice the delay")
			env.AssertExpectations(t)
		})
		t.Run(string(mode)+"/second succeeds", func(t *testing.T) {
			env, a := newInvokeEnv()
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Return(activities.InvokeFunctionResult{}, fnErr("flaky")).Once()
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Return(activities.InvokeFunctionResult{Payload: json.RawMessage(`"ok"`)}, nil).Once()
			in := validInvoke(mode)
			in.EventRetries = 2

			env.ExecuteWorkflow(InvokeWorkflow, in)

			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.Nil(t, out.FunctionError)
			require.Equal(t, 2, out.Attempts)
			require.JSONEq(t, `"ok"`, string(out.Payload))
			env.AssertExpectations(t)
		})
	}
	t.Run("default delay is a minute", func(t *testing.T) {
		env, a := newInvokeEnv()
		var at []time.Time
		env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
			Run(func(mock.Arguments) { at = append(at, env.Now()) }).
			Return(activities.InvokeFunctionResult{}, fnErr("boom")).Times(2)
		in := validInvoke(ActivityModeDefault)
		in.EventRetries = 1

		env.ExecuteWorkflow(InvokeWorkflow, in)

		require.NoError(t, env.GetWorkflowError())
		require.Len(t, at, 2)
		require.GreaterOrEqual(t, at[1].Sub(at[0]), time.Minute)
	})
	t.Run("gust failures are not retried", func(t *testing.T) {
		env, a := newInvokeEnv()
		calls := 0
		env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).Run(func(mock.Arguments) { calls++ }).
			Return(activities.InvokeFunctionResult{}, activities.ProviderErrorf("invoking function",
				providers.NewNotFoundError(errors.New("no such function"))))
		in := validInvoke(ActivityModeDefault)
		in.EventRetries = 2

		env.ExecuteWorkflow(InvokeWorkflow, in)

		require.Equal(t, providers.ErrTypeNotFound, appError(t, env.GetWorkflowError()).Type())
		require.Equal(t, 1, calls)
	})
}

func TestInvokeWorkflowDryRun(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode)+"/exists", func(t *testing.T) {
			env, a := newInvokeEnv()
			env.OnActivity(a.CheckFunction, mock.Anything, "acme", "hello").
				Return(activities.FunctionCheck{Tenancy: providers.TenancyPerTenant, Version: "3"}, nil).Once()
			invoked := 0
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).Run(func(mock.Arguments) { invoked++ }).
				Return(activities.InvokeFunctionResult{}, nil).Maybe()
			in := validInvoke(mode)
			in.DryRun = true

			env.ExecuteWorkflow(InvokeWorkflow, in)

			require.NoError(t, env.GetWorkflowError())
			require.Zero(t, invoked, "a dry run runs nothing")
			env.AssertExpectations(t)
		})
		t.Run(string(mode)+"/not found", func(t *testing.T) {
			env, a := newInvokeEnv()
			calls := 0
			env.OnActivity(a.CheckFunction, mock.Anything, "acme", "hello").Run(func(mock.Arguments) { calls++ }).
				Return(activities.FunctionCheck{}, activities.ProviderErrorf("getting function", providers.NewNotFoundError(errors.New("function hello not found"))))
			in := validInvoke(mode)
			in.DryRun = true

			env.ExecuteWorkflow(InvokeWorkflow, in)

			appErr := appError(t, env.GetWorkflowError())
			require.Equal(t, providers.ErrTypeNotFound, appErr.Type())
			require.Equal(t, 1, calls, "NotFound is final")
		})
	}
	t.Run("no tenancy", func(t *testing.T) {
		env, a := newInvokeEnv()
		env.OnActivity(a.CheckFunction, mock.Anything, "acme", "hello").
			Return(activities.FunctionCheck{Version: "1"}, nil).Once()
		in := validInvoke(ActivityModeDefault)
		in.DryRun = true

		env.ExecuteWorkflow(InvokeWorkflow, in)

		require.Equal(t, providers.ErrTypeInvalid, appError(t, env.GetWorkflowError()).Type())
	})
	for q, ok := range map[string]bool{"": true, "$LATEST": true, "3": true, "2": false} {
		t.Run("qualifier "+q, func(t *testing.T) {
			env, a := newInvokeEnv()
			env.OnActivity(a.CheckFunction, mock.Anything, "acme", "hello").
				Return(activities.FunctionCheck{Tenancy: providers.TenancyPerTenant, Version: "3"}, nil).Once()
			in := validInvoke(ActivityModeDefault)
			in.DryRun, in.Qualifier = true, q

			env.ExecuteWorkflow(InvokeWorkflow, in)

			if ok {
				require.NoError(t, env.GetWorkflowError())
			} else {
				require.Equal(t, providers.ErrTypeNotFound, appError(t, env.GetWorkflowError()).Type())
			}
		})
	}
}

func TestInvokeWorkflowLogTail(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		env, a := newInvokeEnv()
		env.OnActivity(a.InvokeFunction, mock.Anything, mock.MatchedBy(func(in activities.InvokeFunctionInput) bool { return in.LogTail })).
			Return(activities.InvokeFunctionResult{Payload: json.RawMessage(`1`), LogTail: "START\nhello\nEND\n"}, nil).Once()
		in := validInvoke(ActivityModeDefault)
		in.LogTail = true

		env.ExecuteWorkflow(InvokeWorkflow, in)

		var out InvokeResult
		require.NoError(t, env.GetWorkflowResult(&out))
		require.Equal(t, "START\nhello\nEND\n", out.LogTail)
		env.AssertExpectations(t)
	})
	t.Run("function error keeps it", func(t *testing.T) {
		env, a := newInvokeEnv()
		env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
			Return(activities.InvokeFunctionResult{}, temporal.NewApplicationErrorWithOptions(
				"invoking function, EchoError: boom", providers.ErrTypeFunctionError,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{
					providers.FunctionError{Type: "EchoError", Message: "boom"},
					activities.InvokeFunctionResult{EnvironmentID: "env-1", LogTail: "about to fail\n"},
				}})).Once()
		in := validInvoke(ActivityModeDefault)
		in.LogTail = true

		env.ExecuteWorkflow(InvokeWorkflow, in)

		var out InvokeResult
		require.NoError(t, env.GetWorkflowResult(&out))
		require.NotNil(t, out.FunctionError)
		require.Equal(t, "about to fail\n", out.LogTail)
	})
	t.Run("not with async", func(t *testing.T) {
		env, a := newInvokeEnv()
		env.OnActivity(a.InvokeFunction, mock.Anything, mock.MatchedBy(func(in activities.InvokeFunctionInput) bool { return !in.LogTail && in.Async })).
			Return(activities.InvokeFunctionResult{}, nil).Once()
		in := validInvoke(ActivityModeDefault)
		in.LogTail, in.Async = true, true

		env.ExecuteWorkflow(InvokeWorkflow, in)

		require.NoError(t, env.GetWorkflowError())
		env.AssertExpectations(t)
	})
}

func TestInvokeInputValidateGatewayFields(t *testing.T) {
	ok := validInvoke(ActivityModeDefault)
	for name, mutate := range map[string]func(*InvokeInput){
		"queue wait":     func(in *InvokeInput) { in.MaxQueueWait = 30 * time.Second },
		"two retries":    func(in *InvokeInput) { in.EventRetries = 2 },
		"retry delay":    func(in *InvokeInput) { in.EventRetries, in.EventRetryDelay = 1, time.Millisecond },
		"dry run":        func(in *InvokeInput) { in.DryRun = true },
		"tail and async": func(in *InvokeInput) { in.LogTail, in.Async = true, true },
	} {
		in := ok
		mutate(&in)
		require.NoError(t, in.Validate(), name)
	}
	for name, mutate := range map[string]func(*InvokeInput){
		"negative queue wait":  func(in *InvokeInput) { in.MaxQueueWait = -time.Second },
		"queue wait too long":  func(in *InvokeInput) { in.MaxQueueWait = MaxInvokeDeadline + time.Second },
		"three retries":        func(in *InvokeInput) { in.EventRetries = 3 },
		"negative retries":     func(in *InvokeInput) { in.EventRetries = -1 },
		"negative delay":       func(in *InvokeInput) { in.EventRetryDelay = -time.Second },
		"delay too long":       func(in *InvokeInput) { in.EventRetryDelay = MaxEventRetryDelay + time.Second },
		"retries of async run": func(in *InvokeInput) { in.EventRetries, in.Async = 1, true },
	} {
		in := ok
		mutate(&in)
		require.Error(t, in.Validate(), name)
	}
}

// TestInvokeInputEncodingOmitsGatewayFields: a starter that does not use
// the new fields encodes the same input as before they existed.
func TestInvokeInputEncodingOmitsGatewayFields(t *testing.T) {
	b, err := json.Marshal(validInvoke(ActivityModeLocal))
	require.NoError(t, err)
	for _, field := range []string{"MaxQueueWait", "EventRetries", "EventRetryDelay", "DryRun", "LogTail"} {
		require.NotContains(t, string(b), field)
	}
	b, err = json.Marshal(activities.InvokeFunctionInput{RequestID: "r"})
	require.NoError(t, err)
	require.NotContains(t, string(b), "QueueDeadline")
	require.NotContains(t, string(b), "LogTail")
}
