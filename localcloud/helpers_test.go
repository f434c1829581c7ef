package localcloud_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/tenants"
)

const region = "us-east-1"

// startCloud starts a local cloud on a temporary state directory, with its
// own tenant registry, and returns it with the tenants it created.
func startCloud(t *testing.T, names ...string) (*localcloud.Server, map[string]tenants.Credentials) {
	t.Helper()
	return startCloudAt(t, t.TempDir(), names...)
}

// startCloudAt is startCloud on the state directory dir; its registry is
// dir/tenants.db.
func startCloudAt(t *testing.T, dir string, names ...string) (*localcloud.Server, map[string]tenants.Credentials) {
	t.Helper()
	srv, err := localcloud.Start(localcloud.Config{StateDir: dir, BootDelay: 50 * time.Millisecond,
		Lambda: lambda.Config{WarmSandboxes: -1}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	creds := map[string]tenants.Credentials{}
	for _, n := range names {
		c, err := srv.Registry().Create(context.Background(), n)
		require.NoError(t, err)
		creds[n] = c
	}
	return srv, creds
}

func static(c tenants.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

// sdkConfig is an aws.Config for the cloud with retries off, so every
// error code the cloud answers is seen as is.
func sdkConfig(p aws.CredentialsProvider) aws.Config {
	return aws.Config{Region: region, Credentials: p, Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
}

func ec2Client(srv *localcloud.Server, p aws.CredentialsProvider) *awsec2.Client {
	return awsec2.NewFromConfig(sdkConfig(p), func(o *awsec2.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
}

func lambdaClient(srv *localcloud.Server, p aws.CredentialsProvider) *awslambda.Client {
	return awslambda.NewFromConfig(sdkConfig(p), func(o *awslambda.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
}

func stsClient(srv *localcloud.Server, p aws.CredentialsProvider) *awssts.Client {
	return awssts.NewFromConfig(sdkConfig(p), func(o *awssts.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
}

// code is the API error code of err, "" for nil.
func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	return ae.ErrorCode()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// signer signs raw requests the way aws-sdk-go-v2 does.
type signer struct {
	keyID, secret, token string
	service              string
	at                   time.Time // zero: now
}

func (s signer) creds() aws.Credentials {
	return aws.Credentials{AccessKeyID: s.keyID, SecretAccessKey: s.secret, SessionToken: s.token}
}

func (s signer) time() time.Time {
	if s.at.IsZero() {
		return time.Now()
	}
	return s.at
}

// sign signs a request of method to url with body and the extra headers
// (which are signed too).
func (s signer) sign(t *testing.T, method, url string, body []byte, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), s.creds(), req, sha256Hex(body), s.service, region, s.time()))
	return req
}

// presign returns a presigned URL request of method to url with body.
func (s signer) presign(t *testing.T, method, url string, body []byte, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	signedURL, signedHeader, err := v4.NewSigner().PresignHTTP(context.Background(), s.creds(), req, sha256Hex(body), s.service, region, s.time())
	require.NoError(t, err)
	out, err := http.NewRequest(method, signedURL, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range signedHeader {
		if http.CanonicalHeaderKey(k) != "Host" {
			out.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	return out
}

var xmlCode = regexp.MustCompile(`<Code>([^<]*)</Code>`)

// response is an answer of the cloud: its status, error code (from
// Lambda's X-Amzn-Errortype or the XML error document) and body.
type response struct {
	status int
	code   string
	body   string
}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r := response{status: resp.StatusCode, code: resp.Header.Get("X-Amzn-Errortype"), body: string(b)}
	if m := xmlCode.FindStringSubmatch(r.body); r.code == "" && m != nil {
		r.code = m[1]
	}
	return r
}

// shellZip is a function package whose bootstrap is a shell script: enough
// to create functions that the tests never invoke.
func shellZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	require.NoError(t, err)
	_, err = w.Write([]byte("#!/bin/sh\nexit 1\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}
