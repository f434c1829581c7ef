package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/limits"
	"github.com/gust-dev/gust/providers"
)

// Function administration: the workflows behind `gust fn deploy` and
// `delete`, and the read workflows (list, environments, logs) that older
// clients start: `gust fn list|envs|logs` now read the cloud directly and
// start no workflow (docs/design.md, Observability); the read workflows
// stay registered for those clients and for recorded histories. Each is
// short, runs on TaskQueue, validates its input in workflow code (a bad
// request fails with a non-retryable InvalidRequest ApplicationError before
// any activity) and runs one regular activity.
// Provider errors come back as non-retryable ApplicationErrors of type
// NotFound, InvalidRequest or Unsupported.

// Admin operations, as they appear in FunctionWorkflowID.
const (
	OpDeploy       = "deploy"
	OpList         = "list"
	OpDelete       = "delete"
	OpEnvironments = "envs"
	OpLogs         = "logs"
)

// FunctionWorkflowID is the workflow id of an admin operation:
// fn-<op>-<tenant>[-<name>]-<requestID>, sanitized like InvokeWorkflowID.
func FunctionWorkflowID(op, tenant, name, requestID string) string {
	id := "fn-" + sanitizeIDPart(op, MaxNameLen) + "-" + sanitizeIDPart(tenant, MaxNameLen)
	if name != "" {
		id += "-" + sanitizeIDPart(name, MaxNameLen)
	}
	return id + "-" + sanitizeIDPart(requestID, MaxRequestIDLen)
}

// Deploy limits.
const (
	// MaxInlineCodeBytes is the most code DeployInput.Code carries inline.
	// Temporal's default payload limit is 2 MB and []byte travels as base64
	// (4/3 larger), so 1 MB leaves room. Larger code goes by CodePath.
	MaxInlineCodeBytes = 1024 * 1024
	// MaxCodeBytes is the largest code a deploy accepts (Lambda's 50 MB).
	MaxCodeBytes = activities.MaxFunctionCodeBytes
	// MaxFunctionTimeout is Lambda's 15 minute function timeout limit.
	MaxFunctionTimeout = 15 * time.Minute
	// MinMemoryMB and MaxMemoryMB bound the memory limit, as in Lambda.
	MinMemoryMB = 128
	MaxMemoryMB = 10240
	// MaxEnvVarBytes bounds the total size of a function's variables
	// (Lambda's 4 KB).
	MaxEnvVarBytes = 4 * 1024
	// MaxEnvsPerSubTenantLimit bounds DeployInput.MaxEnvsPerSubTenant; it
	// equals the platform's default total environment limit.
	MaxEnvsPerSubTenantLimit = 1000
	// MinEphemeralMB and MaxEphemeralMB bound the size of /tmp, as in Lambda;
	// DefaultEphemeralMB is Lambda's default.
	MinEphemeralMB     = limits.MinEphemeralMB
	MaxEphemeralMB     = limits.MaxEphemeralMB
	DefaultEphemeralMB = limits.DefaultEphemeralMB
)

// DeployInput deploys a function, or a new version of it.
//
// Code transfer: a Go handler binary is 5 to 10 MB, more than a Temporal
// payload may hold, and code must never be silently truncated. So code up to
// MaxInlineCodeBytes travels inline in Code, and larger code (up to
// MaxCodeBytes) travels by reference: CodePath is an absolute path on the
// worker's machine and CodeSHA256 its content hash. The deploy activity
// reads the file, rejects it with InvalidRequest if the hash no longer
// matches (the file changed after the CLI read it), and the provider then
// stores the code content-addressed, so later edits to the file change
// nothing. By-reference deploys need a worker on the CLI's machine, which is
// how `gust dev` runs; SetCode picks the route.
type DeployInput struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Code is a zip with bootstrap at its root, or a single executable
	// (wrapped as bootstrap). Exactly one of Code and CodePath is set.
	Code       []byte `json:"code"`
	CodePath   string `json:"code_path"`
	CodeSHA256 string `json:"code_sha256"` // lowercase hex; required with CodePath
	// Timeout kills an invocation that runs longer; 0 means the platform
	// default.
	Timeout time.Duration `json:"timeout_ns"`
	// MemoryMB is the memory limit; 0 means the platform default.
	MemoryMB int `json:"memory_mb"`
	// Env holds the function's variables; Lambda's reserved names (AWS_LAMBDA_*,
	// AWS_REGION, _HANDLER, ...) are refused.
	Env map[string]string `json:"env"`
	// MaxEnvsPerSubTenant caps one sub-tenant's concurrent environments; 0
	// means the platform default (10).
	MaxEnvsPerSubTenant int `json:"max_envs_per_subtenant"`
	// Egress is the network egress policy: "none", "all" or
	// HOST[:PORT],... with wildcards like *.example.com; "" means none.
	// The cloud checks its syntax (the CLI does too, before starting).
	Egress string `json:"egress,omitempty"`
	// EphemeralMB is the size of /tmp in MB (512 to 10240); 0 means the
	// platform default (512).
	EphemeralMB int `json:"ephemeral_mb,omitempty"`
}

