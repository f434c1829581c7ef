package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/demo"
	"github.com/gust-dev/gust/localcloud/lambda/egress"
	"github.com/gust-dev/gust/providers"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/runwait"
	"github.com/gust-dev/gust/workflows"
)

// fnCommand is `gust fn`: deploy, invoke and administer a tenant's
// functions. The verbs that change something or run the function reach the
// platform through Temporal (the workflows of workflows/functions.go and
// workflows/invoke.go), with the same connection flags as `gust fleet`;
// the reads (list, envs, logs) ask the cloud directly (fn_read.go).
func fnCommand() *cli.Command {
	tenant := func() cli.Flag {
		return &cli.StringFlag{Name: "tenant", EnvVars: []string{"GUST_TENANT"}, Usage: "tenant id: the SaaS provider that owns the function (required)"}
	}
	subTenant := func(usage string) cli.Flag {
		return &cli.StringFlag{Name: "subtenant", EnvVars: []string{"GUST_SUBTENANT"}, Usage: usage}
	}
	return &cli.Command{
		Name:  "fn",
		Usage: "deploy and invoke multi-tenant functions (InvokeWorkflow, one per invocation)",
		Subcommands: []*cli.Command{
			{
				Name:      "deploy",
				Usage:     "deploy a function, or a new version of it, with PER_TENANT tenancy",
				ArgsUsage: "NAME",
				Description: `--code is a zip with an executable named bootstrap at its root (Lambda's
provided.al2023 runtime), or a single executable, deployed as bootstrap.
Code over 1 MB travels by path: the worker must run on this machine, as
it does under gust dev. --code "$(command -v gust)" deploys gust's own
sample echo function, its handler mode, to gust dev's local cloud.

--egress is where the function may connect: none (the default), all, or a
comma-separated list of HOST[:PORT] entries (*.example.com matches any
name under example.com; no port means any port). The local cloud enforces
it with a proxy inside the function's sandbox. Each deploy sets it anew.`,
				Flags: clientFlags(
					tenant(),
					&cli.StringFlag{Name: "code", Usage: "zip with bootstrap at its root, or a single executable (required)"},
					&cli.DurationFlag{Name: "timeout", Usage: "kill an invocation that runs longer (1s to 15m; default 3s)"},
					&cli.IntFlag{Name: "memory", Usage: "memory limit in MB (128 to 10240; default 128), enforced where the machine allows"},
					&cli.StringSliceFlag{Name: "env", Usage: "function variable `KEY=VALUE`, repeatable"},
					&cli.IntFlag{Name: "max-envs-per-subtenant", Usage: "concurrent environments one sub-tenant may have (default 10)"},
					&cli.StringFlag{Name: "egress", Value: "none", Usage: "network egress `POLICY`: none, all or HOST[:PORT],... (wildcards like *.example.com)"},
					&cli.IntFlag{Name: "ephemeral-storage", Value: workflows.DefaultEphemeralMB, Usage: fmt.Sprintf("size of /tmp in `MB` (%d to %d)", workflows.MinEphemeralMB, workflows.MaxEphemeralMB)},
				),
				Action: runFnDeploy,
			},
			{
				Name:      "invoke",
				Usage:     "invoke a function for a sub-tenant and print its response",
				ArgsUsage: "NAME",
				Description: `Starts one InvokeWorkflow and waits for it. Text mode prints the function's
response payload; --output json prints {"request_id", "payload",
"environment_id", "cold_start", "duration_ms"} (docs/cli.md). A function
error exits 1 with its type and message. --payload @FILE reads the payload
from a file.`,
				Flags: clientFlags(
					tenant(),
					subTenant("sub-tenant id (Lambda's TenantId): the customer this invocation runs for (required)"),
					&cli.StringFlag{Name: "payload", Value: "{}", Usage: "JSON event, or @FILE to read it from a file"},
					&cli.BoolFlag{Name: "async", Usage: "Event invocation: run it, return no payload"},
					&cli.DurationFlag{Name: "deadline", Usage: "give up after this long, including waiting for a free environment (default 5m)"},
					&cli.StringFlag{Name: "request-id", Usage: "request id; invoking again with the same id returns the first result instead of running twice (default: generated)"},
					&cli.StringFlag{Name: "activity-mode", Usage: "run the invoke step as a local or regular activity (default: the workflow's)"},
				),
				Action: runFnInvoke,
			},
			{
				Name:      "invocations",
				Usage:     "list a function's recent invocations and their outcomes",
				ArgsUsage: "NAME",
				Description: `Lists the function's InvokeWorkflows, newest first, from Temporal's
visibility: when each started, its request id, sub-tenant and outcome
(succeeded, function error, queue timeout, failed, running) and how long it
took. Invocations through the gateway, gust fn invoke and anything else that
starts InvokeWorkflow are all listed.`,
				Flags: clientFlags(
					tenant(),
					subTenant("list only this sub-tenant's invocations"),
					&cli.IntFlag{Name: "limit", Value: 20, Usage: "list at most `N` invocations (1 to 1000)"},
				),
				Action: runFnInvocations,
			},
			{
				Name:        "list",
				Usage:       "list the tenant's functions, from the cloud",
				Description: fnReadDescription,
				Flags:       fnReadFlags(tenant()),
				Action:      runFnList,
			},
			{
				Name:        "envs",
				Usage:       "list a function's execution environments, from the local cloud",
				ArgsUsage:   "NAME",
				Description: fnReadDescription,
				Flags:       fnReadFlags(tenant()),
				Action:      runFnEnvs,
			},
			{
				Name:      "logs",
				Usage:     "print a sub-tenant's log: its environments' stdout and stderr, and a REPORT line per invocation",
				ArgsUsage: "NAME",
				Description: fnReadDescription + `

Text mode prints "<time> <environment> <line>": the function's stdout and
the START, END and REPORT lines on stdout, its stderr on stderr.
--output json prints one object per line: {"timestamp", "request_id",
"tenant", "subtenant", "stream" (stdout, stderr or platform),
"environment_id", "message"}.`,
				Flags:  fnReadFlags(tenant(), subTenant("sub-tenant whose output to show (required)")),
				Action: runFnLogs,
			},
			{
				Name:      "delete",
				Usage:     "delete a function and stop its environments",
				ArgsUsage: "NAME",
				Flags:     clientFlags(tenant()),
				Action:    runFnDelete,
			},
		},
	}
}

