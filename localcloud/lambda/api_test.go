package lambda_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/tenants"
)

func TestCreateGetListDelete(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("tenant-a")
	ctx := context.Background()

	out := createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 5, memoryMB: 256, code: echoZip(t),
		env: map[string]string{"GREETING": "hi"}, maxEnvs: 3})
	assert.Equal(t, "echo", aws.ToString(out.FunctionName))
	assert.Equal(t, "1", aws.ToString(out.Version))
	assert.Equal(t, types.TenantIsolationModePerTenant, out.TenancyConfig.TenantIsolationMode)
	assert.Contains(t, aws.ToString(out.FunctionArn), ":function:echo")
	assert.NotEmpty(t, aws.ToString(out.CodeSha256))

	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Equal(t, int32(5), aws.ToInt32(got.Configuration.Timeout))
	assert.Equal(t, int32(256), aws.ToInt32(got.Configuration.MemorySize))
	assert.Equal(t, "hi", got.Configuration.Environment.Variables["GREETING"])
	assert.Equal(t, "3", got.Tags[lambda.TagMaxEnvsPerSubTenant])

	// Functions can be named by ARN too.
	_, err = c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: out.FunctionArn})
	require.NoError(t, err)

	_, err = c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("echo"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoBinary}})
	var conflict *types.ResourceConflictException
	require.ErrorAs(t, err, &conflict)

	createFn(t, c, "other", fnOpts{})
	list, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	require.NoError(t, err)
	require.Len(t, list.Functions, 2)
	assert.Equal(t, "echo", aws.ToString(list.Functions[0].FunctionName))
	assert.Equal(t, "other", aws.ToString(list.Functions[1].FunctionName))

	paged, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	require.NoError(t, err)
	require.Len(t, paged.Functions, 1)
	paged, err = c.ListFunctions(ctx, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(1), Marker: paged.NextMarker})
	require.NoError(t, err)
	require.Len(t, paged.Functions, 1)
	assert.Equal(t, "other", aws.ToString(paged.Functions[0].FunctionName))

	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("echo")})
	require.ErrorAs(t, err, &nf)
}

func TestTenantCannotSeeAnotherTenantsFunctions(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.client("tenant-a"), h.client("tenant-b")
	ctx := context.Background()
	out := createFn(t, a, "secret", fnOpts{tenancy: true})
	mustInvoke(t, a, "secret", "s1", nil)

	var nf *types.ResourceNotFoundException
	_, err := b.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("secret")})
	require.ErrorAs(t, err, &nf)
	// Not even through tenant A's ARN.
	_, err = b.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: out.FunctionArn})
	require.ErrorAs(t, err, &nf)
	_, err = invoke(t, b, "secret", "s1", nil)
	require.ErrorAs(t, err, &nf)
	_, err = b.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("secret")})
	require.ErrorAs(t, err, &nf)
	_, err = b.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("secret"), ZipFile: echoBinary})
	require.ErrorAs(t, err, &nf)
	list, err := b.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	require.NoError(t, err)
	assert.Empty(t, list.Functions)
	status, _ := h.get(t, "tenant-b", "/2015-03-31/functions/secret/"+lambda.EnvironmentsSuffix)
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = h.get(t, "tenant-b", "/2015-03-31/functions/secret/"+lambda.LogsSuffix+"?subtenant=s1")
	assert.Equal(t, http.StatusNotFound, status)

	// B may use the same name for its own function, independently.
	createFn(t, b, "secret", fnOpts{})
	rb := mustInvoke(t, b, "secret", "", nil)
	assert.Empty(t, rb.resp.TenantID)
	assert.Len(t, h.envs(t, "tenant-a", "secret").Environments, 1)
	assert.Len(t, h.envs(t, "tenant-b", "secret").Environments, 1)

	// And A's function is untouched.
	_, err = a.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("secret")})
	require.NoError(t, err)
}

// TestRequestsWithoutTenantAreRejected: the service itself refuses a
// request that carries no principal, the platform's principal (it must
// assume a tenant's role first), and a principal whose tenant is not a
// valid tenant id.
func TestRequestsWithoutTenantAreRejected(t *testing.T) {
	h := newHarness(t, nil)
	status, body := h.get(t, "", "/2015-03-31/functions")
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, string(body), "Missing Authentication Token")

	call := func(p tenants.Principal) (int, string, string) {
		req := httptest.NewRequestWithContext(tenants.WithPrincipal(context.Background(), p), http.MethodGet, "/2015-03-31/functions", nil)
		rec := httptest.NewRecorder()
		h.cloud.ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("X-Amzn-Errortype"), rec.Body.String()
	}
	status, code, text := call(tenants.Principal{AccessKeyID: "AKIAPLATFORM", Platform: true})
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "AccessDeniedException", code, text)
	for _, bad := range []string{"..", "a:b", "tenant.one", strings.Repeat("x", 129)} {
		status, code, _ = call(tenants.Principal{Tenant: bad, AccessKeyID: "AKIAX"})
		assert.Equal(t, http.StatusForbidden, status, bad)
		assert.Equal(t, "UnrecognizedClientException", code, bad)
	}
	status, code, text = call(tenants.Principal{Tenant: "ok", AccessKeyID: "AKIAX"})
	assert.Equal(t, http.StatusOK, status, text)
	assert.Empty(t, code)

	_, err := h.client("a..b").ListFunctions(context.Background(), &awslambda.ListFunctionsInput{})
	var apiErr smithy.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "MissingAuthenticationTokenException", apiErr.ErrorCode())
}

