package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

func fleetCommand() *cli.Command {
	return &cli.Command{
		Name:  "fleet",
		Usage: "launch and manage burst fleets (LaunchFleetWorkflow)",
		Subcommands: []*cli.Command{
			{
				Name:      "launch",
				Usage:     "launch at least --min instances now and fill to --target as capacity allows",
				ArgsUsage: " ",
				Description: `The fleet launches into the account of --tenant (default: the default
tenant, which gust dev creates): its instances and capacity reservation are
that tenant's, and only that tenant sees them. The worker acts there by
assuming the tenant's role. A fleet id is unique per tenant: two tenants may
each have a fleet "web", and the other fleet commands take the same --tenant.

With several --instance-type TYPE[:WEIGHT] values (and --zone values) the
fleet may launch each type in each zone, on-demand or spot (--on-demand-base,
--spot-share); --min and --target count capacity units, an instance counting
its type's weight. With --on-lost replace (the default) a fleet that reaches
its target keeps running, replacing lost and reclaimed instances, until
gust fleet cancel; --wait returns once the target runs.`,
				Flags: clientFlags(append(fleetLaunchFlags(),
					cloudEndpointFlag(), cloudStateDirFlag(),
				)...),
				Action: runFleetLaunch,
			},
			{
				Name:      "status",
				Usage:     "show a fleet's counts, phase and timings",
				ArgsUsage: "FLEET_ID",
				Flags:     clientFlags(fleetTenantFlag()),
				Action:    runFleetStatus,
			},
			{
				Name:   "list",
				Usage:  "list fleets",
				Flags:  clientFlags(),
				Action: runFleetList,
			},
			{
				Name:      "set-rate",
				Usage:     "set the platform's fill-path launch rate (instances per second) for every worker; without RATE, show the rate in effect",
				ArgsUsage: "[RATE]",
				Flags:     clientFlags(),
				Action:    runFleetSetRate,
			},
			{
				Name:      "scale",
				Usage:     "change a running fleet's target; lowering it terminates the newest instances",
				ArgsUsage: "FLEET_ID",
				Flags: clientFlags(
					fleetTenantFlag(),
					&cli.IntFlag{Name: "target", Usage: "the new target (required)"},
				),
				Action: runFleetScale,
			},
			{
				Name:      "cancel",
				Usage:     "cancel a fleet and terminate what it launched",
				ArgsUsage: "FLEET_ID",
				Flags: clientFlags(
					fleetTenantFlag(),
					&cli.BoolFlag{Name: "keep", Usage: "leave the fleet's instances running"},
				),
				Action: runFleetCancel,
			},
		},
	}
}

// fleetWorkflowType is LaunchFleetWorkflow's registered name, for lists.
const fleetWorkflowType = "LaunchFleetWorkflow"

func fleetTenantFlag() cli.Flag {
	return &cli.StringFlag{Name: "tenant", EnvVars: []string{"GUST_TENANT"}, Value: tenants.DefaultTenant,
		Usage: "the tenant whose account the fleet is in"}
}

// fleetTenant returns --tenant, with the default tenant as "": fleets of
// the default tenant keep the inputs and workflow ids they had before
// tenants existed.
func fleetTenant(c *cli.Context) (string, error) {
	t := c.String("tenant")
	if err := workflows.ValidateTenantID(t); err != nil {
		return "", usagef("--tenant: %v", err)
	}
	if t == tenants.DefaultTenant {
		return "", nil
	}
	return t, nil
}

// tenantName is the tenant's name, with "" as the default tenant.
func tenantName(tenant string) string {
	if tenant == "" {
		return tenants.DefaultTenant
	}
	return tenant
}

