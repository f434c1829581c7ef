package ec2

import (
	"testing"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"

	"github.com/gust-dev/gust/providers"
)

// TestSDKRetriesFollowTranslate pins the codes the SDK must leave to the
// activity's retry policy: every code that was on the hand-kept list
// before it was derived from errorType, and every other code translate
// makes a throttle or a capacity error. Other codes keep the SDK's retries.
func TestSDKRetriesFollowTranslate(t *testing.T) {
	for _, code := range []string{
		"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled", "EC2ThrottledException",
		"InsufficientInstanceCapacity", "InsufficientCapacity", "ReservationCapacityExceeded",
		"InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
	} {
		assert.True(t, sdkMustNotRetry(code), code)
		err := translate(&smithy.GenericAPIError{Code: code})
		assert.True(t, providers.IsThrottled(err) || providers.IsInsufficientCapacity(err), code)
	}
	for _, code := range []string{
		"InternalError", "RequestTimeout", "ServiceUnavailable", "Unavailable",
		"InvalidParameterValue", "IdempotentParameterMismatch", "InvalidInstanceID.NotFound", "AccessDenied",
	} {
		assert.False(t, sdkMustNotRetry(code), code)
	}
}

// TestTranslateMatchesErrorType checks that translate builds the typed
// error errorType names, so the table is the only place a code is mapped.
func TestTranslateMatchesErrorType(t *testing.T) {
	is := map[string]func(error) bool{
		providers.ErrTypeInsufficientCapacity: providers.IsInsufficientCapacity,
		providers.ErrTypeThrottled:            providers.IsThrottled,
		providers.ErrTypeNotFound:             providers.IsNotFound,
		providers.ErrTypeIdempotencyMismatch:  providers.IsIdempotencyMismatch,
		providers.ErrTypeInvalid:              providers.IsInvalid,
	}
	for _, code := range []string{
		"InsufficientInstanceCapacity", "ThrottlingException", "InvalidSubnetID.NotFound", "IdempotentParameterMismatch",
		"InvalidParameterValue", "InvalidAMIID.Malformed", "AccessDenied", "InternalError",
	} {
		orig := &smithy.GenericAPIError{Code: code}
		err := translate(orig)
		typ := errorType(code)
		if typ == "" {
			assert.Same(t, orig, err, code)
			continue
		}
		assert.True(t, is[typ](err), "%s: translate does not give a %s error", code, typ)
		assert.ErrorIs(t, err, orig, code)
	}
}
