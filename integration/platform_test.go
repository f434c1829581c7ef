package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
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

// cloudTenants are the tenants startCloud and startPlatform register: the
// default one, and those the tests deploy functions for.
var cloudTenants = []string{tenants.DefaultTenant, "acme", "globex"}

// platformKeys holds the platform principal's key of each in-process
// cloud, by endpoint: gust's worker acts for a tenant by assuming the
// tenant's role with it.
var platformKeys sync.Map // endpoint -> tenants.Credentials

// startCloud starts a local cloud on a free port with its state in a
// temporary directory, and registers cloudTenants.
func startCloud(t *testing.T, mod func(*localcloud.Config)) *localcloud.Server {
	t.Helper()
	cfg := localcloud.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := localcloud.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	for _, name := range cloudTenants {
		_, err := s.Registry().Create(ctx, name)
		require.NoError(t, err)
	}
	key, err := s.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	platformKeys.Store(s.Endpoint(), key)
	return s
}

// platformCredentials is the platform key of the cloud at endpoint: one
// startCloud started, or else a `gust dev` of the tests, which writes it to
// <state-dir>/platform-credentials (the tests' gust devs use the default
// state directory, .gust).
func platformCredentials(t *testing.T, endpoint string) aws.CredentialsProvider {
	t.Helper()
	if v, ok := platformKeys.Load(endpoint); ok {
		key := v.(tenants.Credentials)
		return credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")
	}
	sc, err := config.LoadSharedConfigProfile(context.Background(), "gust-platform", func(o *config.LoadSharedConfigOptions) {
		o.CredentialsFiles = []string{filepath.Join(".gust", "platform-credentials")}
		o.ConfigFiles = []string{}
	})
	require.NoError(t, err, "no platform key for the cloud at %s", endpoint)
	return credentials.NewStaticCredentialsProvider(sc.Credentials.AccessKeyID, sc.Credentials.SecretAccessKey, "")
}

// platformCredentialsFile writes the platform key of the cloud at endpoint
// to a shared-credentials file under profile gust-platform, for a worker
// process.
func platformCredentialsFile(t *testing.T, endpoint string) string {
	t.Helper()
	creds, err := platformCredentials(t, endpoint).Retrieve(context.Background())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "platform-credentials")
	body := "[gust-platform]\naws_access_key_id = " + creds.AccessKeyID + "\naws_secret_access_key = " + creds.SecretAccessKey + "\n"
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// startPlatform starts gust as `gust dev` runs it, inside the test process
// (platform.Start): an in-memory server, the local cloud over HTTP on a
// free port, the gateway, the codec key, and gust's real worker at
// launchRate, with cloudTenants registered.
func startPlatform(t *testing.T, launchRate float64) *platform.Platform {
	t.Helper()
	ctx := context.Background()
	p, err := platform.Start(ctx, platform.Config{IP: "127.0.0.1", LaunchRate: launchRate})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	for _, name := range cloudTenants {
		_, err := p.EnsureTenant(ctx, name)
		require.NoError(t, err)
	}
	platformKeys.Store(p.Cloud().Endpoint(), p.PlatformCredentials())
	return p
}

// startGustWorker runs gust's real worker in-process (platform.StartWorkers),
// its providers talking HTTP to the cloud at endpoint and acting for each
// tenant through its platform role, as `gust dev` runs it.
func startGustWorker(t *testing.T, c client.Client, endpoint string, launchRate float64) *worker.Workers {
	t.Helper()
	w, err := platform.StartWorkers(context.Background(), c, platform.WorkerConfig{
		Endpoint: endpoint, LaunchRate: launchRate, PlatformCredentials: platformCredentials(t, endpoint),
	})
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	return w
}

// tenantCompute is the default tenant's EC2 in the cloud at endpoint: an
// in-process cloud of startCloud, or a `gust dev` whose state directory
// holds the registry.
func tenantCompute(ctx context.Context, t *testing.T, endpoint string) providers.Compute {
	t.Helper()
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{Endpoint: endpoint,
		Credentials: platformCredentials(t, endpoint), Roles: platform.WorkerConfig{Endpoint: endpoint}.RoleARN, DefaultImageID: ec2provider.LocalCloudImageID})
	require.NoError(t, err)
	p, err := accounts.Compute(ctx, tenants.DefaultTenant)
	require.NoError(t, err)
	return p
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
	// The test's calls share the account's request bucket with the
	// worker's, so a throttled call is waited out, not a failure.
	c := tenantCompute(ctx, t, endpoint)
	for {
		got, err := c.Describe(ctx, providers.InstanceFilter{
			Tags:   map[string]string{providers.FleetTagKey: fleetID},
			States: []string{providers.StatePending, providers.StateRunning},
		})
		if providers.IsThrottled(err) && ctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		require.NoError(t, err)
		return got
	}
}

// allFleetInstances lists every instance with the fleet's tag, terminated
// ones included.
func allFleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	t.Helper()
	c := tenantCompute(ctx, t, endpoint)
	for {
		got, err := c.Describe(ctx, providers.InstanceFilter{Tags: map[string]string{providers.FleetTagKey: fleetID}})
		if providers.IsThrottled(err) && ctx.Err() == nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		require.NoError(t, err)
		return got
	}
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
		// Static, so the same binary runs on the host and in the gust
		// image (FROM scratch, no C library): one build serves both.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
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
