package activities_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// fnFake is a minimal providers.Functions that records calls and returns
// canned answers; err, when set, is returned by every call.
type fnFake struct {
	err       error
	invoked   []providers.InvokeInput
	deployed  []providers.FunctionSpec
	result    providers.InvokeResult
	functions []providers.Function
	envs      []providers.Environment
	logs      string
	deleted   []string
}

var _ providers.Functions = (*fnFake)(nil)

func (f *fnFake) Deploy(_ context.Context, spec providers.FunctionSpec) (providers.Function, error) {
	if f.err != nil {
		return providers.Function{}, f.err
	}
	f.deployed = append(f.deployed, spec)
	sum := sha256.Sum256(spec.Zip)
	return providers.Function{Tenant: spec.Tenant, Name: spec.Name, Version: "1", CodeSHA256: hex.EncodeToString(sum[:]), Tenancy: spec.Tenancy}, nil
}

func (f *fnFake) Get(_ context.Context, tenant, name string) (providers.Function, error) {
	if f.err != nil {
		return providers.Function{}, f.err
	}
	return providers.Function{Tenant: tenant, Name: name}, nil
}

func (f *fnFake) List(context.Context, string) ([]providers.Function, error) {
	return f.functions, f.err
}

func (f *fnFake) Delete(_ context.Context, tenant, name string) error {
	if f.err != nil {
		return f.err
	}
	f.deleted = append(f.deleted, tenant+"/"+name)
	return nil
}

func (f *fnFake) Invoke(_ context.Context, in providers.InvokeInput) (providers.InvokeResult, error) {
	f.invoked = append(f.invoked, in)
	if f.err != nil {
		return providers.InvokeResult{}, f.err
	}
	return f.result, nil
}

func (f *fnFake) Environments(context.Context, string, string) ([]providers.Environment, error) {
	return f.envs, f.err
}

func (f *fnFake) Logs(context.Context, string, string, string) (string, error) {
	return f.logs, f.err
}

func newFnEnv(fake *fnFake) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Functions{Functions: fake})
	return env
}

// fnAppError returns err's ApplicationError.
func fnAppError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %v", err)
	return appErr
}

func TestInvokeFunctionMapsInputAndResult(t *testing.T) {
	fake := &fnFake{result: providers.InvokeResult{
		Payload: []byte(`{"ok":true}`), EnvironmentID: "env-9", ColdStart: true, Duration: 42 * time.Millisecond,
	}}
	env := newFnEnv(fake)
	var a *activities.Functions

	val, err := env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{
		RequestID: "r1", Tenant: "acme", Function: "hello", SubTenant: "s/1", Payload: json.RawMessage(`{"x":1}`),
	})
	require.NoError(t, err)
	var out activities.InvokeFunctionResult
	require.NoError(t, val.Get(&out))

	require.Equal(t, []providers.InvokeInput{{
		Tenant: "acme", Function: "hello", SubTenant: "s/1", Payload: []byte(`{"x":1}`), RequestID: "r1",
	}}, fake.invoked)
	require.JSONEq(t, `{"ok":true}`, string(out.Payload))
	require.Equal(t, "env-9", out.EnvironmentID)
	require.True(t, out.ColdStart)
	require.Equal(t, int64(42), out.DurationMS)
}

func TestInvokeFunctionPayloadEdges(t *testing.T) {
	fake := &fnFake{result: providers.InvokeResult{Payload: []byte("plain text")}}
	env := newFnEnv(fake)
	var a *activities.Functions

	val, err := env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s"})
	require.NoError(t, err)
	var out activities.InvokeFunctionResult
	require.NoError(t, val.Get(&out))
	require.Equal(t, []byte("{}"), fake.invoked[0].Payload, "no payload is sent as {}")
	require.Equal(t, `"plain text"`, string(out.Payload), "a non-JSON response arrives as a JSON string")
	require.GreaterOrEqual(t, out.DurationMS, int64(0))

	fake.result = providers.InvokeResult{} // an Event invocation answers nothing
	val, err = env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s", Async: true})
	require.NoError(t, err)
	out = activities.InvokeFunctionResult{}
	require.NoError(t, val.Get(&out))
	require.True(t, fake.invoked[1].Async)
	require.Equal(t, "null", string(out.Payload), "no response is JSON null")
}

