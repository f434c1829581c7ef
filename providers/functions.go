package providers

import (
	"context"
	"time"
)

// Tenancy modes of a function, as Lambda's TenancyConfig names them.
const (
	TenancyNone      = ""
	TenancyPerTenant = "PER_TENANT"
)

// FunctionSpec is what a tenant deploys.
type FunctionSpec struct {
	Tenant  string
	Name    string
	Zip     []byte // a zip with bootstrap at its root
	Timeout time.Duration
	// MemoryMB is the memory limit, enforced where the machine allows.
	MemoryMB int
	Env      map[string]string
	// MaxEnvsPerSubTenant caps concurrent environments of one sub-tenant;
	// 0 means the platform default (10).
	MaxEnvsPerSubTenant int
	Tenancy             string
	// Egress is the function's network egress policy: "none", "all" or
	// HOST[:PORT],... (wildcards like *.example.com); "" means none. gust's
	// local cloud enforces it; other clouds ignore it.
	Egress string `json:"egress,omitempty"`
	// EphemeralMB is the size of /tmp in MB (Lambda's EphemeralStorage,
	// 512 to 10240); 0 means the platform default (512).
	EphemeralMB int `json:"ephemeral_mb,omitempty"`
}

// Function is a deployed function.
type Function struct {
	Tenant              string            `json:"tenant"`
	Name                string            `json:"name"`
	Version             string            `json:"version"`
	CodeSHA256          string            `json:"code_sha256"`
	Timeout             time.Duration     `json:"timeout_ns"`
	MemoryMB            int               `json:"memory_mb"`
	Env                 map[string]string `json:"env"`
	MaxEnvsPerSubTenant int               `json:"max_envs_per_subtenant"`
	Tenancy             string            `json:"tenancy"`
	LastModified        time.Time         `json:"last_modified"`
	// Egress is the function's egress policy in canonical form: "none",
	// "all" or the sorted HOST[:PORT] list.
	Egress string `json:"egress,omitempty"`
	// EphemeralMB is the size of /tmp in MB; 0 if the cloud did not say.
	EphemeralMB int `json:"ephemeral_mb,omitempty"`
}

// InvokeInput is one invocation of a function for a sub-tenant.
type InvokeInput struct {
	Tenant    string
	Function  string
	SubTenant string // Lambda's TenantId
	Payload   []byte
	// Async selects the Event invocation type.
	Async     bool
	RequestID string
	// LogTail asks for the end of the invocation's log (Lambda's LogType
	// Tail, synchronous invocations only): InvokeResult.LogTail.
	LogTail bool
	// Qualifier selects the version to invoke (Lambda's Qualifier): empty
	// or "$LATEST" for the latest; a version the cloud does not have is
	// NotFoundError.
	Qualifier string
}

// MaxLogTailBytes is how much of an invocation's log LogTail returns, as
// Lambda's LogType Tail does: the last 4 KB.
const MaxLogTailBytes = 4 << 10

// InvokeResult is a successful invocation. EnvironmentID and ColdStart come
// from the local cloud's response headers and are empty/false on AWS.
type InvokeResult struct {
	Payload       []byte
	EnvironmentID string
	ColdStart     bool
	Duration      time.Duration
	// LogTail is the last MaxLogTailBytes of the invocation's log when
	// InvokeInput.LogTail asked for it and the cloud returned it; also set
	// alongside a *FunctionError.
	LogTail string
	// ExecutedVersion is the version that ran, when the cloud says
	// (Lambda's X-Amz-Executed-Version).
	ExecutedVersion string
}

// Environment is one execution environment: a process that serves exactly one
// (tenant, function version, sub-tenant).
type Environment struct {
	ID          string    `json:"id"`
	Function    string    `json:"function"`
	Version     string    `json:"version"`
	SubTenant   string    `json:"subtenant"`
	State       string    `json:"state"` // "idle", "busy", "retired"
	Invocations int       `json:"invocations"`
	Started     time.Time `json:"started"`
	LastUsed    time.Time `json:"last_used"`
	// MemoryMB is the function's memory setting when the environment
	// started; MemoryLimitEnforced says whether the machine actually
	// enforces it (the local cloud needs a memory cgroup it may create).
	MemoryMB            int  `json:"memory_mb"`
	MemoryLimitEnforced bool `json:"memory_limit_enforced"`
	// Isolation is how the environment is isolated ("sandbox" or "none"),
	// UID the uid it runs as on the machine, and PidsMax, CPUShare and
	// EphemeralMB its other limits (0 where not enforced). The local cloud
	// reports them; elsewhere they are zero.
	Isolation   string `json:"isolation"`
	PID         int    `json:"pid"`
	UID         int    `json:"uid"`
	PidsMax     int    `json:"pids_max"`
	CPUShare    int    `json:"cpu_share"`
	EphemeralMB int    `json:"ephemeral_mb"`
}

// Functions is the Lambda-style contract the function activities use. Every
// method acts as Tenant and can never see another tenant's functions: a
// function of another tenant is reported as NotFoundError.
type Functions interface {
	// Deploy creates the function, or publishes its code and configuration as
	// a new version if it exists. It returns InvalidError for bad names or
	// code.
	Deploy(ctx context.Context, spec FunctionSpec) (Function, error)
	// Get returns NotFoundError if the tenant has no such function.
	Get(ctx context.Context, tenant, name string) (Function, error)
	List(ctx context.Context, tenant string) ([]Function, error)
	// Delete returns NotFoundError if the tenant has no such function.
	Delete(ctx context.Context, tenant, name string) error
	// Invoke runs the function in the sub-tenant's environment. It returns
	// *FunctionError when the handler failed, crashed or timed out,
	// TooManyRequestsError when a concurrency limit is reached,
	// NotFoundError, and InvalidError for bad input (a missing sub-tenant on
	// a PER_TENANT function, a payload over 6 MB, bad JSON).
	Invoke(ctx context.Context, in InvokeInput) (InvokeResult, error)
	// Environments lists the function's environments; ErrUnsupported where
	// the cloud does not expose them.
	Environments(ctx context.Context, tenant, name string) ([]Environment, error)
	// Logs returns the captured stdout and stderr of the sub-tenant's
	// environments, oldest first; ErrUnsupported where unavailable.
	Logs(ctx context.Context, tenant, name, subTenant string) (string, error)
}
