package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// BenchmarkFairFill launches 20 fleets of 10 to 30 through the launch rate
// limiter (no burst) a tenth of a second apart, with the launch queue's
// fair dispatch off (first come first served, as before) and on, in one
// run, and reports the spread of time to min and of each fleet's fill
// rate. Run it with:
//
//	go test ./integration/ -run '^$' -bench BenchmarkFairFill -benchtime 1x
func BenchmarkFairFill(b *testing.B) {
	for _, fair := range []bool{false, true} {
		b.Run(fmt.Sprintf("fairness=%v", fair), func(b *testing.B) {
			for range b.N {
				fairFillRound(b, fair)
			}
		})
	}
}

func fairFillRound(b *testing.B, fair bool) {
	const fleets, minimum, target, rate = 20, 10, 30, 20.0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := devserver.Start(devserver.Config{DynamicConfig: map[string]any{"matching.enableFairness": fair}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: "default", Logger: itest.QuietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cloud, err := localcloud.Start(localcloud.Config{StateDir: b.TempDir(),
		Capacity: []ec2.Pool{{InstanceType: "m5.large", Initial: fleets * target}},
		EC2:      ec2.Config{RequestBucket: -1, ResourceBucket: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer cloud.Close()
	if _, err := cloud.Registry().Create(ctx, tenants.DefaultTenant); err != nil {
		b.Fatal(err)
	}
	key, err := cloud.Registry().PlatformCredentials(ctx)
	if err != nil {
		b.Fatal(err)
	}
	w, err := platform.StartWorkers(ctx, c, platform.WorkerConfig{
		Endpoint: cloud.Endpoint(), LaunchRate: rate,
		PlatformCredentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, ""),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	b.ResetTimer()
	runs := make([]client.WorkflowRun, fleets)
	for i := range runs {
		id := fmt.Sprintf("fair-%02d", i)
		runs[i], err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow,
			workflows.LaunchFleetInput{FleetID: id, InstanceType: "m5.large", Min: minimum, Target: target, Burst: false})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var toMin, fillRate []float64
	for _, run := range runs {
		var res workflows.FleetResult
		if err := run.Get(ctx, &res); err != nil {
			b.Fatal(err)
		}
		if res.State != workflows.PhaseFulfilled {
			b.Fatalf("fleet %s: %s %s", res.FleetID, res.State, res.Message)
		}
		toMin = append(toMin, float64(res.TimeToMinMS)/1000)
		fillRate = append(fillRate, float64(target)/(float64(res.TimeToTargetMS)/1000))
	}
	b.StopTimer()
	slices.Sort(toMin)
	slices.Sort(fillRate)
	b.ReportMetric(toMin[0], "min-time-to-min-s")
	b.ReportMetric(toMin[len(toMin)/2], "p50-time-to-min-s")
	b.ReportMetric(toMin[len(toMin)-1], "max-time-to-min-s")
	b.ReportMetric(fillRate[0], "slowest-fill-inst/s")
	b.ReportMetric(fillRate[len(fillRate)-1], "fastest-fill-inst/s")
}
