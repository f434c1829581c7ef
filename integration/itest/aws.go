package itest

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/require"
)

// TenantAWSConfig is an AWS SDK configuration that signs with the given
// key and takes nothing from the environment; retries are off so that
// errors show as the cloud answered them.
func TenantAWSConfig(akid, secret string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

// TenantLambda is a Lambda client of TenantAWSConfig at endpoint.
func TenantLambda(endpoint, akid, secret string) *lambda.Client {
	return lambda.NewFromConfig(TenantAWSConfig(akid, secret), func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// RequestID is the Lambda request id (X-Amzn-Requestid) of an SDK answer
// or of its error; it fails the test if the error carries none.
func RequestID(t testing.TB, out *lambda.InvokeOutput, err error) string {
	t.Helper()
	if err != nil {
		var re *awshttp.ResponseError
		require.True(t, errors.As(err, &re), "%v", err)
		return re.ServiceRequestID()
	}
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	require.True(t, ok)
	return id
}
