package topology

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/localstack"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/workflows"
)

// The container tests run against a Docker engine with no registry behind
// it: no image can be pulled, and the engine may start with none. So every
// image they use is built here, FROM scratch, out of static binaries the
// test builds itself (images/gust and images/temporal), and testcontainers'
// reaper, an image it would pull, is turned off: each test removes what it
// started, and TestMain the images.
var (
	publicTemporalImage   = envOr("GUST_TEMPORAL_IMAGE", "temporalio/temporal:1.5.1")
	publicLocalstackImage = envOr("GUST_LOCALSTACK_IMAGE", "localstack/localstack:4.4")
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// requirePublicImages skips unless GUST_PUBLIC_IMAGES=1 asks for the tests
// against public images and a Docker engine has every image already: they
// must never try to pull on a machine without a registry. The topology
// tests (topology_test.go) cover the same ground with images built here;
// LocalStack cannot be built here, so its test runs only on request.
func requirePublicImages(t *testing.T, images ...string) {
	t.Helper()
	if os.Getenv("GUST_PUBLIC_IMAGES") != "1" {
		t.Skipf("skipping: set GUST_PUBLIC_IMAGES=1 to run against the public images %s; they cannot be pulled here (no registry), and LocalStack cannot be built here", strings.Join(images, ", "))
	}
	requireDocker(t)
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	require.NoError(t, err)
	defer cli.Close()
	for _, img := range images {
		if _, err := cli.ImageInspect(context.Background(), img); err != nil {
			t.Skipf("skipping: image %s is not present locally (%v); load it to run this test", img, err)
		}
	}
}

// TestWorkerAgainstTemporalContainer runs gust's worker against the public
// Temporal image: the `gust worker` scale-out path. Opt-in
// (GUST_PUBLIC_IMAGES=1).
func TestWorkerAgainstTemporalContainer(t *testing.T) {
	requirePublicImages(t, publicTemporalImage)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ctr, err := testcontainers.Run(ctx, publicTemporalImage,
		testcontainers.WithCmd("server", "start-dev", "--ip", "0.0.0.0", "--headless"),
		testcontainers.WithExposedPorts("7233/tcp"),
		testcontainers.WithWaitStrategy(wait.ForListeningPort("7233/tcp").WithStartupTimeout(2*time.Minute)),
	)
	testcontainers.CleanupContainer(t, ctr)
	require.NoError(t, err)
	addr, err := ctr.PortEndpoint(ctx, "7233/tcp", "")
	require.NoError(t, err)

	cloud := itest.StartCloud(t, nil, tenants.DefaultTenant)
	key := itest.Static(itest.PlatformKey(t, cloud))
	c, err := client.Dial(client.Options{HostPort: addr, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	itest.StartWorker(t, c, cloud.Endpoint(), 50, key)

	res := itest.RunFleet(ctx, t, c, workflows.LaunchFleetInput{
		FleetID: "container-fleet", InstanceType: "m5.large", Min: 3, Target: 5, Burst: true,
	})
	require.Equal(t, workflows.PhaseFulfilled, res.State)
	require.Len(t, itest.LiveInstances(ctx, t, itest.ComputeAt(ctx, t, cloud.Endpoint(), key), "container-fleet"), 5)
}

// TestEC2ProviderAgainstLocalStack runs the same provider code against
// LocalStack's EC2 API that the fleet uses against the local cloud.
// Opt-in (GUST_PUBLIC_IMAGES=1).
func TestEC2ProviderAgainstLocalStack(t *testing.T) {
	requirePublicImages(t, publicLocalstackImage)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ls, err := localstack.Run(ctx, publicLocalstackImage)
	testcontainers.CleanupContainer(t, ls)
	require.NoError(t, err)
	endpoint, err := ls.PortEndpoint(ctx, "4566/tcp", "http")
	require.NoError(t, err)

	p, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: endpoint, Region: "us-east-1"})
	require.NoError(t, err)
	tags := map[string]string{providers.FleetTagKey: "ls-fleet"}
	got, err := p.Run(ctx, providers.RunInput{
		InstanceType: "t3.micro", ImageID: "ami-ff0fea8310f3", MinCount: 2, MaxCount: 2,
		ClientToken: "ls-fleet-burst-0", Tags: tags,
	})
	require.NoError(t, err)
	require.Len(t, got, 2)
	// The same token again must not launch more.
	again, err := p.Run(ctx, providers.RunInput{
		InstanceType: "t3.micro", ImageID: "ami-ff0fea8310f3", MinCount: 2, MaxCount: 2,
		ClientToken: "ls-fleet-burst-0", Tags: tags,
	})
	require.NoError(t, err)
	require.ElementsMatch(t, itest.IDs(got), itest.IDs(again))
	live, err := p.Describe(ctx, providers.InstanceFilter{Tags: tags, States: []string{providers.StatePending, providers.StateRunning}})
	require.NoError(t, err)
	require.Len(t, live, 2)
	require.NoError(t, p.Terminate(ctx, itest.IDs(got)))
}
