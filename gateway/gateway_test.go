package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// These tests drive the handler with a mock Temporal client and a real
// registry: what the gateway verifies, what it starts, and how it answers.
// The end-to-end tests, through real AWS SDKs against a real server and
// cloud, are in integration/gateway_test.go.

type fixture struct {
	t      *testing.T
	reg    *tenants.Registry
	acme   tenants.Credentials
	client *mocks.Client
	srv    *httptest.Server
	logs   *syncBuffer

	mu      sync.Mutex
	started []started
}

type started struct {
	opts client.StartWorkflowOptions
	in   workflows.InvokeInput
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newFixture starts a gateway whose workflows end as result says: a
// workflows.InvokeResult, or an error for the run's Get.
func newFixture(t *testing.T, result func(workflows.InvokeInput) (workflows.InvokeResult, error)) *fixture {
	t.Helper()
	ctx := context.Background()
	reg, err := tenants.Open(filepath.Join(t.TempDir(), "tenants.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
	acme, err := reg.Create(ctx, "acme")
	require.NoError(t, err)
	f := &fixture{t: t, reg: reg, acme: acme, client: &mocks.Client{}, logs: &syncBuffer{}}
	f.client.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_ context.Context, opts client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
			in := args[0].(workflows.InvokeInput)
			f.mu.Lock()
			f.started = append(f.started, started{opts, in})
			f.mu.Unlock()
			run := &mocks.WorkflowRun{}
			run.On("GetID").Return(opts.ID).Maybe()
			run.On("GetRunID").Return("run-1").Maybe()
			run.On("Get", mock.Anything, mock.Anything).Return(func(_ context.Context, out any) error {
				res, err := result(in)
				if err != nil {
					return err
				}
				*out.(*workflows.InvokeResult) = res
				return nil
			}).Maybe()
			return run, nil
		}).Maybe()
	h := New(Config{Client: f.client, Registry: reg, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), EventRetryDelay: 3 * time.Second})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func echoResult(in workflows.InvokeInput) (workflows.InvokeResult, error) {
	return workflows.InvokeResult{Payload: json.RawMessage(`{"sub":"` + in.SubTenant + `"}`), ExecutedVersion: "3", LogTail: "START\nhello\nEND\n"}, nil
}

func (f *fixture) starts() []started {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]started(nil), f.started...)
}

// request builds an Invoke request for function with the given headers.
func (f *fixture) request(function string, body string, headers map[string]string) *http.Request {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/2015-03-31/functions/"+function+"/invocations", strings.NewReader(body))
	require.NoError(f.t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}

// sign signs req with SigV4 as the SDK does.
func sign(t *testing.T, req *http.Request, keyID, secret, service string, at time.Time) {
	t.Helper()
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		require.NoError(t, err)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), service, "us-east-1", at))
}

type answer struct {
	status int
	header http.Header
	body   []byte
	code   string
	msg    string
}

func (f *fixture) do(req *http.Request) answer {
	f.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	a := answer{status: resp.StatusCode, header: resp.Header, body: b, code: resp.Header.Get("X-Amzn-Errortype")}
	if a.code != "" {
		var doc struct {
			Message string `json:"message"`
		}
		require.NoError(f.t, json.Unmarshal(b, &doc), string(b))
		a.msg = doc.Message
	}
	require.NotEmpty(f.t, resp.Header.Get(HeaderRequestID), "every answer carries a request id")
	return a
}

