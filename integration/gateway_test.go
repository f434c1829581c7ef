package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// gatewayEnv is a `gust dev` with a tenant, its deployed echo function,
// and a second gateway in this process against the same Temporal and
// registry (the gateway is stateless, so the two behave as one; the second
// one's event retry delay is short, for the retry test).
type gatewayEnv struct {
	dev      *itest.Dev
	state    string
	key      tenantKey
	temporal client.Client
	sdk      *lambda.Client // aws-sdk-go-v2, signed with acme's key, at gust dev's gateway
	sdk2     *lambda.Client // the same at the in-process gateway
	second   string         // the in-process gateway's URL
}

func startGatewayEnv(t *testing.T) *gatewayEnv {
	t.Helper()
	code := itest.EchoHandler(t)
	state := t.TempDir()
	e := &gatewayEnv{state: state}
	e.dev = itest.StartDev(t, "--state-dir", state)
	require.Contains(t, e.dev.Stdout(), "Gateway    "+e.dev.Gateway, "gust dev prints the gateway's address")
	e.key = createTenant(t, state, "acme")
	stdout, stderr, exit := gust(t, "fn", "deploy", "echo", "--tenant", "acme", "--code", code, "--timeout", "30s",
		"--max-envs-per-subtenant", "1", "--address", e.dev.Address)
	require.Equal(t, 0, exit, "stdout=%s stderr=%s", stdout, stderr)

	var err error
	e.temporal, err = client.Dial(client.Options{HostPort: e.dev.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	t.Cleanup(e.temporal.Close)
	reg, err := tenants.Open(filepath.Join(state, "tenants.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	srv := httptest.NewServer(gateway.New(gateway.Config{
		Client: e.temporal, Registry: reg, EventRetryDelay: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	e.second = srv.URL
	e.sdk = itest.TenantLambda(e.dev.Gateway, e.key.AccessKeyID, e.key.SecretAccessKey)
	e.sdk2 = itest.TenantLambda(e.second, e.key.AccessKeyID, e.key.SecretAccessKey)
	return e
}

// withHeader is an SDK option that adds an HTTP header, for gust's
// X-Gust-* extensions.
func withHeader(name, value string) func(*lambda.Options) {
	return func(o *lambda.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(name, value))
	}
}

func payloadOf(t *testing.T, req sample.Request) []byte {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	return b
}

// logs is the sub-tenant's captured output, from the local cloud.
func (e *gatewayEnv) logs(t *testing.T, sub string) string {
	t.Helper()
	stdout, stderr, code := gust(t, "fn", "logs", "echo", "--tenant", "acme", "--subtenant", sub, "--endpoint", e.dev.Cloud, "--state-dir", e.state)
	require.Equal(t, 0, code, stderr)
	return stdout
}

// runs counts the invocations with this request id the function ran.
func (e *gatewayEnv) runs(t *testing.T, sub, requestID string) int {
	t.Helper()
	return strings.Count(e.logs(t, sub), "START RequestId: "+requestID+" ")
}

func (e *gatewayEnv) invocationStatus(ctx context.Context, t *testing.T, requestID string) enumspb.WorkflowExecutionStatus {
	t.Helper()
	desc, err := e.temporal.DescribeWorkflowExecution(ctx, workflows.InvokeWorkflowID("acme", "echo", requestID), "")
	require.NoError(t, err)
	return desc.GetWorkflowExecutionInfo().GetStatus()
}

// TestGatewayAWSSDK drives the gateway with an unmodified aws-sdk-go-v2
// Lambda client, signed with a tenant's key from the registry.
func TestGatewayAWSSDK(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	e := startGatewayEnv(t)
	invoke := func(sdk *lambda.Client, sub string, req sample.Request, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
		in := &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payloadOf(t, req)}
		if sub != "" {
			in.TenantId = aws.String(sub)
		}
		return sdk.Invoke(ctx, in, opts...)
	}

	t.Run("request response", func(t *testing.T) {
		out, err := invoke(e.sdk, "cust-1", sample.Request{Echo: json.RawMessage(`"hi"`)})
		require.NoError(t, err)
		require.EqualValues(t, 200, out.StatusCode)
		require.Nil(t, out.FunctionError)
		require.NotEmpty(t, aws.ToString(out.ExecutedVersion))
		var resp sample.Response
		require.NoError(t, json.Unmarshal(out.Payload, &resp))
		require.Equal(t, "cust-1", resp.TenantID, "X-Amz-Tenant-Id is the sub-tenant")
		require.JSONEq(t, `"hi"`, string(resp.Echo))
		id := itest.RequestID(t, out, nil)
		require.Equal(t, id, resp.RequestID, "the request id is the invocation's")
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, e.invocationStatus(ctx, t, id), "every call is an InvokeWorkflow")

		// ARNs and qualifiers as Lambda takes them.
		arn := "arn:aws:lambda:us-east-1:" + e.key.AccountID + ":function:echo"
		out, err = e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), TenantId: aws.String("cust-1"), Qualifier: aws.String("$LATEST")})
		require.NoError(t, err)
		require.Nil(t, out.FunctionError)
		_, err = e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"), Qualifier: aws.String("99")})
		var nf *lambdatypes.ResourceNotFoundException
		require.ErrorAs(t, err, &nf, "a version the function does not have")
	})

	t.Run("log tail", func(t *testing.T) {
		out, err := invoke(e.sdk, "cust-1", sample.Request{Stderr: "tail-marker"})
		require.NoError(t, err)
		require.Nil(t, out.LogResult, "no tail unless asked")
		out, err = e.sdk.Invoke(ctx, &lambda.InvokeInput{
			FunctionName: aws.String("echo"), TenantId: aws.String("cust-1"), LogType: lambdatypes.LogTypeTail,
			Payload: payloadOf(t, sample.Request{Stderr: "tail-marker"}),
		})
		require.NoError(t, err)
		require.NotNil(t, out.LogResult)
		tail, err := base64.StdEncoding.DecodeString(*out.LogResult)
		require.NoError(t, err)
		require.LessOrEqual(t, len(tail), 4096)
		require.Contains(t, string(tail), "START RequestId: "+itest.RequestID(t, out, nil))
		require.Contains(t, string(tail), "tail-marker")
	})

	t.Run("function error", func(t *testing.T) {
		out, err := invoke(e.sdk, "cust-1", sample.Request{Error: "boom"})
		require.NoError(t, err)
		require.Equal(t, "Unhandled", aws.ToString(out.FunctionError))
		var doc map[string]any
		require.NoError(t, json.Unmarshal(out.Payload, &doc))
		require.Equal(t, "EchoError", doc["errorType"])
		require.Equal(t, "boom", doc["errorMessage"])
	})

	t.Run("missing tenant id", func(t *testing.T) {
		_, err := invoke(e.sdk, "", sample.Request{})
		var bad *lambdatypes.InvalidParameterValueException
		require.ErrorAs(t, err, &bad)
		require.Contains(t, bad.ErrorMessage(), "PER_TENANT")
	})

	t.Run("dry run", func(t *testing.T) {
		before := e.logs(t, "cust-dry")
		out, err := e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-dry"),
			InvocationType: lambdatypes.InvocationTypeDryRun})
		require.NoError(t, err)
		require.EqualValues(t, 204, out.StatusCode)
		id := itest.RequestID(t, out, nil)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, e.invocationStatus(ctx, t, id), "a dry run starts InvokeWorkflow too")
		require.Equal(t, before, e.logs(t, "cust-dry"), "and runs nothing")

		_, err = e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), TenantId: aws.String("cust-dry"),
			InvocationType: lambdatypes.InvocationTypeDryRun})
		var nf *lambdatypes.ResourceNotFoundException
		require.ErrorAs(t, err, &nf)
	})

	t.Run("unknown function and wrong secret", func(t *testing.T) {
		_, err := e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), TenantId: aws.String("c")})
		var nf *lambdatypes.ResourceNotFoundException
		require.ErrorAs(t, err, &nf)
		bad := itest.TenantLambda(e.dev.Gateway, e.key.AccessKeyID, flip(e.key.SecretAccessKey[0])+e.key.SecretAccessKey[1:])
		_, err = bad.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("c")})
		requireAPIError(t, err, "InvalidSignatureException")
	})

	t.Run("event", func(t *testing.T) {
		marker := "event-" + uuid.NewString()
		out, err := e.sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-ev"),
			InvocationType: lambdatypes.InvocationTypeEvent, Payload: payloadOf(t, sample.Request{Stdout: marker + "-async"})})
		require.NoError(t, err)
		require.EqualValues(t, 202, out.StatusCode)
		itest.WaitFor(t, time.Minute, "the event runs", func() bool { return strings.Contains(e.logs(t, "cust-ev"), marker+"-async") })
	})

	t.Run("failing event is retried twice", func(t *testing.T) {
		marker := "retry-" + uuid.NewString()
		out, err := e.sdk2.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-ev"),
			InvocationType: lambdatypes.InvocationTypeEvent, Payload: payloadOf(t, sample.Request{Stdout: marker, Error: "always"})})
		require.NoError(t, err)
		require.EqualValues(t, 202, out.StatusCode)
		id := itest.RequestID(t, out, nil)
		run := e.temporal.GetWorkflow(ctx, workflows.InvokeWorkflowID("acme", "echo", id), "")
		var res workflows.InvokeResult
		require.NoError(t, run.Get(ctx, &res))
		require.NotNil(t, res.FunctionError)
		require.Equal(t, 3, res.Attempts)
		require.Equal(t, 3, strings.Count(e.logs(t, "cust-ev"), marker), "one run and two retries")
		require.Equal(t, 3, e.runs(t, "cust-ev", id))
	})

	t.Run("idempotency key returns the first result", func(t *testing.T) {
		key := withHeader(gateway.HeaderIdempotencyKey, "order-"+uuid.NewString())
		first, err := invoke(e.sdk, "cust-idem", sample.Request{SleepMS: 300, Echo: json.RawMessage(`1`)}, key)
		require.NoError(t, err)
		id := itest.RequestID(t, first, nil)
		// A retry through the other gateway, even with another payload,
		// gets the first result; so do concurrent ones.
		var wg sync.WaitGroup
		outs := make([]*lambda.InvokeOutput, 4)
		errs := make([]error, 4)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sdk := e.sdk
				if i%2 == 1 {
					sdk = e.sdk2
				}
				outs[i], errs[i] = invoke(sdk, "cust-idem", sample.Request{Echo: json.RawMessage(`2`)}, key)
			}()
		}
		wg.Wait()
		for i := range outs {
			require.NoError(t, errs[i])
			require.Equal(t, string(first.Payload), string(outs[i].Payload))
			require.Equal(t, id, itest.RequestID(t, outs[i], nil))
		}
		require.Equal(t, 1, e.runs(t, "cust-idem", id), "the function ran once")

		// Concurrent first calls with a new key: one run, one result.
		key2 := withHeader(gateway.HeaderIdempotencyKey, "order-"+uuid.NewString())
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = invoke(e.sdk, "cust-idem", sample.Request{SleepMS: 300}, key2)
			}()
		}
		wg.Wait()
		for i := range outs {
			require.NoError(t, errs[i])
			require.Equal(t, string(outs[0].Payload), string(outs[i].Payload))
		}
		require.Equal(t, 1, e.runs(t, "cust-idem", itest.RequestID(t, outs[0], nil)))

		// The same key from another sub-tenant is another invocation.
		other, err := invoke(e.sdk, "cust-idem-2", sample.Request{}, key)
		require.NoError(t, err)
		require.NotEqual(t, id, itest.RequestID(t, other, nil))
	})

	t.Run("a queued call waits for the busy environment, then runs", func(t *testing.T) {
		_, err := invoke(e.sdk, "cust-q", sample.Request{}) // warm the sub-tenant's one environment
		require.NoError(t, err)
		slow := make(chan error, 1)
		go func() {
			_, err := invoke(e.sdk, "cust-q", sample.Request{SleepMS: 3000})
			slow <- err
		}()
		time.Sleep(500 * time.Millisecond) // the slow call holds the environment
		start := time.Now()
		out, err := invoke(e.sdk, "cust-q", sample.Request{Echo: json.RawMessage(`"queued"`)}, withHeader(gateway.HeaderMaxWait, "20s"))
		waited := time.Since(start)
		require.NoError(t, err, "waits in the durable queue instead of being refused")
		require.Nil(t, out.FunctionError)
		require.JSONEq(t, `"queued"`, string(mustEcho(t, out).Echo))
		require.Greater(t, waited, 1500*time.Millisecond, "it waited for the slow call")
		require.NoError(t, <-slow)
	})

	t.Run("a call past its max wait gets 429 and leaves nothing behind", func(t *testing.T) {
		_, err := invoke(e.sdk, "cust-t", sample.Request{})
		require.NoError(t, err)
		slow := make(chan error, 1)
		go func() {
			_, err := invoke(e.sdk, "cust-t", sample.Request{SleepMS: 5000})
			slow <- err
		}()
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		_, err = invoke(e.sdk, "cust-t", sample.Request{Stdout: "must-never-run"}, withHeader(gateway.HeaderMaxWait, "1"))
		waited := time.Since(start)
		var tmr *lambdatypes.TooManyRequestsException
		require.ErrorAs(t, err, &tmr)
		require.EqualValues(t, "ConcurrentInvocationLimitExceeded", tmr.Reason)
		require.GreaterOrEqual(t, waited, time.Second)
		require.Less(t, waited, 3*time.Second, "the answer comes soon after the max wait")
		id := itest.RequestID(t, nil, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, e.invocationStatus(ctx, t, id), "its workflow is closed: nothing is queued")

		require.NoError(t, <-slow)
		time.Sleep(2 * time.Second) // the environment is free again: a queued invocation would run now
		require.Zero(t, e.runs(t, "cust-t", id), "the timed-out invocation never ran")
		require.NotContains(t, e.logs(t, "cust-t"), "must-never-run")

		stdout, stderr, code := gust(t, "fn", "invocations", "echo", "--tenant", "acme", "--subtenant", "cust-t", "--output", "json", "--address", e.dev.Address)
		require.Equal(t, 0, code, stderr)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &rows))
		require.Len(t, rows, 3, "the warm-up, the slow call and the timed-out one: %s", stdout)
		statuses := map[string]string{}
		for _, r := range rows {
			require.Equal(t, "cust-t", r["subtenant"])
			statuses[r["request_id"].(string)] = r["status"].(string)
		}
		require.Equal(t, "queue_timeout", statuses[id])
		require.Equal(t, "succeeded", rows[1]["status"])
	})
}

