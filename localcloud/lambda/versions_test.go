package lambda_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

func invokeQ(t *testing.T, c *awslambda.Client, name, qual string) echoResult {
	t.Helper()
	payload := []byte(`{"env":["VV","AWS_LAMBDA_FUNCTION_VERSION"]}`)
	in := &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: payload}
	if qual != "" {
		in.Qualifier = aws.String(qual)
	}
	out, err := c.Invoke(context.Background(), in)
	require.NoError(t, err)
	require.Empty(t, aws.ToString(out.FunctionError), string(out.Payload))
	r := echoResult{executed: aws.ToString(out.ExecutedVersion)}
	require.NoError(t, jsonUnmarshal(out.Payload, &r.resp))
	return r
}

// TestVersionsAndAliases: a published version is an immutable snapshot of
// code and configuration that stays invokable after later deploys, by
// number, alias or qualified ARN; $LATEST moves on; all of it survives a
// restart.
func TestVersionsAndAliases(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cloud, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	c := clientAt(newServer(t, cloud), "acme")

	fn := createFn(t, c, "echo", fnOpts{env: map[string]string{"VV": "one"}})
	v1, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("echo"), Description: aws.String("first")})
	require.NoError(t, err)
	assert.Equal(t, "1", aws.ToString(v1.Version))
	assert.Equal(t, aws.ToString(fn.FunctionArn)+":1", aws.ToString(v1.FunctionArn))
	assert.Equal(t, "first", aws.ToString(v1.Description))
	again, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Equal(t, "1", aws.ToString(again.Version), "publishing an unchanged $LATEST returns its version")
	_, err = c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("echo"), CodeSha256: aws.String("bm90IGl0")})
	var invalid *types.InvalidParameterValueException
	require.ErrorAs(t, err, &invalid)

	_, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("echo"),
		Environment: &types.Environment{Variables: map[string]string{"VV": "two"}}})
	require.NoError(t, err)

	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod"), FunctionVersion: aws.String("1")})
	require.NoError(t, err)
	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod"), FunctionVersion: aws.String("1")})
	var conflict *types.ResourceConflictException
	require.ErrorAs(t, err, &conflict)
	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("bad"), FunctionVersion: aws.String("7")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf, "an alias names a published version")
	_, err = c.CreateAlias(ctx, &awslambda.CreateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("edge"), FunctionVersion: aws.String("$LATEST")})
	require.NoError(t, err)

	check := func(c *awslambda.Client) {
		t.Helper()
		for _, q := range []struct{ name, qual, want, executed string }{
			{"echo", "", "two", "2"},
			{"echo", "$LATEST", "two", "2"},
			{"echo", "1", "one", "1"},
			{"echo", "prod", "one", "1"},
			{"echo:prod", "", "one", "1"},
			{aws.ToString(fn.FunctionArn) + ":prod", "", "one", "1"},
			{aws.ToString(fn.FunctionArn) + ":1", "", "one", "1"},
			{"echo", "edge", "two", "2"},
		} {
			r := invokeQ(t, c, q.name, q.qual)
			assert.Equal(t, q.want, r.resp.Env["VV"], "%s %s", q.name, q.qual)
			assert.Equal(t, q.executed, r.executed, "%s %s", q.name, q.qual)
			assert.Equal(t, q.executed, r.resp.Env["AWS_LAMBDA_FUNCTION_VERSION"], "%s %s", q.name, q.qual)
		}
		_, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("nope")})
		require.ErrorAs(t, err, &nf)

		got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo"), Qualifier: aws.String("prod")})
		require.NoError(t, err)
		assert.Equal(t, "1", aws.ToString(got.Configuration.Version))
		assert.Equal(t, "one", got.Configuration.Environment.Variables["VV"])

		vs, err := c.ListVersionsByFunction(ctx, &awslambda.ListVersionsByFunctionInput{FunctionName: aws.String("echo")})
		require.NoError(t, err)
		require.Len(t, vs.Versions, 2)
		assert.Equal(t, "$LATEST", aws.ToString(vs.Versions[0].Version))
		assert.Equal(t, "two", vs.Versions[0].Environment.Variables["VV"])
		assert.Equal(t, "1", aws.ToString(vs.Versions[1].Version))

		al, err := c.ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("echo")})
		require.NoError(t, err)
		require.Len(t, al.Aliases, 2)
		assert.Equal(t, "edge", aws.ToString(al.Aliases[0].Name))
		assert.Equal(t, "prod", aws.ToString(al.Aliases[1].Name))
		a, err := c.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod")})
		require.NoError(t, err)
		assert.Equal(t, "1", aws.ToString(a.FunctionVersion))
		assert.Equal(t, aws.ToString(fn.FunctionArn)+":prod", aws.ToString(a.AliasArn))
	}
	check(c)

	// Another tenant sees none of it.
	other := clientAt(newServer(t, cloud), "globex")
	_, err = other.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: fn.FunctionArn, Name: aws.String("prod")})
	require.ErrorAs(t, err, &nf)
	_, err = other.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(aws.ToString(fn.FunctionArn) + ":1")})
	require.ErrorAs(t, err, &nf)

	// A restart keeps versions and aliases.
	require.NoError(t, cloud.Close())
	cloud, err = lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	c = clientAt(newServer(t, cloud), "acme")
	check(c)

	// A version an alias names cannot go; then it can.
	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("echo"), Qualifier: aws.String("1")})
	require.ErrorAs(t, err, &conflict)
	_, err = c.UpdateAlias(ctx, &awslambda.UpdateAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod"), FunctionVersion: aws.String("$LATEST")})
	require.NoError(t, err)
	assert.Equal(t, "two", invokeQ(t, c, "echo", "prod").resp.Env["VV"])
	_, err = c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("echo"), Qualifier: aws.String("1")})
	require.NoError(t, err)
	_, err = c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("1")})
	require.ErrorAs(t, err, &nf)
	_, err = c.DeleteAlias(ctx, &awslambda.DeleteAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod")})
	require.NoError(t, err)
	_, err = c.GetAlias(ctx, &awslambda.GetAliasInput{FunctionName: aws.String("echo"), Name: aws.String("prod")})
	require.ErrorAs(t, err, &nf)
	assert.Equal(t, "two", invokeQ(t, c, "echo", "").resp.Env["VV"], "deleting a version leaves $LATEST")
}

