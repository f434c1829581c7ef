package ec2

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireDryRunOK asserts err is EC2's answer to a dry run that would
// have succeeded.
func requireDryRunOK(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err, "a dry run never succeeds")
	assert.Equal(t, "DryRunOperation", errorCode(t, err))
	assert.Equal(t, http.StatusPreconditionFailed, httpStatus(t, err))
	assert.Equal(t, "Request would have succeeded, but DryRun flag is set.", apiMessage(t, err))
}

func TestDryRunChangesNothing(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, cloud := start(t, Config{Now: clk.Now, RequestBucket: -1, DescribeBucket: -1, ResourceBucket: 8, ResourceRefill: 1,
		Pools: []Pool{{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 10}}})
	dry := func(in *awsec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }

	_, err := run(ctx, client, "m5.large", 2, 2, dry, withToken("tok-1"), withTags("k", "v"))
	requireDryRunOK(t, err)
	assert.Empty(t, describe(t, client, &awsec2.DescribeInstancesInput{}), "a dry run launches nothing")
	assert.Equal(t, 10, free(t, cloud, "m5.large"), "a dry run takes no capacity")
	// Neither the client token nor the resource bucket was used: the same
	// token launches for real, and the whole bucket is there.
	out, err := run(ctx, client, "m5.large", 8, 8, withToken("tok-1"))
	require.NoError(t, err)
	require.Len(t, out.Instances, 8)

	// Would fail: the real error, not DryRunOperation.
	_, err = run(ctx, client, "m5.large", 1, 1, dry)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err), "the resource bucket is empty")
	clk.Advance(8 * time.Second)
	_, err = run(ctx, client, "m5.large", 3, 3, dry)
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err))
	_, err = run(ctx, client, "t9.none", 1, 1, dry)
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))

	// Terminate, tag, describe: checked, not done.
	id := ids(out)[0]
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{id}, DryRun: aws.Bool(true)})
	requireDryRunOK(t, err)
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{"i-0000000000000dead"}, DryRun: aws.Bool(true)})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	_, err = client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: []string{id}, DryRun: aws.Bool(true),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	requireDryRunOK(t, err)
	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{DryRun: aws.Bool(true)})
	requireDryRunOK(t, err)
	got := describe(t, client, &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.Len(t, got, 1)
	assert.Equal(t, types.InstanceStateNameRunning, got[0].State.Name, "a dry run terminates nothing")
	assert.Empty(t, got[0].Tags, "a dry run tags nothing")
	assert.Equal(t, 2, free(t, cloud, "m5.large"))

	// Capacity reservations.
	crIn := &awsec2.CreateCapacityReservationInput{InstanceType: aws.String("m5.large"), InstanceCount: aws.Int32(2),
		InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix, DryRun: aws.Bool(true)}
	_, err = client.CreateCapacityReservation(ctx, crIn)
	requireDryRunOK(t, err)
	crs, err := client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{})
	require.NoError(t, err)
	assert.Empty(t, crs.CapacityReservations)
	assert.Equal(t, 2, free(t, cloud, "m5.large"))
	crIn.DryRun = nil
	cr, err := client.CreateCapacityReservation(ctx, crIn)
	require.NoError(t, err)
	crID := cr.CapacityReservation.CapacityReservationId
	_, err = client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: crID, DryRun: aws.Bool(true)})
	requireDryRunOK(t, err)
	crs, err = client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{})
	require.NoError(t, err)
	require.Len(t, crs.CapacityReservations, 1)
	assert.Equal(t, types.CapacityReservationStateActive, crs.CapacityReservations[0].State)
}

func TestDryRunTakesARequestToken(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, _ := start(t, Config{Now: clk.Now, RequestBucket: 1, RequestRefill: 1, DescribeBucket: -1, ResourceBucket: -1})
	dry := func(in *awsec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }
	_, err := run(ctx, client, "t3.micro", 1, 1, dry)
	requireDryRunOK(t, err)
	_, err = run(ctx, client, "t3.micro", 1, 1, dry)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err), "a dry run is a request: it counts against the request rate")
}

