package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

func validDeploy() DeployInput {
	return DeployInput{
		Tenant:              "acme",
		Name:                "hello",
		Code:                []byte("#!/bin/sh\necho hi\n"),
		Timeout:             3 * time.Second,
		MemoryMB:            256,
		Env:                 map[string]string{"GREETING": "hi", "LOG_LEVEL": "debug"},
		MaxEnvsPerSubTenant: 4,
		Egress:              "api.example.com:443,*.s3.amazonaws.com",
		EphemeralMB:         2048,
	}
}

func TestDeployFunctionWorkflowInlineCode(t *testing.T) {
	env, a := newInvokeEnv()
	in := validDeploy()
	env.OnActivity(a.DeployFunction, mock.Anything, activities.DeployFunctionInput{
		Tenant:              "acme",
		Name:                "hello",
		Code:                in.Code,
		Timeout:             3 * time.Second,
		MemoryMB:            256,
		Env:                 in.Env,
		MaxEnvsPerSubTenant: 4,
		Egress:              "api.example.com:443,*.s3.amazonaws.com",
		EphemeralMB:         2048,
	}).Return(activities.FunctionConfig{Tenant: "acme", Name: "hello", Version: "1", Tenancy: providers.TenancyPerTenant,
		Egress: "*.s3.amazonaws.com,api.example.com:443", EphemeralMB: 2048}, nil).Once()

	env.ExecuteWorkflow(DeployFunctionWorkflow, in)

	require.NoError(t, env.GetWorkflowError())
	var out DeployResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, "1", out.Function.Version)
	require.Equal(t, "hello", out.Function.Name)
	require.Equal(t, "*.s3.amazonaws.com,api.example.com:443", out.Function.Egress)
	require.Equal(t, 2048, out.Function.EphemeralMB)
	env.AssertExpectations(t)
}

// TestDeployMessagesNewFieldsAreOptional checks the wire form of the egress
// and ephemeral storage fields: snake_case, left out when zero, and absent
// in payloads from before they existed (which decode to the old behaviour).
func TestDeployMessagesNewFieldsAreOptional(t *testing.T) {
	b, err := json.Marshal(validDeploy())
	require.NoError(t, err)
	var wire map[string]any
	require.NoError(t, json.Unmarshal(b, &wire))
	require.Equal(t, "api.example.com:443,*.s3.amazonaws.com", wire["egress"])
	require.EqualValues(t, 2048, wire["ephemeral_mb"])

	old := validDeploy()
	old.Egress, old.EphemeralMB = "", 0
	b, err = json.Marshal(old)
	require.NoError(t, err)
	require.NotContains(t, string(b), "egress")
	require.NotContains(t, string(b), "ephemeral_mb")
	var back DeployInput
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, old, back)
	require.NoError(t, back.Validate())

	b, err = json.Marshal(activities.DeployFunctionInput{Egress: "all", EphemeralMB: 1024})
	require.NoError(t, err)
	require.Contains(t, string(b), `"egress":"all"`)
	require.Contains(t, string(b), `"ephemeral_mb":1024`)
	b, err = json.Marshal(DeployResult{Function: providers.Function{Egress: "none", EphemeralMB: 512}})
	require.NoError(t, err)
	require.Contains(t, string(b), `"egress":"none"`)
	require.Contains(t, string(b), `"ephemeral_mb":512`)
}

func TestDeployFunctionWorkflowCodeByPath(t *testing.T) {
	env, a := newInvokeEnv()
	in := validDeploy()
	in.Code = nil
	in.CodePath = "/var/lib/gust/build/bootstrap"
	in.CodeSHA256 = strings.Repeat("ab", 32)
	env.OnActivity(a.DeployFunction, mock.Anything, mock.MatchedBy(func(req activities.DeployFunctionInput) bool {
		return req.Code == nil && req.CodePath == in.CodePath && req.CodeSHA256 == in.CodeSHA256
	})).Return(activities.FunctionConfig{Name: "hello", Version: "2"}, nil).Once()

	env.ExecuteWorkflow(DeployFunctionWorkflow, in)

	require.NoError(t, env.GetWorkflowError())
	env.AssertExpectations(t)
}