// invoke sends a signed Invoke as acme.
func (f *fixture) invoke(function, body string, headers map[string]string) answer {
	f.t.Helper()
	req := f.request(function, body, headers)
	sign(f.t, req, f.acme.AccessKeyID, f.acme.SecretAccessKey, "lambda", time.Now())
	return f.do(req)
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, echoResult)
	ctx := context.Background()
	platform, err := f.reg.PlatformCredentials(ctx)
	require.NoError(t, err)
	sub := map[string]string{HeaderTenantID: "cust-1"}

	cases := []struct {
		name   string
		sign   func(*http.Request)
		status int
		code   string
	}{
		{"no auth", func(*http.Request) {}, 403, codeMissingAuth},
		{"wrong secret", func(r *http.Request) {
			sign(t, r, f.acme.AccessKeyID, "wrong"+f.acme.SecretAccessKey[5:], "lambda", time.Now())
		}, 403, codeInvalidSignature},
		{"unknown key", func(r *http.Request) {
			sign(t, r, "AKIAAAAAAAAAAAAAAAAA", f.acme.SecretAccessKey, "lambda", time.Now())
		}, 403, codeUnrecognizedClient},
		{"outside the skew", func(r *http.Request) {
			sign(t, r, f.acme.AccessKeyID, f.acme.SecretAccessKey, "lambda", time.Now().Add(-10*time.Minute))
		}, 403, codeInvalidSignature},
		{"another service's scope", func(r *http.Request) { sign(t, r, f.acme.AccessKeyID, f.acme.SecretAccessKey, "s3", time.Now()) }, 403, codeInvalidSignature},
		{"platform principal", func(r *http.Request) {
			sign(t, r, platform.AccessKeyID, platform.SecretAccessKey, "lambda", time.Now())
		}, 403, codeAccessDenied},
		{"body tampered", func(r *http.Request) {
			sign(t, r, f.acme.AccessKeyID, f.acme.SecretAccessKey, "lambda", time.Now())
			r.Body = io.NopCloser(strings.NewReader(`{"x":2}`))
		}, 403, codeInvalidSignature},
		{"malformed", func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=garbage") }, 400, codeIncompleteSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := f.request("echo", `{"x":1}`, sub)
			c.sign(req)
			a := f.do(req)
			require.Equal(t, c.status, a.status, string(a.body))
			require.Equal(t, c.code, a.code)
			require.NotContains(t, string(a.body), f.acme.SecretAccessKey)
		})
	}
	require.Empty(t, f.starts(), "a refused call starts nothing")
	require.NotContains(t, f.logs.String(), f.acme.SecretAccessKey)

	a := f.invoke("echo", `{"x":1}`, sub)
	require.Equal(t, 200, a.status, string(a.body))
	require.Len(t, f.starts(), 1)
}

func TestRequestResponse(t *testing.T) {
	f := newFixture(t, echoResult)
	a := f.invoke("echo", `{"x":1}`, map[string]string{HeaderTenantID: "cust/1 a", HeaderLogType: "Tail"})
	require.Equal(t, 200, a.status, string(a.body))
	require.JSONEq(t, `{"sub":"cust/1 a"}`, string(a.body))
	require.Equal(t, "3", a.header.Get(HeaderExecuted))
	tail, err := base64.StdEncoding.DecodeString(a.header.Get(HeaderLogResult))
	require.NoError(t, err)
	require.Equal(t, "START\nhello\nEND\n", string(tail))

	s := f.starts()
	require.Len(t, s, 1)
	in, opts := s[0].in, s[0].opts
	require.Equal(t, workflows.InvokeWorkflowID("acme", "echo", in.RequestID), opts.ID)
	require.Equal(t, a.header.Get(HeaderRequestID), in.RequestID)
	require.Equal(t, workflows.TaskQueue, opts.TaskQueue)
	require.Equal(t, workflows.InvokeMemo(in), opts.Memo)
	require.Equal(t, "acme", in.Tenant, "the tenant is the key's owner")
	require.Equal(t, "cust/1 a", in.SubTenant)
	require.JSONEq(t, `{"x":1}`, string(in.Payload))
	require.Equal(t, DefaultMaxWait, in.MaxQueueWait)
	require.GreaterOrEqual(t, in.Deadline, DefaultMaxWait+15*time.Minute, "a function that got an environment is never cut short")
	require.True(t, in.LogTail)
	require.Zero(t, in.EventRetries)
	require.False(t, in.DryRun)
	require.NoError(t, in.Validate())
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_UNSPECIFIED, opts.WorkflowIDConflictPolicy, "random ids need no policy")
}

