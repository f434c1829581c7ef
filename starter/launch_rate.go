package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

// runFleetSetRate sets the platform's launch rate on the launch queue, or
// shows the rate in effect when no RATE is given.
func runFleetSetRate(c *cli.Context) error {
	if c.NArg() > 1 {
		return usagef("unexpected argument %q", c.Args().Get(1))
	}
	asJSON, err := jsonOutput(c)
	if err != nil {
		return err
	}
	var rate float64
	if c.NArg() == 1 {
		rate, err = strconv.ParseFloat(c.Args().First(), 64)
		if err != nil || rate <= 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
			return usagef("launch rate %q: want a positive number of instances per second", c.Args().First())
		}
	}
	opts, err := clientOptions(c)
	if err != nil {
		return err
	}
	cl, err := dial(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	if rate > 0 {
		if err := worker.SetLaunchRate(c.Context, cl, opts.Namespace, rate, "gust fleet set-rate"); err != nil {
			return failed(oneLine(err.Error()))
		}
	}
	cur, err := worker.CurrentLaunchRate(c.Context, cl, opts.Namespace)
	if err != nil {
		return failed(oneLine(err.Error()))
	}
	if asJSON {
		return printJSON(c.App.Writer, struct {
			worker.LaunchRate
			TaskQueue string `json:"task_queue"`
		}{cur, workflows.LaunchTaskQueue})
	}
	fmt.Fprintln(c.App.Writer, launchRateLine(cur))
	return nil
}

// launchRateLine says the rate in effect in one line, as fleet list and
// set-rate print it.
func launchRateLine(r worker.LaunchRate) string {
	switch r.Source {
	case worker.LaunchRateSet:
		return fmt.Sprintf("Launch rate: %g instances/s for every worker (set on task queue %s)", r.Rate, workflows.LaunchTaskQueue)
	case worker.LaunchRateWorker:
		return fmt.Sprintf("Launch rate: %g instances/s, asked for by the workers polling %s (not set on the queue: gust fleet set-rate sets it)", r.Rate, workflows.LaunchTaskQueue)
	}
	return fmt.Sprintf("Launch rate: not set on task queue %s (gust fleet set-rate sets it)", workflows.LaunchTaskQueue)
}
