package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

// startServer starts an in-memory embedded Temporal server and a client.
func startServer(t *testing.T) (*devserver.Server, client.Client) {
	t.Helper()
	s, err := devserver.Start(devserver.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	c := dialServer(t, s)
	t.Cleanup(c.Close)
	return s, c
}

// startCloud starts a local cloud on a free port with its state in a
// temporary directory.
func startCloud(t *testing.T, mod func(*localcloud.Config)) *localcloud.Server {
	t.Helper()
	cfg := localcloud.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := localcloud.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startGustWorker runs gust's real worker in-process, its providers talking
// HTTP to the cloud at endpoint.
func startGustWorker(t *testing.T, c client.Client, endpoint string, launchRate float64) *worker.Workers {
	t.Helper()
	ctx := context.Background()
	compute, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: endpoint})
	require.NoError(t, err)
	functions, err := lambdaprovider.NewFromConfig(ctx, lambdaprovider.Options{Endpoint: endpoint})
	require.NoError(t, err)
	w, err := worker.New(c, worker.Options{Compute: compute, Functions: functions, LaunchRate: launchRate})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

func runFleet(ctx context.Context, t *testing.T, c client.Client, in workflows.LaunchFleetInput) workflows.FleetResult {
	t.Helper()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
	require.NoError(t, err)
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// fleetInstances lists the fleet's live (pending or running) instances by
// its tag, straight from the cloud: the ground truth for duplicates and
// leaks.
func fleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	t.Helper()
	p, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: endpoint})
	require.NoError(t, err)
	got, err := p.Describe(ctx, providers.InstanceFilter{
		Tags:   map[string]string{providers.FleetTagKey: fleetID},
		States: []string{providers.StatePending, providers.StateRunning},
	})
	require.NoError(t, err)
	return got
}

// allFleetInstances lists every instance with the fleet's tag, terminated
// ones included.
func allFleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	t.Helper()
	p, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: endpoint})
	require.NoError(t, err)
	got, err := p.Describe(ctx, providers.InstanceFilter{Tags: map[string]string{providers.FleetTagKey: fleetID}})
	require.NoError(t, err)
	return got
}

var (
	gustBinOnce sync.Once
	gustBinPath string
	gustBinErr  error
)

// gustBinary builds the gust command once per test run.
func gustBinary(t *testing.T) string {
	t.Helper()
	gustBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gust-bin-")
		if err != nil {
			gustBinErr = err
			return
		}
		gustBinPath = filepath.Join(dir, "gust")
		cmd := exec.Command("go", "build", "-o", gustBinPath, "../starter")
		out, err := cmd.CombinedOutput()
		if err != nil {
			gustBinErr = &buildError{out: string(out), err: err}
		}
	})
	require.NoError(t, gustBinErr)
	return gustBinPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, timeout, 20*time.Millisecond, what)
}
