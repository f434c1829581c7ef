package lambda

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gust-dev/gust/limits"
	"github.com/gust-dev/gust/localcloud/lambda/egress"
)

// Defaults for Config's zero values.
const (
	DefaultMaxEnvsPerSubTenant = 10
	DefaultMaxEnvsPerFunction  = 100
	DefaultMaxEnvsTotal        = 1000
	DefaultIdleTTL             = 5 * time.Minute
	DefaultInitTimeout         = 10 * time.Second
	DefaultRegion              = "us-east-1"
	DefaultMaxLogBytes         = 1 << 20
	DefaultMaxCodeBytes        = 250 << 20
	DefaultWarmSandboxes       = 4

	// DefaultTimeout and DefaultMemoryMB are Lambda's defaults for a function
	// created without them.
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128

	// DefaultEphemeralMB, MinEphemeralMB and MaxEphemeralMB are Lambda's
	// bounds on EphemeralStorage.Size, the size of /tmp.
	DefaultEphemeralMB = limits.DefaultEphemeralMB
	MinEphemeralMB     = limits.MinEphemeralMB
	MaxEphemeralMB     = limits.MaxEphemeralMB

	// MaxPayloadBytes is Lambda's limit on a synchronous invocation's request
	// and response payloads.
	MaxPayloadBytes = limits.MaxPayloadBytes
)

// Config configures the local cloud's Lambda service.
type Config struct {
	// StateDir holds lambda.db (function definitions), code/ (deployed code,
	// content-addressed), logs/ and envs/ (environments' working
	// directories). Required.
	StateDir string
	// Region appears in ARNs and AWS_REGION. Default DefaultRegion.
	Region string

	// MaxEnvsPerSubTenant caps one sub-tenant's concurrent environments of a
	// function version when the function does not set its own. Default 10.
	MaxEnvsPerSubTenant int
	// MaxEnvsPerFunction caps a function's environments over all its
	// sub-tenants. When it is reached, the function's least recently used
	// idle environment is stopped to make room. Default 100.
	MaxEnvsPerFunction int
	// MaxEnvsTotal caps the environments of every function of every tenant:
	// the machine's size. When it is reached, the least recently used idle
	// environment is stopped to make room. Default 1000.
	MaxEnvsTotal int
	// IdleTTL is how long an environment may stay idle before it is stopped.
	// Default 5 minutes.
	IdleTTL time.Duration
	// InitTimeout bounds a new environment's start, until its runtime asks
	// for the first invocation (Lambda's 10 s init phase). Default 10 s.
	InitTimeout time.Duration

	// MaxLogBytes bounds each (function, sub-tenant) log file; one rotated
	// file of the same size is kept. Default 1 MiB.
	MaxLogBytes int64
	// MaxCodeBytes bounds a deployed code package, zipped or unzipped.
	// Default 250 MiB (Lambda's unzipped limit; its 50 MB direct-upload
	// limit is not enforced, so gust's own binary can be deployed).
	MaxCodeBytes int64

	// CopyCode copies the code into each environment's directory instead
	// of hard-linking it from the extracted code cache. Hard links make
	// cold starts independent of the code's size (a 12 MB Go binary copies
	// in ~10 ms, links in ~15 µs). In a sandbox the links are root's,
	// read-only files on a read-only mount, and the environment runs as
	// another uid, so nothing can change them; with IsolationNone the
	// environment runs as gust's own user, and a handler that opens one of
	// its own code files for writing would change it for every later
	// environment of that code: copying is then the safer choice.
	CopyCode bool

	// CgroupParent is a cgroup v2 directory gust may create child cgroups
	// in, with the memory controller enabled in its cgroup.subtree_control
	// (for example a systemd slice with Delegate=yes). When set and usable,
	// each environment runs in its own child with memory.max set to the
	// function's MemorySize. When empty, gust looks for a writable cgroup v1
	// memory hierarchy (as root on a cgroup v1 machine) and limits
	// environments there. When neither works, memory limits are not
	// enforced, and the environment listing says so.
	CgroupParent string
	// DisableMemoryLimits turns memory limits off even where the machine
	// allows them.
	DisableMemoryLimits bool

	// Isolation is how environments are isolated from each other and from
	// the machine: IsolationSandbox (the default, "") or IsolationNone,
	// which must be asked for. Where a sandbox cannot be built, Open still
	// succeeds, IsolationError says why, and creating or invoking a
	// function fails with that reason: isolation is never silently weaker.
	Isolation string
	// WarmSandboxes is how many sandboxes are kept prepared ahead of need,
	// so a cold start only adds the function's part; 0 means
	// DefaultWarmSandboxes, negative none.
	WarmSandboxes int
	// EgressResolver resolves the host names functions reach through their
	// egress proxy; nil uses the system's resolver. Tests point names at
	// their own hosts with it.
	EgressResolver egress.Resolver

	// Now returns the current time; time.Now when nil. It drives idle
	// reaping and timestamps, not invocation timeouts.
	Now func() time.Time
	// Logger receives events no caller waits for (failed asynchronous
	// invocations, environments that fail to stop). Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		return c, errors.New("lambda: Config.StateDir is required")
	}
	// Environments run with their own working directory, so every path
	// handed to them (bootstrap, TMPDIR) must be absolute: `gust dev`'s
	// default state dir is the relative ".gust".
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return c, fmt.Errorf("lambda: state dir, %w", err)
	}
	c.StateDir = abs
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.MaxEnvsPerSubTenant <= 0 {
		c.MaxEnvsPerSubTenant = DefaultMaxEnvsPerSubTenant
	}
	if c.MaxEnvsPerFunction <= 0 {
		c.MaxEnvsPerFunction = DefaultMaxEnvsPerFunction
	}
	if c.MaxEnvsTotal <= 0 {
		c.MaxEnvsTotal = DefaultMaxEnvsTotal
	}
	if c.IdleTTL <= 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.MaxCodeBytes <= 0 {
		c.MaxCodeBytes = DefaultMaxCodeBytes
	}
	if c.WarmSandboxes == 0 {
		c.WarmSandboxes = DefaultWarmSandboxes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
