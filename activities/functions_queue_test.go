package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// TestInvokeFunctionQueueDeadline: an attempt after the queue deadline
// fails with QueueTimeout without invoking; a throttled attempt before it
// asks to be retried no later than the deadline; one far from it keeps the
// policy's backoff; a final error is unchanged.
func TestInvokeFunctionQueueDeadline(t *testing.T) {
	var a *activities.Functions
	in := func(deadline time.Time) activities.InvokeFunctionInput {
		return activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s", QueueDeadline: deadline}
	}
	throttled := providers.NewTooManyRequestsError(errors.New("sub-tenant at its limit"))

	t.Run("past the deadline", func(t *testing.T) {
		fake := &fnFake{}
		_, err := newFnEnv(fake).ExecuteActivity(a.InvokeFunction, in(time.Now().Add(-time.Millisecond)))
		appErr := fnAppError(t, err)
		require.Equal(t, activities.ErrTypeQueueTimeout, appErr.Type())
		require.True(t, appErr.NonRetryable())
		require.Empty(t, fake.invoked, "never invoked after the deadline")
	})
	t.Run("throttled near the deadline", func(t *testing.T) {
		fake := &fnFake{err: throttled}
		_, err := newFnEnv(fake).ExecuteActivity(a.InvokeFunction, in(time.Now().Add(50*time.Millisecond)))
		appErr := fnAppError(t, err)
		require.Equal(t, providers.ErrTypeTooManyRequests, appErr.Type())
		require.False(t, appErr.NonRetryable())
		require.Positive(t, appErr.NextRetryDelay())
		require.LessOrEqual(t, appErr.NextRetryDelay(), 50*time.Millisecond, "the retry comes at the deadline, not after it")
		require.Len(t, fake.invoked, 1)
	})
	t.Run("throttled far from the deadline", func(t *testing.T) {
		fake := &fnFake{err: throttled}
		_, err := newFnEnv(fake).ExecuteActivity(a.InvokeFunction, in(time.Now().Add(time.Minute)))
		appErr := fnAppError(t, err)
		require.Equal(t, providers.ErrTypeTooManyRequests, appErr.Type())
		require.Zero(t, appErr.NextRetryDelay(), "the retry policy's backoff applies")
	})
	t.Run("no deadline", func(t *testing.T) {
		fake := &fnFake{err: throttled}
		_, err := newFnEnv(fake).ExecuteActivity(a.InvokeFunction, in(time.Time{}))
		appErr := fnAppError(t, err)
		require.Zero(t, appErr.NextRetryDelay())
	})
	t.Run("final errors pass", func(t *testing.T) {
		// The call starts before the deadline and ends after it.
		fake := &slowFake{fnFake: &fnFake{err: providers.NewNotFoundError(errors.New("no such function"))}, delay: 100 * time.Millisecond}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(&activities.Functions{Functions: fake})
		_, err := env.ExecuteActivity(a.InvokeFunction, in(time.Now().Add(50*time.Millisecond)))
		appErr := fnAppError(t, err)
		require.Equal(t, providers.ErrTypeNotFound, appErr.Type())
		require.Zero(t, appErr.NextRetryDelay())
	})
}

// slowFake's Invoke takes delay.
type slowFake struct {
	*fnFake
	delay time.Duration
}

func (f *slowFake) Invoke(ctx context.Context, in providers.InvokeInput) (providers.InvokeResult, error) {
	time.Sleep(f.delay)
	return f.fnFake.Invoke(ctx, in)
}

func TestInvokeFunctionLogTail(t *testing.T) {
	var a *activities.Functions
	long := make([]byte, 2*providers.MaxLogTailBytes)
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	fake := &fnFake{result: providers.InvokeResult{Payload: []byte(`1`), LogTail: string(long)}}
	val, err := newFnEnv(fake).ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{
		Tenant: "acme", Function: "f", SubTenant: "s", LogTail: true,
	})
	require.NoError(t, err)
	var out activities.InvokeFunctionResult
	require.NoError(t, val.Get(&out))
	require.True(t, fake.invoked[0].LogTail)
	require.Equal(t, string(long[len(long)-providers.MaxLogTailBytes:]), out.LogTail, "a longer tail keeps its end")

	fake = &fnFake{result: providers.InvokeResult{Payload: []byte(`1`)}}
	_, err = newFnEnv(fake).ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{
		Tenant: "acme", Function: "f", SubTenant: "s", LogTail: true, Async: true,
	})
	require.NoError(t, err)
	require.False(t, fake.invoked[0].LogTail, "no tail for an event")
}
