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
// these names, recorded histories hold them and clients (the CLI, the
// gateway, starters) branch on them, so they are part of the wire
// contract: never rename them, and never spell them anywhere but here.
const (
	// Provider errors: the typed errors below, as activities.ProviderError
	// names them.
	ErrTypeInsufficientCapacity = "InsufficientCapacity"
	ErrTypeThrottled            = "Throttled"
	ErrTypeNotFound             = "NotFound"
	ErrTypeInvalid              = "InvalidRequest"
	ErrTypeIdempotencyMismatch  = "IdempotencyMismatch"
	ErrTypeTooManyRequests      = "TooManyRequests"
	ErrTypeFunctionError        = "FunctionError"
	ErrTypeUnsupported          = "Unsupported"

	// Activity errors that are gust's own, not a cloud's.

	// ErrTypeQueueTimeout: an invocation did not start running before its
	// queue deadline (activities.InvokeFunctionInput.QueueDeadline).
	ErrTypeQueueTimeout = "QueueTimeout"
	// ErrTypeTooManyInstances: the cloud returned more instances than a
	// launch's MaxCount.
	ErrTypeTooManyInstances = "TooManyInstances"

	// Workflow failures: the type of a failed workflow's own
	// ApplicationError, never an activity's.

	// ErrTypeDeadlineExceeded: an invocation could not run before its
	// deadline (workflows.ErrTypeDeadlineExceeded).
	ErrTypeDeadlineExceeded = "DeadlineExceeded"
	// ErrTypeFleetFailed: a fleet could not reach its target for a reason
	// other than capacity (workflows.ErrTypeFleetFailed).
	ErrTypeFleetFailed = "FleetFailed"
)

// errorTypes is the one table of the activity error types and of whether a
// retry can ever fix them. Permanent types are made non-retryable where the
// error is made (activities.ProviderError, or NewNonRetryableApplicationError)
// and every retry policy lists them too (NonRetryableErrorTypes), so a
// permanent error is never retried however it was built. Any other type is
// retryable, and each retry policy decides: a burst chunk wants
// InsufficientCapacity back at once to fall through to the fill path, an
// invocation wants NotFound back at once, every policy retries Throttled.
var errorTypes = []struct {
	name      string
	permanent bool
}{
	{ErrTypeInvalid, true},
	{ErrTypeIdempotencyMismatch, true},
	{ErrTypeUnsupported, true},
	{ErrTypeFunctionError, true},
	{ErrTypeQueueTimeout, true},
	{ErrTypeTooManyInstances, true},
	{ErrTypeInsufficientCapacity, false},
	{ErrTypeNotFound, false},
	{ErrTypeThrottled, false},
	{ErrTypeTooManyRequests, false},
}

// IsPermanent reports whether errType is an activity error type that no
// retry can fix (see errorTypes). Unknown types are not permanent.
func IsPermanent(errType string) bool {
	for _, t := range errorTypes {
		if t.name == errType {
			return t.permanent
		}
	}
	return false
}

// NonRetryableErrorTypes returns a retry policy's
// temporal.RetryPolicy.NonRetryableErrorTypes: every permanent type, in
// the table's order, followed by also, the retryable types this policy
// wants back at once (say InsufficientCapacity). It returns a new slice on
// each call. It panics if also names a type that is not in the table or is
// permanent already: policies are built at package initialisation, where a
// misspelt type must fail loudly rather than be retried silently.
func NonRetryableErrorTypes(also ...string) []string {
	var out []string
	for _, t := range errorTypes {
		if t.permanent {
			out = append(out, t.name)
		}
	}
	for _, name := range also {
		known := false
		for _, t := range errorTypes {
			if t.name == name && !t.permanent {
				known = true
			}
		}
		if !known {
			panic(fmt.Sprintf("providers: %q is not a retryable error type", name))
		}
		out = append(out, name)
	}
	return out
}

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
	Type    string `json:"type"` // error type reported by the runtime, e.g. "Runtime.ExitError"
	Message string `json:"message"`
}

func (e *FunctionError) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Message) }
