package lambda_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

// TestLogsTellStreamsApartAndReport: every invocation's log ends with a
// REPORT line as Lambda writes it (with Init Duration after a cold start
// only, and the sub-tenant as TenantId); the JSON form of the log gives
// each line its timestamp, request id, tenant, sub-tenant and stream, and
// tells the function's stdout from its stderr.
func TestLogsTellStreamsApartAndReport(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("acme")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	ctx := context.Background()

	var ids []string
	for i, req := range []sample.Request{
		{Stdout: "out-marker-0", Stderr: "err-marker-0", AllocMB: 40},
		{Stdout: "out-marker-1", Stderr: "err-marker-1"},
	} {
		payload, err := json.Marshal(req)
		require.NoError(t, err)
		out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust 1"), Payload: payload})
		require.NoError(t, err)
		require.Nil(t, out.FunctionError, "invocation %d: %s", i, out.Payload)
		id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		require.True(t, ok)
		ids = append(ids, id)
	}

	var events []lambda.LogEvent
	eventually(t, func() bool {
		status, b := h.get(t, "acme", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=cust+1&format=json")
		require.Equal(t, http.StatusOK, status, string(b))
		events = events[:0]
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var ev lambda.LogEvent
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
			events = append(events, ev)
		}
		reports := 0
		for _, ev := range events {
			if strings.HasPrefix(ev.Message, "REPORT ") {
				reports++
			}
		}
		return reports == 2 && len(find(events, "err-marker-1")) == 1
	}, "both invocations' lines are written")

	for i, id := range ids {
		out, errs := find(events, "out-marker-"+strconv.Itoa(i)), find(events, "err-marker-"+strconv.Itoa(i))
		require.Len(t, out, 1)
		require.Len(t, errs, 1)
		require.Equal(t, lambda.StreamStdout, out[0].Stream)
		require.Equal(t, lambda.StreamStderr, errs[0].Stream)
		for _, ev := range []lambda.LogEvent{out[0], errs[0]} {
			require.Equal(t, id, ev.RequestID, "a function's line belongs to the invocation it wrote it in")
			require.Equal(t, "acme", ev.Tenant)
			require.Equal(t, "cust 1", ev.SubTenant)
			require.NotEmpty(t, ev.EnvironmentID)
			require.False(t, ev.Timestamp.IsZero())
		}
		reports := find(events, "REPORT RequestId: "+id)
		require.Len(t, reports, 1)
		require.Equal(t, lambda.StreamPlatform, reports[0].Stream)
		require.Equal(t, id, reports[0].RequestID)
		init := `\tInit Duration: \d+\.\d\d ms`
		if i > 0 {
			init = "" // warm: Lambda reports no init
		}
		require.Regexp(t, `^REPORT RequestId: `+regexp.QuoteMeta(id)+`\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\tMax Memory Used: \d+ MB`+init+`\tTenantId: cust 1$`, reports[0].Message)
		used, _ := strconv.Atoi(regexp.MustCompile(`Max Memory Used: (\d+) MB`).FindStringSubmatch(reports[0].Message)[1])
		require.GreaterOrEqual(t, used, 40, "the environment touched 40 MB in its first invocation")
	}

	// The text form is what it was: one "<timestamp> <environment> <line>"
	// per line, the REPORT lines included.
	status, b := h.get(t, "acme", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=cust+1")
	require.Equal(t, http.StatusOK, status)
	require.Regexp(t, `(?m)^\S+Z env-\S+ err-marker-0$`, string(b))
	require.Regexp(t, `(?m)^\S+Z env-\S+ REPORT RequestId: `+regexp.QuoteMeta(ids[1])+`\t`, string(b))

	status, _ = h.get(t, "acme", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=cust+1&format=xml")
	require.Equal(t, http.StatusBadRequest, status)
}

// find returns the events whose message starts with prefix.
func find(events []lambda.LogEvent, prefix string) []lambda.LogEvent {
	var out []lambda.LogEvent
	for _, ev := range events {
		if strings.HasPrefix(ev.Message, prefix) {
			out = append(out, ev)
		}
	}
	return out
}