// ContainsSecrets reports whether the deploy carries variables, which
// tenants use for API keys: the codec data converter (codec.SecretCarrier)
// then encrypts it in history, where the Web UI shows it as encrypted.
func (in DeployInput) ContainsSecrets() bool { return len(in.Env) > 0 }

// SetCode reads the code at path and sets Code, or CodePath and CodeSHA256
// when it is larger than MaxInlineCodeBytes. It is for starters (the CLI),
// never for workflow code.
func (in *DeployInput) SetCode(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("resolving code path, %w", err)
	}
	file, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("reading code, %w", err)
	}
	defer file.Close()
	code, err := io.ReadAll(io.LimitReader(file, MaxCodeBytes+1))
	if err != nil {
		return fmt.Errorf("reading code, %w", err)
	}
	switch {
	case len(code) == 0:
		return fmt.Errorf("code %s is empty", path)
	case len(code) > MaxCodeBytes:
		return fmt.Errorf("code %s is larger than %d MB", path, MaxCodeBytes>>20)
	case len(code) <= MaxInlineCodeBytes:
		in.Code, in.CodePath, in.CodeSHA256 = code, "", ""
	default:
		sum := sha256.Sum256(code)
		in.Code, in.CodePath, in.CodeSHA256 = nil, abs, hex.EncodeToString(sum[:])
	}
	return nil
}

var (
	envKeyRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// reservedEnvKeys are Lambda's reserved variables, which the runtime sets;
// every AWS_LAMBDA_* name is reserved too.
var reservedEnvKeys = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV", "AWS_ACCESS_KEY",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
}

// Validate checks a deploy before it starts.
func (in DeployInput) Validate() error {
	if err := ValidateTenantID(in.Tenant); err != nil {
		return err
	}
	if err := ValidateFunctionName(in.Name); err != nil {
		return err
	}
	switch {
	case len(in.Code) > 0 && in.CodePath != "":
		return errors.New("set either inline code or a code path, not both")
	case len(in.Code) > MaxInlineCodeBytes:
		return fmt.Errorf("inline code is %d bytes, more than %d; send it by code path", len(in.Code), MaxInlineCodeBytes)
	case len(in.Code) == 0 && in.CodePath == "":
		return errors.New("code is required")
	case in.CodePath != "" && (!filepath.IsAbs(in.CodePath) || filepath.Clean(in.CodePath) != in.CodePath):
		return fmt.Errorf("code path %q must be absolute and clean", in.CodePath)
	case in.CodePath != "" && !sha256RE.MatchString(in.CodeSHA256):
		return errors.New("a code path needs its SHA-256 as 64 lowercase hex digits")
	case in.Timeout < 0 || in.Timeout > MaxFunctionTimeout || (in.Timeout > 0 && in.Timeout < time.Second):
		return fmt.Errorf("timeout %s is outside 1s to %s", in.Timeout, MaxFunctionTimeout)
	case in.MemoryMB != 0 && (in.MemoryMB < MinMemoryMB || in.MemoryMB > MaxMemoryMB):
		return fmt.Errorf("memory %d MB is outside %d to %d MB", in.MemoryMB, MinMemoryMB, MaxMemoryMB)
	case in.MaxEnvsPerSubTenant < 0 || in.MaxEnvsPerSubTenant > MaxEnvsPerSubTenantLimit:
		return fmt.Errorf("max environments per sub-tenant %d is outside 0 (default) to %d", in.MaxEnvsPerSubTenant, MaxEnvsPerSubTenantLimit)
	case in.EphemeralMB != 0 && (in.EphemeralMB < MinEphemeralMB || in.EphemeralMB > MaxEphemeralMB):
		return fmt.Errorf("ephemeral storage %d MB is outside %d to %d MB", in.EphemeralMB, MinEphemeralMB, MaxEphemeralMB)
	}
	// Sorted keys: the error a workflow reports must not depend on map order.
	keys := make([]string, 0, len(in.Env))
	size := 0
	for k, v := range in.Env { // only collects; the result is sorted below
		keys = append(keys, k)
		size += len(k) + len(v)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !envKeyRE.MatchString(k):
			return fmt.Errorf("variable name %q must start with a letter and contain only letters, digits and '_'", k)
		case strings.HasPrefix(k, "AWS_LAMBDA_") || slices.Contains(reservedEnvKeys, k):
			return fmt.Errorf("variable name %q is reserved by the runtime", k)
		}
	}
	if size > MaxEnvVarBytes {
		return fmt.Errorf("variables total %d bytes, more than %d", size, MaxEnvVarBytes)
	}
	return nil
}