// TestGatewayCommand runs `gust gateway` standalone against a gust dev's
// Temporal and registry, and checks its usage errors.
func TestGatewayCommand(t *testing.T) {
	for _, args := range [][]string{
		{"gateway", "--state-dir", t.TempDir()},
		{"gateway", "--gateway-port", "70000"},
		{"gateway", "--state-dir", ""},
		{"gateway", "extra-arg"},
	} {
		stdout, stderr, code := gust(t, args...)
		require.Equal(t, 2, code, "%v: stdout=%q stderr=%q", args, stdout, stderr)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
		require.True(t, strings.HasPrefix(stderr, "gust: "), stderr)
	}
	_, stderr, _ := gust(t, "gateway", "--state-dir", t.TempDir())
	require.Contains(t, stderr, "no tenant registry at")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := startGatewayEnv(t)
	port := itest.FreePort(t)
	cmd := exec.Command(itest.GustBinary(t), "gateway", "--address", e.dev.Address, "--state-dir", e.state, "--gateway-port", strconv.Itoa(port))
	var out itest.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	itest.WaitFor(t, 30*time.Second, "gust gateway starts", func() bool { return strings.Contains(out.String(), "gust gateway on "+url) })

	sdk := itest.TenantLambda(url, e.key.AccessKeyID, e.key.SecretAccessKey)
	res, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-standalone"),
		Payload: []byte(`{"echo":"standalone"}`)})
	require.NoError(t, err, out.String())
	require.Equal(t, "cust-standalone", mustEcho(t, res).TenantID)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exits 0 on SIGTERM: %s", out.String())
}