// tenantArg is " --tenant T" for a non-default tenant, for the commands
// gust suggests.
func tenantArg(tenant string) string {
	if tenant == "" {
		return ""
	}
	return " --tenant " + tenant
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func runFleetLaunch(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	in, err := fleetInput(c)
	if err != nil {
		return err
	}
	cl, err := dialWorker(c, workflows.LaunchTaskQueue)
	if err != nil {
		return err
	}
	defer cl.Close()
	// An instance type the cloud does not offer is the caller's mistake:
	// exit 2 before anything starts.
	note, err := checkInstanceTypes(c, in.Tenant, fleetTypes(in))
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintf(c.App.ErrWriter, "gust: note: %s\n", note)
	}
	ctx := c.Context
	out := c.App.Writer

	run, joined, err := startFleet(ctx, cl, in)
	if err != nil {
		return err
	}
	wfID := workflows.FleetWorkflowID(in.Tenant, in.FleetID)
	if joined && !asJSON {
		fmt.Fprintf(os.Stderr, "fleet %s already exists: joining it instead of launching again\n", wfID)
	}
	if !c.Bool("wait") {
		// The state, as status and list name it: validating for a new
		// fleet; a joined fleet's own, which may have ended.
		state, runID, closed := launchedState(ctx, cl, wfID, run, joined)
		if closed {
			res, err := fleetOutcome(ctx, cl, wfID)
			if err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(out, launchJSON{FleetID: in.FleetID, Tenant: tenantName(in.Tenant), RunID: runID, Joined: true, State: optString(state)}); err != nil {
					return err
				}
				return fleetExit(res)
			}
			fmt.Fprintf(out, "fleet %s already ended: nothing launched.\n", wfID)
			return reportFleetResult(out, res, false)
		}
		if asJSON {
			return printJSON(out, launchJSON{FleetID: in.FleetID, Tenant: tenantName(in.Tenant), RunID: runID, Joined: joined, State: optString(state)})
		}
		verb := "started"
		if joined {
			verb = "joined, " + dashIfEmpty(state)
		}
		fmt.Fprintf(out, "fleet %s %s (run %s): min %d, target %d, %s\n", wfID, verb, runID, in.Min, in.Target, fleetTypesSummary(in))
		fmt.Fprintf(out, "follow it with: gust fleet status %s%s\n", in.FleetID, tenantArg(in.Tenant))
		return nil
	}

	waitCtx := ctx
	if d := c.Duration("timeout"); d > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var stopProgress func()
	if !asJSON {
		stopProgress = showProgress(waitCtx, cl, wfID, out)
	}
	// A joined fleet may maintain its target whatever this launch's
	// --on-lost says: watch its status too.
	maintained := in.OnLost != workflows.OnLostFail || joined
	res, maintaining, err := awaitFleet(waitCtx, cl, wfID, maintained)
	if stopProgress != nil {
		stopProgress()
	}
	if err != nil && pastDeadline(waitCtx, err) && ctx.Err() == nil {
		// Our --timeout ran out; the fleet goes on. Report where it is.
		st, err := queryFleet(ctx, cl, wfID)
		if err != nil {
			return failed(fmt.Sprintf("fleet %s: still running after --timeout %v; its status is unavailable: %s", wfID, c.Duration("timeout"), oneLine(err.Error())))
		}
		res = statusResult(st)
		res.Message = fmt.Sprintf("still %s after --timeout %v; the fleet keeps filling", res.State, c.Duration("timeout"))
	} else if err != nil {
		return err
	}
	if maintaining {
		res.Message = joinMessages(res.Message, maintainingMessage(in.FleetID, in.Tenant))
	}
	return reportFleetResult(out, res, asJSON)
}

