package main

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/bench"
	lambdacloud "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/workflows"
)

// The `gust bench` commands: flags and their validation here, the
// measurements in package bench.

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure gust on an embedded platform in this process (results: docs/benchmarks.md)",
		Subcommands: []*cli.Command{
			benchFleetCommand(),
			benchFnCommand(),
			benchGatewayCommand(),
		},
	}
}

func benchFleetCommand() *cli.Command {
	return &cli.Command{
		Name:  "fleet",
		Usage: "time to min and target with and without the burst, then a large fleet",
		Description: `Runs the same fleet twice on one embedded platform (server, local cloud and
worker in this process): once with the burst and once with --no-burst, and
prints time to min, time to target and their ratios. Then it runs a large
fleet (default 10,000 instances) and reports its time, history events per
run and the process's peak memory.

The local cloud's EC2 request and resource throttles are lifted for the
run, so that the platform's own launch rate limiter, not EC2's, is what the
comparison measures: with EC2's resource bucket (1000 instances, refilling
at 2 per second) every instance past the first thousand would take half a
second whatever gust did.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "min", Value: 200, Usage: "fleet minimum for the burst comparison"},
			&cli.IntFlag{Name: "target", Value: 250, Usage: "fleet target for the burst comparison"},
			&cli.Float64Flag{Name: "launch-rate", Value: 20, Usage: "fill-path launch rate, instances per second"},
			&cli.DurationFlag{Name: "boot", Value: time.Second, Usage: "the cloud's boot delay"},
			&cli.IntFlag{Name: "large", Value: 10000, Usage: "size of the large fleet (0 skips it)"},
			&cli.Float64Flag{Name: "large-launch-rate", Value: 1000, Usage: "launch rate for the large fleet"},
			outputFlag(),
		},
		Action: runBenchFleet,
	}
}

func runBenchFleet(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	minN, target, large := c.Int("min"), c.Int("target"), c.Int("large")
	if err := (workflows.LaunchFleetInput{FleetID: "bench", InstanceType: "m5.large", Min: minN, Target: target}).Validate(); err != nil {
		return usagef("%v", err)
	}
	if large < 0 || large > workflows.MaxFleetSize {
		return usagef("--large %d must be between 0 and %d", large, workflows.MaxFleetSize)
	}
	if c.Float64("launch-rate") <= 0 || c.Float64("large-launch-rate") <= 0 {
		return usagef("launch rates must be positive")
	}
	return bench.Fleet(c.Context, bench.FleetOptions{
		Out:             c.App.Writer,
		Progress:        os.Stderr,
		JSON:            asJSON,
		Min:             minN,
		Target:          target,
		LaunchRate:      c.Float64("launch-rate"),
		Boot:            c.Duration("boot"),
		Large:           large,
		LargeLaunchRate: c.Float64("large-launch-rate"),
	})
}

func benchFnCommand() *cli.Command {
	return &cli.Command{
		Name:  "fn",
		Usage: "invocation latency (cold, warm, end to end, floor) and throughput of functions",
		Description: `Starts the embedded platform in this process (in-memory server, local cloud,
worker; UI off), deploys the sample echo handler (this gust binary in its
hidden handler mode, or --handler), and reports p50 and p99 of:

  cold start         provider Invoke for a sub-tenant never seen before
  provider warm      provider Invoke (HTTP to the local cloud) on a warm environment
  e2e warm           InvokeWorkflow, for each activity mode, eager start on and off
  floor              a no-op workflow on the same server, eager start on and off
  throughput         --subtenants sub-tenants in parallel, each invoking in a loop

then the ratios of e2e warm p50 to the floor p50.

With --waits N it measures only how long callers wait for results: N
InvokeWorkflows one after another in each activity mode, each started and
then waited for, reporting p50, p99, max and how many took over 1 s, with
the server-side duration of each of those. --wait sdk waits with the SDK's
plain WorkflowRun.Get instead of gust's runwait.Get, to compare: see
docs/benchmarks.md, "Waiting for results".`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "iterations", Value: 200, Usage: "measured invocations per warm and floor series"},
			&cli.IntFlag{Name: "cold", Value: 30, Usage: "cold starts to measure"},
			&cli.IntFlag{Name: "subtenants", Value: 50, Usage: "sub-tenants invoking in parallel in the throughput run"},
			&cli.IntFlag{Name: "per-subtenant", Value: 20, Usage: "invocations per sub-tenant in the throughput run"},
			&cli.StringFlag{Name: "handler", Usage: "Lambda bootstrap executable to deploy instead of this gust binary (e.g. a small aws-lambda-go handler)"},
			&cli.StringFlag{Name: "cloud-isolation", Value: lambdacloud.IsolationSandbox, Usage: "function isolation to measure: sandbox or none"},
			&cli.IntFlag{Name: "waits", Usage: "measure only result waits: `N` sequential start-and-wait invocations in each activity mode"},
			&cli.StringFlag{Name: "wait", Value: bench.WaitRunwait, Usage: "how the --waits and floor series wait for results: runwait (gust's) or sdk (WorkflowRun.Get)"},
			outputFlag(),
		},
		Action: runBenchFn,
	}
}

func runBenchFn(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	iters, cold, subs, per := c.Int("iterations"), c.Int("cold"), c.Int("subtenants"), c.Int("per-subtenant")
	if iters < 1 || cold < 1 || subs < 1 || per < 1 {
		return usagef("--iterations, --cold, --subtenants and --per-subtenant must be at least 1")
	}
	handler, err := benchHandler(c)
	if err != nil {
		return err
	}
	iso, err := benchIsolation(c)
	if err != nil {
		return err
	}
	waits, waitHow := c.Int("waits"), c.String("wait")
	if waits < 0 {
		return usagef("--waits must be at least 0")
	}
	if waitHow != bench.WaitRunwait && waitHow != bench.WaitSDK {
		return usagef("--wait %q: want %s or %s", waitHow, bench.WaitRunwait, bench.WaitSDK)
	}
	return bench.Fn(c.Context, bench.FnOptions{
		Out:          c.App.Writer,
		Progress:     os.Stderr,
		JSON:         asJSON,
		Handler:      handler,
		Iterations:   iters,
		Cold:         cold,
		SubTenants:   subs,
		PerSubTenant: per,
		Isolation:    iso,
		Waits:        waits,
		Wait:         waitHow,
	})
}

func benchGatewayCommand() *cli.Command {
	return &cli.Command{
		Name:  "gateway",
		Usage: "what the gateway adds to a warm invocation: p50 and p99 through it and direct",
		Description: `Starts the embedded platform in this process (in-memory server, local cloud,
worker, gateway; UI off), deploys the sample echo handler (this gust binary in
its hidden handler mode, or --handler) and warms one environment, then
alternates, --iterations times each:

  direct         InvokeWorkflow started with the platform's client (eager
                 start), waiting for its result: what gust fn invoke does
  gateway sigv4  the same invocation through the gateway with aws-sdk-go-v2's
                 Lambda client, signed with the tenant's key
  gateway token  the same with a sub-tenant token (Authorization: Bearer)
  direct, the gateway's input
                 the input the gateway starts (with its queue bound), direct

Alternating puts both paths under the same conditions. The gateway adds one
HTTP round trip on loopback, the SDK's signing and the gateway's
verification to the direct path; the difference of the p50s is its cost.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "iterations", Value: 500, Usage: "measured invocations per series"},
			&cli.StringFlag{Name: "handler", Usage: "Lambda bootstrap executable to deploy instead of this gust binary"},
			&cli.StringFlag{Name: "cloud-isolation", Value: lambdacloud.IsolationSandbox, Usage: "function isolation: sandbox or none"},
			outputFlag(),
		},
		Action: runBenchGateway,
	}
}

