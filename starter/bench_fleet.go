package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/workflows"
)

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
		},
		Action: runBenchFleet,
	}
}

type fleetRun struct {
	name   string
	res    workflows.FleetResult
	wall   time.Duration
	events int
}

func runBenchFleet(c *cli.Context) error {
	if err := noArgs(c); err != nil {
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
	ctx := c.Context
	out := c.App.Writer

	cloud := localcloud.Config{
		Capacity:  []ec2.Pool{{InstanceType: "m5.large", Initial: 2*target + 10}},
		BootDelay: c.Duration("boot"),
		EC2:       ec2.Config{RequestBucket: -1, ResourceBucket: -1},
	}
	fmt.Fprintf(out, "burst vs no-burst: min %d, target %d, launch rate %g/s, boot %v\n", minN, target, c.Float64("launch-rate"), c.Duration("boot"))
	runs, err := withPlatform(ctx, cloud, c.Float64("launch-rate"), func(cl client.Client) ([]fleetRun, error) {
		var runs []fleetRun
		for _, burst := range []bool{true, false} {
			name := "burst"
			if !burst {
				name = "no-burst"
			}
			r, err := benchOneFleet(ctx, cl, workflows.LaunchFleetInput{
				FleetID: "bench-" + name, InstanceType: "m5.large", Min: minN, Target: target, Burst: burst,
			})
			if err != nil {
				return nil, err
			}
			r.name = name
			runs = append(runs, r)
		}
		return runs, nil
	})
	if err != nil {
		return err
	}
	printFleetRuns(out, runs)
	b, nb := runs[0].res, runs[1].res
	fmt.Fprintf(out, "time to min:    no-burst / burst = %.1fx (burst goal: under boot %v + 1s)\n",
		float64(nb.TimeToMinMS)/float64(max(b.TimeToMinMS, 1)), c.Duration("boot"))
	fmt.Fprintf(out, "time to target: no-burst / burst = %.2fx\n\n", float64(nb.TimeToTargetMS)/float64(max(b.TimeToTargetMS, 1)))

	if large == 0 {
		return nil
	}
	largeMin := min(1000, large)
	fmt.Fprintf(out, "large fleet: min %d, target %d, launch rate %g/s\n", largeMin, large, c.Float64("large-launch-rate"))
	cloud = localcloud.Config{
		Capacity:  []ec2.Pool{{InstanceType: "m5.large", Initial: large + 10}},
		BootDelay: c.Duration("boot"),
		EC2:       ec2.Config{RequestBucket: -1, ResourceBucket: -1},
	}
	runs, err = withPlatform(ctx, cloud, c.Float64("large-launch-rate"), func(cl client.Client) ([]fleetRun, error) {
		r, err := benchOneFleet(ctx, cl, workflows.LaunchFleetInput{
			FleetID: "bench-large", InstanceType: "m5.large", Min: largeMin, Target: large, Burst: true,
		})
		r.name = "large"
		return []fleetRun{r}, err
	})
	if err != nil {
		return err
	}
	printFleetRuns(out, runs)
	fmt.Fprintf(out, "peak memory (whole process: server, cloud, worker): %s\n", mib(peakRSS()))
	return nil
}

// withPlatform runs fn against a fresh in-memory platform.
func withPlatform(ctx context.Context, cloud localcloud.Config, launchRate float64, fn func(client.Client) ([]fleetRun, error)) ([]fleetRun, error) {
	p, err := startPlatform(ctx, platformConfig{IP: "127.0.0.1", UIPort: 0, Cloud: cloud, LaunchRate: launchRate, Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	defer shutdown(p)
	return fn(p.client)
}

func benchOneFleet(ctx context.Context, cl client.Client, in workflows.LaunchFleetInput) (fleetRun, error) {
	start := time.Now()
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
	if err != nil {
		return fleetRun{}, err
	}
	var res workflows.FleetResult
	if err := run.Get(ctx, &res); err != nil {
		return fleetRun{}, fmt.Errorf("fleet %s: %w", in.FleetID, err)
	}
	if res.State != workflows.PhaseFulfilled {
		return fleetRun{}, fmt.Errorf("fleet %s ended %s: %s", in.FleetID, res.State, res.Message)
	}
	return fleetRun{res: res, wall: time.Since(start), events: res.HistoryEvents}, nil
}

func printFleetRuns(out io.Writer, runs []fleetRun) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "run\tmin\ttarget\ttime to min\ttime to target\twall\truns\thistory events (last run)\t")
	for _, r := range runs {
		fmt.Fprintf(w, "%s\t%d\t%d\t%v\t%v\t%v\t%d\t%d\t\n", r.name, r.res.Min, r.res.Target,
			msDuration(r.res.TimeToMinMS), msDuration(r.res.TimeToTargetMS), r.wall.Round(time.Millisecond), r.res.Runs, r.events)
	}
	_ = w.Flush()
}
