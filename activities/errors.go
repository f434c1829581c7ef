package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// ProviderError converts a typed provider error (see package providers) into
// the temporal.ApplicationError that carries its stable type name across the
// Temporal boundary, so workflows can list non-retryable types by name in
// their retry policies and match them with temporal.ApplicationError.Type.
//
// Errors that no retry can fix (providers.IsPermanent: InvalidRequest,
// IdempotencyMismatch, Unsupported, FunctionError) are marked non-retryable
// whatever the caller's retry policy says. Everything else keeps its type
// but stays retryable, so the policy decides: a burst chunk lists
// InsufficientCapacity as non-retryable, a function invocation may retry
// TooManyRequests, and so on. A FunctionError is built by NewFunctionError.
//
// nil stays nil; an error that already is an ApplicationError or a
// cancellation passes through unchanged; an unknown error is wrapped as a
// plain retryable error.
func ProviderError(err error) error {
	return providerError("", err)
}

// ProviderErrorf is ProviderError with a short lowercase context prefixed to
// the message, e.g. ProviderErrorf("launching burst chunk 3", err).
func ProviderErrorf(doing string, err error) error {
	return providerError(doing, err)
}

func providerError(doing string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || temporal.IsCanceledError(err) {
		return err
	}
	msg := err.Error()
	if doing != "" {
		msg = doing + ", " + msg
	}
	var fnErr *providers.FunctionError
	if errors.As(err, &fnErr) {
		return NewFunctionError(msg, *fnErr, InvokeFunctionResult{})
	}
	var errType string
	switch {
	case providers.IsInvalid(err):
		errType = providers.ErrTypeInvalid
	case providers.IsIdempotencyMismatch(err):
		errType = providers.ErrTypeIdempotencyMismatch
	case errors.Is(err, providers.ErrUnsupported):
		errType = providers.ErrTypeUnsupported
	case providers.IsInsufficientCapacity(err):
		errType = providers.ErrTypeInsufficientCapacity
	case providers.IsThrottled(err):
		errType = providers.ErrTypeThrottled
	case providers.IsTooManyRequests(err):
		errType = providers.ErrTypeTooManyRequests
	case providers.IsNotFound(err):
		errType = providers.ErrTypeNotFound
	}
	if errType != "" {
		return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{
			NonRetryable: providers.IsPermanent(errType),
		})
	}
	if doing != "" {
		return fmt.Errorf("%s, %w", doing, err)
	}
	return err
}

// ErrorType returns the ApplicationError type name of err ("" if err is not
// an ApplicationError). Workflows use it to branch on provider error types
// after an activity failed, e.g. ErrorType(err) == providers.ErrTypeInsufficientCapacity.
func ErrorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// NewFunctionError is the one encoding of a function's own error as it
// crosses the Temporal boundary: a non-retryable ApplicationError of type
// providers.ErrTypeFunctionError whose details are the FunctionError and
// what the run reported (environment, cold start, duration, log tail,
// version; zero when the function never ran, as for a response over the
// size limit). DecodeFunctionError reads it back.
func NewFunctionError(msg string, fnErr providers.FunctionError, ran InvokeFunctionResult) error {
	return temporal.NewApplicationErrorWithOptions(msg, providers.ErrTypeFunctionError,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{fnErr, ran}})
}

// DecodeFunctionError reads a function error made by NewFunctionError, or
// by any earlier gust: recorded histories hold three forms, all read here.
//
//   - details [FunctionError, InvokeFunctionResult]: NewFunctionError, and
//     InvokeFunction before it;
//   - details [FunctionError]: ProviderError before NewFunctionError;
//   - no details, or details that do not decode: the function error is
//     {Type: "Unhandled", Message: the ApplicationError's message}.
//
// ran.Payload is always nil. ok is false when err is not, and does not
// wrap, an ApplicationError of type FunctionError.
func DecodeFunctionError(err error) (fnErr providers.FunctionError, ran InvokeFunctionResult, ok bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != providers.ErrTypeFunctionError {
		return providers.FunctionError{}, InvokeFunctionResult{}, false
	}
	if appErr.HasDetails() {
		// Details fails when asked for more values than it holds, so the
		// two-value form is tried first and the one-value form after.
		if appErr.Details(&fnErr, &ran) == nil {
			ran.Payload = nil // a failed run has none; JSON brings nil back as null
			return fnErr, ran, true
		}
		fnErr, ran = providers.FunctionError{}, InvokeFunctionResult{}
		if appErr.Details(&fnErr) == nil {
			return fnErr, ran, true
		}
	}
	return providers.FunctionError{Type: "Unhandled", Message: appErr.Message()}, InvokeFunctionResult{}, true
}