func TestInvokeFunctionErrors(t *testing.T) {
	cases := []struct {
		err          error
		wantType     string
		nonRetryable bool
	}{
		{&providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"}, providers.ErrTypeFunctionError, true},
		{providers.NewTooManyRequestsError(errors.New("sub-tenant limit 10 reached")), providers.ErrTypeTooManyRequests, false},
		{providers.NewThrottledError(errors.New("rate exceeded")), providers.ErrTypeThrottled, false},
		{providers.NewNotFoundError(errors.New("no function hello")), providers.ErrTypeNotFound, false},
		{providers.NewInvalidError(errors.New("payload over 6 MB")), providers.ErrTypeInvalid, true},
		{providers.ErrUnsupported, providers.ErrTypeUnsupported, true},
	}
	for _, tc := range cases {
		t.Run(tc.wantType, func(t *testing.T) {
			env := newFnEnv(&fnFake{err: tc.err})
			var a *activities.Functions
			_, err := env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s"})
			appErr := fnAppError(t, err)
			require.Equal(t, tc.wantType, appErr.Type())
			require.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			require.Contains(t, appErr.Message(), "invoking function")
		})
	}

	t.Run("function error details", func(t *testing.T) {
		env := newFnEnv(&fnFake{err: &providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"}})
		var a *activities.Functions
		_, err := env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s"})
		var d providers.FunctionError
		require.NoError(t, fnAppError(t, err).Details(&d))
		require.Equal(t, providers.FunctionError{Type: "Runtime.ExitError", Message: "exit status 2"}, d)
	})
}

func unzipBootstrap(t *testing.T, z []byte) ([]byte, os.FileMode) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	require.Equal(t, "bootstrap", zr.File[0].Name)
	rc, err := zr.File[0].Open()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b, zr.File[0].Mode()
}

func TestDeployFunctionWrapsAnExecutable(t *testing.T) {
	fake := &fnFake{}
	env := newFnEnv(fake)
	var a *activities.Functions
	exe := []byte("\x7fELF fake executable")
	in := activities.DeployFunctionInput{
		Tenant: "acme", Name: "hello", Code: exe, Timeout: 3 * time.Second, MemoryMB: 256,
		Env: map[string]string{"A": "b"}, MaxEnvsPerSubTenant: 2, Egress: "api.example.com:443", EphemeralMB: 1024,
	}

	val, err := env.ExecuteActivity(a.DeployFunction, in)
	require.NoError(t, err)
	var fn providers.Function
	require.NoError(t, val.Get(&fn))
	require.Equal(t, "1", fn.Version)

	require.Len(t, fake.deployed, 1)
	spec := fake.deployed[0]
	require.Equal(t, "acme", spec.Tenant)
	require.Equal(t, "hello", spec.Name)
	require.Equal(t, 3*time.Second, spec.Timeout)
	require.Equal(t, 256, spec.MemoryMB)
	require.Equal(t, map[string]string{"A": "b"}, spec.Env)
	require.Equal(t, 2, spec.MaxEnvsPerSubTenant)
	require.Equal(t, "api.example.com:443", spec.Egress)
	require.Equal(t, 1024, spec.EphemeralMB)
	require.Equal(t, providers.TenancyPerTenant, spec.Tenancy)
	got, mode := unzipBootstrap(t, spec.Zip)
	require.Equal(t, exe, got)
	require.Equal(t, os.FileMode(0o755), mode.Perm())

	// The same executable gives the same zip, so the same code hash.
	_, err = env.ExecuteActivity(a.DeployFunction, in)
	require.NoError(t, err)
	require.Equal(t, fake.deployed[0].Zip, fake.deployed[1].Zip)
}

func TestDeployFunctionPassesAZipThrough(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	require.NoError(t, err)
	_, err = w.Write([]byte("#!/bin/sh\n"))
	require.NoError(t, err)
	_, err = zw.Create("lib/helper.so")
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	fake := &fnFake{}
	env := newFnEnv(fake)
	var a *activities.Functions
	_, err = env.ExecuteActivity(a.DeployFunction, activities.DeployFunctionInput{Tenant: "acme", Name: "hello", Code: buf.Bytes()})
	require.NoError(t, err)
	require.Equal(t, buf.Bytes(), fake.deployed[0].Zip)
}

func TestDeployFunctionRejectsBadCode(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	_, err := zw.Create("sub/bootstrap")
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	dir := t.TempDir()
	path := filepath.Join(dir, "bootstrap")
	require.NoError(t, os.WriteFile(path, []byte("real code"), 0o755))

	cases := map[string]activities.DeployFunctionInput{
		"zip without root bootstrap": {Code: buf.Bytes()},
		"corrupt zip":                {Code: []byte("PK\x03\x04garbage")},
		"empty code":                 {},
		"relative path":              {CodePath: "bootstrap", CodeSHA256: strings.Repeat("0", 64)},
		"missing file":               {CodePath: filepath.Join(dir, "nope"), CodeSHA256: strings.Repeat("0", 64)},
		"file changed since":         {CodePath: path, CodeSHA256: strings.Repeat("0", 64)},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			fake := &fnFake{}
			env := newFnEnv(fake)
			var a *activities.Functions
			in.Tenant, in.Name = "acme", "hello"
			_, err := env.ExecuteActivity(a.DeployFunction, in)
			appErr := fnAppError(t, err)
			require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
			require.True(t, appErr.NonRetryable())
			require.Empty(t, fake.deployed, "nothing reaches the provider")
		})
	}
}

