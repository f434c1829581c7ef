package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

var invokeModes = []ActivityMode{ActivityModeLocal, ActivityModeRegular}

func newInvokeEnv() (*testsuite.TestWorkflowEnvironment, *activities.Functions) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Functions
	env.RegisterActivity(a)
	return env, a
}

func validInvoke(mode ActivityMode) InvokeInput {
	return InvokeInput{
		RequestID:    "req-1",
		Tenant:       "acme",
		Function:     "hello",
		SubTenant:    "customer-42",
		Payload:      json.RawMessage(`{"name":"gust"}`),
		ActivityMode: mode,
	}
}

// appError returns the ApplicationError at the top of a workflow failure.
func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %v", err)
	return appErr
}

func TestInvokeWorkflowMapsResult(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			want := activities.InvokeFunctionInput{
				RequestID: "req-1",
				Tenant:    "acme",
				Function:  "hello",
				SubTenant: "customer-42",
				Payload:   json.RawMessage(`{"name":"gust"}`),
			}
			env.OnActivity(a.InvokeFunction, mock.Anything, want).Return(activities.InvokeFunctionResult{
				Payload:       json.RawMessage(`{"greeting":"hi gust"}`),
				EnvironmentID: "env-7",
				ColdStart:     true,
				DurationMS:    12,
			}, nil).Once()

			env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.JSONEq(t, `{"greeting":"hi gust"}`, string(out.Payload))
			require.Equal(t, "env-7", out.EnvironmentID)
			require.True(t, out.ColdStart)
			require.Equal(t, int64(12), out.DurationMS)
			require.Nil(t, out.FunctionError)
			env.AssertExpectations(t)
		})
	}
}

func TestInvokeWorkflowPassesWarmStartThrough(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).Return(activities.InvokeFunctionResult{
				Payload: json.RawMessage(`1`), EnvironmentID: "env-7", ColdStart: false, DurationMS: 1,
			}, nil).Once()

			env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.False(t, out.ColdStart)
			require.Equal(t, "env-7", out.EnvironmentID)
		})
	}
}

func TestInvokeWorkflowEmptyPayloadAndAsync(t *testing.T) {
	env, a := newInvokeEnv()
	in := validInvoke(ActivityModeDefault)
	in.Payload = nil
	in.Async = true
	env.OnActivity(a.InvokeFunction, mock.Anything, mock.MatchedBy(func(req activities.InvokeFunctionInput) bool {
		return req.Async && string(req.Payload) == "{}"
	})).Return(activities.InvokeFunctionResult{EnvironmentID: "env-1"}, nil).Once()

	env.ExecuteWorkflow(InvokeWorkflow, in)

	var out InvokeResult
	require.NoError(t, env.GetWorkflowResult(&out))
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.JSONEq(t, `{"payload":null,"environment_id":"env-1","cold_start":false,"duration_ms":0}`, string(b))
	env.AssertExpectations(t)
}

func TestInvokeWorkflowFunctionErrorIsAResult(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			calls := 0
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calls++ }).
				Return(activities.InvokeFunctionResult{}, activities.ProviderErrorf("invoking function",
					&providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"}))

			env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

			require.NoError(t, env.GetWorkflowError())
			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.Equal(t, &FunctionErrorInfo{Type: "Runtime.ExitError", Message: "exit status 2"}, out.FunctionError)
			require.Equal(t, 1, calls, "a function error is never retried")
			// The CLI's --output json shows the error next to the fixed fields.
			b, err := json.Marshal(out)
			require.NoError(t, err)
			require.Contains(t, string(b), `"function_error":{"type":"Runtime.ExitError","message":"exit status 2"}`)
		})
	}
}

func TestInvokeWorkflowWaitsOutTooManyRequests(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			var calledAt []time.Time
			throttled := activities.ProviderErrorf("invoking function",
				providers.NewTooManyRequestsError(errors.New("sub-tenant concurrency limit reached")))
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calledAt = append(calledAt, env.Now()) }).
				Return(activities.InvokeFunctionResult{}, throttled).Times(4)
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calledAt = append(calledAt, env.Now()) }).
				Return(activities.InvokeFunctionResult{EnvironmentID: "env-3", Payload: json.RawMessage(`"ok"`)}, nil).Once()

			env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

			require.NoError(t, env.GetWorkflowError())
			var out InvokeResult
			require.NoError(t, env.GetWorkflowResult(&out))
			require.Equal(t, "env-3", out.EnvironmentID)
			require.Len(t, calledAt, 5)
			// Exponential backoff from 100ms, doubling.
			want := 100 * time.Millisecond
			for i := 1; i < len(calledAt); i++ {
				require.GreaterOrEqual(t, calledAt[i].Sub(calledAt[i-1]), want, "gap before attempt %d", i+1)
				want *= 2
			}
			env.AssertExpectations(t)
		})
	}
}

