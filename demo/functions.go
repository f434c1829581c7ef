package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/localcloud/lambda/sandbox"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/runwait"
	"github.com/gust-dev/gust/workflows"
)

// Tenant and Function name the showcase's sample function.
const (
	Tenant   = "acme"
	Function = "echo"
)

// functions deploys gust itself as the sample echo function (its hidden
// handler mode) and invokes it through InvokeWorkflow for several
// sub-tenants, one of them concurrently. It prints which environments served
// whom, and fails if an environment ever served two sub-tenants or a
// sub-tenant's second round did not reuse a warm environment.
func functions(ctx context.Context, out io.Writer, p *platform.Platform) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the gust executable: %w", err)
	}
	start := time.Now()
	fmt.Fprintf(out, "Functions: deploying the sample handler (gust's handler mode) as %s/%s with PER_TENANT tenancy...\n", Tenant, Function)
	fn, err := DeploySample(ctx, p, Tenant, Function, exe, 0)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "Deployed %s version %s in %v\n", fn.Name, fn.Version, time.Since(start).Round(time.Millisecond))

	type call struct {
		sub    string
		round  int
		res    workflows.InvokeResult
		seenAs string // the sub-tenant the handler saw in its Lambda context
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	invoke := func(sub string, round int, payload string) error {
		in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: Tenant, Function: Function, SubTenant: sub, Payload: json.RawMessage(payload)}
		res, err := Invoke(ctx, p.Client(), in, true)
		if err != nil {
			return fmt.Errorf("invoking %s for %s: %w", Function, sub, err)
		}
		if res.FunctionError != nil {
			return fmt.Errorf("invoking %s for %s: function error %s: %s", Function, sub, res.FunctionError.Type, res.FunctionError.Message)
		}
		var resp sample.Response
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			return fmt.Errorf("decoding the sample's response for %s: %w", sub, err)
		}
		mu.Lock()
		calls = append(calls, call{sub: sub, round: round, res: res, seenAs: resp.TenantID})
		mu.Unlock()
		return nil
	}
	// parallel runs fns at once and returns the first error.
	parallel := func(fns ...func() error) error {
		errs := make(chan error, len(fns))
		for _, f := range fns {
			go func() { errs <- f() }()
		}
		var first error
		for range fns {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}

	subs := []string{"alice", "bob", "carol"}
	const burst = 4 // carol's concurrent invocations
	start = time.Now()
	// Round 1: a cold start per sub-tenant. Round 2: the same sub-tenants
	// again, reusing their warm environments. Round 3: carol sends 4 at
	// once, each held for 300ms, and gets more environments of her own.
	for round := 1; round <= 2; round++ {
		var fns []func() error
		for _, sub := range subs {
			fns = append(fns, func() error { return invoke(sub, round, `{}`) })
		}
		if err := parallel(fns...); err != nil {
			return "", err
		}
	}
	var fns []func() error
	for range burst {
		fns = append(fns, func() error { return invoke("carol", 3, `{"sleep_ms":300}`) })
	}
	if err := parallel(fns...); err != nil {
		return "", err
	}
	elapsed := time.Since(start)

	// Check the isolation rule and warm reuse, then show the result.
	owner := map[string]string{} // environment id -> sub-tenant
	type row struct {
		invocations, cold int
		envs              []string
		durations         []time.Duration
	}
	rows := map[string]*row{}
	for _, c := range calls {
		if c.seenAs != c.sub {
			return "", fmt.Errorf("isolation: an invocation for %q ran with sub-tenant %q in its Lambda context", c.sub, c.seenAs)
		}
		env := c.res.EnvironmentID
		if prev, ok := owner[env]; ok && prev != c.sub {
			return "", fmt.Errorf("isolation: environment %s served sub-tenants %q and %q", env, prev, c.sub)
		}
		owner[env] = c.sub
		r := rows[c.sub]
		if r == nil {
			r = &row{}
			rows[c.sub] = r
		}
		r.invocations++
		if c.res.ColdStart {
			r.cold++
		}
		if !slices.Contains(r.envs, env) {
			r.envs = append(r.envs, env)
		}
		r.durations = append(r.durations, time.Duration(c.res.DurationMS)*time.Millisecond)
	}
	for _, c := range calls {
		if c.round == 2 && c.res.ColdStart {
			return "", fmt.Errorf("reuse: %s's second invocation started a new environment instead of reusing its idle one", c.sub)
		}
	}
	fmt.Fprintf(out, "Invoked %d times through InvokeWorkflow in %v (round 1 cold, round 2 warm, then %d concurrent for carol):\n",
		len(calls), elapsed.Round(time.Millisecond), burst)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  SUB-TENANT\tINVOCATIONS\tCOLD STARTS\tENVIRONMENTS")
	for _, sub := range subs {
		r := rows[sub]
		slices.Sort(r.envs)
		fmt.Fprintf(w, "  %s\t%d\t%d\t%d: %s\n", sub, r.invocations, r.cold, len(r.envs), strings.Join(r.envs, " "))
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "Each environment served exactly one sub-tenant (%d environments, %d sub-tenants); warm environments were reused within each sub-tenant.\n",
		len(owner), len(subs))
	return fmt.Sprintf("functions: %d invocations for %d sub-tenants in %d environments, none shared, warm ones reused",
		len(calls), len(subs), len(owner)), nil
}

