package itest

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/tenants"
)

// Compute is the default tenant's EC2 in p's cloud, through the same
// provider and role the worker uses, over HTTP.
func Compute(ctx context.Context, t testing.TB, p *platform.Platform) providers.Compute {
	t.Helper()
	return ComputeAt(ctx, t, p.Cloud().Endpoint(), Static(p.PlatformCredentials()))
}

// ComputeAt is the default tenant's EC2 in the cloud at endpoint, as the
// platform principal (platformKey) acting through the tenant's role: the
// same provider and role the worker uses, over HTTP.
func ComputeAt(ctx context.Context, t testing.TB, endpoint string, platformKey aws.CredentialsProvider) providers.Compute {
	t.Helper()
	accounts, err := ec2provider.NewAccountsFromConfig(ctx, ec2provider.Options{
		Endpoint:       endpoint,
		Credentials:    platformKey,
		Roles:          platform.WorkerConfig{Endpoint: endpoint}.RoleARN,
		DefaultImageID: ec2provider.LocalCloudImageID,
	})
	require.NoError(t, err)
	c, err := accounts.Compute(ctx, tenants.DefaultTenant)
	require.NoError(t, err)
	return c
}

// Describe lists the instances f selects, straight from the cloud: the
// ground truth for duplicates and leaks. The test's calls share the
// account's request bucket with the worker's, so a throttled call is
// waited out; a connection dropped before an answer (Docker's port proxy
// drops some under load) is tried again, up to five times. An answer of
// the cloud is never retried away: any other error fails the test.
func Describe(ctx context.Context, t testing.TB, c providers.Compute, f providers.InstanceFilter) []providers.Instance {
	t.Helper()
	for transport := 0; ; {
		got, err := c.Describe(ctx, f)
		switch {
		case err == nil:
			return got
		case ctx.Err() != nil:
		case providers.IsThrottled(err):
			time.Sleep(250 * time.Millisecond)
			continue
		case isTransport(err) && transport < 5:
			transport++
			t.Logf("describing instances: %v; again", err)
			time.Sleep(time.Second)
			continue
		}
		require.NoError(t, err)
		return got
	}
}

// FleetInstances lists the fleet's instances by its tag, straight from the
// cloud (see Describe). states selects by state (all when empty).
func FleetInstances(ctx context.Context, t testing.TB, c providers.Compute, fleetID string, states ...string) []providers.Instance {
	t.Helper()
	return Describe(ctx, t, c, providers.InstanceFilter{Tags: map[string]string{providers.FleetTagKey: fleetID}, States: states})
}

// LiveInstances lists the fleet's live (pending or running) instances by
// its tag (see FleetInstances).
func LiveInstances(ctx context.Context, t testing.TB, c providers.Compute, fleetID string) []providers.Instance {
	t.Helper()
	return FleetInstances(ctx, t, c, fleetID, providers.StatePending, providers.StateRunning)
}

// IDs are the instances' ids, in order.
func IDs(in []providers.Instance) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.ID
	}
	return out
}

// RequireUnique fails the test if an instance id appears twice in ids: a
// duplicate launch.
func RequireUnique(t testing.TB, ids []string) {
	t.Helper()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		require.False(t, seen[id], "instance %s appears twice", id)
		seen[id] = true
	}
}

// isTransport reports an error of the connection, not an answer of the
// cloud.
func isTransport(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "use of closed network connection")
}