func TestBadFunctionNamesAndCode(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	ctx := context.Background()
	script := []byte("#!/bin/sh\n")
	for _, name := range []string{"../x", "a/b", "a b", strings.Repeat("n", 65), "..", "x%2F..%2Fy"} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: script}})
		var ip *types.InvalidParameterValueException
		require.ErrorAs(t, err, &ip, name)
	}
	for name, code := range map[string][]byte{
		"not-zip":      []byte("just text"),
		"no-bootstrap": zipOf(t, map[string]string{"handler": "x"}),
		"escape":       zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n", "../evil": "x"}),
	} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: code}})
		var ip *types.InvalidParameterValueException
		require.ErrorAs(t, err, &ip, name)
	}
	_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("reserved"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: script},
		Environment: &types.Environment{Variables: map[string]string{"AWS_LAMBDA_RUNTIME_API": "x"}}})
	var ip *types.InvalidParameterValueException
	require.ErrorAs(t, err, &ip)
	_, err = c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("python"),
		Role: aws.String("r"), Runtime: types.RuntimePython312, Code: &types.FunctionCode{ZipFile: script}})
	require.ErrorAs(t, err, &ip)
}

func TestPerTenantInvocationRules(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "tenanted", fnOpts{tenancy: true})
	createFn(t, c, "plain", fnOpts{})

	var ip *types.InvalidParameterValueException
	_, err := invoke(t, c, "tenanted", "", nil)
	require.ErrorAs(t, err, &ip)
	assert.Contains(t, ip.ErrorMessage(), "PER_TENANT")

	_, err = invoke(t, c, "plain", "s1", nil)
	require.ErrorAs(t, err, &ip)
	assert.Contains(t, ip.ErrorMessage(), "tenant isolation")

	for _, bad := range []string{"semi;colon", "tab\there", strings.Repeat("s", 257), "emoji-☃"} {
		_, err = invoke(t, c, "tenanted", bad, nil)
		require.ErrorAs(t, err, &ip, bad)
	}
	// The whole of Lambda's alphabet is accepted, ".." and "/" included:
	// sub-tenant ids never reach a path unhashed.
	for _, good := range []string{"../../etc", "a b", "user@example.com", "k=v+w:x/y", strings.Repeat("s", 256)} {
		r := mustInvoke(t, c, "tenanted", good, nil)
		assert.Equal(t, good, r.resp.TenantID)
	}
	r := mustInvoke(t, c, "plain", "", nil)
	assert.Empty(t, r.resp.TenantID)
}

func TestPayloadLimitsAndBadJSON(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	ctx := context.Background()

	big := make([]byte, lambda.MaxPayloadBytes+1)
	big[0] = '"'
	for i := 1; i < len(big)-1; i++ {
		big[i] = 'a'
	}
	big[len(big)-1] = '"'
	_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("s"), Payload: big})
	var tooLarge smithy.APIError
	require.ErrorAs(t, err, &tooLarge)
	assert.Equal(t, "RequestEntityTooLargeException", tooLarge.ErrorCode())

	// Exactly 6 MB is allowed.
	ok := big[:lambda.MaxPayloadBytes]
	copy(ok, `{"pad":"`)
	copy(ok[len(ok)-2:], `"}`)
	out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("s"), Payload: ok})
	require.NoError(t, err)
	assert.Empty(t, aws.ToString(out.FunctionError))

	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("s"), Payload: []byte(`{"a":`)})
	var badJSON *types.InvalidRequestContentException
	require.ErrorAs(t, err, &badJSON)

	// An empty payload is the empty object.
	out, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("s")})
	require.NoError(t, err)
	assert.Empty(t, aws.ToString(out.FunctionError), string(out.Payload))
}

func TestEventInvocation(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	out, err := c.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String("echo"),
		TenantId: aws.String("s1"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"stdout":"async-marker"}`)})
	require.NoError(t, err)
	assert.Equal(t, int32(http.StatusAccepted), out.StatusCode)
	eventually(t, func() bool {
		_, b := h.get(t, "t1", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=s1")
		return strings.Contains(string(b), "async-marker")
	}, "the event invocation ran")
}

func TestFunctionsPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c1, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	h1 := &harness{cloud: c1}
	srv := newServer(t, c1)
	h1.url = srv
	createFn(t, h1.client("t1"), "keep", fnOpts{tenancy: true, env: map[string]string{"KK": "v"}})
	mustInvoke(t, h1.client("t1"), "keep", "s", nil)
	require.NoError(t, c1.Close())

	c2, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	defer c2.Close()
	h2 := &harness{cloud: c2, url: newServer(t, c2)}
	got, err := h2.client("t1").GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("keep")})
	require.NoError(t, err)
	assert.Equal(t, "v", got.Configuration.Environment.Variables["KK"])
	r := mustInvoke(t, h2.client("t1"), "keep", "s", map[string]any{"env": []string{"KK"}})
	assert.True(t, r.cold, "environments do not survive a restart")
	assert.Equal(t, "v", r.resp.Env["KK"])
}

func TestUnknownOperation(t *testing.T) {
	h := newHarness(t, nil)
	status, _ := h.get(t, "t1", "/2015-03-31/functions/x/policy")
	assert.Equal(t, http.StatusNotFound, status)
	_, err := h.client("t1").GetPolicy(context.Background(), &awslambda.GetPolicyInput{FunctionName: aws.String("x")})
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr))
	assert.Equal(t, "UnknownOperationException", apiErr.ErrorCode())
	_ = time.Second
}