// runFnCommand dials Temporal with c's connection flags and runs one
// function admin workflow to completion.
func runFnCommand(c *cli.Context, op, tenant, name string, wf, in, res any) error {
	cl, err := dialWorker(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	return runFnWorkflow(c.Context, cl, op, tenant, name, wf, in, res)
}

// fnArgs reads the NAME argument (when wantName) and --tenant, both checked
// as usage errors.
func fnArgs(c *cli.Context, wantName bool) (tenant, name string, err error) {
	if wantName {
		if c.NArg() != 1 {
			return "", "", usagef("%s needs exactly one function NAME", c.Command.FullName())
		}
		name = c.Args().First()
		if err := workflows.ValidateFunctionName(name); err != nil {
			return "", "", usagef("%v", err)
		}
	} else if err := noArgs(c); err != nil {
		return "", "", err
	}
	tenant = c.String("tenant")
	if tenant == "" {
		return "", "", usagef("--tenant is required")
	}
	if err := workflows.ValidateTenantID(tenant); err != nil {
		return "", "", usagef("%v", err)
	}
	return tenant, name, nil
}

// newRequestID returns a fresh request id (a UUID, which
// workflows.ValidateRequestID accepts).
func newRequestID() string { return uuid.NewString() }

func runFnDeploy(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	// The policy is checked here, before anything starts, with the parser
	// the cloud uses; its canonical form is what travels.
	policy, err := egress.ParsePolicy(c.String("egress"))
	if err != nil {
		return usagef("--egress: %v", err)
	}
	ephemeralMB := c.Int("ephemeral-storage")
	if ephemeralMB < workflows.MinEphemeralMB || ephemeralMB > workflows.MaxEphemeralMB {
		return usagef("--ephemeral-storage %d: want %d to %d MB", ephemeralMB, workflows.MinEphemeralMB, workflows.MaxEphemeralMB)
	}
	in := workflows.DeployInput{
		Tenant:              tenant,
		Name:                name,
		Timeout:             c.Duration("timeout"),
		MemoryMB:            c.Int("memory"),
		MaxEnvsPerSubTenant: c.Int("max-envs-per-subtenant"),
		Egress:              policy.String(),
		EphemeralMB:         ephemeralMB,
	}
	path := c.String("code")
	if path == "" {
		return usagef("--code is required")
	}
	// gust itself is the sample function: its handler mode, through a
	// small bootstrap, since the binary is far over the size limit.
	path, cleanup, err := demo.SampleCode(path)
	if err != nil {
		return usagef("--code: %v", err)
	}
	defer cleanup()
	if err := in.SetCode(path); err != nil {
		return usagef("--code: %v", err)
	}
	if err := checkCode(path); err != nil {
		return usagef("--code: %v", err)
	}
	for _, kv := range c.StringSlice("env") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("--env %q: want KEY=VALUE", kv)
		}
		if in.Env == nil {
			in.Env = map[string]string{}
		}
		if _, dup := in.Env[k]; dup {
			return usagef("--env %q given twice", k)
		}
		in.Env[k] = v
	}
	if err := in.Validate(); err != nil {
		return usagef("%v", err)
	}
	if in.ContainsSecrets() {
		if err := requireCodecKey(c, "gust fn deploy --env"); err != nil {
			return err
		}
	}
	var res workflows.DeployResult
	if err := runFnCommand(c, workflows.OpDeploy, tenant, name, workflows.DeployFunctionWorkflow, in, &res); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.App.Writer, functionRow(res.Function))
	}
	f := res.Function
	sha := f.CodeSHA256
	if len(sha) > 12 {
		sha = sha[:12]
	}
	fmt.Fprintf(c.App.Writer, "deployed %s version %s for tenant %s (code sha256 %s, tenancy %s, egress %s)\n", f.Name, f.Version, f.Tenant, sha, f.Tenancy, dashIfEmpty(f.Egress))
	return nil
}

