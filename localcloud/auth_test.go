package localcloud_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/tenants"
)

// apiCase is one API of the cloud as the verification table drives it: a
// request with a body, and the codes each kind of refusal must get.
type apiCase struct {
	name, service, method, path, contentType string
	body                                     []byte
	okStatus                                 int    // a verified request reaches the API and gets this
	okCode                                   string // and this error code ("" for success)
	unknownKey, badSig, missing, expired     string
	unknownStatus, badStatus, missingStatus  int
	expiredStatus                            int
}

var apiCases = []apiCase{
	{
		name: "lambda", service: "lambda", method: http.MethodPost, path: "/2015-03-31/functions/nope/invocations",
		contentType: "application/json", body: []byte(`{"payload":1}`),
		// Verified, it reaches Lambda, which has no such function.
		okStatus: http.StatusNotFound, okCode: "ResourceNotFoundException",
		unknownKey: "UnrecognizedClientException", badSig: "InvalidSignatureException",
		missing: "MissingAuthenticationTokenException", expired: "InvalidSignatureException",
		unknownStatus: 403, badStatus: 403, missingStatus: 403, expiredStatus: 403,
	},
	{
		name: "ec2", service: "ec2", method: http.MethodPost, path: "/",
		contentType: "application/x-www-form-urlencoded", body: []byte("Action=DescribeInstances&Version=2016-11-15"),
		okStatus:   http.StatusOK,
		unknownKey: "AuthFailure", badSig: "SignatureDoesNotMatch", missing: "MissingAuthenticationToken", expired: "RequestExpired",
		unknownStatus: 401, badStatus: 403, missingStatus: 401, expiredStatus: 400,
	},
	{
		name: "sts", service: "sts", method: http.MethodPost, path: "/",
		contentType: "application/x-www-form-urlencoded", body: []byte("Action=GetCallerIdentity&Version=2011-06-15"),
		okStatus:   http.StatusOK,
		unknownKey: "InvalidClientTokenId", badSig: "SignatureDoesNotMatch", missing: "MissingAuthenticationToken", expired: "SignatureDoesNotMatch",
		unknownStatus: 403, badStatus: 403, missingStatus: 403, expiredStatus: 403,
	},
}

