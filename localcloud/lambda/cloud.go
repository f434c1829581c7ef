// Package lambda is the local cloud's Lambda service: a Lambda-compatible
// REST API (CreateFunction, GetFunction, GetFunctionConfiguration,
// ListFunctions, DeleteFunction, UpdateFunctionCode,
// UpdateFunctionConfiguration, Invoke, versions and aliases, reserved
// concurrency, tags and GetAccountSettings) that runs
// functions in per-sub-tenant execution environments: real processes
// running the function's bootstrap under Lambda's custom-runtime contract.
//
// # Tenants
//
// The tenant is the verified principal's (tenants.PrincipalFrom): the local
// cloud's server checks every request's SigV4 signature against the tenant
// registry before it reaches this service, and a request without a
// principal is refused. Each tenant is an account, whose id appears in the
// functions' ARNs. Functions are keyed by (tenant, name); another tenant's
// function is reported as ResourceNotFoundException, exactly like a missing
// one. A sub-tenant is Lambda's TenantId (X-Amz-Tenant-Id) on a function
// created with TenancyConfig PER_TENANT.
//
// # gust extensions
//
// Requests:
//   - X-Gust-Max-Envs-Per-Subtenant on CreateFunction and
//     UpdateFunctionConfiguration, or the tag gust:max-envs-per-subtenant
//     on CreateFunction, caps one sub-tenant's concurrent environments
//     (default Config.MaxEnvsPerSubTenant). GetFunction reports a value
//     a deploy set as that tag, and the limit in force, the default
//     included, in its X-Gust-Max-Envs-Per-Subtenant response header.
//   - X-Gust-Egress on CreateFunction and UpdateFunctionConfiguration, or
//     the tag gust:egress on CreateFunction, sets the function's network
//     egress policy: none (the default), all, or HOST[:PORT],... with
//     wildcards like *.example.com (egress.ParsePolicy). GetFunction
//     reports it in canonical form as that tag, absent for none.
//   - X-Gust-Request-Id on Invoke becomes the invocation's request id
//     (Lambda-Runtime-Aws-Request-Id), so logs correlate with the caller.
//
// Responses:
//   - X-Gust-Local-Cloud: 1 on every response, so clients can tell the local
//     cloud from AWS.
//   - X-Gust-Environment-Id and X-Gust-Cold-Start: true|false on Invoke.
//
// Endpoints, tenant-scoped like the rest:
//   - GET /2015-03-31/functions/{name}/gust-environments lists the
//     function's environments (JSON, see environmentsOutput).
//   - GET /2015-03-31/functions/{name}/gust-logs?subtenant=S returns the
//     sub-tenant's captured stdout and stderr as text, oldest first.
//
// # Versions
//
// Every deploy publishes: CreateFunction is version 1, and each
// UpdateFunctionCode, and each UpdateFunctionConfiguration that changes
// something, makes the next version. Version and X-Amz-Executed-Version
// report it. Environments of older versions are never used again; idle ones
// stop at once, busy ones when their invocation ends. PublishVersion keeps
// one as a version that stays invokable, with aliases on top (versions.go).
//
// # Persistence
//
// Function definitions, published versions, aliases, reserved concurrency
// and tags survive a restart (SQLite, StateDir/lambda.db), as
// does their code (StateDir/code, content-addressed; code no function
// refers to is removed once no environment runs it, and Open sweeps any
// left over). Environments do not: they are processes that die with gust
// (Pdeathsig), and Open clears leftover environment directories.
//
// # Limits of the imitation
//
// Memory limits need a delegated cgroup v2 directory (Config.CgroupParent)
// or a writable cgroup v1 memory hierarchy; without either they are not
// enforced, and the environment listing says so.
// Environments run in sandboxes (isolation.go, package sandbox;
// docs/security.md), or, with Config.Isolation IsolationNone, as plain
// processes of gust's own user; they get no AWS credentials. Event
// invocations are not retried when the function fails; throttled ones are
// retried with backoff for up to a minute.
package lambda

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gust-dev/gust/localcloud/lambda/egress"
)

