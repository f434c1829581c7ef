package lambda_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// withHeader is an SDK option setting a gust extension header on one call.
func withHeader(name, value string) func(*awslambda.Options) {
	return func(o *awslambda.Options) { o.APIOptions = append(o.APIOptions, addHeader(name, value)) }
}

// fnSettings reads back what GetFunction reports of a function's version,
// ephemeral storage and egress tag.
func fnSettings(t *testing.T, c *awslambda.Client, name string) (version string, ephemeralMB int32, egress string, hasEgress bool) {
	t.Helper()
	got, err := c.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String(name)})
	require.NoError(t, err)
	require.NotNil(t, got.Configuration.EphemeralStorage, "EphemeralStorage is always reported")
	egress, hasEgress = got.Tags[lambda.TagEgress]
	return aws.ToString(got.Configuration.Version), aws.ToInt32(got.Configuration.EphemeralStorage.Size), egress, hasEgress
}

func TestEphemeralStorageRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	ctx := context.Background()

	out := createFn(t, c, "plain", fnOpts{})
	require.NotNil(t, out.EphemeralStorage)
	assert.Equal(t, int32(lambda.DefaultEphemeralMB), aws.ToInt32(out.EphemeralStorage.Size))
	// On the wire exactly as Lambda reports it.
	status, body := h.get(t, "t1", "/2015-03-31/functions/plain/configuration")
	require.Equal(t, http.StatusOK, status, string(body))
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	assert.JSONEq(t, `{"Size":512}`, string(raw["EphemeralStorage"]))

	big, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("big"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoBinary},
		EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(2048)}})
	require.NoError(t, err)
	assert.Equal(t, int32(2048), aws.ToInt32(big.EphemeralStorage.Size))
	v, size, _, _ := fnSettings(t, c, "big")
	assert.Equal(t, "1", v)
	assert.Equal(t, int32(2048), size)
	list, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	require.NoError(t, err)
	sizes := map[string]int32{}
	for _, f := range list.Functions {
		require.NotNil(t, f.EphemeralStorage)
		sizes[aws.ToString(f.FunctionName)] = aws.ToInt32(f.EphemeralStorage.Size)
	}
	assert.Equal(t, map[string]int32{"plain": 512, "big": 2048}, sizes)

	update := func(name string, mb int32) (*awslambda.UpdateFunctionConfigurationOutput, error) {
		return c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(mb)}})
	}
	up, err := update("big", 10240)
	require.NoError(t, err)
	assert.Equal(t, int32(10240), aws.ToInt32(up.EphemeralStorage.Size))
	assert.Equal(t, "2", aws.ToString(up.Version), "a new size is a new version")
	up, err = update("big", 10240)
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(up.Version), "the same size changes nothing")
	up, err = update("plain", 512)
	require.NoError(t, err)
	assert.Equal(t, "1", aws.ToString(up.Version), "naming the default changes nothing")

	// Out of range, on create and update: refused, nothing changes.
	for _, mb := range []int32{0, 511, 10241, -1} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("bad"),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoBinary},
			EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(mb)}})
		var ip *types.InvalidParameterValueException
		require.ErrorAs(t, err, &ip, mb)
		assert.Contains(t, ip.ErrorMessage(), "EphemeralStorage.Size")
		assert.Contains(t, ip.ErrorMessage(), "between 512 and 10240 MB")
		_, err = update("big", mb)
		require.ErrorAs(t, err, &ip, mb)
	}
	_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("bad")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
	v, size, _, _ = fnSettings(t, c, "big")
	assert.Equal(t, "2", v)
	assert.Equal(t, int32(10240), size)
}