func mustEcho(t *testing.T, out *lambda.InvokeOutput) sample.Response {
	t.Helper()
	var resp sample.Response
	require.NoError(t, json.Unmarshal(out.Payload, &resp), string(out.Payload))
	return resp
}

// TestGatewayTokens: a sub-tenant token lets its bearer invoke as its
// sub-tenant only, its function only; an expired or tampered token is
// refused with 401.
func TestGatewayTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := startGatewayEnv(t)
	token := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := gust(t, append([]string{"tenant", "token", "acme", "--state-dir", e.state}, args...)...)
		require.Equal(t, 0, code, stderr)
		return strings.TrimSpace(stdout)
	}
	scoped := token("--subtenant", "cust-tok", "--function", "echo")
	short := token("--subtenant", "cust-tok", "--ttl", "1s")

	call := func(tok, function string, headers map[string]string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.dev.Gateway+"/2015-03-31/functions/"+function+"/invocations",
			bytes.NewReader([]byte(`{"echo":"tok"}`)))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b
	}

	status, _, body := call(scoped, "echo", nil)
	require.Equal(t, 200, status, string(body))
	var resp sample.Response
	require.NoError(t, json.Unmarshal(body, &resp))
	require.Equal(t, "cust-tok", resp.TenantID, "the token's sub-tenant")
	status, _, body = call(scoped, "echo", map[string]string{gateway.HeaderTenantID: "cust-tok"})
	require.Equal(t, 200, status, string(body))

	status, code, _ := call(scoped, "echo", map[string]string{gateway.HeaderTenantID: "cust-other"})
	require.Equal(t, 403, status, "another sub-tenant")
	require.Equal(t, "AccessDeniedException", code)
	status, code, _ = call(scoped, "other-fn", nil)
	require.Equal(t, 403, status, "another function")
	require.Equal(t, "AccessDeniedException", code)

	parts := strings.Split(scoped, ".")
	require.Len(t, parts, 3)
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.ReplaceAll(claims, []byte("cust-tok"), []byte("cust-xyz"))) + "." + parts[2]
	status, code, _ = call(forged, "echo", nil)
	require.Equal(t, 401, status, "tampered claims")
	require.Equal(t, "UnrecognizedClientException", code)
	status, _, _ = call(parts[0]+"."+parts[1]+"."+flip(parts[2][0])+parts[2][1:], "echo", nil)
	require.Equal(t, 401, status, "tampered signature")

	time.Sleep(2500 * time.Millisecond)
	status, code, _ = call(short, "echo", nil)
	require.Equal(t, 401, status, "expired")
	require.Equal(t, "ExpiredTokenException", code)

	logs := e.logs(t, "cust-tok")
	require.Equal(t, 2, strings.Count(logs, "START RequestId: "), "only the two allowed calls ran")
	require.NotContains(t, e.dev.Stdout(), parts[2], "the token never reaches gust dev's output")
}

