package lambda_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// TestInvokeIsIdempotentByRequestID: a synchronous invocation that names
// its request id (gust's worker does, the same on every attempt of its
// activity) runs once. A second call with that id while the first runs,
// as when a worker dies mid-Invoke and Temporal retries the activity
// elsewhere, waits for the first and gets its answer; one after it gets
// the same answer; neither runs the function again. The id with another
// payload is refused, and invocations without an id run every time.
func TestInvokeIsIdempotentByRequestID(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	call := func(id, payload string) (*awslambda.InvokeOutput, error) {
		var opts []func(*awslambda.Options)
		if id != "" {
			opts = append(opts, func(o *awslambda.Options) {
				o.APIOptions = append(o.APIOptions, addHeader(lambda.HeaderRequestID, id))
			})
		}
		return c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("s"), Payload: []byte(payload)}, opts...)
	}
	starts := func(id string) int {
		_, b := h.get(t, "t1", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=s")
		return strings.Count(string(b), "START RequestId: "+id+" ")
	}

	const slow = `{"echo":"once","sleep_ms":800}`
	var wg sync.WaitGroup
	outs := make([]*awslambda.InvokeOutput, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(200 * time.Millisecond) // the retry, while the first runs
			}
			outs[i], errs[i] = call("req-dup-1", slow)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.JSONEq(t, string(outs[0].Payload), string(outs[1].Payload), "both callers get the one run's answer")
	require.Contains(t, string(outs[0].Payload), `"req-dup-1"`)
	again, err := call("req-dup-1", slow)
	require.NoError(t, err)
	require.JSONEq(t, string(outs[0].Payload), string(again.Payload))
	require.Eventually(t, func() bool { return starts("req-dup-1") >= 1 }, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, 1, starts("req-dup-1"), "the function ran once for one request id")

	_, err = call("req-dup-1", `{"echo":"other"}`)
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	require.Equal(t, "InvalidParameterValueException", apiErr.ErrorCode())

	// A failed invocation is run again by a retry with its id, as Lambda's
	// Event retries do.
	for range 2 {
		out, err := call("req-err-1", `{"error":"always"}`)
		require.NoError(t, err)
		require.NotNil(t, out.FunctionError)
	}
	require.Eventually(t, func() bool { return starts("req-err-1") == 2 }, 5*time.Second, 50*time.Millisecond, "a function error is not kept")

	a, err := call("", `{"echo":"free"}`)
	require.NoError(t, err)
	b, err := call("", `{"echo":"free"}`)
	require.NoError(t, err)
	require.NotEqual(t, string(a.Payload), string(b.Payload), "invocations without a request id run every time, each with its own id")
}
