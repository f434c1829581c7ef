package workflows

import (
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/codec"
	"github.com/gust-dev/gust/providers"
)

// TestRecordedFunctionErrorDecodes reads the function error in a history
// recorded before the gateway (the invoke step's failure, as InvokeFunction
// encoded it then, with Go-named keys) with today's decoder and the failure
// converter every gust process uses.
func TestRecordedFunctionErrorDecodes(t *testing.T) {
	f, err := os.Open("testdata/invoke-pre-gateway-fnerr.json.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	history, err := client.HistoryFromJSON(zr, client.HistoryJSONOptions{})
	require.NoError(t, err)
	var decoded int
	for _, e := range history.Events {
		if e.GetEventType() != enums.EVENT_TYPE_MARKER_RECORDED || e.GetMarkerRecordedEventAttributes().GetFailure() == nil {
			continue
		}
		failure := codec.FailureConverter().FailureToError(e.GetMarkerRecordedEventAttributes().GetFailure())
		fnErr, ran, ok := activities.DecodeFunctionError(failure)
		require.True(t, ok)
		require.Equal(t, providers.FunctionError{Type: "EchoError", Message: "boom"}, fnErr)
		require.Equal(t, "env-341483f6686da6e3", ran.EnvironmentID)
		require.Equal(t, int64(12), ran.DurationMS)
		decoded++
	}
	require.Equal(t, 1, decoded)
}

func TestSurfaceError(t *testing.T) {
	for _, typ := range []string{providers.ErrTypeInvalid, providers.ErrTypeNotFound, providers.ErrTypeUnsupported, ErrTypeQueueTimeout} {
		// As the workflow sees an activity's failure: wrapped (in an
		// ActivityError, which has no public constructor).
		inner := temporal.NewApplicationError("the message", typ)
		wrapped := fmt.Errorf("activity failed: %w", inner)
		got, ok := surfaceError(wrapped)
		require.True(t, ok, typ)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, got, &appErr)
		require.Equal(t, typ, appErr.Type())
		require.Equal(t, "the message", appErr.Message())
		require.True(t, appErr.NonRetryable())
		require.Nil(t, errors.Unwrap(got), "the top of the failure, nothing beneath")
	}
	for _, err := range []error{
		errors.New("plain"),
		temporal.NewApplicationError("throttled", providers.ErrTypeThrottled),
		temporal.NewNonRetryableApplicationError("mismatch", providers.ErrTypeIdempotencyMismatch, nil),
	} {
		got, ok := surfaceError(err)
		require.False(t, ok, "%v", err)
		require.Same(t, err, got)
	}
}