func TestFailuresAreLambdaShaped(t *testing.T) {
	cases := []struct {
		name   string
		result workflows.InvokeResult
		err    error
		status int
		code   string
		check  func(t *testing.T, a answer)
	}{
		{name: "function error", result: workflows.InvokeResult{FunctionError: &workflows.FunctionErrorInfo{Type: "EchoError", Message: "boom"}},
			status: 200, check: func(t *testing.T, a answer) {
				require.Equal(t, "Unhandled", a.header.Get(HeaderFunctionError))
				require.JSONEq(t, `{"errorType":"EchoError","errorMessage":"boom"}`, string(a.body))
			}},
		{name: "queue timeout", err: temporal.NewNonRetryableApplicationError("no environment", workflows.ErrTypeQueueTimeout, nil),
			status: 429, code: codeTooManyRequests, check: func(t *testing.T, a answer) {
				require.Contains(t, string(a.body), `"Reason":"ConcurrentInvocationLimitExceeded"`)
			}},
		{name: "not found", err: temporal.NewNonRetryableApplicationError("getting function x", providers.ErrTypeNotFound, nil),
			status: 404, code: codeNotFound, check: func(t *testing.T, a answer) {
				require.Contains(t, a.msg, "arn:aws:lambda:us-east-1:"+tenants.AccountID("acme")+":function:echo")
			}},
		{name: "invalid", err: temporal.NewNonRetryableApplicationError(
			"invoking function, https response error StatusCode: 400, RequestID: x, InvalidParameterValueException: bad thing", providers.ErrTypeInvalid, nil),
			status: 400, code: codeInvalidParameter, check: func(t *testing.T, a answer) { require.Equal(t, "bad thing", a.msg) }},
		{name: "internal", err: errors.New("dial tcp 10.0.0.7:7233: secret internals"),
			status: 500, code: codeService, check: func(t *testing.T, a answer) {
				require.NotContains(t, a.msg, "10.0.0.7", "internals stay in the log")
				require.Contains(t, a.msg, "incident")
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(workflows.InvokeInput) (workflows.InvokeResult, error) { return c.result, c.err })
			a := f.invoke("echo", `{}`, map[string]string{HeaderTenantID: "cust-1"})
			require.Equal(t, c.status, a.status, string(a.body))
			require.Equal(t, c.code, a.code)
			c.check(t, a)
		})
	}
}

func TestEventAndDryRun(t *testing.T) {
	f := newFixture(t, echoResult)
	a := f.invoke("echo", `{}`, map[string]string{HeaderTenantID: "cust-1", HeaderInvocationType: TypeEvent, HeaderLogType: "Tail"})
	require.Equal(t, 202, a.status, string(a.body))
	require.Empty(t, a.body)
	in := f.starts()[0].in
	require.Equal(t, workflows.MaxEventRetries, in.EventRetries)
	require.Equal(t, 3*time.Second, in.EventRetryDelay)
	require.False(t, in.Async, "the workflow runs the event, to see and retry its failures")
	require.False(t, in.LogTail, "no tail for events")
	require.Zero(t, in.MaxQueueWait)

	a = f.invoke("echo", `{}`, map[string]string{HeaderTenantID: "cust-1", HeaderInvocationType: TypeDryRun})
	require.Equal(t, 204, a.status, string(a.body))
	require.True(t, f.starts()[1].in.DryRun, "a dry run starts InvokeWorkflow too, which runs nothing")

	a = f.invoke("echo", "", map[string]string{HeaderTenantID: "cust-1"})
	require.Equal(t, 200, a.status, "no body is the empty event: %s", a.body)
	in = f.starts()[2].in
	require.Nil(t, in.Payload)
	_, err := converter.GetDefaultDataConverter().ToPayloads(in)
	require.NoError(t, err, "the input encodes")

	a = f.invoke("echo", `{}`, map[string]string{HeaderTenantID: "cust-1", HeaderInvocationType: "Later"})
	require.Equal(t, 400, a.status)
	require.Equal(t, codeInvalidParameter, a.code)
}

func TestBadCallsStartNothing(t *testing.T) {
	f := newFixture(t, echoResult)
	sub := HeaderTenantID
	cases := []struct {
		name     string
		function string
		body     string
		headers  map[string]string
		status   int
		code     string
	}{
		{"missing tenant id", "echo", `{}`, nil, 400, codeInvalidParameter},
		{"bad tenant id", "echo", `{}`, map[string]string{sub: "a\tb"}, 400, codeInvalidParameter},
		{"bad JSON", "echo", `{"a":`, map[string]string{sub: "c"}, 400, codeInvalidContent},
		{"bad function name", "a..b", `{}`, map[string]string{sub: "c"}, 400, codeInvalidParameter},
		{"another account's ARN", "arn:aws:lambda:us-east-1:123456789012:function:echo", `{}`, map[string]string{sub: "c"}, 404, codeNotFound},
		{"bad qualifier", "echo:a.b", `{}`, map[string]string{sub: "c"}, 400, codeInvalidParameter},
		{"bad log type", "echo", `{}`, map[string]string{sub: "c", HeaderLogType: "All"}, 400, codeInvalidParameter},
		{"zero max wait", "echo", `{}`, map[string]string{sub: "c", HeaderMaxWait: "0"}, 400, codeInvalidParameter},
		{"max wait too long", "echo", `{}`, map[string]string{sub: "c", HeaderMaxWait: "16m"}, 400, codeInvalidParameter},
		{"bad idempotency key", "echo", `{}`, map[string]string{sub: "c", HeaderIdempotencyKey: "a b"}, 400, codeInvalidParameter},
		{"long idempotency key", "echo", `{}`, map[string]string{sub: "c", HeaderIdempotencyKey: strings.Repeat("k", 129)}, 400, codeInvalidParameter},
		{"payload over 6 MB", "echo", `"` + strings.Repeat("x", workflows.MaxPayloadBytes) + `"`, map[string]string{sub: "c"}, 413, codeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := f.invoke(c.function, c.body, c.headers)
			require.Equal(t, c.status, a.status, string(a.body))
			require.Equal(t, c.code, a.code)
		})
	}
	require.Empty(t, f.starts())

	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/2015-03-31/functions/echo/invocations", nil)
	require.NoError(t, err)
	a := f.do(req)
	require.Equal(t, 404, a.status)
	require.Equal(t, codeUnknownOperation, a.code)
}