// DeployResult is the deployed function and its new version.
type DeployResult struct {
	Function providers.Function `json:"function"`
}

// ContainsSecrets reports whether the function has variables (see
// DeployInput.ContainsSecrets).
func (r DeployResult) ContainsSecrets() bool { return len(r.Function.Env) > 0 }

// ListFunctionsInput names the tenant whose functions to list.
type ListFunctionsInput struct {
	Tenant string `json:"tenant"`
}

// Validate checks the tenant id.
func (in ListFunctionsInput) Validate() error { return ValidateTenantID(in.Tenant) }

// ListFunctionsResult holds the tenant's functions, as the provider orders
// them.
type ListFunctionsResult struct {
	Functions []providers.Function `json:"functions"`
}

// ContainsSecrets reports whether any function has variables (see
// DeployInput.ContainsSecrets).
func (r ListFunctionsResult) ContainsSecrets() bool {
	return activities.FunctionList(r.Functions).ContainsSecrets()
}

// DeleteFunctionInput names the function to delete.
type DeleteFunctionInput struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// Validate checks the tenant id and function name.
func (in DeleteFunctionInput) Validate() error { return validateRef(in.Tenant, in.Name) }

// FunctionEnvironmentsInput names the function whose environments to list.
type FunctionEnvironmentsInput struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// Validate checks the tenant id and function name.
func (in FunctionEnvironmentsInput) Validate() error { return validateRef(in.Tenant, in.Name) }

// FunctionEnvironmentsResult holds the function's execution environments.
type FunctionEnvironmentsResult struct {
	Environments []providers.Environment `json:"environments"`
}

// FunctionLogsInput names the sub-tenant whose captured output to read.
type FunctionLogsInput struct {
	Tenant    string `json:"tenant"`
	Name      string `json:"name"`
	SubTenant string `json:"subtenant"`
}

// Validate checks the tenant id, function name and sub-tenant id.
func (in FunctionLogsInput) Validate() error {
	if err := validateRef(in.Tenant, in.Name); err != nil {
		return err
	}
	return ValidateSubTenant(in.SubTenant)
}

// FunctionLogsResult is the tail of the sub-tenant's stdout and stderr,
// oldest first.
type FunctionLogsResult struct {
	Logs string `json:"logs"`
	// Truncated is set when older output was dropped to keep the result
	// within activities.MaxFunctionLogBytes.
	Truncated bool `json:"truncated"`
}

func validateRef(tenant, name string) error {
	if err := ValidateTenantID(tenant); err != nil {
		return err
	}
	return ValidateFunctionName(name)
}

// adminRetryPolicy retries transient provider failures a few times; the
// final error types come back at once.
var adminRetryPolicy = &temporal.RetryPolicy{
	InitialInterval:        200 * time.Millisecond,
	BackoffCoefficient:     2,
	MaximumInterval:        5 * time.Second,
	MaximumAttempts:        10,
	NonRetryableErrorTypes: providers.NonRetryableErrorTypes(providers.ErrTypeNotFound),
}

// adminOp is the shared shape of the admin workflows: validate, then one
// activity with its options.
type adminOp struct {
	validate func() error
	options  workflow.ActivityOptions
}

func (op adminOp) setup(ctx workflow.Context) (workflow.Context, error) {
	if err := op.validate(); err != nil {
		return ctx, temporal.NewNonRetryableApplicationError(err.Error(), providers.ErrTypeInvalid, nil)
	}
	opts := op.options
	if opts.StartToCloseTimeout == 0 {
		opts.StartToCloseTimeout = 30 * time.Second
	}
	if opts.ScheduleToCloseTimeout == 0 {
		opts.ScheduleToCloseTimeout = 2 * time.Minute
	}
	opts.RetryPolicy = adminRetryPolicy
	return workflow.WithActivityOptions(ctx, opts), nil
}

