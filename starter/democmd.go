package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/demo"
	"github.com/gust-dev/gust/platform"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "start the embedded platform on free ports, run the showcase, print a summary",
		Description: `Runs everything in memory: the embedded Temporal server, the local cloud
and a worker, each on a free port. It then runs gust's showcase, prints a
summary and exits, taking the platform with it. With --keep it also starts
the Web UI and stays up, so you can explore the workflows in the Web UI and
with gust's commands; Ctrl+C stops it.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "keep", Usage: "keep the platform running after the showcase, with the Web UI"},
			&cli.IntFlag{Name: "ui-port", Value: -1, Usage: "with --keep: Web UI port (-1 picks a free port, 0 turns it off)"},
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
	keep := c.Bool("keep")
	if c.IsSet("ui-port") && !keep {
		return usagef("--ui-port needs --keep: without it the demo exits, with its Web UI, when the showcase ends")
	}
	// Without --keep the platform is gone a moment after the summary: a
	// Web UI link would be dead by the time anyone clicks it.
	uiPort, noUI := 0, "not started: run gust demo --keep to explore the workflows in the Web UI"
	if keep {
		uiPort, noUI = c.Int("ui-port"), "off (--ui-port 0)"
	}
	out := c.App.Writer
	fmt.Fprintln(out, "Starting gust: embedded Temporal server, local cloud and worker...")
	ctx := c.Context
	p, err := platform.Start(ctx, demo.PlatformConfig(uiPort))
	if err != nil {
		return err
	}
	defer p.Shutdown()
	printAddresses(out, p, "", demo.LaunchRate, devCredentials{}, noUI)
	fmt.Fprintln(out)

	if err := demo.Run(ctx, p, demo.Options{Out: out, ShowFleet: showProgress}); err != nil {
		return err
	}
	if !keep {
		fmt.Fprintln(out, "The platform stops now. Run gust demo --keep to explore the workflows in the Web UI.")
		return nil
	}
	addr := p.Server().FrontendAddress()
	fmt.Fprintln(out, "Still running (--keep). Try, from another terminal:")
	fmt.Fprintf(out, "  gust fleet list --address %s\n", addr)
	fmt.Fprintf(out, "  gust fleet status %s --address %s\n", demo.BurstFleetID, addr)
	fmt.Fprintf(out, "  gust fn envs %s --tenant %s --address %s\n", demo.Function, demo.Tenant, addr)
	fmt.Fprintln(out, "Press Ctrl+C to stop.")
	waitForSignal(ctx)
	return nil
}