func TestCreateTags(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))
	out, err := run(ctx, client, "t3.micro", 2, 2, withTags("a", "1"))
	require.NoError(t, err)
	_, err = client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: ids(out),
		Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("2")}, {Key: aws.String("b"), Value: aws.String("")}}})
	require.NoError(t, err)
	got := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("a", "2")}})
	require.Len(t, got, 2)
	assert.Len(t, got[0].Tags, 2)

	_, err = client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: append(ids(out), "i-0000000000000dead"),
		Tags: []types.Tag{{Key: aws.String("c"), Value: aws.String("x")}}})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	assert.Empty(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{"c"}}}}),
		"a call naming a missing resource tags nothing")
	_, err = client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: ids(out), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("x")}}})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
	var many []types.Tag
	for i := range 50 {
		many = append(many, types.Tag{Key: aws.String("k" + itoa(int64(i))), Value: aws.String("v")})
	}
	_, err = client.CreateTags(ctx, &awsec2.CreateTagsInput{Resources: ids(out), Tags: many})
	assert.Equal(t, "TagLimitExceeded", errorCode(t, err))
}

func TestDescribeRegions(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{Region: "eu-west-1"}))
	out, err := client.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{})
	require.NoError(t, err)
	require.Len(t, out.Regions, 1)
	assert.Equal(t, "eu-west-1", aws.ToString(out.Regions[0].RegionName))
	assert.NotEmpty(t, aws.ToString(out.Regions[0].Endpoint))
	assert.Equal(t, "opt-in-not-required", aws.ToString(out.Regions[0].OptInStatus))

	out, err = client.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{Filters: []types.Filter{{Name: aws.String("region-name"), Values: []string{"us-east-1"}}}})
	require.NoError(t, err)
	assert.Empty(t, out.Regions)
	_, err = client.DescribeRegions(ctx, &awsec2.DescribeRegionsInput{RegionNames: []string{"us-east-1"}})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
}

func TestDescribeInstanceStatus(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, _ := start(t, unthrottled(Config{Now: clk.Now, BootDelay: 10 * time.Second}))
	first, err := run(ctx, client, "t3.micro", 6, 6)
	require.NoError(t, err)
	clk.Advance(10 * time.Second)
	second, err := run(ctx, client, "t3.micro", 1, 1) // pending
	require.NoError(t, err)
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(first)[:1]})
	require.NoError(t, err)

	statuses := func(in *awsec2.DescribeInstanceStatusInput) map[string]types.InstanceStatus {
		t.Helper()
		got := map[string]types.InstanceStatus{}
		p := awsec2.NewDescribeInstanceStatusPaginator(client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			require.NoError(t, err)
			for _, s := range page.InstanceStatuses {
				got[aws.ToString(s.InstanceId)] = s
			}
		}
		return got
	}
	running := statuses(&awsec2.DescribeInstanceStatusInput{MaxResults: aws.Int32(5)})
	assert.Len(t, running, 5, "by default only running instances, over pages")
	for _, s := range running {
		assert.Equal(t, types.InstanceStateNameRunning, s.InstanceState.Name)
		assert.Equal(t, types.SummaryStatusOk, s.SystemStatus.Status)
		assert.Equal(t, types.SummaryStatusOk, s.InstanceStatus.Status)
		assert.Contains(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, aws.ToString(s.AvailabilityZone))
	}
	all := statuses(&awsec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true)})
	assert.Len(t, all, 7)
	pending := all[ids(second)[0]]
	assert.Equal(t, types.InstanceStateNamePending, pending.InstanceState.Name)
	assert.Equal(t, types.SummaryStatusNotApplicable, pending.SystemStatus.Status)
	assert.Equal(t, types.InstanceStateNameTerminated, all[ids(first)[0]].InstanceState.Name)

	byID := statuses(&awsec2.DescribeInstanceStatusInput{InstanceIds: []string{ids(first)[1], ids(second)[0]}})
	assert.Len(t, byID, 1, "a named pending instance is left out without IncludeAllInstances")
	filtered := statuses(&awsec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true),
		Filters: []types.Filter{{Name: aws.String("instance-state-code"), Values: []string{"0", "48"}}}})
	assert.Len(t, filtered, 2)
	filtered = statuses(&awsec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true),
		Filters: []types.Filter{{Name: aws.String("system-status.status"), Values: []string{"impaired"}}}})
	assert.Empty(t, filtered)
	_, err = client.DescribeInstanceStatus(ctx, &awsec2.DescribeInstanceStatusInput{InstanceIds: []string{"i-0000000000000dead"}})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
}
