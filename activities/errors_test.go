package activities_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// overTheWire sends err through the default failure converter and back, as
// Temporal records it in history and hands it to the workflow.
func overTheWire(err error) error {
	fc := temporal.GetDefaultFailureConverter()
	return fc.FailureToError(fc.ErrorToFailure(err))
}

func TestFunctionErrorRoundTrip(t *testing.T) {
	fnErr := providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"}
	ran := activities.InvokeFunctionResult{EnvironmentID: "env-1", ColdStart: true, DurationMS: 12, LogTail: "boom\n", ExecutedVersion: "3"}
	err := activities.NewFunctionError("invoking function, Runtime.ExitError: exit status 2", fnErr, ran)

	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, providers.ErrTypeFunctionError, appErr.Type())
	require.True(t, appErr.NonRetryable())

	for name, e := range map[string]error{"in process": err, "over the wire": overTheWire(err)} {
		t.Run(name, func(t *testing.T) {
			gotErr, gotRan, ok := activities.DecodeFunctionError(e)
			require.True(t, ok)
			require.Equal(t, fnErr, gotErr)
			require.Equal(t, ran, gotRan)
		})
	}
}

// TestDecodeFunctionErrorLegacyForms decodes the forms earlier gust wrote
// into histories that are still replayed.
func TestDecodeFunctionErrorLegacyForms(t *testing.T) {
	fnErr := providers.FunctionError{Type: "EchoError", Message: "boom"}
	cases := map[string]struct {
		err     error
		wantErr providers.FunctionError
		wantRan activities.InvokeFunctionResult
	}{
		"one detail, ProviderError before NewFunctionError": {
			err: temporal.NewApplicationErrorWithOptions("invoking function, EchoError: boom", providers.ErrTypeFunctionError,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{fnErr}}),
			wantErr: fnErr,
		},
		"two details, InvokeFunction before NewFunctionError": {
			err: temporal.NewApplicationErrorWithOptions("invoking function, EchoError: boom", providers.ErrTypeFunctionError,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{fnErr, activities.InvokeFunctionResult{EnvironmentID: "env-2", DurationMS: 7}}}),
			wantErr: fnErr,
			wantRan: activities.InvokeFunctionResult{EnvironmentID: "env-2", DurationMS: 7},
		},
		"no details": {
			err:     temporal.NewNonRetryableApplicationError("handler crashed", providers.ErrTypeFunctionError, nil),
			wantErr: providers.FunctionError{Type: "Unhandled", Message: "handler crashed"},
		},
		"details that are no function error": {
			err:     temporal.NewNonRetryableApplicationError("odd", providers.ErrTypeFunctionError, nil, 42),
			wantErr: providers.FunctionError{Type: "Unhandled", Message: "odd"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gotErr, gotRan, ok := activities.DecodeFunctionError(overTheWire(tc.err))
			require.True(t, ok)
			require.Equal(t, tc.wantErr, gotErr)
			require.Equal(t, tc.wantRan, gotRan)
		})
	}
}

func TestDecodeFunctionErrorRefusesOtherErrors(t *testing.T) {
	for _, err := range []error{
		nil,
		errors.New("plain"),
		temporal.NewNonRetryableApplicationError("bad", providers.ErrTypeInvalid, nil),
	} {
		_, _, ok := activities.DecodeFunctionError(err)
		require.False(t, ok, "%v", err)
	}
}

// TestProviderErrorEncodesFunctionErrorsOneWay checks that a function error
// converted by ProviderError (a response over the size limit) has the same
// form as one InvokeFunction builds: both details, the run zero.
func TestProviderErrorEncodesFunctionErrorsOneWay(t *testing.T) {
	fnErr := providers.FunctionError{Type: activities.ResponseTooLargeErrorType, Message: "too large"}
	err := overTheWire(activities.ProviderErrorf("invoking function", &fnErr))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.True(t, appErr.NonRetryable())
	var d providers.FunctionError
	var ran activities.InvokeFunctionResult
	require.NoError(t, appErr.Details(&d, &ran), "two details")
	require.Equal(t, fnErr, d)
	require.Equal(t, activities.InvokeFunctionResult{Payload: json.RawMessage("null")}, ran, "the zero run, its nil payload as JSON null")
}

// TestProviderErrorRetryability checks that ProviderError marks exactly the
// permanent types of providers' table non-retryable.
func TestProviderErrorRetryability(t *testing.T) {
	for _, err := range []error{
		providers.NewInvalidError(errors.New("x")),
		providers.NewIdempotencyMismatchError(errors.New("x")),
		providers.ErrUnsupported,
		providers.NewInsufficientCapacityError(errors.New("x")),
		providers.NewThrottledError(errors.New("x")),
		providers.NewTooManyRequestsError(errors.New("x")),
		providers.NewNotFoundError(errors.New("x")),
	} {
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, activities.ProviderError(err), &appErr)
		require.Equal(t, providers.IsPermanent(appErr.Type()), appErr.NonRetryable(), appErr.Type())
	}
}
