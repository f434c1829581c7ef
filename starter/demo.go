package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/workflows"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "start the embedded platform on free ports, run the showcase, print a summary",
		Description: `Runs everything in memory: the embedded Temporal server, the Web UI, the
local cloud and a worker, each on a free port. It then runs gust's showcase
and prints a summary with the Web UI address. With --keep it stays up so you
can explore the workflows in the Web UI; Ctrl+C stops it.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "keep", Usage: "keep the platform running after the showcase, for the Web UI"},
			&cli.IntFlag{Name: "ui-port", Value: -1, Usage: "Web UI port (-1 picks a free port, 0 turns it off)"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if port := c.Int("ui-port"); port < -1 || port > 65535 {
		return usagef("--ui-port %d is not a valid port", port)
	}
	out := c.App.Writer
	fmt.Fprintln(out, "Starting gust: embedded Temporal server, Web UI, local cloud and worker...")
	ctx := c.Context
	p, err := startPlatform(ctx, platformConfig{
		IP:         "127.0.0.1",
		UIPort:     c.Int("ui-port"),
		CloudPort:  0,
		Cloud:      localcloud.Config{BootDelay: localcloud.DefaultBootDelay},
		LaunchRate: demoLaunchRate,
		Logger:     discardLogger(),
	})
	if err != nil {
		return err
	}
	defer shutdown(p)
	printAddresses(out, p, "", demoLaunchRate)
	fmt.Fprintln(out)

	var summary []string
	for _, step := range []func() (string, error){
		func() (string, error) { return demoPing(ctx, out, p.client) },
		func() (string, error) { return demoFleet(ctx, out, p.client) },
		func() (string, error) { return demoFunctions(ctx, out, p) },
	} {
		line, err := step()
		if err != nil {
			return err
		}
		summary = append(summary, line)
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Summary")
	for _, line := range summary {
		fmt.Fprintf(out, "  %s\n", line)
	}
	if ui := p.server.UIAddress(); ui != "" {
		fmt.Fprintf(out, "Web UI: %s/namespaces/default/workflows\n", ui)
	}
	if c.Bool("keep") {
		addr := p.server.FrontendAddress()
		fmt.Fprintln(out, "Still running (--keep). Try, from another terminal:")
		fmt.Fprintf(out, "  gust fleet list --address %s\n", addr)
		fmt.Fprintf(out, "  gust fleet status demo-fleet-burst --address %s\n", addr)
		fmt.Fprintf(out, "  gust fn envs %s --tenant %s --address %s\n", demoFunction, demoTenant, addr)
		fmt.Fprintln(out, "Press Ctrl+C to stop.")
		waitForSignal(ctx)
	}
	return nil
}

// demoPing proves the platform is alive: one workflow, a durable timer and
// an activity, end to end.
func demoPing(ctx context.Context, out io.Writer, c client.Client) (string, error) {
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "demo-ping",
		TaskQueue: workflows.TaskQueue,
	}, workflows.PingWorkflow, workflows.PingInput{Message: "hello from gust", Wait: 100 * time.Millisecond})
	if err != nil {
		return "", fmt.Errorf("starting ping workflow: %w", err)
	}
	var res workflows.PingResult
	if err := run.Get(ctx, &res); err != nil {
		return "", fmt.Errorf("ping workflow: %w", err)
	}
	took := time.Since(start).Round(time.Millisecond)
	fmt.Fprintf(out, "Platform check: PingWorkflow %s answered %q from worker %s in %v\n",
		run.GetID(), res.Message, res.Worker, took)
	return fmt.Sprintf("platform:  a durable timer and an activity through worker %s in %v", res.Worker, took), nil
}