// TestGatewayBoto3 invokes through the gateway with Python's boto3, where
// the machine has it.
func TestGatewayBoto3(t *testing.T) {
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skipf("boto3 is not importable by python3 (%v): pip install boto3 to run this test", err)
	}
	e := startGatewayEnv(t)
	script := `
import json, os, sys, base64
import boto3
c = boto3.client("lambda", endpoint_url=os.environ["GATEWAY"], region_name="us-east-1",
                 aws_access_key_id=os.environ["AKID"], aws_secret_access_key=os.environ["SECRET"])
out = c.invoke(FunctionName="echo", TenantId="cust-py", Payload=b'{"echo":"from boto3"}', LogType="Tail")
print(json.dumps({"status": out["StatusCode"], "payload": json.loads(out["Payload"].read()),
                  "tail": base64.b64decode(out["LogResult"]).decode(), "version": out.get("ExecutedVersion")}))
try:
    c.invoke(FunctionName="nope", TenantId="cust-py")
except c.exceptions.ResourceNotFoundException as e:
    print(json.dumps({"not_found": e.response["Error"]["Code"]}))
`
	cmd := exec.Command("python3", "-c", script)
	cmd.Env = append(os.Environ(), "GATEWAY="+e.dev.Gateway, "AKID="+e.key.AccessKeyID, "SECRET="+e.key.SecretAccessKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2, string(out))
	var res struct {
		Status  int             `json:"status"`
		Payload sample.Response `json:"payload"`
		Tail    string          `json:"tail"`
		Version string          `json:"version"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &res), lines[0])
	require.Equal(t, 200, res.Status)
	require.Equal(t, "cust-py", res.Payload.TenantID)
	require.JSONEq(t, `"from boto3"`, string(res.Payload.Echo))
	require.Regexp(t, regexp.MustCompile(`START RequestId: `+regexp.QuoteMeta(res.Payload.RequestID)), res.Tail)
	require.NotEmpty(t, res.Version)
	require.JSONEq(t, `{"not_found":"ResourceNotFoundException"}`, lines[1])
}