// startFleet starts LaunchFleetWorkflow, or joins the fleet with the same
// id: a running one through the USE_EXISTING conflict policy, a closed one
// by rejecting the duplicate and reading its outcome. A fleet id never
// launches twice.
func startFleet(ctx context.Context, cl client.Client, in workflows.LaunchFleetInput) (client.WorkflowRun, bool, error) {
	id := workflows.FleetWorkflowID(in.Tenant, in.FleetID)
	summary := fmt.Sprintf("fleet of %d-%d %s", in.Min, in.Target, in.InstanceType)
	if n := len(fleetTypes(in)) - 1; n > 0 {
		// A short summary, whatever the number of types: units, not
		// instances, and how many other types.
		summary = fmt.Sprintf("fleet of %d-%d units of %s and %d more types", in.Min, in.Target, in.InstanceType, n)
	}
	memo := map[string]any{workflows.MemoMin: in.Min, workflows.MemoTarget: in.Target, workflows.MemoInstanceType: in.InstanceType}
	if in.Tenant != "" {
		summary += " for tenant " + in.Tenant
		memo[workflows.MemoTenant] = in.Tenant
	}
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// A closed fleet with this id is an error, not a run handed back
		// as if it were ours: that is how a launch knows it joined one.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            summary,
		Memo:                                     memo,
	}, workflows.LaunchFleetWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		// A run id different from the one we asked for means we joined.
		return run, alreadyRunning(ctx, cl, id, run.GetRunID()), nil
	case errors.As(err, &started):
		return cl.GetWorkflow(ctx, id, ""), true, nil
	default:
		return nil, false, fmt.Errorf("starting fleet %s: %w", id, err)
	}
}

// alreadyRunning reports whether the run was started before this request
// (USE_EXISTING returns the existing run without an error).
func alreadyRunning(ctx context.Context, cl client.Client, id, runID string) bool {
	d, err := cl.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return false
	}
	return time.Since(d.GetWorkflowExecutionInfo().GetStartTime().AsTime()) > 5*time.Second
}

// fleetOutcome waits for the fleet's workflow chain to end and returns its
// result, whether it completed, failed with a FleetResult, or was
// cancelled. An error that is not the workflow's own (the wait's deadline,
// a lost connection) is returned as an error, never as a failed fleet.
func fleetOutcome(ctx context.Context, cl client.Client, fleetID string) (workflows.FleetResult, error) {
	var res workflows.FleetResult
	err := cl.GetWorkflow(ctx, fleetID, "").Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	if !errors.As(err, new(*temporal.WorkflowExecutionError)) {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return res, failed(fmt.Sprintf("fleet %s not found", fleetID))
		}
		return res, fmt.Errorf("waiting for fleet %s: %w", fleetID, err)
	}
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &appErr) && appErr.HasDetails():
		if derr := appErr.Details(&res); derr == nil && res.FleetID != "" {
			return res, nil
		}
	case errors.As(err, &canceled) && canceled.HasDetails():
		if derr := canceled.Details(&res); derr == nil && res.FleetID != "" {
			return res, nil
		}
	}
	return workflows.FleetResult{FleetID: fleetID, State: workflows.PhaseFailed, Message: oneLine(err.Error())}, nil
}

func reportFleetResult(out io.Writer, res workflows.FleetResult, asJSON bool) error {
	if res.InstanceIDs == nil {
		res.InstanceIDs = []string{}
	}
	res.Tenant = tenantName(res.Tenant) // named, as in list and status
	if asJSON {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "fleet %s %s: %d running", res.FleetID, res.State, res.Running)
		if res.Units > 0 && res.Units != res.Launched {
			fmt.Fprintf(out, ", %d units", res.Units)
		}
		fmt.Fprintf(out, " (min %d, target %d)", res.Min, res.Target)
		if res.Replaced > 0 {
			fmt.Fprintf(out, ", %d replaced", res.Replaced)
		}
		if res.TimeToMinMS > 0 {
			fmt.Fprintf(out, ", min in %v", msDuration(res.TimeToMinMS))
		}
		if res.TimeToTargetMS > 0 {
			fmt.Fprintf(out, ", target in %v", msDuration(res.TimeToTargetMS))
		}
		fmt.Fprintln(out)
		if res.Message != "" {
			fmt.Fprintln(out, res.Message)
		}
	}
	return fleetExit(res)
}

// fleetExit is exit 1, with nothing more to print, for a fleet that ended
// without its target.
func fleetExit(res workflows.FleetResult) error {
	if res.State != workflows.PhaseFulfilled {
		return cli.Exit("", exitFailed)
	}
	return nil
}

