package localcloud_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/tenants"
)

// TestHealthEndpoint: GET /_gust/health needs no credentials, lists the
// services and their state, and says nothing about any tenant.
func TestHealthEndpoint(t *testing.T) {
	srv, _ := startCloud(t, "acme")
	resp, err := http.Get(srv.Endpoint() + localcloud.HealthPath)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var st localcloud.HealthStatus
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, localcloud.StateRunning, st.Services["ec2"])
	assert.Equal(t, localcloud.StateRunning, st.Services["sts"])
	assert.Contains(t, []string{localcloud.StateRunning, localcloud.StateDegraded}, st.Services["lambda"])
	assert.Len(t, st.Services, 3)
	assert.NotEmpty(t, st.Version)
	assert.NotContains(t, string(b), "acme")
	assert.NotContains(t, string(b), tenants.AccountID("acme"))

	post, err := http.Post(srv.Endpoint()+localcloud.HealthPath, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
}

// TestOneAccountIDPerTenant: the default tenant's account id is the same
// in Lambda ARNs, EC2 OwnerIds and STS, and stable across releases.
func TestOneAccountIDPerTenant(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, tenants.DefaultTenant)
	p := static(creds[tenants.DefaultTenant])
	const want = "984327297149" // tenants.AccountID("default"): changing it breaks every stored ARN
	require.Equal(t, want, tenants.AccountID(tenants.DefaultTenant))

	id, err := stsClient(srv, p).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, want, aws.ToString(id.Account))

	fn, err := lambdaClient(srv, p).CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("f"),
		Role: aws.String("arn:aws:iam::" + want + ":role/r"), Runtime: lambdatypes.RuntimeProvidedal2023,
		Code: &lambdatypes.FunctionCode{ZipFile: shellZip(t)}})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:lambda:"+region+":"+want+":function:f", aws.ToString(fn.FunctionArn))

	ec2c := ec2Client(srv, p)
	run, err := ec2c.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	assert.Equal(t, want, aws.ToString(run.OwnerId))
	desc, err := ec2c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
	require.Len(t, desc.Reservations, 1)
	assert.Equal(t, want, aws.ToString(desc.Reservations[0].OwnerId))
}

// TestCodeLocationThroughTheServer: GetFunction's Code.Location is an
// address of the cloud the client reached, served without SigV4.
func TestCodeLocationThroughTheServer(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme")
	c := lambdaClient(srv, static(creds["acme"]))
	code := shellZip(t)
	_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("f"), Role: aws.String("arn:aws:iam::1:role/r"),
		Runtime: lambdatypes.RuntimeProvidedal2023, Code: &lambdatypes.FunctionCode{ZipFile: code}})
	require.NoError(t, err)
	got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("f")})
	require.NoError(t, err)
	loc := aws.ToString(got.Code.Location)
	require.True(t, strings.HasPrefix(loc, srv.Endpoint()+"/"), loc)
	resp, err := http.Get(loc)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, code, b)
}