func TestFunctionForms(t *testing.T) {
	f := newFixture(t, echoResult)
	account := tenants.AccountID("acme")
	for raw, want := range map[string]functionRef{
		"echo":                       {name: "echo"},
		"echo:7":                     {name: "echo", qualifier: "7"},
		"echo:$LATEST":               {name: "echo", qualifier: "$LATEST"},
		account + ":function:echo":   {name: "echo"},
		account + ":function:echo:2": {name: "echo", qualifier: "2"},
		"arn:aws:lambda:eu-west-1:" + account + ":function:echo":   {name: "echo"},
		"arn:aws:lambda:eu-west-1:" + account + ":function:echo:4": {name: "echo", qualifier: "4"},
	} {
		got, apiErr := parseFunction(raw, "acme", "")
		require.Nil(t, apiErr, raw)
		require.Equal(t, want, got, raw)
	}
	got, apiErr := parseFunction("echo:1", "acme", "9")
	require.Nil(t, apiErr)
	require.Equal(t, "9", got.qualifier, "?Qualifier= wins, as in the local cloud")

	a := f.invoke("arn:aws:lambda:us-east-1:"+account+":function:echo", `{}`, map[string]string{HeaderTenantID: "c"})
	require.Equal(t, 200, a.status, string(a.body))
	req := f.request("echo", `{}`, map[string]string{HeaderTenantID: "c"})
	req.URL.RawQuery = "Qualifier=5"
	sign(t, req, f.acme.AccessKeyID, f.acme.SecretAccessKey, "lambda", time.Now())
	a = f.do(req)
	require.Equal(t, 200, a.status, string(a.body))
	s := f.starts()
	require.Equal(t, "", s[0].in.Qualifier)
	require.Equal(t, "5", s[1].in.Qualifier)
}

func TestMaxWait(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"": DefaultMaxWait, "30": 30 * time.Second, "1.5s": 1500 * time.Millisecond, "900": 15 * time.Minute, "15m": 15 * time.Minute, "250ms": 250 * time.Millisecond,
	} {
		got, apiErr := parseMaxWait(v)
		require.Nil(t, apiErr, v)
		require.Equal(t, want, got, v)
	}
	for _, v := range []string{"0", "-1", "0s", "901", "15m1s", "abc", "1e3", "99999999999999999999"} {
		_, apiErr := parseMaxWait(v)
		require.NotNil(t, apiErr, v)
	}

	f := newFixture(t, echoResult)
	a := f.invoke("echo", `{}`, map[string]string{HeaderTenantID: "c", HeaderMaxWait: "2"})
	require.Equal(t, 200, a.status)
	require.Equal(t, 2*time.Second, f.starts()[0].in.MaxQueueWait)
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, echoResult)
	call := func(sub, key string) started {
		t.Helper()
		a := f.invoke("echo", `{}`, map[string]string{HeaderTenantID: sub, HeaderIdempotencyKey: key})
		require.Equal(t, 200, a.status, string(a.body))
		s := f.starts()
		last := s[len(s)-1]
		require.Equal(t, last.in.RequestID, a.header.Get(HeaderRequestID))
		return last
	}
	first := call("cust-1", "order-42")
	again := call("cust-1", "order-42")
	other := call("cust-2", "order-42")
	require.Equal(t, first.opts.ID, again.opts.ID, "the same key is the same workflow")
	require.NotEqual(t, first.opts.ID, other.opts.ID, "another sub-tenant's key never reaches this one's result")
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, first.opts.WorkflowIDConflictPolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY, first.opts.WorkflowIDReusePolicy)
	require.False(t, first.opts.WorkflowExecutionErrorWhenAlreadyStarted)
	require.NoError(t, workflows.ValidateRequestID(first.in.RequestID))

	// Workflow ids alone do not keep tenant a's function b-c apart from
	// tenant a-b's function c; the request id does.
	require.Equal(t, workflows.InvokeWorkflowID("a", "b-c", "x"), workflows.InvokeWorkflowID("a-b", "c", "x"))
	require.NotEqual(t, workflows.InvokeWorkflowID("a", "b-c", idempotentRequestID("a", "b-c", "s", "k")),
		workflows.InvokeWorkflowID("a-b", "c", idempotentRequestID("a-b", "c", "s", "k")))
}