// TestReservedConcurrencyIsEnforced: reserved concurrency caps a
// function's concurrent invocations over its sub-tenants, 0 throttles it
// entirely, and the setting survives a restart.
func TestReservedConcurrencyIsEnforced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cloud, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	srvURL := newServer(t, cloud)
	c := clientAt(srvURL, "acme")
	createFn(t, c, "echo", fnOpts{tenancy: true})

	got, err := c.GetFunctionConcurrency(ctx, &awslambda.GetFunctionConcurrencyInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Nil(t, got.ReservedConcurrentExecutions)

	out, err := c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("echo"), ReservedConcurrentExecutions: aws.Int32(1)})
	require.NoError(t, err)
	assert.Equal(t, int32(1), aws.ToInt32(out.ReservedConcurrentExecutions))

	// One invocation holds the only slot; another sub-tenant's is throttled.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := invoke(t, c, "echo", "cust-1", sample.Request{SleepMS: 3000})
		assert.NoError(t, err)
	}()
	h := &harness{cloud: cloud, url: srvURL}
	eventually(t, func() bool {
		for _, e := range h.envs(t, "acme", "echo").Environments {
			if e.State == "busy" {
				return true
			}
		}
		return false
	}, "the first invocation is running")
	_, err = invoke(t, c, "echo", "cust-2", sample.Request{})
	var tooMany *types.TooManyRequestsException
	require.ErrorAs(t, err, &tooMany)
	assert.Equal(t, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded, tooMany.Reason)
	wg.Wait()
	mustInvoke(t, c, "echo", "cust-2", sample.Request{})

	_, err = c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("echo"), ReservedConcurrentExecutions: aws.Int32(0)})
	require.NoError(t, err)
	require.NoError(t, cloud.Close())
	cloud, err = lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	c = clientAt(newServer(t, cloud), "acme")
	_, err = invoke(t, c, "echo", "cust-1", sample.Request{})
	require.ErrorAs(t, err, &tooMany, "0 throttles every invocation, after a restart too")
	assert.Equal(t, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded, tooMany.Reason)

	_, err = c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("echo"), ReservedConcurrentExecutions: aws.Int32(901)})
	var invalid *types.InvalidParameterValueException
	require.ErrorAs(t, err, &invalid, "the account keeps 100 unreserved")

	_, err = c.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	mustInvoke(t, c, "echo", "cust-1", sample.Request{})
}

func TestTagsByARN(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	c, other := h.client("acme"), h.client("globex")
	fn := createFn(t, c, "echo", fnOpts{maxEnvs: 2})
	arn := fn.FunctionArn

	_, err := c.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: map[string]string{"team": "a", "empty": ""}})
	require.NoError(t, err)
	tags, err := c.ListTags(ctx, &awslambda.ListTagsInput{Resource: arn})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"team": "a", "empty": "", lambda.TagMaxEnvsPerSubTenant: "2"}, tags.Tags)
	_, err = c.UntagResource(ctx, &awslambda.UntagResourceInput{Resource: arn, TagKeys: []string{"empty"}})
	require.NoError(t, err)
	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"team": "a", lambda.TagMaxEnvsPerSubTenant: "2"}, got.Tags)
	assert.Equal(t, "1", aws.ToString(got.Configuration.Version), "tags are not a deploy")

	var invalid *types.InvalidParameterValueException
	for name, bad := range map[string]map[string]string{
		"aws: prefix":    {"aws:x": "v"},
		"long key":       {strings.Repeat("k", 129): "v"},
		"long value":     {"k": strings.Repeat("v", 257)},
		"gust: settings": {lambda.TagMaxEnvsPerSubTenant: "9"},
	} {
		_, err = c.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: bad})
		require.ErrorAs(t, err, &invalid, name)
	}
	many := map[string]string{}
	for i := range 49 {
		many["k"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	_, err = c.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: many})
	require.ErrorAs(t, err, &invalid, "50 tags at most")

	var nf *types.ResourceNotFoundException
	_, err = other.ListTags(ctx, &awslambda.ListTagsInput{Resource: arn})
	require.ErrorAs(t, err, &nf)
	_, err = other.TagResource(ctx, &awslambda.TagResourceInput{Resource: arn, Tags: map[string]string{"x": "y"}})
	require.ErrorAs(t, err, &nf)
}

