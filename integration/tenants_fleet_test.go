package integration

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/providers"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/workflows"
)

// TestFleetsOfTwoTenantsAreApart runs a fleet "web" for the default tenant
// and one for acme through the embedded server, gust's worker (which
// assumes each tenant's platform role with the platform's key) and the
// local cloud: each fleet lands in its tenant's account, and each tenant,
// through the EC2 API with its own key, sees only its own instances.
func TestFleetsOfTwoTenantsAreApart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 40}}
		cfg.BootDelay = 100 * time.Millisecond
	})
	startGustWorker(t, c, cloud.Endpoint(), 50)

	fleets := map[string]workflows.LaunchFleetInput{
		"":     {FleetID: "web", InstanceType: "m5.large", Min: 3, Target: 5, Burst: true},
		"acme": {Tenant: "acme", FleetID: "web", InstanceType: "m5.large", Min: 2, Target: 4, Burst: true},
	}
	runs := map[string]client.WorkflowRun{}
	for tenant, in := range fleets {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.FleetWorkflowID(tenant, in.FleetID), TaskQueue: workflows.TaskQueue,
		}, workflows.LaunchFleetWorkflow, in)
		require.NoError(t, err, "two tenants may have a fleet of the same name")
		runs[tenant] = run
	}
	results := map[string]workflows.FleetResult{}
	for tenant, run := range runs {
		var res workflows.FleetResult
		require.NoError(t, run.Get(ctx, &res))
		require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)
		require.Equal(t, tenant, res.Tenant)
		results[tenant] = res
	}
	require.Len(t, results[""].InstanceIDs, 5)
	require.Len(t, results["acme"].InstanceIDs, 4)

	byTag := providers.InstanceFilter{Tags: map[string]string{providers.FleetTagKey: "web"}}
	for tenant, name := range map[string]string{"": "default", "acme": "acme"} {
		key, err := cloud.Registry().Credentials(ctx, name)
		require.NoError(t, err)
		own, err := ec2provider.NewFromConfig(ctx, ec2provider.Options{Endpoint: cloud.Endpoint(),
			Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")})
		require.NoError(t, err)
		got, err := own.Describe(ctx, byTag)
		require.NoError(t, err)
		require.ElementsMatch(t, results[tenant].InstanceIDs, itest.IDs(got), "tenant %s sees exactly its fleet", name)
		all, err := own.Describe(ctx, providers.InstanceFilter{})
		require.NoError(t, err)
		require.Len(t, all, len(results[tenant].InstanceIDs), "tenant %s sees no other tenant's instances", name)
	}

	// A fleet for a tenant the cloud does not know fails at once, having
	// launched nothing.
	in := workflows.LaunchFleetInput{Tenant: "nobody", FleetID: "web", InstanceType: "m5.large", Min: 1, Target: 1, Burst: true}
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.FleetWorkflowID(in.Tenant, in.FleetID), TaskQueue: workflows.TaskQueue,
	}, workflows.LaunchFleetWorkflow, in)
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.ErrorContains(t, err, "tenant nobody")
	require.Less(t, time.Since(start), 30*time.Second, "an unknown tenant is not retried")
	free, err := cloud.EC2().Free(ctx, "m5.large")
	require.NoError(t, err)
	require.Equal(t, 40-5-4, free)
}