// Cloud is the local cloud's Lambda service. It is an http.Handler for the
// Lambda REST API paths (/2015-03-31/functions...).
type Cloud struct {
	cfg   Config
	store *store
	pool  *pool
	logs  *logSinks
	mem   *memoryLimiter
	// iso runs environments; nil when isoErr says why the configured
	// isolation cannot be had here.
	iso    isolator
	isoErr error

	// ctl serialises control-plane writes, so SQLite and fns always agree.
	ctl sync.Mutex
	mu  sync.RWMutex
	fns map[fnKey]*function // current version of every function; guarded by mu
	// versions, aliases and reserved are the functions' published
	// versions, aliases and reserved concurrency (versions.go); guarded
	// by mu, written under ctl like fns.
	versions map[fnKey]map[int]*function
	aliases  map[fnKey]map[string]*alias
	reserved map[fnKey]int
	// codeKey signs GetFunction's Code.Location URLs (codeurl.go). It is
	// random per process: a restart invalidates the URLs, which expire
	// within minutes anyway.
	codeKey []byte

	// dedupe makes synchronous invocations idempotent by request id.
	dedupe *dedupe

	asyncSem  chan struct{}  // bounds pending Event invocations
	codeGC    sync.WaitGroup // collectCode
	async     sync.WaitGroup
	done      chan struct{}
	closeOnce sync.Once
}

// maxPendingEvents bounds Event invocations accepted but not yet finished;
// beyond it Invoke answers TooManyRequestsException.
const maxPendingEvents = 10000

// Open opens (or creates) the Lambda service's state in cfg.StateDir and
// starts its idle reaper.
func Open(cfg Config) (*Cloud, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Isolation != "" && cfg.Isolation != IsolationSandbox && cfg.Isolation != IsolationNone {
		return nil, fmt.Errorf("lambda: unknown isolation %q: use %s or %s", cfg.Isolation, IsolationSandbox, IsolationNone)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir, %w", err)
	}
	envsDir := filepath.Join(cfg.StateDir, "envs")
	// Environments of a previous run died with it; their directories are
	// garbage.
	if err := os.RemoveAll(envsDir); err != nil {
		return nil, fmt.Errorf("clearing old environments, %w", err)
	}
	if err := os.MkdirAll(envsDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating environments dir, %w", err)
	}
	st, err := openStore(cfg.StateDir, cfg.MaxCodeBytes)
	if err != nil {
		return nil, err
	}
	fns, err := st.loadAll(context.Background())
	if err != nil {
		st.close()
		return nil, err
	}
	x, err := st.loadExtras(context.Background())
	if err != nil {
		st.close()
		return nil, err
	}
	c := &Cloud{
		versions: x.versions,
		aliases:  x.aliases,
		reserved: x.reserved,
		codeKey:  newCodeKey(),
		cfg:      cfg,
		store:    st,
		logs:     newLogSinks(filepath.Join(cfg.StateDir, "logs"), cfg.MaxLogBytes),
		mem:      newMemoryLimiter(cfg.CgroupParent, cfg.DisableMemoryLimits),
		fns:      make(map[fnKey]*function, len(fns)),
		asyncSem: make(chan struct{}, maxPendingEvents),
		dedupe:   newDedupe(),
		done:     make(chan struct{}),
	}
	for _, f := range fns {
		c.fns[fnKey{f.Tenant, f.Name}] = f
	}
	c.sweepCode()
	if c.iso, err = newIsolator(&c.cfg, envsDir); err != nil {
		c.isoErr = fmt.Errorf("the local cloud cannot build a sandbox for functions on this machine (%v); "+
			"start it with --cloud-isolation none (Config.Isolation %q) to run functions without isolation", err, IsolationNone)
		cfg.Logger.Warn("functions cannot run: no sandbox", "error", err)
	}
	c.pool = newPool(&c.cfg, startSpec{
		codeDir:  st.codePath,
		copyCode: cfg.CopyCode,
		region:   cfg.Region,
		sinks:    c.logs,
		mem:      c.mem,
		iso:      c.iso,
		egress:   c.egressProxy,
		logger:   cfg.Logger,
	}, envsDir)
	for k, n := range c.reserved {
		if f := c.fns[k]; f != nil {
			c.pool.setReserved(f.UID, n)
		}
	}
	go c.reaper()
	c.codeGC.Add(1)
	go c.collectCode()
	return c, nil
}