func TestEgressPolicyOnCreate(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	ctx := context.Background()
	create := func(name string, tags map[string]string, opts ...func(*awslambda.Options)) error {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoBinary}, Tags: tags}, opts...)
		return err
	}

	require.NoError(t, create("default", nil))
	_, _, egress, has := fnSettings(t, c, "default")
	assert.False(t, has, "no policy is none, reported by the tag's absence: %q", egress)

	require.NoError(t, create("by-header", nil, withHeader(lambda.HeaderEgress, "API.Example.com:443, *.s3.amazonaws.com,api.example.com:443")))
	_, _, egress, has = fnSettings(t, c, "by-header")
	assert.True(t, has)
	assert.Equal(t, "*.s3.amazonaws.com,api.example.com:443", egress, "canonical: lowercase, sorted, no duplicates")

	require.NoError(t, create("by-tag", map[string]string{lambda.TagEgress: "ALL", "team": "pay"}))
	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("by-tag")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{lambda.TagEgress: "all", "team": "pay"}, got.Tags)

	require.NoError(t, create("header-wins", map[string]string{lambda.TagEgress: "all"}, withHeader(lambda.HeaderEgress, "example.org")))
	_, _, egress, _ = fnSettings(t, c, "header-wins")
	assert.Equal(t, "example.org", egress)

	require.NoError(t, create("tag-none", map[string]string{lambda.TagEgress: "none", "team": "pay"}))
	got, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("tag-none")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"team": "pay"}, got.Tags, "none is the tag's absence")

	// Bad policies are refused with the problem named, and nothing is made.
	for _, bad := range []string{"example.com:99999", "a b.com", "*.*.example.com", "all,example.com", "http://example.com"} {
		for _, viaTag := range []bool{false, true} {
			var err error
			if viaTag {
				err = create("bad", map[string]string{lambda.TagEgress: bad})
			} else {
				err = create("bad", nil, withHeader(lambda.HeaderEgress, bad))
			}
			var ip *types.InvalidParameterValueException
			require.ErrorAs(t, err, &ip, bad)
			assert.Contains(t, ip.ErrorMessage(), "egress policy", bad)
			assert.Contains(t, ip.ErrorMessage(), lambda.HeaderEgress, bad)
		}
	}
	_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("bad")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
}

func TestEgressPolicyOnUpdate(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	ctx := context.Background()
	createFn(t, c, "echo", fnOpts{tenancy: true, maxEnvs: 2})
	update := func(opts ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error) {
		return c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("echo")}, opts...)
	}

	up, err := update(withHeader(lambda.HeaderEgress, "example.com:443,*.example.org"))
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(up.Version), "a new policy is a new version")
	v, _, egress, _ := fnSettings(t, c, "echo")
	assert.Equal(t, "2", v)
	assert.Equal(t, "*.example.org,example.com:443", egress)

	up, err = update(withHeader(lambda.HeaderEgress, "*.EXAMPLE.org, example.com:443"))
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(up.Version), "the same policy in another form changes nothing")
	up, err = update()
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(up.Version), "no header keeps the policy")
	_, _, egress, _ = fnSettings(t, c, "echo")
	assert.Equal(t, "*.example.org,example.com:443", egress)

	_, err = update(withHeader(lambda.HeaderEgress, "example.com:0"))
	var ip *types.InvalidParameterValueException
	require.ErrorAs(t, err, &ip)
	assert.Contains(t, ip.ErrorMessage(), "example.com:0")
	v, _, egress, _ = fnSettings(t, c, "echo")
	assert.Equal(t, "2", v, "a refused update makes no version")
	assert.Equal(t, "*.example.org,example.com:443", egress)

	up, err = update(withHeader(lambda.HeaderEgress, "all"))
	require.NoError(t, err)
	assert.Equal(t, "3", aws.ToString(up.Version))
	up, err = update(withHeader(lambda.HeaderEgress, "none"))
	require.NoError(t, err)
	assert.Equal(t, "4", aws.ToString(up.Version), "taking egress away is a new version too")
	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{lambda.TagMaxEnvsPerSubTenant: "2"}, got.Tags, "none drops the tag, other tags stay")
}

func TestEgressAndEphemeralPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c1, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	h1 := &harness{cloud: c1, url: newServer(t, c1)}
	_, err = h1.client("t1").CreateFunction(context.Background(), &awslambda.CreateFunctionInput{FunctionName: aws.String("keep"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: echoBinary},
		EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(1024)}}, withHeader(lambda.HeaderEgress, "example.com"))
	require.NoError(t, err)
	require.NoError(t, c1.Close())

	c2, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	defer c2.Close()
	h2 := &harness{cloud: c2, url: newServer(t, c2)}
	_, size, egress, _ := fnSettings(t, h2.client("t1"), "keep")
	assert.Equal(t, int32(1024), size)
	assert.Equal(t, "example.com", egress)
}