func TestDeployFunctionReadsCodeByPath(t *testing.T) {
	code := []byte(strings.Repeat("executable bytes ", 100_000)) // ~1.7 MB
	path := filepath.Join(t.TempDir(), "bootstrap")
	require.NoError(t, os.WriteFile(path, code, 0o755))
	sum := sha256.Sum256(code)

	fake := &fnFake{}
	env := newFnEnv(fake)
	var a *activities.Functions
	_, err := env.ExecuteActivity(a.DeployFunction, activities.DeployFunctionInput{
		Tenant: "acme", Name: "hello", CodePath: path, CodeSHA256: hex.EncodeToString(sum[:]),
	})
	require.NoError(t, err)
	got, _ := unzipBootstrap(t, fake.deployed[0].Zip)
	require.Equal(t, code, got)

	// Editing the file afterwards does not change what was deployed.
	require.NoError(t, os.WriteFile(path, []byte("edited"), 0o755))
	got, _ = unzipBootstrap(t, fake.deployed[0].Zip)
	require.Equal(t, code, got)
}

func TestDeployFunctionProviderError(t *testing.T) {
	env := newFnEnv(&fnFake{err: providers.NewInvalidError(errors.New("memory 99999 too large"))})
	var a *activities.Functions
	_, err := env.ExecuteActivity(a.DeployFunction, activities.DeployFunctionInput{Tenant: "acme", Name: "hello", Code: []byte("x")})
	appErr := fnAppError(t, err)
	require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	require.Contains(t, appErr.Message(), "memory 99999 too large")
}

func TestFunctionAdminActivities(t *testing.T) {
	fake := &fnFake{
		functions: []providers.Function{{Tenant: "acme", Name: "a"}},
		envs:      []providers.Environment{{ID: "env-1", SubTenant: "s1"}},
		logs:      "hello\n",
	}
	env := newFnEnv(fake)
	var a *activities.Functions

	val, err := env.ExecuteActivity(a.ListFunctions, "acme")
	require.NoError(t, err)
	var fns []providers.Function
	require.NoError(t, val.Get(&fns))
	require.Equal(t, fake.functions, fns)

	_, err = env.ExecuteActivity(a.DeleteFunction, "acme", "a")
	require.NoError(t, err)
	require.Equal(t, []string{"acme/a"}, fake.deleted)

	val, err = env.ExecuteActivity(a.FunctionEnvironments, "acme", "a")
	require.NoError(t, err)
	var envs []providers.Environment
	require.NoError(t, val.Get(&envs))
	require.Equal(t, "env-1", envs[0].ID)

	val, err = env.ExecuteActivity(a.FunctionLogs, "acme", "a", "s1")
	require.NoError(t, err)
	var logs activities.FunctionLogsResult
	require.NoError(t, val.Get(&logs))
	require.Equal(t, activities.FunctionLogsResult{Logs: "hello\n"}, logs)
}

func TestFunctionLogsKeepsTheTail(t *testing.T) {
	long := strings.Repeat("old\n", activities.MaxFunctionLogBytes/4) + "newest line\n"
	env := newFnEnv(&fnFake{logs: long})
	var a *activities.Functions
	val, err := env.ExecuteActivity(a.FunctionLogs, "acme", "a", "s1")
	require.NoError(t, err)
	var logs activities.FunctionLogsResult
	require.NoError(t, val.Get(&logs))
	require.True(t, logs.Truncated)
	require.Len(t, logs.Logs, activities.MaxFunctionLogBytes)
	require.True(t, strings.HasSuffix(logs.Logs, "newest line\n"))
}

func TestFunctionAdminActivityErrors(t *testing.T) {
	env := newFnEnv(&fnFake{err: providers.NewNotFoundError(errors.New("function b not found"))})
	var a *activities.Functions
	_, err := env.ExecuteActivity(a.DeleteFunction, "acme", "b")
	require.Equal(t, providers.ErrTypeNotFound, fnAppError(t, err).Type())

	env = newFnEnv(&fnFake{err: providers.ErrUnsupported})
	_, err = env.ExecuteActivity(a.FunctionEnvironments, "acme", "b")
	require.Equal(t, providers.ErrTypeUnsupported, fnAppError(t, err).Type())
	_, err = env.ExecuteActivity(a.FunctionLogs, "acme", "b", "s")
	require.Equal(t, providers.ErrTypeUnsupported, fnAppError(t, err).Type())
}

func TestInvokeFunctionResponseTooLarge(t *testing.T) {
	fake := &fnFake{result: providers.InvokeResult{Payload: []byte(`"` + strings.Repeat("x", 100) + `"`)}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Functions{Functions: fake, MaxResponseBytes: 50})
	var a *activities.Functions

	_, err := env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s"})
	appErr := fnAppError(t, err)
	require.Equal(t, providers.ErrTypeFunctionError, appErr.Type())
	require.True(t, appErr.NonRetryable())
	var d providers.FunctionError
	require.NoError(t, appErr.Details(&d))
	require.Equal(t, activities.ResponseTooLargeErrorType, d.Type)
	require.Contains(t, d.Message, "102 bytes")

	// The default limit lets a normal response through.
	env = newFnEnv(fake)
	_, err = env.ExecuteActivity(a.InvokeFunction, activities.InvokeFunctionInput{Tenant: "acme", Function: "f", SubTenant: "s"})
	require.NoError(t, err)
}
