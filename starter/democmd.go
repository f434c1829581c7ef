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
	p, err := platform.Start(ctx, demo.PlatformConfig(c.Int("ui-port")))
	if err != nil {
		return err
	}
	defer p.Shutdown()
	printAddresses(out, p, "", demo.LaunchRate, devCredentials{})
	fmt.Fprintln(out)

	if err := demo.Run(ctx, p, demo.Options{Out: out, ShowFleet: showProgress}); err != nil {
		return err
	}
	if c.Bool("keep") {
		addr := p.Server().FrontendAddress()
		fmt.Fprintln(out, "Still running (--keep). Try, from another terminal:")
		fmt.Fprintf(out, "  gust fleet list --address %s\n", addr)
		fmt.Fprintf(out, "  gust fleet status %s --address %s\n", demo.BurstFleetID, addr)
		fmt.Fprintf(out, "  gust fn envs %s --tenant %s --address %s\n", demo.Function, demo.Tenant, addr)
		fmt.Fprintln(out, "Press Ctrl+C to stop.")
		waitForSignal(ctx)
	}
	return nil
}