// checkCode refuses a zip without bootstrap at its root before anything is
// started, as the deploy activity would.
func checkCode(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:2]) != "PK" {
		return nil // a single executable, wrapped by the deploy
	}
	code, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = activities.BootstrapZip(code)
	return err
}

// fnPayload reads --payload: inline JSON, or @FILE. Command-line arguments
// are limited to 128 KB on Linux, so large payloads need the file form.
func fnPayload(s string) ([]byte, error) {
	if file, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("--payload: %v", err)
		}
		return b, nil
	}
	return []byte(s), nil
}

func runFnInvoke(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if c.String("subtenant") == "" {
		return usagef("--subtenant is required")
	}
	payload, err := fnPayload(c.String("payload"))
	if err != nil {
		return err
	}
	in := workflows.InvokeInput{
		RequestID:    c.String("request-id"),
		Tenant:       tenant,
		Function:     name,
		SubTenant:    c.String("subtenant"),
		Payload:      payload,
		Async:        c.Bool("async"),
		Deadline:     c.Duration("deadline"),
		ActivityMode: workflows.ActivityMode(c.String("activity-mode")),
	}
	if in.RequestID == "" {
		in.RequestID = newRequestID()
	}
	if err := in.Validate(); err != nil {
		return usagef("%v", err)
	}
	cl, err := dialWorker(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := invokeFunction(c.Context, cl, in, true)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if asJSON {
		// The documented fields only: the workflow's result carries more
		// (the log tail and executed version the gateway answers with).
		// The request id is there for every invocation, so an --async one
		// can be found again (gust fn invocations, --request-id).
		view := struct {
			RequestID     string                       `json:"request_id"`
			Payload       json.RawMessage              `json:"payload"`
			EnvironmentID string                       `json:"environment_id"`
			ColdStart     bool                         `json:"cold_start"`
			DurationMS    int64                        `json:"duration_ms"`
			FunctionError *workflows.FunctionErrorInfo `json:"function_error,omitempty"`
		}{in.RequestID, res.Payload, res.EnvironmentID, res.ColdStart, res.DurationMS, res.FunctionError}
		if err := printJSON(out, view); err != nil {
			return err
		}
	} else if res.FunctionError == nil {
		switch {
		case in.Async:
			fmt.Fprintf(out, "accepted (Event invocation, request id %s)\n", in.RequestID)
		case len(res.Payload) > 0:
			fmt.Fprintf(out, "%s\n", res.Payload)
		}
	}
	if fe := res.FunctionError; fe != nil {
		return failed(fmt.Sprintf("function error: %s: %s", fe.Type, oneLine(fe.Message)))
	}
	return nil
}

// invokeFunction runs one InvokeWorkflow and waits for its result. The
// workflow id carries the request id, and a request id already used joins
// that invocation instead of running the function again. eager asks for
// eager workflow start, which only helps when cl also serves a worker in
// this process (gust demo, gust bench).
//
// A function error is a result (InvokeResult.FunctionError), not an error.
// Errors are one line; gust's own failures to run the invocation exit 1.
func invokeFunction(ctx context.Context, cl client.Client, in workflows.InvokeInput, eager bool) (workflows.InvokeResult, error) {
	var res workflows.InvokeResult
	opts := workflows.InvokeStartOptions(in, eager)
	run, err := cl.ExecuteWorkflow(ctx, opts, workflows.InvokeWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		run = cl.GetWorkflow(ctx, opts.ID, "")
	case err != nil:
		return res, failed(fmt.Sprintf("starting invocation of %s: %s", in.Function, oneLine(err.Error())))
	}
	// runwait.Get, not run.Get: a plain run.Get can wait out the server's
	// 20 s long poll after the run finished (see package runwait).
	if err := runwait.Get(ctx, cl, run, &res); err != nil {
		return res, fnFailure(err, in.Tenant, in.Function)
	}
	return res, nil
}

// runFnWorkflow runs one admin workflow (deploy, list, envs, logs, delete)
// to completion.
func runFnWorkflow(ctx context.Context, cl client.Client, op, tenant, name string, wf, in, out any) error {
	id := workflows.FunctionWorkflowID(op, tenant, name, newRequestID())
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, wf, in)
	if err != nil {
		return failed(fmt.Sprintf("starting %s: %s", op, oneLine(err.Error())))
	}
	if err := runwait.Get(ctx, cl, run, out); err != nil {
		return fnFailure(err, tenant, name)
	}
	return nil
}