// DeploySample deploys the handler at path as tenant's function name with
// PER_TENANT tenancy, through DeployFunctionWorkflow as `gust fn deploy`
// does, creating the tenant in p's registry first if it is new.
// maxEnvsPerSubTenant 0 means the platform default.
//
// When path is this gust binary itself, its code would be far over a
// function's size limit (gust embeds the Temporal server and Web UI), so
// the function's code is a bootstrap script that execs gust's hidden
// handler mode instead: Lambda's custom-runtime contract only asks that
// bootstrap be executable; the running binary must have that mode (gust
// does: `gust handler`).
func DeploySample(ctx context.Context, p *platform.Platform, tenant, name, path string, maxEnvsPerSubTenant int) (providers.Function, error) {
	// The demo and the benchmarks use tenants of their own, created in the
	// platform's registry, so the worker can assume their roles.
	if _, err := p.EnsureTenant(ctx, tenant); err != nil {
		return providers.Function{}, fmt.Errorf("creating tenant %s: %w", tenant, err)
	}
	code, cleanup, err := SampleCode(path)
	if err != nil {
		return providers.Function{}, err
	}
	defer cleanup()
	in := workflows.DeployInput{Tenant: tenant, Name: name, MaxEnvsPerSubTenant: maxEnvsPerSubTenant}
	if err := in.SetCode(code); err != nil {
		return providers.Function{}, err
	}
	id := workflows.FunctionWorkflowID(workflows.OpDeploy, tenant, name, uuid.NewString())
	run, err := p.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.DeployFunctionWorkflow, in)
	if err != nil {
		return providers.Function{}, fmt.Errorf("starting deploy of %s: %w", name, err)
	}
	var res workflows.DeployResult
	if err := runwait.Get(ctx, p.Client(), run, &res); err != nil {
		return providers.Function{}, fmt.Errorf("deploying %s: %w", name, workflowFailure(err))
	}
	return res.Function, nil
}

// Invoke runs one InvokeWorkflow as `gust fn invoke` does and waits for its
// result. The workflow id carries the request id, and a request id already
// used joins that invocation instead of running the function again. eager
// asks for eager workflow start, which only helps when c also serves a
// worker in this process, as a platform's client does.
//
// A function error is a result (InvokeResult.FunctionError), not an error.
func Invoke(ctx context.Context, c client.Client, in workflows.InvokeInput, eager bool) (workflows.InvokeResult, error) {
	var res workflows.InvokeResult
	opts := workflows.InvokeStartOptions(in, eager)
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.InvokeWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		run = c.GetWorkflow(ctx, opts.ID, "")
	case err != nil:
		return res, fmt.Errorf("starting invocation of %s: %w", in.Function, err)
	}
	// runwait.Get, not run.Get: a plain run.Get can wait out the server's
	// 20 s long poll after the run finished (see package runwait).
	if err := runwait.Get(ctx, c, run, &res); err != nil {
		return res, workflowFailure(err)
	}
	return res, nil
}

// workflowFailure is a failed workflow's error as gust's commands report
// it: an application error by its message alone, without the SDK's
// wrapping of workflow and run ids.
func workflowFailure(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return errors.New(appErr.Message())
	}
	return err
}

// isGustBinary reports whether path is the running gust executable.
// SampleCode is the code to deploy for path: path itself, or, when path is
// this gust binary, a bootstrap script that runs its handler mode (see
// DeploySample). cleanup removes the script once the deploy has read it.
// `gust fn deploy --code "$(command -v gust)"` deploys the sample with it.
func SampleCode(path string) (code string, cleanup func(), err error) {
	self, err := isGustBinary(path)
	if err != nil || !self {
		return path, func() {}, err
	}
	script, err := writeHandlerBootstrap(path)
	if err != nil {
		return "", nil, err
	}
	return script, func() { _ = os.RemoveAll(filepath.Dir(script)) }, nil
}

func isGustBinary(path string) (bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("finding the gust executable: %w", err)
	}
	a, err := os.Stat(exe)
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("reading sample code: %w", err)
	}
	return os.SameFile(a, b), nil
}

// writeHandlerBootstrap writes a bootstrap script that runs exe's hidden
// handler mode, in a new temporary directory: from the sandbox's
// /var/runtime/gust inside a sandbox, from exe's own path without one.
func writeHandlerBootstrap(exe string) (string, error) {
	dir, err := os.MkdirTemp("", "gust-sample-")
	if err != nil {
		return "", err
	}
	script := filepath.Join(dir, "bootstrap")
	quoted := "'" + strings.ReplaceAll(exe, "'", `'\''`) + "'"
	// In the local cloud's sandbox the host's paths are not there; gust's
	// own binary is, at /var/runtime/gust (see localcloud/lambda/sandbox).
	body := "#!/bin/sh\n# gust's sample function: the gust binary's hidden handler mode.\n" +
		"[ -x " + sandbox.RuntimeBinary + " ] && exec " + sandbox.RuntimeBinary + " handler\n" +
		"exec " + quoted + " handler\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("writing sample bootstrap: %w", err)
	}
	return script, nil
}