// logBuffer collects the cloud's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestVerificationTable drives every API of the cloud with requests signed
// by aws-sdk-go-v2's signer, good and bad, in the header and presigned
// forms, and checks each refusal gets AWS's code and status for that API,
// never echoes a secret, and is logged once.
func TestVerificationTable(t *testing.T) {
	var logs logBuffer
	srv, err := localcloud.Start(localcloud.Config{StateDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	acme, err := srv.Registry().Create(context.Background(), "acme")
	require.NoError(t, err)

	for _, api := range apiCases {
		t.Run(api.name, func(t *testing.T) {
			good := signer{keyID: acme.AccessKeyID, secret: acme.SecretAccessKey, service: api.service}
			url := srv.Endpoint() + api.path
			header := func() http.Header {
				return http.Header{"Content-Type": {api.contentType}, "X-Gust-Test": {"signed"}}
			}
			type row struct {
				name         string
				req          func() *http.Request
				status       int
				code, inBody string
			}
			ok := func(name string, req func() *http.Request) row {
				return row{name: name, req: req, status: api.okStatus, code: api.okCode}
			}
			bad := func(name string, req func() *http.Request) row {
				return row{name: name, req: req, status: api.badStatus, code: api.badSig}
			}
			rows := []row{
				ok("valid", func() *http.Request { return good.sign(t, api.method, url, api.body, header()) }),
				ok("valid presigned", func() *http.Request { return good.presign(t, api.method, url, api.body, header()) }),
				bad("wrong secret", func() *http.Request {
					s := good
					s.secret = strings.Repeat("x", 40)
					return s.sign(t, api.method, url, api.body, header())
				}),
				bad("body tampered", func() *http.Request {
					req := good.sign(t, api.method, url, api.body, header())
					tampered := append(bytes.Clone(api.body), ' ')
					req.Body, req.ContentLength = nopCloser(tampered), int64(len(tampered))
					return req
				}),
				bad("signed header tampered", func() *http.Request {
					req := good.sign(t, api.method, url, api.body, header())
					req.Header.Set("X-Gust-Test", "changed")
					return req
				}),
				bad("query tampered", func() *http.Request {
					req := good.sign(t, api.method, url+"?Qualifier=1", api.body, header())
					req.URL.RawQuery = "Qualifier=2"
					return req
				}),
				bad("signed for another service", func() *http.Request {
					s := good
					s.service = map[string]string{"lambda": "ec2", "ec2": "lambda", "sts": "lambda"}[api.service]
					return s.sign(t, api.method, url, api.body, header())
				}),
				bad("presigned query tampered", func() *http.Request {
					req := good.presign(t, api.method, url+"?Qualifier=1", api.body, header())
					req.URL.RawQuery = strings.Replace(req.URL.RawQuery, "Qualifier=1", "Qualifier=2", 1)
					return req
				}),
				bad("presigned body tampered", func() *http.Request {
					req := good.presign(t, api.method, url, api.body, header())
					tampered := append(bytes.Clone(api.body), ' ')
					req.Body, req.ContentLength = nopCloser(tampered), int64(len(tampered))
					return req
				}),
				{name: "unknown key", status: api.unknownStatus, code: api.unknownKey, req: func() *http.Request {
					s := good
					s.keyID = "AKIAAAAAAAAAAAAAAAAA"
					return s.sign(t, api.method, url, api.body, header())
				}},
				{name: "session token on a long-term key", status: api.unknownStatus, code: api.unknownKey, req: func() *http.Request {
					s := good
					s.token = "forged"
					return s.sign(t, api.method, url, api.body, header())
				}},
				{name: "no auth", status: api.missingStatus, code: api.missing, req: func() *http.Request {
					req, err := http.NewRequest(api.method, url, bytes.NewReader(api.body))
					require.NoError(t, err)
					req.Header = header()
					return req
				}},
				{name: "replayed outside the skew", status: api.expiredStatus, code: api.expired, inBody: "expired", req: func() *http.Request {
					s := good
					s.at = time.Now().Add(-6 * time.Minute)
					return s.sign(t, api.method, url, api.body, header())
				}},
				{name: "dated in the future", status: api.expiredStatus, code: api.expired, req: func() *http.Request {
					s := good
					s.at = time.Now().Add(6 * time.Minute)
					return s.sign(t, api.method, url, api.body, header())
				}},
				{name: "presigned long ago", status: api.expiredStatus, code: api.expired, req: func() *http.Request {
					s := good
					s.at = time.Now().Add(-time.Hour)
					return s.presign(t, api.method, url, api.body, header())
				}},
			}
			for _, c := range rows {
				t.Run(c.name, func(t *testing.T) {
					got := send(t, c.req())
					assert.Equal(t, c.status, got.status, got.body)
					assert.Equal(t, c.code, got.code, got.body)
					if c.inBody != "" {
						assert.Contains(t, strings.ToLower(got.body), c.inBody)
					}
					assert.NotContains(t, got.body, acme.SecretAccessKey)
				})
			}
		})
	}
	out := logs.String()
	assert.Contains(t, out, "local cloud refused a request")
	assert.Contains(t, out, "key_id="+acme.AccessKeyID)
	assert.Contains(t, out, "code=InvalidSignatureException")
	assert.Contains(t, out, "code=AuthFailure")
	assert.Contains(t, out, "code=InvalidClientTokenId")
	assert.NotContains(t, out, acme.SecretAccessKey, "the log never holds a secret")
	// One line per refusal: 13 of the 15 rows of each of the 3 APIs.
	assert.Equal(t, 3*13, strings.Count(out, "local cloud refused a request"), out)
}

func nopCloser(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// TestUnsignedRoutesByAction: an unsigned call to / gets the error of the
// API its action belongs to.
func TestUnsignedRoutesByAction(t *testing.T) {
	srv, _ := startCloud(t)
	for action, want := range map[string]response{
		"GetCallerIdentity": {status: 403, code: "MissingAuthenticationToken", body: "<ErrorResponse"},
		"AssumeRole":        {status: 403, code: "MissingAuthenticationToken", body: "<ErrorResponse"},
		"DescribeInstances": {status: 401, code: "MissingAuthenticationToken", body: "<Response><Errors>"},
		"LaunchRockets":     {status: 401, code: "MissingAuthenticationToken", body: "<Response><Errors>"},
	} {
		req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/", strings.NewReader("Action="+action))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		got := send(t, req)
		assert.Equal(t, want.status, got.status, action)
		assert.Equal(t, want.code, got.code, action)
		assert.Contains(t, got.body, want.body, action)

		get := send(t, mustRequest(t, http.MethodGet, srv.Endpoint()+"/?Action="+action))
		assert.Equal(t, want.code, get.code, "GET "+action)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	return req
}

// TestSDKClientsAuthenticate: unmodified aws-sdk-go-v2 clients work with a
// tenant's key, and get AWS's codes with a wrong secret or an unknown key.
func TestSDKClientsAuthenticate(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme")
	acme := creds["acme"]
	wrong := acme
	wrong.SecretAccessKey = strings.Repeat("A", 40)
	unknown := acme
	unknown.AccessKeyID = "AKIAZZZZZZZZZZZZZZZZ"

	for _, c := range []struct {
		name             string
		creds            tenants.Credentials
		ec2, lambda, sts string
	}{
		{"right secret", acme, "", "", ""},
		{"wrong secret", wrong, "SignatureDoesNotMatch", "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"unknown key", unknown, "AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ec2Client(srv, static(c.creds)).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
			assert.Equal(t, c.ec2, code(t, err))
			_, err = lambdaClient(srv, static(c.creds)).ListFunctions(ctx, &awslambda.ListFunctionsInput{})
			assert.Equal(t, c.lambda, code(t, err))
			id, err := stsClient(srv, static(c.creds)).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
			assert.Equal(t, c.sts, code(t, err))
			if err == nil {
				assert.Equal(t, tenants.AccountID("acme"), aws.ToString(id.Account))
				assert.Equal(t, "arn:aws:iam::"+tenants.AccountID("acme")+":root", aws.ToString(id.Arn))
			}
		})
	}
}

// TestRotatedAndDeletedKeysStop: the cloud sees the registry's changes
// made through another handle on the file (another gust process) at once.
func TestRotatedAndDeletedKeysStop(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := localcloud.Start(localcloud.Config{StateDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	other, err := tenants.Open(dir + "/tenants.db")
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	old, err := other.Create(ctx, "acme")
	require.NoError(t, err)
	list := func(c tenants.Credentials) string {
		_, err := lambdaClient(srv, static(c)).ListFunctions(ctx, &awslambda.ListFunctionsInput{})
		return code(t, err)
	}
	assert.Equal(t, "", list(old))
	fresh, err := other.RotateKey(ctx, "acme", 0)
	require.NoError(t, err)
	assert.Equal(t, "UnrecognizedClientException", list(old), "a key rotated without grace stops at once")
	assert.Equal(t, "", list(fresh))
	require.NoError(t, other.Delete(ctx, "acme"))
	assert.Equal(t, "UnrecognizedClientException", list(fresh), "a deleted tenant's key stops at once")
}

// TestLargeBodiesAreBounded: a body over the API's limit is refused
// without being buffered, and an unauthenticated Lambda upload is refused
// before its body is read.
func TestLargeBodiesAreBounded(t *testing.T) {
	srv, creds := startCloud(t, "acme")
	acme := creds["acme"]

	// EC2 and STS take form parameters: at most 10 MiB.
	big := append([]byte("Action=DescribeInstances&Version=2016-11-15&Pad="), bytes.Repeat([]byte("x"), 10<<20)...)
	s := signer{keyID: acme.AccessKeyID, secret: acme.SecretAccessKey, service: "ec2"}
	got := send(t, s.sign(t, http.MethodPost, srv.Endpoint()+"/", big, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}))
	assert.Equal(t, http.StatusRequestEntityTooLarge, got.status)

	// A 64 MiB Lambda upload from nobody is refused before its body is
	// read: the server answers while the client is still sending.
	req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/2015-03-31/functions", &endless{n: 64 << 20})
	require.NoError(t, err)
	req.ContentLength = 64 << 20
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
		assert.Equal(t, "MissingAuthenticationTokenException", resp.Header.Get("X-Amzn-Errortype"))
	} // else the server closed the connection mid-upload, which also refuses it
}

// endless is a reader of n bytes of 'x'.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), e.n)
	for i := range k {
		p[i] = 'x'
	}
	e.n -= k
	return k, nil
}
