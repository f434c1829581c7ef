package fleets

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
)

// The benchmarks of fleets of offerings, each comparing its cases in one
// run (ratios, not absolute times: the machine is shared). Run them with
//
//	go test ./integration/fleets/ -run '^$' -bench . -benchtime 1x -timeout 60m
//
// and record the results in docs/benchmarks.md.

// fleetTimes launches the fleets together on p and waits until each is
// fulfilled (a maintained fleet does not complete; with OnLostFail it
// does), then cancels them. It returns each fleet's time to min and the
// wall time of the whole batch.
func fleetTimes(b *testing.B, p *platform.Platform, fleets []workflows.LaunchFleetInput) (toMin []float64, wall time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := p.Client()
	start := time.Now()
	runs := make([]client.WorkflowRun, len(fleets))
	for i, in := range fleets {
		var err error
		runs[i], err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, run := range runs {
		var res workflows.FleetResult
		if err := run.Get(ctx, &res); err != nil {
			b.Fatal(err)
		}
		if res.State != workflows.PhaseFulfilled {
			b.Fatalf("fleet %s: %s %s", res.FleetID, res.State, res.Message)
		}
		toMin = append(toMin, float64(res.TimeToMinMS)/1000)
	}
	wall = time.Since(start)
	slices.Sort(toMin)
	return toMin, wall
}

// BenchmarkFallback: a fleet of 40 to 100, prioritized. "room": its first
// offering has room for everything. "fallback": the first has no capacity
// (it trickles in at 2 a second) and a second offering has room; the
// fleet reserves, bursts and fills on the second at once. "no-fallback":
// the first offering alone, holding the minimum and then trickling in at 2
// a second: the fill waits on it with backoff, as every fleet did before
// offerings. The goal: time to min with fallback within 1 s of
// "room"; time to target shows what the fallback saves.
func BenchmarkFallback(b *testing.B) {
	cases := []struct {
		name  string
		pools []ec2.Pool
		offer []workflows.Offering
	}{
		{"room", []ec2.Pool{{InstanceType: "m5.large", Initial: 1000}, {InstanceType: "c5.large", Initial: 1000}},
			[]workflows.Offering{{InstanceType: "m5.large"}, {InstanceType: "c5.large"}}},
		{"fallback", []ec2.Pool{{InstanceType: "m5.large", Initial: 0, RatePerSec: 2}, {InstanceType: "c5.large", Initial: 1000}},
			[]workflows.Offering{{InstanceType: "m5.large"}, {InstanceType: "c5.large"}}},
		{"no-fallback", []ec2.Pool{{InstanceType: "m5.large", Initial: 40, RatePerSec: 2}},
			[]workflows.Offering{{InstanceType: "m5.large"}}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				p := itest.StartPlatform(b, func(c *platform.Config) {
					c.LaunchRate = 100
					c.Cloud.Capacity = tc.pools
					c.Cloud.BootDelay = 100 * time.Millisecond
					// EC2's request throttle (2 calls a second) would
					// bound every case's fill alike; lifted, the fill
					// shows what the fallback saves.
					c.Cloud.EC2.RequestBucket = -1
				})
				in := workflows.LaunchFleetInput{FleetID: "fallback", InstanceType: tc.offer[0].InstanceType, Offerings: tc.offer,
					Min: 40, Target: 100, Burst: true, OnLost: workflows.OnLostFail}
				b.ResetTimer()
				ctx := context.Background()
				run, err := p.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
				if err != nil {
					b.Fatal(err)
				}
				var res workflows.FleetResult
				if err := run.Get(ctx, &res); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if res.State != workflows.PhaseFulfilled {
					b.Fatalf("%s: %s", res.State, res.Message)
				}
				b.ReportMetric(float64(res.TimeToMinMS)/1000, "time-to-min-s")
				b.ReportMetric(float64(res.TimeToTargetMS)/1000, "time-to-target-s")
			}
		})
	}
}