// Close stops every environment, removing their directories, waits for
// pending Event invocations to end, and closes the database. Function
// definitions, code and logs stay in StateDir.
func (c *Cloud) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		c.pool.close()
		if c.iso != nil {
			c.iso.close() // the warm sandboxes
		}
		c.codeGC.Wait()
		c.async.Wait()
		c.mem.close()
		err = c.store.close()
	})
	return err
}

// MemoryLimits reports whether environments run under their function's
// memory size, and if not, why.
func (c *Cloud) MemoryLimits() (enforced bool, note string) {
	return c.mem.enforced(), c.mem.reason
}

// egressProxy is the egress proxy of e, enforcing its function's policy.
func (c *Cloud) egressProxy(e *environment) *egress.Proxy {
	// The stored policy was validated when it was deployed.
	policy, err := egress.ParsePolicy(e.fn.Config.Egress)
	if err != nil {
		c.cfg.Logger.Error("stored egress policy is invalid; the environment gets none", "function", e.fn.Name, "error", err)
		policy = egress.Policy{}
	}
	p := &egress.Proxy{Policy: policy, Tenant: e.fn.Tenant, Function: e.fn.Name, SubTenant: e.key.subTenant,
		Logger: c.cfg.Logger}
	if c.cfg.EgressResolver != nil {
		p.Resolver = c.cfg.EgressResolver
	}
	return p
}

// Isolation reports the isolation level environments run with, and, when
// the configured one cannot be had on this machine, why: creating and
// invoking functions then fail with that reason.
func (c *Cloud) Isolation() (level string, err error) {
	if c.isoErr != nil {
		return c.cfg.Isolation, c.isoErr
	}
	return c.iso.name(), nil
}

// checkIsolation fails a request that would need an environment when the
// configured isolation cannot be had: never run a function less isolated
// than asked.
func (c *Cloud) checkIsolation() error {
	if c.isoErr != nil {
		// The reason itself stays in the log and the start-up message: it
		// can name paths on the machine.
		return errInvalidParameter("the local cloud cannot build a sandbox for functions on this machine (its start-up message and log say why); " +
			"functions run only when it is started with --cloud-isolation none, which isolates nothing")
	}
	return nil
}

// MaxRequestBytes is the largest request body the API accepts: a create or
// update-code request carrying a code package of Config.MaxCodeBytes in
// base64, plus room for the rest of the JSON. A server that reads bodies
// before they reach the API (to verify their signatures) bounds them by it.
func (c *Cloud) MaxRequestBytes() int64 { return c.cfg.MaxCodeBytes/3*4 + 1<<20 }

// Reap stops environments idle for longer than Config.IdleTTL now, instead
// of waiting for the background reaper, and reports how many it stopped.
func (c *Cloud) Reap() int { return c.pool.reap(c.cfg.Now()) }

func (c *Cloud) reaper() {
	every := c.cfg.IdleTTL / 4
	every = min(max(every, 10*time.Millisecond), 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.Reap()
		}
	}
}

// function returns the current version of the tenant's function, or nil.
func (c *Cloud) function(tenant, name string) *function {
	c.mu.RLock()
	f := c.fns[fnKey{tenant, name}]
	c.mu.RUnlock()
	return f
}

func (c *Cloud) setFunction(f *function) {
	c.mu.Lock()
	c.fns[fnKey{f.Tenant, f.Name}] = f
	c.mu.Unlock()
}

// Ping checks that the service's database answers, for health checks.
func (c *Cloud) Ping(ctx context.Context) error { return c.store.db.PingContext(ctx) }