// fnFailure turns a failed function workflow into the one-line exit-1 error
// users see. Another tenant's function is reported exactly like a missing
// one, so nothing leaks across tenants.
func fnFailure(err error, tenant, name string) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if cerr, ok := codecFailure(err); ok {
			return cerr
		}
		return failed(oneLine(err.Error()))
	}
	switch appErr.Type() {
	case providers.ErrTypeNotFound:
		if name == "" {
			return failed(fmt.Sprintf("not found (tenant %s)", tenant))
		}
		return failed(fmt.Sprintf("function %s not found for tenant %s", name, tenant))
	case providers.ErrTypeUnsupported:
		return failed("not supported by this cloud: " + oneLine(appErr.Message()))
	default:
		return failed(oneLine(appErr.Message()))
	}
}

// fnFunction is a function's JSON form in `gust fn` output.
type fnFunction struct {
	Tenant              string            `json:"tenant"`
	Name                string            `json:"name"`
	Version             string            `json:"version"`
	CodeSHA256          string            `json:"code_sha256"`
	Tenancy             string            `json:"tenancy"`
	TimeoutMS           int64             `json:"timeout_ms"`
	MemoryMB            int               `json:"memory_mb"`
	MaxEnvsPerSubTenant int               `json:"max_envs_per_subtenant"`
	Env                 map[string]string `json:"env,omitempty"`
	LastModified        *time.Time        `json:"last_modified"` // null when the cloud does not say
	// Egress is the canonical egress policy (none, all or HOST[:PORT],...);
	// EphemeralMB the size of /tmp, 0 where the cloud does not report it.
	Egress      string `json:"egress"`
	EphemeralMB int    `json:"ephemeral_mb"`
}