// launchJSON is `gust fleet launch --output json` without --wait. State is
// the fleet's state (see fleetState), null when a joined running fleet's
// could not be read.
type launchJSON struct {
	FleetID string  `json:"fleet_id"`
	Tenant  string  `json:"tenant"`
	RunID   string  `json:"run_id"`
	Joined  bool    `json:"joined"`
	State   *string `json:"state"`
}

func msDuration(ms int64) time.Duration {
	return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond)
}

func queryFleet(ctx context.Context, cl client.Client, fleetID string) (workflows.FleetStatus, error) {
	var st workflows.FleetStatus
	v, err := cl.QueryWorkflow(ctx, fleetID, "", workflows.StatusQuery)
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return st, failed(fmt.Sprintf("fleet %s not found", fleetID))
		}
		return st, fmt.Errorf("querying fleet %s: %w", fleetID, err)
	}
	return st, v.Get(&st)
}

// showProgress draws a live bar until stop is called: in place on a
// terminal, a line per change otherwise.
func showProgress(ctx context.Context, cl client.Client, fleetID string, out io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	tty := isTerminal(os.Stdout)
	go func() {
		defer close(done)
		last := ""
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := queryFleet(ctx, cl, fleetID); err == nil {
				line := progressLine(st, 40)
				switch {
				case tty:
					fmt.Fprintf(out, "\r%s\x1b[K", line)
				case line != last:
					fmt.Fprintln(out, line)
				}
				last = line
			}
			select {
			case <-ctx.Done():
				if tty && last != "" {
					fmt.Fprintln(out)
				}
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// progressLine renders e.g.
//
//	fleet-1 filling [#########|####-------------]  412/1000 running, 20 pending  min ✓ 1.8s
//
// where '|' marks the minimum and the bar's end the target.
func progressLine(st workflows.FleetStatus, width int) string {
	if st.Target <= 0 {
		return fmt.Sprintf("%s %s", st.FleetID, st.Phase)
	}
	cell := func(n int) int {
		if n > st.Target {
			n = st.Target
		}
		return n * width / st.Target
	}
	running, launched, minAt := cell(st.Running), cell(st.Running+st.Pending), cell(st.Min)
	weighted := st.Units != st.Launched && st.Units > 0
	if weighted {
		// Min and Target count units, the counts instances: the bar shows
		// units, its running part in proportion to the running instances
		// (exact when the weights are equal).
		launched = cell(st.Units)
		running = cell(st.Units * st.Running / max(1, st.Running+st.Pending))
	}
	var b strings.Builder
	for i := 0; i < width; i++ {
		switch {
		case i == minAt && minAt < width:
			b.WriteByte('|')
		case i < running:
			b.WriteByte('#')
		case i < launched:
			b.WriteByte('+')
		default:
			b.WriteByte('-')
		}
	}
	s := fmt.Sprintf("%s %-9s [%s] %d/%d running, %d pending", st.FleetID, st.Phase, b.String(), st.Running, st.Target, st.Pending)
	if weighted {
		s = fmt.Sprintf("%s %-9s [%s] %d/%d units, %d running, %d pending", st.FleetID, st.Phase, b.String(), st.Units, st.Target, st.Running, st.Pending)
	}
	if st.TimeToMinMS > 0 {
		s += fmt.Sprintf("  min %d in %v", st.Min, msDuration(st.TimeToMinMS))
	}
	if st.TimeToTargetMS > 0 {
		s += fmt.Sprintf("  target in %v", msDuration(st.TimeToTargetMS))
	}
	return s
}

// oneFleetArg returns the workflow id of the fleet FLEET_ID of --tenant.
func oneFleetArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s needs exactly one FLEET_ID", c.Command.FullName())
	}
	tenant, err := fleetTenant(c)
	if err != nil {
		return "", err
	}
	return workflows.FleetWorkflowID(tenant, c.Args().First()), nil
}

func runFleetStatus(c *cli.Context) error {
	id, err := oneFleetArg(c)
	if err != nil {
		return err
	}
	cl, asJSON, err := dialWorkerWithOutput(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := queryFleet(c.Context, cl, id)
	if err != nil {
		return err
	}
	// Launches the server is retrying (throttled, short of capacity) are
	// not in the workflow's state: they come from its pending activities.
	// A fleet that has ended has none.
	retries, err := fleetRetries(c.Context, cl, id)
	if err != nil {
		return err
	}
	if asJSON {
		st.Tenant = tenantName(st.Tenant) // named, as in list and launch
		return printJSON(c.App.Writer, statusJSON{FleetStatus: st, Retrying: retries})
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("Fleet", st.FleetID)
	row("Tenant", tenantName(st.Tenant))
	row("State", st.Phase)
	row("Min / Target", fmt.Sprintf("%d / %d", st.Min, st.Target))
	row("Running", st.Running)
	row("Pending", st.Pending)
	row("Launched", st.Launched)
	if st.Units > 0 && st.Units != st.Launched {
		row("Units", fmt.Sprintf("%d (%d on-demand, %d spot)", st.Units, st.OnDemandUnits, st.SpotUnits))
	}
	row("Terminated", st.Terminated)
	row("Replaced", fmt.Sprintf("%d (lost or reclaimed, launched again)", st.Replaced))
	row("Burst", fmt.Sprintf("%v (%d launched, %d failed)", st.Burst, st.BurstLaunched, st.BurstFailed))
	row("Fill", fmt.Sprintf("%d launched in %d rounds", st.FillLaunched, st.FillRounds))
	if st.Adopted > 0 {
		row("Adopted", fmt.Sprintf("%d (launched by calls whose response was lost)", st.Adopted))
	}
	if st.Lost > 0 {
		row("Lost", fmt.Sprintf("%d (terminated outside gust)", st.Lost))
	}
	if st.Kept > 0 {
		row("Kept", fmt.Sprintf("%d (left running by cancel --keep)", st.Kept))
	}
	if s := retrySummary(retries, time.Now()); s != "" {
		row("Retrying", s)
	}
	if st.EventDriven {
		row("Instance states", "event-driven (the cloud's state-change events)")
	} else {
		row("Instance states", "polling")
	}
	for i, line := range offeringLines(st.Offerings) {
		row(firstOnly(i, "Offerings"), line)
	}
	for i, line := range unavailableLines(st.Unavailable) {
		row(firstOnly(i, "Unavailable"), line)
	}
	row("Time to min", durOrDash(msDuration(st.TimeToMinMS)))
	row("Time to target", durOrDash(msDuration(st.TimeToTargetMS)))
	row("Runs", st.Runs)
	if st.Message != "" {
		row("Message", st.Message)
	}
	return w.Flush()
}

func durOrDash(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String()
}

func runFleetList(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	cl, asJSON, err := dialWithOutput(c)
	if err != nil {
		return err
	}
	defer cl.Close()

	// A row's state is the fleet's (see fleetState), null when a running
	// fleet's could not be read; started is when its first run started.
	type row struct {
		FleetID      string    `json:"fleet_id"`
		Tenant       string    `json:"tenant"`
		State        *string   `json:"state"`
		InstanceType string    `json:"instance_type"`
		Min          int       `json:"min"`
		Target       int       `json:"target"`
		Started      time.Time `json:"started"`
	}
	rows := []row{}
	// Per row: the workflow id, and the status and start of its newest run.
	var ids []string
	var statuses []enumspb.WorkflowExecutionStatus
	var newest []time.Time
	seen := map[string]int{} // workflow id -> index in rows
	var token []byte
	for {
		resp, err := cl.ListWorkflow(c.Context, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s'", fleetWorkflowType),
			NextPageToken: token,
		})
		if err != nil {
			return fmt.Errorf("listing fleets: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			start := e.GetStartTime().AsTime()
			if i, ok := seen[id]; ok { // continue-as-new leaves one closed run per hop
				if start.Before(rows[i].Started) {
					rows[i].Started = start
				}
				if start.After(newest[i]) {
					statuses[i], newest[i] = e.GetStatus(), start
				}
				continue
			}
			seen[id] = len(rows)
			ids, statuses, newest = append(ids, id), append(statuses, e.GetStatus()), append(newest, start)
			r := row{FleetID: id, Started: start}
			decodeMemo(e.GetMemo(), workflows.MemoTenant, &r.Tenant)
			if r.Tenant != "" {
				r.FleetID = strings.TrimPrefix(id, r.Tenant+"/")
			}
			r.Tenant = tenantName(r.Tenant)
			decodeMemo(e.GetMemo(), workflows.MemoInstanceType, &r.InstanceType)
			decodeMemo(e.GetMemo(), workflows.MemoMin, &r.Min)
			// The workflow keeps the target current on scale.
			decodeMemo(e.GetMemo(), workflows.MemoTarget, &r.Target)
			rows = append(rows, r)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	for i, s := range fleetStates(c.Context, cl, ids, statuses) {
		rows[i].State = optString(s)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Started.After(rows[j].Started) })
	if asJSON {
		return printJSON(c.App.Writer, rows)
	}
	// The fleets share the platform's launch rate; say which is in effect
	// (`gust fleet set-rate -o json` prints it as JSON).
	if opts, err := clientOptions(c); err == nil {
		if r, err := worker.CurrentLaunchRate(c.Context, cl, opts.Namespace); err == nil {
			fmt.Fprintln(c.App.Writer, launchRateLine(r))
		}
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FLEET ID\tTENANT\tSTATE\tTYPE\tMIN\tTARGET\tSTARTED")
	for _, r := range rows {
		state := "-"
		if r.State != nil {
			state = *r.State
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.FleetID, r.Tenant, state, r.InstanceType, r.Min, r.Target, r.Started.Local().Format(time.DateTime))
	}
	return w.Flush()
}

func runFleetScale(c *cli.Context) error {
	id, err := oneFleetArg(c)
	if err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	if !c.IsSet("target") {
		return usagef("--target is required")
	}
	target := c.Int("target")
	if target < 1 || target > workflows.MaxFleetSize {
		return usagef("--target %d must be between 1 and %d", target, workflows.MaxFleetSize)
	}
	cl, err := dialWorker(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	// The minimum is fixed at launch: a target below it is the caller's
	// mistake (exit 2), which the fleet's update validator would only
	// report as a failed update.
	if st, err := queryFleet(c.Context, cl, id); err == nil && target < st.Min {
		return usagef("--target %d is below fleet %s's min %d", target, id, st.Min)
	}
	var res workflows.ScaleResult
	if err := updateFleet(c.Context, cl, id, workflows.ScaleUpdate, workflows.ScaleInput{Target: target}, &res); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "fleet %s target %d -> %d (%d launched)\n", id, res.PreviousTarget, res.Target, res.Launched)
	return nil
}

func runFleetCancel(c *cli.Context) error {
	id, err := oneFleetArg(c)
	if err != nil {
		return err
	}
	cl, asJSON, err := dialWorkerWithOutput(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	var res workflows.CancelResult
	if err := updateFleet(c.Context, cl, id, workflows.CancelUpdate, workflows.CancelInput{Keep: c.Bool("keep")}, &res); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "fleet %s cancelled: %d instances terminated, %d kept\n", id, res.Terminated, res.Kept)
	return nil
}

// updateFleet sends an update to a running fleet and waits for its result.
func updateFleet(ctx context.Context, cl client.Client, id, name string, arg, result any) error {
	h, err := cl.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, result)
	}
	if err == nil {
		return nil
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return failed(fmt.Sprintf("fleet %s not found or no longer running", id))
	}
	return failed(fmt.Sprintf("fleet %s: %s: %s", id, name, oneLine(err.Error())))
}

// decodeMemo reads one memo field; a missing or odd field leaves v as is.
func decodeMemo(m *commonpb.Memo, key string, v any) {
	p, ok := m.GetFields()[key]
	if !ok {
		return
	}
	_ = converter.GetDefaultDataConverter().FromPayload(p, v)
}
