package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
)

// TestKeepAliveHeartbeatsDuringALongCall: a single slow cloud call keeps
// heartbeating, so a short heartbeat timeout detects a dead worker without
// failing a live one.
func TestKeepAliveHeartbeatsDuringALongCall(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	var beats atomic.Int32
	defer func(orig func(context.Context, ...any)) { recordHeartbeat = orig }(recordHeartbeat)
	recordHeartbeat = func(ctx context.Context, details ...any) {
		require.True(t, activity.IsActivity(ctx))
		beats.Add(1)
	}
	slowCall := func(ctx context.Context) (string, error) {
		return keepAlive(ctx, func() (string, error) {
			time.Sleep(2500 * time.Millisecond)
			return "done", nil
		})
	}
	env.RegisterActivity(slowCall)
	v, err := env.ExecuteActivity(slowCall)
	require.NoError(t, err)
	var got string
	require.NoError(t, v.Get(&got))
	require.Equal(t, "done", got)
	require.GreaterOrEqual(t, beats.Load(), int32(2), "one heartbeat a second while the call runs")
}

func TestKeepAliveOutsideAnActivityJustRuns(t *testing.T) {
	got, err := keepAlive(context.Background(), func() (int, error) { return 7, nil })
	require.NoError(t, err)
	require.Equal(t, 7, got)
}