func TestDeployFunctionWorkflowRejectsInvalidInput(t *testing.T) {
	cases := map[string]func(*DeployInput){
		"tenant with slash":   func(in *DeployInput) { in.Tenant = "a/b" },
		"name with dot-dot":   func(in *DeployInput) { in.Name = ".." },
		"no code":             func(in *DeployInput) { in.Code = nil },
		"code and path":       func(in *DeployInput) { in.CodePath, in.CodeSHA256 = "/x", strings.Repeat("0", 64) },
		"inline code too big": func(in *DeployInput) { in.Code = make([]byte, MaxInlineCodeBytes+1) },
		"relative path": func(in *DeployInput) {
			in.Code, in.CodePath, in.CodeSHA256 = nil, "bin/bootstrap", strings.Repeat("0", 64)
		},
		"unclean path":           func(in *DeployInput) { in.Code, in.CodePath, in.CodeSHA256 = nil, "/a/../b", strings.Repeat("0", 64) },
		"path without hash":      func(in *DeployInput) { in.Code, in.CodePath = nil, "/a/bootstrap" },
		"timeout under 1s":       func(in *DeployInput) { in.Timeout = 500 * time.Millisecond },
		"timeout over 15m":       func(in *DeployInput) { in.Timeout = 16 * time.Minute },
		"memory too small":       func(in *DeployInput) { in.MemoryMB = 64 },
		"negative max envs":      func(in *DeployInput) { in.MaxEnvsPerSubTenant = -1 },
		"too many max envs":      func(in *DeployInput) { in.MaxEnvsPerSubTenant = MaxEnvsPerSubTenantLimit + 1 },
		"ephemeral too small":    func(in *DeployInput) { in.EphemeralMB = MinEphemeralMB - 1 },
		"ephemeral too large":    func(in *DeployInput) { in.EphemeralMB = MaxEphemeralMB + 1 },
		"bad variable name":      func(in *DeployInput) { in.Env = map[string]string{"1X": "a"} },
		"variable with =":        func(in *DeployInput) { in.Env = map[string]string{"A=B": "a"} },
		"reserved variable":      func(in *DeployInput) { in.Env = map[string]string{"AWS_LAMBDA_RUNTIME_API": "evil:1"} },
		"reserved handler":       func(in *DeployInput) { in.Env = map[string]string{"_HANDLER": "x"} },
		"variables over 4 KB":    func(in *DeployInput) { in.Env = map[string]string{"BIG": strings.Repeat("x", MaxEnvVarBytes)} },
		"empty tenant":           func(in *DeployInput) { in.Tenant = "" },
		"function name too long": func(in *DeployInput) { in.Name = strings.Repeat("f", MaxNameLen+1) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			env, a := newInvokeEnv()
			calls := 0
			env.OnActivity(a.DeployFunction, mock.Anything, mock.Anything).
				Run(func(mock.Arguments) { calls++ }).Return(activities.FunctionConfig{}, nil).Maybe()
			in := validDeploy()
			mutate(&in)
			require.Error(t, in.Validate())

			env.ExecuteWorkflow(DeployFunctionWorkflow, in)

			appErr := appError(t, env.GetWorkflowError())
			require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
			require.Zero(t, calls)
		})
	}
}

func TestDeployFunctionWorkflowProviderRejectsCode(t *testing.T) {
	env, a := newInvokeEnv()
	calls := 0
	env.OnActivity(a.DeployFunction, mock.Anything, mock.Anything).
		Run(func(mock.Arguments) { calls++ }).
		Return(activities.FunctionConfig{}, activities.ProviderErrorf("deploying function",
			providers.NewInvalidError(errors.New("code zip has no bootstrap file at its root"))))

	env.ExecuteWorkflow(DeployFunctionWorkflow, validDeploy())

	appErr := appError(t, env.GetWorkflowError())
	require.Equal(t, providers.ErrTypeInvalid, appErr.Type())
	require.Contains(t, appErr.Message(), "no bootstrap file")
	require.Equal(t, 1, calls)
}

func TestListFunctionsWorkflow(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.ListFunctions, mock.Anything, "acme").Return([]providers.Function{
		{Tenant: "acme", Name: "a"}, {Tenant: "acme", Name: "b"},
	}, nil).Once()

	env.ExecuteWorkflow(ListFunctionsWorkflow, ListFunctionsInput{Tenant: "acme"})

	var out ListFunctionsResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Len(t, out.Functions, 2)
	require.Equal(t, "b", out.Functions[1].Name)
	env.AssertExpectations(t)
}

func TestListFunctionsWorkflowRetriesThrottling(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.ListFunctions, mock.Anything, "acme").
		Return(nil, activities.ProviderErrorf("listing functions", providers.NewThrottledError(errors.New("rate exceeded")))).Twice()
	env.OnActivity(a.ListFunctions, mock.Anything, "acme").Return([]providers.Function{{Name: "a"}}, nil).Once()

	env.ExecuteWorkflow(ListFunctionsWorkflow, ListFunctionsInput{Tenant: "acme"})

	var out ListFunctionsResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Len(t, out.Functions, 1)
	env.AssertExpectations(t)
}

func TestListFunctionsWorkflowRejectsBadTenant(t *testing.T) {
	env, _ := newInvokeEnv()
	env.ExecuteWorkflow(ListFunctionsWorkflow, ListFunctionsInput{Tenant: "../other"})
	require.Equal(t, providers.ErrTypeInvalid, appError(t, env.GetWorkflowError()).Type())
}

func TestDeleteFunctionWorkflow(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.DeleteFunction, mock.Anything, "acme", "hello").Return(nil).Once()

	env.ExecuteWorkflow(DeleteFunctionWorkflow, DeleteFunctionInput{Tenant: "acme", Name: "hello"})

	require.NoError(t, env.GetWorkflowError())
	env.AssertExpectations(t)
}