// BenchmarkConcurrentFleets launches 1, 10 and 100 fleets of 20 to 40
// together, with instance events and with polling, and reports the p50
// and worst time to min, the batch's wall time and the process's CPU time
// per fleet. The goals: with
// events, 100 fleets' p50 time to min within 2x of one fleet's, and wall
// time growing at most linearly with the number of fleets.
func BenchmarkConcurrentFleets(b *testing.B) {
	for _, events := range []bool{true, false} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("events=%v/fleets=%d", events, n), func(b *testing.B) {
				for range b.N {
					p := itest.StartPlatform(b, func(c *platform.Config) {
						c.NoEvents = !events
						c.LaunchRate = 1000
						c.Cloud.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 10000}}
						c.Cloud.BootDelay = 500 * time.Millisecond
						// EC2's request, resource and describe throttles
						// are per account, and these fleets share one:
						// lifted, so that what is compared is gust's
						// polling or events, not the cloud's rate limits.
						c.Cloud.EC2.RequestBucket, c.Cloud.EC2.ResourceBucket, c.Cloud.EC2.DescribeBucket = -1, -1, -1
					})
					var fleets []workflows.LaunchFleetInput
					for i := range n {
						fleets = append(fleets, workflows.LaunchFleetInput{
							FleetID: fmt.Sprintf("f-%03d", i), InstanceType: "m5.large",
							Min: 20, Target: 20 + i%21, Burst: true, OnLost: workflows.OnLostFail,
						})
					}
					b.ResetTimer()
					cpu := processCPU(b)
					toMin, wall := fleetTimes(b, p, fleets)
					cpu = processCPU(b) - cpu
					b.StopTimer()
					b.ReportMetric(toMin[len(toMin)/2], "p50-time-to-min-s")
					b.ReportMetric(toMin[len(toMin)-1], "max-time-to-min-s")
					b.ReportMetric(wall.Seconds(), "wall-s")
					// The work per fleet, which the latencies follow once the
					// cores are busy, and which a noisy shared machine
					// disturbs less than it does the latencies.
					b.ReportMetric(cpu.Seconds()*1000/float64(n), "cpu-ms/fleet")
				}
			})
		}
	}
}

// processCPU is the CPU time the test process (the server, the cloud and
// the worker alike) has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTenThousandUnits launches one fleet of 5,000 to 10,000 units
// over four offerings (weights 1, 2, 4 and 8, each with room for a
// quarter of the target), with EC2's throttles off so that the time is
// gust's and the cloud's, not the rate limits'.
func BenchmarkTenThousandUnits(b *testing.B) {
	for range b.N {
		p := itest.StartPlatform(b, func(c *platform.Config) {
			c.LaunchRate = 1000
			c.Cloud.Capacity = []ec2.Pool{
				{InstanceType: "m5.large", Initial: 2500}, {InstanceType: "m5.xlarge", Initial: 1250},
				{InstanceType: "m5.2xlarge", Initial: 625}, {InstanceType: "m5.4xlarge", Initial: 313},
			}
			c.Cloud.BootDelay = time.Second
			c.Cloud.EC2.RequestBucket, c.Cloud.EC2.ResourceBucket = -1, -1
		})
		in := workflows.LaunchFleetInput{FleetID: "ten-thousand", InstanceType: "m5.large",
			Offerings: []workflows.Offering{{InstanceType: "m5.large"}, {InstanceType: "m5.xlarge", Weight: 2},
				{InstanceType: "m5.2xlarge", Weight: 4}, {InstanceType: "m5.4xlarge", Weight: 8}},
			Min: 5000, Target: 10000, Burst: true, OnLost: workflows.OnLostFail}
		b.ResetTimer()
		toMin, wall := fleetTimes(b, p, []workflows.LaunchFleetInput{in})
		b.StopTimer()
		b.ReportMetric(toMin[0], "time-to-min-s")
		b.ReportMetric(wall.Seconds(), "time-to-target-s")
	}
}