func functionRow(f providers.Function) fnFunction {
	return fnFunction{
		Tenant: f.Tenant, Name: f.Name, Version: f.Version, CodeSHA256: f.CodeSHA256,
		Tenancy: f.Tenancy, TimeoutMS: f.Timeout.Milliseconds(), MemoryMB: f.MemoryMB,
		MaxEnvsPerSubTenant: f.MaxEnvsPerSubTenant, Env: f.Env, LastModified: optTime(f.LastModified),
		Egress: f.Egress, EphemeralMB: f.EphemeralMB,
	}
}

func runFnList(c *cli.Context) error {
	tenant, _, err := fnArgs(c, false)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	p, err := fnReader(c, tenant)
	if err != nil {
		return err
	}
	fns, err := p.List(c.Context, tenant)
	if err != nil {
		return fnReadFailure(c, err, tenant, "")
	}
	rows := make([]fnFunction, 0, len(fns))
	for _, f := range fns {
		rows = append(rows, functionRow(f))
	}
	if asJSON {
		return printJSON(c.App.Writer, rows)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tTENANCY\tMEMORY\tEPHEMERAL\tTIMEOUT\tMODIFIED\tEGRESS")
	for _, f := range rows {
		tmp := "-"
		if f.EphemeralMB > 0 {
			tmp = fmt.Sprintf("%d MB", f.EphemeralMB)
		}
		// The policy comes last: a host list is the one long column.
		fmt.Fprintf(w, "%s\t%s\t%s\t%d MB\t%s\t%v\t%s\t%s\n", f.Name, f.Version, dashIfEmpty(f.Tenancy), f.MemoryMB, tmp,
			time.Duration(f.TimeoutMS)*time.Millisecond, tableTime(f.LastModified, time.DateTime), dashIfEmpty(f.Egress))
	}
	return w.Flush()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fnEnvironment is an environment's JSON form in `gust fn envs` output.
type fnEnvironment struct {
	ID                  string `json:"id"`
	Function            string `json:"function"`
	Version             string `json:"version"`
	SubTenant           string `json:"subtenant"`
	State               string `json:"state"`
	Invocations         int    `json:"invocations"`
	MemoryMB            int    `json:"memory_mb"`
	MemoryLimitEnforced bool   `json:"memory_limit_enforced"`
	// Isolation is "sandbox" or "none"; UID is the uid the environment
	// runs as on the machine; PidsMax and CPUShare are its cgroup limits
	// and EphemeralMB its /tmp size (0 where not enforced).
	Isolation   string     `json:"isolation,omitempty"`
	PID         int        `json:"pid,omitempty"`
	UID         int        `json:"uid,omitempty"`
	PidsMax     int        `json:"pids_max,omitempty"`
	CPUShare    int        `json:"cpu_share,omitempty"`
	EphemeralMB int        `json:"ephemeral_mb,omitempty"`
	Started     *time.Time `json:"started"`   // null when the cloud does not say
	LastUsed    *time.Time `json:"last_used"` // null when the cloud does not say
}

// envLimits describes an environment's limits besides memory, for the
// table: what is not enforced is not shown.
func envLimits(e fnEnvironment) string {
	var parts []string
	if e.PidsMax > 0 {
		parts = append(parts, fmt.Sprintf("pids %d", e.PidsMax))
	}
	if e.CPUShare > 0 {
		parts = append(parts, fmt.Sprintf("cpu %d", e.CPUShare))
	}
	if e.EphemeralMB > 0 && e.Isolation == "sandbox" {
		parts = append(parts, fmt.Sprintf("tmp %d MB", e.EphemeralMB))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func runFnEnvs(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	p, err := fnReader(c, tenant)
	if err != nil {
		return err
	}
	envs, err := p.Environments(c.Context, tenant, name)
	if err != nil {
		return fnReadFailure(c, err, tenant, name)
	}
	rows := make([]fnEnvironment, 0, len(envs))
	for _, e := range envs {
		rows = append(rows, fnEnvironment{
			ID: e.ID, Function: e.Function, Version: e.Version, SubTenant: e.SubTenant, State: e.State,
			Invocations: e.Invocations, MemoryMB: e.MemoryMB, MemoryLimitEnforced: e.MemoryLimitEnforced,
			Isolation: e.Isolation, PID: e.PID, UID: e.UID, PidsMax: e.PidsMax, CPUShare: e.CPUShare, EphemeralMB: e.EphemeralMB,
			Started: optTime(e.Started), LastUsed: optTime(e.LastUsed),
		})
	}
	if asJSON {
		return printJSON(c.App.Writer, rows)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENVIRONMENT\tSUB-TENANT\tVERSION\tSTATE\tINVOCATIONS\tISOLATION\tUID\tMEMORY\tLIMITS\tSTARTED\tLAST USED")
	for _, e := range rows {
		mem := fmt.Sprintf("%d MB", e.MemoryMB)
		if !e.MemoryLimitEnforced {
			mem += " (not enforced)"
		}
		iso, uid := e.Isolation, strconv.Itoa(e.UID)
		if iso == "" { // a cloud that does not say
			iso, uid = "-", "-"
		}
		fmt.Fprintf(w, "%s\t%q\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.SubTenant, e.Version, e.State, e.Invocations,
			iso, uid, mem, envLimits(e), tableTime(e.Started, time.TimeOnly), tableTime(e.LastUsed, time.TimeOnly))
	}
	return w.Flush()
}

func runFnLogs(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	in := workflows.FunctionLogsInput{Tenant: tenant, Name: name, SubTenant: c.String("subtenant")}
	if in.SubTenant == "" {
		return usagef("--subtenant is required")
	}
	if err := in.Validate(); err != nil {
		return usagef("%v", err)
	}
	p, err := fnReader(c, tenant)
	if err != nil {
		return err
	}
	events, err := p.LogEvents(c.Context, tenant, name, in.SubTenant)
	if err != nil {
		return fnReadFailure(c, err, tenant, name)
	}
	out, errOut := bufio.NewWriter(c.App.Writer), bufio.NewWriter(c.App.ErrWriter)
	for _, ev := range events {
		if asJSON {
			if err := printJSON(out, ev); err != nil {
				return err
			}
			continue
		}
		w := out
		if ev.Stream == lambdaprovider.StreamStderr {
			// As docker logs does: the function's stderr on stderr. Both
			// are flushed line by line, so a terminal shows them in order.
			w = errOut
		}
		fmt.Fprintf(w, "%s %s %s\n", ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), ev.EnvironmentID, ev.Message)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if err := errOut.Flush(); err != nil {
		return err
	}
	return out.Flush()
}

// fnReadDescription says where the read commands read.
const fnReadDescription = `Reads the cloud as the tenant, through the Lambda API (and gust's local cloud's
extensions for environments and logs), like the worker does; no workflow is
started and no worker is needed. --endpoint is the cloud (default gust dev's,
http://127.0.0.1:4566). The tenant's key comes from the tenant registry in
--state-dir (gust dev's, default .gust) when there is one, else from the AWS
configuration chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...).`

func runFnDelete(c *cli.Context) error {
	tenant, name, err := fnArgs(c, true)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	in := workflows.DeleteFunctionInput{Tenant: tenant, Name: name}
	if err := runFnCommand(c, workflows.OpDelete, tenant, name, workflows.DeleteFunctionWorkflow, in, nil); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.App.Writer, map[string]any{"tenant": tenant, "name": name, "deleted": true})
	}
	fmt.Fprintf(c.App.Writer, "deleted function %s of tenant %s\n", name, tenant)
	return nil
}