func TestAccountSettings(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	c := h.client("acme")
	a := createFn(t, c, "a", fnOpts{})
	_, err := c.PublishVersion(ctx, &awslambda.PublishVersionInput{FunctionName: aws.String("a")})
	require.NoError(t, err)
	other := zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\nexit 0\n"})
	up, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("a"), ZipFile: other})
	require.NoError(t, err)
	b := createFn(t, c, "b", fnOpts{})
	createFn(t, h.client("globex"), "c", fnOpts{})
	_, err = c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("b"), ReservedConcurrentExecutions: aws.Int32(50)})
	require.NoError(t, err)

	s, err := c.GetAccountSettings(ctx, &awslambda.GetAccountSettingsInput{})
	require.NoError(t, err)
	assert.Equal(t, int64(2), s.AccountUsage.FunctionCount, "only the tenant's own")
	assert.Equal(t, a.CodeSize+up.CodeSize+b.CodeSize, s.AccountUsage.TotalCodeSize, "$LATEST and published versions")
	assert.Equal(t, int32(lambda.DefaultMaxEnvsTotal), s.AccountLimit.ConcurrentExecutions)
	assert.Equal(t, int32(lambda.DefaultMaxEnvsTotal-50), aws.ToInt32(s.AccountLimit.UnreservedConcurrentExecutions))
	assert.Equal(t, int64(lambda.DefaultMaxCodeBytes), s.AccountLimit.CodeSizeZipped)
}

// TestCodeLocation: GetFunction's Code.Location downloads the function's
// code zip, and only while it is valid: a changed or forged URL, another
// tenant's code, an expired URL and a deleted function get 403.
func TestCodeLocation(t *testing.T) {
	ctx := context.Background()
	var offset atomic.Int64
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	acme, globex := h.client("acme"), h.client("globex")
	createFn(t, acme, "secret", fnOpts{})
	createFn(t, globex, "mine", fnOpts{code: zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\nexit 0\n"})})

	location := func(c *awslambda.Client, name string) (string, string) {
		t.Helper()
		got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)})
		require.NoError(t, err)
		return aws.ToString(got.Code.Location), aws.ToString(got.Configuration.CodeSha256)
	}
	fetch := func(u string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	loc, sha := location(acme, "secret")
	require.True(t, strings.HasPrefix(loc, h.url+lambda.CodePathPrefix), loc)
	status, body := fetch(loc)
	require.Equal(t, http.StatusOK, status, string(body))
	sum := sha256.Sum256(body)
	assert.Equal(t, sha, base64.StdEncoding.EncodeToString(sum[:]), "the download is the deployed code")

	mineLoc, _ := location(globex, "mine")
	u, err := url.Parse(mineLoc)
	require.NoError(t, err)
	acmeURL, err := url.Parse(loc)
	require.NoError(t, err)
	for name, forged := range map[string]func(*url.URL){
		"another tenant's code under my signature": func(x *url.URL) { x.Path = acmeURL.Path },
		"another tenant's function": func(x *url.URL) {
			q := x.Query()
			q.Set("tenant", "acme")
			q.Set("function", "secret")
			x.RawQuery = q.Encode()
		},
		"a later expiry": func(x *url.URL) { q := x.Query(); q.Set("expires", "99999999999"); x.RawQuery = q.Encode() },
		"no signature":   func(x *url.URL) { q := x.Query(); q.Del("signature"); x.RawQuery = q.Encode() },
	} {
		x := *u
		forged(&x)
		status, _ := fetch(x.String())
		assert.Equal(t, http.StatusForbidden, status, name)
	}

	offset.Store(int64(lambda.CodeURLTTL + time.Minute))
	status, _ = fetch(loc)
	assert.Equal(t, http.StatusForbidden, status, "expired")
	offset.Store(0)
	loc, _ = location(acme, "secret")
	_, err = acme.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("secret")})
	require.NoError(t, err)
	status, _ = fetch(loc)
	assert.Equal(t, http.StatusForbidden, status, "the function is gone")
}

func clientAt(endpoint, tenant string) *awslambda.Client {
	return (&harness{url: endpoint}).client(tenant)
}

func jsonUnmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New(err.Error() + ": " + string(b))
	}
	return nil
}
