package lambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

// TestInvokeLogTypeTail: LogType Tail returns, base64 in X-Amz-Log-Result,
// the invocation's own log lines (START, the function's output, END) and
// nothing of the invocation before it; at most the last 4 KB; for a
// function error too; and no tail without LogType Tail or for an event.
func TestInvokeLogTypeTail(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("acme")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	ctx := context.Background()

	invoke := func(req sample.Request, logType types.LogType) *awslambda.InvokeOutput {
		t.Helper()
		payload, err := json.Marshal(req)
		require.NoError(t, err)
		out, err := c.Invoke(ctx, &awslambda.InvokeInput{
			FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"), Payload: payload, LogType: logType,
		})
		require.NoError(t, err)
		return out
	}
	decode := func(out *awslambda.InvokeOutput) string {
		t.Helper()
		require.NotNil(t, out.LogResult, "X-Amz-Log-Result is set")
		b, err := base64.StdEncoding.DecodeString(*out.LogResult)
		require.NoError(t, err)
		return string(b)
	}

	first := invoke(sample.Request{Stderr: "first-marker"}, types.LogTypeTail)
	tail := decode(first)
	require.Contains(t, tail, "START RequestId: ")
	require.Contains(t, tail, "first-marker\n")
	require.Contains(t, tail, "END RequestId: ")
	require.Less(t, strings.Index(tail, "START"), strings.Index(tail, "first-marker"))
	require.Less(t, strings.Index(tail, "first-marker"), strings.Index(tail, "END"))

	second := invoke(sample.Request{Stdout: "second-marker"}, types.LogTypeTail)
	tail = decode(second)
	require.Contains(t, tail, "second-marker")
	require.NotContains(t, tail, "first-marker", "only this invocation's lines")
	require.Equal(t, 1, strings.Count(tail, "START RequestId: "))

	big := invoke(sample.Request{Stdout: strings.Repeat("x", 3000) + "\n" + strings.Repeat("y", lambda.MaxTailBytes) + "\nlast-line"}, types.LogTypeTail)
	tail = decode(big)
	require.LessOrEqual(t, len(tail), lambda.MaxTailBytes)
	require.Contains(t, tail, "last-line")
	require.Contains(t, tail, "END RequestId: ", "the tail is the end of the log")
	require.NotContains(t, tail, "xxxx", "older output is cut")
	require.NotContains(t, tail, "START", "older output is cut")

	failed := invoke(sample.Request{Stderr: "about-to-fail", Error: "boom"}, types.LogTypeTail)
	require.Equal(t, "Unhandled", aws.ToString(failed.FunctionError))
	require.Contains(t, decode(failed), "about-to-fail")

	none := invoke(sample.Request{Stdout: "quiet"}, "")
	require.Nil(t, none.LogResult)

	_, err := c.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"), LogType: "Verbose",
	})
	require.ErrorContains(t, err, "InvalidParameterValueException")

	ev, err := c.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"),
		InvocationType: types.InvocationTypeEvent, LogType: types.LogTypeTail,
	})
	require.NoError(t, err)
	require.Nil(t, ev.LogResult, "events have no tail, as in Lambda")
}
