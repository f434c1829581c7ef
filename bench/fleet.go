package bench

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
)

// FleetOptions configure Fleet. The caller validates them: Min and Target
// a valid fleet, Large between 0 and workflows.MaxFleetSize, rates
// positive.
type FleetOptions struct {
	// Out receives the report; Progress what runs, when JSON is set.
	Out, Progress io.Writer
	// JSON reports as one JSON object (--output json).
	JSON bool
	// Min and Target are the burst comparison's fleet, launched at
	// LaunchRate with the cloud's boot delay Boot.
	Min, Target int
	LaunchRate  float64
	Boot        time.Duration
	// Large is the size of the large fleet, launched at LargeLaunchRate;
	// 0 skips it.
	Large           int
	LargeLaunchRate float64
}

type fleetRun struct {
	name   string
	res    workflows.FleetResult
	wall   time.Duration
	events int
}

// benchFleetResult is the JSON form of `gust bench fleet`.
type benchFleetResult struct {
	Min        int     `json:"min"`
	Target     int     `json:"target"`
	LaunchRate float64 `json:"launch_rate_per_s"`
	BootMS     int64   `json:"boot_ms"`
	// Runs are the burst and no-burst fleets, then the large one unless it
	// was skipped.
	Runs []benchFleetRun `json:"runs"`
	// The no-burst run's times over the burst run's: how much the burst
	// saves.
	TimeToMinRatio    float64 `json:"time_to_min_ratio"`
	TimeToTargetRatio float64 `json:"time_to_target_ratio"`
	// LargeLaunchRate is the large fleet's launch rate, 0 when it was
	// skipped; PeakRSSBytes the whole process's peak memory (server, cloud
	// and worker), 0 where the system does not say.
	LargeLaunchRate float64 `json:"large_launch_rate_per_s"`
	PeakRSSBytes    int64   `json:"peak_rss_bytes"`
}

// benchFleetRun is one measured fleet.
type benchFleetRun struct {
	Name           string `json:"name"` // burst, no-burst or large
	Min            int    `json:"min"`
	Target         int    `json:"target"`
	TimeToMinMS    int64  `json:"time_to_min_ms"`
	TimeToTargetMS int64  `json:"time_to_target_ms"`
	WallMS         int64  `json:"wall_ms"`
	Runs           int    `json:"runs"`
	HistoryEvents  int    `json:"history_events"` // of the last run
}

func (r fleetRun) json() benchFleetRun {
	return benchFleetRun{
		Name: r.name, Min: r.res.Min, Target: r.res.Target,
		TimeToMinMS: r.res.TimeToMinMS, TimeToTargetMS: r.res.TimeToTargetMS,
		WallMS: r.wall.Milliseconds(), Runs: r.res.Runs, HistoryEvents: r.events,
	}
}

// Fleet runs the same fleet twice on one embedded platform, once with the
// burst and once without, and reports time to min, time to target and
// their ratios; then, unless opts.Large is 0, a large fleet on a fresh
// platform, with its time, history events per run and the process's peak
// memory. The local cloud's EC2 throttles are lifted, so that the
// platform's own launch rate limiter is what the comparison measures.
func Fleet(ctx context.Context, opts FleetOptions) error {
	minN, target, large := opts.Min, opts.Target, opts.Large
	// In JSON mode the report is one object at the end; the lines that say
	// what runs go to Progress.
	out := opts.Out
	if opts.JSON {
		out = opts.Progress
		if out == nil {
			out = io.Discard
		}
	}
	res := benchFleetResult{Min: minN, Target: target, LaunchRate: opts.LaunchRate, BootMS: opts.Boot.Milliseconds(), Runs: []benchFleetRun{}}

	cloud := localcloud.Config{
		Capacity:  []ec2.Pool{{InstanceType: "m5.large", Initial: 2*target + 10}},
		BootDelay: opts.Boot,
		EC2:       ec2.Config{RequestBucket: -1, ResourceBucket: -1},
	}
	fmt.Fprintf(out, "burst vs no-burst: min %d, target %d, launch rate %g/s, boot %v\n", minN, target, opts.LaunchRate, opts.Boot)
	runs, err := withPlatform(ctx, cloud, opts.LaunchRate, func(cl client.Client) ([]fleetRun, error) {
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
	res.TimeToMinRatio = float64(nb.TimeToMinMS) / float64(max(b.TimeToMinMS, 1))
	res.TimeToTargetRatio = float64(nb.TimeToTargetMS) / float64(max(b.TimeToTargetMS, 1))
	for _, r := range runs {
		res.Runs = append(res.Runs, r.json())
	}
	fmt.Fprintf(out, "time to min:    no-burst / burst = %.1fx (burst goal: under boot %v + 1s)\n", res.TimeToMinRatio, opts.Boot)
	fmt.Fprintf(out, "time to target: no-burst / burst = %.2fx\n\n", res.TimeToTargetRatio)

	if large == 0 {
		return report(opts, res)
	}
	largeMin := min(1000, large)
	fmt.Fprintf(out, "large fleet: min %d, target %d, launch rate %g/s\n", largeMin, large, opts.LargeLaunchRate)
	cloud = localcloud.Config{
		Capacity:  []ec2.Pool{{InstanceType: "m5.large", Initial: large + 10}},
		BootDelay: opts.Boot,
		EC2:       ec2.Config{RequestBucket: -1, ResourceBucket: -1},
	}
	runs, err = withPlatform(ctx, cloud, opts.LargeLaunchRate, func(cl client.Client) ([]fleetRun, error) {
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
	res.Runs = append(res.Runs, runs[0].json())
	res.LargeLaunchRate = opts.LargeLaunchRate
	fmt.Fprintf(out, "peak memory (whole process: server, cloud, worker): %s\n", mib(peakRSS()))
	return report(opts, res)
}

// report writes res as JSON when opts.JSON asks for it; the text report
// is already written.
func report(opts FleetOptions, res benchFleetResult) error {
	if !opts.JSON {
		return nil
	}
	res.PeakRSSBytes = peakRSS()
	return writeJSON(opts.Out, res)
}

// withPlatform runs fn against a fresh in-memory platform.
func withPlatform(ctx context.Context, cloud localcloud.Config, launchRate float64, fn func(client.Client) ([]fleetRun, error)) ([]fleetRun, error) {
	p, err := platform.Start(ctx, platform.Config{IP: "127.0.0.1", UIPort: 0, Cloud: cloud, LaunchRate: launchRate, Logger: discardLogger()})
	if err != nil {
		return nil, err
	}
	defer p.Shutdown()
	return fn(p.Client())
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