func TestTokens(t *testing.T) {
	f := newFixture(t, echoResult)
	ctx := context.Background()
	_, err := f.reg.Create(ctx, "globex")
	require.NoError(t, err)
	scoped, err := f.reg.IssueToken(ctx, "acme", "cust-1", "echo", time.Hour)
	require.NoError(t, err)
	anyFn, err := f.reg.IssueToken(ctx, "acme", "cust-1", "", time.Hour)
	require.NoError(t, err)
	short, err := f.reg.IssueToken(ctx, "acme", "cust-1", "", time.Second)
	require.NoError(t, err)

	bearer := func(token, function string, headers map[string]string) answer {
		t.Helper()
		if headers == nil {
			headers = map[string]string{}
		}
		headers["Authorization"] = "Bearer " + token
		return f.do(f.request(function, `{}`, headers))
	}

	a := bearer(scoped, "echo", nil)
	require.Equal(t, 200, a.status, string(a.body))
	require.JSONEq(t, `{"sub":"cust-1"}`, string(a.body), "no tenant id header means the token's sub-tenant")
	a = bearer(scoped, "echo", map[string]string{HeaderTenantID: "cust-1"})
	require.Equal(t, 200, a.status, string(a.body))
	a = bearer(anyFn, "other", nil)
	require.Equal(t, 200, a.status, "a token without a function may invoke any of the tenant's")
	s := f.starts()
	require.Len(t, s, 3)
	for _, st := range s {
		require.Equal(t, "acme", st.in.Tenant)
		require.Equal(t, "cust-1", st.in.SubTenant)
	}

	a = bearer(scoped, "echo", map[string]string{HeaderTenantID: "cust-2"})
	require.Equal(t, 403, a.status)
	require.Equal(t, codeAccessDenied, a.code)
	a = bearer(scoped, "other", nil)
	require.Equal(t, 403, a.status)
	require.Equal(t, codeAccessDenied, a.code)
	a = bearer(anyFn, "arn:aws:lambda:us-east-1:"+tenants.AccountID("globex")+":function:echo", nil)
	require.Equal(t, 404, a.status, "another tenant's function is not found")

	parts := strings.Split(scoped, ".")
	require.Len(t, parts, 3)
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(claims, []byte("cust-1"), []byte("cust-2"), 1)) + "." + parts[2]
	a = bearer(forged, "echo", nil)
	require.Equal(t, 401, a.status, "a tampered payload")
	require.Equal(t, codeUnrecognizedClient, a.code)
	sig := []byte(parts[2])
	sig[0] ^= 1
	a = bearer(parts[0]+"."+parts[1]+"."+string(sig), "echo", nil)
	require.Equal(t, 401, a.status, "a tampered signature")
	a = bearer("not-a-token", "echo", nil)
	require.Equal(t, 401, a.status)

	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2100 * time.Millisecond)))
	a = bearer(short, "echo", nil)
	require.Equal(t, 401, a.status)
	require.Equal(t, codeExpiredToken, a.code)

	require.Len(t, f.starts(), 3, "refused tokens start nothing")
	logs := f.logs.String()
	for _, tok := range []string{scoped, anyFn, short, forged} {
		require.NotContains(t, logs, tok, "tokens never reach the log")
		require.NotContains(t, logs, strings.Split(tok, ".")[2])
	}
	require.Contains(t, logs, "bearer token refused")
	require.Contains(t, logs, "tenant=acme")
}
