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
// Errors that no retry can fix (InvalidRequest, IdempotencyMismatch,
// Unsupported, FunctionError) are marked non-retryable whatever the caller's
// retry policy says. Everything else keeps its type but stays retryable, so
// the policy decides: a burst chunk lists InsufficientCapacity as
// non-retryable, a function invocation may retry TooManyRequests, and so on.
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
	retryable := func(errType string) error {
		return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{})
	}
	permanent := func(errType string, details ...any) error {
		return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{
			NonRetryable: true,
			Details:      details,
		})
	}
	var fnErr *providers.FunctionError
	switch {
	case errors.As(err, &fnErr):
		return permanent(providers.ErrTypeFunctionError, *fnErr)
	case providers.IsInvalid(err):
		return permanent(providers.ErrTypeInvalid)
	case providers.IsIdempotencyMismatch(err):
		return permanent(providers.ErrTypeIdempotencyMismatch)
	case errors.Is(err, providers.ErrUnsupported):
		return permanent(providers.ErrTypeUnsupported)
	case providers.IsInsufficientCapacity(err):
		return retryable(providers.ErrTypeInsufficientCapacity)
	case providers.IsThrottled(err):
		return retryable(providers.ErrTypeThrottled)
	case providers.IsTooManyRequests(err):
		return retryable(providers.ErrTypeTooManyRequests)
	case providers.IsNotFound(err):
		return retryable(providers.ErrTypeNotFound)
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
