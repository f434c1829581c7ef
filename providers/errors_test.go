package providers

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorTypeNamesAreStable pins the wire names: they are in recorded
// histories, retry policies and clients, so a change here breaks them.
func TestErrorTypeNamesAreStable(t *testing.T) {
	for name, want := range map[string]string{
		ErrTypeInsufficientCapacity: "InsufficientCapacity",
		ErrTypeThrottled:            "Throttled",
		ErrTypeNotFound:             "NotFound",
		ErrTypeInvalid:              "InvalidRequest",
		ErrTypeIdempotencyMismatch:  "IdempotencyMismatch",
		ErrTypeTooManyRequests:      "TooManyRequests",
		ErrTypeFunctionError:        "FunctionError",
		ErrTypeUnsupported:          "Unsupported",
		ErrTypeQueueTimeout:         "QueueTimeout",
		ErrTypeTooManyInstances:     "TooManyInstances",
		ErrTypeDeadlineExceeded:     "DeadlineExceeded",
		ErrTypeFleetFailed:          "FleetFailed",
	} {
		assert.Equal(t, want, name)
	}
}

func TestIsPermanent(t *testing.T) {
	for _, typ := range []string{ErrTypeInvalid, ErrTypeIdempotencyMismatch, ErrTypeUnsupported, ErrTypeFunctionError, ErrTypeQueueTimeout, ErrTypeTooManyInstances} {
		assert.True(t, IsPermanent(typ), typ)
	}
	for _, typ := range []string{ErrTypeInsufficientCapacity, ErrTypeNotFound, ErrTypeThrottled, ErrTypeTooManyRequests, "", "SomethingElse"} {
		assert.False(t, IsPermanent(typ), typ)
	}
}

func TestNonRetryableErrorTypes(t *testing.T) {
	permanent := []string{ErrTypeInvalid, ErrTypeIdempotencyMismatch, ErrTypeUnsupported, ErrTypeFunctionError, ErrTypeQueueTimeout, ErrTypeTooManyInstances}
	assert.Equal(t, permanent, NonRetryableErrorTypes())
	assert.Equal(t, append(permanent, ErrTypeInsufficientCapacity, ErrTypeNotFound),
		NonRetryableErrorTypes(ErrTypeInsufficientCapacity, ErrTypeNotFound))

	// Each call owns its slice: a policy that appends cannot change another's.
	a := NonRetryableErrorTypes()
	a[0] = "changed"
	assert.Equal(t, ErrTypeInvalid, NonRetryableErrorTypes()[0])

	require.Panics(t, func() { NonRetryableErrorTypes("NotFoud") }, "a misspelt type")
	require.Panics(t, func() { NonRetryableErrorTypes(ErrTypeInvalid) }, "a permanent type is listed already")
	require.Panics(t, func() { NonRetryableErrorTypes(ErrTypeFleetFailed) }, "a workflow failure is no activity error")
}
