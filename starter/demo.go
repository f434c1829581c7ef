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

	if err := demoPing(ctx, out, p.client); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := demoFleet(ctx, out, p.client); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if err := demoFunctions(ctx, out, p); err != nil {
		return err
	}

	fmt.Fprintln(out)
	if ui := p.server.UIAddress(); ui != "" {
		fmt.Fprintf(out, "Web UI: %s/namespaces/default/workflows\n", ui)
	}
	if c.Bool("keep") {
		fmt.Fprintln(out, "Still running (--keep). Press Ctrl+C to stop.")
		waitForSignal(ctx)
	}
	return nil
}

// demoPing proves the platform is alive: one workflow, a durable timer and
// an activity, end to end.
func demoPing(ctx context.Context, out io.Writer, c client.Client) error {
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "demo-ping",
		TaskQueue: workflows.TaskQueue,
	}, workflows.PingWorkflow, workflows.PingInput{Message: "hello from gust", Wait: 100 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("starting ping workflow: %w", err)
	}
	var res workflows.PingResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("ping workflow: %w", err)
	}
	fmt.Fprintf(out, "Platform check: PingWorkflow %s answered %q from worker %s in %v\n",
		run.GetID(), res.Message, res.Worker, time.Since(start).Round(time.Millisecond))
	return nil
}