func TestDeleteFunctionWorkflowNotFoundIsFinal(t *testing.T) {
	env, a := newInvokeEnv()
	calls := 0
	env.OnActivity(a.DeleteFunction, mock.Anything, "acme", "gone").
		Run(func(mock.Arguments) { calls++ }).
		Return(activities.ProviderErrorf("deleting function", providers.NewNotFoundError(errors.New("function gone not found"))))

	env.ExecuteWorkflow(DeleteFunctionWorkflow, DeleteFunctionInput{Tenant: "acme", Name: "gone"})

	appErr := appError(t, env.GetWorkflowError())
	require.Equal(t, providers.ErrTypeNotFound, appErr.Type())
	require.Contains(t, appErr.Message(), "function gone not found")
	require.Equal(t, 1, calls)
}

func TestFunctionEnvironmentsWorkflow(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.FunctionEnvironments, mock.Anything, "acme", "hello").Return([]providers.Environment{
		{ID: "env-1", SubTenant: "s1", State: "idle"},
		{ID: "env-2", SubTenant: "s2", State: "busy"},
	}, nil).Once()

	env.ExecuteWorkflow(FunctionEnvironmentsWorkflow, FunctionEnvironmentsInput{Tenant: "acme", Name: "hello"})

	var out FunctionEnvironmentsResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Len(t, out.Environments, 2)
	require.Equal(t, "s2", out.Environments[1].SubTenant)
}

func TestFunctionEnvironmentsWorkflowUnsupported(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.FunctionEnvironments, mock.Anything, "acme", "hello").
		Return(nil, activities.ProviderErrorf("listing environments", providers.ErrUnsupported)).Once()

	env.ExecuteWorkflow(FunctionEnvironmentsWorkflow, FunctionEnvironmentsInput{Tenant: "acme", Name: "hello"})

	require.Equal(t, providers.ErrTypeUnsupported, appError(t, env.GetWorkflowError()).Type())
	env.AssertExpectations(t)
}

func TestFunctionLogsWorkflow(t *testing.T) {
	env, a := newInvokeEnv()
	env.OnActivity(a.FunctionLogs, mock.Anything, "acme", "hello", "org/1").
		Return(activities.FunctionLogsResult{Logs: "START\nhi\nEND\n"}, nil).Once()

	env.ExecuteWorkflow(FunctionLogsWorkflow, FunctionLogsInput{Tenant: "acme", Name: "hello", SubTenant: "org/1"})

	var out FunctionLogsResult
	require.NoError(t, env.GetWorkflowResult(&out))
	require.Equal(t, "START\nhi\nEND\n", out.Logs)
	require.False(t, out.Truncated)
}

func TestFunctionLogsWorkflowRejectsBadSubTenant(t *testing.T) {
	env, _ := newInvokeEnv()
	env.ExecuteWorkflow(FunctionLogsWorkflow, FunctionLogsInput{Tenant: "acme", Name: "hello", SubTenant: "a|b"})
	require.Equal(t, providers.ErrTypeInvalid, appError(t, env.GetWorkflowError()).Type())
}

func TestDeployInputSetCode(t *testing.T) {
	dir := t.TempDir()

	small := filepath.Join(dir, "small")
	require.NoError(t, os.WriteFile(small, []byte("tiny"), 0o755))
	var in DeployInput
	require.NoError(t, in.SetCode(small))
	require.Equal(t, []byte("tiny"), in.Code)
	require.Empty(t, in.CodePath)

	big := filepath.Join(dir, "big")
	data := []byte(strings.Repeat("z", MaxInlineCodeBytes+1))
	require.NoError(t, os.WriteFile(big, data, 0o755))
	require.NoError(t, in.SetCode(big))
	sum := sha256.Sum256(data)
	require.Nil(t, in.Code)
	require.Equal(t, big, in.CodePath)
	require.Equal(t, hex.EncodeToString(sum[:]), in.CodeSHA256)
	in.Tenant, in.Name = "acme", "hello"
	require.NoError(t, in.Validate())

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o755))
	require.Error(t, in.SetCode(empty))

	huge := filepath.Join(dir, "huge")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxCodeBytes+1)) // sparse
	require.NoError(t, f.Close())
	require.ErrorContains(t, in.SetCode(huge), "larger than 50 MB")

	require.Error(t, in.SetCode(filepath.Join(dir, "missing")))
}

func TestFunctionWorkflowID(t *testing.T) {
	require.Equal(t, "fn-deploy-acme-hello-r1", FunctionWorkflowID(OpDeploy, "acme", "hello", "r1"))
	require.Equal(t, "fn-list-acme-r1", FunctionWorkflowID(OpList, "acme", "", "r1"))
	require.Equal(t, "fn-delete-a_b-c-r_1", FunctionWorkflowID(OpDelete, "a/b", "c", "r 1"))
}
