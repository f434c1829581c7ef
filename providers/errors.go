// Package providers defines the cloud contracts gust's activities depend on:
// Compute for EC2-style instances and Functions for Lambda-style functions.
// Adapters in the sub-packages (providers/ec2, providers/lambda) translate SDK
// errors into the typed errors below at their boundary, and nowhere else.
package providers

import (
	"errors"
	"fmt"
)

// Error type names as they cross the Temporal boundary in
// temporal.NewApplicationError. Retry policies list non-retryable types by
// these names, so they are part of the wire contract: never rename them.
const (
	ErrTypeInsufficientCapacity = "InsufficientCapacity"
	ErrTypeThrottled            = "Throttled"
	ErrTypeNotFound             = "NotFound"
	ErrTypeInvalid              = "InvalidRequest"
	ErrTypeIdempotencyMismatch  = "IdempotencyMismatch"
	ErrTypeTooManyRequests      = "TooManyRequests"
	ErrTypeFunctionError        = "FunctionError"
	ErrTypeUnsupported          = "Unsupported"
)

// InsufficientCapacityError is returned when the cloud cannot place the
// requested instances (EC2 InsufficientInstanceCapacity, or a capacity
// reservation that no zone can hold).
type InsufficientCapacityError struct{ error }

// NewInsufficientCapacityError wraps err as an InsufficientCapacityError.
func NewInsufficientCapacityError(err error) error { return &InsufficientCapacityError{err} }

func (e *InsufficientCapacityError) Unwrap() error { return e.error }

// IsInsufficientCapacity reports whether err is or wraps an InsufficientCapacityError.
func IsInsufficientCapacity(err error) bool {
	var e *InsufficientCapacityError
	return errors.As(err, &e)
}

// ThrottledError is returned when the cloud's rate limiter refused the call
// (EC2 RequestLimitExceeded, Lambda TooManyRequestsException for API rate).
// The call had no effect and may be retried after a backoff.
type ThrottledError struct{ error }

// NewThrottledError wraps err as a ThrottledError.
func NewThrottledError(err error) error { return &ThrottledError{err} }

func (e *ThrottledError) Unwrap() error { return e.error }

// IsThrottled reports whether err is or wraps a ThrottledError.
func IsThrottled(err error) bool {
	var e *ThrottledError
	return errors.As(err, &e)
}

// NotFoundError is returned when the named resource does not exist, or is
// not visible to the caller's tenant.
type NotFoundError struct{ error }

// NewNotFoundError wraps err as a NotFoundError.
func NewNotFoundError(err error) error { return &NotFoundError{err} }

func (e *NotFoundError) Unwrap() error { return e.error }

// IsNotFound reports whether err is or wraps a NotFoundError.
func IsNotFound(err error) bool {
	var e *NotFoundError
	return errors.As(err, &e)
}

// InvalidError is returned when the cloud rejected the request's parameters.
// Retrying the same request can never succeed.
type InvalidError struct{ error }

// NewInvalidError wraps err as an InvalidError.
func NewInvalidError(err error) error { return &InvalidError{err} }

func (e *InvalidError) Unwrap() error { return e.error }

// IsInvalid reports whether err is or wraps an InvalidError.
func IsInvalid(err error) bool {
	var e *InvalidError
	return errors.As(err, &e)
}

// IdempotencyMismatchError is returned when a client token was reused with
// different parameters (EC2 IdempotentParameterMismatch).
type IdempotencyMismatchError struct{ error }

// NewIdempotencyMismatchError wraps err as an IdempotencyMismatchError.
func NewIdempotencyMismatchError(err error) error { return &IdempotencyMismatchError{err} }

func (e *IdempotencyMismatchError) Unwrap() error { return e.error }

// IsIdempotencyMismatch reports whether err is or wraps an IdempotencyMismatchError.
func IsIdempotencyMismatch(err error) bool {
	var e *IdempotencyMismatchError
	return errors.As(err, &e)
}

// TooManyRequestsError is returned when a function's concurrency limits
// (per sub-tenant, per function or in total) are all in use (Lambda
// TooManyRequestsException with a concurrency reason). Retry after a backoff.
type TooManyRequestsError struct{ error }

// NewTooManyRequestsError wraps err as a TooManyRequestsError.
func NewTooManyRequestsError(err error) error { return &TooManyRequestsError{err} }

func (e *TooManyRequestsError) Unwrap() error { return e.error }

// IsTooManyRequests reports whether err is or wraps a TooManyRequestsError.
func IsTooManyRequests(err error) bool {
	var e *TooManyRequestsError
	return errors.As(err, &e)
}

// ErrUnsupported is returned by an adapter for an operation its cloud does
// not offer (for example environment listing on AWS Lambda).
var ErrUnsupported = errors.New("operation not supported by this provider")

// FunctionError is a function's own error: the handler ran and failed, or its
// environment crashed or timed out. It is a result, not an infrastructure
// failure, so it is never retried.
type FunctionError struct {
	Type    string // error type reported by the runtime, e.g. "Runtime.ExitError"
	Message string
}

func (e *FunctionError) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Message) }

// IsFunctionError reports whether err is or wraps a FunctionError.
func IsFunctionError(err error) bool {
	var e *FunctionError
	return errors.As(err, &e)
}
