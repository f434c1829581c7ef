package integration

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/worker"
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
	s := itest.StartCloud(t, mod, cloudTenants...)
	platformKeys.Store(s.Endpoint(), itest.PlatformKey(t, s))
	return s
}

// platformCredentials is the platform key of the cloud at endpoint: one
// startCloud started, or else a `gust dev` of the tests, which writes it to
// <state-dir>/platform-credentials (the tests' gust devs use the default
// state directory, .gust).
func platformCredentials(t *testing.T, endpoint string) aws.CredentialsProvider {
	t.Helper()
	if v, ok := platformKeys.Load(endpoint); ok {
		return itest.Static(v.(tenants.Credentials))
	}
	key, err := itest.ReadPlatformKey(".gust")
	require.NoError(t, err, "no platform key for the cloud at %s", endpoint)
	return itest.Static(key)
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
// (itest.StartPlatform): an in-memory server, the local cloud over HTTP on
// a free port, the gateway, the codec key, and gust's real worker at
// launchRate, with cloudTenants registered.
func startPlatform(t *testing.T, launchRate float64) *platform.Platform {
	t.Helper()
	p := itest.StartPlatform(t, func(cfg *platform.Config) { cfg.LaunchRate = launchRate })
	for _, name := range cloudTenants {
		_, err := p.EnsureTenant(context.Background(), name)
		require.NoError(t, err)
	}
	platformKeys.Store(p.Cloud().Endpoint(), p.PlatformCredentials())
	return p
}

// startGustWorker runs gust's real worker in-process (itest.StartWorker)
// against the cloud at endpoint, with its platform key.
func startGustWorker(t *testing.T, c client.Client, endpoint string, launchRate float64) *worker.Workers {
	t.Helper()
	return itest.StartWorker(t, c, endpoint, launchRate, platformCredentials(t, endpoint))
}

// tenantCompute is the default tenant's EC2 in the cloud at endpoint: an
// in-process cloud of startCloud, or a `gust dev` whose state directory
// holds the registry.
func tenantCompute(ctx context.Context, t *testing.T, endpoint string) providers.Compute {
	t.Helper()
	return itest.ComputeAt(ctx, t, endpoint, platformCredentials(t, endpoint))
}

// fleetInstances lists the fleet's live (pending or running) instances by
// its tag, straight from the cloud at endpoint: the ground truth for
// duplicates and leaks.
func fleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	t.Helper()
	return itest.LiveInstances(ctx, t, tenantCompute(ctx, t, endpoint), fleetID)
}

// allFleetInstances lists every instance with the fleet's tag, terminated
// ones included.
func allFleetInstances(ctx context.Context, t *testing.T, endpoint, fleetID string) []providers.Instance {
	t.Helper()
	return itest.FleetInstances(ctx, t, tenantCompute(ctx, t, endpoint), fleetID)
}
