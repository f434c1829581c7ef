package lambda_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
)

// echoBinary is the sample handler built once for the whole test binary:
// a real aws-lambda-go bootstrap.
var echoBinary []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gust-echo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := lambdatest.BuildEcho(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echoBinary, err = os.ReadFile(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// echoZip returns the echo handler zipped as bootstrap, with an extra file
// so the zip path (not only the bare executable path) is exercised.
func echoZip(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Store}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	require.NoError(t, err)
	_, err = w.Write(echoBinary)
	require.NoError(t, err)
	w, err = zw.Create("data/readme.txt")
	require.NoError(t, err)
	_, err = w.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

type harness struct {
	cloud *lambda.Cloud
	url   string
	cfg   lambda.Config
}

func newHarness(t testing.TB, mod func(*lambda.Config)) *harness {
	t.Helper()
	cfg := lambda.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := lambda.Open(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(trustKeyID(c))
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, c.Close())
	})
	return &harness{cloud: c, url: srv.URL, cfg: cfg}
}

// client returns a real aws-sdk-go-v2 Lambda client acting as tenant, with
// retries off so throttling is observed as is.
func (h *harness) client(tenant string) *awslambda.Client {
	return awslambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(tenant, "gust", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(h.url) })
}

type fnOpts struct {
	tenancy  bool
	timeout  int32
	env      map[string]string
	maxEnvs  int
	code     []byte
	memoryMB int32
	egress   string // X-Gust-Egress; "" sends none
}

func createFn(t testing.TB, c *awslambda.Client, name string, o fnOpts) *awslambda.CreateFunctionOutput {
	t.Helper()
	in := &awslambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Role:         aws.String("arn:aws:iam::000000000000:role/gust"),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Code:         &types.FunctionCode{ZipFile: o.code},
	}
	if in.Code.ZipFile == nil {
		in.Code.ZipFile = echoBinary
	}
	if o.tenancy {
		in.TenancyConfig = &types.TenancyConfig{TenantIsolationMode: types.TenantIsolationModePerTenant}
	}
	if o.timeout > 0 {
		in.Timeout = aws.Int32(o.timeout)
	}
	if o.memoryMB > 0 {
		in.MemorySize = aws.Int32(o.memoryMB)
	}
	if o.env != nil {
		in.Environment = &types.Environment{Variables: o.env}
	}
	if o.maxEnvs > 0 {
		in.Tags = map[string]string{lambda.TagMaxEnvsPerSubTenant: fmt.Sprint(o.maxEnvs)}
	}
	var opts []func(*awslambda.Options)
	if o.egress != "" {
		opts = append(opts, func(ao *awslambda.Options) {
			ao.APIOptions = append(ao.APIOptions, addHeader(lambda.HeaderEgress, o.egress))
		})
	}
	out, err := c.CreateFunction(context.Background(), in, opts...)
	require.NoError(t, err)
	return out
}

// echoResult is one invocation as a test sees it.
type echoResult struct {
	resp     sample.Response
	envID    string
	cold     bool
	fnError  string
	errDoc   map[string]any
	executed string
}

func invoke(t testing.TB, c *awslambda.Client, name, sub string, req any) (echoResult, error) {
	t.Helper()
	payload, err := json.Marshal(req)
	require.NoError(t, err)
	in := &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: payload}
	if sub != "" {
		in.TenantId = aws.String(sub)
	}
	out, err := c.Invoke(context.Background(), in)
	if err != nil {
		return echoResult{}, err
	}
	r := echoResult{fnError: aws.ToString(out.FunctionError), executed: aws.ToString(out.ExecutedVersion)}
	r.envID, r.cold = rawHeaders(out.ResultMetadata)
	if r.fnError != "" {
		require.NoError(t, json.Unmarshal(out.Payload, &r.errDoc), string(out.Payload))
		return r, nil
	}
	require.NoError(t, json.Unmarshal(out.Payload, &r.resp), string(out.Payload))
	return r, nil
}

func mustInvoke(t testing.TB, c *awslambda.Client, name, sub string, req any) echoResult {
	t.Helper()
	r, err := invoke(t, c, name, sub, req)
	require.NoError(t, err)
	return r
}

type envList struct {
	Environments        []envEntry
	MemoryLimitEnforced bool
	MemoryLimitNote     string
	Isolation           string
}

type envEntry struct {
	EnvironmentID       string `json:"EnvironmentId"`
	SubTenant           string
	State               string
	Version             string
	Invocations         int
	MemoryLimitEnforced bool
	Pid                 int
	Isolation           string
	Uid                 int
	PidsMax             int
	CpuShare            int
	EphemeralStorageMB  int
}

func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond, msg)
}

func rawHeaders(md middleware.Metadata) (envID string, cold bool) {
	raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok {
		return "", false
	}
	return raw.Header.Get(lambda.HeaderEnvironmentID), raw.Header.Get(lambda.HeaderColdStart) == "true"
}

// get calls a gust extension endpoint as tenant (through trustKeyID, which
// takes the tenant from the SigV4 credential scope); no tenant sends no
// Authorization header.
func (h *harness) get(t testing.TB, tenant, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
	require.NoError(t, err)
	if tenant != "" {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+tenant+"/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func (h *harness) envs(t testing.TB, tenant, fn string) envList {
	t.Helper()
	status, b := h.get(t, tenant, "/2015-03-31/functions/"+fn+"/"+lambda.EnvironmentsSuffix)
	require.Equal(t, http.StatusOK, status, string(b))
	var out envList
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func newServer(t testing.TB, c *lambda.Cloud) string {
	srv := httptest.NewServer(trustKeyID(c))
	t.Cleanup(srv.Close)
	return srv.URL
}

// addHeader is an SDK API option that sets an HTTP header on the request,
// the way the provider passes gust extensions.
func addHeader(name, value string) func(*middleware.Stack) error {
	return smithyhttp.AddHeaderValue(name, value)
}