// adminError is the failure of an admin workflow whose activity failed:
// a final error with its type at the top (see surfaceError), any other as
// it is.
func adminError(err error) error {
	err, _ = surfaceError(err)
	return err
}

// DeployFunctionWorkflow deploys a function or publishes a new version of
// it. A retried deploy may publish the same code twice as two versions;
// invocations always use the latest.
func DeployFunctionWorkflow(ctx workflow.Context, in DeployInput) (DeployResult, error) {
	ctx, err := adminOp{validate: in.Validate, options: workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute, // reading, zipping and storing up to 50 MB
		ScheduleToCloseTimeout: 10 * time.Minute,
		Summary:                "deploy " + in.Name,
	}}.setup(ctx)
	if err != nil {
		return DeployResult{}, err
	}
	var a *activities.Functions
	var fn providers.Function
	err = workflow.ExecuteActivity(ctx, a.DeployFunction, activities.DeployFunctionInput{
		Tenant:              in.Tenant,
		Name:                in.Name,
		Code:                in.Code,
		CodePath:            in.CodePath,
		CodeSHA256:          in.CodeSHA256,
		Timeout:             in.Timeout,
		MemoryMB:            in.MemoryMB,
		Env:                 in.Env,
		MaxEnvsPerSubTenant: in.MaxEnvsPerSubTenant,
		Egress:              in.Egress,
		EphemeralMB:         in.EphemeralMB,
	}).Get(ctx, &fn)
	if err != nil {
		return DeployResult{}, adminError(err)
	}
	return DeployResult{Function: fn}, nil
}

// ListFunctionsWorkflow lists the tenant's functions.
func ListFunctionsWorkflow(ctx workflow.Context, in ListFunctionsInput) (ListFunctionsResult, error) {
	ctx, err := adminOp{validate: in.Validate, options: workflow.ActivityOptions{Summary: "list functions"}}.setup(ctx)
	if err != nil {
		return ListFunctionsResult{}, err
	}
	var a *activities.Functions
	var fns []providers.Function
	if err := workflow.ExecuteActivity(ctx, a.ListFunctions, in.Tenant).Get(ctx, &fns); err != nil {
		return ListFunctionsResult{}, adminError(err)
	}
	return ListFunctionsResult{Functions: fns}, nil
}

// DeleteFunctionWorkflow deletes the tenant's function. It fails with
// NotFound if the tenant has no such function.
func DeleteFunctionWorkflow(ctx workflow.Context, in DeleteFunctionInput) error {
	ctx, err := adminOp{validate: in.Validate, options: workflow.ActivityOptions{Summary: "delete " + in.Name}}.setup(ctx)
	if err != nil {
		return err
	}
	var a *activities.Functions
	if err := workflow.ExecuteActivity(ctx, a.DeleteFunction, in.Tenant, in.Name).Get(ctx, nil); err != nil {
		return adminError(err)
	}
	return nil
}

// FunctionEnvironmentsWorkflow lists the function's execution environments.
// It fails with Unsupported on providers that do not expose them (AWS).
func FunctionEnvironmentsWorkflow(ctx workflow.Context, in FunctionEnvironmentsInput) (FunctionEnvironmentsResult, error) {
	ctx, err := adminOp{validate: in.Validate, options: workflow.ActivityOptions{Summary: "environments of " + in.Name}}.setup(ctx)
	if err != nil {
		return FunctionEnvironmentsResult{}, err
	}
	var a *activities.Functions
	var envs []providers.Environment
	if err := workflow.ExecuteActivity(ctx, a.FunctionEnvironments, in.Tenant, in.Name).Get(ctx, &envs); err != nil {
		return FunctionEnvironmentsResult{}, adminError(err)
	}
	return FunctionEnvironmentsResult{Environments: envs}, nil
}

// FunctionLogsWorkflow returns the tail of the sub-tenant's captured output.
func FunctionLogsWorkflow(ctx workflow.Context, in FunctionLogsInput) (FunctionLogsResult, error) {
	ctx, err := adminOp{validate: in.Validate, options: workflow.ActivityOptions{Summary: "logs of " + in.Name}}.setup(ctx)
	if err != nil {
		return FunctionLogsResult{}, err
	}
	var a *activities.Functions
	var out activities.FunctionLogsResult
	if err := workflow.ExecuteActivity(ctx, a.FunctionLogs, in.Tenant, in.Name, in.SubTenant).Get(ctx, &out); err != nil {
		return FunctionLogsResult{}, adminError(err)
	}
	return FunctionLogsResult{Logs: out.Logs, Truncated: out.Truncated}, nil
}
