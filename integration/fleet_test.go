package integration

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/workflows"
)

func instanceIDs(t *testing.T, ctx context.Context, endpoint, fleetID string) []string {
	t.Helper()
	var out []string
	for _, in := range fleetInstances(ctx, t, endpoint, fleetID) {
		out = append(out, in.ID)
	}
	return out
}

// TestFleetBurstThenFillOverHTTP runs a whole fleet through the embedded
// server, gust's worker and the local cloud's EC2 API over HTTP.
func TestFleetBurstThenFillOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 60}}
		cfg.BootDelay = 300 * time.Millisecond
	})
	startGustWorker(t, c, cloud.Endpoint(), 40)

	res := itest.RunFleet(ctx, t, c, workflows.LaunchFleetInput{
		FleetID: "http-fleet", InstanceType: "m5.large", Min: 30, Target: 45, Burst: true,
	})
	require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)
	require.Equal(t, 30, res.BurstLaunched)
	require.Equal(t, 45, res.Running)
	require.Positive(t, res.TimeToMinMS)
	require.GreaterOrEqual(t, res.TimeToTargetMS, res.TimeToMinMS)

	ids := instanceIDs(t, ctx, cloud.Endpoint(), "http-fleet")
	require.Len(t, ids, 45, "the cloud must hold exactly the target")
	itest.RequireUnique(t, ids)
	require.ElementsMatch(t, ids, res.InstanceIDs)
	free, err := cloud.EC2().Free(ctx, "m5.large")
	require.NoError(t, err)
	require.Equal(t, 15, free, "the reservation's remainder must be released")
}

// TestFleetInsufficientCapacityLeavesNothing: under the fail policy a fleet
// whose minimum does not fit launches nothing and leaves no reservation.
func TestFleetInsufficientCapacityLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 5}}
	})
	startGustWorker(t, c, cloud.Endpoint(), 10)

	res := itest.RunFleet(ctx, t, c, workflows.LaunchFleetInput{
		FleetID: "too-big", InstanceType: "m5.large", Min: 10, Target: 20, Burst: true,
	})
	require.Equal(t, workflows.PhaseInsufficientCapacity, res.State)
	require.Empty(t, res.InstanceIDs)
	require.Empty(t, allFleetInstances(ctx, t, cloud.Endpoint(), "too-big"))
	free, err := cloud.EC2().Free(ctx, "m5.large")
	require.NoError(t, err)
	require.Equal(t, 5, free, "no capacity may stay held")
}

// TestFleetScaleDownThenCancel drives the messages of a filling fleet.
func TestFleetScaleDownThenCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		// Only the minimum is there at first; more trickles in slowly, so
		// the fleet stays in its fill loop while we talk to it.
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 8, RatePerSec: 1}}
	})
	startGustWorker(t, c, cloud.Endpoint(), 50)

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "scaled", TaskQueue: workflows.TaskQueue},
		workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{FleetID: "scaled", InstanceType: "m5.large", Min: 5, Target: 1000, Burst: true})
	require.NoError(t, err)
	itest.WaitFor(t, 30*time.Second, "fleet never reached its minimum", func() bool {
		return len(instanceIDs(t, ctx, cloud.Endpoint(), "scaled")) >= 8
	})

	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: "scaled", UpdateName: workflows.ScaleUpdate,
		Args: []any{workflows.ScaleInput{Target: 6}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	var scaled workflows.ScaleResult
	require.NoError(t, h.Get(ctx, &scaled))
	require.Equal(t, 6, scaled.Target)
	// Scale down terminates the extras; the fleet then reaches its new
	// target and completes.
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.PhaseFulfilled, res.State)
	require.Len(t, instanceIDs(t, ctx, cloud.Endpoint(), "scaled"), 6)

	// A second fleet is cancelled mid-fill: everything it launched goes.
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cancelled", TaskQueue: workflows.TaskQueue},
		workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{FleetID: "cancelled", InstanceType: "m5.large", Min: 2, Target: 1000, Burst: true})
	require.NoError(t, err)
	itest.WaitFor(t, 30*time.Second, "second fleet never launched", func() bool {
		return len(instanceIDs(t, ctx, cloud.Endpoint(), "cancelled")) >= 2
	})
	h, err = c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: "cancelled", UpdateName: workflows.CancelUpdate,
		Args: []any{workflows.CancelInput{}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	var cres workflows.CancelResult
	require.NoError(t, h.Get(ctx, &cres))
	require.GreaterOrEqual(t, cres.Terminated, 2)
	require.Empty(t, instanceIDs(t, ctx, cloud.Endpoint(), "cancelled"))
}