func TestInvokeWorkflowGivesUpAtTheDeadline(t *testing.T) {
	for _, mode := range invokeModes {
		t.Run(string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			calls := 0
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calls++ }).
				Return(activities.InvokeFunctionResult{}, activities.ProviderErrorf("invoking function",
					providers.NewTooManyRequestsError(errors.New("function concurrency limit reached"))))
			in := validInvoke(mode)
			in.Deadline = 2 * time.Second

			env.ExecuteWorkflow(InvokeWorkflow, in)

			appErr := appError(t, env.GetWorkflowError())
			require.Equal(t, ErrTypeDeadlineExceeded, appErr.Type())
			require.True(t, appErr.NonRetryable())
			require.Contains(t, appErr.Message(), "2s deadline")
			require.Contains(t, appErr.Message(), "concurrency limit reached")
			require.Greater(t, calls, 3, "retried until the deadline")
		})
	}
}

func TestInvokeWorkflowFinalProviderErrors(t *testing.T) {
	cases := map[string]error{
		providers.ErrTypeNotFound:    providers.NewNotFoundError(errors.New("function hello not found")),
		providers.ErrTypeInvalid:     providers.NewInvalidError(errors.New("missing tenant id")),
		providers.ErrTypeUnsupported: providers.ErrUnsupported,
	}
	for _, mode := range invokeModes {
		for typ, provErr := range cases {
			t.Run(string(mode)+"/"+typ, func(t *testing.T) {
				env, a := newInvokeEnv()
				calls := 0
				env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
					Run(func(mock.Arguments) { calls++ }).
					Return(activities.InvokeFunctionResult{}, activities.ProviderErrorf("invoking function", provErr))

				env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

				appErr := appError(t, env.GetWorkflowError())
				require.Equal(t, typ, appErr.Type())
				require.Contains(t, appErr.Message(), provErr.Error())
				require.Equal(t, 1, calls, "final errors are not retried")
			})
		}
	}
}

func TestInvokeWorkflowRejectsInvalidInputWithoutActivity(t *testing.T) {
	cases := map[string]func(*InvokeInput){
		"sub-tenant with bad chars": func(in *InvokeInput) { in.SubTenant = "cust#1" },
		"sub-tenant too long":       func(in *InvokeInput) { in.SubTenant = strings.Repeat("a", 257) },
		"empty sub-tenant":          func(in *InvokeInput) { in.SubTenant = "" },
		"tenant with slash":         func(in *InvokeInput) { in.Tenant = "acme/evil" },
		"tenant dot-dot":            func(in *InvokeInput) { in.Tenant = ".." },
		"function with dot-dot":     func(in *InvokeInput) { in.Function = "a..b" },
		"function with backslash":   func(in *InvokeInput) { in.Function = `a\b` },
		"payload over 6 MB": func(in *InvokeInput) {
			in.Payload = json.RawMessage(`"` + strings.Repeat("x", MaxPayloadBytes) + `"`)
		},
		"negative deadline": func(in *InvokeInput) { in.Deadline = -time.Second },
		"unknown mode":      func(in *InvokeInput) { in.ActivityMode = "remote" },
		"no request id":     func(in *InvokeInput) { in.RequestID = "" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			env, a := newInvokeEnv()
			calls := 0
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calls++ }).
				Return(activities.InvokeFunctionResult{}, nil).Maybe()
			in := validInvoke(ActivityModeDefault)
			mutate(&in)

			env.ExecuteWorkflow(InvokeWorkflow, in)

			appErr := appError(t, env.GetWorkflowError())
			require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
			require.True(t, appErr.NonRetryable())
			require.Zero(t, calls, "no activity runs for an invalid request")
		})
	}
}