func runBenchGateway(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	iters := c.Int("iterations")
	if iters < 1 {
		return usagef("--iterations must be at least 1")
	}
	handler, err := benchHandler(c)
	if err != nil {
		return err
	}
	iso, err := benchIsolation(c)
	if err != nil {
		return err
	}
	return bench.Gateway(c.Context, bench.GatewayOptions{
		Out:        c.App.Writer,
		Progress:   os.Stderr,
		JSON:       asJSON,
		Handler:    handler,
		Iterations: iters,
		Isolation:  iso,
	})
}

// benchHandler is --handler, by default this gust binary; a file that
// cannot be read is a usage error.
func benchHandler(c *cli.Context) (string, error) {
	handler := c.String("handler")
	if handler == "" {
		var err error
		if handler, err = os.Executable(); err != nil {
			return "", fmt.Errorf("finding the gust executable: %w", err)
		}
	}
	if _, err := os.Stat(handler); err != nil {
		return "", usagef("--handler: %v", err)
	}
	return handler, nil
}

// benchIsolation is --cloud-isolation: sandbox or none.
func benchIsolation(c *cli.Context) (string, error) {
	iso := c.String("cloud-isolation")
	if iso != lambdacloud.IsolationSandbox && iso != lambdacloud.IsolationNone {
		return "", usagef("--cloud-isolation %q: want %s or %s", iso, lambdacloud.IsolationSandbox, lambdacloud.IsolationNone)
	}
	return iso, nil
}