// gustWorkerProcess starts `gust worker` as a real OS process, with its
// metrics on metricsPort (0: off).
func gustWorkerProcess(t *testing.T, address, endpoint string, launchRate float64, metricsPort int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(itest.GustBinary(t), "worker", "--address", address, "--endpoint", endpoint,
		"--launch-rate", strconv.FormatFloat(launchRate, 'f', -1, 64), "--metrics-port", strconv.Itoa(metricsPort))
	// The worker is the platform principal: it finds the platform's key
	// through the standard chain, as `gust dev` prints for its own.
	cmd.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+platformCredentialsFile(t, endpoint), "AWS_PROFILE=gust-platform")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// TestFleetSurvivesWorkerKill kills the only worker with SIGKILL in the
// middle of the burst, starts another, and checks the cloud: the fleet
// reaches exactly its target, with no duplicate and no leaked instance.
func TestFleetSurvivesWorkerKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s, c := startServer(t)
	const fleetID, min, target = "kill9", 600, 650
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 2000}}
		// Make the kill land mid-burst: the request bucket lets two of the
		// six burst chunks through at once and the rest a few per second,
		// after throttled retries.
		cfg.EC2.RequestBucket = 2
		cfg.EC2.RequestRefill = 4
	})
	first := gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), 100, 0)

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fleetID, TaskQueue: workflows.TaskQueue},
		workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{
			FleetID: fleetID, InstanceType: "m5.large", Min: min, Target: target, Burst: true,
			Tuning: workflows.FleetTuning{BurstChunk: 100},
		})
	require.NoError(t, err)
	itest.WaitFor(t, time.Minute, "burst never started", func() bool {
		n := len(instanceIDs(t, ctx, cloud.Endpoint(), fleetID))
		return n > 0
	})
	launchedAtKill := len(instanceIDs(t, ctx, cloud.Endpoint(), fleetID))
	require.NoError(t, syscall.Kill(-first.Process.Pid, syscall.SIGKILL))
	_ = first.Wait()
	require.Less(t, launchedAtKill, min, "the kill must land mid-burst")

	gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), 100, 0)
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)

	live := instanceIDs(t, ctx, cloud.Endpoint(), fleetID)
	require.Len(t, live, target, "exactly the target, no duplicates")
	itest.RequireUnique(t, live)
	all := allFleetInstances(ctx, t, cloud.Endpoint(), fleetID)
	require.Len(t, all, target, "no instance launched and then lost or terminated")
}

// TestLaunchRateAcrossTwoWorkers: two worker processes, each configured with
// the same --launch-rate, together launch at that rate (within 20%), because
// the Temporal server enforces the rate on the shared task queue.
func TestLaunchRateAcrossTwoWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 1000}}
		cfg.EC2.RequestBucket = -1 // only gust's limiter should shape this run
		cfg.EC2.ResourceBucket = -1
	})
	const rate = 10.0
	metricsPort := itest.FreePort(t)
	gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), rate, metricsPort)
	gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), rate, 0)

	const fleetID, n = "rated", 150
	res := itest.RunFleet(ctx, t, c, workflows.LaunchFleetInput{
		FleetID: fleetID, InstanceType: "m5.large", Min: 1, Target: n, Burst: false,
	})
	require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)

	insts := fleetInstances(ctx, t, cloud.Endpoint(), fleetID)
	require.Len(t, insts, n)
	times := make([]time.Time, len(insts))
	for i, in := range insts {
		times[i] = in.LaunchTime
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	// Measure from the first launch batch to the last: the instances after
	// the first batch took this long.
	span := times[len(times)-1].Sub(times[0]).Seconds()
	firstBatch := 0
	for _, tm := range times {
		if tm.Sub(times[0]) < 50*time.Millisecond {
			firstBatch++
		}
	}
	observed := float64(n-firstBatch) / span
	t.Logf("launched %d instances in %.2fs after the first batch of %d: %.2f/s (configured %.0f/s)", n-firstBatch, span, firstBatch, observed, rate)
	require.InDelta(t, rate, observed, rate*0.2)

	// The first worker's Prometheus endpoint serves the SDK's metrics and
	// gust's own, counting the fill launches it ran.
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "temporal_activity_execution_latency")
	require.Regexp(t, `gust_fleet_instances_launched(_total)?\{[^}]*path="fill"[^}]*\} [1-9]`, string(body))
}