// Bad JSON cannot even be encoded as a workflow input (json.RawMessage), so
// the CLI must catch it with Validate; the workflow check covers other
// encoders.
func TestInvokeInputValidate(t *testing.T) {
	ok := validInvoke(ActivityModeDefault)
	require.NoError(t, ok.Validate())

	valid := []func(*InvokeInput){
		func(in *InvokeInput) { in.SubTenant = strings.Repeat("a", 256) },
		func(in *InvokeInput) { in.SubTenant = "org/team:a=b+c-d@e.f g_h" },
		func(in *InvokeInput) { in.Payload = nil },
		func(in *InvokeInput) {
			in.Payload = json.RawMessage(`"` + strings.Repeat("x", MaxPayloadBytes-2) + `"`)
		},
		func(in *InvokeInput) { in.Deadline = MaxInvokeDeadline },
		func(in *InvokeInput) { in.RequestID = "6f1c2a6e-3b7d-4f0a-9c1e-2d5b8a7f4e10" },
	}
	for i, mutate := range valid {
		in := ok
		mutate(&in)
		require.NoError(t, in.Validate(), "valid case %d", i)
	}

	invalid := map[string]func(*InvokeInput){
		"bad JSON": func(in *InvokeInput) { in.Payload = json.RawMessage(`{"a":`) },
		"not JSON": func(in *InvokeInput) { in.Payload = json.RawMessage(`hello`) },
		"payload over 6 MB": func(in *InvokeInput) {
			in.Payload = json.RawMessage(`"` + strings.Repeat("x", MaxPayloadBytes-1) + `"`)
		},
		"sub-tenant 257":        func(in *InvokeInput) { in.SubTenant = strings.Repeat("a", 257) },
		"sub-tenant newline":    func(in *InvokeInput) { in.SubTenant = "a\nb" },
		"sub-tenant unicode":    func(in *InvokeInput) { in.SubTenant = "café" },
		"tenant leading dash":   func(in *InvokeInput) { in.Tenant = "-acme" },
		"tenant dot":            func(in *InvokeInput) { in.Tenant = "." },
		"tenant too long":       func(in *InvokeInput) { in.Tenant = strings.Repeat("t", MaxNameLen+1) },
		"function empty":        func(in *InvokeInput) { in.Function = "" },
		"function slash":        func(in *InvokeInput) { in.Function = "../etc/passwd" },
		"request id with space": func(in *InvokeInput) { in.RequestID = "a b" },
		"deadline too long":     func(in *InvokeInput) { in.Deadline = MaxInvokeDeadline + time.Second },
	}
	for name, mutate := range invalid {
		in := ok
		mutate(&in)
		require.Error(t, in.Validate(), name)
	}
}

func TestInvokeWorkflowID(t *testing.T) {
	require.Equal(t, "invoke-acme-hello-req-1", InvokeWorkflowID("acme", "hello", "req-1"))
	require.Equal(t, "invoke-a_b-x_y-r_1", InvokeWorkflowID("a/b", `x\y`, "r 1"))
	id := InvokeWorkflowID("../x", "a\\b", strings.Repeat("r", 500))
	require.NotContains(t, id, "/")
	require.NotContains(t, id, `\`)
	require.LessOrEqual(t, len(id), len("invoke---")+2*MaxNameLen+MaxRequestIDLen)
	require.Equal(t, "invoke-_-_-_", InvokeWorkflowID("", "", ""))
}

func TestInvokeWorkflowActivityModeSwitch(t *testing.T) {
	cases := map[ActivityMode]bool{ // mode -> runs as a local activity
		ActivityModeDefault: DefaultInvokeActivityMode == ActivityModeLocal,
		ActivityModeLocal:   true,
		ActivityModeRegular: false,
	}
	for mode, wantLocal := range cases {
		t.Run("mode="+string(mode), func(t *testing.T) {
			env, a := newInvokeEnv()
			env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
				Return(activities.InvokeFunctionResult{EnvironmentID: "env-1"}, nil).Once()
			local, regular := 0, 0
			env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { local++ })
			env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { regular++ })

			env.ExecuteWorkflow(InvokeWorkflow, validInvoke(mode))

			require.NoError(t, env.GetWorkflowError())
			if wantLocal {
				require.Equal(t, []int{1, 0}, []int{local, regular})
			} else {
				require.Equal(t, []int{0, 1}, []int{local, regular})
			}
		})
	}
}

// TestInvokeWorkflowFunctionErrorKeepsItsEnvironment: the invoke activity
// sends the environment that ran the failing function as a second detail;
// the result reports it like a success would.
func TestInvokeWorkflowFunctionErrorKeepsItsEnvironment(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.InvokeFunction, mock.Anything, mock.Anything).
		Return(activities.InvokeFunctionResult{}, temporal.NewApplicationErrorWithOptions(
			"invoking function, Runtime.ExitError: exit status 2", providers.ErrTypeFunctionError,
			temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{
				providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"},
				activities.InvokeFunctionResult{EnvironmentID: "env-1", ColdStart: true, DurationMS: 12},
			}}))

	env.ExecuteWorkflow(InvokeWorkflow, validInvoke(ActivityModeLocal))

	require.NoError(t, env.GetWorkflowError())
	var out InvokeResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, &FunctionErrorInfo{Type: "Runtime.ExitError", Message: "exit status 2"}, out.FunctionError)
	require.Equal(t, "env-1", out.EnvironmentID)
	require.True(t, out.ColdStart)
	require.EqualValues(t, 12, out.DurationMS)
}
